/*
 * The histogram's bucket layout (see hist.h). With S = PBENCH_HIST_SUB_BITS:
 *   v < 2^S:  bucket v, exact;
 *   v >= 2^S: with e = msb(v) - S + 1 (so v >> e has S - 1 significant bits below its top one),
 *             bucket 2^S + (e - 1) * 2^(S-1) + ((v >> e) - 2^(S-1)).
 * Each bucket of exponent e spans 2^e values starting at a multiple of 2^e that is at least
 * 2^(S-1+e): the width is at most 1/2^(S-1) of the values it holds.
 */
#include "hist.h"

#include <string.h>

#define SUB  (1u << PBENCH_HIST_SUB_BITS)
#define HALF (1u << (PBENCH_HIST_SUB_BITS - 1))

static unsigned bucket_of(uint64_t v)
{
    if (v < SUB) {
        return (unsigned)v;
    }
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned e = msb - PBENCH_HIST_SUB_BITS + 1;
    if (e > PBENCH_HIST_MAX_EXP) {
        return PBENCH_HIST_BUCKETS - 1; /* beyond the range: the last bucket */
    }
    return SUB + (e - 1) * HALF + (unsigned)((v >> e) - HALF);
}

/* The largest value that falls into bucket @b. */
static uint64_t bucket_high(unsigned b)
{
    if (b < SUB) {
        return b;
    }
    unsigned e = (b - SUB) / HALF + 1;
    uint64_t m = (b - SUB) % HALF + HALF;
    return ((m + 1) << e) - 1;
}

void pbench_hist_reset(pbench_hist *h)
{
    memset(h, 0, sizeof(*h));
}

void pbench_hist_record(pbench_hist *h, uint64_t ns)
{
    if (h->count == 0 || ns < h->min_ns) {
        h->min_ns = ns;
    }
    if (ns > h->max_ns) {
        h->max_ns = ns;
    }
    h->count++;
    h->sum_ns += (double)ns;
    h->buckets[bucket_of(ns)]++;
}

void pbench_hist_merge(pbench_hist *into, const pbench_hist *from)
{
    if (from->count == 0) {
        return;
    }
    if (into->count == 0 || from->min_ns < into->min_ns) {
        into->min_ns = from->min_ns;
    }
    if (from->max_ns > into->max_ns) {
        into->max_ns = from->max_ns;
    }
    into->count += from->count;
    into->sum_ns += from->sum_ns;
    for (unsigned i = 0; i < PBENCH_HIST_BUCKETS; i++) {
        into->buckets[i] += from->buckets[i];
    }
}

uint64_t pbench_hist_quantile(const pbench_hist *h, double q)
{
    if (h->count == 0) {
        return 0;
    }
    if (q <= 0) {
        return h->min_ns;
    }
    /* The rank of the value asked for, 1-based: the smallest value with at least q of the
     * values at or below it. */
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
    if (rank < 1) {
        rank = 1;
    }
    if (rank > h->count) {
        rank = h->count;
    }
    uint64_t seen = 0;
    for (unsigned i = 0; i < PBENCH_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = bucket_high(i);
            if (v > h->max_ns) {
                v = h->max_ns;
            }
            if (v < h->min_ns) {
                v = h->min_ns;
            }
            return v;
        }
    }
    return h->max_ns;
}
