/*
 * Linearizability checker for the simulated key-value store (a map of registers).
 *
 * Wing & Gong's search with Lowe's memoisation ("Testing for linearizability", 2017): walk the
 * history's call and return events in time order; at a call, try to linearize that operation
 * now against the model; at a return of an operation not yet linearized, backtrack. A cache
 * of (set of linearized operations, model state) pairs already explored prunes the search.
 * Registers are independent, so the history is checked per key (P-compositionality), which
 * keeps each search small.
 *
 * A put with outcome UNKNOWN may take effect at any time after its invocation or never: its
 * return is placed after every other event, and the search succeeds as soon as only such
 * returns remain. FAILED operations and reads that failed are left out.
 */
#ifndef PLATOON_SIM_LINEARIZABILITY_H
#define PLATOON_SIM_LINEARIZABILITY_H

#include <stddef.h>
#include <stdint.h>

#include "sim/history.h"

typedef struct psim_lin_report {
    uint32_t key;     /* the key whose history is not linearizable */
    size_t n_ops;     /* operations on that key */
    char detail[256]; /* a human-readable explanation */
} psim_lin_report;

/*
 * Checks @h. Returns 0 when every key's history is linearizable; PT_ECORRUPT when one is not
 * (@rep names the key and the first operation that could not be placed); PT_ETIMEDOUT when a
 * key's search exceeded @max_steps explored states (neither verdict: reported as such);
 * PT_ENOMEM. @rep may be NULL.
 */
int psim_lin_check(const psim_history *h, uint64_t max_steps, psim_lin_report *rep);

#endif
