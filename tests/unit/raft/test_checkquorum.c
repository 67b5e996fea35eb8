/* Check-quorum (thesis §6.2) and leader stickiness (thesis §4.2.3), and how a stale leader
 * learns of a newer term. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

/* Ticks everyone until a leader other than @old is elected; returns it. */
static uint64_t elect_new_leader(cluster *c, uint64_t old)
{
    for (int i = 0; i < 100; i++) {
        cl_tick_all(c);
        cl_settle(c);
        uint64_t l = cl_leader(c);
        if (l != 0 && l != old) {
            return l;
        }
    }
    fail_msg("no new leader");
    return 0;
}

static void no_prevote(praft_options *o)
{
    o->disable_pre_vote = true;
}

/* thesis §6.2: a leader that hears from no majority for an election timeout steps down. */
static void leader_without_majority_steps_down(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    cl_isolate(&c, 1);
    int ticks = 0;
    while (cl_status(&c, 1)->role == PRAFT_LEADER && ticks < 100) {
        cl_tick(&c, 1);
        ticks++;
    }
    assert_int_equal(cl_status(&c, 1)->role, PRAFT_FOLLOWER);
    assert_true(ticks <= 2 * 10);
    assert_int_equal(cl_status(&c, 1)->leader, 0);
    cl_free(&c);
}

/* ...while a leader that hears from a majority stays. */
static void leader_with_majority_stays(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    cl_isolate(&c, 3);
    for (int i = 0; i < 50; i++) {
        cl_tick(&c, 1);
        cl_tick(&c, 2);
        cl_settle(&c);
    }
    assert_int_equal(cl_status(&c, 1)->role, PRAFT_LEADER);
    cl_free(&c);
}

/* thesis §4.2.3: a follower that hears from a live leader ignores vote requests... */
static void follower_with_live_leader_ignores_votes(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, no_prevote);
    cl_elect(&c, 1);
    praft_msg v = {.type = PRAFT_MSG_VOTE, .from = 3, .term = 9, .last_index = 9, .last_term = 9};
    assert_int_equal(cl_step(&c, 2, &v), 0);
    assert_int_equal(cl_status(&c, 2)->term, 2);
    assert_int_equal(cl_status(&c, 2)->leader, 1);
    cl_ready(&c, 2);
    assert_null(cl_find(&c, PRAFT_MSG_VOTE_RESP, 2, 3));
    /* ...unless the request comes from a leadership transfer (pitfalls: stickiness yields) */
    v.transfer = true;
    assert_int_equal(cl_step(&c, 2, &v), 0);
    assert_int_equal(cl_status(&c, 2)->term, 9);
    cl_ready(&c, 2);
    praft_msg *r = cl_find(&c, PRAFT_MSG_VOTE_RESP, 2, 3);
    assert_non_null(r);
    assert_false(r->reject);
    cl_free(&c);
}

/* A stale leader that sends with a lower term is answered with the current term, so it steps
 * down (with pre-vote and check-quorum, elections alone would not tell it). */
static void stale_leader_learns_the_new_term(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    cl_isolate(&c, 1);
    c.t[1].up = false; /* frozen: neither ticked nor stepped */
    uint64_t l = elect_new_leader(&c, 1);
    c.t[1].up = true;
    assert_int_equal(cl_status(&c, 1)->role, PRAFT_LEADER); /* still believes */
    cl_heal(&c);
    cl_tick(&c, 1); /* its heartbeat reaches the others */
    cl_settle(&c);
    assert_int_equal(cl_status(&c, 1)->role, PRAFT_FOLLOWER);
    assert_int_equal(cl_status(&c, 1)->term, cl_status(&c, l)->term);
    assert_true(cl_status(&c, l)->counters.msgs_dropped_stale >= 1);
    cl_free(&c);
}

/* §5.2 (pitfalls): only a valid message from the current leader resets the election timer;
 * stale ones do not keep a follower from campaigning. */
static void stale_messages_do_not_reset_election_timer(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    cl_isolate(&c, 1);
    c.t[1].up = false;
    uint64_t l = elect_new_leader(&c, 1);
    uint64_t f = l == 2 ? 3 : 2;
    uint64_t term = cl_status(&c, f)->term;
    int ticks = 0;
    cl_isolate(&c, l);
    while (cl_status(&c, f)->role == PRAFT_FOLLOWER && ticks < 100) {
        praft_msg hb = {.type = PRAFT_MSG_HEARTBEAT, .from = 1, .term = 2};
        assert_int_equal(cl_step(&c, f, &hb), 0);
        cl_tick(&c, f);
        ticks++;
    }
    assert_true(ticks < 20);
    assert_int_equal(cl_status(&c, f)->term, term);
    c.t[1].up = true;
    cl_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(leader_without_majority_steps_down),
        cmocka_unit_test(leader_with_majority_stays),
        cmocka_unit_test(follower_with_live_leader_ignores_votes),
        cmocka_unit_test(stale_leader_learns_the_new_term),
        cmocka_unit_test(stale_messages_do_not_reset_election_timer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
