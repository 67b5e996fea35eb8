#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* ---- storage ------------------------------------------------------------------------------ */

void ms_init(mstore *s)
{
    memset(s, 0, sizeof(*s));
    s->first = 1;
}

static void free_ents(mstore *s, size_t from)
{
    for (size_t i = from; i < s->n; i++) {
        free(s->ents[i].data);
    }
    s->n = from;
}

void ms_free(mstore *s)
{
    free_ents(s, 0);
    free(s->ents);
    free(s->snap_data);
    free(s->rx_data);
    memset(s, 0, sizeof(*s));
}

uint64_t ms_last(const mstore *s)
{
    return s->first + s->n - 1;
}

static int st_initial(void *ctx, praft_hard_state *hs, praft_snapshot_meta *snap)
{
    mstore *s = ctx;
    *hs = s->hs;
    *snap = s->snap;
    return 0;
}

static int st_first(void *ctx, uint64_t *index)
{
    *index = ((mstore *)ctx)->first;
    return 0;
}

static int st_last(void *ctx, uint64_t *index)
{
    *index = ms_last(ctx);
    return 0;
}

static int st_term(void *ctx, uint64_t index, uint64_t *term)
{
    mstore *s = ctx;
    if (s->fail_term) {
        int rv = s->fail_term;
        s->fail_term = 0;
        return rv;
    }
    if (index + 1 < s->first) {
        return PT_ECOMPACTED;
    }
    if (index > ms_last(s)) {
        return PT_EUNAVAILABLE;
    }
    if (index + 1 == s->first) {
        *term = s->snap.index == index ? s->snap.term : 0;
        return s->snap.index == index ? 0 : PT_ECOMPACTED;
    }
    *term = s->ents[index - s->first].term;
    return 0;
}

static int st_entries(void *ctx, uint64_t lo, uint64_t hi, size_t max_bytes, praft_entry *out,
                      size_t *n)
{
    mstore *s = ctx;
    if (lo < s->first) {
        return PT_ECOMPACTED;
    }
    if (hi > ms_last(s) + 1) {
        return PT_EUNAVAILABLE;
    }
    size_t k = 0, bytes = 0;
    for (uint64_t i = lo; i < hi; i++) {
        const praft_entry *e = &s->ents[i - s->first];
        if (k > 0 && bytes + e->len > max_bytes) {
            break;
        }
        out[k] = *e;
        out[k].data = NULL;
        if (e->len > 0) {
            out[k].data = malloc(e->len);
            assert_non_null(out[k].data);
            memcpy(out[k].data, e->data, e->len);
        }
        bytes += e->len;
        k++;
    }
    *n = k;
    return 0;
}

static int st_snapshot_read(void *ctx, const praft_snapshot_meta *meta, uint64_t offset, void *buf,
                            size_t cap, size_t *len)
{
    mstore *s = ctx;
    if (meta->index != s->snap.index || meta->term != s->snap.term) {
        return PT_ENOTFOUND;
    }
    size_t l = offset >= s->snap_len ? 0 : s->snap_len - offset;
    if (l > cap) {
        l = cap;
    }
    if (l > 0) {
        memcpy(buf, s->snap_data + offset, l);
    }
    *len = l;
    return 0;
}

praft_storage ms_storage(mstore *s)
{
    return (praft_storage){.ctx = s,
                           .initial_state = st_initial,
                           .first_index = st_first,
                           .last_index = st_last,
                           .term = st_term,
                           .entries = st_entries,
                           .snapshot_read = st_snapshot_read};
}

void ms_set_snapshot(mstore *s, const praft_snapshot_meta *meta, const void *data, size_t len)
{
    free(s->snap_data);
    s->snap = *meta;
    s->snap.size = len;
    s->snap_data = malloc(len ? len : 1);
    assert_non_null(s->snap_data);
    if (len) {
        memcpy(s->snap_data, data, len);
    }
    s->snap_len = len;
}

void ms_compact(mstore *s, uint64_t index)
{
    assert_true(index <= s->snap.index);
    while (s->first <= index && s->n > 0) {
        free(s->ents[0].data);
        memmove(s->ents, s->ents + 1, (s->n - 1) * sizeof(*s->ents));
        s->n--;
        s->first++;
    }
}

void ms_write(mstore *s, const praft_ready *rd)
{
    if (rd->has_snapshot) {
        /* the received snapshot replaces everything */
        assert_true(rd->snapshot.index == s->rx_meta.index);
        free(s->snap_data);
        s->snap = rd->snapshot;
        s->snap_data = s->rx_data;
        s->snap_len = s->rx_len;
        s->rx_data = NULL;
        s->rx_len = 0;
        free_ents(s, 0);
        s->first = rd->snapshot.index + 1;
    }
    if (rd->has_snapshot_chunk) {
        if (rd->snapshot_chunk.offset == 0) {
            free(s->rx_data);
            s->rx_data = malloc(rd->snapshot_chunk.meta.size + 1);
            assert_non_null(s->rx_data);
            s->rx_len = 0;
            s->rx_meta = rd->snapshot_chunk.meta;
        }
        assert_int_equal(rd->snapshot_chunk.offset, s->rx_len);
        if (rd->snapshot_chunk.len > 0) {
            /* The analyzer cannot see that a failed cmocka assert above ends the test. */
            /* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker) */
            memcpy(s->rx_data + s->rx_len, rd->snapshot_chunk.data, rd->snapshot_chunk.len);
        }
        s->rx_len += rd->snapshot_chunk.len;
    }
    if (rd->n_entries > 0) {
        uint64_t first = rd->entries[0].index;
        assert_true(first >= s->first && first <= ms_last(s) + 1);
        free_ents(s, (size_t)(first - s->first));
        if (s->n + rd->n_entries > s->cap) {
            s->cap = (s->n + rd->n_entries) * 2;
            s->ents = realloc(s->ents, s->cap * sizeof(*s->ents));
            assert_non_null(s->ents);
        }
        for (size_t i = 0; i < rd->n_entries; i++) {
            praft_entry e = rd->entries[i];
            assert_int_equal(e.index, ms_last(s) + 1);
            if (e.len > 0) {
                e.data = malloc(e.len);
                assert_non_null(e.data);
                memcpy(e.data, rd->entries[i].data, e.len);
            }
            s->ents[s->n++] = e;
        }
    }
    if (rd->has_hard_state) {
        s->hs = rd->hard_state;
    }
}

/* ---- messages ----------------------------------------------------------------------------- */

void msg_copy(praft_msg *d, const praft_msg *m)
{
    *d = *m;
    if (m->n_entries > 0) {
        d->entries = malloc(m->n_entries * sizeof(praft_entry));
        assert_non_null(d->entries);
        for (size_t i = 0; i < m->n_entries; i++) {
            d->entries[i] = m->entries[i];
            if (m->entries[i].len > 0) {
                d->entries[i].data = malloc(m->entries[i].len);
                assert_non_null(d->entries[i].data);
                memcpy(d->entries[i].data, m->entries[i].data, m->entries[i].len);
            }
        }
    } else {
        d->entries = NULL;
    }
    if (m->snapshot != NULL) {
        d->snapshot = malloc(sizeof(*d->snapshot));
        assert_non_null(d->snapshot);
        *d->snapshot = *m->snapshot;
    }
    if (m->len > 0) {
        d->data = malloc(m->len);
        assert_non_null(d->data);
        memcpy(d->data, m->data, m->len);
    } else {
        d->data = NULL;
    }
}

void msg_free(praft_msg *m)
{
    for (size_t i = 0; i < m->n_entries; i++) {
        free(m->entries[i].data);
    }
    free(m->entries);
    free(m->snapshot);
    free(m->data);
    memset(m, 0, sizeof(*m));
}

/* ---- cluster ------------------------------------------------------------------------------ */

static void node_start(cluster *c, uint64_t id)
{
    tnode *t = &c->t[id];
    praft_storage st = ms_storage(&t->st);
    assert_int_equal(praft_new(&t->o, &st, &t->n), 0);
    t->up = true;
    t->applied = t->st.snap.index;
}

void cl_init(cluster *c, int voters, int learners, cl_opts_fn fn)
{
    memset(c, 0, sizeof(*c));
    c->q = calloc(CL_MAXQ, sizeof(*c->q));
    assert_non_null(c->q);
    c->n = voters + learners;
    praft_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    for (int i = 1; i <= c->n; i++) {
        praft_member *m = &cfg.members[cfg.n_members++];
        m->id = (uint64_t)i;
        m->role = i <= voters ? PRAFT_ROLE_VOTER : PRAFT_ROLE_LEARNER;
        snprintf(m->address, sizeof(m->address), "127.0.0.1:%d", 7000 + i);
    }
    praft_entry boot;
    assert_int_equal(praft_bootstrap_entry(&cfg, &boot), 0);
    for (int i = 1; i <= c->n; i++) {
        tnode *t = &c->t[i];
        t->id = (uint64_t)i;
        ms_init(&t->st);
        praft_ready rd = {.entries = &boot,
                          .n_entries = 1,
                          .has_hard_state = true,
                          .hard_state = {.term = 1, .commit = 1}};
        ms_write(&t->st, &rd);
        praft_options_init(&t->o, t->id);
        if (fn) {
            fn(&t->o);
        }
        node_start(c, t->id);
        t->applied = 0;
    }
    free(boot.data);
}

void cl_add_blank(cluster *c, uint64_t id, cl_opts_fn fn)
{
    assert_true(id <= CL_MAX);
    tnode *t = &c->t[id];
    memset(t, 0, sizeof(*t));
    t->id = id;
    ms_init(&t->st);
    praft_options_init(&t->o, id);
    if (fn) {
        fn(&t->o);
    }
    node_start(c, id);
    if ((int)id > c->n) {
        c->n = (int)id;
    }
}

void cl_clear_queue(cluster *c)
{
    for (size_t i = 0; i < c->nq; i++) {
        msg_free(&c->q[i].m);
    }
    c->nq = 0;
}

void cl_free(cluster *c)
{
    cl_clear_queue(c);
    free(c->q);
    for (int i = 1; i <= c->n; i++) {
        praft_free(c->t[i].n);
        ms_free(&c->t[i].st);
    }
}

static void enqueue(cluster *c, const praft_msg *m)
{
    if (m->to == 0 || m->to > CL_MAX || c->cut[m->from][m->to]) {
        return;
    }
    if (c->filter && !c->filter(c, m)) {
        return;
    }
    assert_true(c->nq < CL_MAXQ);
    msg_copy(&c->q[c->nq++].m, m);
}

bool cl_ready(cluster *c, uint64_t id)
{
    tnode *t = &c->t[id];
    if (!t->up || !praft_has_ready(t->n)) {
        return false;
    }
    praft_ready rd;
    assert_int_equal(praft_ready_get(t->n, &rd), 0);
    for (size_t i = 0; i < rd.n_send_now; i++) {
        enqueue(c, &rd.send_now[i]);
    }
    ms_write(&t->st, &rd);
    for (size_t i = 0; i < rd.n_send_after_persist; i++) {
        enqueue(c, &rd.send_after_persist[i]);
    }
    if (rd.has_snapshot) {
        t->applied = rd.snapshot.index;
        /* the test snapshot's data is the state machine digest */
        memcpy(&t->app_sum, t->st.snap_data, sizeof(t->app_sum));
    }
    for (size_t i = 0; i < rd.n_committed; i++) {
        const praft_entry *e = &rd.committed[i];
        /* Committed entries come exactly once, in order. */
        assert_int_equal(e->index, t->applied + 1);
        t->applied = e->index;
        if (e->type == PRAFT_ENTRY_NORMAL) {
            t->n_applied++;
            for (uint32_t j = 0; j < e->len; j++) {
                t->app_sum = t->app_sum * 31 + e->data[j];
            }
        }
    }
    for (size_t i = 0; i < rd.n_reads && t->n_reads < 256; i++) {
        t->reads[t->n_reads++] = rd.reads[i];
    }
    assert_int_equal(praft_advance(t->n, &rd), 0);
    return true;
}

void cl_deliver_all(cluster *c)
{
    size_t nq = c->nq;
    qmsg *q = malloc((nq ? nq : 1) * sizeof(*q));
    assert_non_null(q);
    memcpy(q, c->q, nq * sizeof(*q));
    c->nq = 0;
    for (size_t i = 0; i < nq; i++) {
        praft_msg *m = &q[i].m;
        tnode *t = &c->t[m->to];
        if (t->up && t->n && !c->cut[m->from][m->to]) {
            int rv = praft_step(t->n, m);
            assert_true(rv == 0);
            c->delivered++;
        }
        msg_free(m);
    }
    free(q);
}

int cl_settle(cluster *c)
{
    int rounds = 0;
    for (; rounds < 1000; rounds++) {
        bool any = false;
        for (int i = 1; i <= c->n; i++) {
            while (cl_ready(c, (uint64_t)i)) {
                any = true;
            }
        }
        if (!any && c->nq == 0) {
            break;
        }
        cl_deliver_all(c);
    }
    return rounds;
}

void cl_tick(cluster *c, uint64_t id)
{
    if (c->t[id].up) {
        praft_tick(c->t[id].n);
    }
}

void cl_tick_all(cluster *c)
{
    for (int i = 1; i <= c->n; i++) {
        cl_tick(c, (uint64_t)i);
    }
}

void cl_elect(cluster *c, uint64_t id)
{
    for (int i = 0; i < 100; i++) {
        cl_tick(c, id);
        praft_status *s = cl_status(c, id);
        if (s->role == PRAFT_CANDIDATE || s->role == PRAFT_LEADER) {
            break;
        }
    }
    cl_settle(c);
    assert_int_equal(cl_status(c, id)->role, PRAFT_LEADER);
}

uint64_t cl_leader(cluster *c)
{
    uint64_t leader = 0, term = 0;
    for (int i = 1; i <= c->n; i++) {
        if (!c->t[i].up) {
            continue;
        }
        praft_status *s = cl_status(c, (uint64_t)i);
        if (s->role == PRAFT_LEADER && s->term >= term) {
            leader = (uint64_t)i;
            term = s->term;
        }
    }
    return leader;
}

void cl_isolate(cluster *c, uint64_t id)
{
    for (int i = 0; i <= CL_MAX; i++) {
        c->cut[id][i] = true;
        c->cut[i][id] = true;
    }
}

void cl_heal(cluster *c)
{
    memset(c->cut, 0, sizeof(c->cut));
}

void cl_crash(cluster *c, uint64_t id)
{
    tnode *t = &c->t[id];
    praft_free(t->n);
    t->n = NULL;
    t->up = false;
    /* a partially received snapshot is lost with the process */
}

void cl_restart(cluster *c, uint64_t id)
{
    tnode *t = &c->t[id];
    assert_false(t->up);
    /* The state machine is rebuilt from the snapshot, then the log is replayed. */
    t->app_sum = 0;
    t->n_applied = 0;
    if (t->st.snap.index > 0) {
        memcpy(&t->app_sum, t->st.snap_data, sizeof(t->app_sum));
    }
    node_start(c, id);
}

void cl_propose(cluster *c, uint64_t id, const char *text)
{
    assert_int_equal(praft_propose(c->t[id].n, text, strlen(text), NULL, NULL), 0);
}

praft_status *cl_status(cluster *c, uint64_t id)
{
    static praft_status s;
    praft_status_get(c->t[id].n, &s);
    return &s;
}

praft_msg *cl_find(cluster *c, uint32_t type, uint64_t from, uint64_t to)
{
    for (size_t i = 0; i < c->nq; i++) {
        praft_msg *m = &c->q[i].m;
        if (m->type == type && (from == 0 || m->from == from) && (to == 0 || m->to == to)) {
            return m;
        }
    }
    return NULL;
}

size_t cl_count(cluster *c, uint32_t type, uint64_t from, uint64_t to)
{
    size_t k = 0;
    for (size_t i = 0; i < c->nq; i++) {
        praft_msg *m = &c->q[i].m;
        if (m->type == type && (from == 0 || m->from == from) && (to == 0 || m->to == to)) {
            k++;
        }
    }
    return k;
}

int cl_step(cluster *c, uint64_t to, const praft_msg *m)
{
    praft_msg copy = *m;
    copy.to = to;
    return praft_step(c->t[to].n, &copy);
}
