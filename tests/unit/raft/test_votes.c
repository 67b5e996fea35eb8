/* Votes across configurations. Thesis §4.2.3: servers answer RequestVote without consulting
 * their configurations, because a server's configuration may be stale (a promotion it has not
 * received yet); a candidate counts only the voters of its own configuration (thesis §4.3),
 * so a learner's or a stranger's vote never counts. Disruption by removed servers is handled
 * by pre-vote (thesis §9.6) and leader stickiness with check-quorum (thesis §4.2.3, §6.2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

static int change(cluster *c, uint64_t leader, uint32_t type, uint64_t id)
{
    praft_change ch;
    memset(&ch, 0, sizeof(ch));
    ch.type = type;
    ch.id = id;
    strcpy(ch.address, "127.0.0.1:9999");
    return praft_change_membership(c->t[leader].n, &ch, NULL);
}

static void run(cluster *c, uint64_t leader, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        cl_tick(c, leader);
        cl_settle(c);
    }
}

static uint8_t role_in_own_config(cluster *c, uint64_t id)
{
    praft_config cfg = cl_status(c, id)->config;
    const praft_member *m = praft_config_find(&cfg, id);
    return m != NULL ? m->role : PRAFT_ROLE_NONE;
}

/* Ticks every live node and delivers until some node leads; returns it (0 if none). */
static uint64_t elect_any(cluster *c, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        cl_tick_all(c);
        cl_settle(c);
        uint64_t l = cl_leader(c);
        if (l != 0) {
            return l;
        }
    }
    return 0;
}

/*
 * Voters {1,2,3} and learner 4; leader 1 promotes 4 while 4 is cut off, so C_old,new and
 * C_new = {1,2,3,4} commit with {1,2,3} and 4 still believes it is a learner. Then 1 crashes:
 * C_new needs 3 of {2,3,4}, so the new leader needs 4's vote.
 */
static void promote_while_cut_off(cluster *c, uint64_t promoted, uint64_t cut)
{
    cl_elect(c, 1);
    run(c, 1, 2);
    assert_int_equal(change(c, 1, PRAFT_CHANGE_ADD_VOTER, promoted), 0);
    cl_isolate(c, cut);
    run(c, 1, 3);
    praft_status *s = cl_status(c, 1);
    assert_false(s->config.joint);
    assert_int_equal(s->commit, s->last_index); /* C_new committed without @cut */
    assert_int_equal(s->pending_config_index, 0);
}

/* thesis §4.2.3 (etcd: learners must vote, they may have been promoted without knowing): a
 * learner whose promotion has not reached it still grants a vote on its merits, and that vote
 * lets the new configuration elect a leader. */
static void unaware_promoted_learner_votes_for_new_configuration(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 1, NULL);
    promote_while_cut_off(&c, 4, 4);
    assert_int_equal(cl_status(&c, 4)->role, PRAFT_LEARNER);
    assert_int_equal(role_in_own_config(&c, 4), PRAFT_ROLE_LEARNER);
    cl_crash(&c, 1);
    cl_heal(&c);
    uint64_t l = elect_any(&c, 100);
    assert_true(l == 2 || l == 3);
    /* 4 voted for the winner: without its vote {2,3} is no majority of {1,2,3,4}. */
    assert_int_equal(cl_status(&c, 4)->vote, l);
    assert_int_equal(cl_status(&c, 4)->term, cl_status(&c, l)->term);
    cl_propose(&c, l, "after");
    cl_settle(&c);
    assert_int_equal(c.t[4].applied, c.t[l].applied);
    assert_int_equal(cl_status(&c, 4)->role, PRAFT_FOLLOWER); /* it knows now */
    cl_free(&c);
}

/* thesis §4.2.3, §4.3: a candidate counts only the voters of its own configuration; grants
 * from learners or from servers it does not know never make it leader. */
static void learner_vote_never_counts(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 2, NULL);
    /* 1 hears only from the learners 4 and 5, who both grant everything it asks. */
    cl_isolate(&c, 2);
    cl_isolate(&c, 3);
    for (int i = 0; i < 200; i++) {
        cl_tick(&c, 1);
        cl_tick(&c, 4);
        cl_tick(&c, 5);
        cl_settle(&c);
    }
    praft_status *s = cl_status(&c, 1);
    assert_true(s->counters.prevotes_started >= 5);
    assert_int_equal(s->counters.elections_started, 0); /* pre-vote never won */
    assert_int_equal(s->counters.leader_elected, 0);
    cl_free(&c);

    /* Real votes, without pre-vote: the learners' grants are not counted. */
    cl_init(&c, 3, 2, NULL);
    for (int i = 1; i <= 5; i++) {
        c.t[i].o.disable_pre_vote = true;
        c.t[i].o.disable_check_quorum = true;
        cl_crash(&c, (uint64_t)i);
        cl_restart(&c, (uint64_t)i);
    }
    for (int i = 0; i < 30 && cl_status(&c, 1)->role != PRAFT_CANDIDATE; i++) {
        cl_tick(&c, 1);
    }
    assert_int_equal(cl_status(&c, 1)->role, PRAFT_CANDIDATE);
    cl_ready(&c, 1);
    assert_int_equal(cl_count(&c, PRAFT_MSG_VOTE, 1, 0), 2); /* asks the voters only */
    assert_int_equal(cl_count(&c, PRAFT_MSG_VOTE, 1, 4), 0);
    cl_clear_queue(&c);
    uint64_t term = cl_status(&c, 1)->term;
    const uint64_t non_voters[] = {4, 5, 7, 8};
    for (size_t i = 0; i < sizeof(non_voters) / sizeof(non_voters[0]); i++) {
        praft_msg g = {.type = PRAFT_MSG_VOTE_RESP, .from = non_voters[i], .term = term};
        assert_int_equal(cl_step(&c, 1, &g), 0);
        assert_int_equal(cl_status(&c, 1)->role, PRAFT_CANDIDATE);
    }
    /* ...and a voter's rejection still counts as one: 1 (yes), 2 (no) is still open. */
    praft_msg no = {.type = PRAFT_MSG_VOTE_RESP, .from = 2, .term = term, .reject = true};
    assert_int_equal(cl_step(&c, 1, &no), 0);
    assert_int_equal(cl_status(&c, 1)->role, PRAFT_CANDIDATE);
    praft_msg yes = {.type = PRAFT_MSG_VOTE_RESP, .from = 3, .term = term};
    assert_int_equal(cl_step(&c, 1, &yes), 0);
    assert_int_equal(cl_status(&c, 1)->role, PRAFT_LEADER);
    cl_free(&c);
}

/*
 * thesis §4.2.3: a server whose configuration is stale must not refuse a legitimate candidate
 * because it does not see it as a voter. Voters {1,2,3}, learner 4; 3 is cut off while 1
 * promotes 4, so 3 still sees 4 as a learner. 1 then appends an entry that only 4 receives and
 * crashes. C_new = {1,2,3,4} needs 3 of {2,3,4}; 4 alone has the most up-to-date log, so 4 is
 * the only possible leader and needs 3's vote. Refusing it because "4 is a learner" in 3's
 * stale view would leave the cluster without a leader forever.
 */
static void stale_configuration_does_not_refuse_promoted_candidate(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 1, NULL);
    promote_while_cut_off(&c, 4, 3);
    assert_int_equal(role_in_own_config(&c, 3), PRAFT_ROLE_VOTER);
    praft_config stale = cl_status(&c, 3)->config;
    assert_int_equal(praft_config_find(&stale, 4)->role, PRAFT_ROLE_LEARNER);
    cl_isolate(&c, 2);
    cl_propose(&c, 1, "only 4 has it");
    cl_settle(&c);
    assert_int_equal(cl_status(&c, 4)->last_index, cl_status(&c, 1)->last_index);
    assert_true(cl_status(&c, 2)->last_index < cl_status(&c, 4)->last_index);
    cl_crash(&c, 1);
    cl_heal(&c);
    uint64_t l = elect_any(&c, 200);
    assert_int_equal(l, 4);
    assert_int_equal(cl_status(&c, 3)->vote, 4);
    cl_propose(&c, 4, "after");
    cl_settle(&c);
    assert_int_equal(c.t[3].applied, c.t[4].applied);
    assert_int_equal(c.t[2].applied, c.t[4].applied);
    assert_int_equal(cl_status(&c, 3)->config.n_members, 4);
    cl_free(&c);
}

/* thesis §4.2.3, §6.2: answering votes does not exempt a learner from leader stickiness:
 * while it hears from a live leader it ignores (pre-)vote requests, as a voter does, unless a
 * leadership transfer asks for them (thesis §3.10). */
static void learner_with_live_leader_ignores_votes(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 1, NULL);
    cl_elect(&c, 1);
    run(&c, 1, 1);
    assert_int_equal(cl_status(&c, 4)->leader, 1);
    praft_msg pv = {
        .type = PRAFT_MSG_PREVOTE, .from = 3, .term = 9, .last_index = 99, .last_term = 9};
    praft_msg v = pv;
    v.type = PRAFT_MSG_VOTE;
    assert_int_equal(cl_step(&c, 4, &pv), 0);
    assert_int_equal(cl_step(&c, 4, &v), 0);
    cl_ready(&c, 4);
    assert_int_equal(cl_count(&c, PRAFT_MSG_PREVOTE_RESP, 4, 3), 0);
    assert_int_equal(cl_count(&c, PRAFT_MSG_VOTE_RESP, 4, 3), 0);
    assert_int_equal(cl_status(&c, 4)->term, 2);
    assert_int_equal(cl_status(&c, 4)->leader, 1);
    v.transfer = true;
    assert_int_equal(cl_step(&c, 4, &v), 0);
    cl_ready(&c, 4);
    praft_msg *r = cl_find(&c, PRAFT_MSG_VOTE_RESP, 4, 3);
    assert_non_null(r);
    assert_false(r->reject);
    assert_int_equal(cl_status(&c, 4)->term, 9);
    cl_free(&c);
}

/* thesis §4.2.3, §6.4.1: stickiness counts from when a follower last heard its leader, not from
 * its current term. A rejected pre-vote answer of a later term, arriving late, moves the
 * follower to that term with no leader; a vote it granted in that term within an election
 * timeout of the heartbeat would break the promise the leader's lease counts on. */
static void a_term_moved_without_a_leader_keeps_stickiness(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    run(&c, 1, 1);
    assert_int_equal(cl_status(&c, 2)->leader, 1);
    praft_msg late = {
        .type = PRAFT_MSG_PREVOTE_RESP, .from = 3, .to = 2, .term = 7, .reject = true};
    assert_int_equal(cl_step(&c, 2, &late), 0);
    cl_ready(&c, 2);
    assert_int_equal(cl_status(&c, 2)->term, 7);
    assert_int_equal(cl_status(&c, 2)->leader, PRAFT_NONE);
    praft_msg v = {
        .type = PRAFT_MSG_VOTE, .from = 3, .to = 2, .term = 7, .last_index = 99, .last_term = 7};
    assert_int_equal(cl_step(&c, 2, &v), 0);
    cl_ready(&c, 2);
    assert_int_equal(cl_count(&c, PRAFT_MSG_VOTE_RESP, 2, 3), 0);
    assert_int_equal(cl_status(&c, 2)->vote, PRAFT_NONE);
    /* An election timeout after the heartbeat, the campaign is heard. */
    for (uint32_t i = 0; i < 10; i++) {
        cl_tick(&c, 2);
    }
    assert_int_equal(cl_step(&c, 2, &v), 0);
    cl_ready(&c, 2);
    praft_msg *r = cl_find(&c, PRAFT_MSG_VOTE_RESP, 2, 3);
    assert_non_null(r);
    assert_false(r->reject);
    cl_free(&c);
}

typedef struct disrupt_case {
    const char *name;
    bool pre_vote, check_quorum;
} disrupt_case;

static const disrupt_case *cur_case;

static void case_opts(praft_options *o)
{
    o->disable_pre_vote = !cur_case->pre_vote;
    o->disable_check_quorum = !cur_case->check_quorum;
}

/* thesis §4.2.3, §9.6 (pitfalls: removed servers): a removed server that never learns of its
 * removal keeps campaigning, but with pre-vote or check-quorum on it cannot unseat the leader
 * nor raise the term of the cluster, whether it asks for pre-votes or real votes. */
static void removed_server_cannot_disrupt(void **state)
{
    (void)state;
    static const disrupt_case cases[] = {
        {"pre-vote and check-quorum", true, true},
        {"pre-vote only", true, false},
        {"check-quorum only", false, true},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        cur_case = &cases[k];
        cluster c;
        cl_init(&c, 3, 0, case_opts);
        cl_elect(&c, 1);
        run(&c, 1, 1);
        assert_int_equal(change(&c, 1, PRAFT_CHANGE_REMOVE, 3), 0);
        run(&c, 1, 2);
        assert_null(praft_config_find(&cl_status(&c, 1)->config, 3));
        /* 3 never learns C_new: in its view it is still a voter of C_old,new. */
        assert_true(cl_status(&c, 3)->config.joint);
        uint64_t term = cl_status(&c, 1)->term;
        for (int i = 0; i < 100; i++) {
            cl_tick_all(&c);
            cl_settle(&c);
        }
        praft_status *s3 = cl_status(&c, 3);
        if (s3->counters.prevotes_started + s3->counters.elections_started == 0) {
            fail_msg("%s: the removed server never campaigned", cur_case->name);
        }
        if (cl_leader(&c) != 1 || cl_status(&c, 1)->term != term ||
            cl_status(&c, 2)->term != term || cl_status(&c, 2)->leader != 1) {
            fail_msg("%s: the cluster was disrupted", cur_case->name);
        }
        cl_free(&c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unaware_promoted_learner_votes_for_new_configuration),
        cmocka_unit_test(learner_vote_never_counts),
        cmocka_unit_test(stale_configuration_does_not_refuse_promoted_candidate),
        cmocka_unit_test(learner_with_live_leader_ignores_votes),
        cmocka_unit_test(removed_server_cannot_disrupt),
        cmocka_unit_test(a_term_moved_without_a_leader_keeps_stickiness),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
