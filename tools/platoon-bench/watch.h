/*
 * Watchers (--watchers N): N WatchPlatoon streams on one node, driven from the engine's
 * completion queue by the engine's thread (no thread per stream). Each stream always has one
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
    uint64_t codes[PBENCH_WATCH_CODES]; /* their status */
    char first_error[160];
    pbench_hist late;  /* delay of events received after the write's answer */
    pbench_hist early; /* lead of events received before it */
} pbench_watch_result;

typedef struct pbench_watch pbench_watch;

/* Creates the watchers' state for @n streams to @target over @channels connections; their
 * completions go to @cq. NULL when out of memory. */
pbench_watch *pbench_watch_create(uint32_t n, const char *target, uint32_t channels,
                                  grpc_completion_queue *cq, pbench_watch_result *res);
/* Opens the channels and starts every stream. 0, PT_EIO or PT_ENOMEM. */
int pbench_watch_start(pbench_watch *w);
/* Whether @tag is one of the watchers'. */
bool pbench_watch_owns(const pbench_watch *w, const void *tag);
/* Handles the completion of @tag at @now; events count when @recording. */
void pbench_watch_complete(pbench_watch *w, void *tag, bool success, uint64_t now, bool recording);
/* A write with @revision was acknowledged at @now. */
void pbench_watch_ack(pbench_watch *w, uint64_t revision, uint64_t now);
/* Settles early events whose answer has come (or never will); call now and then. */
void pbench_watch_settle(pbench_watch *w, uint64_t now, bool all);
/* Cancels every stream (the end of the run: not counted as ended early). */
void pbench_watch_cancel(pbench_watch *w);
/* Operations outstanding on the queue. */
uint32_t pbench_watch_pending(const pbench_watch *w);
/* Closes the channels and frees @w (after its operations have completed). */
void pbench_watch_destroy(pbench_watch *w);

#endif
