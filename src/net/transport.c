/*
 * The transport's life cycle, its completion-queue thread, and the outbound lanes to peers.
 */
#include "net/transport.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>
#include <grpc/support/log.h>

#include "common/log.h"
#include "net/transport_internal.h"

/* How long the completion-queue thread sleeps at most: the period at which lanes waiting to be
 * reopened after a failure are looked at. */
#define CQ_POLL_MS 20

/* ============================================================================================
 * Small helpers shared with server.c and client.c
 * ========================================================================================== */

int __pnet_buffer_read(grpc_byte_buffer *bb, uint8_t **out, size_t *len)
{
    grpc_byte_buffer_reader reader;
    grpc_slice s;
    int rc = 0;

    *out = NULL;
    *len = 0;
    if (!grpc_byte_buffer_reader_init(&reader, bb)) {
        return PT_EMALFORMED; /* a compressed message we could not inflate */
    }
    s = grpc_byte_buffer_reader_readall(&reader);
    size_t n = GRPC_SLICE_LENGTH(s);
    uint8_t *buf = malloc(n + 1);
    if (buf == NULL) {
        rc = PT_ENOMEM;
    } else {
        memcpy(buf, GRPC_SLICE_START_PTR(s), n);
        *out = buf;
        *len = n;
    }
    grpc_slice_unref(s);
    grpc_byte_buffer_reader_destroy(&reader);
    return rc;
}

gpr_timespec __pnet_deadline_to_gpr(int64_t deadline_ms)
{
    if (deadline_ms == INT64_MAX) {
        return gpr_inf_future(GPR_CLOCK_MONOTONIC);
    }
    int64_t left = deadline_ms - pnet_now_ms();
    if (left < 0) {
        left = 0;
    }
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(left, GPR_TIMESPAN));
}

int64_t __pnet_deadline_from_gpr(gpr_timespec deadline)
{
    if (gpr_time_cmp(deadline, gpr_inf_future(deadline.clock_type)) == 0) {
        return INT64_MAX;
    }
    /* Only differences of gRPC's clock are meaningful here: convert through "time left". */
    gpr_timespec now = gpr_now(deadline.clock_type);
    gpr_timespec left = gpr_time_sub(deadline, now);
    int64_t left_ms = (int64_t)left.tv_sec * 1000 + left.tv_nsec / 1000000;
    return pnet_now_ms() + left_ms;
}

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
static void reap_peers(pnet_transport *t)
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
    const char *method = __pnet_lane_method(l->index);
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
            return; /* the completion-queue thread retries (retry_lanes) */
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

static void lane_on_send(pnet_transport *t, struct pnet_outlane *l, bool ok)
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

static void lane_on_status(pnet_transport *t, struct pnet_outlane *l)
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

/* Reopens lanes whose stream failed and whose pause is over. */
static void retry_lanes(pnet_transport *t)
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
 * The completion-queue thread
 * ========================================================================================== */

static void handle(pnet_transport *t, struct pnet_tag *tag, bool ok)
{
    switch (tag->kind) {
    case PNET_TAG_LANE_SEND:
        lane_on_send(t, tag->obj, ok);
        reap_peers(t);
        break;
    case PNET_TAG_LANE_STATUS:
        lane_on_status(t, tag->obj);
        reap_peers(t);
        break;
    case PNET_TAG_CLIENT:
        __pnet_client_handle(t, tag, ok);
        break;
    case PNET_TAG_SHUTDOWN:
        t->server_done = true;
        break;
    default:
        __pnet_server_handle(t, tag, ok);
        break;
    }
}

static bool finished(const pnet_transport *t)
{
    return t->shutting_down && t->server_done && t->live_calls == 0 && t->pending_requests == 0;
}

static void *cq_thread(void *arg)
{
    pnet_transport *t = arg;
    for (;;) {
        gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                             gpr_time_from_millis(CQ_POLL_MS, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(t->cq, deadline, NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) {
            break;
        }
        pthread_mutex_lock(&t->mu);
        if (ev.type == GRPC_OP_COMPLETE) {
            handle(t, ev.tag, ev.success != 0);
        }
        retry_lanes(t);
        bool done = finished(t);
        pthread_mutex_unlock(&t->mu);
        if (done) {
            break;
        }
    }
    return NULL;
}

/* ============================================================================================
 * Life cycle
 * ========================================================================================== */

void pnet_transport_options_init(pnet_transport_options *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->max_message_bytes = 64u << 20;
    opts->max_batch_bytes = 4u << 20;
    opts->max_queue_bytes = 64u << 20;
    opts->max_queue_msgs = 65536;
    opts->reconnect_ms = 100;
    opts->keepalive_ms = 2000;
}

static grpc_arg int_arg(const char *key, int value)
{
    grpc_arg a;
    a.type = GRPC_ARG_INTEGER;
    a.key = (char *)key;
    a.value.integer = value;
    return a;
}

/* Channel arguments of every outbound channel (peers and client calls). */
static void build_client_args(pnet_transport *t)
{
    const pnet_transport_options *o = &t->opts;
    size_t n = 0;
    grpc_arg *v = t->client_arg_v;
    v[n++] = int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, (int)o->max_message_bytes);
    v[n++] = int_arg(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, (int)o->max_message_bytes);
    /* The default back-off leaves a restarted peer unreachable for many seconds, longer than
     * an election timeout. */
    v[n++] = int_arg(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, o->reconnect_ms);
    v[n++] = int_arg(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, o->reconnect_ms);
    v[n++] = int_arg(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, o->reconnect_ms);
    v[n++] = int_arg(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, o->reconnect_ms);
    v[n++] = int_arg(GRPC_ARG_KEEPALIVE_TIME_MS, o->keepalive_ms);
    v[n++] = int_arg(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, o->keepalive_ms);
    v[n++] = int_arg(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    v[n++] = int_arg(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    /* Retries would buffer every stream message in the channel; Raft does its own. */
    v[n++] = int_arg(GRPC_ARG_ENABLE_RETRIES, 0);
    t->client_args.num_args = n;
    t->client_args.args = v;
}

static int start_server(pnet_transport *t)
{
    const pnet_transport_options *o = &t->opts;
    grpc_arg v[8];
    size_t n = 0;
    v[n++] = int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, (int)o->max_message_bytes);
    v[n++] = int_arg(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, (int)o->max_message_bytes);
    /* Accept our peers' keepalive pings (the default refuses pings more often than every five
     * minutes and closes the connection), and ping silent clients ourselves. */
    v[n++] = int_arg(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, o->keepalive_ms / 2);
    v[n++] = int_arg(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
    v[n++] = int_arg(GRPC_ARG_KEEPALIVE_TIME_MS, o->keepalive_ms);
    v[n++] = int_arg(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, o->keepalive_ms);
    v[n++] = int_arg(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    /* Two nodes configured with the same address must not silently share it. */
    v[n++] = int_arg(GRPC_ARG_ALLOW_REUSEPORT, 0);
    grpc_channel_args args = {.num_args = n, .args = v};

    t->server = grpc_server_create(&args, NULL);
    if (t->server == NULL) {
        return PT_ENOMEM;
    }
    grpc_server_register_completion_queue(t->server, t->cq, NULL);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    t->port = grpc_server_add_http2_port(t->server, t->listen_address, creds);
    grpc_server_credentials_release(creds);
    if (t->port <= 0) {
        /* Never started: no shutdown is needed before destroying it. */
        grpc_server_destroy(t->server);
        t->server = NULL;
        t->port = 0;
        return PT_EIO;
    }
    grpc_server_start(t->server);
    return 0;
}

/* gRPC writes its own diagnostics to stderr by default; a library must not print, so they go to
 * the program's log sink like ours (process wide, installed once). */
static void grpc_log_to_sink(gpr_log_func_args *args)
{
    enum pt_log_level level = args->severity == GPR_LOG_SEVERITY_ERROR  ? PT_LOG_WARN
                              : args->severity == GPR_LOG_SEVERITY_INFO ? PT_LOG_DEBUG
                                                                        : PT_LOG_DEBUG;
    PT_LOG(level, "grpc: %s", args->message);
}

static pthread_once_t grpc_log_once = PTHREAD_ONCE_INIT;

static void grpc_log_install(void)
{
    gpr_set_log_function(grpc_log_to_sink);
}

static bool opts_ok(const pnet_transport_options *o)
{
    return o->mailbox != NULL && o->max_message_bytes > 0 && o->max_message_bytes <= INT_MAX &&
           o->max_batch_bytes > 0 && o->max_queue_bytes > 0 && o->max_queue_msgs > 0 &&
           o->reconnect_ms > 0 && o->keepalive_ms > 1;
}

/* Destroys the completion queue after draining it (nothing may be pending on it). */
static void cq_destroy(pnet_transport *t)
{
    grpc_completion_queue_shutdown(t->cq);
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(t->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) {
            break;
        }
    }
    grpc_completion_queue_destroy(t->cq);
}

int pnet_transport_new(const pnet_transport_options *opts, pnet_transport **out)
{
    pnet_transport *t;
    int rc;

    if (opts == NULL || out == NULL || !opts_ok(opts)) {
        return PT_EINVAL;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return PT_ENOMEM;
    }
    t->opts = *opts;
    t->mb = opts->mailbox;
    t->tag_shutdown.kind = PNET_TAG_SHUTDOWN;
    t->tag_shutdown.obj = t;
    pthread_mutex_init(&t->mu, NULL);
    if (opts->listen_address != NULL) {
        t->listen_address = strdup(opts->listen_address);
        if (t->listen_address == NULL) {
            rc = PT_ENOMEM;
            goto err_free;
        }
    }
    t->opts.listen_address = t->listen_address;
    build_client_args(t);

    pthread_once(&grpc_log_once, grpc_log_install);
    grpc_init();
    t->cq = grpc_completion_queue_create_for_next(NULL);
    if (t->cq == NULL) {
        rc = PT_ENOMEM;
        goto err_grpc;
    }
    if (t->listen_address != NULL) {
        rc = start_server(t);
        if (rc != 0) {
            goto err_cq;
        }
        pthread_mutex_lock(&t->mu);
        __pnet_server_request(t);
        pthread_mutex_unlock(&t->mu);
    } else {
        t->server_done = true;
    }
    if (pthread_create(&t->thread, NULL, cq_thread, t) != 0) {
        rc = PT_ENOMEM;
        goto err_server;
    }
    t->thread_started = true;
    *out = t;
    return 0;

err_server:
    if (t->server != NULL) {
        /* Let the thread-less shutdown path below drain the pending request. */
        pthread_mutex_lock(&t->mu);
        t->shutting_down = true;
        pthread_mutex_unlock(&t->mu);
        grpc_server_shutdown_and_notify(t->server, t->cq, &t->tag_shutdown);
        grpc_server_cancel_all_calls(t->server);
        while (!finished(t)) {
            grpc_event ev =
                grpc_completion_queue_next(t->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
            pthread_mutex_lock(&t->mu);
            if (ev.type == GRPC_OP_COMPLETE) {
                handle(t, ev.tag, ev.success != 0);
            }
            pthread_mutex_unlock(&t->mu);
        }
        grpc_server_destroy(t->server);
    }
err_cq:
    cq_destroy(t);
err_grpc:
    grpc_shutdown_blocking();
err_free:
    free(t->listen_address);
    pthread_mutex_destroy(&t->mu);
    free(t);
    return rc;
}

void pnet_transport_free(pnet_transport *t)
{
    if (t == NULL) {
        return;
    }
    pthread_mutex_lock(&t->mu);
    t->shutting_down = true;
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
    __pnet_client_cancel_all(t);
    if (t->server != NULL) {
        /* The order of the field notes: stop accepting, cancel what runs, drain, destroy. */
        grpc_server_shutdown_and_notify(t->server, t->cq, &t->tag_shutdown);
        grpc_server_cancel_all_calls(t->server);
    }
    pthread_mutex_unlock(&t->mu);

    /* The thread ends once every call has been released and the server has shut down. */
    pthread_join(t->thread, NULL);

    if (t->server != NULL) {
        grpc_server_destroy(t->server);
    }
    while (t->peers != NULL) {
        struct pnet_peer *p = t->peers;
        t->peers = p->next;
        peer_free(t, p);
    }
    __pnet_chans_free(t);
    while (t->methods != NULL) {
        struct pnet_method *m = t->methods;
        t->methods = m->next;
        free(m->name);
        free(m);
    }
    cq_destroy(t);
    grpc_shutdown_blocking();
    free(t->listen_address);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

int pnet_transport_port(pnet_transport *t)
{
    return t->port;
}

void pnet_transport_stats_get(pnet_transport *t, pnet_transport_stats *out)
{
    pthread_mutex_lock(&t->mu);
    *out = t->stats;
    pthread_mutex_unlock(&t->mu);
}

int pnet_transport_register_method(pnet_transport *t, const char *method, void *ctx)
{
    int rc = 0;
    if (t == NULL || method == NULL || method[0] != '/') {
        return PT_EINVAL;
    }
    pthread_mutex_lock(&t->mu);
    struct pnet_method *m;
    for (m = t->methods; m != NULL; m = m->next) {
        if (strcmp(m->name, method) == 0) {
            m->ctx = ctx;
            goto out;
        }
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL || (m->name = strdup(method)) == NULL) {
        free(m);
        rc = PT_ENOMEM;
        goto out;
    }
    m->ctx = ctx;
    m->next = t->methods;
    t->methods = m;
out:
    pthread_mutex_unlock(&t->mu);
    return rc;
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
    reap_peers(t);
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
    struct pnet_peer *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->address = strdup(address)) == NULL) {
        free(p);
        rc = PT_ENOMEM;
        goto out;
    }
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    p->channel = grpc_channel_create(address, creds, &t->client_args);
    grpc_channel_credentials_release(creds);
    if (p->channel == NULL) {
        free(p->address);
        free(p);
        rc = PT_ENOMEM;
        goto out;
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

    if (t == NULL || msg == NULL || (lane = __pnet_lane_of(msg->type)) < 0) {
        return PT_EINVAL;
    }
    /* Encode outside the lock: it is the expensive part, and needs nothing shared. */
    it = calloc(1, sizeof(*it));
    if (it == NULL) {
        return PT_ENOMEM;
    }
    rc = __pnet_msg_encode_batch_item(msg, &it->buf, &it->len);
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
    lane_pump(t, l);
    pthread_mutex_unlock(&t->mu);
    return 0;
}
