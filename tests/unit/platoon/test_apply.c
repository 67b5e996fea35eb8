/* Applying commands: update/delete semantics and revisions, queries, exactly-once sessions
 * (retries, stale sequences, expiry by log time, eviction), and the runtime notifications. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "helpers.h"
#include "platoon/vehicle.h"

#define TTL PVEH_SESSION_TTL_MS_MIN

static pveh_query_result query(tsm *t, uint8_t *q, size_t len)
{
    uint8_t *res = NULL;
    size_t res_len = 0;
    assert_int_equal(t->iface.ops->query(t->iface.ctx, q, len, &res, &res_len), 0);
    free(q);
    pveh_query_result r;
    assert_int_equal(pveh_query_result_decode(res, res_len, &r), 0);
    free(res);
    return r;
}

static pveh_query_result get(tsm *t, uint64_t id)
{
    uint8_t *q = NULL;
    size_t len = 0;
    assert_int_equal(pveh_query_get(id, &q, &len), 0);
    return query(t, q, len);
}

static pveh_query_result list(tsm *t)
{
    uint8_t *q = NULL;
    size_t len = 0;
    assert_int_equal(pveh_query_list(&q, &len), 0);
    return query(t, q, len);
}

static void assert_same_vehicle(const pveh_vehicle *a, const pveh_vehicle *b)
{
    assert_int_equal(a->id, b->id);
    assert_true(a->latitude == b->latitude && a->longitude == b->longitude);
    assert_true(a->speed == b->speed && a->heading == b->heading);
    assert_int_equal(a->revision, b->revision);
}

static void update_creates_then_replaces(void **state)
{
    (void)state;
    tsm t;
    tsm_new(&t, NULL);
    pveh_vehicle a = veh(10, 1, 2, 3, 4);
    pveh_result r = tsm_update(&t, 3, &a, 0, 0, 1000);
    assert_int_equal(r.op, PVEH_OP_UPDATE);
    assert_int_equal(r.status, PVEH_STATUS_OK);
    assert_int_equal(r.vehicle.revision, 3); /* the revision is the index of the write */
    a.revision = 3;
    assert_same_vehicle(&r.vehicle, &a);

    pveh_query_result g = get(&t, 10);
    assert_int_equal(g.status, PVEH_STATUS_OK);
    assert_same_vehicle(&g.vehicle, &a);

    pveh_vehicle b = veh(10, -5, -6, 7, 8);
    r = tsm_update(&t, 7, &b, 0, 0, 1001);
    b.revision = 7;
    assert_same_vehicle(&r.vehicle, &b);
    assert_int_equal(pveh_sm_vehicle_count(t.sm), 1);
    pveh_vehicle stored;
    assert_int_equal(pveh_sm_get(t.sm, 10, &stored), 0);
    assert_same_vehicle(&stored, &b);
    assert_int_equal(pveh_sm_applied_index(t.sm), 7);
    tsm_free(&t);
}

static void delete_reports_existed_and_revision(void **state)
{
    (void)state;
    tsm t;
    tsm_new(&t, NULL);
    pveh_vehicle a = veh(10, 1, 2, 3, 4);
    tsm_update(&t, 1, &a, 0, 0, 1);
    pveh_result r = tsm_delete(&t, 2, 10, 0, 0, 2);
    assert_int_equal(r.op, PVEH_OP_DELETE);
    assert_true(r.existed);
    assert_int_equal(r.revision, 2);
    assert_int_equal(get(&t, 10).status, PVEH_STATUS_NOT_FOUND);
    pveh_vehicle out;
    assert_int_equal(pveh_sm_get(t.sm, 10, &out), PT_ENOTFOUND);

    /* Deleting what is absent is not an error: existed is false, the revision is still the
     * index at which the delete was applied. */
    r = tsm_delete(&t, 5, 10, 0, 0, 3);
    assert_false(r.existed);
    assert_int_equal(r.revision, 5);
    r = tsm_delete(&t, 6, 999, 0, 0, 3);
    assert_false(r.existed);
    assert_int_equal(r.revision, 6);
    assert_int_equal(pveh_sm_applied_index(t.sm), 6);
    tsm_free(&t);
}

static void list_is_in_ascending_id_with_the_applied_index(void **state)
{
    (void)state;
    tsm t;
    tsm_new(&t, NULL);
    uint64_t ids[200];
    uint64_t x = 88172645463325252u;
    for (size_t i = 0; i < 200; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ids[i] = (x % 1000) + 1; /* repeats on purpose: replacements */
        pveh_vehicle v = veh(ids[i], (double)(i % 90), 0, 1, 2);
        tsm_update(&t, i + 1, &v, 0, 0, i);
    }
    tsm_delete(&t, 201, ids[0], 0, 0, 300);
    pveh_query_result l = list(&t);
    assert_int_equal(l.applied_index, 201);
    assert_int_equal(l.n_vehicles, pveh_sm_vehicle_count(t.sm));
    assert_true(l.n_vehicles > 100);
    for (size_t i = 0; i < l.n_vehicles; i++) {
        if (i > 0) {
            assert_true(l.vehicles[i - 1].id < l.vehicles[i].id);
        }
        assert_int_not_equal(l.vehicles[i].id, ids[0]);
        pveh_vehicle stored;
        assert_int_equal(pveh_sm_get(t.sm, l.vehicles[i].id, &stored), 0);
        assert_same_vehicle(&stored, &l.vehicles[i]);
        /* The revision is the index of the last write of this id. */
        size_t last = 0;
        for (size_t k = 0; k < 200; k++) {
            if (ids[k] == l.vehicles[i].id) {
                last = k + 1;
            }
        }
        assert_int_equal(l.vehicles[i].revision, last);
    }
    pveh_query_result_free(&l);
    tsm_free(&t);
}

static void a_retry_returns_the_original_answer(void **state)
{
    (void)state;
    tsm t;
    tsm_new(&t, NULL);
    pveh_vehicle a = veh(1, 10, 10, 10, 10);
    pveh_result first = tsm_update(&t, 1, &a, 42, 1, 1000);
    /* The retry carries the same (client, sequence) and the same request: it is not applied
     * and gets the first answer, with the first revision. */
    pveh_result again = tsm_update(&t, 2, &a, 42, 1, 2000);
    assert_memory_equal(&first, &again, sizeof(first));
    pveh_vehicle stored;
    assert_int_equal(pveh_sm_get(t.sm, 1, &stored), 0);
    assert_true(stored.latitude == 10 && stored.revision == 1);
    assert_int_equal(pveh_sm_applied_index(t.sm), 2);

    /* A delete and its retry after the vehicle is gone: still existed = true, revision 3. */
    pveh_result del = tsm_delete(&t, 3, 1, 42, 2, 3000);
    assert_true(del.existed);
    pveh_result del_again = tsm_delete(&t, 4, 1, 42, 2, 4000);
    assert_true(del_again.existed);
    assert_int_equal(del_again.revision, 3);
    uint64_t seq = 0, used = 0;
    assert_int_equal(pveh_sm_session_get(t.sm, 42, &seq, &used), 0);
    assert_int_equal(seq, 2);
    assert_int_equal(used, 4000); /* a retry is a use */
    tsm_free(&t);
}

static void a_reused_sequence_with_other_content_is_a_conflict(void **state)
{
    (void)state;
    tsm t;
    tsm_new(&t, NULL);
    pveh_vehicle a = veh(111, 10, 10, 10, 10);
    pveh_result first = tsm_update(&t, 1, &a, 42, 7, 1000);
    assert_int_equal(first.status, PVEH_STATUS_OK);

    /* Another vehicle under the same sequence: refused, nothing applied, never the answer of
     * vehicle 111. */
    pveh_vehicle b = veh(113, 20, 20, 20, 20);
    pveh_result r = tsm_update(&t, 2, &b, 42, 7, 2000);
    assert_int_equal(r.status, PVEH_STATUS_SEQUENCE_CONFLICT);
    assert_int_equal(r.last_sequence, 7);
    pveh_vehicle stored;
    assert_int_equal(pveh_sm_get(t.sm, 113, &stored), PT_ENOTFOUND);

    /* Same id, other coordinates: also another request. */
    pveh_vehicle a2 = veh(111, 11, 10, 10, 10);
    assert_int_equal(tsm_update(&t, 3, &a2, 42, 7, 3000).status, PVEH_STATUS_SEQUENCE_CONFLICT);
    /* A delete under the update's sequence, and an update under a delete's sequence. */
    assert_int_equal(tsm_delete(&t, 4, 111, 42, 7, 4000).status, PVEH_STATUS_SEQUENCE_CONFLICT);
    assert_int_equal(pveh_sm_get(t.sm, 111, &stored), 0);
    assert_true(stored.latitude == 10);
    assert_int_equal(tsm_delete(&t, 5, 111, 42, 8, 5000).status, PVEH_STATUS_OK);
    assert_int_equal(tsm_update(&t, 6, &a, 42, 8, 6000).status, PVEH_STATUS_SEQUENCE_CONFLICT);
    assert_int_equal(pveh_sm_get(t.sm, 111, &stored), PT_ENOTFOUND);

    /* The true retry still gets the original answer after the conflicts, and the fingerprint
     * survives a snapshot. */
    pveh_result del_again = tsm_delete(&t, 7, 111, 42, 8, 7000);
    assert_int_equal(del_again.status, PVEH_STATUS_OK);
    assert_int_equal(del_again.revision, 5);
    membuf snap = tsm_snapshot(&t);
    tsm u;
    tsm_new(&u, NULL);
    assert_int_equal(tsm_restore(&u, snap.data, snap.len, 0), 0);
    assert_int_equal(tsm_update(&u, 8, &a, 42, 8, 8000).status, PVEH_STATUS_SEQUENCE_CONFLICT);
    assert_int_equal(tsm_delete(&u, 9, 111, 42, 8, 9000).revision, 5);
    free(snap.data);
    tsm_free(&u);
    tsm_free(&t);
}

static void an_older_sequence_is_refused_and_a_newer_one_applies(void **state)
{
    (void)state;
    tsm t;
    tsm_new(&t, NULL);
    pveh_vehicle a = veh(1, 10, 10, 10, 10);
    tsm_update(&t, 1, &a, 7, 5, 100);
    pveh_vehicle b = veh(1, 11, 11, 11, 11);
    pveh_result r = tsm_update(&t, 2, &b, 7, 4, 200);
    assert_int_equal(r.status, PVEH_STATUS_STALE_SEQUENCE);
    assert_int_equal(r.last_sequence, 5);
    r = tsm_delete(&t, 3, 1, 7, 0, 300);
    assert_int_equal(r.status, PVEH_STATUS_STALE_SEQUENCE);
    assert_int_equal(pveh_sm_vehicle_count(t.sm), 1);
    pveh_vehicle stored;
    assert_int_equal(pveh_sm_get(t.sm, 1, &stored), 0);
    assert_true(stored.latitude == 10);

    r = tsm_update(&t, 4, &b, 7, 6, 400);
    assert_int_equal(r.status, PVEH_STATUS_OK);
    assert_int_equal(r.vehicle.revision, 4);
    assert_int_equal(pveh_sm_get(t.sm, 1, &stored), 0);
    assert_true(stored.latitude == 11);
    /* Sequences may skip: the session only needs them to increase. */
    r = tsm_update(&t, 5, &a, 7, 100, 500);
    assert_int_equal(r.status, PVEH_STATUS_OK);
    tsm_free(&t);
}

static void client_zero_is_never_deduplicated_and_clients_are_independent(void **state)
{
    (void)state;
    tsm t;
    tsm_new(&t, NULL);
    pveh_vehicle a = veh(1, 10, 10, 10, 10);
    assert_int_equal(tsm_update(&t, 1, &a, 0, 1, 1).vehicle.revision, 1);
    assert_int_equal(tsm_update(&t, 2, &a, 0, 1, 1).vehicle.revision, 2);
    assert_int_equal(pveh_sm_session_count(t.sm), 0);
    assert_int_equal(tsm_update(&t, 3, &a, 1, 1, 1).vehicle.revision, 3);
    assert_int_equal(tsm_update(&t, 4, &a, 2, 1, 1).vehicle.revision, 4);
    assert_int_equal(tsm_update(&t, 5, &a, 1, 1, 1).vehicle.revision, 3);
    assert_int_equal(pveh_sm_session_count(t.sm), 2);
    tsm_free(&t);
}

static void sessions_expire_after_the_ttl_of_log_time(void **state)
{
    (void)state;
    tsm t;
    tsm_new(&t, NULL);
    pveh_vehicle a = veh(1, 10, 10, 10, 10);
    const uint64_t t0 = 1700000000000;
    tsm_update(&t, 1, &a, 1, 1, t0);
    /* Exactly the ttl later, the session is still there: kept at least ttl after last use. */
    tsm_update(&t, 2, &a, 2, 1, t0 + TTL);
    assert_int_equal(pveh_sm_session_get(t.sm, 1, NULL, NULL), 0);
    assert_int_equal(tsm_update(&t, 3, &a, 1, 1, t0 + TTL).vehicle.revision, 1);
    /* Its retry above was a use at t0 + TTL; one millisecond past ttl after that it goes. */
    tsm_update(&t, 4, &a, 2, 2, t0 + 2 * TTL);
    assert_int_equal(pveh_sm_session_get(t.sm, 1, NULL, NULL), 0);
    tsm_update(&t, 5, &a, 2, 3, t0 + 2 * TTL + 1);
    assert_int_equal(pveh_sm_session_get(t.sm, 1, NULL, NULL), PT_ENOTFOUND);
    assert_int_equal(pveh_sm_session_count(t.sm), 1);
    /* Once expired, the same (client, sequence) is a new request: applied again. */
    assert_int_equal(tsm_update(&t, 6, &a, 1, 1, t0 + 2 * TTL + 2).vehicle.revision, 6);
    tsm_free(&t);
}

static void log_time_never_goes_back(void **state)
{
    (void)state;
    tsm t;
    tsm_new(&t, NULL);
    pveh_vehicle a = veh(1, 10, 10, 10, 10);
    tsm_update(&t, 1, &a, 1, 1, 5 * TTL);
    /* A new leader with a clock far behind: log time stays, and the session it stamps is
     * used "now" in log time, so it does not expire early when the fast clock returns. */
    tsm_update(&t, 2, &a, 2, 1, 1000);
    assert_int_equal(pveh_sm_log_time(t.sm), 5 * TTL);
    uint64_t used = 0;
    assert_int_equal(pveh_sm_session_get(t.sm, 2, NULL, &used), 0);
    assert_int_equal(used, 5 * TTL);
    tsm_update(&t, 3, &a, 3, 1, 6 * TTL);
    assert_int_equal(pveh_sm_session_get(t.sm, 2, NULL, NULL), 0);
    tsm_free(&t);
}

static void the_table_is_bounded_and_evicts_the_least_recently_used(void **state)
{
    (void)state;
    pveh_options opts;
    pveh_options_init(&opts);
    opts.max_sessions = PVEH_MAX_SESSIONS_MIN;
    tsm t;
    tsm_new(&t, &opts);
    pveh_vehicle a = veh(1, 10, 10, 10, 10);
    uint64_t index = 0;
    for (uint64_t c = 1; c <= PVEH_MAX_SESSIONS_MIN; c++) {
        tsm_update(&t, ++index, &a, c, 1, c);
    }
    assert_int_equal(pveh_sm_session_count(t.sm), PVEH_MAX_SESSIONS_MIN);
    /* Client 1 uses its session again: client 2 is now the least recently used. */
    tsm_update(&t, ++index, &a, 1, 2, PVEH_MAX_SESSIONS_MIN + 1);
    tsm_update(&t, ++index, &a, 100001, 1, PVEH_MAX_SESSIONS_MIN + 2);
    assert_int_equal(pveh_sm_session_count(t.sm), PVEH_MAX_SESSIONS_MIN);
    assert_int_equal(pveh_sm_session_get(t.sm, 2, NULL, NULL), PT_ENOTFOUND);
    assert_int_equal(pveh_sm_session_get(t.sm, 1, NULL, NULL), 0);
    assert_int_equal(pveh_sm_session_get(t.sm, 3, NULL, NULL), 0);
    tsm_update(&t, ++index, &a, 100002, 1, PVEH_MAX_SESSIONS_MIN + 3);
    assert_int_equal(pveh_sm_session_get(t.sm, 3, NULL, NULL), PT_ENOTFOUND);
    assert_int_equal(pveh_sm_session_get(t.sm, 4, NULL, NULL), 0);
    /* Every remaining session still answers its retry with its original revision. */
    for (uint64_t c = 4; c <= PVEH_MAX_SESSIONS_MIN; c += 997) {
        assert_int_equal(
            tsm_update(&t, ++index, &a, c, 1, PVEH_MAX_SESSIONS_MIN + 4).vehicle.revision, c);
    }
    tsm_free(&t);
}

static void options_below_their_floor_are_refused(void **state)
{
    (void)state;
    pveh_options opts;
    pveh_sm *sm = NULL;
    pveh_options_init(&opts);
    assert_int_equal(pveh_sm_new(NULL, NULL), PT_EINVAL);
    assert_true(opts.max_sessions >= PVEH_MAX_SESSIONS_MIN);
    assert_true(opts.session_ttl_ms >= PVEH_SESSION_TTL_MS_MIN);
    opts.max_sessions = PVEH_MAX_SESSIONS_MIN - 1;
    assert_int_equal(pveh_sm_new(&opts, &sm), PT_EINVAL);
    pveh_options_init(&opts);
    opts.session_ttl_ms = PVEH_SESSION_TTL_MS_MIN - 1;
    assert_int_equal(pveh_sm_new(&opts, &sm), PT_EINVAL);
    pveh_options_init(&opts);
    opts.max_sessions = PVEH_MAX_SESSIONS_MAX + 1;
    assert_int_equal(pveh_sm_new(&opts, &sm), PT_EINVAL);
    assert_null(sm); /* untouched by every refusal */
    opts.max_sessions = PVEH_MAX_SESSIONS_MAX;
    assert_int_equal(pveh_sm_new(&opts, &sm), 0);
    assert_non_null(sm);
    pveh_sm_free(sm);
}

static void indexes_must_advance_and_corrupt_commands_change_nothing(void **state)
{
    (void)state;
    tsm t;
    tsm_new(&t, NULL);
    pveh_vehicle a = veh(1, 10, 10, 10, 10);
    tsm_update(&t, 5, &a, 1, 1, 1);
    uint8_t *cmd = NULL;
    size_t len = 0;
    uint8_t *res = (uint8_t *)&len; /* must stay untouched */
    size_t res_len = 0;
    assert_int_equal(pveh_command_delete(1, 0, 0, 1, &cmd, &len), 0);
    for (uint64_t idx = 0; idx <= 5; idx++) {
        assert_int_equal(t.iface.ops->apply(t.iface.ctx, idx, 1, cmd, len, &res, &res_len),
                         PT_EINVAL);
    }
    assert_int_equal(t.iface.ops->applied_noop(t.iface.ctx, 5, 1), PT_EINVAL);
    cmd[1] = 9;
    assert_int_equal(t.iface.ops->apply(t.iface.ctx, 6, 1, cmd, len, &res, &res_len), PT_ECORRUPT);
    cmd[0] = 9;
    assert_int_equal(t.iface.ops->apply(t.iface.ctx, 6, 1, cmd, len, &res, &res_len), PT_EVERSION);
    assert_int_equal(t.iface.ops->apply(t.iface.ctx, 6, 1, cmd, 3, &res, &res_len), PT_EVERSION);
    free(cmd);
    assert_ptr_equal(res, (uint8_t *)&len);
    assert_int_equal(t.iface.ops->applied_index(t.iface.ctx), 5);
    assert_int_equal(pveh_sm_vehicle_count(t.sm), 1);
    tsm_free(&t);
}

static praft_config two_members(void)
{
    praft_config c;
    memset(&c, 0, sizeof(c));
    c.n_members = 2;
    c.members[0].id = 1;
    c.members[0].role = PRAFT_ROLE_VOTER;
    strcpy(c.members[0].address, "127.0.0.1:7001");
    c.members[1].id = 4;
    c.members[1].role = PRAFT_ROLE_LEARNER;
    strcpy(c.members[1].address, "127.0.0.1:7004");
    return c;
}

static void noops_and_configurations_advance_the_applied_index(void **state)
{
    (void)state;
    tsm t;
    tsm_new(&t, NULL);
    assert_int_equal(t.iface.ops->applied_noop(t.iface.ctx, 3, 2), 0);
    assert_int_equal(t.iface.ops->applied_index(t.iface.ctx), 3);
    assert_int_equal(list(&t).applied_index, 3); /* GetPlatoon's revision reflects it */

    praft_config c = two_members();
    assert_int_equal(t.iface.ops->applied_config(t.iface.ctx, 4, 2, &c), 0);
    praft_config got;
    pveh_sm_membership(t.sm, &got);
    assert_memory_equal(&got, &c, sizeof(c));
    assert_int_equal(t.iface.ops->applied_index(t.iface.ctx), 4);

    /* Invalid configurations are refused and change nothing. */
    praft_config bad = two_members();
    bad.members[1].id = 1; /* not ascending */
    assert_int_equal(t.iface.ops->applied_config(t.iface.ctx, 5, 2, &bad), PT_EINVAL);
    bad = two_members();
    bad.members[0].old_role = PRAFT_ROLE_VOTER; /* an outgoing side outside joint */
    assert_int_equal(t.iface.ops->applied_config(t.iface.ctx, 5, 2, &bad), PT_EINVAL);
    bad = two_members();
    memset(bad.members[0].address, 'x', sizeof(bad.members[0].address)); /* no NUL */
    assert_int_equal(t.iface.ops->applied_config(t.iface.ctx, 5, 2, &bad), PT_EINVAL);
    bad = two_members();
    bad.n_members = PRAFT_MAX_MEMBERS + 1;
    assert_int_equal(t.iface.ops->applied_config(t.iface.ctx, 5, 2, &bad), PT_EINVAL);
    assert_int_equal(t.iface.ops->applied_config(t.iface.ctx, 4, 2, &c), PT_EINVAL);
    pveh_sm_membership(t.sm, &got);
    assert_memory_equal(&got, &c, sizeof(c));
    assert_int_equal(t.iface.ops->applied_index(t.iface.ctx), 4);

    /* A joint configuration with a member leaving is fine. */
    praft_config joint = two_members();
    joint.joint = true;
    joint.members[0].old_role = PRAFT_ROLE_VOTER;
    joint.members[1].old_role = PRAFT_ROLE_VOTER;
    joint.members[1].role = PRAFT_ROLE_NONE;
    assert_int_equal(t.iface.ops->applied_config(t.iface.ctx, 5, 2, &joint), 0);
    tsm_free(&t);
}

static void queries_answer_not_found_and_refuse_garbage(void **state)
{
    (void)state;
    tsm t;
    tsm_new(&t, NULL);
    pveh_query_result g = get(&t, 5);
    assert_int_equal(g.op, PVEH_QUERY_GET);
    assert_int_equal(g.status, PVEH_STATUS_NOT_FOUND);
    pveh_query_result l = list(&t);
    assert_int_equal(l.n_vehicles, 0);
    uint8_t junk[3] = {1, 1, 0};
    uint8_t *res = NULL;
    size_t res_len = 0;
    assert_int_equal(t.iface.ops->query(t.iface.ctx, junk, sizeof(junk), &res, &res_len),
                     PT_EMALFORMED);
    assert_null(res);
    tsm_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(update_creates_then_replaces),
        cmocka_unit_test(delete_reports_existed_and_revision),
        cmocka_unit_test(list_is_in_ascending_id_with_the_applied_index),
        cmocka_unit_test(a_retry_returns_the_original_answer),
        cmocka_unit_test(a_reused_sequence_with_other_content_is_a_conflict),
        cmocka_unit_test(an_older_sequence_is_refused_and_a_newer_one_applies),
        cmocka_unit_test(client_zero_is_never_deduplicated_and_clients_are_independent),
        cmocka_unit_test(sessions_expire_after_the_ttl_of_log_time),
        cmocka_unit_test(log_time_never_goes_back),
        cmocka_unit_test(the_table_is_bounded_and_evicts_the_least_recently_used),
        cmocka_unit_test(options_below_their_floor_are_refused),
        cmocka_unit_test(indexes_must_advance_and_corrupt_commands_change_nothing),
        cmocka_unit_test(noops_and_configurations_advance_the_applied_index),
        cmocka_unit_test(queries_answer_not_found_and_refuse_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
