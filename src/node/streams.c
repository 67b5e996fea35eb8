/*
 * Server streams (platoon/node.h, "server streams"): requests answered with many messages.
 *
 * An open stream is a request the handler keeps: it waits for nothing the runtime could
 * complete, so it is not in the pending lists (whose walks answer deadlines and leader waits)
 * but in its own, which the loop walks at the end of each turn to let each stream send what is
 * due, and which tells each stream when its client went away or the node stops.
 */
#include <stdlib.h>
#include <time.h>

#include "node/node_internal.h"

void pnode__streams_init(pnode *n)
{
    n->streams.prev = n->streams.next = &n->streams;
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
    req->prev = n->streams.prev;
    req->next = &n->streams;
    n->streams.prev->next = req;
    n->streams.prev = req;
    req->linked = true;
    return 0;
}

int pnode_stream_send(pnode_request *req, const ProtobufCMessage *msg)
{
    if (req == NULL || req->stream_ops == NULL || msg == NULL) {
        return PT_EINVAL;
    }
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len > 0 ? len : 1);
    if (buf == NULL) {
        return PT_ENOMEM;
    }
    protobuf_c_message_pack(msg, buf);
    int rc = pnet_call_stream_send(req->call, buf, len);
    free(buf);
    return rc;
}

size_t pnode_stream_queued(const pnode_request *req)
{
    if (req == NULL || req->stream_ops == NULL) {
        return 0;
    }
    return pnet_call_stream_queued(req->call);
}

void pnode__streams_pump(pnode *n)
{
    /* A pump may end its own stream (unlinking it), never another one: take @next first. */
    for (pnode_request *req = n->streams.next; req != &n->streams;) {
        pnode_request *next = req->next;
        if (pnet_call_stream_ended(req->call)) {
            /* Its client went away before the stream opened (the CANCELLED event found no
             * stream then), or a transport bound ended it: nothing more can be sent. */
            pnode__request_unlink(n, req);
            req->stream_ops->closed(n, req->stream_ctx, req, PNODE_CANCELLED);
        } else {
            req->stream_ops->pump(n, req->stream_ctx, req);
        }
        req = next;
    }
}

void pnode__streams_cancelled(pnode *n, pnet_call *call)
{
    for (pnode_request *req = n->streams.next; req != &n->streams; req = req->next) {
        if (req->call == call) {
            pnode__request_unlink(n, req);
            req->stream_ops->closed(n, req->stream_ctx, req, PNODE_CANCELLED);
            return;
        }
    }
}

void pnode__streams_close_all(pnode *n)
{
    pnode_request *req;
    while ((req = n->streams.next) != &n->streams) {
        pnode__request_unlink(n, req);
        req->stream_ops->closed(n, req->stream_ctx, req, PNODE_UNAVAILABLE);
    }
    /* Each status (naming the revision to resume from) follows its stream's last messages:
     * give readers a moment to take them before the transport cancels every call. A reader
     * that does not read is not waited for longer than that. */
    for (int i = 0; i < 100 && pnet_transport_live_streams(n->net) > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}
