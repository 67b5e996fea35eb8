/* The watchers' index (src/platoon/watch_index.h): a change reaches exactly the members whose
 * filter names its vehicle, plus the unfiltered ones once; members are added and removed at
 * any time, also from the wake-up of a change; a member reads exactly the changes its filter
 * matches, in order, from the noted list, or by walking when it resumed from the past or fell
 * far behind, and returns to the list once caught up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "platoon/history.h"
#include "platoon/watch_index.h"

/* A watcher for the tests: its member, its filter, how often it was woken. */
typedef struct tw {
    pveh_windex_member m;
    uint64_t ids[8];
    int woken;
    bool remove_when_woken;
} tw;

typedef struct ctx {
    pveh_windex *x;
    int wakes;
} ctx;

static void on_wake(void *c, pveh_windex_member *m)
{
    ctx *cx = c;
    tw *w = m->owner;
    w->woken++;
    cx->wakes++;
    if (w->remove_when_woken) {
        pveh__windex_remove(cx->x, m);
    }
}

static void tw_add(pveh_windex *x, tw *w, const uint64_t *ids, size_t n, uint64_t seq,
                   uint64_t next_seq)
{
    memset(w, 0, sizeof(*w));
    if (n > 0) {
        memcpy(w->ids, ids, n * sizeof(*ids));
    }
    w->m.owner = w;
    w->m.ids = n > 0 ? w->ids : NULL;
    w->m.n_ids = pveh__ids_normalize(w->ids, n);
    assert_int_equal(pveh__windex_add(x, &w->m, seq, next_seq), 0);
}

/* Records a change to @id in @h and tells the index. */
static void change(pveh_history *h, pveh_windex *x, ctx *cx, uint64_t revision, uint64_t id)
{
    pveh_change c = {.revision = revision, .op = PVEH_CHANGE_PUT, .vehicle = {.id = id}};
    uint64_t seq = h->next_seq;
    pveh__history_record(h, &c);
    pveh__windex_record(x, id, seq, on_wake, cx);
}

/* What a watcher sends: the revisions its filter matches, as the pump reads them. */
static size_t drain(tw *w, const pveh_history *h, uint64_t *out, size_t cap)
{
    size_t n = 0;
    uint64_t seq;
    while (pveh__windex_next(&w->m, h, &seq)) {
        const pveh_change *c = pveh__history_at(h, seq);
        assert_non_null(c);
        if (pveh__ids_match(w->m.ids, w->m.n_ids, c->vehicle.id)) {
            assert_true(n < cap);
            out[n++] = c->revision;
        }
    }
    assert_int_equal(w->m.seq, h->next_seq);
    return n;
}

/* Each change reaches the members filtering on its vehicle, and no other. */
static void a_change_reaches_exactly_the_members_that_want_it(void **state)
{
    (void)state;
    enum { N = 3000 };
    pveh_windex x;
    pveh__windex_init(&x);
    pveh_history h;
    pveh__history_init(&h, 100000, 0);
    ctx cx = {.x = &x};
    tw *ws = calloc(N, sizeof(*ws));
    assert_non_null(ws);
    /* Member i watches vehicle 1 + i % 1000: three members per vehicle; the table grows. */
    for (size_t i = 0; i < N; i++) {
        uint64_t id = 1 + i % 1000;
        tw_add(&x, &ws[i], &id, 1, 0, 0);
    }
    assert_int_equal(x.n_ids, 1000);
    /* Remove every member of the even vehicles (their ids leave the table, which shifts
     * others back) and one of the three of each odd one. */
    for (size_t i = 0; i < N; i++) {
        uint64_t id = 1 + i % 1000;
        if (id % 2 == 0 || i < 1000) {
            pveh__windex_remove(&x, &ws[i].m);
        }
    }
    assert_int_equal(x.n_ids, 500);
    for (uint64_t id = 1; id <= 1000; id++) {
        cx.wakes = 0;
        change(&h, &x, &cx, id, id);
        assert_int_equal(cx.wakes, id % 2 == 1 ? 2 : 0);
    }
    for (size_t i = 0; i < N; i++) {
        uint64_t id = 1 + i % 1000;
        bool listed = id % 2 == 1 && i >= 1000;
        assert_int_equal(ws[i].woken, listed ? 1 : 0);
        if (listed) {
            uint64_t got[4];
            assert_int_equal(drain(&ws[i], &h, got, 4), 1);
            assert_int_equal(got[0], id);
            pveh__windex_remove(&x, &ws[i].m);
        }
    }
    assert_int_equal(x.n_ids, 0);
    /* A vehicle nobody watches any more reaches nobody. */
    cx.wakes = 0;
    change(&h, &x, &cx, 5000, 1);
    assert_int_equal(cx.wakes, 0);
    pveh__windex_free(&x);
    pveh__history_free(&h);
    free(ws);
}

/* A filter of several ids reads the changes of those vehicles, in order, and nothing else;
 * the unfiltered member reads every change and is woken once until it looks. */
static void filters_with_several_ids_and_unfiltered_members(void **state)
{
    (void)state;
    pveh_windex x;
    pveh__windex_init(&x);
    pveh_history h;
    pveh__history_init(&h, 1000, 0);
    ctx cx = {.x = &x};
    tw a, b, all;
    const uint64_t ids_a[] = {9, 3, 5, 3};
    const uint64_t ids_b[] = {5, 11};
    tw_add(&x, &a, ids_a, 4, 0, 0);
    tw_add(&x, &b, ids_b, 2, 0, 0);
    tw_add(&x, &all, NULL, 0, 0, 0);
    assert_int_equal(a.m.n_ids, 3);
    for (uint64_t r = 1; r <= 30; r++) {
        change(&h, &x, &cx, 100 + r, 1 + r % 12);
    }
    /* Ids 3, 5, 9 come back every 12 changes. */
    uint64_t got[64];
    size_t n = drain(&a, &h, got, 64);
    const uint64_t want_a[] = {102, 104, 108, 114, 116, 120, 126, 128};
    assert_int_equal(n, sizeof(want_a) / sizeof(want_a[0]));
    assert_memory_equal(got, want_a, sizeof(want_a));
    assert_int_equal(a.woken, 8);
    n = drain(&b, &h, got, 64);
    const uint64_t want_b[] = {104, 110, 116, 122, 128};
    assert_int_equal(n, 5);
    assert_memory_equal(got, want_b, sizeof(want_b));
    /* The unfiltered member: woken by the first change only, until it looks. */
    assert_int_equal(all.woken, 1);
    n = drain(&all, &h, got, 64);
    assert_int_equal(n, 30);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(got[i], 101 + i);
    }
    pveh__windex_unfiltered_seen(&x);
    change(&h, &x, &cx, 200, 12);
    change(&h, &x, &cx, 201, 12);
    assert_int_equal(all.woken, 2);
    assert_int_equal(a.woken, 8);
    /* Nothing pending: the members that read nothing are at the newest change. */
    assert_int_equal(drain(&a, &h, got, 64), 0);
    assert_int_equal(pveh__windex_needed(&a.m, &h), h.next_seq);
    pveh__windex_remove(&x, &a.m);
    pveh__windex_remove(&x, &b.m);
    pveh__windex_remove(&x, &all.m);
    pveh__windex_free(&x);
    pveh__history_free(&h);
}

/* A member with more pending matches than it keeps walks, loses nothing, and goes back to the
 * list once it has caught up; one added behind the newest change (a resumption) walks too. */
static void a_member_that_falls_behind_walks_then_catches_up(void **state)
{
    (void)state;
    pveh_windex x;
    pveh__windex_init(&x);
    pveh_history h;
    pveh__history_init(&h, 100000, 0);
    ctx cx = {.x = &x};
    tw w;
    const uint64_t id7 = 7;
    tw_add(&x, &w, &id7, 1, 0, 0);
    enum { CHANGES = 3 * PVEH_WINDEX_PEND_MAX };
    /* Vehicle 7 every other change: more matches than the list keeps. */
    for (uint64_t r = 1; r <= CHANGES; r++) {
        change(&h, &x, &cx, r, r % 2 == 0 ? 7 : 8);
    }
    assert_true(w.m.walk);
    assert_int_equal(pveh__windex_needed(&w.m, &h), 0);
    uint64_t *got = calloc(CHANGES, sizeof(*got));
    assert_non_null(got);
    size_t n = drain(&w, &h, got, CHANGES);
    assert_int_equal(n, CHANGES / 2);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(got[i], 2 * (i + 1));
    }
    assert_false(w.m.walk);
    /* Caught up: the next matches are noted again, and the others skipped without a test. */
    change(&h, &x, &cx, CHANGES + 1, 8);
    change(&h, &x, &cx, CHANGES + 2, 7);
    assert_int_equal(w.m.pend_n, 1);
    assert_int_equal(pveh__windex_needed(&w.m, &h), h.next_seq - 1);
    assert_int_equal(drain(&w, &h, got, CHANGES), 1);
    assert_int_equal(got[0], CHANGES + 2);

    /* A resumption from the start: added behind, it walks the changes held, then lists. */
    tw r;
    tw_add(&x, &r, &id7, 1, 0, h.next_seq);
    assert_true(r.m.walk);
    change(&h, &x, &cx, CHANGES + 3, 7);
    n = drain(&r, &h, got, CHANGES);
    assert_int_equal(n, CHANGES / 2 + 2);
    assert_int_equal(got[n - 1], CHANGES + 3);
    assert_false(r.m.walk);
    /* A full state starts it again at the newest change, with nothing pending. */
    change(&h, &x, &cx, CHANGES + 4, 7);
    pveh__windex_restart(&r.m, h.next_seq);
    assert_int_equal(drain(&r, &h, got, CHANGES), 0);
    pveh__windex_remove(&x, &w.m);
    pveh__windex_remove(&x, &r.m);
    pveh__windex_free(&x);
    pveh__history_free(&h);
    free(got);
}

/* A member may leave while a change wakes the members (a watcher that ends in its wake-up):
 * every other member is still woken, once, and the index stays consistent. */
static void a_member_leaves_while_a_change_wakes_them(void **state)
{
    (void)state;
    pveh_windex x;
    pveh__windex_init(&x);
    pveh_history h;
    pveh__history_init(&h, 1000, 0);
    ctx cx = {.x = &x};
    enum { N = 6 };
    tw ws[N];
    const uint64_t id = 42;
    for (size_t i = 0; i < N; i++) {
        tw_add(&x, &ws[i], &id, 1, 0, 0);
    }
    ws[0].remove_when_woken = true;
    ws[3].remove_when_woken = true;
    ws[N - 1].remove_when_woken = true;
    change(&h, &x, &cx, 1, 42);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(ws[i].woken, 1);
    }
    change(&h, &x, &cx, 2, 42);
    for (size_t i = 0; i < N; i++) {
        bool left = i == 0 || i == 3 || i == N - 1;
        assert_int_equal(ws[i].woken, left ? 1 : 2);
        assert_int_equal(ws[i].m.added, !left);
    }
    /* The last members of an id leaving in their wake-up erase its list: nothing breaks. */
    for (size_t i = 0; i < N; i++) {
        ws[i].remove_when_woken = true;
    }
    tw other;
    const uint64_t id43 = 43;
    tw_add(&x, &other, &id43, 1, 0, 0);
    change(&h, &x, &cx, 3, 42);
    assert_int_equal(x.n_ids, 1);
    change(&h, &x, &cx, 4, 43);
    assert_int_equal(other.woken, 1);
    /* Every member once, also with several ids. */
    tw many;
    const uint64_t ids[] = {1, 2, 3};
    tw_add(&x, &many, ids, 3, h.next_seq, h.next_seq);
    other.woken = many.woken = 0;
    pveh__windex_each(&x, on_wake, &cx);
    assert_int_equal(other.woken, 1);
    assert_int_equal(many.woken, 1);
    pveh__windex_remove(&x, &other.m);
    pveh__windex_remove(&x, &many.m);
    pveh__windex_remove(&x, &many.m); /* twice: nothing */
    assert_int_equal(x.n_ids, 0);
    pveh__windex_free(&x);
    pveh__history_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_change_reaches_exactly_the_members_that_want_it),
        cmocka_unit_test(filters_with_several_ids_and_unfiltered_members),
        cmocka_unit_test(a_member_that_falls_behind_walks_then_catches_up),
        cmocka_unit_test(a_member_leaves_while_a_change_wakes_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
