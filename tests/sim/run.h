/*
 * Running simulations: one seed, a sweep of seeds, the named scenarios. Used by platoon-sim
 * and by the ctest entries of the `sim` label.
 */
#ifndef PLATOON_SIM_RUN_H
#define PLATOON_SIM_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "sim/sim.h"

typedef struct psim_run_result {
    bool violated;
    psim_violation violation;
    uint64_t step;
    uint64_t steps_run;
    uint64_t trace_hash;
    uint64_t ops_ok, ops_failed, ops_unknown;
    uint64_t applied_entries, elections, crashes, snapshots, membership_changes;
    uint64_t snapshots_installed, transfers;
    uint64_t lin_inconclusive;
} psim_run_result;

/* One random run: faulty phase of opt->steps steps, healing and the liveness check, then the
 * linearizability check. Returns 0 (clean or violated: see res->violated) or a setup error. */
int psim_run_random(const psim_options *opt, psim_run_result *res);

/* Fills @res from the state of @w. */
void psim_run_collect(const psim_world *w, psim_run_result *res);

/* Prints the violation of @res for the run of @opt, with the command that replays it. */
void psim_print_violation(FILE *f, const psim_options *opt, const psim_run_result *res);

/* The named scenarios. */
typedef struct psim_scenario {
    const char *name;
    const char *what;
    /* Returns 0 if the scenario held; else fills res (violation) and returns PT_ECORRUPT. */
    int (*run)(uint64_t seed, FILE *trace, psim_run_result *res);
} psim_scenario;

extern const psim_scenario psim_scenarios[];
extern const int psim_n_scenarios;

#endif
