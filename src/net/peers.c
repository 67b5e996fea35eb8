/*
 * Peers and their outbound lanes: queues of encoded core messages, each drained in order by one
 * long-lived client stream (see raft.proto, LANES).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>

#include "net/transport_internal.h"

/* ============================================================================================
 * Outbound lanes
 * ========================================================================================== */

static void item_free(struct pnet_item *it)
{
    free(it->buf);
    free(it);
}

static void lane_drop_queue(pnet_transport *t, struct pnet_outlane *l, bool count)
{
    struct pnet_item *it = l->head;
    while (it != NULL) {
        struct pnet_item *next = it->next;
        if (count) {
            t->stats.msgs_dropped_full++;
        }
        item_free(it);
        it = next;
    }
    l->head = l->tail = NULL;
    l->q_bytes = l->q_msgs = 0;
}

static bool peer_idle(const struct pnet_peer *p)
{
    for (int i = 0; i < PNET_LANE_COUNT; i++) {
        if (p->lanes[i].call != NULL) {
            return false;
        }
    }
    return true;
}

static void peer_free(pnet_transport *t, struct pnet_peer *p)
{
    for (int i = 0; i < PNET_LANE_COUNT; i++) {
        lane_drop_queue(t, &p->lanes[i], false);
    }
    if (p->channel != NULL) {
        grpc_channel_destroy(p->channel);
    }
    free(p->address);
    free(p);
}

/* Frees the peers that were removed and whose streams have all ended. */
void pnet__peers_reap(pnet_transport *t)
{
    struct pnet_peer **pp = &t->peers;
    while (*pp != NULL) {
        struct pnet_peer *p = *pp;
        if (p->removed && peer_idle(p)) {
            *pp = p->next;
            peer_free(t, p);
        } else {
            pp = &p->next;
        }
    }
}

/* Releases the lane's stream once no batch is pending on it. */
static void lane_maybe_release(pnet_transport *t, struct pnet_outlane *l)
{
    if (l->call == NULL || l->ops > 0) {
        return;
    }
    grpc_call_unref(l->call);
    l->call = NULL;
    t->live_calls--;
    grpc_metadata_array_destroy(&l->md_initial);
    grpc_metadata_array_destroy(&l->md_trailing);
    grpc_slice_unref(l->details);
    if (l->response != NULL) {
        grpc_byte_buffer_destroy(l->response);
        l->response = NULL;
    }
    /* A stream that carried messages ended (peer restarted, connection reset): reopen it at
     * once. One that never delivered anything waits a little, so that a peer which refuses
     * our streams does not make us spin. */
    l->retry_at_ms = l->delivered ? 0 : pnet_now_ms() + t->opts.reconnect_ms;
    l->broken = l->started = l->delivered = false;
}

/* Opens the lane's stream: the call, and the batch that waits for its end. */
static int lane_open(pnet_transport *t, struct pnet_outlane *l)
{
    grpc_op ops[3];
    const char *method = pnet__lane_method(l->index);
    grpc_slice mslice = grpc_slice_from_static_string(method);

    l->call = grpc_channel_create_call(l->peer->channel, NULL, GRPC_PROPAGATE_DEFAULTS, t->cq,
                                       mslice, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (l->call == NULL) {
        return PT_ENOMEM;
    }
    t->live_calls++;
    t->stats.streams_opened++;
    grpc_metadata_array_init(&l->md_initial);
    grpc_metadata_array_init(&l->md_trailing);
    l->details = grpc_empty_slice();
    l->response = NULL;
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[0].data.recv_initial_metadata.recv_initial_metadata = &l->md_initial;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &l->response;
    ops[2].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[2].data.recv_status_on_client.trailing_metadata = &l->md_trailing;
    ops[2].data.recv_status_on_client.status = &l->status;
    ops[2].data.recv_status_on_client.status_details = &l->details;
    if (grpc_call_start_batch(l->call, ops, 3, &l->tag_status, NULL) != GRPC_CALL_OK) {
        l->broken = true;
        grpc_call_cancel(l->call, NULL);
        lane_maybe_release(t, l);
        return PT_EINTERNAL;
    }
    l->ops++;
    return 0;
}

/* Sends what the lane has queued, if it can: one stream message at a time, in order. */
static void lane_pump(pnet_transport *t, struct pnet_outlane *l)
{
    grpc_op ops[2];
    size_t n_ops = 0;

    if (t->shutting_down || l->peer->removed || l->head == NULL || l->sending) {
        return;
    }
    if (l->call == NULL) {
        if (l->retry_at_ms > pnet_now_ms() || lane_open(t, l) != 0) {
            return; /* the completion-queue thread retries (pnet__lanes_retry) */
        }
    }
    if (l->broken) {
        return; /* the stream is ending; a new one opens after it */
    }

    /* Gather queued messages up to the batch bound. Each item becomes a slice of the message
     * without being copied again: the slice frees the encoded buffer when gRPC is done. */
    size_t n = 0, bytes = 0;
    for (struct pnet_item *it = l->head; it != NULL; it = it->next) {
        if (n > 0 && bytes + it->len > t->opts.max_batch_bytes) {
            break;
        }
        n++;
        bytes += it->len;
    }
    grpc_slice stack_slices[64];
    grpc_slice *slices = n <= 64 ? stack_slices : malloc(n * sizeof(*slices));
    if (slices == NULL) {
        return; /* retried on the next send or completion */
    }
    for (size_t i = 0; i < n; i++) {
        struct pnet_item *it = l->head;
        l->head = it->next;
        l->q_bytes -= it->len;
        l->q_msgs--;
        slices[i] = grpc_slice_new(it->buf, it->len, free);
        free(it);
    }
    if (l->head == NULL) {
        l->tail = NULL;
    }
    l->send_buf = grpc_raw_byte_buffer_create(slices, n);
    for (size_t i = 0; i < n; i++) {
        grpc_slice_unref(slices[i]);
    }
    if (slices != stack_slices) {
        free(slices);
    }

    memset(ops, 0, sizeof(ops));
    if (!l->started) {
        /* Wait for the connection instead of failing at once while the peer is down: the
         * stream then starts as soon as the peer is back (reconnect_ms), with what is queued. */
        ops[n_ops].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[n_ops].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY |
                           GRPC_INITIAL_METADATA_WAIT_FOR_READY_EXPLICITLY_SET;
        /* Name this node (its id, which a TLS receiver checks against the certificate) and
         * its address, so that a peer that does not know it yet (a node just added to the
         * cluster) can answer. The slices point into the transport, which outlives every
         * call. */
        size_t n_md = 0;
        l->sender_md[n_md].key = grpc_slice_from_static_string(PNET_SENDER_ID_METADATA);
        l->sender_md[n_md++].value =
            grpc_slice_from_static_buffer(t->sender_id, strlen(t->sender_id));
        if (t->advertise[0] != '\0') {
            l->sender_md[n_md].key = grpc_slice_from_static_string(PNET_SENDER_METADATA);
            l->sender_md[n_md++].value =
                grpc_slice_from_static_buffer(t->advertise, strlen(t->advertise));
        }
        ops[n_ops].data.send_initial_metadata.count = n_md;
        ops[n_ops].data.send_initial_metadata.metadata = l->sender_md;
        n_ops++;
    }
    ops[n_ops].op = GRPC_OP_SEND_MESSAGE;
    ops[n_ops].data.send_message.send_message = l->send_buf;
    n_ops++;
    if (grpc_call_start_batch(l->call, ops, n_ops, &l->tag_send, NULL) != GRPC_CALL_OK) {
        t->stats.msgs_dropped_lost += n;
        grpc_byte_buffer_destroy(l->send_buf);
        l->send_buf = NULL;
        l->broken = true;
        grpc_call_cancel(l->call, NULL);
        return;
    }
    l->started = true;
    l->sending = true;
    l->inflight_n = n;
    l->ops++;
    t->stats.batches_sent++;
}

void pnet__lane_on_send(pnet_transport *t, struct pnet_outlane *l, bool ok)
{
    l->ops--;
    l->sending = false;
    grpc_byte_buffer_destroy(l->send_buf);
    l->send_buf = NULL;
    if (ok) {
        t->stats.msgs_sent += l->inflight_n;
        l->delivered = true;
    } else {
        /* The stream is broken: what was in this message is lost (Raft retransmits). */
        t->stats.msgs_dropped_lost += l->inflight_n;
        l->broken = true;
        grpc_call_cancel(l->call, NULL);
    }
    l->inflight_n = 0;
    lane_maybe_release(t, l);
    lane_pump(t, l);
}

void pnet__lane_on_status(pnet_transport *t, struct pnet_outlane *l)
{
    l->ops--;
    l->broken = true;
    if (l->sending) {
        /* Make the pending send complete too, if it still waits for the connection. */
        grpc_call_cancel(l->call, NULL);
    }
    lane_maybe_release(t, l);
    lane_pump(t, l);
}

void pnet__lanes_pump(pnet_transport *t)
{
    for (struct pnet_peer *p = t->peers; p != NULL; p = p->next) {
        for (int i = 0; i < PNET_LANE_COUNT; i++) {
            struct pnet_outlane *l = &p->lanes[i];
            if (l->head != NULL && !l->sending) {
                lane_pump(t, l);
            }
        }
    }
}

/* Reopens lanes whose stream failed and whose pause is over. */
void pnet__lanes_retry(pnet_transport *t)
{
    int64_t now = pnet_now_ms();
    for (struct pnet_peer *p = t->peers; p != NULL; p = p->next) {
        for (int i = 0; i < PNET_LANE_COUNT; i++) {
            struct pnet_outlane *l = &p->lanes[i];
            if (l->call == NULL && l->head != NULL && l->retry_at_ms <= now) {
                lane_pump(t, l);
            }
        }
    }
}

/* ============================================================================================
 * Peers and sending
 * ========================================================================================== */

static struct pnet_peer *peer_find(pnet_transport *t, uint64_t id)
{
    for (struct pnet_peer *p = t->peers; p != NULL; p = p->next) {
        if (p->id == id && !p->removed) {
            return p;
        }
    }
    return NULL;
}

/* Marks @p removed: drops its queues and ends its streams; it is freed once they ended. */
static void peer_remove(pnet_transport *t, struct pnet_peer *p)
{
    p->removed = true;
    for (int i = 0; i < PNET_LANE_COUNT; i++) {
        struct pnet_outlane *l = &p->lanes[i];
        lane_drop_queue(t, l, false);
        if (l->call != NULL) {
            l->broken = true;
            grpc_call_cancel(l->call, NULL);
        }
    }
    pnet__peers_reap(t);
}

grpc_channel *pnet__peer_channel(pnet_transport *t, uint64_t id, const char *address)
{
    struct pnet_peer *p = id != PRAFT_NONE ? peer_find(t, id) : NULL;
    return p != NULL && strcmp(p->address, address) == 0 ? p->channel : NULL;
}

/* With t->mu held: a new peer @id at @address, with a channel of its own. */
static int peer_add(pnet_transport *t, uint64_t id, const char *address)
{
    struct pnet_peer *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->address = strdup(address)) == NULL) {
        free(p);
        return PT_ENOMEM;
    }
    p->channel = pnet__channel_new(t, address, id);
    if (p->channel == NULL) {
        free(p->address);
        free(p);
        return PT_ENOMEM;
    }
    p->id = id;
    for (int i = 0; i < PNET_LANE_COUNT; i++) {
        struct pnet_outlane *l = &p->lanes[i];
        l->peer = p;
        l->index = i;
        l->tag_send = (struct pnet_tag){.kind = PNET_TAG_LANE_SEND, .obj = l};
        l->tag_status = (struct pnet_tag){.kind = PNET_TAG_LANE_STATUS, .obj = l};
    }
    p->next = t->peers;
    t->peers = p;
    return 0;
}

void pnet__peers_redial(pnet_transport *t)
{
    /* Collect first: peer_add pushes onto the list being walked. */
    struct {
        uint64_t id;
        char address[PRAFT_ADDRESS_MAX];
    } live[PRAFT_MAX_MEMBERS * 2];
    size_t n = 0;
    for (struct pnet_peer *p = t->peers; p != NULL; p = p->next) {
        if (!p->removed && n < sizeof(live) / sizeof(live[0])) {
            live[n].id = p->id;
            snprintf(live[n].address, sizeof(live[n].address), "%s", p->address);
            n++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct pnet_peer *p = peer_find(t, live[i].id);
        if (p != NULL) {
            peer_remove(t, p);
        }
        /* Without memory the peer stays unknown until the node sets it again. */
        (void)peer_add(t, live[i].id, live[i].address);
    }
}

int pnet_transport_set_peer(pnet_transport *t, uint64_t id, const char *address)
{
    int rc = 0;
    if (t == NULL || id == PRAFT_NONE || address == NULL || address[0] == '\0' ||
        strlen(address) >= PRAFT_ADDRESS_MAX) {
        return PT_EINVAL;
    }
    pthread_mutex_lock(&t->mu);
    if (t->shutting_down) {
        rc = PT_ESHUTDOWN;
        goto out;
    }
    struct pnet_peer *old = peer_find(t, id);
    if (old != NULL) {
        if (strcmp(old->address, address) == 0) {
            goto out;
        }
        peer_remove(t, old);
    }
    rc = peer_add(t, id, address);
out:
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int pnet_transport_remove_peer(pnet_transport *t, uint64_t id)
{
    int rc = 0;
    pthread_mutex_lock(&t->mu);
    struct pnet_peer *p = peer_find(t, id);
    if (p == NULL) {
        rc = PT_ENOTFOUND;
    } else {
        peer_remove(t, p);
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int pnet_transport_send(pnet_transport *t, const praft_msg *msg)
{
    struct pnet_item *it;
    int lane, rc;

    if (t == NULL || msg == NULL || (lane = pnet__lane_of(msg->type)) < 0) {
        return PT_EINVAL;
    }
    /* Encode outside the lock: it is the expensive part, and needs nothing shared. */
    it = calloc(1, sizeof(*it));
    if (it == NULL) {
        return PT_ENOMEM;
    }
    rc = pnet__msg_encode_batch_item(msg, &it->buf, &it->len);
    if (rc != 0) {
        free(it);
        return rc;
    }
    if (it->len > t->opts.max_message_bytes) {
        item_free(it);
        return PT_ETOOBIG;
    }

    pthread_mutex_lock(&t->mu);
    struct pnet_peer *p = t->shutting_down ? NULL : peer_find(t, msg->to);
    if (p == NULL) {
        rc = t->shutting_down ? PT_ESHUTDOWN : PT_ENOTFOUND;
        pthread_mutex_unlock(&t->mu);
        item_free(it);
        return rc;
    }
    struct pnet_outlane *l = &p->lanes[lane];
    /* A full queue drops its oldest message: the newest ones carry the latest term and commit
     * index, and Raft retransmits whatever is lost (§5.3). */
    while (l->head != NULL && (l->q_msgs + 1 > t->opts.max_queue_msgs ||
                               l->q_bytes + it->len > t->opts.max_queue_bytes)) {
        struct pnet_item *old = l->head;
        l->head = old->next;
        if (l->head == NULL) {
            l->tail = NULL;
        }
        l->q_msgs--;
        l->q_bytes -= old->len;
        t->stats.msgs_dropped_full++;
        item_free(old);
    }
    if (l->tail != NULL) {
        l->tail->next = it;
    } else {
        l->head = it;
    }
    l->tail = it;
    l->q_msgs++;
    l->q_bytes += it->len;
    t->stats.msgs_queued++;
    if (!l->sending) {
        /* The sender thread starts it (transport.c, "The sender"): not the node's loop, which
         * would write to the socket. A lane already sending takes it at that send's end. */
        pnet__outbox_push(t, NULL);
    }
    pthread_mutex_unlock(&t->mu);
    return 0;
}

void pnet__peers_cancel_all(pnet_transport *t)
{
    for (struct pnet_peer *p = t->peers; p != NULL; p = p->next) {
        for (int i = 0; i < PNET_LANE_COUNT; i++) {
            struct pnet_outlane *l = &p->lanes[i];
            lane_drop_queue(t, l, false);
            if (l->call != NULL) {
                l->broken = true;
                grpc_call_cancel(l->call, NULL);
            }
        }
    }
}

void pnet__peers_free_all(pnet_transport *t)
{
    while (t->peers != NULL) {
        struct pnet_peer *p = t->peers;
        t->peers = p->next;
        peer_free(t, p);
    }
}
