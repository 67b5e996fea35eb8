/*
 * platoon/service.h — the platoon.v1.Platoon gRPC service (proto/platoon/v1/platoon.proto) on
 * top of the node runtime and the vehicle state machine.
 *
 * Every node answers every request: mutations are validated here (INVALID_ARGUMENT names the
 * field), then proposed on the leader or forwarded to it; linearizable reads go through
 * ReadIndex on any node; stale reads are answered from the local replica.
 */
#ifndef PLATOON_SERVICE_H
#define PLATOON_SERVICE_H

#include <stddef.h>

#include "platoon/node.h"
#include "platoon/vehicle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The methods of platoon.v1.Platoon, to put in pnode_options.methods. @sm is the node's
 * state machine (the handlers do not change its replicated state: it is driven by the runtime;
 * they read the limits of its options to stamp them into the commands they propose, and
 * WatchPlatoon keeps its watchers beside it).
 * Fills out[0..7) and returns 7 with @cap >= 7; with @cap == 6 (callers from before
 * WatchPlatoon) fills the six unary methods and returns 6; returns 0 if @cap < 6. */
PT_API size_t pveh_service_methods(pveh_sm *sm, pnode_method *out, size_t cap);

/* ----- WatchPlatoon (proto/platoon/v1/platoon.proto; docs/operations.md, "Watching") ----- */

/* Bounds of the watchers of one node. They are local to the node (not replicated). */
typedef struct pveh_watch_options {
    /* Changes kept in memory so that a watch can resume (from_revision): at most
     * PVEH_WATCH_HISTORY_MAX; 0 keeps none (a watch can then resume only from the newest
     * revision). Default PVEH_WATCH_HISTORY_DEFAULT. The ring grows as changes come, up to it:
     * about 64 bytes per change. */
    uint32_t history;
    /* Changes a watcher may be behind (applied here, not yet sent to it) before it is ended
     * with RESOURCE_EXHAUSTED; >= 1. Default PVEH_WATCH_MAX_LAG_DEFAULT. A watcher also ends
     * when changes it still needs leave the history. */
    uint32_t max_lag;
    /* Bytes of messages a watcher's reader may leave untaken: the node sends no more to it
     * beyond them (its changes wait in the history); >= 64 KiB. Default
     * PVEH_WATCH_BUFFER_BYTES_DEFAULT. */
    size_t buffer_bytes;
    /* Watches open at once on the node; one more is refused with RESOURCE_EXHAUSTED; >= 1.
     * Default PVEH_WATCH_MAX_WATCHERS_DEFAULT. */
    uint32_t max_watchers;
} pveh_watch_options;

#define PVEH_WATCH_HISTORY_DEFAULT      100000u
#define PVEH_WATCH_HISTORY_MAX          10000000u
#define PVEH_WATCH_MAX_LAG_DEFAULT      10000u
#define PVEH_WATCH_BUFFER_BYTES_MIN     ((size_t)64 * 1024)
#define PVEH_WATCH_BUFFER_BYTES_DEFAULT ((size_t)1024 * 1024)
#define PVEH_WATCH_MAX_WATCHERS_DEFAULT 1024u

/* Fills @opts with the defaults above. */
PT_API void pveh_watch_options_init(pveh_watch_options *opts);

/* Sets the watch bounds of @sm (copied): before the node starts, or on the loop thread. A
 * smaller history drops its oldest changes at once; watchers already open keep running under
 * the new bounds. Returns 0 or PT_EINVAL (a bound out of its range; nothing changes). */
PT_API int pveh_watch_configure(pveh_sm *sm, const pveh_watch_options *opts);

/* What the watchers of a node did since it started, for metrics. */
typedef struct pveh_watch_counters {
    uint64_t watchers_open;         /* watches open now */
    uint64_t watchers_started;      /* watches that started streaming (initial state or resumed) */
    uint64_t watchers_dropped_slow; /* ended with RESOURCE_EXHAUSTED for falling behind */
    uint64_t watchers_resent;       /* full states sent again after a snapshot was installed */
    uint64_t events_sent;           /* events (changes and vehicles of full states) sent */
    uint64_t messages_sent;         /* WatchPlatoonResponse messages sent */
    uint64_t history_changes;       /* changes recorded in the history */
    uint64_t history_oldest;        /* the oldest revision a watch can resume from on this node */
} pveh_watch_counters;

/* Copies the counters of @sm's watchers into @out. Any thread; never fails. */
PT_API void pveh_watch_counters_get(pveh_sm *sm, pveh_watch_counters *out);

#ifdef __cplusplus
}
#endif
#endif
