/*
 * platoon/monitor.h — what a node tells its operators' monitoring: whether it is ready,
 * Prometheus metrics, and an HTTP endpoint that serves both (docs/operations.md, "Health" and
 * "Metrics").
 *
 * Nothing here runs on the node's loop: readiness and metrics are read from what the loop
 * publishes at every tick and from counters updated with atomics, so a scrape, however slow,
 * never holds the node up.
 */
#ifndef PLATOON_MONITOR_H
#define PLATOON_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platoon/error.h"
#include "platoon/node.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Whether @node is ready to serve clients, as of its last tick: it knows a leader, has heard
 * from it within an election timeout (a leader counts itself), and its state machine has
 * applied every entry up to the commit index the node knew one tick earlier (so a node that is
 * only applying its latest batch stays ready, and one replaying a backlog is not). A node
 * whose state machine failed, that was removed from the cluster, or that is stopping is not
 * ready. When not ready and @why is not NULL, @why receives one line saying why (e.g.
 * "no leader known", "leader 2 not heard for 812 ms", "applying: applied 10 of committed 15").
 * Any thread; never fails.
 */
PT_API bool pnode_ready(pnode *node, char *why, size_t why_cap);

/*
 * Renders the node's metrics in the Prometheus text exposition format 0.0.4 into *out
 * (malloc'd, NUL-terminated, owned by the caller; *len without the NUL). Any thread.
 * Errors: PT_EINVAL (NULL argument), PT_ENOMEM.
 */
PT_API int pnode_metrics_text(pnode *node, char **out, size_t *len);

/* The kinds of an application's metric (pnode_metrics_add). */
enum pnode_metric_type {
    PNODE_METRIC_GAUGE = 1,   /* a value that goes up and down (sessions, watchers) */
    PNODE_METRIC_COUNTER = 2, /* a count that only grows while the process runs (drops) */
};

/* Returns the current value of an application's metric; see pnode_metrics_add. */
typedef uint64_t (*pnode_metric_fn)(void *ctx);

/*
 * Adds a metric of the application to the node's metrics: family @name (a Prometheus metric
 * name, by convention "platoon_..."; a counter's ends in "_total"; copied) of @type (enum
 * pnode_metric_type) with @help (copied), one sample without labels. @fn(@ctx) is called on
 * the node's loop thread at every tick, where the state machine may be read safely; a scrape
 * shows the latest value. @ctx must stay valid until pnode_stop.
 * Errors: PT_EINVAL (NULL or empty name, a name longer than 95 bytes or with characters
 * outside [a-zA-Z0-9_:], a counter's name without "_total", an unknown @type, NULL @fn),
 * PT_ENOMEM (more than 16 metrics).
 */
PT_API int pnode_metrics_add(pnode *node, const char *name, int type, const char *help,
                             pnode_metric_fn fn, void *ctx);

/*
 * Serves the node's health and metrics, and the live view of the platoon, over HTTP at @address
 * ("HOST:PORT"; port 0 picks a free port) on threads of its own, until pnode_stop:
 *   GET /healthz      200 "ok" while the process is up;
 *   GET /readyz       200 "ok" when pnode_ready, else 503 with the reason as the body;
 *   GET /metrics      200 and pnode_metrics_text;
 *   GET /             the live view (a page embedded in the library), fed by
 *   GET /api/events   Server-Sent Events of the platoon and its changes, and
 *   GET /api/cluster  this node's view of the cluster (docs/operations.md, "The live view").
 * The live view watches the node through its own gRPC service (WatchPlatoon), so it needs the
 * node to serve the platoon API (platoon/service.h).
 * When the node runs with TLS the endpoint speaks HTTPS with the node's certificate and key,
 * and /metrics and the live view require a client certificate of the cluster's CA, not
 * revoked, with at least the reader role (as gRPC callers); /healthz and /readyz need none.
 * pnode_reload_tls applies to the endpoint too (its certificate for new connections, the CA
 * and revocation list for every request). At most one endpoint per node. On failure @err (if
 * not NULL) receives one line naming the address and the cause ("the address is already in
 * use").
 * Errors: PT_EINVAL (not HOST:PORT, or an endpoint already serves), PT_EIO (cannot resolve or
 * listen), PT_ENOMEM.
 */
PT_API int pnode_http_start(pnode *node, const char *address, char *err, size_t err_cap);

/* The port the HTTP endpoint listens on (useful with port 0), or 0 without one. */
PT_API int pnode_http_port(pnode *node);

#ifdef __cplusplus
}
#endif
#endif
