/* The watch history (src/platoon/history.h): its bound, where a resumption starts and when it
 * is refused (OUT_OF_RANGE), vehicle id filters, and what the state machine records in it as
 * it applies commands and restores snapshots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "helpers.h"
#include "platoon/history.h"
#include "platoon/service.h"
#include "platoon/state.h"

static void record(pveh_history *h, uint64_t revision, uint64_t id)
{
    pveh_change c = {.revision = revision, .op = PVEH_CHANGE_PUT, .vehicle = {.id = id}};
    c.vehicle.revision = revision;
    pveh__history_record(h, &c);
}

/* Holds at most its bound; evicting a change moves the oldest resumable revision to it. */
static void the_bound_evicts_the_oldest_and_moves_the_base(void **state)
{
    (void)state;
    pveh_history h;
    pveh__history_init(&h, 3000, 7);
    /* Revisions 10, 12, 14, ...: more than the first allocation, so the ring grows and wraps. */
    for (uint64_t i = 0; i < 10000; i++) {
        record(&h, 10 + 2 * i, i + 1);
        uint64_t held = i + 1 < 3000 ? i + 1 : 3000;
        assert_int_equal(h.n, held);
        assert_int_equal(h.next_seq, i + 1);
        assert_int_equal(pveh__history_first_seq(&h), i + 1 - held);
        /* The base is the revision of the last change evicted (or where it started). */
        assert_int_equal(h.base, i + 1 > 3000 ? 10 + 2 * (i - 3000) : 7);
    }
    /* Every change held is where its sequence number says, in order. */
    for (uint64_t seq = 7000; seq < 10000; seq++) {
        const pveh_change *c = pveh__history_at(&h, seq);
        assert_non_null(c);
        assert_int_equal(c->revision, 10 + 2 * seq);
        assert_int_equal(c->vehicle.id, seq + 1);
    }
    assert_null(pveh__history_at(&h, 6999));  /* evicted */
    assert_null(pveh__history_at(&h, 10000)); /* not yet */

    /* A smaller bound evicts at once. */
    pveh__history_set_max(&h, 10);
    assert_int_equal(h.n, 10);
    assert_int_equal(pveh__history_first_seq(&h), 9990);
    assert_int_equal(h.base, 10 + 2 * 9989);
    record(&h, 100000, 1);
    assert_int_equal(h.n, 10);
    assert_int_equal(pveh__history_at(&h, 10000)->revision, 100000);
    pveh__history_free(&h);
}

/* Resuming after revision F starts at the first change above F, exactly when F >= base. */
static void a_resumption_starts_after_its_revision_or_is_out_of_range(void **state)
{
    (void)state;
    pveh_history h;
    pveh__history_init(&h, 4, 5);
    uint64_t seq = 12345;
    /* Empty: anything from the base on resumes (with nothing to send yet); below it, not. */
    assert_true(pveh__history_seek(&h, 5, &seq));
    assert_int_equal(seq, 0);
    assert_true(pveh__history_seek(&h, 1000, &seq)); /* ahead of this node: wait for it */
    assert_int_equal(seq, 0);
    seq = 12345;
    assert_false(pveh__history_seek(&h, 4, &seq));
    assert_int_equal(seq, 12345); /* untouched */

    /* Revisions with gaps (no-ops, sessions and refusals change no vehicle). */
    record(&h, 10, 1);
    record(&h, 12, 2);
    record(&h, 15, 3);
    const struct {
        uint64_t from;
        bool ok;
        uint64_t seq;
    } cases[] = {
        {4, false, 0}, {5, true, 0},  {9, true, 0},  {10, true, 1}, {11, true, 1},
        {12, true, 2}, {14, true, 2}, {15, true, 3}, {99, true, 3},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        seq = 777;
        assert_int_equal(pveh__history_seek(&h, cases[i].from, &seq), cases[i].ok);
        assert_int_equal(seq, cases[i].ok ? cases[i].seq : 777);
    }

    /* Two more: 10 and 12 are evicted (bound 4 holds 12, 15, 20, 21 after the first). */
    record(&h, 20, 4);
    record(&h, 21, 5);
    assert_int_equal(h.base, 10);
    assert_false(pveh__history_seek(&h, 9, &seq)); /* 10 is gone */
    assert_true(pveh__history_seek(&h, 10, &seq)); /* everything above 10 is held */
    assert_int_equal(seq, 1);
    assert_int_equal(pveh__history_at(&h, seq)->revision, 12);
    record(&h, 22, 6);
    assert_int_equal(h.base, 12);
    assert_false(pveh__history_seek(&h, 11, &seq));
    assert_true(pveh__history_seek(&h, 12, &seq));
    assert_int_equal(pveh__history_at(&h, seq)->revision, 15);
    pveh__history_free(&h);
}

/* A bound of 0 holds nothing: only the newest revision resumes. */
static void a_history_of_zero_follows_every_change(void **state)
{
    (void)state;
    pveh_history h;
    pveh__history_init(&h, 0, 0);
    record(&h, 3, 1);
    record(&h, 8, 1);
    assert_int_equal(h.n, 0);
    assert_int_equal(h.base, 8);
    uint64_t seq;
    assert_false(pveh__history_seek(&h, 7, &seq));
    assert_true(pveh__history_seek(&h, 8, &seq));
    assert_int_equal(seq, 2);
    pveh__history_free(&h);
}

/* A reset (a snapshot installed) forgets everything, moves the base and changes the epoch. */
static void a_reset_starts_a_new_epoch_above_the_snapshot(void **state)
{
    (void)state;
    pveh_history h;
    pveh__history_init(&h, 100, 0);
    record(&h, 1, 1);
    record(&h, 2, 2);
    uint64_t epoch = h.epoch;
    pveh__history_reset(&h, 50);
    assert_int_not_equal(h.epoch, epoch);
    assert_int_equal(h.n, 0);
    assert_int_equal(h.base, 50);
    uint64_t seq;
    assert_false(pveh__history_seek(&h, 2, &seq));
    assert_true(pveh__history_seek(&h, 50, &seq));
    assert_int_equal(seq, 2); /* sequence numbers go on */
    record(&h, 51, 3);
    assert_int_equal(pveh__history_at(&h, 2)->revision, 51);
    assert_null(pveh__history_at(&h, 1));
    pveh__history_free(&h);
}

static void id_filters_are_sets(void **state)
{
    (void)state;
    uint64_t ids[] = {9, 3, 9, 1, 3, 3, 20};
    size_t n = pveh__ids_normalize(ids, 7);
    assert_int_equal(n, 4);
    const uint64_t want[] = {1, 3, 9, 20};
    assert_memory_equal(ids, want, sizeof(want));
    for (uint64_t id = 0; id < 25; id++) {
        bool in = id == 1 || id == 3 || id == 9 || id == 20;
        assert_int_equal(pveh__ids_match(ids, n, id), in);
        assert_true(pveh__ids_match(NULL, 0, id)); /* empty: every vehicle */
    }
    assert_int_equal(pveh__ids_normalize(NULL, 0), 0);
}

/* The state machine records each change it applies, and only changes; a restore starts over. */
static void the_state_machine_records_changes_and_restarts_on_restore(void **state)
{
    (void)state;
    tsm t;
    tsm_new(&t, NULL);
    pveh_vehicle a = veh(1, 10, 20, 5, 90), b = veh(2, 11, 21, 6, 91);
    tsm_put(&t, 2, "p", &a, 0, 0, 1000, 0);
    tsm_put(&t, 3, "p", &b, 0, 0, 1000, 0);
    tsm_open(&t, 4, "p", 10, 1000);     /* a session: no change */
    tsm_del(&t, 5, "p", 7, 0, 0, 1000); /* absent: no change */
    tsm_del(&t, 6, "p", 1, 0, 0, 1000);
    const pveh_history *h = &t.sm->watch.history;
    assert_int_equal(h->next_seq, 3);
    const pveh_change *c = pveh__history_at(h, 0);
    assert_int_equal(c->op, PVEH_CHANGE_PUT);
    assert_int_equal(c->revision, 2);
    assert_int_equal(c->vehicle.revision, 2);
    assert_true(c->vehicle.latitude == 10.0);
    c = pveh__history_at(h, 2);
    assert_int_equal(c->op, PVEH_CHANGE_DELETE);
    assert_int_equal(c->revision, 6);
    assert_int_equal(c->vehicle.id, 1);

    pveh_watch_counters wc;
    pveh_watch_counters_get(t.sm, &wc);
    assert_int_equal(wc.history_changes, 3);
    assert_int_equal(wc.history_oldest, 0);
    assert_int_equal(wc.watchers_open, 0);

    /* Restoring a snapshot at 6 into another state machine: its history starts at 6. */
    membuf snap = tsm_snapshot(&t);
    tsm u;
    tsm_new(&u, NULL);
    tsm_put(&u, 2, "p", &a, 0, 0, 1000, 0);
    uint64_t epoch = u.sm->watch.history.epoch;
    assert_int_equal(tsm_restore(&u, snap.data, snap.len, 0), 0);
    const pveh_history *hu = &u.sm->watch.history;
    assert_int_not_equal(hu->epoch, epoch);
    assert_int_equal(hu->n, 0);
    assert_int_equal(hu->base, 6);
    uint64_t seq;
    assert_false(pveh__history_seek(hu, 5, &seq));
    assert_true(pveh__history_seek(hu, 6, &seq));
    pveh_watch_counters_get(u.sm, &wc);
    assert_int_equal(wc.history_oldest, 6);
    free(snap.data);
    tsm_free(&u);
    tsm_free(&t);
}

static void watch_options_are_checked(void **state)
{
    (void)state;
    tsm t;
    tsm_new(&t, NULL);
    pveh_watch_options o;
    pveh_watch_options_init(&o);
    assert_int_equal(o.history, PVEH_WATCH_HISTORY_DEFAULT);
    assert_int_equal(pveh_watch_configure(t.sm, &o), 0);
    pveh_watch_options bad = o;
    bad.history = PVEH_WATCH_HISTORY_MAX + 1;
    assert_int_equal(pveh_watch_configure(t.sm, &bad), PT_EINVAL);
    bad = o;
    bad.max_lag = 0;
    assert_int_equal(pveh_watch_configure(t.sm, &bad), PT_EINVAL);
    bad = o;
    bad.buffer_bytes = PVEH_WATCH_BUFFER_BYTES_MIN - 1;
    assert_int_equal(pveh_watch_configure(t.sm, &bad), PT_EINVAL);
    bad = o;
    bad.max_watchers = 0;
    assert_int_equal(pveh_watch_configure(t.sm, &bad), PT_EINVAL);
    assert_int_equal(pveh_watch_configure(NULL, &o), PT_EINVAL);

    /* A bound of 2 through the options: the third change evicts the first. */
    o.history = 2;
    assert_int_equal(pveh_watch_configure(t.sm, &o), 0);
    for (uint64_t i = 1; i <= 3; i++) {
        pveh_vehicle v = veh(i, 1, 1, 1, 1);
        tsm_put(&t, i + 1, "p", &v, 0, 0, 1000, 0);
    }
    pveh_watch_counters wc;
    pveh_watch_counters_get(t.sm, &wc);
    assert_int_equal(wc.history_changes, 3);
    assert_int_equal(wc.history_oldest, 2);
    tsm_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_bound_evicts_the_oldest_and_moves_the_base),
        cmocka_unit_test(a_resumption_starts_after_its_revision_or_is_out_of_range),
        cmocka_unit_test(a_history_of_zero_follows_every_change),
        cmocka_unit_test(a_reset_starts_a_new_epoch_above_the_snapshot),
        cmocka_unit_test(id_filters_are_sets),
        cmocka_unit_test(the_state_machine_records_changes_and_restarts_on_restore),
        cmocka_unit_test(watch_options_are_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
