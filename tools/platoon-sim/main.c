/*
 * platoon-sim: the deterministic cluster simulator's command line.
 *
 *   platoon-sim --seed S [--nodes N] [--steps K] [--faults LIST] [--trace FILE]
 *   platoon-sim --seeds A..B [--nodes 3,5,7] ...      sweep; a progress line on long sweeps
 *   platoon-sim --scenario NAME [--seed S] | --scenarios      the named scenarios
 *   platoon-sim --soak [--duration SECONDS]                   long sweep, reports seeds/s
 *
 * On a violation it prints the seed, the invariant and the command that replays it, and exits
 * with status 1. Status 2 is a usage error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "platoon/error.h"
#include "sim/run.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void)
{
    fprintf(
        stderr,
        "usage: platoon-sim [--seed S | --seeds A..B | --soak [--duration SECONDS]]\n"
        "                   [--nodes N|N,M,...] [--steps K] [--faults all|none|LIST]\n"
        "                   [--clients C] [--keys K] [--no-pre-vote] [--no-check-quorum]\n"
        "                   [--lease-reads] [--drift PERMILLE] [--mix] [--trace FILE] [--quiet]\n"
        "                   [--plant-bug stale-read|early-ack]\n"
        "       platoon-sim --scenario NAME | --scenarios [--seed S | --seeds A..B] [--trace "
        "FILE]\n"
        "faults: loss,delay,dup,reorder,partition,crash,pause,slow,snapshot,membership,"
        "transfer\n");
    return 2;
}

static int run_scenarios(const char *only, uint64_t seed, FILE *trace)
{
    int failed = 0, ran = 0;
    for (int i = 0; i < psim_n_scenarios; i++) {
        const psim_scenario *sc = &psim_scenarios[i];
        if (only != NULL && strcmp(only, sc->name) != 0) {
            continue;
        }
        ran++;
        psim_run_result res;
        memset(&res, 0, sizeof(res));
        int rc = sc->run(seed, trace, &res);
        if (rc != 0) {
            failed++;
            printf("FAIL %s seed=%" PRIu64 ": VIOLATION %s step=%" PRIu64 " %s\n", sc->name, seed,
                   res.violation.invariant, res.step, res.violation.detail);
            printf("replay: build/bin/platoon-sim --scenario %s --seed %" PRIu64
                   " --trace trace.txt\n",
                   sc->name, seed);
        } else {
            printf("ok   %s seed=%" PRIu64 " (%" PRIu64 " steps)\n", sc->name, seed, res.steps_run);
        }
    }
    if (ran == 0) {
        fprintf(stderr, "platoon-sim: no scenario named %s (--scenarios lists them)\n", only);
        return 2;
    }
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    uint64_t seed_lo = 1, seed_hi = 1;
    int node_list[8] = {3}, n_nodes = 1;
    psim_options base;
    psim_options_init(&base, 1, 3);
    const char *trace_path = NULL, *scenario = NULL;
    bool scenarios = false, soak = false, quiet = false, seeds_given = false, mix = false,
         drift_given = false;
    double duration = 4 * 3600.0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--seed") == 0 && v) {
            seed_lo = seed_hi = strtoull(v, NULL, 10);
            seeds_given = true;
            i++;
        } else if (strcmp(a, "--seeds") == 0 && v) {
            char *end;
            seed_lo = strtoull(v, &end, 10);
            if (strncmp(end, "..", 2) != 0) {
                return usage();
            }
            seed_hi = strtoull(end + 2, NULL, 10);
            seeds_given = true;
            i++;
        } else if (strcmp(a, "--nodes") == 0 && v) {
            n_nodes = 0;
            for (const char *p = v; *p && n_nodes < 8;) {
                node_list[n_nodes++] = atoi(p);
                p += strcspn(p, ",");
                p += *p == ',';
            }
            i++;
        } else if (strcmp(a, "--steps") == 0 && v) {
            base.steps = strtoull(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--faults") == 0 && v) {
            if (psim_faults_parse(v, &base.faults) != 0) {
                return usage();
            }
            base.nemesis = base.faults != 0;
            i++;
        } else if (strcmp(a, "--clients") == 0 && v) {
            base.clients = atoi(v);
            i++;
        } else if (strcmp(a, "--keys") == 0 && v) {
            base.keys = atoi(v);
            i++;
        } else if (strcmp(a, "--trace") == 0 && v) {
            trace_path = v;
            i++;
        } else if (strcmp(a, "--duration") == 0 && v) {
            duration = atof(v);
            i++;
        } else if (strcmp(a, "--scenario") == 0 && v) {
            scenario = v;
            i++;
        } else if (strcmp(a, "--scenarios") == 0) {
            scenarios = true;
        } else if (strcmp(a, "--drift") == 0 && v) {
            base.drift_permille = (uint32_t)atoi(v);
            drift_given = true;
            i++;
        } else if (strcmp(a, "--mix") == 0) {
            mix = true;
        } else if (strcmp(a, "--soak") == 0) {
            soak = true;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else if (strcmp(a, "--plant-bug") == 0 && v) {
            /* Demonstrates the checkers on a deliberately broken application. */
            if (strcmp(v, "stale-read") == 0) {
                base.bug = PSIM_BUG_STALE_READ;
            } else if (strcmp(v, "early-ack") == 0) {
                base.bug = PSIM_BUG_EARLY_ACK;
            } else {
                return usage();
            }
            i++;
        } else if (strcmp(a, "--no-pre-vote") == 0) {
            base.disable_pre_vote = true;
        } else if (strcmp(a, "--no-check-quorum") == 0) {
            base.disable_check_quorum = true;
        } else if (strcmp(a, "--lease-reads") == 0) {
            base.lease_reads = true;
        } else {
            return usage();
        }
    }
    if (n_nodes == 0) {
        return usage(); /* --nodes "" would leave no cluster size to run */
    }
    for (int i = 0; i < n_nodes; i++) {
        if (node_list[i] < 1 || node_list[i] > PSIM_MAX_NODES) {
            return usage();
        }
    }
    FILE *trace = NULL;
    if (trace_path != NULL) {
        trace = fopen(trace_path, "w");
        if (trace == NULL) {
            fprintf(stderr, "platoon-sim: cannot write %s\n", trace_path);
            return 2;
        }
    }
    int status = 0;
    if (scenario != NULL || scenarios) {
        for (uint64_t seed = seed_lo; seed <= seed_hi && status == 0; seed++) {
            status = run_scenarios(scenario, seed, trace);
        }
        goto out;
    }
    if (soak) {
        seed_lo = seeds_given ? seed_lo : 1;
        seed_hi = UINT64_MAX;
        n_nodes = 3;
        node_list[0] = 3, node_list[1] = 5, node_list[2] = 7;
    }

    double t0 = now_s(), last_progress = t0;
    uint64_t ran = 0, steps = 0, applied = 0, ops = 0, unknown = 0, inconclusive = 0;
    uint64_t last_hash = 0, elections = 0, crashes = 0, snaps = 0, installs = 0, changes = 0;
    for (uint64_t seed = seed_lo; seed <= seed_hi; seed++) {
        psim_options opt = base;
        opt.seed = seed;
        opt.nodes = node_list[(seed - seed_lo) % (uint64_t)n_nodes];
        opt.trace = trace;
        if (mix) {
            /* The seed picks the options; --steps still applies if given. */
            uint64_t keep_steps = opt.steps;
            psim_options_mix(&opt, seed);
            opt.steps = keep_steps;
            opt.drift_permille = drift_given ? base.drift_permille : opt.drift_permille;
            opt.trace = trace;
        }
        psim_run_result res;
        int rc = psim_run_random(&opt, &res);
        if (rc != 0) {
            fprintf(stderr, "platoon-sim: seed %" PRIu64 ": cannot set up the world: %s\n", seed,
                    pt_strerror(rc));
            status = 2;
            break;
        }
        ran++;
        steps += res.steps_run;
        applied += res.applied_entries;
        ops += res.ops_ok;
        unknown += res.ops_unknown;
        inconclusive += res.lin_inconclusive;
        last_hash = res.trace_hash;
        elections += res.elections;
        crashes += res.crashes;
        snaps += res.snapshots;
        installs += res.snapshots_installed;
        changes += res.membership_changes;
        if (res.violated) {
            psim_print_violation(stdout, &opt, &res);
            status = 1;
            break;
        }
        double t = now_s();
        if (!quiet && (t - last_progress >= 10.0 || (soak && t - t0 >= duration))) {
            last_progress = t;
            printf("progress: %" PRIu64 " seeds clean (last %" PRIu64 "), %" PRIu64
                   " steps, %.1f seeds/s\n",
                   ran, seed, steps, (double)ran / (t - t0));
            fflush(stdout);
        }
        if (soak && t - t0 >= duration) {
            break;
        }
    }
    double el = now_s() - t0;
    if (ran == 1 && status == 0) {
        printf("seed %" PRIu64 " clean: %" PRIu64 " steps, %" PRIu64 " entries applied, %" PRIu64
               " ops ok, %" PRIu64 " unknown, trace hash %016" PRIx64 "\n",
               seed_lo, steps, applied, ops, unknown, last_hash);
    } else {
        printf("%s: %" PRIu64 " seeds run, %s; %" PRIu64 " steps, %" PRIu64
               " entries applied, %" PRIu64 " client ops ok, %" PRIu64 " unknown, %" PRIu64
               " linearizability searches inconclusive; %.2f s, %.1f seeds/s\n",
               soak ? "soak" : "sweep", ran, status == 0 ? "all clean" : "stopped at a violation",
               steps, applied, ops, unknown, inconclusive, el, el > 0 ? (double)ran / el : 0.0);
        printf("faults met: %" PRIu64 " elections won, %" PRIu64 " crashes, %" PRIu64
               " snapshots taken, %" PRIu64 " installed, %" PRIu64 " membership changes\n",
               elections, crashes, snaps, installs, changes);
    }
out:
    if (trace != NULL) {
        fclose(trace);
    }
    return status;
}
