/*
 * Calls served by the transport: the peer protocol's lanes (client streams of RaftBatch), the
 * unary methods the node registered (answered once, or as a server stream: see "Server
 * streams" below), and UNIMPLEMENTED for anything else.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/alloc.h>

#include "common/log.h"
#include "net/transport_internal.h"

/* A request slot: grpc_server_request_call fills it when a call arrives, or, for a method
 * registered with gRPC (@m not NULL), grpc_server_request_registered_call, which also reads the
 * request message (@payload) and the deadline; @details stays empty then. */
struct request {
    struct pnet_tag tag;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
    struct pnet_method *m;
    gpr_timespec deadline;
    grpc_byte_buffer *payload;
    struct request *next_spare; /* in t->spare_requests */
};

/* How many finished request slots are kept for reuse: as many as may be waiting at once for a
 * few methods; more would only hold memory. */
#define SPARE_REQUESTS 32

/* A served stream of the peer protocol, or a call answered UNIMPLEMENTED at once (lane -1). */
struct stream {
    struct pnet_tag tag_recv, tag_end;
    grpc_call *call;
    int lane;
    char sender[PRAFT_ADDRESS_MAX]; /* the "platoon-sender" metadata, "" if none */
    uint64_t node_id;               /* the certificate's node (TLS on), else 0 */
    bool impostor;                  /* a message spoke for another node: the stream is ended */
    grpc_byte_buffer *recv;
    uint64_t accepted;
    int cancelled;
    grpc_byte_buffer *summary;
    grpc_slice details;
};

/* A served unary call, handed to the node's loop. */
struct pnet_call {
    struct pnet_tag tag_recv, tag_close, tag_send;
    pthread_mutex_t mu;
    grpc_call *call; /* NULL once released */
    int refs;        /* the gRPC side (while @call lives), the loop, CANCELLED events */
    int ops;         /* batches pending on @call */
    bool delivered;  /* the loop has it */
    bool finished;   /* an answer was sent (or the loop gave it up) */
    bool closed;     /* RECV_CLOSE_ON_SERVER completed: nothing more can be sent */
    int cancelled;
    grpc_byte_buffer *recv;
    grpc_byte_buffer *send;
    grpc_slice details;
    const char *method; /* its registration's name: lives as long as the transport */
    void *method_ctx;
    struct pnet_method *m;   /* its registration, for the count of answers (metrics.c) */
    pnet_prepare_fn prepare; /* the transport's, when the call started */
    void *prepare_ctx;
    int64_t deadline_ms;
    pnet_identity who;
    uint64_t via;
    /* The answer's bytes while gRPC holds them for a reader that has not taken them. */
    pnet_transport *t;
    char *peer; /* gRPC's name of the connection, "ipv4:10.0.0.1:43210" (gpr_malloc'd) */
    size_t unread_len;
    int64_t unread_since_ms;
    bool unread_linked, unread_cancelled;
    struct pnet_call *unext, *uprev;
    /* Server streams (pnet_call_stream_send): the messages waiting for the one send in flight,
     * their bytes with it, and the status to send once they are all out. */
    bool streaming; /* counted in t->live_streams until released */
    bool md_sent;   /* initial metadata went out with the first message */
    struct stream_item *sq_head, *sq_tail;
    size_t sq_bytes;
    bool send_inflight;
    grpc_byte_buffer *inflight;
    size_t inflight_len;
    bool end_pending;
    grpc_status_code end_code;
    char *end_message;
    struct pnet_tag tag_stream_send;
    /* Telling the loop (PNET_EV_STREAM_READY): the stream's owner in the node (set by the
     * loop, read by it and, under @mu, here), and a wake-up armed by
     * pnet_call_stream_notify_below for when its queue falls under @notify_below bytes. A stream
     * ended here (a bound passed, the reader gone) is always told, once. */
    void *owner;
    bool notify_armed;
    size_t notify_below;
    bool end_told;
    /* The answer's batch while it waits in the transport's outbox (counted in @ops), or, with
     * @ob_stream, the stream's next send: its turn is taken (@send_inflight) and the sender
     * thread starts it from the queue's head. */
    struct pnet_call *ob_next;
    grpc_op ob_ops[3];
    size_t ob_n;
    bool ob_stream;
    /* A waiting answer's message (ob_ops[ob_msg]) as bytes: the loop only copies them here, and
     * the sender makes them a gRPC message (gRPC's allocations and copy happen off the loop).
     * @ob_data is @ob_inline when they fit, else malloc'd; NULL when the answer has none. */
    uint8_t *ob_data;
    size_t ob_len;
    size_t ob_msg;
    uint8_t ob_inline[192];
};

/* A message of a server stream waiting for its turn. */
struct stream_item {
    struct stream_item *next;
    grpc_byte_buffer *bb;
    size_t len;
};

static void stream_queue_drop(pnet_call *c);
static void stream_start_queued(pnet_transport *t, pnet_call *c);

/* ============================================================================================
 * Accepting calls
 * ========================================================================================== */

void pnet__server_request(pnet_transport *t, struct pnet_method *m)
{
    struct request *r = t->spare_requests;
    if (r != NULL) {
        t->spare_requests = r->next_spare;
        t->n_spare_requests--;
        memset(r, 0, sizeof(*r));
    } else if ((r = calloc(1, sizeof(*r))) == NULL) {
        /* Without a slot no call is accepted until the next completion tries again. */
        return;
    }
    r->tag = (struct pnet_tag){.kind = PNET_TAG_REQUEST, .obj = r};
    r->m = m;
    grpc_call_details_init(&r->details);
    grpc_metadata_array_init(&r->md);
    grpc_call_error e =
        m != NULL
            ? grpc_server_request_registered_call(t->server, m->grpc_method, &r->call, &r->deadline,
                                                  &r->md, &r->payload, t->cq, t->cq, &r->tag)
            : grpc_server_request_call(t->server, &r->call, &r->details, &r->md, t->cq, t->cq,
                                       &r->tag);
    if (e != GRPC_CALL_OK) {
        grpc_call_details_destroy(&r->details);
        grpc_metadata_array_destroy(&r->md);
        free(r);
        return;
    }
    t->pending_requests++;
}

/* ============================================================================================
 * Peer streams
 * ========================================================================================== */

static void stream_recv_next(pnet_transport *t, struct stream *s);

/* Ends a stream: status (OK with a summary, or UNIMPLEMENTED), then release. */
static void stream_end(pnet_transport *t, struct stream *s)
{
    grpc_op ops[4];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (s->lane >= 0) {
        Platoon__Raft__V1__StreamSummary sum = PLATOON__RAFT__V1__STREAM_SUMMARY__INIT;
        uint8_t buf[16];
        sum.messages = s->accepted;
        size_t len = platoon__raft__v1__stream_summary__pack(&sum, buf);
        grpc_slice slice = grpc_slice_from_copied_buffer((const char *)buf, len);
        s->summary = grpc_raw_byte_buffer_create(&slice, 1);
        grpc_slice_unref(slice);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = s->summary;
        s->details = grpc_empty_slice();
        ops[n].data.send_status_from_server.status = GRPC_STATUS_OK;
    } else {
        s->details = grpc_slice_from_static_string("unknown method");
        ops[n].data.send_status_from_server.status = GRPC_STATUS_UNIMPLEMENTED;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n++].data.send_status_from_server.status_details = &s->details;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n++].data.recv_close_on_server.cancelled = &s->cancelled;
    if (grpc_call_start_batch(s->call, ops, n, &s->tag_end, NULL) != GRPC_CALL_OK) {
        /* Cannot happen with a well-formed batch; release the call all the same. */
        grpc_call_cancel(s->call, NULL);
        grpc_call_unref(s->call);
        t->live_calls--;
        if (s->summary != NULL) {
            grpc_byte_buffer_destroy(s->summary);
        }
        grpc_slice_unref(s->details);
        free(s);
    }
}

static void stream_recv_next(pnet_transport *t, struct stream *s)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &s->recv;
    if (grpc_call_start_batch(s->call, &op, 1, &s->tag_recv, NULL) != GRPC_CALL_OK) {
        stream_end(t, s);
    }
}

/* Collects decoded messages into a chain of events, posted at once. */
struct collect {
    pnet_event *head, *tail;
    size_t n;
    bool nomem;
    const char *sender;
    uint64_t node_id;  /* messages must come from this node (0: any) */
    uint64_t impostor; /* a message claimed to come from this other node */
    uint64_t refused;
};

static void collect_msg(void *ctx, praft_msg *m)
{
    struct collect *c = ctx;
    if (c->node_id != 0 && m->from != c->node_id) {
        /* A node speaking for another one: what TLS is there to prevent. */
        c->impostor = m->from;
        c->refused++;
        pnet_msg_free(m);
        return;
    }
    pnet_event *ev = calloc(1, sizeof(*ev));
    if (ev == NULL) {
        pnet_msg_free(m);
        c->nomem = true;
        return;
    }
    ev->type = PNET_EV_MSG;
    ev->msg = m;
    memcpy(ev->peer_address, c->sender, sizeof(ev->peer_address));
    if (c->tail != NULL) {
        c->tail->next = ev;
    } else {
        c->head = ev;
    }
    c->tail = ev;
    c->n++;
}

static void stream_on_recv(pnet_transport *t, struct stream *s, bool ok)
{
    if (!ok || s->recv == NULL) {
        /* The peer closed its stream, or it was cancelled (peer gone, shutdown). */
        stream_end(t, s);
        return;
    }
    grpc_byte_buffer *bb = s->recv;
    s->recv = NULL;

    /* Decoding a large message takes a while: do it without blocking the node's sends. Only
     * this thread touches a served stream, so the stream needs no lock meanwhile. */
    pthread_mutex_unlock(&t->mu);
    struct collect c = {.sender = s->sender, .node_id = s->node_id};
    uint64_t bad = 0;
    uint8_t *bytes = NULL;
    size_t len = 0;
    int rc = pnet__buffer_read(bb, &bytes, &len);
    grpc_byte_buffer_destroy(bb);
    if (rc == 0) {
        rc = pnet__batch_decode(bytes, len, s->lane, collect_msg, &c, &bad);
        free(bytes);
    }
    pnet__mailbox_post_list(t->mb, c.head, c.tail, c.n);
    pthread_mutex_lock(&t->mu);

    t->stats.msgs_received += c.n;
    t->stats.msgs_malformed += bad + c.refused + (rc == PT_EMALFORMED ? 1 : 0);
    s->accepted += c.n;
    if (c.impostor != 0) {
        PT_WARN("node %" PRIu64 " sent a message as node %" PRIu64 "; its lane is closed",
                s->node_id, c.impostor);
        s->impostor = true;
        grpc_call_cancel_with_status(s->call, GRPC_STATUS_PERMISSION_DENIED,
                                     "a message names another node as its sender", NULL);
    }
    stream_recv_next(t, s);
}

static void stream_on_end(pnet_transport *t, struct stream *s)
{
    grpc_call_unref(s->call);
    t->live_calls--;
    if (s->summary != NULL) {
        grpc_byte_buffer_destroy(s->summary);
    }
    grpc_slice_unref(s->details);
    free(s);
}

void pnet__metadata_value(const grpc_metadata_array *md, const char *key, char *out, size_t cap)
{
    out[0] = '\0';
    size_t klen = strlen(key);
    for (size_t i = 0; i < md->count; i++) {
        const grpc_slice *k = &md->metadata[i].key;
        const grpc_slice *v = &md->metadata[i].value;
        if (GRPC_SLICE_LENGTH(*k) == klen && memcmp(GRPC_SLICE_START_PTR(*k), key, klen) == 0 &&
            GRPC_SLICE_LENGTH(*v) < cap) {
            memcpy(out, GRPC_SLICE_START_PTR(*v), GRPC_SLICE_LENGTH(*v));
            out[GRPC_SLICE_LENGTH(*v)] = '\0';
            return;
        }
    }
}

static void stream_start(pnet_transport *t, grpc_call *call, int lane,
                         const grpc_metadata_array *md, const pnet_identity *who)
{
    struct stream *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        grpc_call_unref(call);
        t->live_calls--;
        return;
    }
    s->call = call;
    s->lane = lane;
    pnet__metadata_value(md, PNET_SENDER_METADATA, s->sender, sizeof(s->sender));
    s->node_id = who->kind == PNET_ID_NODE ? who->node_id : 0;
    s->tag_recv = (struct pnet_tag){.kind = PNET_TAG_STREAM_RECV, .obj = s};
    s->tag_end = (struct pnet_tag){.kind = PNET_TAG_STREAM_END, .obj = s};
    if (lane >= 0) {
        stream_recv_next(t, s);
    } else {
        stream_end(t, s);
    }
}

/* ============================================================================================
 * Unary calls for the node
 * ========================================================================================== */

void pnet__call_unref(pnet_call *c)
{
    pthread_mutex_lock(&c->mu);
    int refs = --c->refs;
    pthread_mutex_unlock(&c->mu);
    if (refs > 0) {
        return;
    }
    pthread_mutex_destroy(&c->mu);
    stream_queue_drop(c);
    if (c->ob_data != c->ob_inline) {
        free(c->ob_data); /* an answer that never reached its sender; NULL otherwise */
    }
    free(c->end_message);
    gpr_free(c->peer);
    free(c);
}

/* ============================================================================================
 * Unread answers
 *
 * A unary answer stays in gRPC's buffers until its reader's HTTP/2 window lets it out: a
 * client that never reads would pin every answer it asked for. So the bytes handed to gRPC
 * and not yet taken are counted per connection and in all; an answer that would pass either
 * bound is replaced by RESOURCE_EXHAUSTED (a few bytes), and one not taken within the send
 * timeout is cancelled, which gives its memory back.
 * ========================================================================================== */

static struct pnet_unread_conn **unread_conn_slot(pnet_transport *t, const char *peer)
{
    struct pnet_unread_conn **p = &t->unread_conns;
    while (*p != NULL && strcmp((*p)->peer, peer) != 0) {
        p = &(*p)->next;
    }
    return p;
}

/* Counts @len bytes of @c's answer, or says in @why which bound it would pass. */
static bool unread_admit(pnet_transport *t, pnet_call *c, size_t len, char *why, size_t cap)
{
    const char *peer = c->peer != NULL ? c->peer : "";
    bool ok = false;
    pthread_mutex_lock(&t->unread_mu);
    struct pnet_unread_conn **slot = unread_conn_slot(t, peer);
    size_t conn_bytes = *slot != NULL ? (*slot)->bytes : 0;
    if (conn_bytes + len > t->opts.max_unread_bytes_per_connection) {
        snprintf(why, cap,
                 "this connection has %zu bytes of answers it has not read (the limit is %zu): "
                 "read the answers, or make fewer calls at once",
                 conn_bytes, t->opts.max_unread_bytes_per_connection);
    } else if (t->unread_bytes + len > t->opts.max_unread_bytes) {
        snprintf(why, cap, "the node holds too many answers its clients have not read; retry");
    } else if (*slot == NULL && (*slot = calloc(1, sizeof(**slot) + strlen(peer) + 1)) == NULL) {
        snprintf(why, cap, "out of memory");
    } else {
        strcpy((*slot)->peer, peer);
        (*slot)->bytes += len;
        t->unread_bytes += len;
        c->unread_len = len;
        c->unread_since_ms = pnet_now_ms();
        c->unread_linked = true;
        c->uprev = NULL;
        c->unext = t->unread;
        if (t->unread != NULL) {
            t->unread->uprev = c;
        }
        t->unread = c;
        ok = true;
    }
    pthread_mutex_unlock(&t->unread_mu);
    return ok;
}

/* The answer of @c was taken by its reader, or will never be sent. */
static void unread_release(pnet_transport *t, pnet_call *c)
{
    pthread_mutex_lock(&t->unread_mu);
    if (c->unread_linked) {
        struct pnet_unread_conn **slot = unread_conn_slot(t, c->peer != NULL ? c->peer : "");
        if (*slot != NULL) {
            (*slot)->bytes -= c->unread_len;
            if ((*slot)->bytes == 0) {
                struct pnet_unread_conn *gone = *slot;
                *slot = gone->next;
                free(gone);
            }
        }
        t->unread_bytes -= c->unread_len;
        if (c->uprev != NULL) {
            c->uprev->unext = c->unext;
        } else {
            t->unread = c->unext;
        }
        if (c->unext != NULL) {
            c->unext->uprev = c->uprev;
        }
        c->unread_linked = false;
    }
    pthread_mutex_unlock(&t->unread_mu);
}

void pnet__unread_sweep(pnet_transport *t)
{
    int64_t now = pnet_now_ms();
    if (now - t->unread_swept_ms < 1000) {
        return;
    }
    t->unread_swept_ms = now;
    pthread_mutex_lock(&t->unread_mu);
    for (pnet_call *c = t->unread; c != NULL; c = c->unext) {
        /* c->call is released only once no batch is pending on it, so only after its send is
         * over, which unlinks the call under unread_mu first: it is valid here. */
        if (!c->unread_cancelled && now - c->unread_since_ms > (int64_t)t->opts.send_timeout_ms) {
            c->unread_cancelled = true;
            grpc_call_cancel_with_status(c->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                                         "the answer was not read in time", NULL);
        }
    }
    pthread_mutex_unlock(&t->unread_mu);
}

/* With c->mu held: releases the gRPC call once nothing more can happen on it. Returns true if
 * the gRPC side's reference must be dropped (after unlocking). */
static bool call_maybe_release(pnet_transport *t, pnet_call *c)
{
    if (c->call == NULL || c->ops > 0 || !c->closed) {
        return false;
    }
    grpc_call_unref(c->call);
    c->call = NULL;
    t->live_calls--;
    if (c->recv != NULL) {
        grpc_byte_buffer_destroy(c->recv);
        c->recv = NULL;
    }
    if (c->send != NULL) {
        grpc_byte_buffer_destroy(c->send);
        c->send = NULL;
    }
    grpc_slice_unref(c->details);
    c->details = grpc_empty_slice();
    stream_queue_drop(c);
    if (c->streaming) {
        atomic_fetch_sub(&t->live_streams, 1);
    }
    return true;
}

/* A gRPC message holding a copy of @data (@len bytes). */
static grpc_byte_buffer *message_of(const void *data, size_t len)
{
    grpc_slice slice = grpc_slice_from_copied_buffer(data, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return bb;
}

/* With c->mu held, on a sender thread: makes the waiting answer's bytes its gRPC message. */
static void outbox_message(pnet_call *c)
{
    if (c->ob_data == NULL) {
        return;
    }
    c->send = message_of(c->ob_data, c->ob_len);
    c->ob_ops[c->ob_msg].data.send_message.send_message = c->send;
    if (c->ob_data != c->ob_inline) {
        free(c->ob_data);
    }
    c->ob_data = NULL;
}

/* With c->mu held: starts the batch that ends the call: initial metadata (unless a stream sent
 * it already), the message if @data is not NULL, and the status. @defer (the node's loop):
 * hand the batch to the sender thread instead, so that the loop does not write to the socket;
 * the batch counts in c->ops from now, which keeps the call until the sender has started it. */
static int call_send_status(pnet_call *c, grpc_status_code code, const char *message,
                            const void *data, size_t len, bool defer)
{
    grpc_op *ops = c->ob_ops;
    size_t n = 0;
    memset(c->ob_ops, 0, sizeof(c->ob_ops));
    if (!c->md_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->md_sent = true;
    }
    uint8_t *keep = NULL;
    if (data != NULL && defer) {
        keep = len <= sizeof(c->ob_inline) ? c->ob_inline : malloc(len);
    }
    if (keep != NULL) {
        memcpy(keep, data, len);
        c->ob_data = keep;
        c->ob_len = len;
        c->ob_msg = n;
        ops[n++].op = GRPC_OP_SEND_MESSAGE; /* its message: see outbox_message */
    } else if (data != NULL) {
        /* Not waiting for a sender (or no memory to keep a copy): the message now. */
        c->send = message_of(data, len);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->send;
    }
    grpc_slice_unref(c->details);
    c->details = message != NULL ? grpc_slice_from_copied_string(message) : grpc_empty_slice();
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n++].data.send_status_from_server.status_details = &c->details;
    pnet__count_call(c->m, code);
    if (defer) {
        c->ob_n = n;
        c->ops++;
        pnet__outbox_push(c->t, c);
        return 0;
    }
    if (grpc_call_start_batch(c->call, ops, n, &c->tag_send, NULL) != GRPC_CALL_OK) {
        grpc_call_cancel(c->call, NULL);
        return PT_ECANCELED;
    }
    c->ops++;
    return 0;
}

void pnet__call_outbox_link(pnet_call **head, pnet_call **tail, pnet_call *c)
{
    c->ob_next = NULL;
    if (*tail != NULL) {
        (*tail)->ob_next = c;
    } else {
        *head = c;
    }
    *tail = c;
}

pnet_call *pnet__call_outbox_next(pnet_call *c)
{
    return c->ob_next;
}

pnet_call *pnet__call_start_queued(pnet_call *c)
{
    pnet_call *next = c->ob_next;
    pnet_transport *t = c->t;
    pthread_mutex_lock(&c->mu);
    c->ob_next = NULL;
    if (c->ob_stream) {
        stream_start_queued(t, c); /* unlocks c->mu */
        return next;
    }
    /* c->call lives: the batch counts in c->ops, so the call is not released, and the
     * transport waits for it (its completion-queue threads end only once it is). A call
     * cancelled meanwhile takes the batch and fails it, which completes as usual. */
    outbox_message(c);
    grpc_call_error e = grpc_call_start_batch(c->call, c->ob_ops, c->ob_n, &c->tag_send, NULL);
    if (e == GRPC_CALL_OK) {
        pthread_mutex_unlock(&c->mu);
        return next;
    }
    grpc_call_cancel(c->call, NULL);
    pthread_mutex_unlock(&c->mu);
    /* No completion will come: undo the batch here, in the order t->mu, then the call's. */
    pthread_mutex_lock(&t->mu);
    pthread_mutex_lock(&c->mu);
    unread_release(t, c);
    c->ops--;
    bool drop = call_maybe_release(t, c);
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&t->mu);
    if (drop) {
        pnet__call_unref(c);
    }
    return next;
}

/* With c->mu held: sends the answer. @data may be NULL (no message: an error status). A
 * stream's status waits for its queued messages (stream_on_send sends it). */
static int call_answer(pnet_call *c, grpc_status_code code, const char *message, const void *data,
                       size_t len, bool defer)
{
    if (c->call == NULL || c->closed || c->finished) {
        return PT_ECANCELED;
    }
    c->finished = true;
    if (data == NULL && (c->send_inflight || c->sq_head != NULL)) {
        c->end_pending = true;
        c->end_code = code;
        free(c->end_message);
        c->end_message = message != NULL ? strdup(message) : NULL;
        return 0;
    }
    return call_send_status(c, code, message, data, len, defer);
}

int pnet_call_reply(pnet_call *call, const void *data, size_t len)
{
    static const uint8_t empty[1];
    if (call == NULL || (data == NULL && len > 0)) {
        return PT_EINVAL;
    }
    pthread_mutex_lock(&call->mu);
    int rc;
    char why[200];
    if (call->call == NULL || call->closed || call->finished) {
        rc = PT_ECANCELED;
    } else if (!unread_admit(call->t, call, len, why, sizeof(why))) {
        rc = call_answer(call, GRPC_STATUS_RESOURCE_EXHAUSTED, why, NULL, 0, true);
    } else if ((rc = call_answer(call, GRPC_STATUS_OK, NULL, data != NULL ? data : empty, len,
                                 true)) != 0) {
        unread_release(call->t, call);
    }
    pthread_mutex_unlock(&call->mu);
    pnet__call_unref(call);
    return rc;
}

int pnet_call_fail(pnet_call *call, int code, const char *message)
{
    if (call == NULL) {
        return PT_EINVAL;
    }
    if (code <= 0 || code > GRPC_STATUS_UNAUTHENTICATED) {
        code = GRPC_STATUS_UNKNOWN;
    }
    pthread_mutex_lock(&call->mu);
    int rc = call_answer(call, (grpc_status_code)code, message, NULL, 0, true);
    pthread_mutex_unlock(&call->mu);
    pnet__call_unref(call);
    return rc;
}

/* Starts serving a call of method @m (t->mu held). A call of a method registered with gRPC
 * came with its request (@registered; @payload, NULL if the client sent none): the call is
 * returned, with a reference for whoever delivers it (pnet__server_deliver, after t->mu is
 * released). Otherwise the request is received by a batch of its own and NULL is returned. */
static pnet_call *unary_start(pnet_transport *t, grpc_call *call, gpr_timespec deadline,
                              const struct pnet_method *m, const pnet_identity *who, uint64_t via,
                              bool registered, grpc_byte_buffer *payload)
{
    grpc_op op;
    pnet_call *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        if (payload != NULL) {
            grpc_byte_buffer_destroy(payload);
        }
        grpc_call_cancel_with_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
        grpc_call_unref(call);
        t->live_calls--;
        return NULL;
    }
    c->method = m->name;
    pthread_mutex_init(&c->mu, NULL);
    c->call = call;
    c->refs = 1;
    c->details = grpc_empty_slice();
    c->method_ctx = m->ctx;
    c->m = (struct pnet_method *)m;
    c->prepare = t->prepare;
    c->prepare_ctx = t->prepare_ctx;
    c->t = t;
    c->peer = grpc_call_get_peer(call);
    c->who = *who;
    c->via = via;
    c->deadline_ms = pnet__deadline_from_gpr(deadline);
    c->tag_recv = (struct pnet_tag){.kind = PNET_TAG_UNARY_RECV, .obj = c};
    c->tag_close = (struct pnet_tag){.kind = PNET_TAG_UNARY_CLOSE, .obj = c};
    c->tag_send = (struct pnet_tag){.kind = PNET_TAG_UNARY_SEND, .obj = c};
    c->tag_stream_send = (struct pnet_tag){.kind = PNET_TAG_STREAM_SEND, .obj = c};

    pthread_mutex_lock(&c->mu);
    /* Learn of cancellation as soon as it happens (client gone, deadline passed): a request
     * can wait long for a commit, and the node must be told it need not answer. */
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->cancelled;
    if (grpc_call_start_batch(call, &op, 1, &c->tag_close, NULL) == GRPC_CALL_OK) {
        c->ops++;
    } else {
        c->closed = true;
    }
    pnet_call *deliver = NULL;
    if (registered) {
        c->recv = payload;
        c->refs++; /* the deliverer's */
        deliver = c;
    } else {
        memset(&op, 0, sizeof(op));
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &c->recv;
        if (grpc_call_start_batch(call, &op, 1, &c->tag_recv, NULL) == GRPC_CALL_OK) {
            c->ops++;
        } else {
            grpc_call_cancel(call, NULL);
        }
    }
    bool drop = call_maybe_release(t, c);
    pthread_mutex_unlock(&c->mu);
    if (drop) {
        pnet__call_unref(c);
    }
    return deliver;
}

/* With c->mu held: turns the request that arrived for @c (c->recv) into the event that hands
 * the call to the loop, with the loop's reference; or answers the call (too large, unreadable,
 * missing) and returns NULL. */
static pnet_event *request_take(pnet_transport *t, pnet_call *c, bool ok)
{
    pnet_event *ev = NULL;
    if (ok && c->recv != NULL && grpc_byte_buffer_length(c->recv) > t->opts.max_request_bytes) {
        /* Refused before it is copied or decoded: a public request is small, and a large one
         * would only cost memory and time. */
        char why[160];
        snprintf(why, sizeof(why), "request of %zu bytes is larger than the %zu bytes allowed",
                 grpc_byte_buffer_length(c->recv), t->opts.max_request_bytes);
        grpc_byte_buffer_destroy(c->recv);
        c->recv = NULL;
        call_answer(c, GRPC_STATUS_RESOURCE_EXHAUSTED, why, NULL, 0, false);
    } else if (ok && c->recv != NULL) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        int rc = pnet__buffer_read(c->recv, &bytes, &len);
        grpc_byte_buffer_destroy(c->recv);
        c->recv = NULL;
        ev = rc == 0 ? calloc(1, sizeof(*ev)) : NULL;
        if (ev == NULL) {
            free(bytes);
            call_answer(c,
                        rc == PT_EMALFORMED ? GRPC_STATUS_INTERNAL : GRPC_STATUS_RESOURCE_EXHAUSTED,
                        "request could not be read", NULL, 0, false);
        } else {
            ev->type = PNET_EV_CALL;
            ev->call = c;
            ev->method = c->method;
            ev->method_ctx = c->method_ctx;
            ev->who = c->who;
            ev->via = c->via;
            ev->deadline_ms = c->deadline_ms;
            ev->data = bytes;
            ev->len = len;
            /* Delivered from now on, so that a cancellation from here on is told to the loop
             * (one it never got the call of is ignored there); the reference is the loop's,
             * released by pnet_call_reply/fail, or by request_post if the request is refused. */
            c->delivered = true;
            c->refs++;
        }
    } else if (ok) {
        /* A unary call without a request message: the client broke the protocol. */
        call_answer(c, GRPC_STATUS_INTERNAL, "missing request message", NULL, 0, false);
    }
    return ev;
}

/* Without locks: has @ev prepared, if the transport has a prepare function (which may refuse
 * it: the loop then never hears of it), and posts it. */
static void request_post(pnet_transport *t, pnet_call *c, pnet_event *ev)
{
    if (c->prepare != NULL) {
        char why[300] = "";
        int code = c->prepare(c->prepare_ctx, ev, why, sizeof(why));
        ev->prepare_ran = code == 0;
        if (code != 0) {
            pnet_event_free(ev);
            if (code < 0 || code > GRPC_STATUS_UNAUTHENTICATED) {
                code = GRPC_STATUS_UNKNOWN;
            }
            pthread_mutex_lock(&c->mu);
            call_answer(c, (grpc_status_code)code, why, NULL, 0, false); /* from here, at once */
            pthread_mutex_unlock(&c->mu);
            pnet__call_unref(c); /* the reference the loop would have had */
            return;
        }
    }
    atomic_fetch_add_explicit(&t->calls_received, 1, memory_order_relaxed);
    pnet__mailbox_post(t->mb, ev);
}

/* The request of @c has arrived, by a batch of its own (without t->mu: see
 * transport_internal.h). */
static void unary_on_recv(pnet_transport *t, pnet_call *c, bool ok)
{
    pthread_mutex_lock(&c->mu);
    c->ops--;
    pnet_event *ev = request_take(t, c, ok);
    bool drop = call_maybe_release(t, c);
    pthread_mutex_unlock(&c->mu);
    if (ev != NULL) {
        request_post(t, c, ev);
    }
    if (drop) {
        pnet__call_unref(c);
    }
}

void pnet__server_deliver(pnet_transport *t, pnet_call *c)
{
    pthread_mutex_lock(&c->mu);
    pnet_event *ev = request_take(t, c, true);
    bool drop = call_maybe_release(t, c);
    pthread_mutex_unlock(&c->mu);
    if (ev != NULL) {
        request_post(t, c, ev);
    }
    if (drop) {
        pnet__call_unref(c);
    }
    pnet__call_unref(c); /* the deliverer's, taken by unary_start */
}

static void unary_on_close(pnet_transport *t, pnet_call *c)
{
    pnet_event *ev = NULL;
    pthread_mutex_lock(&c->mu);
    c->ops--;
    c->closed = true;
    if (c->cancelled && !c->finished) {
        /* Gone before it was answered (client cancelled, deadline passed): no answer will
         * be sent, so this is the call's one count. */
        pnet__count_call(c->m, GRPC_STATUS_CANCELLED);
    }
    if (c->cancelled && c->delivered && !c->finished) {
        ev = calloc(1, sizeof(*ev));
        if (ev != NULL) {
            ev->type = PNET_EV_CALL_CANCELLED;
            ev->call = c;
            ev->method = c->method;
            ev->method_ctx = c->method_ctx;
            c->refs++; /* the event's */
        }
    }
    bool drop = call_maybe_release(t, c);
    pthread_mutex_unlock(&c->mu);
    if (ev != NULL) {
        pnet__mailbox_post(t->mb, ev);
    }
    if (drop) {
        pnet__call_unref(c);
    }
}

static void unary_on_send(pnet_transport *t, pnet_call *c)
{
    pthread_mutex_lock(&c->mu);
    unread_release(t, c);
    c->ops--;
    bool drop = call_maybe_release(t, c);
    pthread_mutex_unlock(&c->mu);
    if (drop) {
        pnet__call_unref(c);
    }
}

/* ============================================================================================
 * Server streams
 *
 * A method may answer its one request with any number of messages and then a status
 * (WatchPlatoon). gRPC takes one SEND_MESSAGE at a time per call, so the messages the loop hands
 * over wait in the call's queue; each is copied once, into the byte buffer that is sent. The
 * loop bounds the queue itself (pnet_call_stream_queued): the transport only counts it. Each
 * message in flight is an unread answer like a unary one (same per-connection and total bounds,
 * same send timeout), so a stream whose reader stopped reading is ended like any call whose
 * answer is not taken.
 * ========================================================================================== */

static void stream_queue_drop(pnet_call *c)
{
    while (c->sq_head != NULL) {
        struct stream_item *it = c->sq_head;
        c->sq_head = it->next;
        c->sq_bytes -= it->len;
        grpc_byte_buffer_destroy(it->bb);
        free(it);
    }
    c->sq_tail = NULL;
}

/* With c->mu held: ends the stream at once with @code, dropping what is queued. */
static void stream_cancel(pnet_call *c, grpc_status_code code, const char *why)
{
    stream_queue_drop(c);
    c->finished = true;
    c->end_pending = false;
    if (c->call != NULL && !c->closed) {
        grpc_call_cancel_with_status(c->call, code, why, NULL);
    }
}

/* With c->mu held: starts sending the next queued message, if none is in flight. @defer (a
 * message the node handed over): the stream's turn is taken now, so that nothing else starts
 * a send meanwhile, and a sender thread starts it (outbox.c: the node's loop does not write to
 * sockets); the pending batch counts in c->ops, which keeps the call until then. */
static void stream_send_next(pnet_transport *t, pnet_call *c, bool defer)
{
    struct stream_item *it = c->sq_head;
    if (it == NULL || c->send_inflight || c->call == NULL || c->closed) {
        return;
    }
    if (defer) {
        c->send_inflight = true;
        c->ob_stream = true;
        c->ops++;
        pnet__outbox_push(t, c);
        return;
    }
    char why[200];
    if (!unread_admit(t, c, it->len, why, sizeof(why))) {
        stream_cancel(c, GRPC_STATUS_RESOURCE_EXHAUSTED, why);
        return;
    }
    c->sq_head = it->next;
    if (c->sq_head == NULL) {
        c->sq_tail = NULL;
    }
    c->inflight = it->bb;
    c->inflight_len = it->len;
    free(it);
    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof(ops));
    if (!c->md_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->md_sent = true;
    }
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = c->inflight;
    if (grpc_call_start_batch(c->call, ops, n, &c->tag_stream_send, NULL) != GRPC_CALL_OK) {
        unread_release(t, c);
        c->sq_bytes -= c->inflight_len;
        grpc_byte_buffer_destroy(c->inflight);
        c->inflight = NULL;
        stream_cancel(c, GRPC_STATUS_INTERNAL, "the stream could not be written");
        return;
    }
    c->ops++;
    c->send_inflight = true;
}

static bool stream_over(const pnet_call *c)
{
    return c->call == NULL || c->closed || c->finished;
}

/* With c->mu held: the event telling the loop that @c's queue fell under the bound it armed,
 * or that the stream ended here; NULL when there is nothing to tell. Post it after unlocking. */
static pnet_event *stream_notice(pnet_call *c)
{
    bool over = stream_over(c);
    bool due = (c->notify_armed && (c->sq_bytes < c->notify_below || over)) ||
               (over && !c->end_told && c->owner != NULL);
    if (!due) {
        return NULL;
    }
    pnet_event *ev = calloc(1, sizeof(*ev));
    if (ev == NULL) {
        return NULL; /* the loop learns of it at its next send */
    }
    c->notify_armed = false;
    c->end_told = c->end_told || over;
    ev->type = PNET_EV_STREAM_READY;
    ev->call = c;
    c->refs++; /* the event's */
    return ev;
}

/* With c->mu held, no send in flight: starts the next message, or the status once every
 * message is out; tells the loop what it asked to know; unlocks c->mu. */
static void stream_next_or_end(pnet_transport *t, pnet_call *c)
{
    if (c->sq_head != NULL) {
        stream_send_next(t, c, false);
    } else if (c->end_pending && c->call != NULL && !c->closed) {
        c->end_pending = false;
        call_send_status(c, c->end_code, c->end_message, NULL, 0, false);
    }
    pnet_event *ev = stream_notice(c);
    bool drop = call_maybe_release(t, c);
    pthread_mutex_unlock(&c->mu);
    if (ev != NULL) {
        pnet__mailbox_post(t->mb, ev);
    }
    if (drop) {
        pnet__call_unref(c);
    }
}

static void stream_on_send(pnet_transport *t, pnet_call *c, bool ok)
{
    pthread_mutex_lock(&c->mu);
    unread_release(t, c);
    c->ops--;
    c->send_inflight = false;
    c->sq_bytes -= c->inflight_len;
    grpc_byte_buffer_destroy(c->inflight);
    c->inflight = NULL;
    if (!ok) {
        /* The call is over (cancelled, the reader gone): nothing more can be sent. */
        stream_queue_drop(c);
        c->end_pending = false;
    }
    stream_next_or_end(t, c);
}

/* The stream's send taken from the outbox by a sender thread (c->mu held; unlocked here). */
static void stream_start_queued(pnet_transport *t, pnet_call *c)
{
    c->ob_stream = false;
    c->send_inflight = false;
    c->ops--;
    stream_next_or_end(t, c);
}

void pnet_call_stream_open(pnet_call *call)
{
    pthread_mutex_lock(&call->mu);
    if (!call->streaming && call->call != NULL) {
        call->streaming = true;
        atomic_fetch_add(&call->t->live_streams, 1);
    }
    pthread_mutex_unlock(&call->mu);
}

int pnet_transport_live_streams(pnet_transport *t)
{
    return atomic_load(&t->live_streams);
}

/* Queues @slice (referenced, not copied) as @call's next message. */
static int stream_enqueue(pnet_call *call, grpc_slice slice)
{
    struct stream_item *it = malloc(sizeof(*it));
    if (it == NULL) {
        return PT_ENOMEM;
    }
    size_t len = GRPC_SLICE_LENGTH(slice);
    it->bb = grpc_raw_byte_buffer_create(&slice, 1);
    it->len = len;
    it->next = NULL;
    pthread_mutex_lock(&call->mu);
    int rc = 0;
    if (call->call == NULL || call->closed || call->finished) {
        rc = PT_ECANCELED;
        grpc_byte_buffer_destroy(it->bb);
        free(it);
    } else {
        if (call->sq_tail != NULL) {
            call->sq_tail->next = it;
        } else {
            call->sq_head = it;
        }
        call->sq_tail = it;
        call->sq_bytes += len;
        stream_send_next(call->t, call, true);
    }
    pthread_mutex_unlock(&call->mu);
    return rc;
}

int pnet_call_stream_send(pnet_call *call, const void *data, size_t len)
{
    if (call == NULL || (data == NULL && len > 0)) {
        return PT_EINVAL;
    }
    grpc_slice slice = grpc_slice_from_copied_buffer(data != NULL ? data : "", len);
    int rc = stream_enqueue(call, slice);
    grpc_slice_unref(slice);
    return rc;
}

struct pnet_bytes {
    grpc_slice slice;
};

pnet_bytes *pnet_bytes_take(void *data, size_t len)
{
    pnet_bytes *b = malloc(sizeof(*b));
    if (b == NULL) {
        return NULL;
    }
    /* gRPC frees @data with the last reference: the last stream to send it, or us. */
    b->slice = grpc_slice_new(data, len, free);
    return b;
}

void pnet_bytes_free(pnet_bytes *b)
{
    if (b != NULL) {
        grpc_slice_unref(b->slice);
        free(b);
    }
}

size_t pnet_bytes_len(const pnet_bytes *b)
{
    return GRPC_SLICE_LENGTH(b->slice);
}

int pnet_call_stream_send_bytes(pnet_call *call, const pnet_bytes *b)
{
    if (call == NULL || b == NULL) {
        return PT_EINVAL;
    }
    return stream_enqueue(call, b->slice);
}

void pnet_call_stream_set_owner(pnet_call *call, void *owner)
{
    pthread_mutex_lock(&call->mu);
    call->owner = owner;
    pthread_mutex_unlock(&call->mu);
}

void *pnet_call_stream_owner(pnet_call *call)
{
    pthread_mutex_lock(&call->mu);
    void *owner = call->owner;
    pthread_mutex_unlock(&call->mu);
    return owner;
}

bool pnet_call_stream_notify_below(pnet_call *call, size_t bytes)
{
    pthread_mutex_lock(&call->mu);
    bool now = call->sq_bytes < bytes || stream_over(call);
    call->notify_armed = !now;
    call->notify_below = bytes;
    pthread_mutex_unlock(&call->mu);
    return now;
}

size_t pnet_call_stream_queued(pnet_call *call)
{
    pthread_mutex_lock(&call->mu);
    size_t n = call->sq_bytes;
    pthread_mutex_unlock(&call->mu);
    return n;
}

bool pnet_call_stream_ended(pnet_call *call)
{
    pthread_mutex_lock(&call->mu);
    bool ended = call->call == NULL || call->closed || call->finished;
    pthread_mutex_unlock(&call->mu);
    return ended;
}

/* ============================================================================================
 * Dispatch
 * ========================================================================================== */

static pnet_call *on_request(pnet_transport *t, struct request *r, bool ok)
{
    pnet_call *deliver = NULL;
    t->pending_requests--;
    if (!t->shutting_down) {
        pnet__server_request(t, r->m); /* keep a slot waiting for the next call */
    }
    if (ok && r->call != NULL) {
        bool registered = r->m != NULL;
        const char *method =
            registered ? r->m->name : (const char *)GRPC_SLICE_START_PTR(r->details.method);
        size_t len = registered ? strlen(r->m->name) : GRPC_SLICE_LENGTH(r->details.method);
        t->live_calls++;
        int lane = registered ? -1 : pnet__lane_from_method(method, len);
        const struct pnet_method *m = r->m;
        if (m == NULL && lane < 0) {
            for (m = t->methods; m != NULL; m = m->next) {
                if (strlen(m->name) == len && memcmp(m->name, method, len) == 0) {
                    break;
                }
            }
        }
        if (m != NULL && !m->served) {
            m = NULL; /* named at creation, never registered: refused as an unknown method */
        }
        pnet_identity who;
        uint64_t via = 0;
        char why[300];
        int code = 0;
        if (lane >= 0 || m != NULL) {
            /* Decided before anything of the call is read. The certificate's verdict is
             * cached (auth.c), so this is cheap; t->mu is not needed for it. */
            pthread_mutex_unlock(&t->mu);
            code = pnet__auth_call(t, r->call, &r->md, lane, &who, &via, why, sizeof(why));
            pthread_mutex_lock(&t->mu);
        }
        if (lane < 0 && m == NULL) {
            atomic_fetch_add_explicit(&t->unknown_calls, 1, memory_order_relaxed);
        }
        if (code != 0) {
            pnet__count_call((struct pnet_method *)m, code);
            grpc_call_cancel_with_status(r->call, (grpc_status_code)code, why, NULL);
            grpc_call_unref(r->call);
            t->live_calls--;
        } else if (m != NULL && !t->shutting_down) {
            gpr_timespec deadline = registered ? r->deadline : r->details.deadline;
            deliver = unary_start(t, r->call, deadline, m, &who, via, registered, r->payload);
            r->payload = NULL; /* the call's now */
        } else {
            stream_start(t, r->call, lane, &r->md, &who);
        }
    }
    if (r->payload != NULL) {
        grpc_byte_buffer_destroy(r->payload);
    }
    grpc_call_details_destroy(&r->details);
    grpc_metadata_array_destroy(&r->md);
    if (!t->shutting_down && t->n_spare_requests < SPARE_REQUESTS) {
        r->next_spare = t->spare_requests;
        t->spare_requests = r;
        t->n_spare_requests++;
    } else {
        free(r);
    }
    return deliver;
}

void pnet__server_free_spares(pnet_transport *t)
{
    while (t->spare_requests != NULL) {
        struct request *r = t->spare_requests;
        t->spare_requests = r->next_spare;
        free(r);
    }
    t->n_spare_requests = 0;
}

pnet_call *pnet__server_handle(pnet_transport *t, struct pnet_tag *tag, bool ok)
{
    switch (tag->kind) {
    case PNET_TAG_REQUEST:
        return on_request(t, tag->obj, ok);
    case PNET_TAG_STREAM_RECV:
        stream_on_recv(t, tag->obj, ok);
        break;
    case PNET_TAG_STREAM_END:
        stream_on_end(t, tag->obj);
        break;
    case PNET_TAG_UNARY_RECV:
        unary_on_recv(t, tag->obj, ok);
        break;
    case PNET_TAG_UNARY_CLOSE:
        unary_on_close(t, tag->obj);
        break;
    case PNET_TAG_UNARY_SEND:
        unary_on_send(t, tag->obj);
        break;
    case PNET_TAG_STREAM_SEND:
        stream_on_send(t, tag->obj, ok);
        break;
    default:
        break;
    }
    return NULL;
}
