/*
 * The transport's life cycle, its completion-queue thread, and the outbound lanes to peers.
 */
#include "net/transport.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int pnet__buffer_read(grpc_byte_buffer *bb, uint8_t **out, size_t *len)
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

gpr_timespec pnet__deadline_to_gpr(int64_t deadline_ms)
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

int64_t pnet__deadline_from_gpr(gpr_timespec deadline)
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
 * The completion-queue thread
 * ========================================================================================== */

/* Handles one completion (t->mu held); returns a call to hand on with pnet__server_deliver
 * once t->mu is released, or NULL. */
static pnet_call *handle(pnet_transport *t, struct pnet_tag *tag, bool ok)
{
    switch (tag->kind) {
    case PNET_TAG_LANE_SEND:
        pnet__lane_on_send(t, tag->obj, ok);
        pnet__peers_reap(t);
        break;
    case PNET_TAG_LANE_STATUS:
        pnet__lane_on_status(t, tag->obj);
        pnet__peers_reap(t);
        break;
    case PNET_TAG_CLIENT:
        pnet__client_handle(t, tag, ok);
        break;
    case PNET_TAG_SHUTDOWN:
        t->server_done = true;
        break;
    default:
        return pnet__server_handle(t, tag, ok);
    }
    return NULL;
}

static bool finished(const pnet_transport *t)
{
    return t->shutting_down && t->server_done && t->live_calls == 0 && t->pending_requests == 0;
}

/* Whether a completion of @tag is handled without t->mu: a unary call's own (its request, its
 * answer sent, its close) and a server stream's message sent, which touch only the call
 * (transport_internal.h). */
static bool handled_unlocked(const struct pnet_tag *tag)
{
    return tag->kind == PNET_TAG_UNARY_RECV || tag->kind == PNET_TAG_UNARY_SEND ||
           tag->kind == PNET_TAG_UNARY_CLOSE || tag->kind == PNET_TAG_STREAM_SEND;
}

static void *cq_thread(void *arg)
{
    pthread_setname_np(pthread_self(), "pt-net"); /* shown by top -H, perf, gdb */
    pnet_transport *t = arg;
    for (;;) {
        gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                             gpr_time_from_millis(CQ_POLL_MS, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(t->cq, deadline, NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) {
            break;
        }
        bool locked_work = true;
        if (ev.type == GRPC_OP_COMPLETE && handled_unlocked(ev.tag)) {
            pnet__server_handle(t, ev.tag, ev.success != 0);
            locked_work = false;
        }
        /* The chores below wait for time, not for a completion: once a millisecond is enough
         * for a unary call's completions (a timeout, every CQ_POLL_MS, runs them too). */
        int64_t now = pnet_now_ms();
        if (!locked_work && atomic_load_explicit(&t->chores_ms, memory_order_relaxed) == now) {
            continue;
        }
        pnet_call *deliver = NULL;
        pthread_mutex_lock(&t->mu);
        if (locked_work && ev.type == GRPC_OP_COMPLETE) {
            deliver = handle(t, ev.tag, ev.success != 0);
        }
        atomic_store_explicit(&t->chores_ms, now, memory_order_relaxed);
        pnet__lanes_retry(t);
        pnet__unread_sweep(t);
        bool done = finished(t);
        pthread_mutex_unlock(&t->mu);
        if (deliver != NULL) {
            pnet__server_deliver(t, deliver);
        }
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
    opts->max_message_bytes = 16u << 20;
    opts->max_request_bytes = 64u << 10;
    /* One per core, so that reading, TLS and sending spread over a many-core machine; two at
     * least (a connection busy with a large message must not hold up the peers' traffic),
     * eight at most (past that, one completion queue and its lock are the limit). */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    opts->io_threads = cores < 2 ? 2 : (cores > 8 ? 8 : (int)cores);
    opts->max_streams_per_connection = 256;
    opts->max_unread_bytes_per_connection = 16u << 20;
    opts->max_unread_bytes = 256u << 20;
    opts->send_timeout_ms = 30000;
    opts->handshake_timeout_ms = 10000;
    opts->max_idle_ms = 300000;
    opts->transport_memory_bytes = (size_t)2 << 30;
    opts->max_batch_bytes = 4u << 20;
    opts->max_queue_bytes = 64u << 20;
    opts->max_queue_msgs = 65536;
    opts->reconnect_ms = 100;
    opts->connect_timeout_ms = 2000;
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
    v[n++] = int_arg(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, o->reconnect_ms);
    /* Despite its name, gRPC takes this as the least time one connection attempt (the TCP and
     * TLS handshakes) is given, not as a back-off: set to the back-off, a handshake slower
     * than 100 ms (a loaded machine) could never complete, and the cluster lost its peers. */
    v[n++] = int_arg(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, o->connect_timeout_ms);
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
    grpc_arg v[14];
    size_t n = 0;
    /* Bounds against careless and hostile callers (docs/operations.md, "Limits"): calls per
     * connection, time to finish the TLS handshake and the HTTP/2 preface (a connection that
     * never does is closed, not kept), idle connections, and all of gRPC's memory. */
    v[n++] = int_arg(GRPC_ARG_MAX_CONCURRENT_STREAMS, (int)o->max_streams_per_connection);
    v[n++] = int_arg(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, (int)o->handshake_timeout_ms);
    v[n++] = int_arg(GRPC_ARG_MAX_CONNECTION_IDLE_MS, (int)o->max_idle_ms);
    grpc_resource_quota *quota = grpc_resource_quota_create("platoon-server");
    if (quota == NULL) {
        return PT_ENOMEM;
    }
    grpc_resource_quota_resize(quota, o->transport_memory_bytes);
    v[n].type = GRPC_ARG_POINTER;
    v[n].key = (char *)GRPC_ARG_RESOURCE_QUOTA;
    v[n].value.pointer.p = quota;
    v[n++].value.pointer.vtable = grpc_resource_quota_arg_vtable();
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
    grpc_channel_args server_args = {.num_args = n, .args = v};

    t->server = grpc_server_create(&server_args, NULL);
    grpc_resource_quota_unref(quota); /* the server holds its own reference */
    if (t->server == NULL) {
        return PT_ENOMEM;
    }
    grpc_server_register_completion_queue(t->server, t->cq, NULL);
    for (struct pnet_method *m = t->methods; m != NULL; m = m->next) {
        /* Their calls come with the request read: no batch and no completion of its own. */
        m->grpc_method = grpc_server_register_method(t->server, m->name, NULL,
                                                     GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    }
    grpc_server_credentials *creds = pnet__server_creds(t);
    if (creds == NULL) {
        grpc_server_destroy(t->server);
        t->server = NULL;
        return PT_ENOMEM;
    }
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
    /* gRPC's errors are warnings to us; its info and debug messages are our debug. */
    enum pt_log_level level = args->severity == GPR_LOG_SEVERITY_ERROR ? PT_LOG_WARN : PT_LOG_DEBUG;
    if (level == PT_LOG_WARN && strstr(args->message, "Handshake failed") != NULL) {
        /* Every refused TLS handshake (a plaintext client, a certificate of another CA) is
         * one such line: anyone who reaches the port could fill the log with them. Say the
         * first of every ten seconds, with how many were left unsaid. */
        static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
        static int64_t window_ms;
        static uint64_t unsaid;
        int64_t now = pnet_now_ms();
        uint64_t skipped = 0;
        bool say = false;
        pthread_mutex_lock(&mu);
        if (window_ms == 0 || now - window_ms >= 10000) {
            say = true;
            skipped = unsaid;
            unsaid = 0;
            window_ms = now;
        } else {
            unsaid++;
        }
        pthread_mutex_unlock(&mu);
        if (say) {
            PT_WARN("grpc: %s (TLS handshake refused; %llu more since the last such line)",
                    args->message, (unsigned long long)skipped);
        }
        return;
    }
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
           o->reconnect_ms > 0 && o->connect_timeout_ms > 0 && o->keepalive_ms > 1 &&
           o->max_request_bytes > 0 && o->max_streams_per_connection > 0 &&
           o->max_streams_per_connection <= INT_MAX && o->max_unread_bytes_per_connection > 0 &&
           o->max_unread_bytes > 0 && o->send_timeout_ms > 0 && o->handshake_timeout_ms > 0 &&
           o->handshake_timeout_ms <= INT_MAX && o->max_idle_ms > 0 && o->max_idle_ms <= INT_MAX &&
           o->transport_memory_bytes > 0 && o->io_threads >= 1 &&
           o->io_threads <= PNET_MAX_IO_THREADS;
}

/* The method named @name, added (not served yet) if it is not known: NULL for want of memory.
 * t->mu held, or the transport not yet shared. */
static struct pnet_method *method_add(pnet_transport *t, const char *name)
{
    struct pnet_method *m;
    for (m = t->methods; m != NULL; m = m->next) {
        if (strcmp(m->name, name) == 0) {
            return m;
        }
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL || (m->name = strdup(name)) == NULL) {
        free(m);
        return NULL;
    }
    m->next = t->methods;
    t->methods = m;
    return m;
}

static void methods_free(pnet_transport *t)
{
    while (t->methods != NULL) {
        struct pnet_method *m = t->methods;
        t->methods = m->next;
        free(m->name);
        free(m);
    }
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
    pthread_mutex_init(&t->unread_mu, NULL);
    pthread_mutex_init(&t->tls_mu, NULL);
    atomic_init(&t->calls_refused, 0);
    snprintf(t->sender_id, sizeof(t->sender_id), "%llu", (unsigned long long)opts->node_id);
    if (opts->tls != NULL) {
        if (pnet__auth_init(t) != 0) {
            rc = PT_ENOMEM;
            goto err_free;
        }
        pnet__tls_ref(opts->tls);
        t->tls = opts->tls;
        t->secure = true;
    }
    t->opts.tls = NULL; /* t->tls is the one used */
    if (opts->listen_address != NULL) {
        t->listen_address = strdup(opts->listen_address);
        if (t->listen_address == NULL) {
            rc = PT_ENOMEM;
            goto err_free;
        }
    }
    t->opts.listen_address = t->listen_address;
    if (opts->advertise_address != NULL) {
        if (strlen(opts->advertise_address) >= sizeof(t->advertise)) {
            rc = PT_EINVAL;
            goto err_free;
        }
        snprintf(t->advertise, sizeof(t->advertise), "%s", opts->advertise_address);
    }
    t->opts.advertise_address = NULL; /* the copy above is the one used */
    for (size_t i = 0; i < opts->n_methods; i++) {
        const char *name = opts->methods[i];
        if (name == NULL || name[0] != '/') {
            rc = PT_EINVAL;
            goto err_free;
        }
        if (method_add(t, name) == NULL) {
            rc = PT_ENOMEM;
            goto err_free;
        }
    }
    t->opts.methods = NULL; /* the list of methods is the one used */
    t->opts.n_methods = 0;
    build_client_args(t);

    pthread_once(&grpc_log_once, grpc_log_install);
    grpc_init();
    t->cq = grpc_completion_queue_create_for_next(NULL);
    if (t->cq == NULL) {
        rc = PT_ENOMEM;
        goto err_grpc;
    }
    rc = pnet__outbox_start(t);
    if (rc != 0) {
        goto err_cq;
    }
    if (t->listen_address != NULL) {
        rc = start_server(t);
        if (rc != 0) {
            goto err_cq;
        }
        pthread_mutex_lock(&t->mu);
        pnet__server_request(t, NULL);
        /* Two slots at least, one per I/O thread, for each method registered with gRPC, so
         * that calls of one method arriving together are taken together. */
        int slots = t->opts.io_threads < 2 ? 2 : t->opts.io_threads;
        for (struct pnet_method *m = t->methods; m != NULL; m = m->next) {
            for (int i = 0; m->grpc_method != NULL && i < slots; i++) {
                pnet__server_request(t, m);
            }
        }
        pthread_mutex_unlock(&t->mu);
    } else {
        t->server_done = true;
    }
    for (int i = 0; i < t->opts.io_threads; i++) {
        if (pthread_create(&t->threads[i], NULL, cq_thread, t) != 0) {
            if (i > 0) {
                break; /* fewer threads than asked: slower, not wrong */
            }
            rc = PT_ENOMEM;
            goto err_server;
        }
        t->n_threads++;
    }
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
            pnet_call *deliver = NULL;
            pthread_mutex_lock(&t->mu);
            if (ev.type == GRPC_OP_COMPLETE) {
                deliver = handle(t, ev.tag, ev.success != 0);
            }
            pthread_mutex_unlock(&t->mu);
            if (deliver != NULL) {
                pnet__server_deliver(t, deliver);
            }
        }
        grpc_server_destroy(t->server);
    }
err_cq:
    pnet__outbox_stop(t);
    cq_destroy(t);
err_grpc:
    grpc_shutdown_blocking();
err_free:
    pnet__server_free_spares(t);
    methods_free(t);
    pnet__auth_free(t);
    free(t->listen_address);
    pthread_mutex_destroy(&t->tls_mu);
    pthread_mutex_destroy(&t->unread_mu);
    pthread_mutex_destroy(&t->mu);
    free(t);
    return rc;
}

void pnet_transport_free(pnet_transport *t)
{
    if (t == NULL) {
        return;
    }
    pnet_transport_flush(t,
                         false); /* a loop that held the sender is over: nothing may wait for it */
    pthread_mutex_lock(&t->mu);
    t->shutting_down = true;
    pnet__peers_cancel_all(t);
    pnet__client_cancel_all(t);
    if (t->server != NULL) {
        /* The order of the field notes: stop accepting, cancel what runs, drain, destroy. */
        grpc_server_shutdown_and_notify(t->server, t->cq, &t->tag_shutdown);
        grpc_server_cancel_all_calls(t->server);
    }
    pthread_mutex_unlock(&t->mu);

    /* The thread ends once every call has been released and the server has shut down. */
    for (int i = 0; i < t->n_threads; i++) {
        pthread_join(t->threads[i], NULL);
    }
    /* Only now: the completion-queue threads waited for the answers still in the outbox. */
    pnet__outbox_stop(t);

    if (t->server != NULL) {
        grpc_server_destroy(t->server);
    }
    pnet__peers_free_all(t);
    pnet__chans_free(t);
    pnet__server_free_spares(t);
    while (t->unread_conns != NULL) { /* empty once every call was released; for safety */
        struct pnet_unread_conn *c = t->unread_conns;
        t->unread_conns = c->next;
        free(c);
    }
    methods_free(t);
    cq_destroy(t);
    grpc_shutdown_blocking();
    pnet__auth_free(t);
    free(t->listen_address);
    pthread_mutex_destroy(&t->tls_mu);
    pthread_mutex_destroy(&t->unread_mu);
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
    out->calls_received = atomic_load(&t->calls_received);
    out->calls_refused = atomic_load(&t->calls_refused);
}

void pnet_transport_set_prepare(pnet_transport *t, pnet_prepare_fn fn, void *ctx)
{
    pthread_mutex_lock(&t->mu);
    t->prepare = fn;
    t->prepare_ctx = ctx;
    pthread_mutex_unlock(&t->mu);
}

int pnet_transport_register_method(pnet_transport *t, const char *method, void *ctx)
{
    int rc = 0;
    if (t == NULL || method == NULL || method[0] != '/') {
        return PT_EINVAL;
    }
    pthread_mutex_lock(&t->mu);
    struct pnet_method *m = method_add(t, method);
    if (m == NULL) {
        rc = PT_ENOMEM;
    } else {
        m->ctx = ctx;
        m->served = true;
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}
