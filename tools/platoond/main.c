/*
 * platoond: one node of a Platoon cluster. Parses its flags, starts the node runtime with the
 * vehicle state machine and the platoon.v1 services, reloads its TLS material on SIGHUP, and
 * stops gracefully (exit 0) on SIGTERM or SIGINT. Everything else lives in the library.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "flags.h"
#include "net/grpc_sync.h"
#include "platoon/log.h"
#include "platoon/monitor.h"
#include "platoon/node.h"
#include "platoon/service.h"
#include "platoon/vehicle.h"

/* The state machine's gauges for /metrics, sampled on the node's loop thread (monitor.h),
 * where the state machine may be read. */
static uint64_t sessions_gauge(void *ctx)
{
    return pveh_sm_session_count(ctx);
}

static uint64_t vehicles_gauge(void *ctx)
{
    return pveh_sm_vehicle_count(ctx);
}

/* WatchPlatoon's figures (pveh_watch_counters), one function each. */
#define WATCH_FIGURE(fn, field)           \
    static uint64_t fn(void *ctx)         \
    {                                     \
        pveh_watch_counters c;            \
        pveh_watch_counters_get(ctx, &c); \
        return c.field;                   \
    }
WATCH_FIGURE(watchers_open, watchers_open)
WATCH_FIGURE(watchers_dropped, watchers_dropped_slow)
WATCH_FIGURE(watch_events, events_sent)
WATCH_FIGURE(watch_oldest, history_oldest)

static const struct {
    const char *name;
    int type;
    const char *help;
    pnode_metric_fn fn;
} watch_metrics[] = {
    {"platoon_watchers", PNODE_METRIC_GAUGE, "WatchPlatoon streams open on this node.",
     watchers_open},
    {"platoon_watchers_dropped_total", PNODE_METRIC_COUNTER,
     "Watches ended with RESOURCE_EXHAUSTED because their client fell behind.", watchers_dropped},
    {"platoon_watch_events_sent_total", PNODE_METRIC_COUNTER,
     "Watch events (changes, and vehicles of full states) sent to watchers.", watch_events},
    {"platoon_watch_oldest_revision", PNODE_METRIC_GAUGE,
     "The oldest revision a watch can resume from on this node.", watch_oldest},
};

int main(int argc, char **argv)
{
    /* gRPC's threads may still be reconnecting (and so making TLS handshakes) when main()
     * returns: OpenSSL must not free itself at exit under them (a crash on the way out). Its
     * state stays reachable from globals, so leak checkers do not count it. */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
    pnet_grpc_sync_fast(); /* before gRPC starts its threads */
    platoond_flags f;
    char err[512] = "";
    if (platoond_parse(argc, argv, &f, err, sizeof(err)) != 0) {
        fprintf(stderr, "platoond: %s\n", err);
        return 2;
    }
    if (f.help) {
        fputs(platoond_usage, stdout);
        return 0;
    }
    if (f.version) {
        puts("platoond 0.2.0");
        return 0;
    }
    pt_log_set_sink(pt_log_stderr_sink, NULL, f.log_level);

    /* Signals are taken synchronously by this thread; every other thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* A file size limit (ulimit -f) then makes a write fail with EFBIG, reported as a full
     * disk and retried, instead of killing the server. */
    signal(SIGXFSZ, SIG_IGN);

    pveh_sm *sm = NULL;
    int rc = pveh_sm_new(&f.sm, &sm);
    if (rc != 0) {
        fprintf(stderr, "platoond: %s\n", pt_strerror(rc));
        return 1;
    }
    if (pveh_watch_configure(sm, &f.watch) != 0) {
        fprintf(stderr, "platoond: the --watch-* bounds do not fit together\n");
        pveh_sm_free(sm);
        return 2;
    }
    pveh_sm_interface(sm, &f.node.sm);
    f.node.n_methods = pveh_service_methods(sm, f.node.methods, PNODE_MAX_METHODS);

    pnode *node = NULL;
    rc = pnode_start(&f.node, &node, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "platoond: %s\n", err[0] ? err : pt_strerror(rc));
        pveh_sm_free(sm);
        return 1;
    }
    pnode_metrics_add(node, "platoon_sessions", PNODE_METRIC_GAUGE,
                      "Client sessions (exactly-once) in the replicated session table.",
                      sessions_gauge, sm);
    pnode_metrics_add(node, "platoon_vehicles", PNODE_METRIC_GAUGE,
                      "Vehicles in the replicated platoon.", vehicles_gauge, sm);
    for (size_t i = 0; i < sizeof(watch_metrics) / sizeof(watch_metrics[0]); i++) {
        pnode_metrics_add(node, watch_metrics[i].name, watch_metrics[i].type, watch_metrics[i].help,
                          watch_metrics[i].fn, sm);
    }
    if (f.http != NULL && (rc = pnode_http_start(node, f.http, err, sizeof(err))) != 0) {
        fprintf(stderr, "platoond: --http: %s\n", err);
        pnode_stop(node);
        pveh_sm_free(sm);
        return 1;
    }

    int status = 0;
    for (;;) {
        struct timespec wait = {1, 0};
        int sig = sigtimedwait(&sigs, NULL, &wait);
        if (sig == SIGTERM || sig == SIGINT) {
            break;
        }
        if (sig == SIGHUP) {
            /* Rotation and revocation without a restart (docs/security.md). A bad file keeps
             * the material in use and says why. */
            if (pnode_reload_tls(node, err, sizeof(err)) != 0) {
                fprintf(stderr, "platoond: SIGHUP: TLS material not reloaded: %s\n", err);
            }
        }
        pnode_status st;
        pnode_status_get(node, &st);
        if (st.failed) {
            fprintf(stderr, "platoond: the state machine failed; stopping (see the log)\n");
            status = 1;
            break;
        }
    }
    pnode_stop(node);
    pveh_sm_free(sm);
    return status;
}
