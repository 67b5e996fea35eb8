/* Leader election: §5.2 (randomized timeouts, one vote per term), §5.4.1 (up-to-date logs),
 * §5.1 Figure 2 (the vote is durable before the grant leaves). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

static void plain(praft_options *o)
{
    o->disable_pre_vote = true;
    o->disable_check_quorum = true;
}

/* §5.2: a follower that hears nothing campaigns and a majority elects it. */
static void election_elects_one_leader(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    assert_int_equal(cl_leader(&c), 1);
    for (uint64_t i = 2; i <= 3; i++) {
        praft_status *s = cl_status(&c, i);
        assert_int_equal(s->role, PRAFT_FOLLOWER);
        assert_int_equal(s->leader, 1);
        assert_int_equal(s->term, 2);
    }
    praft_status *s = cl_status(&c, 1);
    assert_int_equal(s->counters.leader_elected, 1);
    assert_int_equal(s->counters.elections_started, 1);
    assert_int_equal(s->counters.prevotes_started, 1);
    cl_free(&c);
}

static uint32_t ticks_to_campaign(uint64_t seed)
{
    cluster c;
    cl_init(&c, 3, 0, NULL);
    praft_free(c.t[1].n);
    c.t[1].o.seed = seed;
    praft_storage st = ms_storage(&c.t[1].st);
    assert_int_equal(praft_new(&c.t[1].o, &st, &c.t[1].n), 0);
    uint32_t ticks = 0;
    while (cl_status(&c, 1)->role == PRAFT_FOLLOWER && ticks < 1000) {
        cl_tick(&c, 1);
        ticks++;
    }
    cl_free(&c);
    return ticks;
}

/* §5.2: election timeouts are drawn from [T, 2T), from the configured seed. */
static void election_timeout_is_randomized_in_T_2T_from_seed(void **state)
{
    (void)state;
    uint32_t seen_min = UINT32_MAX, seen_max = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        uint32_t t = ticks_to_campaign(seed);
        assert_true(t >= 10 && t < 20);
        assert_int_equal(t, ticks_to_campaign(seed)); /* same seed, same timeout */
        seen_min = t < seen_min ? t : seen_min;
        seen_max = t > seen_max ? t : seen_max;
    }
    assert_true(seen_max > seen_min); /* actually random across seeds */
}

/* §5.4.1: a voter denies its vote to a candidate whose log is less up to date. */
static void vote_denied_to_candidate_with_stale_log(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, plain);
    cl_elect(&c, 1);
    cl_propose(&c, 1, "x");
    cl_settle(&c);
    assert_int_equal(cl_status(&c, 2)->last_index, 3);
    praft_msg v = {.type = PRAFT_MSG_VOTE, .from = 3, .term = 5, .last_index = 2, .last_term = 2};
    assert_int_equal(cl_step(&c, 2, &v), 0);
    cl_ready(&c, 2);
    praft_msg *r = cl_find(&c, PRAFT_MSG_VOTE_RESP, 2, 3);
    assert_non_null(r);
    assert_true(r->reject);
    assert_int_equal(r->term, 5);
    assert_int_equal(cl_status(&c, 2)->vote, 0);
    /* a longer log of the same last term wins the vote */
    cl_clear_queue(&c);
    v.term = 6;
    v.last_index = 3;
    assert_int_equal(cl_step(&c, 2, &v), 0);
    cl_ready(&c, 2);
    r = cl_find(&c, PRAFT_MSG_VOTE_RESP, 2, 3);
    assert_non_null(r);
    assert_false(r->reject);
    cl_free(&c);
}

/* §5.2: each server votes for at most one candidate per term, first come first served. */
static void one_vote_per_term(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, plain);
    praft_msg v = {.type = PRAFT_MSG_VOTE, .from = 1, .term = 2, .last_index = 1, .last_term = 1};
    assert_int_equal(cl_step(&c, 2, &v), 0);
    v.from = 3;
    assert_int_equal(cl_step(&c, 2, &v), 0);
    v.from = 1; /* a retransmission gets the same answer */
    assert_int_equal(cl_step(&c, 2, &v), 0);
    cl_ready(&c, 2);
    praft_msg *r1 = cl_find(&c, PRAFT_MSG_VOTE_RESP, 2, 1);
    praft_msg *r3 = cl_find(&c, PRAFT_MSG_VOTE_RESP, 2, 3);
    assert_non_null(r1);
    assert_non_null(r3);
    assert_false(r1->reject);
    assert_true(r3->reject);
    assert_int_equal(cl_count(&c, PRAFT_MSG_VOTE_RESP, 2, 1), 2);
    assert_int_equal(c.t[2].st.hs.vote, 1);
    cl_free(&c);
}

/* §5.1 Figure 2: the vote is on stable storage before the grant is sent. */
static void vote_is_durable_before_the_grant_is_sent(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, plain);
    praft_msg v = {.type = PRAFT_MSG_VOTE, .from = 1, .term = 2, .last_index = 1, .last_term = 1};
    assert_int_equal(cl_step(&c, 2, &v), 0);
    praft_ready rd;
    assert_int_equal(praft_ready_get(c.t[2].n, &rd), 0);
    assert_true(rd.has_hard_state);
    assert_int_equal(rd.hard_state.term, 2);
    assert_int_equal(rd.hard_state.vote, 1);
    assert_int_equal(rd.n_send_now, 0);
    assert_int_equal(rd.n_send_after_persist, 1);
    assert_int_equal(rd.send_after_persist[0].type, PRAFT_MSG_VOTE_RESP);
    assert_false(rd.send_after_persist[0].reject);
    /* no second ready while this one is outstanding */
    praft_ready rd2;
    assert_int_equal(praft_ready_get(c.t[2].n, &rd2), PT_EBUSY);
    assert_false(praft_has_ready(c.t[2].n));
    assert_int_equal(praft_advance(c.t[2].n, &rd), 0);
    assert_int_equal(praft_advance(c.t[2].n, &rd), PT_EINVAL);
    /* the candidate's own term bump and vote are durable before its requests leave */
    for (int i = 0; i < 30 && cl_status(&c, 3)->role != PRAFT_CANDIDATE; i++) {
        cl_tick(&c, 3);
    }
    assert_int_equal(praft_ready_get(c.t[3].n, &rd), 0);
    assert_true(rd.has_hard_state);
    assert_int_equal(rd.hard_state.vote, 3);
    assert_int_equal(rd.n_send_now, 0);
    assert_int_equal(rd.n_send_after_persist, 2);
    assert_int_equal(rd.send_after_persist[0].type, PRAFT_MSG_VOTE);
    assert_int_equal(praft_advance(c.t[3].n, &rd), 0);
    cl_free(&c);
}

/* A single voter elects itself and commits its no-op once it is durable. */
static void single_voter_elects_itself(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 1, 0, NULL);
    for (int i = 0; i < 30 && cl_status(&c, 1)->role != PRAFT_LEADER; i++) {
        cl_tick(&c, 1);
    }
    assert_int_equal(cl_status(&c, 1)->role, PRAFT_LEADER);
    assert_int_equal(cl_status(&c, 1)->commit, 1);
    cl_settle(&c);
    assert_int_equal(cl_status(&c, 1)->commit, 2);
    assert_int_equal(c.t[1].applied, 2);
    cl_free(&c);
}

/* Learners and nodes without a configuration never campaign; learners still answer votes. */
static void learners_and_blank_nodes_never_campaign(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 2, 1, NULL);
    cl_add_blank(&c, 5, NULL);
    for (int i = 0; i < 100; i++) {
        cl_tick(&c, 3);
        cl_tick(&c, 5);
    }
    assert_int_equal(cl_status(&c, 3)->role, PRAFT_LEARNER);
    assert_int_equal(cl_status(&c, 3)->counters.prevotes_started, 0);
    assert_int_equal(cl_status(&c, 5)->role, PRAFT_FOLLOWER);
    assert_int_equal(cl_status(&c, 5)->counters.prevotes_started, 0);
    assert_false(praft_has_ready(c.t[3].n) && cl_ready(&c, 3) && c.nq > 0);
    /* A learner still answers vote requests on their merits: it may already be a voter in
     * the candidate's configuration without knowing it (thesis §4.2.3), and a candidate only
     * counts the voters of its own configuration. */
    praft_msg v = {.type = PRAFT_MSG_VOTE, .from = 1, .term = 2, .last_index = 1, .last_term = 1};
    assert_int_equal(cl_step(&c, 3, &v), 0);
    cl_ready(&c, 3);
    praft_msg *r = cl_find(&c, PRAFT_MSG_VOTE_RESP, 3, 1);
    assert_non_null(r);
    assert_false(r->reject);
    cl_free(&c);
}

/* thesis §4.2.3: a vote request is answered on its merits even from a server outside the
 * receiver's configuration, which may be stale (the sender may have been added since); the
 * sender counts the answer only if the receiver is a voter of its own configuration. (That a
 * removed server still cannot disrupt the cluster is tested in test_votes.c.) */
static void vote_request_from_non_member_is_answered_on_merit(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, plain);
    praft_msg v = {.type = PRAFT_MSG_VOTE, .from = 7, .term = 9, .last_index = 5, .last_term = 5};
    assert_int_equal(cl_step(&c, 2, &v), 0);
    cl_ready(&c, 2);
    praft_msg *r = cl_find(&c, PRAFT_MSG_VOTE_RESP, 2, 7);
    assert_non_null(r);
    assert_false(r->reject);
    assert_int_equal(c.t[2].st.hs.vote, 7);
    /* ...and refused on its merits too: a stale log, or a vote already cast this term. */
    cl_clear_queue(&c);
    v.from = 8;
    assert_int_equal(cl_step(&c, 2, &v), 0);
    v.term = 10;
    v.last_index = 0;
    v.last_term = 0;
    assert_int_equal(cl_step(&c, 2, &v), 0);
    cl_ready(&c, 2);
    assert_int_equal(cl_count(&c, PRAFT_MSG_VOTE_RESP, 2, 8), 2);
    for (size_t i = 0; i < c.nq; i++) {
        assert_true(c.q[i].m.reject);
    }
    assert_int_equal(c.t[2].st.hs.term, 10);
    assert_int_equal(c.t[2].st.hs.vote, 0);
    cl_free(&c);
}

/* §5.2: a candidate that learns of a leader of its term becomes its follower; one that loses
 * a majority returns to follower. */
static void candidate_steps_down_for_leader_of_its_term(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, plain);
    for (int i = 0; i < 30 && cl_status(&c, 2)->role != PRAFT_CANDIDATE; i++) {
        cl_tick(&c, 2);
    }
    uint64_t term = cl_status(&c, 2)->term;
    praft_msg hb = {.type = PRAFT_MSG_HEARTBEAT, .from = 3, .term = term, .commit = 1};
    assert_int_equal(cl_step(&c, 2, &hb), 0);
    assert_int_equal(cl_status(&c, 2)->role, PRAFT_FOLLOWER);
    assert_int_equal(cl_status(&c, 2)->leader, 3);
    /* a candidate rejected by a majority gives up */
    for (int i = 0; i < 40 && cl_status(&c, 1)->role != PRAFT_CANDIDATE; i++) {
        cl_tick(&c, 1);
    }
    term = cl_status(&c, 1)->term;
    praft_msg no = {.type = PRAFT_MSG_VOTE_RESP, .from = 2, .term = term, .reject = true};
    assert_int_equal(cl_step(&c, 1, &no), 0);
    assert_int_equal(cl_status(&c, 1)->role, PRAFT_CANDIDATE);
    no.from = 3;
    assert_int_equal(cl_step(&c, 1, &no), 0);
    assert_int_equal(cl_status(&c, 1)->role, PRAFT_FOLLOWER);
    cl_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(election_elects_one_leader),
        cmocka_unit_test(election_timeout_is_randomized_in_T_2T_from_seed),
        cmocka_unit_test(vote_denied_to_candidate_with_stale_log),
        cmocka_unit_test(one_vote_per_term),
        cmocka_unit_test(vote_is_durable_before_the_grant_is_sent),
        cmocka_unit_test(single_voter_elects_itself),
        cmocka_unit_test(learners_and_blank_nodes_never_campaign),
        cmocka_unit_test(vote_request_from_non_member_is_answered_on_merit),
        cmocka_unit_test(candidate_steps_down_for_leader_of_its_term),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
