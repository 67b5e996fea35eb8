/*
 * WatchPlatoon (proto/platoon/v1/platoon.proto): the watchers of one node and what they read.
 *
 * How a change reaches a watcher. The state machine records each change in the history
 * (history.h) as it applies it: one copy into a ring, nothing else on the apply path but a
 * look-up in the watchers' index (watch_index.h), which notes the change with each watcher
 * whose filter names its vehicle and wakes those watchers' streams, and wakes every unfiltered
 * watcher once. The runtime pumps only woken streams (platoon/node.h, streams pumped on demand),
 * at the end of the turn: a watcher encodes the changes from its position in the history up
 * to the newest, those its filter matches (a filtered one goes straight to the changes the index
 * noted), a thousand per message, while its messages not yet taken by its reader stay under the
 * buffer bound; the transport sends them in order. A watcher that stops at the bound asks to
 * be woken when its reader has taken enough. So the loop never waits for a reader, a watcher
 * that has nothing to send costs nothing at all, the work per change is the watchers it reaches,
 * and what one holds is bounded: its position, at most PVEH_WINDEX_PEND_MAX noted changes, and
 * at most buffer_bytes of messages.
 *
 * A full state (a new watch, or after a snapshot was installed) is read from a frozen view of
 * the vehicles (vehicle_map.h: copy-on-write, one directory of pointers), taken at the applied
 * index R with the watcher's position set to the next change recorded: the view holds every
 * change up to R and the history every one after it, so nothing is left out or repeated. It
 * is sent under the same buffer bound, page by page, while the changes after R wait in the
 * history.
 *
 * A watcher that falls behind — more than max_lag changes not yet encoded, or changes it still
 * needs evicted from the history — is ended with RESOURCE_EXHAUSTED, naming the revision to
 * resume from: a slow reader costs the node neither memory nor time.
 *
 * Loop thread only, except the counters (atomics, read by pveh_watch_counters_get).
 */
#ifndef PLATOON_VEHICLE_WATCH_H
#define PLATOON_VEHICLE_WATCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platoon/history.h"
#include "platoon/node.h"
#include "platoon/service.h"
#include "platoon/watch_index.h"

/* Vehicles or changes in one message, and ids in one filter. */
#define PVEH_WATCH_BATCH   1000u
#define PVEH_WATCH_IDS_MAX 1000u

struct pveh_watcher;
struct pveh_watch_scratch;

/* Changes [from, to) of the history's @epoch, packed once for every unfiltered watcher at that
 * position: a thousand such watchers share one encoding of each batch (watch.c). */
#define PVEH_WATCH_SHARED 4
typedef struct pveh_watch_shared {
    uint64_t epoch, from, to;
    uint64_t last_revision;
    size_t n_events;
    pnode_message *msg; /* NULL: unused */
} pveh_watch_shared;
struct pveh_sm;

typedef struct pveh_watch_hub {
    pveh_watch_options opts;
    pveh_history history;
    struct pveh_watcher *watchers; /* doubly linked */
    size_t n_watchers;
    struct pveh_watch_scratch *scratch;
    /* Which watchers each change reaches, and the revision of the newest change recorded. */
    pveh_windex index;
    uint64_t last_revision;
    pveh_watch_shared shared[PVEH_WATCH_SHARED];
    size_t shared_next; /* the slot the next batch replaces */
    /* Counters (pveh_watch_counters). */
    atomic_uint_fast64_t open, started, dropped_slow, resent, events_sent, messages_sent;
    atomic_uint_fast64_t changes, oldest;
} pveh_watch_hub;

void pveh__watch_init(pveh_watch_hub *hub);
/* Ends nothing: the runtime closes every stream before the state machine is freed. */
void pveh__watch_free(pveh_watch_hub *hub);

/* Records a change as the state machine applies it. */
void pveh__watch_record(pveh_watch_hub *hub, const pveh_change *c);
/* The state was replaced by a snapshot at @applied: the history starts again. */
void pveh__watch_reset(pveh_watch_hub *hub, uint64_t applied);

/* The WatchPlatoon handler (app: the pveh_sm). */
void pveh__watch_handle(pnode *node, void *app, pnode_request *req);

/* ----- the query a watch starts with (built by the handler, run by the state machine) */

/* Builds it (malloc'd, owned by the caller). Returns 0 or PT_ENOMEM. */
int pveh__watch_query(uint8_t **out, size_t *out_len);
/* Whether @query is one. */
bool pveh__watch_query_is(const uint8_t *query, size_t len);
/* Runs it: nothing to compute; its point is when it runs (after ReadIndex). The result is
 * empty. Returns 0 or PT_EMALFORMED. */
int pveh__watch_query_run(const uint8_t *query, size_t len, uint8_t **result, size_t *result_len);

#endif
