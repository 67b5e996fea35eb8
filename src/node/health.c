/*
 * The standard gRPC health checking service, grpc.health.v1.Health (proto/grpc/health/v1),
 * served by every node on its gRPC port for load balancers and orchestrators.
 *
 * Check answers SERVING while the node is ready, exactly as /readyz and pnode_ready define it
 * (monitor.h), and NOT_SERVING otherwise, for the service "" (the server as a whole) and for
 * every service the node serves methods of ("platoon.v1.Cluster", and the application's, such
 * as "platoon.v1.Platoon"); another name gets the call status NOT_FOUND, as the protocol asks.
 * It answers from the readiness the loop published at its last tick, so it costs the loop no
 * more than a lookup. Watch is a server stream (node.h, "server streams"): the status at once,
 * then a message each time it changes, checked at the end of every turn of the loop; for a
 * service this node does not serve it sends SERVICE_UNKNOWN and keeps the stream open, as the
 * protocol asks. Its messages are a few bytes and only a change is sent, so a watcher that does
 * not read costs nothing more than the transport's bounds allow.
 *
 * Any authenticated caller may ask (every certificate role includes reading); the node's own
 * troubles (a failed state machine, removal from the cluster) are reported as NOT_SERVING
 * rather than as errors, which is what a health checker needs to see.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "node/node_internal.h"

#define M_CHECK "/grpc.health.v1.Health/Check"
#define M_WATCH "/grpc.health.v1.Health/Watch"

size_t pnode__health_names(const char **out, size_t cap)
{
    size_t n = 0;
    if (n < cap) {
        out[n++] = M_CHECK;
    }
    if (n < cap) {
        out[n++] = M_WATCH;
    }
    return n;
}

void pnode__health_register(pnode *n)
{
    pnet_transport_register_method(n->net, M_CHECK, NULL);
    pnet_transport_register_method(n->net, M_WATCH, NULL);
}

bool pnode__health_handles(const char *method)
{
    return strcmp(method, M_CHECK) == 0 || strcmp(method, M_WATCH) == 0;
}

/* Whether this node serves methods of service @name ("platoon.v1.Platoon"). */
static bool serves(pnode *n, const char *name)
{
    if (name[0] == '\0' || strcmp(name, "platoon.v1.Cluster") == 0) {
        return true;
    }
    size_t len = strlen(name);
    for (size_t i = 0; i < n->opts.n_methods; i++) {
        const char *m = n->opts.methods[i].name;
        if (m[0] == '/' && strncmp(m + 1, name, len) == 0 && m[1 + len] == '/') {
            return true;
        }
    }
    return false;
}

/* A Watch: whether its service is one this node serves, and the last status sent (-1: none). */
typedef struct health_watch {
    bool known;
    int sent;
} health_watch;

static int status_now(pnode *n, bool known)
{
    if (!known) {
        return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
    }
    return pnode_ready(n, NULL, 0)
               ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
               : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
}

static void watch_pump(pnode *n, void *ctx, pnode_request *req)
{
    health_watch *w = ctx;
    int now = status_now(n, w->known);
    if (now == w->sent) {
        return;
    }
    Grpc__Health__V1__HealthCheckResponse out = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    out.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)now;
    int rc = pnode_stream_send(req, &out.base);
    if (rc == 0) {
        w->sent = now;
    } else if (rc == PT_ECANCELED) {
        free(w);
        pnode_fail(req, PNODE_RESOURCE_EXHAUSTED, "the health watch was not read");
    }
    /* PT_ENOMEM: the next turn tries again. */
}

static void watch_closed(pnode *n, void *ctx, pnode_request *req, int code)
{
    (void)n;
    free(ctx);
    pnode_fail(req, code, code == PNODE_UNAVAILABLE ? "the node is shutting down" : "cancelled");
}

static const pnode_stream_ops watch_ops = {.pump = watch_pump, .closed = watch_closed};

void pnode__health_call(pnode *n, pnode_request *req)
{
    Grpc__Health__V1__HealthCheckRequest *in =
        grpc__health__v1__health_check_request__unpack(NULL, req->len, req->data);
    if (in == NULL) {
        pnode_fail(req, PNODE_INVALID_ARGUMENT, "malformed HealthCheckRequest");
        return;
    }
    bool known = serves(n, in->service != NULL ? in->service : "");
    grpc__health__v1__health_check_request__free_unpacked(in, NULL);
    if (strcmp(req->method, M_WATCH) == 0) {
        health_watch *w = malloc(sizeof(*w));
        if (w == NULL) {
            pnode_fail(req, PNODE_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        *w = (health_watch){.known = known, .sent = -1};
        int rc = pnode_stream_open(n, req, &watch_ops, w);
        if (rc != 0) {
            free(w);
            pnode_fail(req, rc == PT_ESHUTDOWN ? PNODE_UNAVAILABLE : PNODE_INTERNAL,
                       rc == PT_ESHUTDOWN ? "the node is shutting down" : pt_strerror(rc));
            return;
        }
        watch_pump(n, w, req); /* the current status at once */
        return;
    }
    if (!known) {
        pnode_fail(req, PNODE_NOT_FOUND, "unknown service");
        return;
    }
    Grpc__Health__V1__HealthCheckResponse out = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    out.status = pnode_ready(n, NULL, 0)
                     ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                     : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    pnode_reply_message(req, &out.base);
}
