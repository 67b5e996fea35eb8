/*
 * The checkers must bite: known-bad histories and observations are fed to the linearizability
 * and invariant checkers and each must be caught; known-good ones must be accepted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "platoon/error.h"
#include "sim/eventq.h"
#include "sim/invariants.h"
#include "sim/linearizability.h"
#include "sim/rng.h"

#define MAX_STEPS 1000000

static psim_op put(uint32_t client, uint32_t key, uint64_t v, uint64_t t0, uint64_t t1)
{
    return (psim_op){.client = client,
                     .kind = PSIM_OP_PUT,
                     .key = key,
                     .value = v,
                     .outcome = PSIM_OUT_OK,
                     .invoke = t0,
                     .complete = t1};
}

static psim_op get(uint32_t client, uint32_t key, uint64_t v, uint64_t t0, uint64_t t1)
{
    return (psim_op){.client = client,
                     .kind = PSIM_OP_GET,
                     .key = key,
                     .value = v,
                     .outcome = PSIM_OUT_OK,
                     .invoke = t0,
                     .complete = t1};
}

static psim_op unknown_put(uint32_t client, uint32_t key, uint64_t v, uint64_t t0)
{
    return (psim_op){.client = client,
                     .kind = PSIM_OP_PUT,
                     .key = key,
                     .value = v,
                     .outcome = PSIM_OUT_UNKNOWN,
                     .invoke = t0,
                     .complete = PSIM_TIME_INF};
}

static int check(const psim_op *ops, size_t n, psim_lin_report *rep)
{
    psim_history h;
    psim_history_init(&h);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(psim_history_add(&h, &ops[i]), 0);
    }
    int rc = psim_lin_check(&h, MAX_STEPS, rep);
    psim_history_free(&h);
    return rc;
}

static void lin_accepts_sequential_and_concurrent(void **state)
{
    (void)state;
    psim_op ops[] = {
        put(1, 7, 10, 1, 2), get(2, 7, 10, 3, 4),
        /* Two overlapping puts, then reads that see them in either order. */
        put(1, 7, 11, 5, 9), put(2, 7, 12, 6, 8), get(3, 7, 11, 10, 11),
        get(1, 8, 0, 1, 20), /* another key, never written */
    };
    assert_int_equal(check(ops, 6, NULL), 0);
    /* A read concurrent with a put may see the old or the new value. */
    psim_op ops2[] = {put(1, 1, 5, 1, 2), put(1, 1, 6, 3, 10), get(2, 1, 5, 4, 5),
                      get(3, 1, 6, 6, 7), get(2, 1, 6, 8, 9)};
    assert_int_equal(check(ops2, 5, NULL), 0);
}

static void lin_catches_stale_read(void **state)
{
    (void)state;
    psim_op ops[] = {put(1, 3, 1, 1, 2), put(1, 3, 2, 3, 4), get(2, 3, 1, 5, 6)};
    psim_lin_report rep;
    assert_int_equal(check(ops, 3, &rep), PT_ECORRUPT);
    assert_int_equal(rep.key, 3);
    assert_non_null(strstr(rep.detail, "get"));
}

static void lin_catches_lost_write(void **state)
{
    (void)state;
    /* An acknowledged put that a later read does not see: the initial value comes back. */
    psim_op ops[] = {put(1, 4, 9, 1, 2), get(2, 4, 0, 3, 4)};
    assert_int_equal(check(ops, 2, NULL), PT_ECORRUPT);
}

static void lin_catches_read_of_unwritten_value(void **state)
{
    (void)state;
    psim_op ops[] = {put(1, 4, 9, 1, 2), get(2, 4, 77, 3, 4)};
    assert_int_equal(check(ops, 2, NULL), PT_ECORRUPT);
}

static void lin_catches_flip_flop(void **state)
{
    (void)state;
    /* Reads that see a value, then the older one again, then the newer: no order fits. */
    psim_op ops[] = {put(1, 2, 1, 1, 2), put(2, 2, 2, 3, 20), get(3, 2, 2, 4, 5),
                     get(3, 2, 1, 6, 7)};
    assert_int_equal(check(ops, 4, NULL), PT_ECORRUPT);
}

static void lin_unknown_write_may_or_may_not_happen(void **state)
{
    (void)state;
    psim_op took[] = {put(1, 5, 1, 1, 2), unknown_put(2, 5, 2, 3), get(3, 5, 2, 10, 11)};
    assert_int_equal(check(took, 3, NULL), 0);
    psim_op lost[] = {put(1, 5, 1, 1, 2), unknown_put(2, 5, 2, 3), get(3, 5, 1, 10, 11)};
    assert_int_equal(check(lost, 3, NULL), 0);
    /* ...but not before it was invoked. */
    psim_op early[] = {put(1, 5, 1, 1, 2), get(3, 5, 2, 3, 4), unknown_put(2, 5, 2, 5)};
    assert_int_equal(check(early, 3, NULL), PT_ECORRUPT);
    /* ...and it cannot take effect twice (once applied it stays until overwritten). */
    psim_op twice[] = {unknown_put(2, 5, 2, 1), get(3, 5, 2, 2, 3), put(1, 5, 1, 4, 5),
                       get(3, 5, 2, 6, 7)};
    assert_int_equal(check(twice, 4, NULL), PT_ECORRUPT);
}

static void lin_failed_ops_are_ignored(void **state)
{
    (void)state;
    psim_op f = put(1, 6, 3, 1, 2);
    f.outcome = PSIM_OUT_FAILED;
    psim_op ops[] = {f, get(2, 6, 0, 3, 4)};
    assert_int_equal(check(ops, 2, NULL), 0);
}

static void lin_many_concurrent_ops_finish(void **state)
{
    (void)state;
    /* 60 overlapping puts and reads on one key: the memoised search must not explode. */
    psim_op ops[120];
    size_t n = 0;
    for (uint64_t i = 0; i < 60; i++) {
        ops[n++] = put((uint32_t)i % 5, 1, i + 1, i * 10, i * 10 + 35);
        ops[n++] = get((uint32_t)i % 5 + 5, 1, i + 1, i * 10 + 30, i * 10 + 40);
    }
    assert_int_equal(check(ops, n, NULL), 0);
}

static void inv_catches_two_leaders(void **state)
{
    (void)state;
    psim_inv inv;
    psim_inv_init(&inv);
    assert_int_equal(psim_inv_leader(&inv, 1, 3), 0);
    assert_int_equal(psim_inv_leader(&inv, 1, 3), 0);
    assert_int_equal(psim_inv_leader(&inv, 2, 4), 0);
    assert_int_equal(psim_inv_leader(&inv, 3, 3), PT_ECORRUPT);
    assert_string_equal(inv.violation.invariant, "election-safety");
    assert_non_null(strstr(inv.violation.detail, "term=3"));
    psim_inv_free(&inv);
}

static void inv_catches_diverging_applied_entries(void **state)
{
    (void)state;
    psim_inv inv;
    psim_inv_init(&inv);
    assert_int_equal(psim_inv_apply(&inv, 0, 1, 1, 1, 1, 1, 0xaa, 0x1), 0);
    assert_int_equal(psim_inv_apply(&inv, 1, 1, 2, 1, 1, 1, 0xaa, 0x1), 0);
    assert_int_equal(psim_inv_apply(&inv, 0, 1, 1, 2, 2, 2, 0xbb, 0x2), 0);
    assert_int_equal(psim_inv_apply(&inv, 1, 1, 2, 2, 2, 2, 0xcc, 0x3), PT_ECORRUPT);
    assert_string_equal(inv.violation.invariant, "state-machine-safety");
    assert_non_null(strstr(inv.violation.detail, "index=2"));
    psim_inv_free(&inv);
}

static void inv_catches_duplicated_apply(void **state)
{
    (void)state;
    psim_inv inv;
    psim_inv_init(&inv);
    assert_int_equal(psim_inv_apply(&inv, 0, 1, 1, 1, 1, 1, 0xaa, 0x1), 0);
    assert_int_equal(psim_inv_apply(&inv, 0, 1, 1, 1, 1, 1, 0xaa, 0x1), PT_ECORRUPT);
    assert_string_equal(inv.violation.invariant, "duplicate-apply");
    psim_inv_free(&inv);

    /* A node that skips an index also breaks the order. */
    psim_inv_init(&inv);
    assert_int_equal(psim_inv_apply(&inv, 0, 1, 1, 1, 2, 1, 0xaa, 0x1), PT_ECORRUPT);
    assert_string_equal(inv.violation.invariant, "apply-gap");
    psim_inv_free(&inv);

    /* A new lifetime starts again from its snapshot: no violation. */
    psim_inv_init(&inv);
    assert_int_equal(psim_inv_apply(&inv, 0, 1, 1, 1, 1, 1, 0xaa, 0x1), 0);
    assert_int_equal(psim_inv_start(&inv, 0, 2, 0, 0), 0);
    assert_int_equal(psim_inv_apply(&inv, 0, 2, 1, 1, 1, 1, 0xaa, 0x1), 0);
    assert_false(inv.violated);
    psim_inv_free(&inv);
}

static void inv_catches_state_divergence(void **state)
{
    (void)state;
    psim_inv inv;
    psim_inv_init(&inv);
    assert_int_equal(psim_inv_apply(&inv, 0, 1, 1, 1, 1, 1, 0xaa, 0x1), 0);
    assert_int_equal(psim_inv_apply(&inv, 1, 1, 2, 1, 1, 1, 0xaa, 0x2), PT_ECORRUPT);
    assert_string_equal(inv.violation.invariant, "state-divergence");
    psim_inv_free(&inv);
}

static void inv_catches_log_mismatch(void **state)
{
    (void)state;
    psim_inv inv;
    psim_inv_init(&inv);
    uint64_t a1 = psim_inv_chain(0, 1, 1, 0, "x", 1);
    uint64_t a2 = psim_inv_chain(a1, 2, 1, 0, "y", 1);
    uint64_t b1 = psim_inv_chain(0, 1, 1, 0, "z", 1); /* differs at index 1 */
    uint64_t b2 = psim_inv_chain(b1, 2, 1, 0, "y", 1);
    assert_int_equal(psim_inv_append(&inv, 1, 1, 1, a1), 0);
    assert_int_equal(psim_inv_append(&inv, 1, 2, 1, a2), 0);
    assert_int_equal(psim_inv_append(&inv, 2, 2, 1, a2), 0);
    assert_int_equal(psim_inv_append(&inv, 3, 2, 1, b2), PT_ECORRUPT);
    assert_string_equal(inv.violation.invariant, "log-matching");
    psim_inv_free(&inv);
}

static void inv_catches_backwards_commit_and_applied_beyond(void **state)
{
    (void)state;
    psim_inv inv;
    psim_inv_init(&inv);
    assert_int_equal(psim_inv_progress(&inv, 0, 1, 1, 5, 3), 0);
    assert_int_equal(psim_inv_progress(&inv, 0, 1, 1, 4, 3), PT_ECORRUPT);
    assert_string_equal(inv.violation.invariant, "commit-monotonic");
    psim_inv_free(&inv);
    psim_inv_init(&inv);
    assert_int_equal(psim_inv_progress(&inv, 0, 1, 1, 5, 6), PT_ECORRUPT);
    assert_string_equal(inv.violation.invariant, "applied-le-commit");
    psim_inv_free(&inv);
}

static bool short_log_term(void *ctx, uint64_t index, uint64_t *term)
{
    const uint64_t *terms = ctx;
    *term = terms[index];
    return true;
}

static void inv_catches_incomplete_leader(void **state)
{
    (void)state;
    psim_inv inv;
    psim_inv_init(&inv);
    assert_int_equal(psim_inv_apply(&inv, 0, 1, 1, 1, 1, 1, 0xaa, 0x1), 0);
    assert_int_equal(psim_inv_apply(&inv, 0, 1, 1, 2, 2, 2, 0xbb, 0x2), 0);
    uint64_t good[] = {0, 1, 2, 3};
    assert_int_equal(psim_inv_leader_log(&inv, 2, 3, 3, short_log_term, good), 0);
    /* A leader of term 3 missing index 2, committed in term 2. */
    assert_int_equal(psim_inv_leader_log(&inv, 2, 3, 1, short_log_term, good), PT_ECORRUPT);
    assert_string_equal(inv.violation.invariant, "leader-completeness");
    psim_inv_free(&inv);
    psim_inv_init(&inv);
    assert_int_equal(psim_inv_apply(&inv, 0, 1, 1, 1, 1, 1, 0xaa, 0x1), 0);
    assert_int_equal(psim_inv_apply(&inv, 0, 1, 1, 2, 2, 2, 0xbb, 0x2), 0);
    uint64_t bad[] = {0, 1, 1, 3}; /* holds another entry at index 2 */
    assert_int_equal(psim_inv_leader_log(&inv, 2, 3, 3, short_log_term, bad), PT_ECORRUPT);
    psim_inv_free(&inv);

    /* An entry of term 2 committed only in term 4 (seen applied by a node in term 4) need not
     * be in the log of a leader of term 3, which may have been elected before it committed;
     * a leader of term 5 must hold it. */
    psim_inv_init(&inv);
    assert_int_equal(psim_inv_apply(&inv, 0, 1, 1, 4, 1, 2, 0xaa, 0x1), 0);
    uint64_t other[] = {0, 3, 3};
    assert_int_equal(psim_inv_leader_log(&inv, 2, 3, 2, short_log_term, other), 0);
    assert_int_equal(psim_inv_leader_log(&inv, 2, 5, 2, short_log_term, other), PT_ECORRUPT);
    psim_inv_free(&inv);
}

static void inv_catches_second_config_change_and_bad_snapshot(void **state)
{
    (void)state;
    psim_inv inv;
    psim_inv_init(&inv);
    assert_int_equal(psim_inv_config_in_flight(&inv, 1, 2, 1), 0);
    assert_int_equal(psim_inv_config_in_flight(&inv, 1, 2, 2), PT_ECORRUPT);
    assert_string_equal(inv.violation.invariant, "single-config-change");
    psim_inv_free(&inv);

    psim_inv_init(&inv);
    assert_int_equal(psim_inv_apply(&inv, 0, 1, 1, 1, 1, 1, 0xaa, 0x1), 0);
    assert_int_equal(psim_inv_snapshot(&inv, 1, 1, 2, 1, 1, 0x1, true), 0);
    assert_int_equal(psim_inv_snapshot(&inv, 1, 1, 2, 1, 2, 0x1, true), PT_ECORRUPT);
    assert_string_equal(inv.violation.invariant, "snapshot-consistency");
    psim_inv_free(&inv);
    psim_inv_init(&inv);
    assert_int_equal(psim_inv_apply(&inv, 0, 1, 1, 1, 1, 1, 0xaa, 0x1), 0);
    assert_int_equal(psim_inv_snapshot(&inv, 1, 1, 2, 1, 1, 0x9, true), PT_ECORRUPT);
    psim_inv_free(&inv);
}

static void rng_is_deterministic_and_uniform(void **state)
{
    (void)state;
    psim_rng a, b, c;
    psim_rng_init(&a, 42, 0);
    psim_rng_init(&b, 42, 0);
    psim_rng_init(&c, 42, 1);
    int same_stream = 1, differs = 0;
    unsigned counts[10] = {0};
    for (int i = 0; i < 10000; i++) {
        uint64_t x = psim_rng_next(&a), y = psim_rng_next(&b), z = psim_rng_next(&c);
        same_stream &= x == y;
        differs |= x != z;
        counts[psim_rng_below(&a, 10)]++;
        psim_rng_next(&b);
    }
    assert_true(same_stream);
    assert_true(differs);
    for (int i = 0; i < 10; i++) {
        assert_in_range(counts[i], 800, 1200);
    }
    assert_int_equal(psim_rng_range(&a, 5, 5), 5);
}

static void eventq_orders_by_time_then_insertion(void **state)
{
    (void)state;
    psim_eventq q;
    psim_eventq_init(&q);
    uint64_t times[] = {5, 3, 5, 1, 3, 9, 5};
    for (int i = 0; i < 7; i++) {
        assert_int_equal(psim_eventq_push(&q, (psim_event){.time = times[i], .slot = i}), 0);
    }
    int expect[] = {3, 1, 4, 0, 2, 6, 5};
    for (int i = 0; i < 7; i++) {
        psim_event ev;
        assert_int_equal(psim_eventq_pop(&q, &ev), 0);
        assert_int_equal(ev.slot, expect[i]);
    }
    psim_event ev;
    assert_int_equal(psim_eventq_pop(&q, &ev), PT_ENOTFOUND);
    psim_eventq_free(&q, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lin_accepts_sequential_and_concurrent),
        cmocka_unit_test(lin_catches_stale_read),
        cmocka_unit_test(lin_catches_lost_write),
        cmocka_unit_test(lin_catches_read_of_unwritten_value),
        cmocka_unit_test(lin_catches_flip_flop),
        cmocka_unit_test(lin_unknown_write_may_or_may_not_happen),
        cmocka_unit_test(lin_failed_ops_are_ignored),
        cmocka_unit_test(lin_many_concurrent_ops_finish),
        cmocka_unit_test(inv_catches_two_leaders),
        cmocka_unit_test(inv_catches_diverging_applied_entries),
        cmocka_unit_test(inv_catches_duplicated_apply),
        cmocka_unit_test(inv_catches_state_divergence),
        cmocka_unit_test(inv_catches_log_mismatch),
        cmocka_unit_test(inv_catches_backwards_commit_and_applied_beyond),
        cmocka_unit_test(inv_catches_incomplete_leader),
        cmocka_unit_test(inv_catches_second_config_change_and_bad_snapshot),
        cmocka_unit_test(rng_is_deterministic_and_uniform),
        cmocka_unit_test(eventq_orders_by_time_then_insertion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
