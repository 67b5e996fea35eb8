/*
 * Watchers (--watchers N): N WatchPlatoon streams on one node, driven from one completion queue
 * by one thread of their own (not a thread per stream). Each stream always has one
 * receive outstanding, so it reads every message as soon as gRPC has it.
 *
 * Delivery delay. The engine tells the watchers the revision of every acknowledged write and
 * the time its answer arrived (pbench_watch_ack); a change event with that revision received by
 * a watcher at time t has the delay t - ack. An event may arrive before the write's answer
 * (both leave the same node): its delay is negative. Delays of events after the answer go to
 * one histogram and the lead of events before it to another; the report combines the two into
 * signed percentiles and also gives the count of early events.
 */
#ifndef PBENCH_WATCH_H
#define PBENCH_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include <grpc/grpc.h>

#include "hist.h"

#define PBENCH_WATCH_CODES 17

typedef struct pbench_watch_result {
    uint32_t watchers;    /* streams asked for */
    uint32_t channels;    /* connections they were spread over */
    uint64_t messages;    /* change messages received in the recording window */
    uint64_t events;      /* change events in them */
    uint64_t initial;     /* events of initial states (not timed; any time) */
    uint64_t matched;     /* events whose write's answer the bench saw: timed */
    uint64_t unmatched;   /* events of writes whose answer was not seen (or forgotten) */
    uint64_t ended_early; /* streams that ended before the run did */
    uint32_t filter_pool; /* >0: stream i watched vehicle 1 + filter_offset + i % filter_pool */
    uint32_t filter_offset;
    /* CPU time of the watchers' thread over the recording window (receiving, decoding and
     * timing the events: what reading them costs a client, one core's share). */
    double thread_cpu_s;
    uint64_t codes[PBENCH_WATCH_CODES]; /* their status */
    char first_error[160];
    pbench_hist late;  /* delay of events received after the write's answer */
    pbench_hist early; /* lead of events received before it */
} pbench_watch_result;

typedef struct pbench_watch pbench_watch;

/* Creates the watchers' state for @n streams to @target over @channels connections, with their
 * own completion queue. NULL when out of memory. */
pbench_watch *pbench_watch_create(uint32_t n, const char *target, uint32_t channels,
                                  pbench_watch_result *res);
/* Before pbench_watch_start: stream i watches vehicle 1 + @offset + i % @pool only (a
 * WatchPlatoon ids filter), as a vehicle watching the one ahead would (@offset 0), or a
 * vehicle no write touches (@offset the workload's pool); @pool 0 (the default): every vehicle. */
void pbench_watch_filter(pbench_watch *w, uint32_t pool, uint32_t offset);
/* Opens the channels, starts every stream and the thread that drives them; events received in
 * [@record_start_ns, @record_end_ns) (pbench_now_ns) are recorded. 0, PT_EIO or PT_ENOMEM; on
 * failure pbench_watch_destroy still has to be called. */
int pbench_watch_start(pbench_watch *w, uint64_t record_start_ns, uint64_t record_end_ns);
/* A write with @revision was acknowledged at @now (from the engine's thread). */
void pbench_watch_ack(pbench_watch *w, uint64_t revision, uint64_t now);
/* Cancels every stream (the end of the run: not counted as ended early), waits for the thread
 * to finish; @w's result is complete afterwards. */
void pbench_watch_stop(pbench_watch *w);
/* Stops if needed, closes the channels and frees @w. */
void pbench_watch_destroy(pbench_watch *w);

#endif
