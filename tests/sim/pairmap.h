/*
 * A small open-addressing hash map from a pair of 64-bit keys to a 64-bit value, for the
 * invariant checker's oracles ((index, term) -> chain hash, (term) -> leader).
 */
#ifndef PLATOON_SIM_PAIRMAP_H
#define PLATOON_SIM_PAIRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct psim_pairmap_slot {
    uint64_t k1, k2, value;
    bool used;
} psim_pairmap_slot;

typedef struct psim_pairmap {
    psim_pairmap_slot *slots;
    size_t n_slots, n_used;
} psim_pairmap;

void psim_pairmap_init(psim_pairmap *m);
void psim_pairmap_free(psim_pairmap *m);

/* Looks (k1, k2) up: true and *value if present. */
bool psim_pairmap_get(const psim_pairmap *m, uint64_t k1, uint64_t k2, uint64_t *value);

/* Inserts or overwrites. Returns 0 or PT_ENOMEM. */
int psim_pairmap_put(psim_pairmap *m, uint64_t k1, uint64_t k2, uint64_t value);

#endif
