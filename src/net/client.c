/*
 * Outbound unary calls (a follower forwarding a client's request to the leader), with their
 * completions delivered to the node's mailbox.
 */
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>

#include "net/transport_internal.h"

struct pnet_client_call {
    struct pnet_tag tag;
    struct pnet_client_call *next, *prev;
    grpc_call *call;
    grpc_byte_buffer *request;
    grpc_metadata_array md_initial, md_trailing;
    grpc_metadata caller_md;
    char caller[PNET_PRINCIPAL_MAX]; /* the encoded caller, "" if none */
    grpc_byte_buffer *response;
    grpc_status_code status;
    grpc_slice details;
    pnet_client_done_fn done;
    void *ctx;
};

/* The cached channel to node @node_id at @address, created on first use. NULL on failure. */
static grpc_channel *chan_get(pnet_transport *t, uint64_t node_id, const char *address)
{
    /* A peer's lanes keep a connection to it open (and its TLS handshake done): a call to the
     * same node at the same address uses it instead of connecting anew. */
    grpc_channel *peer = pnet__peer_channel(t, node_id, address);
    if (peer != NULL) {
        return peer;
    }
    for (struct pnet_chan *c = t->chans; c != NULL; c = c->next) {
        if (c->node_id == node_id && strcmp(c->address, address) == 0) {
            return c->channel;
        }
    }
    struct pnet_chan *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->address = strdup(address)) == NULL) {
        free(c);
        return NULL;
    }
    c->node_id = node_id;
    c->channel = pnet__channel_new(t, address, node_id);
    if (c->channel == NULL) {
        free(c->address);
        free(c);
        return NULL;
    }
    c->next = t->chans;
    t->chans = c;
    return c->channel;
}

static void chans_free(struct pnet_chan **list)
{
    while (*list != NULL) {
        struct pnet_chan *c = *list;
        *list = c->next;
        grpc_channel_destroy(c->channel);
        free(c->address);
        free(c);
    }
}

void pnet__chans_free(pnet_transport *t)
{
    chans_free(&t->chans);
    chans_free(&t->retired_chans);
}

void pnet__chans_retire(pnet_transport *t)
{
    /* Calls in flight may still use them: they are freed with the transport. Reloads are rare
     * and channels few, so keeping them costs little. */
    while (t->chans != NULL) {
        struct pnet_chan *c = t->chans;
        t->chans = c->next;
        c->next = t->retired_chans;
        t->retired_chans = c;
    }
}

static void client_call_free(struct pnet_client_call *cc)
{
    if (cc->request != NULL) {
        grpc_byte_buffer_destroy(cc->request);
    }
    if (cc->response != NULL) {
        grpc_byte_buffer_destroy(cc->response);
    }
    grpc_metadata_array_destroy(&cc->md_initial);
    grpc_metadata_array_destroy(&cc->md_trailing);
    grpc_slice_unref(cc->details);
    free(cc);
}

int pnet_client_call(pnet_transport *t, uint64_t node_id, const char *address,
                     const pnet_identity *caller, const char *method, const void *data, size_t len,
                     int64_t deadline_ms, pnet_client_done_fn done, void *ctx)
{
    grpc_op ops[6];
    int rc = 0;

    if (t == NULL || address == NULL || method == NULL || method[0] != '/' ||
        (data == NULL && len > 0)) {
        return PT_EINVAL;
    }
    struct pnet_client_call *cc = calloc(1, sizeof(*cc));
    if (cc == NULL) {
        return PT_ENOMEM;
    }
    if (t->secure && caller != NULL && caller->kind != PNET_ID_NONE &&
        pnet__identity_encode(caller, cc->caller, sizeof(cc->caller)) != 0) {
        free(cc);
        return PT_EINVAL;
    }
    cc->tag = (struct pnet_tag){.kind = PNET_TAG_CLIENT, .obj = cc};
    cc->done = done;
    cc->ctx = ctx;
    cc->details = grpc_empty_slice();
    grpc_metadata_array_init(&cc->md_initial);
    grpc_metadata_array_init(&cc->md_trailing);
    grpc_slice slice = grpc_slice_from_copied_buffer(data != NULL ? data : "", len);
    cc->request = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);

    pthread_mutex_lock(&t->mu);
    if (t->shutting_down) {
        rc = PT_ESHUTDOWN;
        goto fail;
    }
    grpc_channel *ch = chan_get(t, node_id, address);
    if (ch == NULL) {
        rc = PT_ENOMEM;
        goto fail;
    }
    grpc_slice mslice = grpc_slice_from_copied_string(method);
    /* No wait-for-ready: forwarding to a leader that is down must fail fast (UNAVAILABLE) so
     * that the node can answer its client or try the next leader. */
    cc->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, t->cq, mslice, NULL,
                                        pnet__deadline_to_gpr(deadline_ms), NULL);
    grpc_slice_unref(mslice);
    if (cc->call == NULL) {
        rc = PT_ENOMEM;
        goto fail;
    }
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (cc->caller[0] != '\0') {
        cc->caller_md.key = grpc_slice_from_static_string(PNET_PRINCIPAL_METADATA);
        cc->caller_md.value = grpc_slice_from_static_buffer(cc->caller, strlen(cc->caller));
        ops[0].data.send_initial_metadata.count = 1;
        ops[0].data.send_initial_metadata.metadata = &cc->caller_md;
    }
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = cc->request;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &cc->md_initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &cc->response;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &cc->md_trailing;
    ops[5].data.recv_status_on_client.status = &cc->status;
    ops[5].data.recv_status_on_client.status_details = &cc->details;
    if (grpc_call_start_batch(cc->call, ops, 6, &cc->tag, NULL) != GRPC_CALL_OK) {
        grpc_call_unref(cc->call);
        rc = PT_EINTERNAL;
        goto fail;
    }
    t->live_calls++;
    cc->next = t->client_calls;
    if (cc->next != NULL) {
        cc->next->prev = cc;
    }
    t->client_calls = cc;
    pthread_mutex_unlock(&t->mu);
    return 0;

fail:
    pthread_mutex_unlock(&t->mu);
    client_call_free(cc);
    return rc;
}

void pnet__client_cancel_all(pnet_transport *t)
{
    for (struct pnet_client_call *cc = t->client_calls; cc != NULL; cc = cc->next) {
        grpc_call_cancel(cc->call, NULL);
    }
}

void pnet__client_handle(pnet_transport *t, struct pnet_tag *tag, bool ok)
{
    struct pnet_client_call *cc = tag->obj;
    pnet_event *ev = calloc(1, sizeof(*ev));

    /* The batch of a unary client call always completes with its status filled. */
    (void)ok;
    if (cc->prev != NULL) {
        cc->prev->next = cc->next;
    } else {
        t->client_calls = cc->next;
    }
    if (cc->next != NULL) {
        cc->next->prev = cc->prev;
    }
    if (ev != NULL) {
        ev->type = PNET_EV_CLIENT_DONE;
        ev->done = cc->done;
        ev->done_ctx = cc->ctx;
        ev->status = (int)cc->status;
        size_t dlen = GRPC_SLICE_LENGTH(cc->details);
        ev->message = malloc(dlen + 1);
        if (ev->message != NULL) {
            memcpy(ev->message, GRPC_SLICE_START_PTR(cc->details), dlen);
            ev->message[dlen] = '\0';
        }
        if (cc->status == GRPC_STATUS_OK && cc->response != NULL) {
            if (pnet__buffer_read(cc->response, &ev->data, &ev->len) != 0) {
                ev->status = GRPC_STATUS_RESOURCE_EXHAUSTED;
            }
        }
        pnet__mailbox_post(t->mb, ev);
    }
    grpc_call_unref(cc->call);
    t->live_calls--;
    client_call_free(cc);
}
