#include "sim/run.h"

#include <inttypes.h>
#include <string.h>

#include "platoon/error.h"

void psim_run_collect(const psim_world *w, psim_run_result *res)
{
    memset(res, 0, sizeof(*res));
    res->violated = w->inv.violated;
    res->violation = w->inv.violation;
    res->step = w->step;
    res->steps_run = w->step;
    res->trace_hash = w->trace_hash;
    for (int c = 0; c < w->opt.clients; c++) {
        res->ops_ok += w->clients[c].ops_ok;
        res->ops_failed += w->clients[c].ops_failed;
        res->ops_unknown += w->clients[c].ops_unknown;
    }
    res->applied_entries = w->applied_entries;
    res->elections = w->elections;
    res->crashes = w->crashes;
    res->snapshots = w->snapshots_taken;
    res->membership_changes = w->membership_changes;
    res->snapshots_installed = w->snapshots_installed;
    res->transfers = w->transfers;
    res->lin_inconclusive = w->lin_inconclusive;
}

int psim_run_random(const psim_options *opt, psim_run_result *res)
{
    psim_world *w;
    int rc = psim_world_new(opt, &w);
    if (rc != 0) {
        return rc;
    }
    psim_world_run_steps(w, opt->steps);
    if (!w->stop) {
        psim_world_check_liveness(w);
    }
    if (!w->stop) {
        psim_world_final_checks(w);
    }
    psim_run_collect(w, res);
    psim_world_free(w);
    return 0;
}

void psim_print_violation(FILE *f, const psim_options *opt, const psim_run_result *res)
{
    char faults[160];
    psim_faults_format(opt->faults, faults, sizeof(faults));
    fprintf(f, "VIOLATION %s seed=%" PRIu64 " step=%" PRIu64 " %s\n", res->violation.invariant,
            opt->seed, res->step, res->violation.detail);
    if (opt->lease_reads && opt->drift_permille > PSIM_DRIFT_BOUND) {
        fprintf(f,
                "note: clocks drift by up to %" PRIu32 "/1000 of a tick, beyond what leases allow "
                "(rates less than 9/8 apart: at most %d/1000): the configuration breaks the "
                "core's contract (lease_reads in platoon/raft.h)\n",
                opt->drift_permille, PSIM_DRIFT_BOUND);
    }
    char drift[32] = "";
    if (opt->drift_permille > 0) {
        snprintf(drift, sizeof(drift), " --drift %" PRIu32, opt->drift_permille);
    }
    if (opt->mix) {
        fprintf(f,
                "replay: build/bin/platoon-sim --mix --seed %" PRIu64 " --drift %" PRIu32
                " --trace trace.txt\n",
                opt->seed, opt->drift_permille);
        return;
    }
    fprintf(f,
            "replay: build/bin/platoon-sim --seed %" PRIu64 " --nodes %d --steps %" PRIu64
            " --faults %s --clients %d --keys %d%s%s%s%s%s --trace trace.txt\n",
            opt->seed, opt->nodes, opt->steps, faults, opt->clients, opt->keys, drift,
            opt->disable_pre_vote ? " --no-pre-vote" : "",
            opt->disable_check_quorum ? " --no-check-quorum" : "",
            opt->lease_reads ? " --lease-reads" : "",
            opt->bug == PSIM_BUG_STALE_READ  ? " --plant-bug stale-read"
            : opt->bug == PSIM_BUG_EARLY_ACK ? " --plant-bug early-ack"
                                             : "");
}
