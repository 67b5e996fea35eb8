#include "sim/rng.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t psim_mix(uint64_t a, uint64_t b)
{
    uint64_t x = a ^ (b * 0xd6e8feb86659fd93ULL);
    return splitmix64(&x);
}

void psim_rng_init(psim_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = psim_mix(seed, stream + 1);
    for (int i = 0; i < 4; i++) {
        r->s[i] = splitmix64(&x);
    }
    /* xoshiro must not start from the all-zero state; splitmix64 makes it practically
     * impossible, but the guard costs nothing. */
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0) {
        r->s[0] = 1;
    }
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t psim_rng_next(psim_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t psim_rng_below(psim_rng *r, uint64_t n)
{
    if (n == 0) {
        return 0;
    }
    /* Reject the top partial bucket so every residue is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = psim_rng_next(r);
    } while (x >= limit);
    return x % n;
}

uint64_t psim_rng_range(psim_rng *r, uint64_t lo, uint64_t hi)
{
    if (hi <= lo) {
        return lo;
    }
    return lo + psim_rng_below(r, hi - lo + 1);
}

bool psim_rng_chance(psim_rng *r, uint32_t permille)
{
    return psim_rng_below(r, 1000) < permille;
}
