/*
 * The node's metrics and readiness (metrics.h): counting on the threads that see each event,
 * rendering on a scrape thread from atomics and the status the loop publishes.
 */
#include "node/metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/http.h"
#include "node/node_internal.h"

/* Bounds in nanoseconds. A commit costs about a millisecond on a LAN with a fast disk (one
 * round trip and one sync); slow disks and elections stretch it to seconds. */
static const uint64_t commit_bounds_ns[] = {
    100000,   250000,    500000,    1000000,   2000000,    5000000,    10000000,   25000000,
    50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};
/* One write with its sync: 0.2-0.5 ms on an SSD with a write cache that honours flushes, tens
 * of milliseconds on rotating disks or busy network volumes. */
static const uint64_t sync_bounds_ns[] = {
    50000,   100000,  200000,   300000,   400000,   500000,    750000,    1000000,
    2000000, 5000000, 10000000, 25000000, 50000000, 100000000, 250000000, 1000000000,
};
/* Entries per write: 1 when idle, the batch of everything that arrived during the previous
 * sync under load. */
static const uint64_t sync_entry_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};
/* Taking or installing a snapshot: milliseconds for a small platoon, seconds for millions of
 * vehicles. */
static const uint64_t snapshot_bounds_ns[] = {
    1000000,    5000000,    10000000,    50000000,    100000000,   500000000,
    1000000000, 5000000000, 10000000000, 30000000000, 60000000000, 300000000000,
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

int64_t pnode__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void pnode__metrics_init(pnode__metrics *m)
{
    memset(m, 0, sizeof(*m));
    pt__hist_init(&m->commit_seconds, commit_bounds_ns, N_OF(commit_bounds_ns), 1e9);
    pt__hist_init(&m->sync_seconds, sync_bounds_ns, N_OF(sync_bounds_ns), 1e9);
    pt__hist_init(&m->sync_entries, sync_entry_bounds, N_OF(sync_entry_bounds), 1.0);
    pt__hist_init(&m->snapshot_take_seconds, snapshot_bounds_ns, N_OF(snapshot_bounds_ns), 1e9);
    pt__hist_init(&m->snapshot_install_seconds, snapshot_bounds_ns, N_OF(snapshot_bounds_ns), 1e9);
    pthread_mutex_init(&m->mu, NULL);
}

void pnode__metrics_destroy(pnode__metrics *m)
{
    pthread_mutex_destroy(&m->mu);
}

int pnode__metrics_register(pnode *n, pnode__collect_fn fn, void *ctx)
{
    pnode__metrics *m = &n->metrics;
    int rc = PT_ENOMEM;
    pthread_mutex_lock(&m->mu);
    if (m->n_collectors < PNODE__MAX_COLLECTORS) {
        m->collectors[m->n_collectors].fn = fn;
        m->collectors[m->n_collectors].ctx = ctx;
        m->n_collectors++;
        rc = 0;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static bool valid_metric_name(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) >= sizeof(((struct pnode__app_gauge *)0)->name) ||
        (*s >= '0' && *s <= '9')) {
        return false;
    }
    for (; *s != '\0'; s++) {
        bool ok = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                  (*s >= '0' && *s <= '9') || *s == '_' || *s == ':';
        if (!ok) {
            return false;
        }
    }
    return true;
}

int pnode_metrics_add(pnode *n, const char *name, int type, const char *help, pnode_metric_fn fn,
                      void *ctx)
{
    if (n == NULL || fn == NULL || !valid_metric_name(name) ||
        (type != PNODE_METRIC_GAUGE && type != PNODE_METRIC_COUNTER)) {
        return PT_EINVAL;
    }
    size_t len = strlen(name);
    if (type == PNODE_METRIC_COUNTER && (len < 6 || strcmp(name + len - 6, "_total") != 0)) {
        return PT_EINVAL;
    }
    pnode__metrics *m = &n->metrics;
    int rc = PT_ENOMEM;
    pthread_mutex_lock(&m->mu);
    if (m->n_gauges < PNODE__MAX_APP_GAUGES) {
        struct pnode__app_gauge *g = &m->gauges[m->n_gauges];
        snprintf(g->name, sizeof(g->name), "%s", name);
        snprintf(g->help, sizeof(g->help), "%s", help != NULL ? help : "");
        g->type = type;
        g->fn = fn;
        g->ctx = ctx;
        atomic_store(&g->value, 0);
        m->n_gauges++;
        rc = 0;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

void pnode__metrics_sample(pnode *n)
{
    pnode__metrics *m = &n->metrics;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n_gauges; i++) {
        atomic_store_explicit(&m->gauges[i].value, m->gauges[i].fn(m->gauges[i].ctx),
                              memory_order_relaxed);
    }
    pthread_mutex_unlock(&m->mu);
}

void pnode__metrics_proposal(pnode *n, int result, int64_t proposed_ns)
{
    if (result < 0 || result >= PNODE__PROPOSAL_RESULTS) {
        result = PNODE__PROPOSAL_ABORTED;
    }
    atomic_fetch_add_explicit(&n->metrics.proposals[result], 1, memory_order_relaxed);
    if (result == PNODE__PROPOSAL_APPLIED && proposed_ns != 0) {
        int64_t d = pnode__now_ns() - proposed_ns;
        pt__hist_observe(&n->metrics.commit_seconds, d > 0 ? (uint64_t)d : 0);
    }
}

bool pnode__readiness(pnode *n, const praft_status *st, uint64_t applied, uint64_t commit_before,
                      char *why, size_t cap)
{
    char unfit[256];
    if (atomic_load(&n->stopping)) {
        snprintf(why, cap, "the node is shutting down");
        return false;
    }
    if (n->sm_failed) {
        snprintf(why, cap, "the state machine failed (see the log)");
        return false;
    }
    if (pnode__unfit(n, unfit, sizeof(unfit)) != NULL) {
        snprintf(why, cap, "%s", unfit);
        return false;
    }
    if (st->leader == PRAFT_NONE) {
        snprintf(why, cap, "no leader known");
        return false;
    }
    if (st->leader != n->opts.id) {
        /* A leader sends at least a heartbeat every heartbeat interval: silence for a whole
         * election timeout means this node is cut off from it (or it is gone), even while the
         * node still names it (pre-vote keeps a partitioned follower's term and leader). */
        int64_t timeout = (int64_t)n->opts.election_ticks * n->opts.tick_ms;
        int64_t ago = pnode__since_heard_ms(n, st->leader);
        if (ago < 0 || ago > timeout) {
            if (ago < 0) {
                snprintf(why, cap, "leader %" PRIu64 " never heard from", st->leader);
            } else {
                snprintf(why, cap, "leader %" PRIu64 " not heard for %" PRId64 " ms", st->leader,
                         ago);
            }
            return false;
        }
    }
    if (applied < commit_before) {
        snprintf(why, cap, "applying: applied %" PRIu64 " of committed %" PRIu64, applied,
                 commit_before);
        return false;
    }
    return true;
}

bool pnode_ready(pnode *n, char *why, size_t cap)
{
    if (n == NULL) {
        return false;
    }
    pthread_mutex_lock(&n->status_mu);
    bool ready = n->published.ready;
    if (!ready && why != NULL && cap > 0) {
        snprintf(why, cap, "%s", n->published.not_ready);
    }
    pthread_mutex_unlock(&n->status_mu);
    return ready;
}

/* ----- rendering ----- */

static void gauge(pt_prom *p, const char *name, const char *help, uint64_t v)
{
    pt__prom_family(p, name, PT_PROM_GAUGE, help);
    pt__prom_sample_u64(p, name, NULL, 0, v);
}

static void counter(pt_prom *p, const char *name, const char *help, uint64_t v)
{
    pt__prom_family(p, name, PT_PROM_COUNTER, help);
    pt__prom_sample_u64(p, name, NULL, 0, v);
}

static uint64_t get(atomic_uint_fast64_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

static void render_raft(pt_prom *p, const pnode_status *st, const pnode__published *pub)
{
    const praft_status *r = &st->raft;
    gauge(p, "platoon_raft_term", "The current Raft term of this node.", r->term);
    gauge(p, "platoon_raft_commit_index", "The highest log index this node knows is committed.",
          r->commit);
    gauge(p, "platoon_raft_applied_index",
          "The highest log index applied to this node's state machine.", st->applied);
    gauge(p, "platoon_raft_last_log_index", "The index of the last entry in this node's log.",
          r->last_index);
    gauge(p, "platoon_raft_snapshot_index", "The index covered by this node's newest snapshot.",
          st->snapshot_index);
    gauge(p, "platoon_raft_leader_id", "The id of the leader this node knows, 0 if none.",
          r->leader);

    static const struct {
        uint32_t role;
        const char *name;
    } roles[] = {{PRAFT_FOLLOWER, "follower"},
                 {PRAFT_CANDIDATE, "candidate"},
                 {PRAFT_LEADER, "leader"},
                 {PRAFT_LEARNER, "learner"}};
    pt__prom_family(p, "platoon_raft_role", PT_PROM_GAUGE,
                    "The Raft role of this node: 1 for the role it has, 0 for the others.");
    for (size_t i = 0; i < N_OF(roles); i++) {
        const char *labels[] = {"role", roles[i].name};
        pt__prom_sample_u64(p, "platoon_raft_role", labels, 1, r->role == roles[i].role);
    }
    counter(p, "platoon_raft_leader_changes_seen_total",
            "Times this node learned of a new leader (including the first after start).",
            pub->leader_changes_seen);
    counter(p, "platoon_raft_elections_started_total",
            "Elections this node started (each one a new term).", r->counters.elections_started);
    counter(p, "platoon_raft_leader_elected_total", "Times this node became the leader.",
            r->counters.leader_elected);
    counter(p, "platoon_raft_messages_dropped_malformed_total",
            "Peer messages refused as impossible (a term no node could follow, bad indices).",
            r->counters.msgs_dropped_malformed);
    counter(p, "platoon_log_entries_applied_total",
            "Committed log entries applied to the state machine since start.",
            st->counters.entries_applied);
    counter(p, "platoon_loop_turns_total",
            "Times the node's loop woke up (for events, a tick or a completion).",
            st->counters.loop_turns);
    counter(p, "platoon_loop_events_total",
            "Messages, calls and completions the node's loop handled.", st->counters.events);
    counter(p, "platoon_raft_readies_total", "Batches of work (readies) taken from the core.",
            st->counters.readies);
    gauge(p, "platoon_ready",
          "1 when this node is ready to serve clients (as /readyz and grpc.health.v1 say).",
          pub->ready ? 1 : 0);

    /* The leader's view of each follower: how far behind its log is, and since when it is
     * silent. Only the leader knows; other nodes show no samples. */
    pt__prom_family(p, "platoon_peer_replication_lag_entries", PT_PROM_GAUGE,
                    "Leader only: log entries the leader has that the peer is not known to have.");
    for (size_t i = 0; i < r->n_progress; i++) {
        char id[24];
        snprintf(id, sizeof(id), "%" PRIu64, r->progress[i].id);
        const char *labels[] = {"peer", id};
        uint64_t match = r->progress[i].match;
        pt__prom_sample_u64(p, "platoon_peer_replication_lag_entries", labels, 1,
                            r->last_index > match ? r->last_index - match : 0);
    }
    pt__prom_family(p, "platoon_peer_last_heard_seconds", PT_PROM_GAUGE,
                    "Leader only: seconds since the peer was last heard from (-1: never).");
    for (size_t i = 0; i < pub->n_peers; i++) {
        char id[24];
        snprintf(id, sizeof(id), "%" PRIu64, pub->peer_id[i]);
        const char *labels[] = {"peer", id};
        int64_t ago = pub->peer_heard_ago_ms[i];
        pt__prom_sample(p, "platoon_peer_last_heard_seconds", labels, 1,
                        ago < 0 ? -1.0 : (double)ago / 1000.0);
    }
}

static void render_counted(pt_prom *p, pnode__metrics *m)
{
    static const char *const results[PNODE__PROPOSAL_RESULTS] = {
        "applied", "not_leader", "refused", "lost", "timeout", "aborted"};
    pt__prom_family(p, "platoon_proposals_total", PT_PROM_COUNTER,
                    "Client writes proposed on this node, by how they ended: applied, not_leader "
                    "(refused: not the leader), refused (by the core: busy, transfer), lost "
                    "(outcome unknown: leadership lost), timeout (deadline), aborted.");
    for (size_t i = 0; i < PNODE__PROPOSAL_RESULTS; i++) {
        const char *labels[] = {"result", results[i]};
        pt__prom_sample_u64(p, "platoon_proposals_total", labels, 1, get(&m->proposals[i]));
    }
    pt__prom_family(p, "platoon_commit_duration_seconds", PT_PROM_HISTOGRAM,
                    "Leader: time from proposing a client's write to applying it.");
    pt__prom_histogram(p, "platoon_commit_duration_seconds", NULL, 0, &m->commit_seconds);
    pt__prom_family(p, "platoon_storage_sync_duration_seconds", PT_PROM_HISTOGRAM,
                    "Time of one durable write of the log: one transaction and its sync.");
    pt__prom_histogram(p, "platoon_storage_sync_duration_seconds", NULL, 0, &m->sync_seconds);
    pt__prom_family(p, "platoon_storage_sync_entries", PT_PROM_HISTOGRAM,
                    "Log entries in one durable write (the batch of one sync).");
    pt__prom_histogram(p, "platoon_storage_sync_entries", NULL, 0, &m->sync_entries);
    counter(p, "platoon_storage_sync_failures_total",
            "Durable writes that failed (and were retried).", get(&m->sync_failures));

    counter(p, "platoon_snapshots_taken_total", "Snapshots this node took of its state machine.",
            get(&m->snapshots_taken));
    counter(p, "platoon_snapshots_installed_total",
            "Snapshots received from the leader and installed.", get(&m->snapshots_installed));
    counter(p, "platoon_snapshot_taken_bytes_total", "Sizes of the snapshots taken, summed.",
            get(&m->snapshot_bytes_taken));
    counter(p, "platoon_snapshot_installed_bytes_total",
            "Sizes of the snapshots installed, summed.", get(&m->snapshot_bytes_installed));
    gauge(p, "platoon_snapshot_size_bytes", "Size of the newest snapshot taken or installed.",
          get(&m->snapshot_last_bytes));
    pt__prom_family(p, "platoon_snapshot_duration_seconds", PT_PROM_HISTOGRAM,
                    "Time to take a snapshot (kind=take: serialise and store it) or to install "
                    "one (kind=install: restore the state machine from it).");
    const char *take[] = {"kind", "take"};
    const char *install[] = {"kind", "install"};
    pt__prom_histogram(p, "platoon_snapshot_duration_seconds", take, 1, &m->snapshot_take_seconds);
    pt__prom_histogram(p, "platoon_snapshot_duration_seconds", install, 1,
                       &m->snapshot_install_seconds);
}

int pnode_metrics_text(pnode *n, char **out, size_t *len)
{
    if (n == NULL || out == NULL || len == NULL) {
        return PT_EINVAL;
    }
    pnode_status *st = malloc(sizeof(*st));
    pnode__published *pub = malloc(sizeof(*pub));
    if (st == NULL || pub == NULL) {
        free(st);
        free(pub);
        return PT_ENOMEM;
    }
    pthread_mutex_lock(&n->status_mu);
    *st = n->status;
    *pub = n->published;
    pthread_mutex_unlock(&n->status_mu);

    pt_prom p = {0};
    render_raft(&p, st, pub);
    render_counted(&p, &n->metrics);
    pnet_transport_metrics(n->net, &p);

    pnode__metrics *m = &n->metrics;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n_gauges; i++) {
        struct pnode__app_gauge *g = &m->gauges[i];
        if (g->type == PNODE_METRIC_COUNTER) {
            counter(&p, g->name, g->help, get(&g->value));
        } else {
            gauge(&p, g->name, g->help, get(&g->value));
        }
    }
    for (size_t i = 0; i < m->n_collectors; i++) {
        m->collectors[i].fn(m->collectors[i].ctx, &p);
    }
    pthread_mutex_unlock(&m->mu);
    free(st);
    free(pub);
    if (p.nomem || p.buf == NULL) {
        free(p.buf);
        return PT_ENOMEM;
    }
    *out = p.buf;
    *len = p.len;
    return 0;
}

/* ----- the HTTP endpoint (src/http) ----- */

int pnode_http_start(pnode *n, const char *address, char *err, size_t cap)
{
    char why[300] = "";
    int rc = PT_EINVAL;
    if (n == NULL || address == NULL) {
        snprintf(why, sizeof(why), "no node or no address");
    } else {
        pthread_mutex_lock(&n->tls_mu);
        if (n->http != NULL) {
            snprintf(why, sizeof(why), "the node already serves HTTP");
        } else {
            rc = phttp__start(n, address, n->tls, n->net, n->opts.id, n->opts.listen, &n->http, why,
                              sizeof(why));
        }
        pthread_mutex_unlock(&n->tls_mu);
    }
    if (rc != 0 && err != NULL && cap > 0) {
        snprintf(err, cap, "%s", why);
    }
    return rc;
}

int pnode_http_port(pnode *n)
{
    if (n == NULL) {
        return 0;
    }
    pthread_mutex_lock(&n->tls_mu);
    int port = phttp__port(n->http);
    pthread_mutex_unlock(&n->tls_mu);
    return port;
}
