/*
 * The load engine: a fixed number of calls outstanding (the concurrency) over a few gRPC
 * channels, all completing on one completion queue driven by one thread. Each completed call is
 * recorded and at once replaced by the next one of its slot, so the offered load is exactly
 * "concurrency requests in flight", never a thread per client.
 */
#ifndef PBENCH_ENGINE_H
#define PBENCH_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include <grpc/grpc.h>

#include "hist.h"
#include "watch.h"
#include "workload.h"

#define PBENCH_MAX_ENDPOINTS 16
#define PBENCH_MAX_CODES     17 /* gRPC status codes 0..16 */

typedef struct pbench_engine_cfg {
    pbench_workload_cfg wl;
    const char *endpoints[PBENCH_MAX_ENDPOINTS]; /* "host:port" each channel dials */
    uint32_t n_endpoints;
    uint32_t channels;    /* spread round-robin over the endpoints */
    uint32_t concurrency; /* calls outstanding */
    double warmup_s;      /* not recorded */
    double duration_s;    /* recorded */
    uint32_t timeout_ms;  /* each call's deadline */
    bool progress;        /* a line on stderr each second */
    uint64_t seed;
    uint32_t watchers;        /* WatchPlatoon streams open during the run (watch.h) */
    const char *watch_target; /* "host:port" they go to */
    uint32_t watch_channels;  /* connections they are spread over */
    bool watch_one_vehicle;   /* each watcher watches one vehicle of the pool (ids filter) */
    bool watch_idle;          /* each watcher watches one vehicle the writes never touch */
} pbench_engine_cfg;

typedef struct pbench_result {
    double elapsed_s; /* of the recorded window */
    uint64_t ok[PBENCH_KINDS];
    uint64_t errors;
    uint64_t codes[PBENCH_MAX_CODES]; /* failed calls by gRPC status */
    char first_error[160];
    pbench_hist lat[PBENCH_KINDS]; /* latency of successful calls, by kind */
    bool interrupted;              /* stopped early by SIGINT/SIGTERM */
    pbench_watch_result watch;     /* with watchers */
} pbench_result;

/* Set from a signal handler to stop the run early; the engine drains what is in flight. */
extern volatile int pbench_stop_requested;

/*
 * Runs @cfg and fills @res (allocated by the caller: it holds histograms). With workload
 * PBENCH_WL_FILL it writes the pool once and returns, ignoring warm-up and duration.
 * The caller has called grpc_init(). Returns 0, PT_EIO (a channel could not be created) or
 * PT_ENOMEM; failed calls are counted in @res, not returned.
 */
int pbench_engine_run(const pbench_engine_cfg *cfg, pbench_result *res);

/* A channel to @target with the engine's channel arguments, on its own connection; NULL when
 * it cannot be created. */
grpc_channel *pbench_channel_open(const char *target);

/* Monotonic time in ns. */
uint64_t pbench_now_ns(void);

#endif
