/* Leadership transfer (thesis §3.10). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

/* thesis §3.10: an up-to-date target gets TIMEOUT_NOW and wins at once, despite stickiness. */
static void transfer_to_an_up_to_date_follower(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    assert_int_equal(praft_transfer_leadership(c.t[1].n, 2), 0);
    assert_int_equal(cl_status(&c, 1)->transferee, 2);
    cl_settle(&c);
    assert_int_equal(cl_leader(&c), 2);
    assert_int_equal(cl_status(&c, 2)->term, 3);
    assert_int_equal(cl_status(&c, 1)->role, PRAFT_FOLLOWER);
    assert_int_equal(cl_status(&c, 1)->leader, 2);
    cl_free(&c);
}

/* thesis §3.10: the leader first brings the target up to date and refuses proposals meanwhile. */
static void transfer_catches_the_target_up_first(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    cl_isolate(&c, 3);
    for (int i = 0; i < 5; i++) {
        cl_propose(&c, 1, "y");
    }
    cl_settle(&c);
    cl_heal(&c);
    assert_int_equal(praft_transfer_leadership(c.t[1].n, 3), 0);
    assert_int_equal(praft_propose(c.t[1].n, "z", 1, NULL, NULL), PT_ETRANSFER);
    for (int i = 0; i < 5 && cl_leader(&c) != 3; i++) {
        cl_tick(&c, 1);
        cl_settle(&c);
    }
    assert_int_equal(cl_leader(&c), 3);
    assert_int_equal(c.t[3].n_applied, 5);
    cl_free(&c);
}

/* thesis §3.10: without a new leader within an election timeout, the transfer is abandoned. */
static void transfer_gives_up_after_an_election_timeout(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    cl_isolate(&c, 2);
    assert_int_equal(praft_transfer_leadership(c.t[1].n, 2), 0);
    for (int i = 0; i < 10; i++) {
        cl_tick(&c, 1);
        cl_settle(&c);
    }
    assert_int_equal(cl_status(&c, 1)->role, PRAFT_LEADER);
    assert_int_equal(cl_status(&c, 1)->transferee, 0);
    assert_int_equal(praft_propose(c.t[1].n, "z", 1, NULL, NULL), 0);
    cl_free(&c);
}

/* Errors, and the choice of target when none is given. */
static void transfer_errors_and_automatic_target(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 1, NULL);
    cl_elect(&c, 1);
    assert_int_equal(praft_transfer_leadership(c.t[2].n, 3), PT_ENOTLEADER);
    assert_int_equal(praft_transfer_leadership(c.t[1].n, 1), PT_EINVAL);
    assert_int_equal(praft_transfer_leadership(c.t[1].n, 4), PT_EINVAL); /* a learner */
    assert_int_equal(praft_transfer_leadership(c.t[1].n, 9), PT_EINVAL);
    cl_isolate(&c, 2);
    cl_propose(&c, 1, "only 3 has it");
    cl_settle(&c);
    assert_int_equal(praft_transfer_leadership(c.t[1].n, PRAFT_NONE), 0);
    assert_int_equal(cl_status(&c, 1)->transferee, 3);
    assert_int_equal(praft_transfer_leadership(c.t[1].n, 2), PT_ETRANSFER);
    cl_free(&c);
    cl_init(&c, 1, 0, NULL);
    for (int i = 0; i < 30 && cl_status(&c, 1)->role != PRAFT_LEADER; i++) {
        cl_tick(&c, 1);
    }
    assert_int_equal(praft_transfer_leadership(c.t[1].n, PRAFT_NONE), PT_ENOQUORUM);
    cl_free(&c);
}

/* A transfer asked while joint: leaving the joint configuration appends C_new after the target
 * may have caught up; TimeoutNow waits for it, or the target would campaign without C_new,
 * lose to the up-to-date voters, and the transfer would fail (found by the simulator). */
static void transfer_while_joint_waits_for_c_new(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 1, NULL);
    cl_elect(&c, 1);
    cl_settle(&c);
    praft_change ch = {.type = PRAFT_CHANGE_ADD_VOTER, .id = 4};
    uint64_t index = 0;
    assert_int_equal(praft_change_membership(c.t[1].n, &ch, &index), 0);
    assert_true(cl_status(&c, 1)->config.joint);
    assert_int_equal(praft_transfer_leadership(c.t[1].n, 2), 0);
    /* Deliver one message at a time: the target acknowledges C_old,new before it commits. */
    for (int i = 0; i < 200 && cl_leader(&c) != 2; i++) {
        for (uint64_t id = 1; id <= 4; id++) {
            cl_ready(&c, id);
        }
        cl_deliver_all(&c);
    }
    for (int i = 0; i < 5 && cl_leader(&c) != 2; i++) {
        cl_tick(&c, 1);
        cl_settle(&c);
    }
    cl_settle(&c);
    assert_int_equal(cl_leader(&c), 2);
    assert_false(cl_status(&c, 2)->config.joint);
    cl_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(transfer_to_an_up_to_date_follower),
        cmocka_unit_test(transfer_catches_the_target_up_first),
        cmocka_unit_test(transfer_gives_up_after_an_election_timeout),
        cmocka_unit_test(transfer_errors_and_automatic_target),
        cmocka_unit_test(transfer_while_joint_waits_for_c_new),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
