#include "sim/pairmap.h"

#include <stdlib.h>

#include "platoon/error.h"
#include "sim/rng.h"

void psim_pairmap_init(psim_pairmap *m)
{
    m->slots = NULL;
    m->n_slots = m->n_used = 0;
}

void psim_pairmap_free(psim_pairmap *m)
{
    free(m->slots);
    psim_pairmap_init(m);
}

static size_t slot_of(const psim_pairmap *m, uint64_t k1, uint64_t k2)
{
    size_t i = psim_mix(k1, k2) & (m->n_slots - 1);
    while (m->slots[i].used && !(m->slots[i].k1 == k1 && m->slots[i].k2 == k2)) {
        i = (i + 1) & (m->n_slots - 1);
    }
    return i;
}

bool psim_pairmap_get(const psim_pairmap *m, uint64_t k1, uint64_t k2, uint64_t *value)
{
    if (m->n_slots == 0) {
        return false;
    }
    size_t i = slot_of(m, k1, k2);
    if (!m->slots[i].used) {
        return false;
    }
    *value = m->slots[i].value;
    return true;
}

int psim_pairmap_put(psim_pairmap *m, uint64_t k1, uint64_t k2, uint64_t value)
{
    if ((m->n_used + 1) * 2 > m->n_slots) {
        psim_pairmap bigger = {.n_slots = m->n_slots ? m->n_slots * 2 : 256};
        bigger.slots = calloc(bigger.n_slots, sizeof(*bigger.slots));
        if (bigger.slots == NULL) {
            return PT_ENOMEM;
        }
        for (size_t i = 0; i < m->n_slots; i++) {
            if (m->slots[i].used) {
                bigger.slots[slot_of(&bigger, m->slots[i].k1, m->slots[i].k2)] = m->slots[i];
                bigger.n_used++;
            }
        }
        free(m->slots);
        *m = bigger;
    }
    size_t i = slot_of(m, k1, k2);
    if (!m->slots[i].used) {
        m->slots[i] = (psim_pairmap_slot){.k1 = k1, .k2 = k2, .used = true};
        m->n_used++;
    }
    m->slots[i].value = value;
    return 0;
}
