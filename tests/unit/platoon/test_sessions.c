/* Sessions opened explicitly and bound to their principal (thesis §6.3), their bounds, and
 * the vehicle bound the leader stamps into commands: what nobody else can do to a client's
 * exactly-once guarantee. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "helpers.h"
#include "platoon/state.h"
#include "platoon/vehicle.h"

#define QUOTA 10000u

/* How many sessions @who holds (the table's own count). */
static uint32_t count_of(tsm *t, const char *who)
{
    return pveh__sessions_count_of(&t->sm->sessions, pveh_principal_key(who));
}

static double lat_of(tsm *t, uint64_t id)
{
    pveh_vehicle v;
    assert_int_equal(pveh_sm_get(t->sm, id, &v), 0);
    return v.latitude;
}

static void a_session_is_opened_by_its_own_entry_and_unknown_ids_are_refused(void **state)
{
    (void)state;
    tsm t;
    tsm_new(&t, NULL);
    pveh_result o = tsm_open(&t, 1, "alice", QUOTA, 1000);
    assert_int_equal(o.status, PVEH_STATUS_OK);
    assert_int_equal(o.client_id, 1); /* the index of the opening */
    pveh_vehicle a = veh(7, 10, 0, 0, 0);
    assert_int_equal(tsm_put(&t, 2, "alice", &a, 1, 1, 1100, 0).status, PVEH_STATUS_OK);
    /* Any id the table does not hold: refused, nothing applied (a late retry after its session
     * is gone, or an id nobody opened). */
    pveh_vehicle b = veh(8, 10, 0, 0, 0);
    for (uint64_t id = 2; id < 6; id++) {
        assert_int_equal(tsm_put(&t, id + 1, "alice", &b, id, 1, 1200, 0).status,
                         PVEH_STATUS_UNKNOWN_SESSION);
    }
    pveh_vehicle got;
    assert_int_equal(pveh_sm_get(t.sm, 8, &got), PT_ENOTFOUND);
    /* Sequences start at 1: 0 on a session is an old request, never applied. */
    assert_int_equal(tsm_put(&t, 7, "alice", &b, 1, 0, 1300, 0).status, PVEH_STATUS_STALE_SEQUENCE);
    assert_int_equal(pveh_sm_get(t.sm, 8, &got), PT_ENOTFOUND);
    tsm_free(&t);
}

/* The attack of the report: after 200,000 other client ids, a delayed duplicate of an old
 * request must not revert a newer acknowledged update. */
static void a_flood_of_sessions_never_lets_an_old_duplicate_apply(void **state)
{
    (void)state;
    const char *flooders[] = {"mallory", "alice"}; /* another principal, then the same one */
    for (int k = 0; k < 2; k++) {
        tsm t;
        tsm_new(&t, NULL);
        uint64_t index = 1, ts = 1000;
        uint64_t victim = tsm_open(&t, index++, "alice", QUOTA, ts).client_id;
        pveh_vehicle first = veh(42, 10, 0, 0, 0), second = veh(42, 20, 0, 0, 0);
        assert_int_equal(tsm_put(&t, index++, "alice", &first, victim, 1, ts, 0).status,
                         PVEH_STATUS_OK);
        assert_int_equal(tsm_put(&t, index++, "alice", &second, victim, 2, ts, 0).status,
                         PVEH_STATUS_OK);
        for (int i = 0; i < 200000; i++) {
            pveh_result r = tsm_open(&t, index++, flooders[k], QUOTA, ts);
            assert_int_equal(r.status, PVEH_STATUS_OK);
        }
        assert_true(pveh_sm_session_count(t.sm) <= PVEH_MAX_SESSIONS_DEFAULT);
        /* The delayed duplicate of sequence 1 arrives now. */
        pveh_result late = tsm_put(&t, index++, "alice", &first, victim, 1, ts, 0);
        if (k == 0) {
            /* Another principal evicts only its own sessions: the victim's is intact. */
            assert_int_equal(late.status, PVEH_STATUS_STALE_SEQUENCE);
            assert_int_equal(count_of(&t, "mallory"), QUOTA);
        } else {
            /* The same principal (a cluster without TLS) evicted it: refused all the same. */
            assert_int_equal(late.status, PVEH_STATUS_UNKNOWN_SESSION);
        }
        assert_true(lat_of(&t, 42) == 20);
        tsm_free(&t);
    }
}

static void another_principal_can_neither_use_nor_lock_a_session(void **state)
{
    (void)state;
    tsm t;
    tsm_new(&t, NULL);
    uint64_t s = tsm_open(&t, 1, "alice", QUOTA, 1000).client_id;
    pveh_vehicle a = veh(5, 10, 0, 0, 0), evil = veh(5, 66, 0, 0, 0);
    assert_int_equal(tsm_put(&t, 2, "alice", &a, s, 1, 1000, 0).status, PVEH_STATUS_OK);
    /* The forged maximum sequence: refused, and the session is untouched... */
    assert_int_equal(tsm_put(&t, 3, "mallory", &evil, s, UINT64_MAX, 2000, 0).status,
                     PVEH_STATUS_FOREIGN_SESSION);
    assert_int_equal(tsm_del(&t, 4, "mallory", 5, s, UINT64_MAX, 2000).status,
                     PVEH_STATUS_FOREIGN_SESSION);
    assert_int_equal(tsm_close(&t, 5, "mallory", s, 2000).status, PVEH_STATUS_FOREIGN_SESSION);
    uint64_t seq = 0, used = 0;
    assert_int_equal(pveh_sm_session_get(t.sm, s, &seq, &used), 0);
    assert_int_equal(seq, 1);
    assert_int_equal(used, 1000); /* not even kept alive by the attempts */
    assert_true(lat_of(&t, 5) == 10);
    /* ...so its owner goes on. */
    pveh_vehicle b = veh(5, 11, 0, 0, 0);
    assert_int_equal(tsm_put(&t, 6, "alice", &b, s, 2, 3000, 0).status, PVEH_STATUS_OK);
    assert_true(lat_of(&t, 5) == 11);
    tsm_free(&t);
}

static void closing_a_session_ends_it(void **state)
{
    (void)state;
    tsm t;
    tsm_new(&t, NULL);
    uint64_t s = tsm_open(&t, 1, "alice", QUOTA, 1000).client_id;
    pveh_result c = tsm_close(&t, 2, "alice", s, 1000);
    assert_int_equal(c.status, PVEH_STATUS_OK);
    assert_true(c.existed);
    assert_int_equal(pveh_sm_session_count(t.sm), 0);
    pveh_vehicle a = veh(5, 10, 0, 0, 0);
    assert_int_equal(tsm_put(&t, 3, "alice", &a, s, 1, 1000, 0).status,
                     PVEH_STATUS_UNKNOWN_SESSION);
    c = tsm_close(&t, 4, "alice", s, 1000);
    assert_int_equal(c.status, PVEH_STATUS_OK);
    assert_false(c.existed);
    tsm_free(&t);
}

/* A principal at its quota gives up its own oldest session; a table full of others' live
 * sessions refuses rather than evicting any of them, until they expire. */
static void quotas_and_a_full_table(void **state)
{
    (void)state;
    pveh_options o;
    pveh_options_init(&o);
    o.max_sessions = PVEH_MAX_SESSIONS_MIN;
    tsm t;
    tsm_new(&t, &o);
    uint64_t index = 1;
    const uint64_t quota = 3;
    uint64_t mine[5];
    for (int i = 0; i < 5; i++) {
        mine[i] = tsm_open(&t, index++, "bob", quota, 1000 + (uint64_t)i).client_id;
    }
    assert_int_equal(count_of(&t, "bob"), quota);
    pveh_vehicle a = veh(1, 1, 1, 1, 1);
    assert_int_equal(tsm_put(&t, index++, "bob", &a, mine[0], 1, 2000, 0).status,
                     PVEH_STATUS_UNKNOWN_SESSION);
    assert_int_equal(tsm_put(&t, index++, "bob", &a, mine[1], 1, 2000, 0).status,
                     PVEH_STATUS_UNKNOWN_SESSION);
    assert_int_equal(tsm_put(&t, index++, "bob", &a, mine[4], 1, 2000, 0).status, PVEH_STATUS_OK);

    /* Fill the rest of the table with carol's sessions. */
    while (pveh_sm_session_count(t.sm) < PVEH_MAX_SESSIONS_MIN) {
        assert_int_equal(tsm_open(&t, index++, "carol", PVEH_MAX_SESSIONS_MIN, 3000).status,
                         PVEH_STATUS_OK);
    }
    /* dave gets nothing and takes nothing; bob, at his quota, may still rotate his own. */
    assert_int_equal(tsm_open(&t, index++, "dave", quota, 3000).status, PVEH_STATUS_SESSIONS_FULL);
    assert_int_equal(tsm_open(&t, index++, "bob", quota, 3000).status, PVEH_STATUS_OK);
    assert_int_equal(pveh_sm_session_count(t.sm), PVEH_MAX_SESSIONS_MIN);
    /* Once the others' sessions expired, dave gets one. */
    uint64_t later = 3000 + PVEH_SESSION_TTL_MS_MIN + 1;
    assert_int_equal(tsm_open(&t, index++, "dave", quota, later).status, PVEH_STATUS_OK);
    tsm_free(&t);
}

static void the_vehicle_bound_comes_with_the_command(void **state)
{
    (void)state;
    tsm t;
    tsm_new(&t, NULL);
    uint64_t s = tsm_open(&t, 1, "alice", QUOTA, 1000).client_id;
    uint64_t index = 2, seq = 1;
    for (uint64_t id = 1; id <= 3; id++) {
        pveh_vehicle v = veh(id, 1, 1, 1, 1);
        assert_int_equal(tsm_put(&t, index++, "alice", &v, s, seq++, 1000, 3).status,
                         PVEH_STATUS_OK);
    }
    pveh_vehicle fourth = veh(4, 1, 1, 1, 1);
    pveh_result full = tsm_put(&t, index++, "alice", &fourth, s, seq, 1000, 3);
    assert_int_equal(full.status, PVEH_STATUS_PLATOON_FULL);
    /* A retry gets the same answer (it is that sequence's answer). */
    assert_int_equal(tsm_put(&t, index++, "alice", &fourth, s, seq++, 1000, 3).status,
                     PVEH_STATUS_PLATOON_FULL);
    assert_int_equal(pveh_sm_vehicle_count(t.sm), 3);
    /* Existing vehicles still move; a leader with a larger bound lets it in. */
    pveh_vehicle moved = veh(2, 5, 1, 1, 1);
    assert_int_equal(tsm_put(&t, index++, "alice", &moved, s, seq++, 1000, 3).status,
                     PVEH_STATUS_OK);
    assert_int_equal(tsm_put(&t, index++, "alice", &fourth, s, seq++, 1000, 4).status,
                     PVEH_STATUS_OK);
    /* After a delete there is room again under the first bound... and not without one. */
    assert_int_equal(tsm_del(&t, index++, "alice", 1, s, seq++, 1000).status, PVEH_STATUS_OK);
    pveh_vehicle fifth = veh(5, 1, 1, 1, 1);
    assert_int_equal(tsm_put(&t, index++, "alice", &fifth, s, seq++, 1000, 4).status,
                     PVEH_STATUS_OK);
    assert_int_equal(pveh_sm_vehicle_count(t.sm), 4);
    tsm_free(&t);
}

/* Bindings survive a snapshot: a restored node refuses the same foreigners and answers the
 * same retries, and both nodes' next snapshots are byte-identical. */
static void bindings_survive_a_snapshot(void **state)
{
    (void)state;
    tsm a;
    tsm_new(&a, NULL);
    uint64_t s = tsm_open(&a, 1, "alice", QUOTA, 1000).client_id;
    uint64_t idle = tsm_open(&a, 2, "bob", QUOTA, 1000).client_id;
    pveh_vehicle v = veh(9, 10, 0, 0, 0), w = veh(9, 12, 0, 0, 0);
    pveh_result first = tsm_put(&a, 3, "alice", &v, s, 1, 1000, 0);
    membuf snap = tsm_snapshot(&a);
    tsm b;
    tsm_new(&b, NULL);
    assert_int_equal(tsm_restore(&b, snap.data, snap.len, 7), 0);
    free(snap.data);
    tsm *both[2] = {&a, &b};
    for (int k = 0; k < 2; k++) {
        tsm *t = both[k];
        assert_int_equal(tsm_put(t, 4, "mallory", &w, s, 2, 2000, 0).status,
                         PVEH_STATUS_FOREIGN_SESSION);
        pveh_result again = tsm_put(t, 5, "alice", &v, s, 1, 2000, 0);
        assert_memory_equal(&again, &first, sizeof(first));
        assert_int_equal(tsm_put(t, 6, "bob", &w, idle, 1, 2000, 0).status, PVEH_STATUS_OK);
    }
    membuf x = tsm_snapshot(&a), y = tsm_snapshot(&b);
    assert_int_equal(x.len, y.len);
    assert_memory_equal(x.data, y.data, x.len);
    free(x.data);
    free(y.data);
    tsm_free(&a);
    tsm_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_session_is_opened_by_its_own_entry_and_unknown_ids_are_refused),
        cmocka_unit_test(a_flood_of_sessions_never_lets_an_old_duplicate_apply),
        cmocka_unit_test(another_principal_can_neither_use_nor_lock_a_session),
        cmocka_unit_test(closing_a_session_ends_it),
        cmocka_unit_test(quotas_and_a_full_table),
        cmocka_unit_test(the_vehicle_bound_comes_with_the_command),
        cmocka_unit_test(bindings_survive_a_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
