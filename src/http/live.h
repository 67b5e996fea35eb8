/*
 * The live view's feed (tools/platoond/web/live.html, docs/operations.md "The live view").
 *
 * Where its data comes from: the node's own public API. A feed thread holds one WatchPlatoon
 * stream open to this node over gRPC, with the node's own certificate (the same call any
 * client makes; STALE consistency, so that a node cut off from the leader still shows what it
 * has), and keeps the platoon it describes plus a ring of the most recent changes, each as a
 * ready Server-Sent Event. When the stream ends it watches again, resuming after the last
 * revision it holds (or from a full state when the node cannot resume it).
 *
 * Each browser is one long response: the platoon at one revision ("state"), then every change
 * after it from the ring ("put", "delete"), and this node's view of the cluster ("cluster")
 * twice a second. A browser that falls further behind than the ring is sent the full state
 * again, so a slow viewer costs at most one ring and never holds up the node or the others.
 * Reconnecting with Last-Event-ID resumes from the ring when it still holds what follows.
 */
#ifndef PLATOON_HTTP_LIVE_H
#define PLATOON_HTTP_LIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "net/transport.h"
#include "platoon/node.h"

typedef struct phttp_live phttp_live;

/* Browsers served at once; more get 503. */
#define PHTTP_LIVE_VIEWERS_MAX 32
/* Changes kept for browsers that lag or reconnect. */
#define PHTTP_LIVE_RING        4096u
/* Vehicles in one "state" event: a drawing of more would show nothing more. */
#define PHTTP_LIVE_STATE_MAX   10000u

/*
 * Starts the feed of @node, which serves gRPC on @address as member @id of @net's cluster
 * (a wildcard host is dialled on loopback). Returns 0, or PT_ENOMEM / PT_EIO with a line in
 * @err.
 */
int phttp__live_start(pnode *node, pnet_transport *net, uint64_t id, const char *address,
                      phttp_live **out, char *err, size_t cap);

/* Ends every browser's response at its next wake-up (within half a second) and the watch;
 * returns at once. NULL is ok. */
void phttp__live_quit(phttp_live *l);

/* Quits, waits for the feed thread and frees @l, once no browser's response is left (the
 * daemon that ran them has stopped). NULL is ok. */
void phttp__live_stop(phttp_live *l);

/*
 * A response streaming the feed to one browser, or NULL with *@status set (503: too many
 * viewers; 500: no memory). @last_event_id is the browser's Last-Event-ID header (may be
 * NULL).
 */
struct MHD_Response *phttp__live_events(phttp_live *l, const char *last_event_id,
                                        unsigned int *status);

/* This node's view of the cluster as the JSON object of the "cluster" event (malloc'd,
 * NUL-terminated), or NULL for want of memory. */
char *phttp__live_cluster_json(pnode *node, size_t *len);

#endif
