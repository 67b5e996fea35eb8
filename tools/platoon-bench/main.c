/*
 * platoon-bench: drives a Platoon cluster (or, with --target etcd, an etcd cluster) with a
 * fixed number of calls outstanding and reports throughput and latency percentiles.
 *
 *   platoon-bench --endpoints 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 \
 *                 --workload update --concurrency 64 --duration 10
 *
 * Exit status: 0 when every call succeeded, 3 when some failed (the report says which), 2 for
 * bad flags, 1 when the run could not be made (no leader, no channel).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include <openssl/crypto.h>

#include "discover.h"
#include "creds.h"
#include "engine.h"
#include "net/grpc_sync.h"
#include "platoon/error.h"
#include "report.h"

static const char usage[] =
    "usage: platoon-bench --endpoints HOST:PORT[,HOST:PORT...] [options]\n"
    "  --target platoon|etcd      what the endpoints serve (default platoon)\n"
    "  --workload update|mixed|read\n"
    "                             update: writes of random vehicles of the pool; mixed: 90%\n"
    "                             reads of one vehicle, 10% writes; read: reads only\n"
    "                             (default update)\n"
    "  --read vehicle|platoon     what a read fetches: one vehicle (GetVehicle / Range of one\n"
    "                             key) or all of them (GetPlatoon / Range of the prefix)\n"
    "  --consistency linearizable|stale\n"
    "                             reads: confirmed by the leader, or from the local replica\n"
    "  --concurrency N            calls outstanding (default 64)\n"
    "  --channels N               gRPC channels, i.e. connections (default 4, or one per\n"
    "                             endpoint with --spread)\n"
    "  --spread                   spread the channels over all endpoints (default: find the\n"
    "                             leader and send everything to it)\n"
    "  --duration S               seconds recorded (default 10)\n"
    "  --warmup S                 seconds run before recording (default 2)\n"
    "  --pool N                   vehicles (etcd: keys) 1..N (default 1000)\n"
    "  --value-size N             etcd: bytes per value (default 64)\n"
    "  --no-sessions              Platoon updates without exactly-once sessions (client_id 0);\n"
    "                             by default each outstanding slot is one client session\n"
    "  --no-preload               do not write the pool once before a read or mixed run\n"
    "  --timeout-ms N             each call's deadline (default 5000)\n"
    "  --seed N                   random generator seed (default: from the clock)\n"
    "  --cacert FILE, --cert FILE, --key FILE\n"
    "                             TLS with this CA and client certificate (default: plaintext)\n"
    "  --watchers N               open N WatchPlatoon streams (STALE consistency: no ReadIndex\n"
    "                             round before they start) for the whole run, each reading\n"
    "                             every message as it comes; reports the events received and\n"
    "                             the delivery delay: from the bench receiving a write's answer\n"
    "                             to a watcher receiving the change with its revision (negative\n"
    "                             when the change comes first). Streams that end before the run\n"
    "                             are counted with their status, not reopened (default 0)\n"
    "  --watch-node HOST:PORT     the node the watchers use (default: the node the writes go\n"
    "                             to, the leader; with --spread, the first endpoint)\n"
    "  --watch-channels N         connections the watchers are spread over (default: one per\n"
    "                             128 watchers; a node allows 256 streams per connection)\n"
    "  --watch-one-vehicle        watcher i watches vehicle 1 + i mod pool only (an ids filter),\n"
    "                             as a vehicle following the one ahead would (default: every\n"
    "                             watcher watches every vehicle)\n"
    "  --watch-idle               watcher i watches vehicle pool + 1 + i only, which no write\n"
    "                             touches: what idle watchers cost the node\n"
    "  --json                     print the result as one JSON object on stdout\n"
    "  --quiet                    no progress line each second\n";

static void on_signal(int sig)
{
    (void)sig;
    pbench_stop_requested = 1;
}

static int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        return PT_EINVAL;
    }
    *out = (uint32_t)v;
    return 0;
}

static int parse_seconds(const char *s, double *out)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !(v >= 0 && v <= 86400)) {
        return PT_EINVAL;
    }
    *out = v;
    return 0;
}

/* Splits @list at commas in place into @out. */
static int split_endpoints(char *list, pbench_engine_cfg *cfg)
{
    cfg->n_endpoints = 0;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (cfg->n_endpoints == PBENCH_MAX_ENDPOINTS) {
            return PT_EINVAL;
        }
        cfg->endpoints[cfg->n_endpoints++] = tok;
    }
    return cfg->n_endpoints > 0 ? 0 : PT_EINVAL;
}

typedef struct flags {
    pbench_engine_cfg eng;
    char *endpoint_list;
    bool spread;
    bool preload;
    bool json;
    bool help;
    const char *cacert, *cert, *key;
    const char *watch_node;
} flags;

static int parse_flags(int argc, char **argv, flags *f, char *err, size_t err_cap)
{
    memset(f, 0, sizeof(*f));
    pbench_engine_cfg *c = &f->eng;
    c->wl.target = PBENCH_TARGET_PLATOON;
    c->wl.workload = PBENCH_WL_UPDATE;
    c->wl.linearizable = true;
    c->wl.sessions = true;
    c->wl.pool = 1000;
    c->wl.value_size = 64;
    c->concurrency = 64;
    c->duration_s = 10;
    c->warmup_s = 2;
    c->timeout_ms = 5000;
    c->progress = true;
    c->seed = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
    f->preload = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        bool takes = true;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            f->help = true;
            return 0;
        } else if (strcmp(a, "--spread") == 0) {
            f->spread = true, takes = false;
        } else if (strcmp(a, "--no-sessions") == 0) {
            c->wl.sessions = false, takes = false;
        } else if (strcmp(a, "--no-preload") == 0) {
            f->preload = false, takes = false;
        } else if (strcmp(a, "--json") == 0) {
            f->json = true, takes = false;
        } else if (strcmp(a, "--quiet") == 0) {
            c->progress = false, takes = false;
        } else if (strcmp(a, "--watch-one-vehicle") == 0) {
            c->watch_one_vehicle = true, takes = false;
        } else if (strcmp(a, "--watch-idle") == 0) {
            c->watch_idle = true, takes = false;
        } else if (v == NULL) {
            snprintf(err, err_cap, "%s: unknown flag or missing value (see --help)", a);
            return PT_EINVAL;
        } else if (strcmp(a, "--endpoints") == 0) {
            f->endpoint_list = argv[i + 1];
        } else if (strcmp(a, "--watchers") == 0) {
            rc = parse_u32(v, 0, 100000, &c->watchers);
        } else if (strcmp(a, "--watch-channels") == 0) {
            rc = parse_u32(v, 1, 1024, &c->watch_channels);
        } else if (strcmp(a, "--watch-node") == 0) {
            f->watch_node = v;
        } else if (strcmp(a, "--cacert") == 0) {
            f->cacert = v;
        } else if (strcmp(a, "--cert") == 0) {
            f->cert = v;
        } else if (strcmp(a, "--key") == 0) {
            f->key = v;
        } else if (strcmp(a, "--target") == 0) {
            rc = strcmp(v, "platoon") == 0 ? (c->wl.target = PBENCH_TARGET_PLATOON, 0)
                 : strcmp(v, "etcd") == 0  ? (c->wl.target = PBENCH_TARGET_ETCD, 0)
                                           : PT_EINVAL;
        } else if (strcmp(a, "--workload") == 0) {
            rc = strcmp(v, "update") == 0  ? (c->wl.workload = PBENCH_WL_UPDATE, 0)
                 : strcmp(v, "mixed") == 0 ? (c->wl.workload = PBENCH_WL_MIXED, 0)
                 : strcmp(v, "read") == 0  ? (c->wl.workload = PBENCH_WL_READ, 0)
                                           : PT_EINVAL;
        } else if (strcmp(a, "--read") == 0) {
            rc = strcmp(v, "vehicle") == 0   ? (c->wl.read_all = false, 0)
                 : strcmp(v, "platoon") == 0 ? (c->wl.read_all = true, 0)
                                             : PT_EINVAL;
        } else if (strcmp(a, "--consistency") == 0) {
            rc = strcmp(v, "linearizable") == 0 ? (c->wl.linearizable = true, 0)
                 : strcmp(v, "stale") == 0      ? (c->wl.linearizable = false, 0)
                                                : PT_EINVAL;
        } else if (strcmp(a, "--concurrency") == 0) {
            rc = parse_u32(v, 1, 100000, &c->concurrency);
        } else if (strcmp(a, "--channels") == 0) {
            rc = parse_u32(v, 1, 1024, &c->channels);
        } else if (strcmp(a, "--duration") == 0) {
            rc = parse_seconds(v, &c->duration_s);
        } else if (strcmp(a, "--warmup") == 0) {
            rc = parse_seconds(v, &c->warmup_s);
        } else if (strcmp(a, "--pool") == 0) {
            rc = parse_u32(v, 1, 100000000, &c->wl.pool);
        } else if (strcmp(a, "--value-size") == 0) {
            rc = parse_u32(v, 0, 256, &c->wl.value_size);
        } else if (strcmp(a, "--timeout-ms") == 0) {
            rc = parse_u32(v, 1, 3600000, &c->timeout_ms);
        } else if (strcmp(a, "--seed") == 0) {
            uint32_t s = 0;
            rc = parse_u32(v, 1, UINT32_MAX, &s);
            c->seed = s;
        } else {
            snprintf(err, err_cap, "%s: unknown flag (see --help)", a);
            return PT_EINVAL;
        }
        if (rc != 0) {
            snprintf(err, err_cap, "%s %s: invalid value (see --help)", a, v);
            return PT_EINVAL;
        }
        i += takes ? 1 : 0;
    }
    if (f->endpoint_list == NULL || split_endpoints(f->endpoint_list, c) != 0) {
        snprintf(err, err_cap, "--endpoints: one to %d HOST:PORT separated by commas, required",
                 PBENCH_MAX_ENDPOINTS);
        return PT_EINVAL;
    }
    if (c->channels == 0) {
        c->channels = f->spread ? c->n_endpoints : 4;
    }
    if (c->watchers > 0 && c->wl.target != PBENCH_TARGET_PLATOON) {
        snprintf(err, err_cap, "--watchers: only with --target platoon");
        return PT_EINVAL;
    }
    if (c->watch_channels == 0) {
        c->watch_channels = (c->watchers + 127) / 128;
    }
    if (c->watch_channels > c->watchers) {
        c->watch_channels = c->watchers;
    }
    if (c->channels > c->concurrency) {
        c->channels = c->concurrency; /* an idle channel measures nothing */
    }
    return 0;
}

int main(int argc, char **argv)
{
    /* gRPC's threads may still be reconnecting (and so making TLS handshakes) when main()
     * returns: OpenSSL must not free itself at exit under them (a crash on the way out). Its
     * state stays reachable from globals, so leak checkers do not count it. */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
    flags f;
    char err[512] = "";
    if (parse_flags(argc, argv, &f, err, sizeof(err)) != 0) {
        fprintf(stderr, "platoon-bench: %s\n", err);
        return 2;
    }
    if (f.help) {
        fputs(usage, stdout);
        return 0;
    }
    if (pbench_creds_init(f.cacert, f.cert, f.key, err, sizeof(err)) != 0) {
        fprintf(stderr, "platoon-bench: %s\n", err);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int status = 1;
    pbench_result *res = calloc(1, sizeof(*res));
    if (res == NULL) {
        fprintf(stderr, "platoon-bench: out of memory\n");
        return 1;
    }
    pnet_grpc_sync_fast(); /* the same for both systems' runs: it is the client's own */
    grpc_init();
    pbench_engine_cfg *c = &f.eng;
    char leader[256] = "";
    if (!f.spread) {
        if (pbench_find_leader(c->wl.target, c->endpoints, c->n_endpoints, 10000, leader,
                               sizeof(leader), err, sizeof(err)) != 0) {
            fprintf(stderr, "platoon-bench: %s\n", err);
            goto cleanup;
        }
        c->endpoints[0] = leader;
        c->n_endpoints = 1;
    }
    c->watch_target = f.watch_node != NULL ? f.watch_node : c->endpoints[0];
    if (f.preload && c->wl.workload != PBENCH_WL_UPDATE) {
        /* Reads of vehicles that do not exist would measure NOT_FOUND answers. */
        pbench_engine_cfg fill = *c;
        fill.wl.workload = PBENCH_WL_FILL;
        fill.progress = false;
        fill.watchers = 0;
        fill.wl.sessions = false; /* the run's sessions must start from their first sequence */
        if (fill.concurrency < 64) {
            fill.concurrency = 64;
            fill.channels = fill.channels > 64 ? 64 : fill.channels;
        }
        int rc = pbench_engine_run(&fill, res);
        if (rc != 0 || res->errors > 0) {
            fprintf(stderr, "platoon-bench: writing the pool before reading: %s\n",
                    rc != 0 ? pt_strerror(rc) : res->first_error);
            goto cleanup;
        }
    }
    int rc = pbench_engine_run(c, res);
    if (rc != 0) {
        fprintf(stderr, "platoon-bench: %s\n", pt_strerror(rc));
        goto cleanup;
    }
    if (f.json) {
        rc = pbench_report_json(c, res, stdout);
    } else {
        pbench_report_text(c, res, stdout);
    }
    if (rc != 0) {
        fprintf(stderr, "platoon-bench: writing the report: %s\n", pt_strerror(rc));
        goto cleanup;
    }
    status = 0;
    if (res->errors > 0) {
        fprintf(stderr, "platoon-bench: %llu calls failed (first: %s)\n",
                (unsigned long long)res->errors, res->first_error);
        status = 3;
    }
    if (res->watch.ended_early > 0) {
        fprintf(stderr, "platoon-bench: %llu of %u watch streams ended early (first: %s)\n",
                (unsigned long long)res->watch.ended_early, c->watchers, res->watch.first_error);
        status = 3;
    }
    if (res->interrupted) {
        status = 130;
    }
cleanup:
    grpc_shutdown_blocking();
    pbench_creds_free();
    free(res);
    return status;
}
