/*
 * The gRPC transport of a node: one listen address serving the peer protocol (platoon.raft.v1,
 * see proto/platoon/raft/v1/raft.proto) and any unary methods the node registers (the public
 * API, platoon.v1), plus outbound lanes to peers and unary client calls (forwarding to the
 * leader).
 *
 * Threads. The transport runs one thread of its own, which drives a gRPC completion queue. The
 * node's loop thread calls the functions below; none of them blocks on the network. What
 * arrives (core messages, requests, completions of client calls) is posted as events to the
 * node's mailbox (mailbox.h), which the loop drains: the node's core never runs on the
 * transport's thread.
 *
 * Sending. pnet_transport_send encodes (copies) a core message and queues it on the lane of its
 * type for its destination (message.to). Each lane keeps one long-lived client stream to the
 * peer and sends its queue in order, many messages per stream message. While a peer is
 * unreachable its lanes' streams wait for the connection (reconnection is retried every
 * ~reconnect_ms); a lane's queue is bounded in messages and bytes, and when full the oldest
 * queued message is dropped and counted (Raft retransmits). Nothing is ever retried by the
 * transport itself: a stream message that failed is lost, and the core resends on its timers.
 *
 * Memory: everything handed in is copied; everything handed out in events belongs to the event.
 */
#ifndef PLATOON_NET_TRANSPORT_H
#define PLATOON_NET_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/mailbox.h"
#include "net/tls.h"
#include "platoon/raft.h"

typedef struct pnet_transport pnet_transport;

/* The most threads that poll a transport's completion queue (pnet_transport_options). */
#define PNET_MAX_IO_THREADS 64

typedef struct pnet_transport_options {
    /* Where to listen, "host:port" (port 0: any free port, see pnet_transport_port). NULL: no
     * server, only outbound traffic. */
    const char *listen_address;
    /* Where arriving events go (required; must outlive the transport). */
    pnet_mailbox *mailbox;
    /* Largest gRPC message accepted or sent, on both ends: the peer protocol's bound. Default
     * 16 MiB: an APPEND is bounded by the core's max_msg_bytes (default 1 MiB) except for one
     * entry (itself bounded by max_request_bytes), a snapshot chunk by snapshot_chunk_bytes
     * (1 MiB), and a stream message by max_batch_bytes. */
    size_t max_message_bytes;
    /* Largest request of a registered (unary) method: beyond it RESOURCE_EXHAUSTED, before the
     * request is copied or decoded. Default 64 KiB. */
    size_t max_request_bytes;
    /* Threads that do the transport's I/O (see transport_internal.h), in
     * [1, PNET_MAX_IO_THREADS]; half as many (rounded up) start the batches of answers and peer
     * messages. Default: the number of cores, at least 2 and at most 8. */
    int io_threads;
    /* Resource bounds (pnode_options documents each). */
    uint32_t max_streams_per_connection;
    size_t max_unread_bytes_per_connection;
    size_t max_unread_bytes;
    uint32_t send_timeout_ms;
    uint32_t handshake_timeout_ms;
    uint32_t max_idle_ms;
    size_t transport_memory_bytes;
    /* A stream message gathers queued core messages up to this many bytes (at least one message
     * is always sent, whatever its size). Default 4 MiB. */
    size_t max_batch_bytes;
    /* Bounds of one lane's queue. Defaults 64 MiB and 65536 messages. */
    size_t max_queue_bytes;
    size_t max_queue_msgs;
    /* Reconnection back-off to a peer (initial, minimum and maximum), also the pause before a
     * failed stream is reopened. Default 100 ms: a restarted peer is reached within a fraction
     * of an election timeout. */
    int reconnect_ms;
    /* The time one connection attempt to a peer (TCP and TLS handshakes) may take before it is
     * abandoned and retried. Default 2000 ms: a partition that heals is noticed within it. */
    int connect_timeout_ms;
    /* The address this node's peers dial it at ("host:port"), sent as the "platoon-sender"
     * metadata of every lane stream so that a receiver can answer a node it does not know yet
     * (a node that joins learns the leader's address this way). NULL: not sent. */
    const char *advertise_address;
    /* HTTP/2 keepalive: a ping after this much silence, and the connection is dropped if the
     * ping is not answered within as long again, so a peer that vanished without closing its
     * sockets is noticed. Default 2000 ms. */
    int keepalive_ms;
    /* This node's id: announced on every lane (the receiver checks it against the certificate
     * when TLS is on). 0 for a transport that only makes client calls. */
    uint64_t node_id;
    /* TLS material (tls.h); the transport takes its own reference. NULL: plaintext and no
     * identities, every caller may do anything (--insecure). With TLS, every connection is
     * mutual TLS: callers must present a certificate of the CA, and peers are dialed as
     * "node-<id>" and must present that node's certificate (auth.c). */
    pnet_tls *tls;
    /* Names of the methods the node will register (pnet_transport_register_method), known
     * before the server starts: gRPC then hands each call of them over with its request
     * message already read, one batch and one completion less per call than a method
     * registered only later. A name listed here is served once it is registered; a call that
     * comes before is refused like a call of an unknown method (status UNIMPLEMENTED). The
     * names are copied. */
    const char *const *methods;
    size_t n_methods;
} pnet_transport_options;

typedef struct pnet_transport_stats {
    uint64_t msgs_queued;       /* core messages accepted by pnet_transport_send */
    uint64_t msgs_sent;         /* ...and written to a stream successfully */
    uint64_t batches_sent;      /* stream messages written */
    uint64_t msgs_dropped_full; /* dropped from a full queue (the oldest) */
    uint64_t msgs_dropped_lost; /* in a stream message that failed */
    uint64_t msgs_received;     /* core messages delivered to the mailbox */
    uint64_t msgs_malformed;    /* core messages or stream messages refused as malformed */
    uint64_t streams_opened;    /* outbound lane streams started */
    uint64_t calls_received;    /* unary requests delivered to the mailbox */
    uint64_t calls_refused;     /* calls and lanes refused for who made them (TLS on) */
} pnet_transport_stats;

/* Fills @opts with the defaults above (listen_address and mailbox NULL). */
void pnet_transport_options_init(pnet_transport_options *opts);

/*
 * Creates the transport and starts its server and thread.
 * Errors: PT_EINVAL (no mailbox, a size of 0 or above INT_MAX), PT_EIO (the listen address
 * cannot be bound), PT_ENOMEM.
 */
int pnet_transport_new(const pnet_transport_options *opts, pnet_transport **out);

/*
 * Stops everything and frees the transport; safe at any moment. Outbound streams and client
 * calls are cancelled (each pending client call still posts its PNET_EV_CLIENT_DONE, with
 * status CANCELLED), served calls are cancelled (calls the loop still holds may still be
 * finished with pnet_call_reply/fail, which then return PT_ECANCELED), queued messages are
 * dropped. Returns once the gRPC layer holds nothing of the transport. NULL is ok.
 */
void pnet_transport_free(pnet_transport *t);

/* The port the server listens on (useful with port 0), or 0 without a server. */
int pnet_transport_port(pnet_transport *t);

/*
 * Serves the unary method @method (full name, e.g. "/platoon.v1.Platoon/UpdateVehicle"):
 * requests arrive as PNET_EV_CALL events carrying @ctx. A registered name replaces the previous
 * ctx. Calls to a method that is neither registered nor part of the peer protocol are answered
 * UNIMPLEMENTED. The name is copied. Errors: PT_EINVAL, PT_ENOMEM.
 */
int pnet_transport_register_method(pnet_transport *t, const char *method, void *ctx);

/*
 * Sets the function that prepares every request of a registered method on the transport's
 * threads before it is posted (pnet_prepare_fn, mailbox.h), with @ctx; NULL: none (the
 * default). Calls that have started keep the function they started with: set it before
 * registering methods.
 */
void pnet_transport_set_prepare(pnet_transport *t, pnet_prepare_fn fn, void *ctx);

/*
 * Adds or updates peer @id at @address ("host:port"; copied). Changing a peer's address drops
 * its queues and streams and starts afresh. Errors: PT_EINVAL (id 0, address NULL or longer
 * than PRAFT_ADDRESS_MAX - 1), PT_ESHUTDOWN, PT_ENOMEM.
 */
int pnet_transport_set_peer(pnet_transport *t, uint64_t id, const char *address);

/*
 * Replaces the TLS material (a reload): the next TLS handshakes, served and dialed, use @tls
 * (the transport takes a reference); outbound channels are made anew, so that they present the
 * new certificate (their queued messages are dropped: Raft retransmits); cached verdicts on
 * callers' certificates are dropped, so a revocation takes effect at the caller's next call.
 * Errors: PT_EINVAL (NULL, or a transport made without TLS).
 */
int pnet_transport_set_tls(pnet_transport *t, pnet_tls *tls);

/* Removes peer @id: its queued messages are dropped, its streams closed. PT_ENOTFOUND if none. */
int pnet_transport_remove_peer(pnet_transport *t, uint64_t id);

/*
 * Queues @msg for peer msg->to; never blocks on the network. @msg is encoded (copied) before
 * the call returns. Errors: PT_ENOTFOUND (no such peer; the message is dropped), PT_EINVAL
 * (message that cannot be encoded), PT_ESHUTDOWN, PT_ENOMEM. A full queue is not an error: the
 * oldest message is dropped and counted.
 */
int pnet_transport_send(pnet_transport *t, const praft_msg *msg);

/* Copies the counters into @out. */
void pnet_transport_stats_get(pnet_transport *t, pnet_transport_stats *out);

/* Writes the transport's metric families (calls answered by method and status code, peer
 * messages) in the Prometheus text format (common/metrics.h). Any thread. NULL @t writes the
 * families without samples. */
struct pt_prom;
void pnet_transport_metrics(pnet_transport *t, struct pt_prom *out);

/*
 * Answers @call (from a PNET_EV_CALL) with status OK and @len bytes of @data (copied), and
 * releases the loop's reference on it: @call must not be used afterwards. Any thread.
 * Returns 0, PT_ECANCELED (the client is gone or the transport stopped: nothing is sent, the
 * reference is released all the same), PT_ENOMEM (the call is failed with RESOURCE_EXHAUSTED
 * instead, and released).
 */
int pnet_call_reply(pnet_call *call, const void *data, size_t len);

/*
 * Answers @call with gRPC status @code (not 0) and @message (may be NULL), and releases the
 * loop's reference, like pnet_call_reply. Returns 0 or PT_ECANCELED.
 */
int pnet_call_fail(pnet_call *call, int code, const char *message);

/*
 * Server streams: a method may answer its request with any number of messages before its
 * status. pnet_call_stream_send queues @len bytes of @data (copied) as the next message of
 * @call and sends them in order, one at a time; the loop keeps its reference on the call and
 * ends the stream with pnet_call_fail (the status follows the queued messages). Any thread. Each
 * message in flight counts as an unread answer (the per-connection and total bounds, the send
 * timeout): passing a bound ends the stream with RESOURCE_EXHAUSTED, found when the message's
 * turn comes (the owner is told: pnet_call_stream_set_owner). A message is written to the socket
 * by a sender thread or by the completion of the message before it, never by the caller, so
 * that the node's loop hands a message over in a few hundred nanoseconds. pnet_call_stream_send
 * returns 0, PT_ECANCELED (the call is over: nothing more will be sent), PT_EINVAL or PT_ENOMEM.
 */
int pnet_call_stream_send(pnet_call *call, const void *data, size_t len);
/*
 * Bytes sent on many streams without a copy each: pnet_bytes_take takes @data (malloc'd; NULL
 * when out of memory, @data then still the caller's); pnet_call_stream_send_bytes queues them
 * on @call like pnet_call_stream_send, sharing them (reference counted, any thread); the bytes
 * are freed once pnet_bytes_free was called and every stream sent them or gave up.
 */
typedef struct pnet_bytes pnet_bytes;
pnet_bytes *pnet_bytes_take(void *data, size_t len);
void pnet_bytes_free(pnet_bytes *b);
size_t pnet_bytes_len(const pnet_bytes *b);
int pnet_call_stream_send_bytes(pnet_call *call, const pnet_bytes *b);
/* Marks @call a stream, counted by pnet_transport_live_streams until gRPC releases it. */
void pnet_call_stream_open(pnet_call *call);
/* Server streams not yet over on the gRPC side: a node that stops waits (a little) for their
 * last messages and status to go out before it tears the transport down. */
int pnet_transport_live_streams(pnet_transport *t);
/* Bytes of @call's messages not yet taken by gRPC's flow control (queued and in flight). */
size_t pnet_call_stream_queued(pnet_call *call);
/* Whether @call can send nothing more (its reader is gone, or it was ended). */
bool pnet_call_stream_ended(pnet_call *call);
/*
 * Telling the loop about a stream without the loop asking at every turn. @owner (the node's
 * request; NULL to stop) is kept with @call and handed back by pnet_call_stream_owner, so that
 * a PNET_EV_STREAM_READY or PNET_EV_CALL_CANCELLED event finds its stream at once. Once an
 * owner is set, a stream that the transport ends (a bound passed, the reader gone) posts one
 * PNET_EV_STREAM_READY. pnet_call_stream_notify_below arms one more: when the bytes of @call's
 * messages not yet taken fall under @bytes (one-shot); it returns true, arming nothing, when
 * they already are (or the stream is over).
 */
void pnet_call_stream_set_owner(pnet_call *call, void *owner);
void *pnet_call_stream_owner(pnet_call *call);
bool pnet_call_stream_notify_below(pnet_call *call, size_t bytes);

/*
 * Batching of sends. Answers (pnet_call_reply/fail) and messages to peers (pnet_transport_send)
 * are written to their sockets by the transport's sender threads, not by the caller. Between
 * pnet_transport_hold and pnet_transport_flush (one turn of the node's loop), the answers the
 * holding thread hands over are not started and nothing it sends wakes a sender (other
 * threads' sends go at once); the flush wakes each sender once for all of them (messages to
 * peers queued meanwhile may go earlier, with a drain a sender has under way). When the turn
 * had only one or two sends, the senders nothing to do and the caller says it is @idle (nothing
 * waits for it), the flush starts them itself: a wake-up would cost as much, and lengthen the
 * answer's way. Without a hold each send wakes a sender if it sleeps. Both calls are cheap;
 * flush must follow hold in the same thread.
 */
void pnet_transport_hold(pnet_transport *t);
void pnet_transport_flush(pnet_transport *t, bool idle);

/*
 * Starts a unary call of @method at node @node_id's @address with @len bytes of @data (copied),
 * on behalf of @caller (NULL: this node itself; with TLS, the call carries the caller's
 * identity, which the receiver believes because this node's certificate vouches for it), with
 * deadline
 * @deadline_ms (pnet_now_ms() clock; INT64_MAX: none). Its completion is posted to the mailbox
 * as one PNET_EV_CLIENT_DONE event carrying @done and @ctx, whatever happens (including
 * UNAVAILABLE when nothing listens there, DEADLINE_EXCEEDED, and CANCELLED at shutdown); the
 * loop runs done(ctx, status, message, data, len) when it handles the event. Channels are
 * cached per address. Errors (no event is posted then): PT_EINVAL, PT_ESHUTDOWN, PT_ENOMEM.
 */
int pnet_client_call(pnet_transport *t, uint64_t node_id, const char *address,
                     const pnet_identity *caller, const char *method, const void *data, size_t len,
                     int64_t deadline_ms, pnet_client_done_fn done, void *ctx);

#endif
