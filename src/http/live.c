/*
 * The live view's feed (live.h): a WatchPlatoon stream to this node, the platoon it describes,
 * a ring of recent changes as Server-Sent Events, and one streaming response per browser.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/support/alloc.h>

#include "common/log.h"
#include "http/live.h"
#include "net/transport_internal.h"
#include "platoon/error.h"
#include "platoon/v1/platoon.pb-c.h"

#define WATCH_METHOD     "/platoon.v1.Platoon/WatchPlatoon"
/* The "cluster" event's period, which also keeps idle connections alive. */
#define CLUSTER_EVERY_MS 500
/* Pause before watching again after the stream ended (doubling up to the second value). */
#define REWATCH_MIN_MS   100
#define REWATCH_MAX_MS   2000
/* The most of the ring one write to a browser carries. */
#define CHUNK_MAX        (256u << 10)

typedef struct live_vehicle {
    uint64_t id, revision;
    double latitude, longitude, speed, heading;
} live_vehicle;

typedef struct live_frame {
    uint64_t revision;
    char *text; /* "event: put\nid: R\ndata: {...}\n\n" */
    size_t len;
} live_frame;

struct phttp_live {
    pnode *node;
    pnet_transport *net;
    uint64_t id;
    char target[PRAFT_ADDRESS_MAX + 8];
    pthread_t thread;

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;  /* the feed changed, or stop */
    bool stop;
    grpc_call *call; /* the watch in progress, to cancel it on stop */
    int viewers;

    /* The platoon, ascending id. */
    live_vehicle *v;
    size_t n, cap;
    bool have_state; /* a full state arrived; @revision is where the feed stands */
    bool building;   /* a full state is arriving: browsers wait */
    uint64_t revision;
    uint64_t gen; /* bumped by every full state: positions in the ring of an older one */

    /* Changes since, frames[seq % RING] for seq in [first_seq, next_seq): every change after
     * revision @ring_base (the full state's, or the last one the ring let go of). */
    live_frame ring[PHTTP_LIVE_RING];
    uint64_t first_seq, next_seq;
    uint64_t ring_base;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* ============================================================================================
 * Text: a growable buffer and the JSON of a vehicle
 * ========================================================================================== */

typedef struct buf {
    char *p;
    size_t len, cap;
    bool failed;
} buf;

static void bprintf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void bprintf(buf *b, const char *fmt, ...)
{
    if (b->failed) {
        return;
    }
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p != NULL ? b->p + b->len : NULL, b->p != NULL ? b->cap - b->len : 0,
                          fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if (b->p != NULL && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t want = b->cap ? b->cap * 2 : 4096;
        while (want < b->len + (size_t)n + 1) {
            want *= 2;
        }
        char *p = realloc(b->p, want);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = want;
    }
}

/* Ids and revisions are 64-bit: decimal strings, as protobuf's JSON mapping writes them,
 * since JavaScript numbers are exact only to 2^53. %.17g: doubles round-trip exactly. */
static void vehicle_json(buf *b, const live_vehicle *v)
{
    bprintf(b,
            "{\"id\":\"%" PRIu64 "\",\"latitude\":%.17g,\"longitude\":%.17g,\"speed\":%.17g,"
            "\"heading\":%.17g,\"revision\":\"%" PRIu64 "\"}",
            v->id, v->latitude, v->longitude, v->speed, v->heading, v->revision);
}

/* ============================================================================================
 * The platoon (mu held)
 * ========================================================================================== */

static size_t find(const phttp_live *l, uint64_t id, bool *found)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->v[mid].id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = lo < l->n && l->v[lo].id == id;
    return lo;
}

static int put(phttp_live *l, const live_vehicle *v)
{
    bool found;
    size_t i = find(l, v->id, &found);
    if (found) {
        l->v[i] = *v;
        return 0;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        live_vehicle *p = realloc(l->v, cap * sizeof(*p));
        if (p == NULL) {
            return PT_ENOMEM;
        }
        l->v = p;
        l->cap = cap;
    }
    memmove(l->v + i + 1, l->v + i, (l->n - i) * sizeof(*l->v));
    l->v[i] = *v;
    l->n++;
    return 0;
}

static void del(phttp_live *l, uint64_t id)
{
    bool found;
    size_t i = find(l, id, &found);
    if (found) {
        memmove(l->v + i, l->v + i + 1, (l->n - i - 1) * sizeof(*l->v));
        l->n--;
    }
}

static void ring_clear(phttp_live *l)
{
    for (uint64_t s = l->first_seq; s < l->next_seq; s++) {
        free(l->ring[s % PHTTP_LIVE_RING].text);
        l->ring[s % PHTTP_LIVE_RING].text = NULL;
    }
    l->first_seq = l->next_seq;
}

static void ring_push(phttp_live *l, uint64_t revision, char *text, size_t len)
{
    if (l->next_seq - l->first_seq == PHTTP_LIVE_RING) {
        l->ring_base = l->ring[l->first_seq % PHTTP_LIVE_RING].revision;
        free(l->ring[l->first_seq % PHTTP_LIVE_RING].text);
        l->ring[l->first_seq % PHTTP_LIVE_RING].text = NULL;
        l->first_seq++;
    }
    l->ring[l->next_seq % PHTTP_LIVE_RING] = (live_frame){revision, text, len};
    l->next_seq++;
}

static live_vehicle from_proto(const Platoon__V1__Vehicle *p, uint64_t revision)
{
    live_vehicle v = {.id = p->id, .revision = revision};
    v.latitude = p->latitude;
    v.longitude = p->longitude;
    v.speed = p->speed;
    v.heading = p->heading;
    return v;
}

/* Applies one message of the watch. Returns 0, or PT_ENOMEM (the feed then watches again from
 * a full state). */
static int apply(phttp_live *l, const Platoon__V1__WatchPlatoonResponse *r)
{
    if (r->initial) {
        if (r->initial_begin) {
            l->n = 0;
            l->building = true;
        }
        for (size_t i = 0; i < r->n_events; i++) {
            const Platoon__V1__WatchEvent *e = r->events[i];
            if (e->vehicle != NULL) {
                live_vehicle v = from_proto(e->vehicle, e->revision);
                if (put(l, &v) != 0) {
                    return PT_ENOMEM;
                }
            }
        }
        if (r->initial_end) {
            l->building = false;
            l->have_state = true;
            l->revision = r->revision;
            l->gen++;
            ring_clear(l);
            l->ring_base = r->revision;
        }
        return 0;
    }
    for (size_t i = 0; i < r->n_events; i++) {
        const Platoon__V1__WatchEvent *e = r->events[i];
        buf b = {0};
        if (e->type == PLATOON__V1__WATCH_EVENT__TYPE__DELETE) {
            del(l, e->id);
            bprintf(&b,
                    "event: delete\nid: %" PRIu64 "\ndata: {\"revision\":\"%" PRIu64
                    "\",\"id\":\"%" PRIu64 "\"}\n\n",
                    e->revision, e->revision, e->id);
        } else if (e->vehicle != NULL) {
            live_vehicle v = from_proto(e->vehicle, e->revision);
            if (put(l, &v) != 0) {
                return PT_ENOMEM;
            }
            bprintf(&b,
                    "event: put\nid: %" PRIu64 "\ndata: {\"revision\":\"%" PRIu64 "\",\"vehicle\":",
                    e->revision, e->revision);
            vehicle_json(&b, &v);
            bprintf(&b, "}\n\n");
        } else {
            continue;
        }
        if (b.failed) {
            free(b.p);
            return PT_ENOMEM;
        }
        l->revision = e->revision;
        ring_push(l, e->revision, b.p, b.len);
    }
    return 0;
}

/* ============================================================================================
 * The feed thread: one WatchPlatoon stream at a time, to this node
 * ========================================================================================== */

static bool take(grpc_completion_queue *cq, void *tag)
{
    grpc_event ev = grpc_completion_queue_pluck(cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    return ev.type == GRPC_OP_COMPLETE && ev.success;
}

static bool unpack(grpc_byte_buffer *bb, Platoon__V1__WatchPlatoonResponse **out)
{
    grpc_byte_buffer_reader rd;
    if (!grpc_byte_buffer_reader_init(&rd, bb)) {
        return false;
    }
    grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    *out = platoon__v1__watch_platoon_response__unpack(NULL, GRPC_SLICE_LENGTH(s),
                                                       GRPC_SLICE_START_PTR(s));
    grpc_slice_unref(s);
    return *out != NULL;
}

/* Watches until the stream ends. Returns whether it delivered anything. */
static bool watch_once(phttp_live *l, grpc_channel *ch, grpc_completion_queue *cq)
{
    Platoon__V1__WatchPlatoonRequest req = PLATOON__V1__WATCH_PLATOON_REQUEST__INIT;
    req.consistency = PLATOON__V1__READ_CONSISTENCY__READ_CONSISTENCY_STALE;
    pthread_mutex_lock(&l->mu);
    if (l->have_state && !l->building) {
        req.start_case = PLATOON__V1__WATCH_PLATOON_REQUEST__START_FROM_REVISION;
        req.from_revision = l->revision;
    }
    pthread_mutex_unlock(&l->mu);
    uint8_t body[64];
    size_t len = platoon__v1__watch_platoon_request__pack(&req, body);
    grpc_slice method = grpc_slice_from_static_string(WATCH_METHOD);
    grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL,
                                               gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (call == NULL) {
        return false;
    }
    pthread_mutex_lock(&l->mu);
    bool stop = l->stop;
    l->call = call;
    pthread_mutex_unlock(&l->mu);
    if (stop) {
        grpc_call_cancel(call, NULL);
    }

    grpc_slice payload = grpc_slice_from_copied_buffer((const char *)body, len);
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&payload, 1);
    grpc_slice_unref(payload);
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_op ops[4];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    int tag_start = 0, tag_recv = 0, tag_status = 0;
    bool delivered = false;
    if (grpc_call_start_batch(call, ops, 4, &tag_start, NULL) == GRPC_CALL_OK) {
        take(cq, &tag_start);
        for (;;) {
            grpc_byte_buffer *bb = NULL;
            grpc_op op;
            memset(&op, 0, sizeof(op));
            op.op = GRPC_OP_RECV_MESSAGE;
            op.data.recv_message.recv_message = &bb;
            if (grpc_call_start_batch(call, &op, 1, &tag_recv, NULL) != GRPC_CALL_OK ||
                !take(cq, &tag_recv) || bb == NULL) {
                break;
            }
            Platoon__V1__WatchPlatoonResponse *r = NULL;
            bool ok = unpack(bb, &r);
            grpc_byte_buffer_destroy(bb);
            int rc = ok ? 0 : PT_EMALFORMED;
            pthread_mutex_lock(&l->mu);
            if (ok) {
                rc = apply(l, r);
            }
            if (rc != 0) {
                l->have_state = false; /* start over from a full state */
                l->building = false;
            }
            pthread_cond_broadcast(&l->cv);
            pthread_mutex_unlock(&l->mu);
            platoon__v1__watch_platoon_response__free_unpacked(r, NULL);
            if (rc != 0) {
                PT_WARN("live view: %s in the watch; watching again",
                        rc == PT_ENOMEM ? "out of memory" : "an undecodable message");
                grpc_call_cancel(call, NULL);
                break;
            }
            delivered = true;
        }
        grpc_status_code code = GRPC_STATUS_UNKNOWN;
        grpc_slice details = grpc_empty_slice();
        grpc_op st;
        memset(&st, 0, sizeof(st));
        st.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
        st.data.recv_status_on_client.trailing_metadata = &trailing;
        st.data.recv_status_on_client.status = &code;
        st.data.recv_status_on_client.status_details = &details;
        if (grpc_call_start_batch(call, &st, 1, &tag_status, NULL) == GRPC_CALL_OK) {
            take(cq, &tag_status);
        }
        pthread_mutex_lock(&l->mu);
        if (code == GRPC_STATUS_OUT_OF_RANGE || code == GRPC_STATUS_RESOURCE_EXHAUSTED) {
            /* Cannot resume from here (or fell behind mid-state): a full state next time. */
            l->have_state = l->have_state && code == GRPC_STATUS_RESOURCE_EXHAUSTED && !l->building;
            l->building = false;
        }
        stop = l->stop;
        pthread_mutex_unlock(&l->mu);
        if (!stop && code != GRPC_STATUS_OK) {
            char *d = grpc_slice_to_c_string(details);
            PT_DEBUG("live view: the watch ended: code %d: %s", (int)code, d != NULL ? d : "");
            gpr_free(d);
        }
        grpc_slice_unref(details);
    }
    pthread_mutex_lock(&l->mu);
    l->call = NULL;
    pthread_mutex_unlock(&l->mu);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_byte_buffer_destroy(send);
    grpc_call_unref(call);
    return delivered;
}

static void *feed_main(void *arg)
{
    phttp_live *l = arg;
    pthread_setname_np(pthread_self(), "pt-live"); /* shown by top -H, perf, gdb */
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_channel *ch = pnet__channel_new(l->net, l->target, l->id);
    int64_t pause = REWATCH_MIN_MS;
    pthread_mutex_lock(&l->mu);
    while (!l->stop && cq != NULL && ch != NULL) {
        pthread_mutex_unlock(&l->mu);
        bool delivered = watch_once(l, ch, cq);
        pause =
            delivered ? REWATCH_MIN_MS : (pause * 2 < REWATCH_MAX_MS ? pause * 2 : REWATCH_MAX_MS);
        if (!delivered) {
            /* A new channel takes the node's current TLS material: after a reload that
             * revoked the certificate this channel was made with, the old one would keep
             * being refused. */
            grpc_channel *fresh = pnet__channel_new(l->net, l->target, l->id);
            if (fresh != NULL) {
                grpc_channel_destroy(ch);
                ch = fresh;
            }
        }
        pthread_mutex_lock(&l->mu);
        struct timespec until;
        deadline_in(&until, pause);
        while (!l->stop && pthread_cond_timedwait(&l->cv, &l->mu, &until) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&l->mu);
    if (ch != NULL) {
        grpc_channel_destroy(ch);
    }
    if (cq != NULL) {
        grpc_completion_queue_shutdown(cq);
        grpc_completion_queue_destroy(cq);
    }
    return NULL;
}

int phttp__live_start(pnode *node, pnet_transport *net, uint64_t id, const char *address,
                      phttp_live **out, char *err, size_t cap)
{
    *out = NULL;
    phttp_live *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(err, cap, "out of memory");
        return PT_ENOMEM;
    }
    l->node = node;
    l->net = net;
    l->id = id;
    /* A wildcard listening address is dialled on loopback; with TLS the peer is checked by
     * its certificate (node-<id>), not by the address. */
    const char *colon = strrchr(address, ':');
    const char *port = colon != NULL ? colon : ":0";
    size_t host_len = colon != NULL ? (size_t)(colon - address) : 0;
    if (host_len == 0 || (host_len == 7 && strncmp(address, "0.0.0.0", 7) == 0)) {
        snprintf(l->target, sizeof(l->target), "127.0.0.1%s", port);
    } else if (host_len == 4 && strncmp(address, "[::]", 4) == 0) {
        snprintf(l->target, sizeof(l->target), "[::1]%s", port);
    } else {
        snprintf(l->target, sizeof(l->target), "%s", address);
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&l->mu, NULL);
    if (pthread_create(&l->thread, NULL, feed_main, l) != 0) {
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
        free(l);
        snprintf(err, cap, "cannot start the live view's thread");
        return PT_EIO;
    }
    *out = l;
    return 0;
}

void phttp__live_quit(phttp_live *l)
{
    if (l == NULL) {
        return;
    }
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    if (l->call != NULL) {
        grpc_call_cancel(l->call, NULL);
    }
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

void phttp__live_stop(phttp_live *l)
{
    if (l == NULL) {
        return;
    }
    phttp__live_quit(l);
    pthread_join(l->thread, NULL);
    ring_clear(l);
    free(l->v);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

/* ============================================================================================
 * The cluster, as this node sees it
 * ========================================================================================== */

char *phttp__live_cluster_json(pnode *node, size_t *len)
{
    pnode_status *st = malloc(sizeof(*st));
    if (st == NULL) {
        return NULL;
    }
    pnode_status_get(node, st);
    const praft_status *r = &st->raft;
    buf b = {0};
    bprintf(&b,
            "{\"node\":\"%" PRIu64 "\",\"role\":\"%s\",\"term\":\"%" PRIu64
            "\",\"leader\":\"%" PRIu64 "\",\"commit\":\"%" PRIu64 "\",\"applied\":\"%" PRIu64
            "\",\"members\":[",
            r->id, st->failed ? "failed" : praft_role_name(r->role), r->term, r->leader, r->commit,
            st->applied);
    for (size_t i = 0; i < r->config.n_members; i++) {
        const praft_member *m = &r->config.members[i];
        bprintf(&b, "%s{\"id\":\"%" PRIu64 "\",\"address\":\"", i ? "," : "", m->id);
        for (const char *c = m->address; *c != '\0'; c++) { /* addresses are checked, but a */
            unsigned char u = (unsigned char)*c;            /* JSON string is escaped anyway */
            if (u < 0x20 || u == '"' || u == '\\') {
                bprintf(&b, "\\u%04x", u);
            } else {
                bprintf(&b, "%c", *c);
            }
        }
        bool voter = m->role == PRAFT_ROLE_VOTER || m->old_role == PRAFT_ROLE_VOTER;
        /* A leader knows the other voters follow it; anyone else only knows they vote. */
        bprintf(&b, "\",\"role\":\"%s\"",
                !voter                                      ? "learner"
                : r->role == PRAFT_LEADER && m->id != r->id ? "follower"
                                                            : "voter");
        if (m->id == r->id) {
            bprintf(&b,
                    ",\"term\":\"%" PRIu64 "\",\"commit\":\"%" PRIu64 "\",\"applied\":\"%" PRIu64
                    "\"",
                    r->term, r->commit, st->applied);
        }
        for (size_t k = 0; k < r->n_progress; k++) {
            const praft_progress *p = &r->progress[k];
            if (p->id == m->id) {
                /* The leader's view of a follower: how far it has the log, and whether it
                 * answered within an election timeout. */
                bprintf(&b, ",\"match\":\"%" PRIu64 "\",\"lag\":\"%" PRIu64 "\",\"reachable\":%s",
                        p->match, r->last_index > p->match ? r->last_index - p->match : 0,
                        p->recently_active ? "true" : "false");
            }
        }
        if (m->id == r->id && r->role == PRAFT_LEADER) {
            bprintf(&b, ",\"lag\":\"0\",\"reachable\":true");
        }
        bprintf(&b, "}");
    }
    bprintf(&b, "]}");
    free(st);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* ============================================================================================
 * One browser
 * ========================================================================================== */

typedef struct viewer {
    phttp_live *l;
    bool placed; /* @gen and @seq say where it stands in the feed */
    uint64_t gen, seq;
    uint64_t resume_after; /* Last-Event-ID, or UINT64_MAX: none */
    int64_t next_cluster_ms;
    buf out; /* what is being written */
    size_t off;
} viewer;

/* The full state as one "state" event (mu held). */
static void state_event(phttp_live *l, buf *b)
{
    size_t shown = l->n < PHTTP_LIVE_STATE_MAX ? l->n : PHTTP_LIVE_STATE_MAX;
    bprintf(b,
            "event: state\nid: %" PRIu64 "\ndata: {\"revision\":\"%" PRIu64
            "\",\"total\":%zu,\"vehicles\":[",
            l->revision, l->revision, l->n);
    for (size_t i = 0; i < shown; i++) {
        if (i) {
            bprintf(b, ",");
        }
        vehicle_json(b, &l->v[i]);
    }
    bprintf(b, "]}\n\n");
}

/* The first ring position after revision @after, if the ring holds every change after it
 * (mu held). */
static bool ring_resume(const phttp_live *l, uint64_t after, uint64_t *seq)
{
    if (after < l->ring_base || after > l->revision) {
        return false;
    }
    uint64_t s = l->first_seq;
    while (s < l->next_seq && l->ring[s % PHTTP_LIVE_RING].revision <= after) {
        s++;
    }
    *seq = s;
    return true;
}

/* Fills v->out with what is due, waiting for it up to the next cluster event. Returns false
 * when the feed stops. */
static bool refill(viewer *v)
{
    phttp_live *l = v->l;
    v->out.len = 0;
    v->off = 0;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        if (l->stop) {
            pthread_mutex_unlock(&l->mu);
            return false;
        }
        bool ready = l->have_state && !l->building;
        if (ready && !v->placed && v->resume_after != UINT64_MAX &&
            ring_resume(l, v->resume_after, &v->seq)) {
            v->placed = true;
            v->gen = l->gen;
        }
        if (ready && (!v->placed || v->gen != l->gen || v->seq < l->first_seq)) {
            state_event(l, &v->out);
            v->placed = true;
            v->gen = l->gen;
            v->seq = l->next_seq;
            break;
        }
        if (ready && v->seq < l->next_seq) {
            while (v->seq < l->next_seq && v->out.len < CHUNK_MAX) {
                const live_frame *f = &l->ring[v->seq % PHTTP_LIVE_RING];
                bprintf(&v->out, "%.*s", (int)f->len, f->text);
                v->seq++;
            }
            break;
        }
        int64_t left = v->next_cluster_ms - now_ms();
        if (left <= 0) {
            break;
        }
        struct timespec until;
        deadline_in(&until, left);
        pthread_cond_timedwait(&l->cv, &l->mu, &until);
    }
    pthread_mutex_unlock(&l->mu);
    if (now_ms() >= v->next_cluster_ms) {
        size_t len = 0;
        char *c = phttp__live_cluster_json(l->node, &len);
        if (c != NULL) {
            bprintf(&v->out, "event: cluster\ndata: %s\n\n", c);
            free(c);
        }
        v->next_cluster_ms = now_ms() + CLUSTER_EVERY_MS;
    }
    return !v->out.failed;
}

static ssize_t viewer_read(void *cls, uint64_t pos, char *dst, size_t max)
{
    (void)pos;
    viewer *v = cls;
    while (v->off >= v->out.len) {
        if (!refill(v)) {
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
    }
    size_t n = v->out.len - v->off < max ? v->out.len - v->off : max;
    memcpy(dst, v->out.p + v->off, n);
    v->off += n;
    return (ssize_t)n;
}

static void viewer_free(void *cls)
{
    viewer *v = cls;
    pthread_mutex_lock(&v->l->mu);
    v->l->viewers--;
    pthread_mutex_unlock(&v->l->mu);
    free(v->out.p);
    free(v);
}

struct MHD_Response *phttp__live_events(phttp_live *l, const char *last_event_id,
                                        unsigned int *status)
{
    viewer *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        *status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        return NULL;
    }
    v->l = l;
    v->resume_after = UINT64_MAX;
    if (last_event_id != NULL && *last_event_id >= '0' && *last_event_id <= '9') {
        char *end;
        errno = 0;
        unsigned long long r = strtoull(last_event_id, &end, 10);
        if (errno == 0 && *end == '\0') {
            v->resume_after = r;
        }
    }
    pthread_mutex_lock(&l->mu);
    bool full = l->viewers >= PHTTP_LIVE_VIEWERS_MAX;
    if (!full) {
        l->viewers++;
    }
    pthread_mutex_unlock(&l->mu);
    if (full) {
        free(v);
        *status = MHD_HTTP_SERVICE_UNAVAILABLE;
        return NULL;
    }
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 << 10, viewer_read, v, viewer_free);
    if (r == NULL) {
        viewer_free(v);
        *status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        return NULL;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return r;
}
