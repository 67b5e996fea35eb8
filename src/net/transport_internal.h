/*
 * The transport's internals, shared by transport.c (life cycle, completion-queue thread), peers.c
 * (peers and their outbound lanes), server.c (calls served: peer streams and unary methods) and
 * client.c (outbound unary calls).
 *
 * Locking. One mutex, t->mu, guards the transport: peers, lanes, counters, lists of calls. The
 * completion-queue threads hold it while they handle a completion of the peer protocol, a
 * client call or a stream message; the node's thread holds it in pnet_transport_send and
 * friends. It is never held while decoding a large stream message or waiting. A served unary
 * call has its own mutex, because the loop answers it with no access to the transport (the call
 * may outlive it); the order is t->mu, then call->mu. A unary call's own completions (its
 * request, its answer sent, its close, and a server stream's message sent) need nothing of the
 * transport that t->mu guards, so they are handled under the call's mutex alone: the several
 * completion-queue threads then decode and prepare requests side by side, and do not wait for the
 * loop's sends. The outbox's ob_mu comes after both and is held only to link or unlink.
 *
 * Threads. The completion-queue threads ("pt-net") handle completions; the sender threads
 * ("pt-send", outbox.c) start the batches the node's loop hands over (answers, server streams'
 * messages, lane messages), so that the socket writes gRPC does in the starting thread happen off
 * the loop.
 */
#ifndef PLATOON_NET_TRANSPORT_INTERNAL_H
#define PLATOON_NET_TRANSPORT_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/support/time.h>

#include "net/codec.h"
#include "net/mailbox.h"
#include "net/tls.h"
#include "net/transport.h"

/* What a completion-queue tag points to: the kind of operation and its owner. */
enum pnet_tag_kind {
    PNET_TAG_LANE_SEND = 1,
    PNET_TAG_LANE_STATUS,
    PNET_TAG_REQUEST,
    PNET_TAG_STREAM_RECV,
    PNET_TAG_STREAM_END,
    PNET_TAG_UNARY_RECV,
    PNET_TAG_UNARY_CLOSE,
    PNET_TAG_UNARY_SEND,
    PNET_TAG_STREAM_SEND, /* a message of a server stream (server.c, pnet_call_stream_send) */
    PNET_TAG_CLIENT,
    PNET_TAG_SHUTDOWN,
};

struct pnet_tag {
    int kind;
    void *obj;
};

/* One encoded core message waiting in a lane (a RaftBatch element, see codec.h). */
struct pnet_item {
    struct pnet_item *next;
    uint8_t *buf;
    size_t len;
};

struct pnet_peer;

/* One outbound lane to one peer: a queue and the client stream that drains it. */
/* Metadata key of a lane stream naming the address its sender advertises. */
#define PNET_SENDER_METADATA    "platoon-sender"
/* ...and the node id it speaks for, which must be its certificate's (TLS on). */
#define PNET_SENDER_ID_METADATA "platoon-sender-id"
/* Metadata key of a forwarded request naming its original caller (pnet__identity_encode);
 * believed only from a node certificate. */
#define PNET_PRINCIPAL_METADATA "platoon-principal"
#define PNET_PRINCIPAL_MAX      512
/* Room for the channel arguments of outbound channels (one more is added per channel). */
#define PNET_CLIENT_ARGS_MAX    16
/* Certificates whose verdict is cached (auth.c), and refusals remembered for the log. */
#define PNET_IDCACHE_SIZE       256
#define PNET_REFUSALS_LOGGED    64

struct pnet_outlane {
    struct pnet_peer *peer;
    int index; /* enum pnet_lane */
    struct pnet_item *head, *tail;
    size_t q_bytes, q_msgs;

    grpc_call *call;   /* the stream, NULL when none */
    int ops;           /* batches started on @call and not completed */
    bool started;      /* initial metadata sent */
    bool sending;      /* a SEND_MESSAGE is in flight */
    bool broken;       /* @call failed: no more sends on it */
    bool delivered;    /* a send on @call succeeded: reopen at once after it ends */
    size_t inflight_n; /* core messages in the SEND_MESSAGE in flight */
    int64_t retry_at_ms;
    grpc_byte_buffer *send_buf;

    grpc_metadata_array md_initial, md_trailing;
    grpc_metadata sender_md[2]; /* sent with the stream's initial metadata */
    grpc_byte_buffer *response;
    grpc_status_code status;
    grpc_slice details;

    struct pnet_tag tag_send, tag_status;
};

struct pnet_peer {
    struct pnet_peer *next;
    uint64_t id;
    char *address;
    grpc_channel *channel;
    bool removed; /* waiting for its streams to end before it is freed */
    struct pnet_outlane lanes[PNET_LANE_COUNT];
};

/* The number of gRPC status codes (OK = 0 .. UNAUTHENTICATED = 16). */
#define PNET_N_CODES 17

struct pnet_method {
    struct pnet_method *next;
    char *name;
    void *ctx;
    bool served; /* pnet_transport_register_method was called for it */
    /* Registered with gRPC before the server started (pnet_transport_options.methods): its
     * calls come with their request, through request slots of its own. NULL otherwise. */
    void *grpc_method;
    /* Calls answered, by status code (metrics.c); counted without t->mu. */
    atomic_uint_fast64_t handled[PNET_N_CODES];
};

/* A channel used for unary client calls, cached per address. */
struct pnet_chan {
    struct pnet_chan *next;
    uint64_t node_id;
    char *address;
    grpc_channel *channel;
};

struct pnet_client_call;

/* One sender thread of the outbox (outbox.c); guarded by the transport's ob_mu. */
#define PNET_MAX_SENDERS (PNET_MAX_IO_THREADS / 2)
struct pnet_sender {
    pnet_transport *t;
    pthread_t thread;
    pthread_cond_t cv;
    struct pnet_call *head, *tail; /* answers whose batch is to be started, in order */
    bool lanes;                    /* (sender 0 only) a lane has queued messages to start */
    bool busy;                     /* draining: no need to wake it */
};

struct pnet_transport {
    pthread_mutex_t mu;
    pnet_transport_options opts;
    char *listen_address;
    char advertise[PRAFT_ADDRESS_MAX]; /* opts.advertise_address, "" if none */
    pnet_mailbox *mb;

    grpc_completion_queue *cq;
    grpc_server *server;
    int port;
    /* The threads that poll the completion queue. gRPC does its I/O on the threads that poll
     * (reading, TLS, HTTP/2 framing), so with one thread a connection busy with a large
     * message holds up every other, peers' heartbeats included; several let the others
     * proceed. Each handles its completions under t->mu. */
    pthread_t threads[PNET_MAX_IO_THREADS];
    int n_threads;

    grpc_channel_args client_args;
    grpc_arg client_arg_v[PNET_CLIENT_ARGS_MAX];
    char sender_id[24]; /* this node's id in decimal, sent with every lane */

    /* TLS (auth.c). @secure never changes after creation; tls_mu guards the rest, and is taken
     * after t->mu when both are needed. */
    bool secure;
    pthread_mutex_t tls_mu;
    pnet_tls *tls;
    bool tls_served; /* the server's handshakes use generation tls_served_generation */
    uint64_t tls_served_generation;
    struct pnet_idcache_entry *idcache;
    uint64_t refusals_logged[PNET_REFUSALS_LOGGED];
    size_t n_refusals_logged;
    uint64_t refusals_overflow;
    atomic_uint_fast64_t calls_refused; /* counted outside t->mu */

    struct pnet_peer *peers;
    struct pnet_method *methods;
    struct pnet_chan *chans;
    struct pnet_chan *retired_chans; /* replaced by a reload, freed with the transport */
    struct pnet_client_call *client_calls;

    /* Answers handed to gRPC and not yet taken by their reader (server.c): the calls, and
     * their bytes per connection and in all. Guarded by unread_mu (taken after a call's mu). */
    pthread_mutex_t unread_mu;
    struct pnet_call *unread;
    struct pnet_unread_conn *unread_conns;
    size_t unread_bytes;
    int64_t unread_swept_ms;

    atomic_int live_calls;   /* grpc_call objects not yet released */
    atomic_int live_streams; /* ...of them server streams (pnet_call_stream_open) */
    int pending_requests;    /* grpc_server_request_call not yet completed */
    /* Request slots whose call was taken, kept (a few) for the next slots: one allocation
     * less per call (server.c; t->mu). */
    struct request *spare_requests;
    int n_spare_requests;
    bool shutting_down;
    bool server_done;
    struct pnet_tag tag_shutdown;

    /* The outbox (outbox.c): answers and lane messages the node's loop handed over, started
     * by the sender threads so that the loop never writes to a socket (gRPC writes in the
     * thread that starts a batch). Guarded by ob_mu, taken after t->mu and after a call's mu,
     * never held while anything else is taken. */
    pthread_mutex_t ob_mu;
    struct pnet_sender senders[PNET_MAX_SENDERS];
    int n_senders;
    unsigned ob_next_sender; /* where the next answer (or a turn's first run) goes */
    bool ob_hold;            /* the loop is in a turn: its flush deals what it handed over */
    pthread_t ob_holder;     /* ...the thread that holds (only its sends are held) */
    struct pnet_call *ob_held_head, *ob_held_tail; /* handed over during the turn */
    size_t ob_held_n;
    bool ob_held_lanes;
    bool ob_stop;

    pnet_transport_stats stats;
    atomic_uint_fast64_t calls_received; /* stats.calls_received, counted without t->mu */
    /* When the completion-queue threads last did their periodic work (lane retries, the unread
     * sweep, the end check) under t->mu: a unary call's completions, handled without t->mu,
     * take it for that at most once a millisecond. */
    _Atomic int64_t chores_ms;
    /* pnet_transport_set_prepare (guarded by t->mu; copied into each call as it starts). */
    pnet_prepare_fn prepare;
    void *prepare_ctx;
    /* Calls of methods neither registered nor of the peer protocol (answered UNIMPLEMENTED). */
    atomic_uint_fast64_t unknown_calls;
};

/* The unread answers' bytes of one connection, while it has any (server.c). */
struct pnet_unread_conn {
    struct pnet_unread_conn *next;
    size_t bytes;
    char peer[];
};

/* outbox.c: hands answer @call (its batch prepared, counted in its ops), a server stream's next
 * message (its turn taken, counted in its ops) or the lanes (@call NULL, t->mu held) to a sender
 * thread. pnet__outbox_start starts the senders (PT_ENOMEM if
 * none could be); pnet__outbox_stop stops them once they have drained what they hold, and
 * pnet__outbox_senders says how many a transport with @io_threads has. */
void pnet__outbox_push(pnet_transport *t, struct pnet_call *call);
int pnet__outbox_start(pnet_transport *t);
void pnet__outbox_stop(pnet_transport *t);
int pnet__outbox_senders(int io_threads);
/* server.c: appends @call to an outbox list (ob_mu held); starts the batch a call's answer left
 * in the outbox (the sender thread) and returns the call after it in the list. */
void pnet__call_outbox_link(struct pnet_call **head, struct pnet_call **tail,
                            struct pnet_call *call);
/* server.c: the call after @call in its outbox list (ob_mu held). */
struct pnet_call *pnet__call_outbox_next(struct pnet_call *call);
struct pnet_call *pnet__call_start_queued(struct pnet_call *call);
/* peers.c (t->mu held): starts sending on every lane that has queued messages and can. */
void pnet__lanes_pump(pnet_transport *t);

/* server.c (t->mu held): cancels the answers not taken within send_timeout_ms. */
void pnet__unread_sweep(pnet_transport *t);

/* peers.c (t->mu held) */
void pnet__lane_on_send(pnet_transport *t, struct pnet_outlane *l, bool ok);
void pnet__lane_on_status(pnet_transport *t, struct pnet_outlane *l);
void pnet__lanes_retry(pnet_transport *t); /* reopens failed lanes whose pause is over */
void pnet__peers_reap(pnet_transport *t);  /* frees removed peers whose streams ended */
void pnet__peers_cancel_all(pnet_transport *t);
void pnet__peers_free_all(pnet_transport *t); /* after the completion-queue thread ended */

/* server.c (t->mu held) */
/* Counts a call of @m answered with @code (metrics.c). Any thread. NULL @m is ignored. */
void pnet__count_call(struct pnet_method *m, int code);

/* Offers gRPC a slot for the next call of method @m, registered with it (its calls come with
 * their request), or of any other method (@m NULL). */
void pnet__server_request(pnet_transport *t, struct pnet_method *m);
/* Handles a completion of the server's; returns a call of a registered method whose request
 * arrived with it, to be handed on with pnet__server_deliver once t->mu is released (the
 * request is prepared there, outside the lock), or NULL. */
struct pnet_call *pnet__server_handle(pnet_transport *t, struct pnet_tag *tag, bool ok);
/* Without t->mu: hands the request of @call (from pnet__server_handle) to the loop. */
void pnet__server_deliver(pnet_transport *t, struct pnet_call *call);

/* client.c */
void pnet__client_handle(pnet_transport *t, struct pnet_tag *tag, bool ok);
void pnet__client_cancel_all(pnet_transport *t);
void pnet__chans_free(pnet_transport *t);

/* auth.c */
grpc_server_credentials *pnet__server_creds(pnet_transport *t);
/* A channel to node @node_id at @address: TLS accepting only that node's certificate, or
 * plaintext without TLS. NULL on failure. */
grpc_channel *pnet__channel_new(pnet_transport *t, const char *address, uint64_t node_id);
/* Who is making a served call (lane >= 0: a peer lane of that index; -1: a unary call), or
 * why it is refused: returns 0 or the gRPC status to end the call with, @why saying why.
 * *via is the node that forwarded the call for @who, 0 if none. Without t->mu. */
int pnet__auth_call(pnet_transport *t, grpc_call *call, const grpc_metadata_array *md, int lane,
                    pnet_identity *who, uint64_t *via, char *why, size_t cap);
pnet_tls *pnet__tls_get(pnet_transport *t); /* a reference on the material in use, or NULL */
int pnet__auth_init(pnet_transport *t);     /* TLS on: PT_ENOMEM or 0 */
void pnet__auth_free(pnet_transport *t);

/* peers.c (t->mu held): the channel of peer @id if it is at @address, else NULL. */
grpc_channel *pnet__peer_channel(pnet_transport *t, uint64_t id, const char *address);

/* peers.c, client.c (t->mu held): make outbound channels anew after a reload. */
void pnet__peers_redial(pnet_transport *t);
void pnet__chans_retire(pnet_transport *t);

/* The value of metadata @key in @md, copied into @out ("" if absent or too long). */
void pnet__metadata_value(const grpc_metadata_array *md, const char *key, char *out, size_t cap);

/* Releases a reference on a served call (mailbox.c, server.c). */
void pnet__call_unref(pnet_call *call);

/* Copies the bytes of @bb into a malloc'd buffer (*out, *len). Returns 0 or PT_ENOMEM. */
int pnet__buffer_read(grpc_byte_buffer *bb, uint8_t **out, size_t *len);

/* Frees the spare request slots (the transport's end, once no slot is pending). */
void pnet__server_free_spares(pnet_transport *t);

/* Converts a deadline of the pnet_now_ms() clock to gRPC's, and back. */
gpr_timespec pnet__deadline_to_gpr(int64_t deadline_ms);
int64_t pnet__deadline_from_gpr(gpr_timespec deadline);

#endif
