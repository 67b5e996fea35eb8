/*
 * The transport's metrics: calls answered by method and gRPC status code, and the peer
 * protocol's message counters. Counting is a relaxed atomic increment on the thread that
 * answers; rendering reads the counters from a scrape thread.
 */
#include <inttypes.h>
#include <stdio.h>

#include "common/metrics.h"
#include "net/transport_internal.h"

/* The canonical names of the status codes, as gRPC's documentation spells them. */
static const char *const code_names[PNET_N_CODES] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

void pnet__count_call(struct pnet_method *m, int code)
{
    if (m == NULL) {
        return;
    }
    if (code < 0 || code >= PNET_N_CODES) {
        code = GRPC_STATUS_UNKNOWN;
    }
    atomic_fetch_add_explicit(&m->handled[code], 1, memory_order_relaxed);
}

void pnet_transport_metrics(pnet_transport *t, pt_prom *p)
{
    static const char *const name = "platoon_grpc_requests_total";
    pt__prom_family(p, name, PT_PROM_COUNTER,
                    "Calls of the node's gRPC methods (public API, Cluster, Health) answered, by "
                    "full method name and status code; method=\"unknown\" counts calls of "
                    "methods the node does not serve. Peer replication streams are not "
                    "counted here.");
    if (t == NULL) {
        return;
    }
    /* The method list only grows, under t->mu; the counters need no lock. Codes a method
     * never answered are left out, as usual for labelled counters. */
    pthread_mutex_lock(&t->mu);
    for (struct pnet_method *m = t->methods; m != NULL; m = m->next) {
        for (int c = 0; c < PNET_N_CODES; c++) {
            uint64_t v = atomic_load_explicit(&m->handled[c], memory_order_relaxed);
            if (v != 0 || c == GRPC_STATUS_OK) {
                const char *labels[] = {"method", m->name, "code", code_names[c]};
                pt__prom_sample_u64(p, name, labels, 2, v);
            }
        }
    }
    pthread_mutex_unlock(&t->mu);
    pnet_transport_stats st;
    pnet_transport_stats_get(t, &st);
    const char *unknown[] = {"method", "unknown", "code", "UNIMPLEMENTED"};
    pt__prom_sample_u64(p, name, unknown, 2,
                        atomic_load_explicit(&t->unknown_calls, memory_order_relaxed));

    pt__prom_family(p, "platoon_peer_messages_sent_total", PT_PROM_COUNTER,
                    "Raft messages written to peers' streams.");
    pt__prom_sample_u64(p, "platoon_peer_messages_sent_total", NULL, 0, st.msgs_sent);
    pt__prom_family(p, "platoon_peer_messages_received_total", PT_PROM_COUNTER,
                    "Raft messages received from peers.");
    pt__prom_sample_u64(p, "platoon_peer_messages_received_total", NULL, 0, st.msgs_received);
    pt__prom_family(p, "platoon_peer_messages_dropped_total", PT_PROM_COUNTER,
                    "Raft messages to peers dropped: reason=queue_full (the oldest of a full "
                    "queue) or reason=stream_failed (in a stream message that failed).");
    const char *full[] = {"reason", "queue_full"};
    const char *lost[] = {"reason", "stream_failed"};
    pt__prom_sample_u64(p, "platoon_peer_messages_dropped_total", full, 1, st.msgs_dropped_full);
    pt__prom_sample_u64(p, "platoon_peer_messages_dropped_total", lost, 1, st.msgs_dropped_lost);
    pt__prom_family(p, "platoon_calls_refused_total", PT_PROM_COUNTER,
                    "Calls and peer streams refused for who made them (certificate checks).");
    pt__prom_sample_u64(p, "platoon_calls_refused_total", NULL, 0, st.calls_refused);
}
