/*
 * The core's random numbers: splitmix64, seeded from the options so that a run can be replayed.
 * Only election timeouts use it; its quality needs are modest, its determinism is essential.
 */
#include "raft/core.h"

#include <stdlib.h>
#include <string.h>

uint64_t praft__rand_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int praft__grow(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) {
        return 0;
    }
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need) {
        ncap *= 2;
    }
    void *p = realloc(*arr, ncap * size);
    if (p == NULL) {
        return PT_ENOMEM;
    }
    *arr = p;
    *cap = ncap;
    return 0;
}
