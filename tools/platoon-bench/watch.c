/*
 * Watchers (watch.h). Every stream has two batches on the queue while it lives: the status
 * (RECV_STATUS_ON_CLIENT, completes once, when the stream ends) and one RECV_MESSAGE, armed
 * again as soon as the previous one completes. A stream that ends before the run does is
 * counted with its status and not reopened: a figure over fewer watchers than asked must be
 * visible as such, not repaired behind the reader's back.
 */
#include "watch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/support/time.h>

#include "engine.h"
#include "platoon/error.h"
#include "platoon/v1/platoon.pb-c.h"

/* Acknowledged writes by revision: a ring indexed by the revision's low bits. Half a million
 * writes back is far more than the answer-to-event gap of any run. */
#define ACK_BITS         19
#define ACK_SIZE         (1u << ACK_BITS)
/* Events received before their write's answer, waiting for it, in arrival order. */
#define EARLY_SIZE       (1u << 20)
/* An early event whose answer has not come after this long will not get one (a failed write,
 * or a write that was not the bench's). */
#define EARLY_GIVE_UP_NS 2000000000u

struct ack {
    uint64_t revision;
    uint64_t ns;
};

/* Written by the engine's thread, read by the watchers': the revision is stored last (release)
 * and read first (acquire), so a matching revision comes with its time. A slot overwritten
 * while being read would need the ring to wrap (ACK_SIZE writes) in between. */
struct shared_ack {
    _Atomic uint64_t revision;
    _Atomic uint64_t ns;
};

struct watcher {
    grpc_call *call;
    grpc_byte_buffer *send, *recv;
    grpc_metadata_array md_initial, md_trailing;
    grpc_status_code status;
    grpc_slice details;
    bool ended;
    char tag_msg, tag_status; /* their addresses are the completion tags */
};

struct pbench_watch {
    uint32_t n;
    const char *target;
    uint32_t n_channels;
    grpc_channel **channels;
    grpc_completion_queue *cq;
    pbench_watch_result *res;
    struct watcher *ws;
    uint32_t pending;
    bool cancelled;
    struct shared_ack *acks;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    uint64_t record_start_ns, record_end_ns;
    /* This thread's CPU time when the recording window opened and closed (0: not yet). */
    double cpu_at_start, cpu_at_end;
    struct ack *early; /* revision, receive time */
    uint64_t early_head, early_tail;
};

pbench_watch *pbench_watch_create(uint32_t n, const char *target, uint32_t channels,
                                  pbench_watch_result *res)
{
    pbench_watch *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return NULL;
    }
    w->n = n;
    w->target = target;
    w->n_channels = channels > n ? n : channels;
    if (w->n_channels == 0) {
        w->n_channels = 1; /* every stream needs one */
    }
    w->res = res;
    w->cq = grpc_completion_queue_create_for_next(NULL);
    w->channels = calloc(w->n_channels ? w->n_channels : 1, sizeof(grpc_channel *));
    w->ws = calloc(n ? n : 1, sizeof(*w->ws));
    w->acks = calloc(ACK_SIZE, sizeof(*w->acks));
    w->early = malloc(EARLY_SIZE * sizeof(*w->early));
    if (w->cq == NULL || w->channels == NULL || w->ws == NULL || w->acks == NULL ||
        w->early == NULL) {
        pbench_watch_destroy(w);
        return NULL;
    }
    res->watchers = n;
    res->channels = w->n_channels;
    pbench_hist_reset(&res->late);
    pbench_hist_reset(&res->early);
    return w;
}

static int arm_recv(pbench_watch *w, struct watcher *s)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &s->recv;
    s->recv = NULL;
    if (grpc_call_start_batch(s->call, &op, 1, &s->tag_msg, NULL) != GRPC_CALL_OK) {
        return PT_EIO;
    }
    w->pending++;
    return 0;
}

void pbench_watch_filter(pbench_watch *w, uint32_t pool, uint32_t offset)
{
    w->res->filter_pool = pool;
    w->res->filter_offset = offset;
}

static int start_one(pbench_watch *w, struct watcher *s, uint32_t index, grpc_channel *ch)
{
    /* STALE: the stream starts from what this node has applied, without a ReadIndex round to
     * the leader (the watchers are on the leader by default, where both are the same). */
    Platoon__V1__WatchPlatoonRequest req = PLATOON__V1__WATCH_PLATOON_REQUEST__INIT;
    req.consistency = PLATOON__V1__READ_CONSISTENCY__READ_CONSISTENCY_STALE;
    uint64_t id = 1 + (uint64_t)w->res->filter_offset +
                  index % (w->res->filter_pool ? w->res->filter_pool : 1);
    if (w->res->filter_pool > 0) {
        req.n_ids = 1;
        req.ids = &id;
    }
    uint8_t buf[32];
    size_t len = platoon__v1__watch_platoon_request__pack(&req, buf);

    s->call =
        grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, w->cq,
                                 grpc_slice_from_static_string("/platoon.v1.Platoon/WatchPlatoon"),
                                 NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (s->call == NULL) {
        return PT_ENOMEM;
    }
    grpc_slice payload = grpc_slice_from_copied_buffer((const char *)buf, len);
    s->send = grpc_raw_byte_buffer_create(&payload, 1);
    grpc_slice_unref(payload);
    grpc_metadata_array_init(&s->md_initial);
    grpc_metadata_array_init(&s->md_trailing);
    s->details = grpc_empty_slice();

    grpc_op st;
    memset(&st, 0, sizeof(st));
    st.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    st.data.recv_status_on_client.trailing_metadata = &s->md_trailing;
    st.data.recv_status_on_client.status = &s->status;
    st.data.recv_status_on_client.status_details = &s->details;
    if (grpc_call_start_batch(s->call, &st, 1, &s->tag_status, NULL) != GRPC_CALL_OK) {
        return PT_EIO;
    }
    w->pending++;

    grpc_op ops[5];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = s->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->md_initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &s->recv;
    s->recv = NULL;
    if (grpc_call_start_batch(s->call, ops, 5, &s->tag_msg, NULL) != GRPC_CALL_OK) {
        return PT_EIO;
    }
    w->pending++;
    return 0;
}

static void *watch_thread(void *arg);

int pbench_watch_start(pbench_watch *w, uint64_t record_start_ns, uint64_t record_end_ns)
{
    w->record_start_ns = record_start_ns;
    w->record_end_ns = record_end_ns;
    if (w->n_channels == 0) {
        return PT_EINVAL; /* create never leaves it so */
    }
    for (uint32_t i = 0; i < w->n_channels; i++) {
        w->channels[i] = pbench_channel_open(w->target);
        if (w->channels[i] == NULL) {
            return PT_EIO;
        }
    }
    for (uint32_t i = 0; i < w->n; i++) {
        int rc = start_one(w, &w->ws[i], i, w->channels[i % w->n_channels]);
        if (rc != 0) {
            atomic_store(&w->stop, true);
            break;
        }
    }
    /* Its own thread, so that reading a million events a second does not hold up the write
     * answers on the engine's thread (which would lower the write rate measured). */
    if (pthread_create(&w->thread, NULL, watch_thread, w) != 0) {
        return PT_ENOMEM;
    }
    w->thread_started = true;
    return atomic_load(&w->stop) ? PT_EIO : 0;
}

static void push_early(pbench_watch *w, uint64_t revision, uint64_t now)
{
    if (w->early_tail - w->early_head == EARLY_SIZE) {
        w->res->unmatched++; /* no room to wait for its answer */
        return;
    }
    struct ack *e = &w->early[w->early_tail++ & (EARLY_SIZE - 1)];
    e->revision = revision;
    e->ns = now;
}

static void settle(pbench_watch *w, uint64_t now, bool all)
{
    pbench_watch_result *res = w->res;
    while (w->early_head < w->early_tail) {
        const struct ack *e = &w->early[w->early_head & (EARLY_SIZE - 1)];
        struct shared_ack *a = &w->acks[e->revision & (ACK_SIZE - 1)];
        uint64_t rev = atomic_load_explicit(&a->revision, memory_order_acquire);
        if (rev == e->revision) {
            uint64_t ack_ns = atomic_load_explicit(&a->ns, memory_order_relaxed);
            res->matched++;
            if (ack_ns >= e->ns) {
                pbench_hist_record(&res->early, ack_ns - e->ns);
            } else {
                pbench_hist_record(&res->late, e->ns - ack_ns);
            }
        } else if (all || rev > e->revision || now - e->ns > EARLY_GIVE_UP_NS) {
            res->unmatched++;
        } else {
            break; /* its answer may still come; those behind it wait (arrival order) */
        }
        w->early_head++;
    }
}

void pbench_watch_ack(pbench_watch *w, uint64_t revision, uint64_t now)
{
    struct shared_ack *a = &w->acks[revision & (ACK_SIZE - 1)];
    atomic_store_explicit(&a->ns, now, memory_order_relaxed);
    atomic_store_explicit(&a->revision, revision, memory_order_release);
}

static void on_message(pbench_watch *w, struct watcher *s, uint64_t now, bool recording)
{
    pbench_watch_result *res = w->res;
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, s->recv)) {
        return;
    }
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    Platoon__V1__WatchPlatoonResponse *m = platoon__v1__watch_platoon_response__unpack(
        NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    grpc_byte_buffer_reader_destroy(&reader);
    if (m == NULL) {
        return;
    }
    if (m->initial) {
        res->initial += m->n_events;
    } else if (recording) {
        res->messages++;
        res->events += m->n_events;
        for (size_t i = 0; i < m->n_events; i++) {
            uint64_t rev = m->events[i]->revision;
            struct shared_ack *a = &w->acks[rev & (ACK_SIZE - 1)];
            if (atomic_load_explicit(&a->revision, memory_order_acquire) == rev) {
                uint64_t ack_ns = atomic_load_explicit(&a->ns, memory_order_relaxed);
                res->matched++;
                if (now >= ack_ns) {
                    pbench_hist_record(&res->late, now - ack_ns);
                } else {
                    pbench_hist_record(&res->early, ack_ns - now);
                }
            } else {
                push_early(w, rev, now);
            }
        }
    }
    platoon__v1__watch_platoon_response__free_unpacked(m, NULL);
}

static void complete(pbench_watch *w, void *tag, bool success, uint64_t now, bool recording)
{
    size_t idx = (size_t)((char *)tag - (char *)w->ws) / sizeof(struct watcher);
    struct watcher *s = &w->ws[idx];
    w->pending--;
    if (tag == &s->tag_status) {
        s->ended = true;
        if (!w->cancelled) {
            pbench_watch_result *res = w->res;
            res->ended_early++;
            int code = success ? (int)s->status : GRPC_STATUS_UNKNOWN;
            res->codes[code >= 0 && code < PBENCH_WATCH_CODES ? code : GRPC_STATUS_UNKNOWN]++;
            if (res->first_error[0] == '\0') {
                snprintf(res->first_error, sizeof(res->first_error), "status %d: %.*s", code,
                         (int)GRPC_SLICE_LENGTH(s->details),
                         (const char *)GRPC_SLICE_START_PTR(s->details));
            }
        }
        return;
    }
    if (s->send != NULL) {
        grpc_byte_buffer_destroy(s->send);
        s->send = NULL;
    }
    if (!success || s->recv == NULL) {
        return; /* the stream is over: its status says why */
    }
    on_message(w, s, now, recording);
    grpc_byte_buffer_destroy(s->recv);
    s->recv = NULL;
    if (!w->cancelled) {
        (void)arm_recv(w, s); /* on failure the status completes the stream */
    }
}

static void cancel_all(pbench_watch *w)
{
    w->cancelled = true;
    for (uint32_t i = 0; i < w->n; i++) {
        if (w->ws[i].call != NULL && !w->ws[i].ended) {
            grpc_call_cancel(w->ws[i].call, NULL);
        }
    }
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) {
        return 0;
    }
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The watchers' thread: their completions until pbench_watch_stop, then the cancellations. */
static void *watch_thread(void *arg)
{
    pbench_watch *w = arg;
    bool started = false, ended = false;
    while (w->pending > 0) {
        uint64_t t = pbench_now_ns();
        if (!started && t >= w->record_start_ns) {
            started = true;
            w->cpu_at_start = thread_cpu_s();
        }
        if (started && !ended && t >= w->record_end_ns) {
            ended = true;
            w->cpu_at_end = thread_cpu_s();
            w->res->thread_cpu_s = w->cpu_at_end - w->cpu_at_start;
        }
        if (atomic_load(&w->stop) && !w->cancelled) {
            cancel_all(w);
        }
        gpr_timespec wait =
            gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(100, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(w->cq, wait, NULL);
        uint64_t now = pbench_now_ns();
        if (ev.type == GRPC_OP_COMPLETE) {
            complete(w, ev.tag, ev.success != 0, now,
                     now >= w->record_start_ns && now < w->record_end_ns);
        }
        settle(w, now, false);
    }
    settle(w, pbench_now_ns(), true);
    if (started && !ended) {
        w->res->thread_cpu_s = thread_cpu_s() - w->cpu_at_start; /* stopped early */
    }
    return NULL;
}

void pbench_watch_stop(pbench_watch *w)
{
    atomic_store(&w->stop, true);
    if (w->thread_started) {
        pthread_join(w->thread, NULL);
        w->thread_started = false;
    }
}

void pbench_watch_destroy(pbench_watch *w)
{
    if (w == NULL) {
        return;
    }
    pbench_watch_stop(w);
    for (uint32_t i = 0; w->ws != NULL && i < w->n; i++) {
        struct watcher *s = &w->ws[i];
        if (s->call == NULL) {
            continue;
        }
        if (s->send != NULL) {
            grpc_byte_buffer_destroy(s->send);
        }
        if (s->recv != NULL) {
            grpc_byte_buffer_destroy(s->recv);
        }
        grpc_metadata_array_destroy(&s->md_initial);
        grpc_metadata_array_destroy(&s->md_trailing);
        grpc_slice_unref(s->details);
        grpc_call_unref(s->call);
    }
    for (uint32_t i = 0; w->channels != NULL && i < w->n_channels; i++) {
        if (w->channels[i] != NULL) {
            grpc_channel_destroy(w->channels[i]);
        }
    }
    if (w->cq != NULL) {
        grpc_completion_queue_shutdown(w->cq);
        while (grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
               GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(w->cq);
    }
    free(w->channels);
    free(w->ws);
    free(w->acks);
    free(w->early);
    free(w);
}
