/* Linearizable reads without the log: ReadIndex (thesis §6.4), leases (thesis §6.4.1),
 * follower reads, and definite answers for abandoned reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

static void lease(praft_options *o)
{
    o->lease_reads = true;
}

/* thesis §6.4: the leader's read index is confirmed by a heartbeat round a majority answers. */
static void leader_read_confirmed_by_a_heartbeat_round(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    cl_propose(&c, 1, "x");
    cl_settle(&c);
    assert_int_equal(praft_read_index(c.t[1].n, 42), 0);
    cl_ready(&c, 1);
    assert_int_equal(c.t[1].n_reads, 0); /* not before the round */
    praft_msg *hb = cl_find(&c, PRAFT_MSG_HEARTBEAT, 1, 2);
    assert_non_null(hb);
    assert_int_not_equal(hb->context, 0);
    cl_settle(&c);
    assert_int_equal(c.t[1].n_reads, 1);
    assert_int_equal(c.t[1].reads[0].context, 42);
    assert_int_equal(c.t[1].reads[0].index, 3);
    assert_int_equal(c.t[1].reads[0].status, 0);
    assert_int_equal(cl_status(&c, 1)->counters.entries_proposed, 1); /* no log write */
    cl_free(&c);
}

static int drop_appends_from_1(cluster *c, const praft_msg *m)
{
    (void)c;
    return !(m->type == PRAFT_MSG_APPEND && m->from == 1);
}

/* thesis §6.4 step 1: until the leader commits an entry of its term, its commit index may be
 * stale: reads wait for the no-op. */
static void read_waits_for_the_leaders_noop(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    c.filter = drop_appends_from_1;
    for (int i = 0; i < 40 && cl_status(&c, 1)->role != PRAFT_CANDIDATE; i++) {
        cl_tick(&c, 1);
    }
    cl_settle(&c);
    assert_int_equal(cl_status(&c, 1)->role, PRAFT_LEADER);
    assert_int_equal(cl_status(&c, 1)->commit, 1);
    assert_int_equal(praft_read_index(c.t[1].n, 5), 0);
    cl_tick(&c, 1);
    cl_settle(&c);
    assert_int_equal(c.t[1].n_reads, 0);
    c.filter = NULL;
    cl_tick(&c, 1);
    cl_settle(&c);
    assert_int_equal(c.t[1].n_reads, 1);
    assert_int_equal(c.t[1].reads[0].index, 2);
    cl_free(&c);
}

/* thesis §6.4: a follower asks the leader for the read index and answers once it learns it. */
static void follower_read_is_forwarded(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    cl_propose(&c, 1, "x");
    cl_settle(&c);
    assert_int_equal(praft_read_index(c.t[2].n, 7), 0);
    cl_ready(&c, 2);
    assert_non_null(cl_find(&c, PRAFT_MSG_READ_INDEX, 2, 1));
    cl_settle(&c);
    assert_int_equal(c.t[2].n_reads, 1);
    assert_int_equal(c.t[2].reads[0].context, 7);
    assert_int_equal(c.t[2].reads[0].index, 3);
    assert_int_equal(c.t[2].reads[0].status, 0);
    assert_int_equal(c.t[1].n_reads, 0);
    cl_free(&c);
}

/* Every read ends with an answer: reads abandoned by a leader change fail with
 * PT_ENOTLEADER, on the leader and on the follower that forwarded them. */
static void abandoned_reads_fail_with_enotleader(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    assert_int_equal(praft_read_index(c.t[2].n, 8), 0);
    cl_ready(&c, 2);
    cl_clear_queue(&c); /* the request is lost */
    cl_isolate(&c, 1);
    assert_int_equal(praft_read_index(c.t[1].n, 9), 0);
    for (int i = 0; i < 30 && cl_status(&c, 1)->role == PRAFT_LEADER; i++) {
        cl_tick(&c, 1);
        cl_ready(&c, 1);
    }
    cl_ready(&c, 1);
    assert_int_equal(c.t[1].n_reads, 1);
    assert_int_equal(c.t[1].reads[0].context, 9);
    assert_int_equal(c.t[1].reads[0].status, PT_ENOTLEADER);
    /* node 2 moves on to a new leader (or candidacy): its forwarded read fails */
    for (int i = 0; i < 60 && c.t[2].n_reads == 0; i++) {
        cl_tick(&c, 2);
        cl_tick(&c, 3);
        cl_settle(&c);
    }
    assert_int_equal(c.t[2].n_reads, 1);
    assert_int_equal(c.t[2].reads[0].context, 8);
    assert_int_equal(c.t[2].reads[0].status, PT_ENOTLEADER);
    cl_free(&c);
}

/* thesis §6.4.1: with a lease, the leader answers without a heartbeat round. */
static void lease_read_answers_without_a_round(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, lease);
    cl_elect(&c, 1);
    assert_int_equal(praft_read_index(c.t[1].n, 3), 0);
    cl_ready(&c, 1);
    assert_int_equal(c.t[1].n_reads, 1);
    assert_int_equal(c.t[1].reads[0].index, 2);
    assert_int_equal(c.nq, 0);
    cl_free(&c);
}

/* Errors of praft_read_index. */
static void read_index_errors(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    assert_int_equal(praft_read_index(c.t[1].n, 1), PT_ENOTLEADER);
    cl_elect(&c, 1);
    assert_int_equal(praft_read_index(c.t[1].n, 0), PT_EINVAL);
    cl_free(&c);
}

/* Several reads in flight are answered in order, each after its own round. */
static void many_reads_share_rounds(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 5, 0, NULL);
    cl_elect(&c, 1);
    for (uint64_t i = 1; i <= 10; i++) {
        assert_int_equal(praft_read_index(c.t[1].n, i), 0);
    }
    cl_settle(&c);
    assert_int_equal(c.t[1].n_reads, 10);
    for (size_t i = 0; i < 10; i++) {
        assert_int_equal(c.t[1].reads[i].context, i + 1);
        assert_int_equal(c.t[1].reads[i].status, 0);
    }
    cl_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(leader_read_confirmed_by_a_heartbeat_round),
        cmocka_unit_test(read_waits_for_the_leaders_noop),
        cmocka_unit_test(follower_read_is_forwarded),
        cmocka_unit_test(abandoned_reads_fail_with_enotleader),
        cmocka_unit_test(lease_read_answers_without_a_round),
        cmocka_unit_test(read_index_errors),
        cmocka_unit_test(many_reads_share_rounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
