/*
 * Server streams (platoon/node.h, "server streams"): requests answered with many messages.
 *
 * An open stream is a request the handler keeps: it waits for nothing the runtime could
 * complete, so it is not in the pending lists (whose walks answer deadlines and leader waits)
 * but in one of its own. Streams pumped at every turn are in node->streams, walked at the end
 * of each turn. Streams pumped on demand are in node->streams_idle until something wakes them
 * (the handler, or the transport: their reader took messages, or the stream ended), which
 * moves them to node->streams_ready for the end of the turn: an idle stream costs the loop
 * nothing. The transport keeps each stream's request as the call's owner, so that its events
 * find the stream without a walk.
 */
#include <stdlib.h>
#include <time.h>

#include "node/node_internal.h"

void pnode__streams_init(pnode *n)
{
    pnode__list_init(&n->streams);
    pnode__list_init(&n->streams_idle);
    pnode__list_init(&n->streams_ready);
}

int pnode_stream_open(pnode *n, pnode_request *req, const pnode_stream_ops *ops, void *ctx)
{
    if (req == NULL || ops == NULL || ops->pump == NULL || ops->closed == NULL ||
        req->call == NULL || req->linked || req->stream_ops != NULL) {
        return PT_EINVAL;
    }
    if (atomic_load(&n->stopping)) {
        return PT_ESHUTDOWN;
    }
    req->stream_ops = ops;
    req->stream_ctx = ctx;
    pnet_call_stream_open(req->call);
    pnet_call_stream_set_owner(req->call, req);
    pnode__list_append(&n->streams, req);
    return 0;
}

int pnode_stream_on_demand(pnode_request *req)
{
    if (req == NULL || req->stream_ops == NULL || !req->linked) {
        return PT_EINVAL;
    }
    if (!req->stream_on_demand) {
        pnode__list_remove(req);
        req->stream_on_demand = true;
        req->stream_woken = false;
        pnode__list_append(&req->node->streams_idle, req);
    }
    return 0;
}

void pnode_stream_wake(pnode_request *req)
{
    if (req == NULL || !req->stream_on_demand || req->stream_woken || !req->linked) {
        return;
    }
    pnode *n = req->node;
    pnode__list_remove(req);
    req->stream_woken = true;
    pnode__list_append(&n->streams_ready, req);
    if (n->streams_pumping) {
        /* Its pump is for the next turn: let that turn come now rather than at the tick. */
        pnet_mailbox_wake(n->mailbox);
    }
}

void pnode_stream_wake_below(pnode_request *req, size_t bytes)
{
    if (req == NULL || !req->stream_on_demand || !req->linked) {
        return;
    }
    if (pnet_call_stream_notify_below(req->call, bytes)) {
        pnode_stream_wake(req);
    }
}

/* The message's bytes in a buffer of their own (malloc'd; at least one byte), or NULL. */
static uint8_t *pack(const ProtobufCMessage *msg, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(*len > 0 ? *len : 1);
    if (buf != NULL) {
        protobuf_c_message_pack(msg, buf);
    }
    return buf;
}

int pnode_stream_send(pnode_request *req, const ProtobufCMessage *msg)
{
    if (req == NULL || req->stream_ops == NULL || msg == NULL) {
        return PT_EINVAL;
    }
    size_t len;
    uint8_t *buf = pack(msg, &len);
    if (buf == NULL) {
        return PT_ENOMEM;
    }
    int rc = pnet_call_stream_send(req->call, buf, len);
    free(buf);
    return rc;
}

/* A pnode_message is the transport's shared bytes. */
int pnode_message_pack(const ProtobufCMessage *msg, pnode_message **out)
{
    if (msg == NULL || out == NULL) {
        return PT_EINVAL;
    }
    size_t len;
    uint8_t *buf = pack(msg, &len);
    if (buf == NULL) {
        return PT_ENOMEM;
    }
    pnet_bytes *b = pnet_bytes_take(buf, len);
    if (b == NULL) {
        free(buf);
        return PT_ENOMEM;
    }
    *out = (pnode_message *)b;
    return 0;
}

void pnode_message_free(pnode_message *m)
{
    pnet_bytes_free((pnet_bytes *)m);
}

int pnode_stream_send_packed(pnode_request *req, const pnode_message *m)
{
    if (req == NULL || req->stream_ops == NULL || m == NULL) {
        return PT_EINVAL;
    }
    return pnet_call_stream_send_bytes(req->call, (const pnet_bytes *)m);
}

size_t pnode_stream_queued(const pnode_request *req)
{
    if (req == NULL || req->stream_ops == NULL) {
        return 0;
    }
    return pnet_call_stream_queued(req->call);
}

/* Lets @req send, or closes it when the transport ended it. */
static void pump_one(pnode *n, pnode_request *req)
{
    if (pnet_call_stream_ended(req->call)) {
        /* Its client went away before the stream opened (the CANCELLED event found no stream
         * then), or a transport bound ended it: nothing more can be sent. */
        pnode__request_unlink(n, req);
        req->stream_ops->closed(n, req->stream_ctx, req, PNODE_CANCELLED);
    } else {
        req->stream_ops->pump(n, req->stream_ctx, req);
    }
}

void pnode__streams_pump(pnode *n)
{
    /* A pump may end its own stream (unlinking it), never another one: take @next first. */
    for (pnode_request *req = n->streams.next; req != &n->streams;) {
        pnode_request *next = req->next;
        pump_one(n, req);
        req = next;
    }
    if (n->streams_ready.next == &n->streams_ready) {
        return;
    }
    /* The streams woken so far, on a list of their own: one a pump wakes goes to
     * streams_ready, for the next turn, so that this walk ends. */
    pnode_request woken;
    woken.next = n->streams_ready.next;
    woken.prev = n->streams_ready.prev;
    woken.next->prev = &woken;
    woken.prev->next = &woken;
    pnode__list_init(&n->streams_ready);
    n->streams_pumping = true;
    while (woken.next != &woken) {
        pnode_request *req = woken.next;
        pnode__list_remove(req);
        req->stream_woken = false;
        pnode__list_append(&n->streams_idle, req);
        pump_one(n, req);
    }
    n->streams_pumping = false;
}

void pnode__streams_cancelled(pnode *n, pnet_call *call)
{
    pnode_request *req = pnet_call_stream_owner(call);
    if (req != NULL && req->linked) {
        pnode__request_unlink(n, req);
        req->stream_ops->closed(n, req->stream_ctx, req, PNODE_CANCELLED);
    }
}

void pnode__streams_ready(pnode *n, pnet_call *call)
{
    (void)n;
    pnode_request *req = pnet_call_stream_owner(call);
    if (req != NULL) {
        pnode_stream_wake(req);
    }
}

static void close_list(pnode *n, pnode_request *head)
{
    pnode_request *req;
    while ((req = head->next) != head) {
        pnode__request_unlink(n, req);
        req->stream_ops->closed(n, req->stream_ctx, req, PNODE_UNAVAILABLE);
    }
}

void pnode__streams_close_all(pnode *n)
{
    close_list(n, &n->streams);
    close_list(n, &n->streams_idle);
    close_list(n, &n->streams_ready);
    /* Each status (naming the revision to resume from) follows its stream's last messages:
     * give readers a moment to take them before the transport cancels every call. A reader
     * that does not read is not waited for longer than that. */
    for (int i = 0; i < 100 && pnet_transport_live_streams(n->net) > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}
