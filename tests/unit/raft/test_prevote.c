/* Pre-vote (thesis §9.6): a node that cannot win does not bump its term, and a pre-vote never
 * changes the state of those who answer it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

static void no_cq(praft_options *o)
{
    o->disable_check_quorum = true;
}

/* thesis §9.6: a node returning from a partition does not bump the term or unseat the leader. */
static void rejoining_node_does_not_disrupt_the_leader(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    cl_isolate(&c, 3);
    for (int i = 0; i < 100; i++) {
        cl_tick(&c, 3);
        cl_ready(&c, 3);
    }
    cl_clear_queue(&c);
    praft_status *s = cl_status(&c, 3);
    assert_int_equal(s->term, 2); /* many pre-votes, no new term */
    assert_true(s->counters.prevotes_started >= 4);
    assert_int_equal(s->counters.elections_started, 0);
    cl_heal(&c);
    for (int i = 0; i < 5; i++) {
        cl_tick_all(&c);
        cl_settle(&c);
    }
    assert_int_equal(cl_leader(&c), 1);
    assert_int_equal(cl_status(&c, 1)->term, 2);
    assert_int_equal(cl_status(&c, 3)->leader, 1);
    cl_free(&c);
}

/* thesis §9.6: answering a pre-vote changes neither the term nor the vote of the receiver. */
static void prevote_response_changes_no_state(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, no_cq);
    praft_msg pv = {
        .type = PRAFT_MSG_PREVOTE, .from = 1, .term = 5, .last_index = 1, .last_term = 1};
    assert_int_equal(cl_step(&c, 2, &pv), 0);
    praft_status *s = cl_status(&c, 2);
    assert_int_equal(s->term, 1);
    assert_int_equal(s->vote, 0);
    praft_ready rd;
    assert_int_equal(praft_ready_get(c.t[2].n, &rd), 0);
    assert_false(rd.has_hard_state);
    assert_int_equal(rd.n_send_now, 1); /* depends on nothing durable */
    assert_int_equal(rd.send_now[0].type, PRAFT_MSG_PREVOTE_RESP);
    assert_false(rd.send_now[0].reject);
    assert_int_equal(rd.send_now[0].term, 5);
    assert_int_equal(praft_advance(c.t[2].n, &rd), 0);
    /* a pre-vote from a stale log is refused, still without changing anything */
    praft_msg old = pv;
    old.last_index = 0;
    old.last_term = 0;
    old.from = 3;
    assert_int_equal(cl_step(&c, 2, &old), 0);
    cl_ready(&c, 2);
    assert_true(cl_find(&c, PRAFT_MSG_PREVOTE_RESP, 2, 3)->reject);
    assert_int_equal(cl_status(&c, 2)->term, 1);
    cl_free(&c);
}

/* A granted PREVOTE_RESP carries the next term; it must not bump the pre-candidate's term.
 * Only a majority of grants starts the real election at term + 1. */
static void granted_prevote_does_not_bump_candidate_term(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 5, 0, no_cq);
    for (int i = 0; i < 30 && cl_status(&c, 1)->role != PRAFT_CANDIDATE; i++) {
        cl_tick(&c, 1);
    }
    assert_int_equal(cl_status(&c, 1)->term, 1);
    praft_msg g = {.type = PRAFT_MSG_PREVOTE_RESP, .from = 2, .term = 2};
    assert_int_equal(cl_step(&c, 1, &g), 0);
    assert_int_equal(cl_status(&c, 1)->term, 1);
    assert_int_equal(cl_status(&c, 1)->counters.elections_started, 0);
    g.from = 3;
    assert_int_equal(cl_step(&c, 1, &g), 0);
    assert_int_equal(cl_status(&c, 1)->term, 2);
    assert_int_equal(cl_status(&c, 1)->counters.elections_started, 1);
    /* a rejection at a higher term does make it a follower of that term */
    praft_msg r = {.type = PRAFT_MSG_VOTE_RESP, .from = 4, .term = 7, .reject = true};
    assert_int_equal(cl_step(&c, 1, &r), 0);
    assert_int_equal(cl_status(&c, 1)->term, 7);
    assert_int_equal(cl_status(&c, 1)->role, PRAFT_FOLLOWER);
    cl_free(&c);
}

/* Pre-vote plus check-quorum (pitfalls): an isolated old leader steps down, and when it
 * rejoins with its old term nobody is disrupted and it follows the new leader. */
static void isolated_leader_rejoins_without_disruption(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    cl_isolate(&c, 1);
    for (int i = 0; i < 40; i++) {
        cl_tick_all(&c);
        cl_settle(&c);
    }
    uint64_t leader = cl_leader(&c);
    assert_true(leader == 2 || leader == 3);
    assert_int_not_equal(cl_status(&c, 1)->role, PRAFT_LEADER); /* check-quorum */
    uint64_t term = cl_status(&c, leader)->term;
    cl_heal(&c);
    for (int i = 0; i < 5; i++) {
        cl_tick_all(&c);
        cl_settle(&c);
    }
    assert_int_equal(cl_leader(&c), leader);
    assert_int_equal(cl_status(&c, leader)->term, term);
    assert_int_equal(cl_status(&c, 1)->leader, leader);
    cl_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rejoining_node_does_not_disrupt_the_leader),
        cmocka_unit_test(prevote_response_changes_no_state),
        cmocka_unit_test(granted_prevote_does_not_bump_candidate_term),
        cmocka_unit_test(isolated_leader_rejoins_without_disruption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
