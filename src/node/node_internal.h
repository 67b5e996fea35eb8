/*
 * The node runtime's internals, shared by the files of src/node/.
 *
 *   node.c       start-up (open or bootstrap the store, restore, build the core) and stop
 *   loop.c       the loop thread: events, ticks, the ready cycle, applying, peers
 *   writer.c     the storage writer thread: one pstore_write per ready
 *   snapshots.c  automatic snapshots on a background thread, compaction, restore
 *   requests.c   pending requests: proposals, reads, forwarding, waiting for a leader
 *   admin.c      the platoon.v1.Cluster service
 */
#ifndef PLATOON_NODE_INTERNAL_H
#define PLATOON_NODE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "net/mailbox.h"
#include "node/metrics.h"
#include "net/transport.h"
#include "platoon/node.h"
#include "platoon/raft.h"
#include "platoon/storage.h"

/* What a pending request waits for. */
enum node_wait {
    WAIT_NONE = 0,
    WAIT_APPLY,      /* a proposal: its entry to be applied */
    WAIT_READ,       /* a linearizable read: its read index from the core */
    WAIT_READ_APPLY, /* ...then the state machine to reach that index */
    WAIT_LEADER,     /* a request that needs a leader: one to be known */
    WAIT_FORWARD,    /* a request forwarded to the leader: its answer */
    WAIT_CONFIG,     /* a membership change: its configuration to be committed */
    WAIT_TRANSFER,   /* a leadership transfer: a new leader */
    WAIT_SNAPSHOT,   /* a snapshot taken on request */
};

/* What to do with a request once a leader is known. */
enum node_then {
    THEN_FORWARD = 1, /* forward it (pnode_forward) */
    THEN_READ = 2,    /* start its ReadIndex (pnode_query, linearizable) */
};

struct pnode_request {
    struct pnode_request *prev, *next; /* in node->pending while waiting */
    pnode *node;
    pnet_call *call; /* NULL for an internal request (pnode_propose) */
    char method[96]; /* the gRPC method, for forwarding */
    uint8_t *data;   /* the request bytes (owned) */
    size_t len;
    int64_t deadline_ms;        /* pnode_now_ms clock; INT64_MAX: none */
    int64_t leader_deadline_ms; /* WAIT_LEADER: give up then */
    int64_t retry_at_ms;        /* WAIT_LEADER: not before then (a forward to retry) */
    pnode_principal who;        /* the caller */
    /* What the method's prepare function made of the request (pnode_method), and how it is
     * freed; @prepared_set once it ran (on a network thread or, failing that, on the loop). */
    void *prepared;
    void (*prepared_free)(void *prepared);
    bool prepared_set;
    pnet_identity who_net; /* ...as the transport passes it on when forwarding */

    uint32_t wait;       /* enum node_wait */
    uint32_t then;       /* WAIT_LEADER: enum node_then */
    uint64_t index;      /* WAIT_APPLY, WAIT_READ_APPLY, WAIT_CONFIG: the log index */
    uint64_t term;       /* WAIT_APPLY: the proposal's term */
    int64_t proposed_ns; /* WAIT_APPLY: when it was proposed (pnode__now_ns), for metrics */
    uint64_t context;    /* WAIT_READ: the ReadIndex context */
    uint64_t old_leader; /* WAIT_TRANSFER */
    uint8_t *query;      /* WAIT_READ*: the query (owned) */
    size_t query_len;
    pnode_done_fn done;
    void *done_ctx;

    /* Internal requests (pnode_propose): the waiting thread's rendezvous. */
    struct internal_wait *internal;
    /* A forwarded request answered early (shutdown): freed when its forward completes. */
    bool orphan;
    bool linked;
    /* A server stream (pnode_stream_open), in node->streams while open. */
    const pnode_stream_ops *stream_ops;
    void *stream_ctx;
    /* pnode_stream_on_demand: in node->streams_idle, or in node->streams_ready while woken. */
    bool stream_on_demand;
    bool stream_woken;
};

/* The one batch the storage writer carries out at a time. */
typedef struct writer_job {
    bool has_chunk;
    praft_snapshot_meta chunk_meta;
    uint64_t chunk_offset;
    const uint8_t *chunk_data;
    size_t chunk_len;
    bool has_snapshot;
    praft_snapshot_meta snapshot;
    pstore_batch batch;
    praft_config config; /* batch.config points here when set */
    /* Messages that wait for this write (the ready's send_after_persist): the writer sends
     * them as soon as the write is durable, without a round through the loop. */
    const praft_msg *after;
    size_t n_after;
    bool after_sent;
} writer_job;

struct pnode {
    pnode_options opts;
    uint64_t cluster_id;

    /* The store. pstore is single-threaded: store_mu serialises the writer thread, the
     * snapshot thread and the core's reads on the loop thread. */
    pstore *store;
    pthread_mutex_t store_mu;
    praft_storage store_view; /* the pstore's own callbacks, wrapped under store_mu */

    /* TLS (pnode_reload_tls): the material in use, its paths (owned copies) and generation;
     * tls_mu serialises reloads. */
    pthread_mutex_t tls_mu;
    pnet_tls *tls;
    char *tls_paths[4];
    uint64_t tls_generation;

    praft_node *raft;
    /* What the core refused, as last reported in the log (see report_refusals in loop.c). */
    uint64_t logged_malformed, logged_term_refused;
    int64_t logged_malformed_ms;
    pnet_mailbox *mailbox;
    pnet_transport *net;
    pthread_t loop_thread;
    bool loop_started;
    atomic_bool stopping;

    /* The ready being carried out, if any. */
    bool ready_out;
    praft_ready rd;
    bool ready_needs_write;
    /* The newest hard state the core handed out, and whether it is not written yet: a ready
     * whose only durable change is the commit index does not get a write and a sync of its own
     * (raft.h: losing the commit index is safe); it rides along with the next write. */
    bool hs_seen;
    bool hs_deferred;
    praft_hard_state hs_last;

    /* The storage writer thread. */
    pthread_t writer_thread;
    bool writer_started;
    pthread_mutex_t writer_mu;
    pthread_cond_t writer_cv;
    bool writer_has_job;
    bool writer_done;
    bool writer_quit;
    int writer_rc;
    char writer_err[256];
    writer_job job;

    /* Automatic snapshots. */
    pthread_t snap_thread;
    bool snap_running; /* a snapshot thread exists (joined when done) */
    atomic_bool snap_done;
    int snap_rc;
    praft_snapshot_meta snap_meta;
    void *snap_frozen;
    uint64_t snap_index;
    uint64_t snap_term;
    praft_config snap_config;
    uint64_t last_snapshot_index;

    /* What the loop knows. */
    uint64_t leader;
    uint32_t role;
    uint64_t term;
    praft_config applied_config; /* the last configuration applied (for snapshots) */
    praft_config peers_config;   /* the configuration the transport's peers reflect */
    char advertise[PRAFT_ADDRESS_MAX];
    /* When each peer was last heard from (loop thread), for the leader's view in Status. */
    uint64_t heard_id[PRAFT_MAX_MEMBERS * 2];
    int64_t heard_ms[PRAFT_MAX_MEMBERS * 2];
    /* Membership of this node itself (loop thread): whether it has been in a configuration
     * since it started, and whether the latest configuration left it out afterwards. */
    bool was_member;
    bool removed;
    uint64_t removed_config_index; /* the log's configuration that left it out */
    int64_t no_leader_since_ms;    /* 0 while a leader is known */
    bool ever_leader;              /* a leader has been known since the node started */
    uint64_t no_leader_since_wall; /* the same moment, wall clock, for messages */
    int64_t no_leader_warned_ms;
    int64_t dup_warned_ms; /* last warning about a second process with a member's id */
    bool created_dir;      /* pnode_start made the data directory itself */
    bool created_store;    /* ...or the store in it: a failed start removes it again */
    /* Peers not (yet) in the configuration whose address their own messages told: a node that
     * joins answers the leader this way before it has received the configuration. */
    praft_member learned[PRAFT_MAX_MEMBERS];    /* id and address */
    int64_t learned_seen_ms[PRAFT_MAX_MEMBERS]; /* when each last sent a message */
    size_t n_learned;
    bool sm_failed;
    uint64_t next_context;
    int64_t next_tick_ms;

    /* Pending requests, in two doubly linked lists with sentinels: proposals in log order
     * (a leader's proposals get increasing indexes, so applying pops from the head), and
     * everything else. */
    pnode_request proposals;
    pnode_request pending;
    /* Open server streams (streams.c): those pumped at every turn, and those pumped on
     * demand, idle or woken for the end of this turn. */
    pnode_request streams;
    pnode_request streams_idle;
    pnode_request streams_ready;
    bool streams_pumping; /* in pnode__streams_pump: a stream woken now waits for the next */

    /* Requests from other threads (pnode_propose), handed to the loop. */
    pthread_mutex_t inbox_mu;
    pnode_request *inbox;

    pnode_counters counters; /* loop thread only; copied into the status */

    /* The status, copied by the loop for other threads. */
    pthread_mutex_t status_mu;
    pnode_status status;

    /* Monitoring (metrics.h): counters any thread updates, what the loop publishes besides the
     * status (under status_mu), and the HTTP endpoint (pnode_http_start; guarded by tls_mu). */
    pnode__metrics metrics;
    pnode__published published;
    uint64_t commit_published; /* loop thread: the commit index of the last publication */
    struct phttp *http;
};

/* A thread waiting in pnode_propose. */
struct internal_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool finished;
    int code;
    uint8_t *result;
    size_t result_len;
};

/* loop.c */
void *pnode__loop_main(void *arg);
void pnode__refresh_peers(pnode *n);
void pnode__process_ready(pnode *n);

/* writer.c */
int pnode__writer_start(pnode *n);
void pnode__writer_stop(pnode *n);
void pnode__writer_submit(pnode *n);
/* True once the submitted job is done; *rc receives its result. */
bool pnode__writer_poll(pnode *n, int *rc);
/* True while a submitted job is being carried out. */
bool pnode__writer_busy(pnode *n);

/* snapshots.c */
void pnode__maybe_snapshot(pnode *n, bool forced);
void pnode__snapshot_poll(pnode *n);
void pnode__snapshot_join(pnode *n);
/* Restores the state machine from the stored snapshot @meta: at start (@installed false, the
 * node's own newest snapshot) or after the leader sent it (@installed true); the log line
 * says which. */
int pnode__restore_from(pnode *n, const praft_snapshot_meta *meta, bool installed);

/* requests.c */
/* The transport's prepare function (pnet_prepare_fn, ctx the node): on a network thread,
 * refuses a request its caller's role does not allow and runs the method's prepare function. */
int pnode__prepare_call(void *ctx, pnet_event *ev, char *why, size_t cap);
pnode_request *pnode__request_new(pnode *n, pnet_call *call, const char *method,
                                  const uint8_t *data, size_t len, int64_t deadline_ms,
                                  const pnet_identity *who, uint64_t via);
int pnode__admin_role(const char *method); /* the least role a Cluster method needs */
/* The names of the Cluster / Health methods the node serves: at most @cap into @out; returns
 * how many. */
size_t pnode__admin_names(const char **out, size_t cap);
size_t pnode__health_names(const char **out, size_t cap);
void pnode__request_wait(pnode *n, pnode_request *req, uint32_t wait);
void pnode__request_unlink(pnode *n, pnode_request *req);
void pnode__requests_applied(pnode *n, uint64_t index, uint64_t term, int code,
                             const uint8_t *result, size_t len);
void pnode__requests_reads(pnode *n, const praft_read_state *reads, size_t n_reads);
void pnode__requests_progress(pnode *n);
void pnode__requests_fail_all(pnode *n, int code, const char *message);
void pnode__dispatch_call(pnode *n, pnet_event *ev);

/* health.c: grpc.health.v1.Health */
void pnode__health_register(pnode *n);
bool pnode__health_handles(const char *method);
void pnode__health_call(pnode *n, pnode_request *req);

/* streams.c */
/* Requests wait in circular doubly linked lists with a sentinel (node->pending, ->proposals,
 * ->streams...): O(1) to add and to take out from anywhere, no allocation. */
static inline void pnode__list_init(pnode_request *sentinel)
{
    sentinel->prev = sentinel->next = sentinel;
}

static inline void pnode__list_append(pnode_request *sentinel, pnode_request *req)
{
    req->prev = sentinel->prev;
    req->next = sentinel;
    sentinel->prev->next = req;
    sentinel->prev = req;
    req->linked = true;
}

static inline void pnode__list_remove(pnode_request *req)
{
    req->prev->next = req->next;
    req->next->prev = req->prev;
    req->prev = req->next = NULL;
    req->linked = false;
}

void pnode__streams_init(pnode *n);
/* Lets every open stream send what is due (end of a loop turn). */
void pnode__streams_pump(pnode *n);
/* The client of @call went away: its stream, if it is one, is closed. */
void pnode__streams_cancelled(pnode *n, pnet_call *call);
/* The transport says the stream of @call can send again, or ended: it is woken. */
void pnode__streams_ready(pnode *n, pnet_call *call);
/* The node stops: every stream is closed (from pnode_stop, after the loop ended). */
void pnode__streams_close_all(pnode *n);

/* admin.c */
void pnode__admin_register(pnode *n);
bool pnode__admin_handles(const char *method);
void pnode__admin_call(pnode *n, pnode_request *req);
void pnode__admin_progress(pnode *n);

/* A gRPC code for a PT_E* error, with a message. */
int pnode__code(int err);

/* Records that peer @id was heard from now, and the time since (-1: never). Loop thread. */
void pnode__heard(pnode *n, uint64_t id);
int64_t pnode__since_heard_ms(const pnode *n, uint64_t id);

/* Answers every proposal waiting to be applied with @code and @message. Loop thread. */
void pnode__proposals_fail(pnode *n, int code, const char *message);

/* Why this node cannot serve a client at all (removed from the cluster), or NULL. Writes the
 * message into @buf. Loop thread. */
const char *pnode__unfit(pnode *n, char *buf, size_t cap);
/* "no leader is known (none since HH:MM:SS UTC, N s ago)" into @buf. Loop thread. */
const char *pnode__no_leader_message(pnode *n, char *buf, size_t cap);

/* ----- addresses.c ----- */

/* Checks the form of a member address: HOST:PORT, no scheme, port in [1, 65535] (or 0 when
 * @allow_port_0, for a listen address). Returns 0 or PT_EINVAL with the reason in @why. */
int pnode__address_check(const char *addr, bool allow_port_0, char *why, size_t cap);
/* True when @a and @b name the same endpoint (same port, a host address in common). */
bool pnode__same_endpoint(const char *a, const char *b);
/* True when listening on @listen serves the address @advertised that peers dial. */
bool pnode__listen_serves(const char *listen, const char *advertised);
/* Binds @listen once and lets it go: 0, or PT_EIO/PT_EINVAL with the reason in @why. */
int pnode__bind_probe(const char *listen, char *why, size_t cap);

#endif
