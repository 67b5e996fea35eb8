/*
 * platoon/node.h — the node runtime: a Raft core, its durable store, its gRPC transport and an
 * application's state machine, wired together and driven by one loop thread.
 *
 * The runtime is generic: it knows the application only through the state-machine interface
 * (platoon/state_machine.h) and through the gRPC methods the application registers. platoond
 * is one application (the vehicle service); any other can embed the same runtime.
 *
 * THREADS (DESIGN.md "Threads in platoond"). One loop thread owns the Raft core, the state
 * machine and every pending request. The transport's thread hands it messages and calls
 * through a mailbox; a storage writer thread carries out each ready's durable write (one
 * transaction and one sync per batch: proposals that arrive while a write is in flight join
 * the next one); a snapshot thread serialises frozen copies of the state machine. No lock is
 * held across I/O by the loop.
 *
 * HANDLERS. An application serves its API through method handlers (pnode_method) that the
 * loop calls for each request, after the caller's role was checked and the request prepared
 * (decoded and validated, by the method's optional prepare function) on the network thread that
 * received it. A handler answers at once (pnode_reply, pnode_fail) or starts
 * work whose completion answers later: pnode_submit (replicate a command, answer once it is
 * applied), pnode_query (answer from the state machine, linearizable or stale), pnode_forward
 * (hand the request to the leader as it is), or pnode_stream_open (answer with a stream of
 * messages, below). Every request ends with exactly one answer; the
 * client's deadline is honoured (DEADLINE_EXCEEDED), and a request whose outcome is unknown
 * (leadership lost after proposing) gets UNAVAILABLE, after which a retry with the same client
 * session is always safe.
 *
 * Every node also serves platoon.v1.Cluster (Status, AddMember, RemoveMember,
 * TransferLeadership, Snapshot): membership and operations are the runtime's own business.
 */
#ifndef PLATOON_NODE_H
#define PLATOON_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "platoon/error.h"
#include "platoon/raft.h"
#include "platoon/state_machine.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pnode pnode;
typedef struct pnode_request pnode_request;

/* gRPC status codes used by the runtime's answers (the values of grpc_status_code). */
enum pnode_code {
    PNODE_OK = 0,
    PNODE_CANCELLED = 1,
    PNODE_UNKNOWN = 2,
    PNODE_INVALID_ARGUMENT = 3,
    PNODE_DEADLINE_EXCEEDED = 4,
    PNODE_NOT_FOUND = 5,
    PNODE_ALREADY_EXISTS = 6,
    PNODE_PERMISSION_DENIED = 7,
    PNODE_RESOURCE_EXHAUSTED = 8,
    PNODE_FAILED_PRECONDITION = 9,
    PNODE_ABORTED = 10,
    PNODE_OUT_OF_RANGE = 11,
    PNODE_UNIMPLEMENTED = 12,
    PNODE_INTERNAL = 13,
    PNODE_UNAVAILABLE = 14,
    PNODE_UNAUTHENTICATED = 16,
};

/*
 * What a caller may do (docs/security.md). Each role includes the ones before it: a reader
 * reads, a writer also writes, an admin also changes the cluster. Node certificates act as
 * admins. With TLS off (pnode_tls.insecure) every caller is anonymous and may do anything.
 */
enum pnode_role {
    PNODE_ROLE_READER = 1,
    PNODE_ROLE_WRITER = 2,
    PNODE_ROLE_ADMIN = 3,
};

/* Who made a request, from the certificate of its connection (or, for a request a node
 * forwarded, from the identity that node vouched for). */
typedef struct pnode_principal {
    bool authenticated; /* false with TLS off: nothing below is known */
    bool is_node;       /* a node certificate: @node_id is the node */
    uint64_t node_id;
    char name[128]; /* the certificate's name: "node-3", "alice", "vehicle-7" */
    int role;       /* enum pnode_role */
    /* The one vehicle this principal may write, when its certificate is bound to one. */
    bool has_vehicle;
    uint64_t vehicle_id;
    /* The node that forwarded the request on the principal's behalf, 0 if it came directly. */
    uint64_t via;
} pnode_principal;

/* TLS material of a node: file paths, read at start and at every pnode_reload_tls. */
typedef struct pnode_tls {
    const char *ca;   /* CA bundle that signs every node and client certificate */
    const char *cert; /* this node's certificate (Subject CN node-<id>, OU node) */
    const char *key;  /* its private key */
    const char *crl;  /* optional X.509 revocation list signed by the CA; NULL: none */
} pnode_tls;

/* Called on the loop thread for each request to a registered method. The handler must
 * eventually answer @req exactly once, directly or through one of the functions below. */
typedef void (*pnode_handler_fn)(pnode *node, void *app, pnode_request *req);

/* A gRPC method served by the application: full name ("/platoon.v1.Platoon/GetVehicle"). */
typedef struct pnode_method {
    const char *name;
    pnode_handler_fn handler;
    void *app;
    /* The least role a caller needs (enum pnode_role), checked before the handler runs; a
     * caller without it gets PERMISSION_DENIED. 0 means PNODE_ROLE_ADMIN, so that a method
     * whose role was forgotten is closed rather than open. */
    int role;
    /* Optional: prepares a request on a network thread as soon as it has arrived, before the
     * loop sees it, so that decoding and checking requests costs the loop (one thread for the
     * whole node) nothing, and a bad request is refused without reaching it. It runs after the
     * role check, on several threads at once: it may read only what never changes of @app (its
     * options, not its state). Returns PNODE_OK with *prepared set (what the handler finds with
     * pnode_request_prepared; NULL is allowed), or a status code with @why (@cap bytes) saying
     * what is wrong, e.g. PNODE_INVALID_ARGUMENT naming the field: the request is answered with
     * them. The node calls it on the loop for a request that did not come over the network,
     * so a handler of a method with a prepare function always finds its result. */
    int (*prepare)(void *app, const pnode_principal *who, const uint8_t *data, size_t len,
                   void **prepared, char *why, size_t cap);
    /* Frees what prepare made; NULL: free(). */
    void (*release)(void *prepared);
} pnode_method;

#define PNODE_MAX_METHODS 32

typedef struct pnode_options {
    uint64_t id; /* this node's id, != 0 */
    /* The cluster's identity, recorded in the data directory at its creation: a data directory
     * of another cluster is refused. Default 1. */
    uint64_t cluster_id;
    /* "host:port" to listen on for peers and clients. */
    char listen[PRAFT_ADDRESS_MAX];
    /* The data directory (created on the first start). */
    const char *data_dir;

    /* The initial members, used only by the first start on an empty data directory, which
     * bootstraps the cluster from them (every listed node must be started with the same list).
     * The address of each member is the one its peers dial. */
    praft_member initial[PRAFT_MAX_MEMBERS];
    size_t n_initial;
    /* Start empty and wait to be added by the cluster (AddMember) instead of bootstrapping.
     * Ignored when the data directory already holds a node. */
    bool join;

    /* One tick of the Raft core, in milliseconds. Default 50. */
    uint32_t tick_ms;
    /* Election timeout in ticks: a follower that hears no leader for a random time in
     * [T, 2T) ticks campaigns. Default 10 (0.5-1 s with the default tick), suited to a LAN. */
    uint32_t election_ticks;
    /* Heartbeat interval in ticks. Default 1. */
    uint32_t heartbeat_ticks;
    /* Linearizable reads from a leader lease instead of a heartbeat round (thesis §6.4.1,
     * praft_options.lease_reads): a read on the leader is answered without waiting for the
     * followers. Safe only while the nodes' clocks run at rates within an eighth of each other
     * (the lease is shortened by that much) and every node of the cluster sets it alike.
     * Default off. */
    bool lease_reads;
    /* Take a snapshot after this many entries applied since the last one, then compact the
     * log. Default 10000. 0 disables automatic snapshots. */
    uint64_t snapshot_every;
    /* Entries kept in the log behind a snapshot, so that a slightly lagging follower still
     * gets entries rather than a whole snapshot. Default 1000. */
    uint64_t snapshot_keep;
    /* pstore sync mode (enum pstore_sync). Default full. */
    uint32_t sync;
    /* How long a request that needs a leader waits for one before UNAVAILABLE, in ms.
     * Default 2000. */
    uint32_t leader_wait_ms;
    /* Before opening an existing data directory, verify all of it (every entry's checksum,
     * every snapshot) in a child process (fork), so that even damage that makes LMDB itself
     * crash is reported as one line instead of killing the node. Default true. Costs one read
     * of the log and snapshots at start-up. */
    bool preflight_check;

    /* Transport security. With tls.ca/cert/key set, every connection is mutual TLS and every
     * request carries its caller's principal (pnode_request_principal), checked against the
     * methods' roles. Without them the node runs in plaintext with no identities, which it
     * accepts only when @insecure is true (pnode_start fails otherwise): a node anyone could
     * command must be asked for. */
    pnode_tls tls;
    bool insecure;

    /* Threads that poll the network: gRPC does its reading, TLS and HTTP/2 framing on them,
     * so with one, a connection busy with a large message holds up all the others, peers'
     * heartbeats included; half as many (rounded up) write answers and messages to peers.
     * Default: the number of cores, at least 2 and at most 8; at most 64. */
    uint32_t io_threads;

    /* Bounds on what callers may make a node hold (docs/operations.md, "Limits"). A request of
     * a registered method larger than max_request_bytes is refused with RESOURCE_EXHAUSTED
     * before it is decoded (default 64 KiB: a vehicle update is under 100 bytes); the peer
     * protocol has its own larger bound (16 MiB: batches of entries, snapshot chunks). */
    size_t max_request_bytes;
    /* Concurrent calls one connection may have open (HTTP/2 SETTINGS; a client queues the
     * rest). Default 256. */
    uint32_t max_streams_per_connection;
    /* Bytes of answers sent but not yet taken by their reader (a client that does not read
     * pins them): per connection (default 16 MiB) and in all (default 256 MiB). Beyond them
     * an answer is replaced by RESOURCE_EXHAUSTED, and an answer not taken within
     * send_timeout_ms (default 30000) is cancelled, so the memory is given back. */
    size_t max_unread_bytes_per_connection;
    size_t max_unread_bytes;
    uint32_t send_timeout_ms;
    /* A connection must complete its TLS handshake and HTTP/2 preface within this time, or it
     * is closed (default 10000 ms); a connection without calls for max_idle_ms is closed
     * (default 300000 ms; peers' lanes are never idle). */
    uint32_t handshake_timeout_ms;
    uint32_t max_idle_ms;
    /* Memory gRPC may use for connections and their buffers in all (its resource quota):
     * beyond it new work is refused and connections are shed, peers' included, so it must
     * stay well above what normal load needs. Default 2 GiB. */
    size_t transport_memory_bytes;

    /* The application. */
    pnode_sm sm;
    pnode_method methods[PNODE_MAX_METHODS];
    size_t n_methods;
    /* Storage engine for a data directory created by this start (enum pstore_engine); an
     * existing directory keeps the engine it was created with. Default PSTORE_ENGINE_WAL. */
    uint32_t storage_engine;
} pnode_options;

/* Fills @opts with the defaults above for node @id (no members, no methods, no state machine). */
PT_API void pnode_options_init(pnode_options *opts, uint64_t id);

/*
 * Starts a node: opens (or creates and bootstraps) the data directory, restores the state
 * machine from the newest snapshot, replays the log, binds the listen address and starts the
 * loop. On failure @err (if not NULL) receives one line naming the cause (a file, an address,
 * a flag), e.g. "data dir /x belongs to node 2, not 3".
 * Errors: PT_EINVAL (options), PT_EMISMATCH, PT_ECORRUPT, PT_EVERSION (data directory),
 * PT_EIO (data directory or listen address), PT_ENOMEM. TLS material is read and checked before
 * anything is written to the data directory.
 */
PT_API int pnode_start(const pnode_options *opts, pnode **out, char *err, size_t err_cap);

/*
 * Stops the node gracefully and frees it: stops accepting requests, answers every pending one
 * with UNAVAILABLE, finishes the write in flight, stops the threads and closes the store.
 * Thread-safe with respect to the loop; call it once, from a thread that is not the loop.
 */
PT_API void pnode_stop(pnode *node);

/*
 * Reads the TLS files again (pnode_options.tls) and uses them from now on: new connections,
 * served and dialed, use the new certificate and CA; outbound connections are made anew; the
 * revocation list applies from every caller's next request. On failure nothing changes and
 * @err (if not NULL) names the file and the reason. Thread-safe; e.g. on SIGHUP.
 * Errors: PT_EINVAL (a node without TLS, or material that does not fit together), PT_EIO (a
 * file cannot be read), PT_ENOMEM.
 */
PT_API int pnode_reload_tls(pnode *node, char *err, size_t err_cap);

/* The node's status, as seen by the loop a moment ago. Thread-safe. */
/* What the runtime did since start: to see how well it batches (entries per write, events per
 * turn of the loop) when tuning or benchmarking. */
typedef struct pnode_counters {
    uint64_t loop_turns;      /* times the loop woke up (for events, a tick or a completion) */
    uint64_t events;          /* messages, calls and completions handled */
    uint64_t readies;         /* readies taken from the core */
    uint64_t writes;          /* storage writes (each one transaction, synced per --sync) */
    uint64_t entries_written; /* log entries in those writes */
    uint64_t entries_applied; /* committed entries applied to the state machine */
} pnode_counters;

typedef struct pnode_status {
    praft_status raft;
    uint64_t applied;        /* the state machine's applied index */
    uint64_t snapshot_index; /* the newest local snapshot */
    uint64_t first_index;    /* the log's range in the store */
    uint64_t last_index;
    bool failed; /* the state machine could not apply an entry: the node serves nothing */
    pnode_counters counters;
} pnode_status;

/* Fills @out with the status the loop last published (a copy, owned by the caller). Any thread
 * may call it, also the loop's; it never fails. */
PT_API void pnode_status_get(pnode *node, pnode_status *out);

/*
 * Replicates @cmd (copied) and waits until it is applied on this node, from any thread but
 * the loop. *result (malloc'd, owned by the caller) receives the state machine's answer.
 * Errors: PT_ENOTLEADER (this node is not the leader), PT_ETIMEDOUT (@timeout_ms passed: the
 * outcome is unknown), PT_ESHUTDOWN, PT_ENOMEM.
 */
PT_API int pnode_propose(pnode *node, const void *cmd, size_t len, uint32_t timeout_ms,
                         uint8_t **result, size_t *result_len);

/* ----- inside a handler, on the loop thread ----- */

/* The request's bytes (valid until it is answered) and its deadline (pnode_now_ms clock). */
PT_API const uint8_t *pnode_request_data(const pnode_request *req, size_t *len);
PT_API int64_t pnode_request_deadline(const pnode_request *req);
/* Who made the request (valid until it is answered). Never NULL. */
PT_API const pnode_principal *pnode_request_principal(const pnode_request *req);
/* What the method's prepare function made of @req (pnode_method), or NULL without one. Owned
 * by the request. */
PT_API void *pnode_request_prepared(const pnode_request *req);

/* Now, in milliseconds of CLOCK_MONOTONIC (the clock of deadlines). */
PT_API int64_t pnode_now_ms(void);
/* Now, in milliseconds since the Unix epoch (what a leader stamps into commands). */
PT_API uint64_t pnode_wall_ms(void);

/* Answers @req with @len bytes (copied) / with a gRPC error. @req is gone afterwards. */
PT_API void pnode_reply(pnode_request *req, const void *data, size_t len);
PT_API void pnode_fail(pnode_request *req, int code, const char *message);
/* Answers @req with a protobuf-c message, packed. @req is gone afterwards. */
PT_API void pnode_reply_message(pnode_request *req, const ProtobufCMessage *msg);

/* The completion of pnode_submit and pnode_query: @code is PNODE_OK with the state machine's
 * answer in @result/@len (valid during the call), or the error to return. The callback must
 * answer @req. */
typedef void (*pnode_done_fn)(pnode *node, void *ctx, pnode_request *req, int code,
                              const char *message, const uint8_t *result, size_t len);

/* True if this node is the leader and accepts proposals now. */
PT_API bool pnode_is_leader(pnode *node);

/*
 * Replicates @cmd (copied) for @req; @done runs when the entry is applied here (PNODE_OK and
 * the state machine's result), or with UNAVAILABLE when the outcome became unknown (leadership
 * lost), DEADLINE_EXCEEDED, or FAILED_PRECONDITION / UNAVAILABLE for refusals. Must be called
 * on the leader (pnode_is_leader); otherwise @done runs at once with UNAVAILABLE.
 */
PT_API void pnode_submit(pnode *node, pnode_request *req, const void *cmd, size_t len,
                         pnode_done_fn done, void *ctx);

/*
 * Runs the read-only @query (copied) against the state machine for @req: at once if
 * @linearizable is false; otherwise after a ReadIndex round (thesis §6.4) confirmed that
 * this node's state includes every write acknowledged before the read began (on a follower,
 * the read index is obtained from the leader). @done receives the answer.
 */
PT_API void pnode_query(pnode *node, pnode_request *req, bool linearizable, const void *query,
                        size_t len, pnode_done_fn done, void *ctx);

/*
 * Sends @req, as it is, to the leader and relays the leader's answer (waiting up to
 * leader_wait_ms for a leader to be known). On the leader itself this is an error
 * (FAILED_PRECONDITION): call it only when !pnode_is_leader.
 */
PT_API void pnode_forward(pnode *node, pnode_request *req);

/* ----- server streams, on the loop thread ----- */

/*
 * A handler may answer its request with a stream of messages (a method declared
 * `returns (stream ...)`): it opens the stream with pnode_stream_open, sends with
 * pnode_stream_send, and ends it with pnode_fail: the status follows the messages already
 * sent (every end is a status with a message; pnode_reply is not for streams). The runtime
 * calls @pump at the end of every turn of its loop (after the turn's entries were applied,
 * and at least every tick; for a stream pumped on demand, only when woken: see below) for the
 * stream to send what is due,
 * and @closed when the stream ends without the handler: the client went away or its deadline
 * passed (@code PNODE_CANCELLED), or the node is stopping (PNODE_UNAVAILABLE; called from the
 * thread of pnode_stop, once the loop has ended). @closed must answer @req (pnode_fail, which
 * sends nothing to a client that is gone) and release what the stream holds.
 *
 * Flow control: the messages a reader has not taken wait in the transport, and
 * pnode_stream_queued says how many bytes that is: the handler bounds it. Each message in
 * flight also counts as an unread answer of its connection (pnode_options
 * max_unread_bytes_per_connection, max_unread_bytes, send_timeout_ms): passing a bound ends the
 * stream with RESOURCE_EXHAUSTED, found when the message's turn to be written comes: the
 * stream's next pump finds it over (its @closed is called; a later pnode_stream_send returns
 * PT_ECANCELED). A stream occupies one of its connection's max_streams_per_connection for as
 * long as it lasts. The loop never writes a message to the socket itself: the runtime's sender
 * threads do, after the turn, in the order sent.
 */
typedef struct pnode_stream_ops {
    void (*pump)(pnode *node, void *ctx, pnode_request *req);
    void (*closed)(pnode *node, void *ctx, pnode_request *req, int code);
} pnode_stream_ops;

/* Makes @req a stream driven by @ops (static; not copied) with @ctx. Errors: PT_EINVAL (an
 * internal request, one that is waiting for something, or a stream already), PT_ESHUTDOWN
 * (the node is stopping: answer @req yourself). */
PT_API int pnode_stream_open(pnode *node, pnode_request *req, const pnode_stream_ops *ops,
                             void *ctx);

/* Packs @msg as the stream's next message (copied). Returns 0, PT_ECANCELED (the stream is
 * over: the client went away, or a transport bound ended it; send nothing more and end it
 * with pnode_fail), PT_EINVAL (not a stream), or PT_ENOMEM. */
PT_API int pnode_stream_send(pnode_request *req, const ProtobufCMessage *msg);

/* A message packed once and sent on many streams (the same changes to every watcher of all
 * vehicles), its bytes shared rather than copied. Loop thread. */
typedef struct pnode_message pnode_message;

/* Packs @msg into *@out, owned by the caller (free it with pnode_message_free). Returns 0,
 * PT_EINVAL (a NULL argument) or PT_ENOMEM. */
PT_API int pnode_message_pack(const ProtobufCMessage *msg, pnode_message **out);

/* Drops the caller's reference on @m (NULL: nothing): a message lives on until every stream
 * it was queued on has sent it. */
PT_API void pnode_message_free(pnode_message *m);

/* Queues @m on the stream @req as pnode_stream_send would, sharing its bytes; the same
 * returns. */
PT_API int pnode_stream_send_packed(pnode_request *req, const pnode_message *m);

/* Bytes of the stream's messages its reader has not taken yet (0 when it is not a stream). */
PT_API size_t pnode_stream_queued(const pnode_request *req);

/*
 * Streams pumped on demand. Pumping every open stream at every turn costs the loop one call per
 * stream per turn, however few have anything to send: with thousands of streams that are
 * mostly idle it is most of the loop's work. After pnode_stream_on_demand(@req), the runtime
 * calls @req's pump only at the end of a turn in which one of these happened:
 *   - pnode_stream_wake(@req) was called (during a pump: at the end of the next turn, which
 *     then comes at once);
 *   - its reader took messages so that fewer than the bytes given to
 *     pnode_stream_wake_below are left unread (one-shot: armed again by another call);
 *   - the transport ended the stream (a bound passed): the runtime then calls @closed.
 * So a handler that stops sending for want of something to send wakes its stream when that
 * comes, and one that stops because its reader is slow calls pnode_stream_wake_below with
 * its bound. A client that goes away still gets @closed at once, and a stopping node closes
 * every stream, as for any stream.
 *
 * pnode_stream_on_demand returns 0, or PT_EINVAL when @req is not an open stream.
 * pnode_stream_wake and pnode_stream_wake_below do nothing for a request that is not an open
 * stream pumped on demand. Loop thread only, like every stream function.
 */
PT_API int pnode_stream_on_demand(pnode_request *req);
PT_API void pnode_stream_wake(pnode_request *req);
PT_API void pnode_stream_wake_below(pnode_request *req, size_t bytes);

/* The id of the known leader, or 0. */
PT_API uint64_t pnode_leader(pnode *node);

/* The state machine's applied index (what a stale read reflects). */
PT_API uint64_t pnode_applied(pnode *node);

/* Maps a PT_E* code to the gRPC status code a client should see. */
PT_API int pnode_code_from_error(int err);

#ifdef __cplusplus
}
#endif
#endif
