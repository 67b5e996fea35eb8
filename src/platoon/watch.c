/*
 * WatchPlatoon: watchers, their pump, and the handler (watch.h says how changes flow).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platoon/state.h"
#include "platoon/v1/platoon.pb-c.h"

#define WATCH_QUERY_TAG 0xA8

struct pveh_watcher {
    struct pveh_watcher *prev, *next;
    pveh_sm *sm;
    pnode_request *req;
    uint64_t *ids; /* the filter, normalised (history.h); NULL: every vehicle */
    size_t n_ids;

    /* Sending a full state: from @view, frozen at @view_revision, after id @view_after (or,
     * with a filter, after the @view_pos first ids of it). */
    bool in_state;
    bool state_begun; /* its first message (initial_begin) was sent */
    pveh_map view;
    uint64_t view_revision;
    uint64_t view_after;
    size_t view_pos;

    /* Changes: of the history's @epoch; the next one to examine is the member's seq, and
     * the index knows which it matches (watch_index.h). Those at or below @skip_to are not
     * sent (a resumption after a revision this node has not reached). */
    uint64_t epoch;
    pveh_windex_member member;
    uint64_t skip_to;
    /* The revision a client can resume from: every matching change up to it was sent.
     * Meaningless while a full state is incomplete (@resumable false). */
    uint64_t resume_from;
    bool resumable;
    /* Changes not yet sent after the last pump (max_lag). */
    uint64_t lag;
};

/* Room to build one message, the hub's (allocated with its first watcher), reused by every
 * watcher of the node. */
struct pveh_watch_scratch {
    Platoon__V1__WatchEvent events[PVEH_WATCH_BATCH];
    Platoon__V1__WatchEvent *ptrs[PVEH_WATCH_BATCH];
    Platoon__V1__Vehicle vehicles[PVEH_WATCH_BATCH];
};

void pveh_watch_options_init(pveh_watch_options *opts)
{
    opts->history = PVEH_WATCH_HISTORY_DEFAULT;
    opts->max_lag = PVEH_WATCH_MAX_LAG_DEFAULT;
    opts->buffer_bytes = PVEH_WATCH_BUFFER_BYTES_DEFAULT;
    opts->max_watchers = PVEH_WATCH_MAX_WATCHERS_DEFAULT;
}

int pveh_watch_configure(pveh_sm *sm, const pveh_watch_options *opts)
{
    if (sm == NULL || opts == NULL || opts->history > PVEH_WATCH_HISTORY_MAX ||
        opts->max_lag == 0 || opts->buffer_bytes < PVEH_WATCH_BUFFER_BYTES_MIN ||
        opts->max_watchers == 0) {
        return PT_EINVAL;
    }
    sm->watch.opts = *opts;
    pveh__history_set_max(&sm->watch.history, opts->history);
    atomic_store(&sm->watch.oldest, sm->watch.history.base);
    return 0;
}

void pveh_watch_counters_get(pveh_sm *sm, pveh_watch_counters *out)
{
    const pveh_watch_hub *h = &sm->watch;
    out->watchers_open = atomic_load(&h->open);
    out->watchers_started = atomic_load(&h->started);
    out->watchers_dropped_slow = atomic_load(&h->dropped_slow);
    out->watchers_resent = atomic_load(&h->resent);
    out->events_sent = atomic_load(&h->events_sent);
    out->messages_sent = atomic_load(&h->messages_sent);
    out->history_changes = atomic_load(&h->changes);
    out->history_oldest = atomic_load(&h->oldest);
}

void pveh__watch_init(pveh_watch_hub *hub)
{
    memset(hub, 0, sizeof(*hub));
    pveh_watch_options_init(&hub->opts);
    pveh__history_init(&hub->history, hub->opts.history, 0);
    pveh__windex_init(&hub->index);
}

void pveh__watch_free(pveh_watch_hub *hub)
{
    free(hub->scratch);
    hub->scratch = NULL;
    for (size_t i = 0; i < PVEH_WATCH_SHARED; i++) {
        pnode_message_free(hub->shared[i].msg);
        hub->shared[i].msg = NULL;
    }
    pveh__history_free(&hub->history);
    pveh__windex_free(&hub->index);
}

static void wake_watcher(void *ctx, pveh_windex_member *m)
{
    (void)ctx;
    struct pveh_watcher *w = m->owner;
    pnode_stream_wake(w->req);
}

void pveh__watch_record(pveh_watch_hub *hub, const pveh_change *c)
{
    uint64_t base = hub->history.base;
    uint64_t seq = hub->history.next_seq;
    pveh__history_record(&hub->history, c);
    hub->last_revision = c->revision;
    pveh__windex_record(&hub->index, c->vehicle.id, seq, wake_watcher, NULL);
    atomic_fetch_add_explicit(&hub->changes, 1, memory_order_relaxed);
    if (hub->history.base != base) {
        atomic_store_explicit(&hub->oldest, hub->history.base, memory_order_relaxed);
    }
}

void pveh__watch_reset(pveh_watch_hub *hub, uint64_t applied)
{
    pveh__history_reset(&hub->history, applied);
    atomic_store(&hub->oldest, applied);
    /* Each watcher sends the full state again (watcher_pump). */
    pveh__windex_each(&hub->index, wake_watcher, NULL);
}

/* ============================================================================================
 * The query a watch starts with
 * ========================================================================================== */

int pveh__watch_query(uint8_t **out, size_t *out_len)
{
    uint8_t *q = malloc(1);
    if (q == NULL) {
        return PT_ENOMEM;
    }
    q[0] = WATCH_QUERY_TAG;
    *out = q;
    *out_len = 1;
    return 0;
}

bool pveh__watch_query_is(const uint8_t *query, size_t len)
{
    return len > 0 && query != NULL && query[0] == WATCH_QUERY_TAG;
}

int pveh__watch_query_run(const uint8_t *query, size_t len, uint8_t **result, size_t *result_len)
{
    if (len != 1 || !pveh__watch_query_is(query, len)) {
        return PT_EMALFORMED;
    }
    *result = NULL;
    *result_len = 0;
    return 0;
}

/* ============================================================================================
 * Watchers
 * ========================================================================================== */

static void watcher_free(struct pveh_watcher *w)
{
    pveh_watch_hub *hub = &w->sm->watch;
    if (w->prev != NULL) {
        w->prev->next = w->next;
    } else if (hub->watchers == w) {
        hub->watchers = w->next;
    }
    if (w->next != NULL) {
        w->next->prev = w->prev;
    }
    hub->n_watchers--;
    atomic_fetch_sub(&hub->open, 1);
    pveh__windex_remove(&hub->index, &w->member);
    if (w->in_state) {
        pveh__map_free(&w->view);
    }
    free(w->ids);
    free(w);
}

/* "@what; resume with from_revision=N", or what to do when there is nothing to resume. */
static void resume_message(const struct pveh_watcher *w, const char *what, char *buf, size_t cap)
{
    if (w->resumable) {
        snprintf(buf, cap, "%s; resume with from_revision=%llu", what,
                 (unsigned long long)w->resume_from);
    } else {
        snprintf(buf, cap, "%s; the full state was not complete: watch again without from_revision",
                 what);
    }
}

static int send_message(struct pveh_watcher *w, Platoon__V1__WatchPlatoonResponse *m)
{
    int rc = pnode_stream_send(w->req, &m->base);
    if (rc == 0) {
        atomic_fetch_add_explicit(&w->sm->watch.messages_sent, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&w->sm->watch.events_sent, m->n_events, memory_order_relaxed);
    }
    return rc;
}

static void put_event(struct pveh_watch_scratch *sc, size_t i, int type, const pveh_vehicle *v,
                      uint64_t id, uint64_t revision)
{
    Platoon__V1__WatchEvent *e = &sc->events[i];
    platoon__v1__watch_event__init(e);
    e->type = type;
    e->id = id;
    e->revision = revision;
    if (v != NULL) {
        Platoon__V1__Vehicle *out = &sc->vehicles[i];
        platoon__v1__vehicle__init(out);
        out->id = v->id;
        out->latitude = v->latitude;
        out->longitude = v->longitude;
        out->speed = v->speed;
        out->heading = v->heading;
        out->revision = v->revision;
        e->vehicle = out;
    }
    sc->ptrs[i] = e;
}

/* Starts sending a full state: the vehicles as applied now, and the changes after them. */
static int begin_state(struct pveh_watcher *w)
{
    pveh_sm *sm = w->sm;
    if (w->in_state) {
        pveh__map_free(&w->view);
        w->in_state = false;
    }
    if (pveh__map_freeze(&sm->vehicles, &w->view) != 0) {
        return PT_ENOMEM;
    }
    w->in_state = true;
    w->state_begun = false;
    w->view_revision = sm->applied_index;
    w->view_after = 0;
    w->view_pos = 0;
    w->epoch = sm->watch.history.epoch;
    pveh__windex_restart(&w->member, sm->watch.history.next_seq);
    w->skip_to = 0;
    w->resumable = false;
    w->lag = UINT64_MAX; /* a full state starts anew: only later pumps compare */
    return 0;
}

/* Sends the next message of the full state. Returns 0 or pnode_stream_send's error. */
static int send_state_page(struct pveh_watcher *w)
{
    struct pveh_watch_scratch *sc = w->sm->watch.scratch;
    size_t n = 0;
    bool end;
    if (w->n_ids == 0) {
        pveh_map_iter it;
        pveh__map_seek_after(&w->view, w->view_after, &it);
        const pveh_vehicle *v;
        while (n < PVEH_WATCH_BATCH && (v = pveh__map_next(&it)) != NULL) {
            put_event(sc, n++, PLATOON__V1__WATCH_EVENT__TYPE__PUT, v, v->id, v->revision);
        }
        end = pveh__map_next(&it) == NULL;
    } else {
        /* At most PVEH_WATCH_IDS_MAX ids: one message. */
        while (n < PVEH_WATCH_BATCH && w->view_pos < w->n_ids) {
            const pveh_vehicle *v = pveh__map_find(&w->view, w->ids[w->view_pos++]);
            if (v != NULL) {
                put_event(sc, n++, PLATOON__V1__WATCH_EVENT__TYPE__PUT, v, v->id, v->revision);
            }
        }
        end = w->view_pos == w->n_ids;
    }
    if (n > 0 && w->n_ids == 0) {
        w->view_after = sc->events[n - 1].id;
    }
    Platoon__V1__WatchPlatoonResponse m = PLATOON__V1__WATCH_PLATOON_RESPONSE__INIT;
    m.n_events = n;
    m.events = sc->ptrs;
    m.initial = true;
    m.initial_begin = !w->state_begun;
    m.initial_end = end;
    m.revision = w->view_revision;
    int rc = send_message(w, &m);
    if (rc != 0) {
        return rc;
    }
    w->state_begun = true;
    if (end) {
        pveh__map_free(&w->view);
        w->in_state = false;
        w->resumable = true;
        w->resume_from = w->view_revision;
    }
    return 0;
}

/* The batch of changes [@from, @to) packed, from the shared ones or packed now into the slot
 * used least recently; NULL when out of memory. */
static const pveh_watch_shared *shared_batch(pveh_watch_hub *hub, uint64_t from, uint64_t to)
{
    const pveh_history *h = &hub->history;
    for (size_t i = 0; i < PVEH_WATCH_SHARED; i++) {
        const pveh_watch_shared *s = &hub->shared[i];
        if (s->msg != NULL && s->epoch == h->epoch && s->from == from && s->to == to) {
            return s;
        }
    }
    struct pveh_watch_scratch *sc = hub->scratch;
    size_t n = 0;
    for (uint64_t seq = from; seq < to; seq++) {
        const pveh_change *c = pveh__history_at(h, seq);
        assert(c != NULL);
        put_event(sc, n++,
                  c->op == PVEH_CHANGE_PUT ? PLATOON__V1__WATCH_EVENT__TYPE__PUT
                                           : PLATOON__V1__WATCH_EVENT__TYPE__DELETE,
                  c->op == PVEH_CHANGE_PUT ? &c->vehicle : NULL, c->vehicle.id, c->revision);
    }
    Platoon__V1__WatchPlatoonResponse m = PLATOON__V1__WATCH_PLATOON_RESPONSE__INIT;
    m.n_events = n;
    m.events = sc->ptrs;
    m.revision = sc->events[n - 1].revision;
    pnode_message *msg;
    if (pnode_message_pack(&m.base, &msg) != 0) {
        return NULL;
    }
    pveh_watch_shared *s = &hub->shared[hub->shared_next];
    hub->shared_next = (hub->shared_next + 1) % PVEH_WATCH_SHARED;
    pnode_message_free(s->msg);
    *s = (pveh_watch_shared){.epoch = h->epoch,
                             .from = from,
                             .to = to,
                             .last_revision = m.revision,
                             .n_events = n,
                             .msg = msg};
    return s;
}

/* An unfiltered watcher sends every change from its position: the same message as every other
 * one at that position, packed once. *@done says whether it did (not when it must skip changes
 * up to skip_to, or out of memory: send_changes then packs its own). Returns 0 or
 * pnode_stream_send's error. */
static int send_shared(struct pveh_watcher *w, bool *done)
{
    pveh_watch_hub *hub = &w->sm->watch;
    const pveh_history *h = &hub->history;
    *done = false;
    uint64_t from = w->member.seq;
    if (w->n_ids != 0 || !w->member.walk || from >= h->next_seq) {
        return 0;
    }
    const pveh_change *first = pveh__history_at(h, from);
    if (first == NULL || first->revision <= w->skip_to) {
        return 0;
    }
    uint64_t to = h->next_seq - from > PVEH_WATCH_BATCH ? from + PVEH_WATCH_BATCH : h->next_seq;
    const pveh_watch_shared *s = shared_batch(hub, from, to);
    if (s == NULL) {
        return 0;
    }
    int rc = pnode_stream_send_packed(w->req, s->msg);
    if (rc != 0) {
        return rc;
    }
    atomic_fetch_add_explicit(&hub->messages_sent, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&hub->events_sent, s->n_events, memory_order_relaxed);
    w->member.seq = to;
    if (s->last_revision > w->resume_from) {
        w->resume_from = s->last_revision;
    }
    *done = true;
    return 0;
}

/* Sends the next changes the filter matches, if there are any (*@sent says). Returns 0 or
 * pnode_stream_send's error. */
static int send_changes(struct pveh_watcher *w, bool *sent)
{
    const pveh_watch_hub *hub = &w->sm->watch;
    const pveh_history *h = &hub->history;
    struct pveh_watch_scratch *sc = hub->scratch;
    size_t n = 0;
    uint64_t examined = w->resume_from;
    *sent = false;
    int rc = send_shared(w, sent);
    if (rc != 0 || *sent) {
        return rc;
    }
    while (n < PVEH_WATCH_BATCH) {
        uint64_t before = w->member.seq;
        uint64_t seq;
        if (!pveh__windex_next(&w->member, h, &seq)) {
            /* Every change from @before on was examined: none the index noted matches. */
            if (before < h->next_seq && hub->last_revision > w->skip_to &&
                hub->last_revision > examined) {
                examined = hub->last_revision;
            }
            break;
        }
        const pveh_change *c = pveh__history_at(h, seq);
        /* watcher_pump ended the watcher if a change it needs was evicted. */
        assert(c != NULL);
        if (c->revision <= w->skip_to) {
            continue;
        }
        examined = c->revision;
        if (!pveh__ids_match(w->ids, w->n_ids, c->vehicle.id)) {
            continue;
        }
        if (c->op == PVEH_CHANGE_PUT) {
            put_event(sc, n++, PLATOON__V1__WATCH_EVENT__TYPE__PUT, &c->vehicle, c->vehicle.id,
                      c->revision);
        } else {
            put_event(sc, n++, PLATOON__V1__WATCH_EVENT__TYPE__DELETE, NULL, c->vehicle.id,
                      c->revision);
        }
    }
    if (n > 0) {
        Platoon__V1__WatchPlatoonResponse m = PLATOON__V1__WATCH_PLATOON_RESPONSE__INIT;
        m.n_events = n;
        m.events = sc->ptrs;
        m.revision = sc->events[n - 1].revision;
        rc = send_message(w, &m);
        if (rc != 0) {
            return rc;
        }
        *sent = true;
    }
    /* Every change up to @examined that the filter matches was sent: resuming after it is
     * exact (and saves the client's resumption from scanning the others again). */
    if (examined > w->resume_from) {
        w->resume_from = examined;
    }
    return 0;
}

/* Ends @w's stream with @code (the message says how to resume) and frees it. */
static void watcher_end(struct pveh_watcher *w, int code, const char *what)
{
    char why[300];
    resume_message(w, what, why, sizeof(why));
    pnode_request *req = w->req;
    watcher_free(w);
    /* The status follows the messages already queued, so the revision it names is exactly
     * what the client will have received. A reader that never reads again never takes them:
     * they stay bounded (buffer_bytes) until the transport's send timeout cancels the call. */
    pnode_fail(req, code, why);
}

static void watcher_pump(pnode *node, void *ctx, pnode_request *req)
{
    (void)node;
    (void)req;
    struct pveh_watcher *w = ctx;
    pveh_watch_hub *hub = &w->sm->watch;
    const pveh_history *h = &hub->history;
    if (w->epoch != h->epoch) {
        /* A snapshot replaced the state (this node fell behind its leader): the changes it
         * covers were never applied here, so the watcher gets the full state again. */
        if (begin_state(w) != 0) {
            watcher_end(w, PNODE_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        atomic_fetch_add(&hub->resent, 1);
    }
    if (w->n_ids == 0) {
        /* It examines everything new now: the next change wakes the unfiltered again. */
        pveh__windex_unfiltered_seen(&hub->index);
    }
    if (pveh__windex_needed(&w->member, h) < pveh__history_first_seq(h)) {
        char what[200];
        snprintf(what, sizeof(what),
                 "the watcher fell behind: changes it had not been sent left the history of "
                 "the last %u changes (it does not read its stream fast enough)",
                 (unsigned)hub->opts.history);
        atomic_fetch_add(&hub->dropped_slow, 1);
        watcher_end(w, PNODE_RESOURCE_EXHAUSTED, what);
        return;
    }
    bool full;
    while (!(full = pnode_stream_queued(w->req) >= hub->opts.buffer_bytes)) {
        int rc;
        bool sent = true;
        if (w->in_state) {
            rc = send_state_page(w);
        } else {
            rc = send_changes(w, &sent);
        }
        if (rc == PT_ECANCELED) {
            /* The transport ended it (a bound on unread answers, with its own status and
             * message) or the client is gone: what is answered here reaches nobody. */
            watcher_end(w, PNODE_RESOURCE_EXHAUSTED, "the stream was not read");
            return;
        }
        if (rc != 0) {
            watcher_end(w, PNODE_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
        if (!sent) {
            break;
        }
    }
    /* Behind by more than the bound, and further behind than after the last pump: its reader
     * takes changes more slowly than they come. One that is catching up (a resumption from
     * long ago, read as fast as it is sent) is left alone. */
    uint64_t lag = h->next_seq - pveh__windex_needed(&w->member, h);
    if (lag > hub->opts.max_lag && lag > w->lag) {
        char what[200];
        snprintf(what, sizeof(what),
                 "the watcher fell behind by more than %u changes (it does not read its stream "
                 "fast enough)",
                 (unsigned)hub->opts.max_lag);
        atomic_fetch_add(&hub->dropped_slow, 1);
        watcher_end(w, PNODE_RESOURCE_EXHAUSTED, what);
        return;
    }
    w->lag = lag;
    if (full) {
        /* Stopped by its reader: pumped again once it has taken enough (or on the next change
         * it wants, which checks how far behind it is). Stopped for want of changes, it is
         * woken by the next one it wants. */
        pnode_stream_wake_below(w->req, hub->opts.buffer_bytes);
    }
}

static void watcher_closed(pnode *node, void *ctx, pnode_request *req, int code)
{
    (void)node;
    (void)req;
    struct pveh_watcher *w = ctx;
    if (code == PNODE_UNAVAILABLE) {
        watcher_end(w, PNODE_UNAVAILABLE, "the node is shutting down: watch on another node");
    } else {
        watcher_end(w, code, "the client went away");
    }
}

static const pnode_stream_ops watcher_ops = {.pump = watcher_pump, .closed = watcher_closed};

/* ============================================================================================
 * The handler
 * ========================================================================================== */

/* Decodes and checks the request of @req; answers it when it is refused. */
static Platoon__V1__WatchPlatoonRequest *decode(pnode_request *req, bool *linearizable)
{
    size_t len;
    const uint8_t *data = pnode_request_data(req, &len);
    Platoon__V1__WatchPlatoonRequest *in =
        platoon__v1__watch_platoon_request__unpack(NULL, len, data);
    if (in == NULL) {
        pnode_fail(req, PNODE_INVALID_ARGUMENT, "malformed WatchPlatoonRequest");
        return NULL;
    }
    const char *why = NULL;
    if (in->n_ids > PVEH_WATCH_IDS_MAX) {
        why = "ids may name at most 1000 vehicles";
    }
    for (size_t i = 0; why == NULL && i < in->n_ids; i++) {
        if (in->ids[i] == 0) {
            why = "ids must not contain 0";
        }
    }
    if (why == NULL) {
        switch (in->consistency) {
        case PLATOON__V1__READ_CONSISTENCY__READ_CONSISTENCY_LINEARIZABLE:
            *linearizable = true;
            break;
        case PLATOON__V1__READ_CONSISTENCY__READ_CONSISTENCY_STALE:
            *linearizable = false;
            break;
        default:
            why = "consistency must be READ_CONSISTENCY_LINEARIZABLE or READ_CONSISTENCY_STALE";
            break;
        }
    }
    if (why != NULL) {
        platoon__v1__watch_platoon_request__free_unpacked(in, NULL);
        pnode_fail(req, PNODE_INVALID_ARGUMENT, why);
        return NULL;
    }
    return in;
}

static bool room_for_one_more(pveh_watch_hub *hub, pnode_request *req)
{
    if (hub->n_watchers < hub->opts.max_watchers) {
        return true;
    }
    char why[200];
    snprintf(why, sizeof(why),
             "%zu watches are open on this node, the most it serves (--watch-max-watchers): "
             "watch on another node or retry later",
             hub->n_watchers);
    pnode_fail(req, PNODE_RESOURCE_EXHAUSTED, why);
    return false;
}

/* Once the node's state is fresh enough (the query ran): the watch starts at what is applied
 * now, on the loop thread, with nothing applied in between. */
static void watch_start(pnode *node, void *ctx, pnode_request *req, int code, const char *message,
                        const uint8_t *result, size_t len)
{
    (void)result;
    (void)len;
    pveh_sm *sm = ctx;
    pveh_watch_hub *hub = &sm->watch;
    if (code != PNODE_OK) {
        pnode_fail(req, code, message);
        return;
    }
    bool linearizable;
    Platoon__V1__WatchPlatoonRequest *in = decode(req, &linearizable);
    if (in == NULL || !room_for_one_more(hub, req)) {
        if (in != NULL) {
            platoon__v1__watch_platoon_request__free_unpacked(in, NULL);
        }
        return;
    }
    if (hub->scratch == NULL) {
        hub->scratch = malloc(sizeof(*hub->scratch));
    }
    struct pveh_watcher *w = hub->scratch != NULL ? calloc(1, sizeof(*w)) : NULL;
    if (w != NULL && in->n_ids > 0) {
        w->ids = malloc(in->n_ids * sizeof(*w->ids));
        if (w->ids == NULL) {
            free(w);
            w = NULL;
        } else {
            memcpy(w->ids, in->ids, in->n_ids * sizeof(*w->ids));
            w->n_ids = pveh__ids_normalize(w->ids, in->n_ids);
        }
    }
    bool resume = in->start_case == PLATOON__V1__WATCH_PLATOON_REQUEST__START_FROM_REVISION;
    uint64_t from = in->from_revision;
    platoon__v1__watch_platoon_request__free_unpacked(in, NULL);
    if (w == NULL) {
        pnode_fail(req, PNODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    w->sm = sm;
    w->req = req;
    int rc = 0;
    if (resume) {
        uint64_t seq;
        if (!pveh__history_seek(&hub->history, from, &seq)) {
            char why[400];
            snprintf(why, sizeof(why),
                     "from_revision %llu is older than the changes this node still holds: the "
                     "oldest revision a watch can resume from here is %llu; watch without "
                     "from_revision to get the full state",
                     (unsigned long long)from, (unsigned long long)hub->history.base);
            free(w->ids);
            free(w);
            pnode_fail(req, PNODE_OUT_OF_RANGE, why);
            return;
        }
        w->epoch = hub->history.epoch;
        w->member.seq = seq;
        w->skip_to = from;
        w->resumable = true;
        w->resume_from = from;
        w->lag = UINT64_MAX;
    } else {
        rc = begin_state(w);
    }
    if (rc == 0) {
        rc = pnode_stream_open(node, req, &watcher_ops, w);
    }
    if (rc == 0) {
        w->member.owner = w;
        w->member.ids = w->ids;
        w->member.n_ids = w->n_ids;
        rc = pveh__windex_add(&hub->index, &w->member, w->member.seq, hub->history.next_seq);
        if (rc == 0) {
            rc = pnode_stream_on_demand(req);
        }
        if (rc != 0) {
            /* The stream is open: close it as the runtime would, without a pump. */
            pveh__windex_remove(&hub->index, &w->member);
            if (w->in_state) {
                pveh__map_free(&w->view);
            }
            free(w->ids);
            free(w);
            pnode_fail(req, PNODE_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
    }
    if (rc != 0) {
        if (w->in_state) {
            pveh__map_free(&w->view);
        }
        free(w->ids);
        free(w);
        pnode_fail(req, rc == PT_ENOMEM ? PNODE_RESOURCE_EXHAUSTED : PNODE_UNAVAILABLE,
                   rc == PT_ENOMEM ? "out of memory" : "the node is shutting down");
        return;
    }
    w->next = hub->watchers;
    if (hub->watchers != NULL) {
        hub->watchers->prev = w;
    }
    hub->watchers = w;
    hub->n_watchers++;
    atomic_fetch_add(&hub->open, 1);
    atomic_fetch_add(&hub->started, 1);
    watcher_pump(node, w, req);
}

void pveh__watch_handle(pnode *node, void *app, pnode_request *req)
{
    pveh_sm *sm = app;
    bool linearizable = true;
    Platoon__V1__WatchPlatoonRequest *in = decode(req, &linearizable);
    if (in == NULL) {
        return;
    }
    platoon__v1__watch_platoon_request__free_unpacked(in, NULL);
    if (!room_for_one_more(&sm->watch, req)) {
        return;
    }
    uint8_t *q = NULL;
    size_t q_len = 0;
    if (pveh__watch_query(&q, &q_len) != 0) {
        pnode_fail(req, PNODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    /* A stale start still refuses a node that has applied nothing (pnode_query): an empty
     * initial state would read as an empty platoon. */
    pnode_query(node, req, linearizable, q, q_len, watch_start, sm);
    free(q);
}
