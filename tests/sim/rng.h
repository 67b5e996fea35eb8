/*
 * The simulator's own pseudo-random generator: xoshiro256** seeded through splitmix64.
 *
 * Every random choice of a simulation comes from one of these, seeded from the run's seed, so
 * that the same seed gives the same run on every machine (rand() is neither portable nor
 * reentrant, and its sequence differs between C libraries).
 */
#ifndef PLATOON_SIM_RNG_H
#define PLATOON_SIM_RNG_H

#include <stdbool.h>
#include <stdint.h>

typedef struct psim_rng {
    uint64_t s[4];
} psim_rng;

/* Seeds @r from @seed and a @stream number: distinct streams of one seed are independent, so
 * adding a random choice to one part of the simulator does not shift every other part. */
void psim_rng_init(psim_rng *r, uint64_t seed, uint64_t stream);

/* The next 64 random bits. */
uint64_t psim_rng_next(psim_rng *r);

/* Uniform in [0, n); 0 when n is 0. Unbiased (rejection sampling). */
uint64_t psim_rng_below(psim_rng *r, uint64_t n);

/* Uniform in [lo, hi] (inclusive); lo when hi <= lo. */
uint64_t psim_rng_range(psim_rng *r, uint64_t lo, uint64_t hi);

/* True with probability permille / 1000. */
bool psim_rng_chance(psim_rng *r, uint32_t permille);

/* A 64-bit mix of two values (splitmix64 finaliser), for deriving seeds and hashes. */
uint64_t psim_mix(uint64_t a, uint64_t b);

#endif
