/* Membership changes by joint consensus (§6, thesis §4.3) with learners: one change at a time,
 * configurations in effect when appended (thesis §4.1), a removed leader stepping down. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"
#include "raft/core.h"

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

static const praft_member *member(cluster *c, uint64_t on, uint64_t id)
{
    static praft_config cfg;
    cfg = cl_status(c, on)->config;
    return praft_config_find(&cfg, id);
}

/* thesis §4.2.1: a learner receives the log and never counts toward any quorum. */
static void learner_is_added_and_catches_up(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    cl_add_blank(&c, 4, NULL);
    assert_int_equal(change(&c, 1, PRAFT_CHANGE_ADD_LEARNER, 4), 0);
    assert_false(cl_status(&c, 1)->config.joint); /* a learner needs no joint phase */
    cl_propose(&c, 1, "v");
    run(&c, 1, 3);
    assert_int_equal(cl_status(&c, 4)->role, PRAFT_LEARNER);
    assert_int_equal(c.t[4].applied, c.t[1].applied);
    assert_int_equal(c.t[4].app_sum, c.t[1].app_sum);
    assert_int_equal(member(&c, 4, 4)->role, PRAFT_ROLE_LEARNER);
    /* it never campaigns, and commits do not wait for it */
    cl_isolate(&c, 4);
    for (int i = 0; i < 50; i++) {
        cl_tick(&c, 4);
    }
    assert_int_equal(cl_status(&c, 4)->counters.prevotes_started, 0);
    cl_propose(&c, 1, "w");
    cl_settle(&c);
    assert_int_equal(cl_status(&c, 1)->commit, c.t[1].applied);
    assert_int_equal(c.t[2].applied, c.t[1].applied);
    cl_free(&c);
}

/* thesis §4.3: promoting a learner goes through C_old,new, which takes effect when appended,
 * and the leader moves on to C_new by itself once C_old,new is committed. */
static void learner_promoted_through_joint_consensus(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 1, NULL);
    cl_elect(&c, 1);
    run(&c, 1, 2);
    uint64_t last = cl_status(&c, 1)->last_index;
    uint64_t idx = 0;
    praft_change ch = {.type = PRAFT_CHANGE_ADD_VOTER, .id = 4};
    assert_int_equal(praft_change_membership(c.t[1].n, &ch, &idx), 0);
    assert_int_equal(idx, last + 1);
    praft_status *s = cl_status(&c, 1);
    assert_true(s->config.joint);
    assert_int_equal(s->pending_config_index, idx);
    assert_int_equal(change(&c, 1, PRAFT_CHANGE_ADD_LEARNER, 5), PT_ECONFCHANGE);
    run(&c, 1, 2);
    s = cl_status(&c, 1);
    assert_false(s->config.joint);
    assert_int_equal(s->last_index, idx + 1); /* C_new appended automatically */
    assert_int_equal(s->commit, idx + 1);
    assert_int_equal(s->pending_config_index, 0);
    assert_int_equal(member(&c, 4, 4)->role, PRAFT_ROLE_VOTER);
    assert_int_equal(cl_status(&c, 4)->role, PRAFT_FOLLOWER);
    /* the new voter counts: with 1 and 2 away, 3 and 4 are not a majority of 4 */
    cl_isolate(&c, 2);
    cl_propose(&c, 1, "x");
    cl_settle(&c);
    assert_int_equal(cl_status(&c, 1)->commit, idx + 2);
    cl_free(&c);
}

/* thesis §4.2.1: a learner that has not caught up is not promoted. */
static void lagging_learner_is_not_promoted(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 1, NULL);
    cl_elect(&c, 1);
    cl_isolate(&c, 4);
    cl_propose(&c, 1, "x");
    cl_settle(&c);
    assert_int_equal(change(&c, 1, PRAFT_CHANGE_ADD_VOTER, 4), PT_ENOTREADY);
    cl_free(&c);
}

/* One change at a time, and only after the leader committed an entry of its own term. */
static void one_change_at_a_time_after_own_term_commit(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 1, 0, NULL);
    for (int i = 0; i < 30 && cl_status(&c, 1)->role != PRAFT_LEADER; i++) {
        cl_tick(&c, 1);
    }
    assert_int_equal(change(&c, 1, PRAFT_CHANGE_ADD_LEARNER, 2), PT_ENOTREADY);
    cl_settle(&c);
    assert_int_equal(change(&c, 1, PRAFT_CHANGE_ADD_LEARNER, 2), 0);
    assert_int_equal(change(&c, 1, PRAFT_CHANGE_ADD_LEARNER, 3), PT_ECONFCHANGE);
    cl_settle(&c);
    assert_int_equal(change(&c, 1, PRAFT_CHANGE_ADD_LEARNER, 3), 0);
    cl_free(&c);
}

/* Invalid requests are refused with clear codes. */
static void invalid_changes_are_refused(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 1, 0, NULL);
    for (int i = 0; i < 30 && cl_status(&c, 1)->role != PRAFT_LEADER; i++) {
        cl_tick(&c, 1);
    }
    cl_settle(&c);
    assert_int_equal(change(&c, 1, PRAFT_CHANGE_REMOVE, 9), PT_EINVAL);
    assert_int_equal(change(&c, 1, PRAFT_CHANGE_ADD_VOTER, 1), PT_EINVAL);
    assert_int_equal(change(&c, 1, PRAFT_CHANGE_ADD_LEARNER, 1), PT_EINVAL);
    assert_int_equal(change(&c, 1, PRAFT_CHANGE_REMOVE, 1), PT_EINVAL); /* no voter left */
    assert_int_equal(change(&c, 1, 77, 2), PT_EINVAL);
    assert_int_equal(praft_change_membership(c.t[1].n, NULL, NULL), PT_EINVAL);
    cl_free(&c);
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    assert_int_equal(change(&c, 2, PRAFT_CHANGE_ADD_LEARNER, 4), PT_ENOTLEADER);
    cl_free(&c);
}

/* §6: removing a follower; the remaining voters form the new majority. */
static void follower_is_removed(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    assert_int_equal(change(&c, 1, PRAFT_CHANGE_REMOVE, 3), 0);
    run(&c, 1, 2);
    praft_status *s = cl_status(&c, 1);
    assert_false(s->config.joint);
    assert_int_equal(s->config.n_members, 2);
    assert_int_equal(s->n_progress, 1);
    assert_null(member(&c, 2, 3));
    /* Node 3 never learns C_new (nobody replicates to it), so it may campaign, but as a
     * non-member it cannot disrupt the cluster: its log lacks C_new, and pre-vote and leader
     * stickiness keep it from raising the term (thesis §9.6, §4.2.3; test_votes.c). */
    for (int i = 0; i < 50; i++) {
        cl_tick_all(&c);
        cl_settle(&c);
    }
    assert_int_equal(cl_leader(&c), 1);
    assert_int_equal(cl_status(&c, 1)->term, 2);
    assert_int_equal(cl_status(&c, 2)->term, 2);
    cl_free(&c);
}

/* §6: a removed leader keeps leading without counting itself until C_new commits, then steps
 * down; the others elect a new leader. */
static void removed_leader_steps_down_after_commit(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    assert_int_equal(change(&c, 1, PRAFT_CHANGE_REMOVE, 1), 0);
    assert_int_equal(cl_status(&c, 1)->role, PRAFT_LEADER);
    run(&c, 1, 1);
    praft_status *s = cl_status(&c, 1);
    assert_int_not_equal(s->role, PRAFT_LEADER);
    assert_int_equal(s->commit, 4); /* C_old,new at 3, C_new at 4 */
    assert_null(praft_config_find(&s->config, 1));
    uint64_t l = 0;
    for (int i = 0; i < 60 && l == 0; i++) {
        cl_tick(&c, 2);
        cl_tick(&c, 3);
        cl_settle(&c);
        l = cl_leader(&c);
    }
    assert_true(l == 2 || l == 3);
    cl_propose(&c, l, "after");
    cl_settle(&c);
    assert_int_equal(c.t[2].applied, 6);
    cl_free(&c);
}

/* thesis §4.1: a configuration takes effect when appended, and a node falls back to the
 * previous one when the entry is cut off as a conflicting suffix. */
static void config_in_effect_when_appended_reverts_on_truncation(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    praft_config cfg = cl_status(&c, 2)->config;
    praft_member *m = &cfg.members[cfg.n_members++];
    memset(m, 0, sizeof(*m));
    m->id = 4;
    m->role = PRAFT_ROLE_LEARNER;
    praft_entry e = {.index = 2, .term = 2, .type = PRAFT_ENTRY_CONFIG};
    size_t len;
    assert_int_equal(praft_config_encode(&cfg, &e.data, &len), 0);
    e.len = (uint32_t)len;
    praft_msg a = {.type = PRAFT_MSG_APPEND,
                   .from = 1,
                   .term = 2,
                   .prev_index = 1,
                   .prev_term = 1,
                   .commit = 1,
                   .entries = &e,
                   .n_entries = 1};
    assert_int_equal(cl_step(&c, 2, &a), 0);
    assert_int_equal(cl_status(&c, 2)->config.n_members, 4);
    praft_entry noop = {.index = 2, .term = 3, .type = PRAFT_ENTRY_NOOP};
    praft_msg b = {.type = PRAFT_MSG_APPEND,
                   .from = 3,
                   .term = 3,
                   .prev_index = 1,
                   .prev_term = 1,
                   .commit = 1,
                   .entries = &noop,
                   .n_entries = 1};
    assert_int_equal(cl_step(&c, 2, &b), 0);
    assert_int_equal(cl_status(&c, 2)->config.n_members, 3);
    assert_int_equal(cl_status(&c, 2)->last_index, 2);
    free(e.data);
    cl_settle(&c);
    cl_free(&c);
}

/* A brand-new server added as a voter directly goes through the joint phase too. */
static void blank_server_added_as_voter(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    cl_add_blank(&c, 4, NULL);
    assert_int_equal(change(&c, 1, PRAFT_CHANGE_ADD_VOTER, 4), 0);
    run(&c, 1, 3);
    assert_false(cl_status(&c, 1)->config.joint);
    assert_int_equal(member(&c, 4, 4)->role, PRAFT_ROLE_VOTER);
    assert_int_equal(c.t[4].applied, c.t[1].applied);
    assert_int_equal(cl_status(&c, 4)->role, PRAFT_FOLLOWER);
    cl_free(&c);
}

/* thesis §4.3: in C_old,new an entry is committed only with a majority of both C_old and
 * C_new. Here C_old = {1,2,3}, C_new = {1,2,3,4}: {1,2} is a majority of C_old only. */
static void joint_config_needs_both_majorities(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 1, NULL);
    cl_elect(&c, 1);
    run(&c, 1, 2);
    uint64_t idx = 0;
    praft_change ch = {.type = PRAFT_CHANGE_ADD_VOTER, .id = 4};
    cl_isolate(&c, 3);
    cl_isolate(&c, 4);
    assert_int_equal(praft_change_membership(c.t[1].n, &ch, &idx), 0);
    run(&c, 1, 3);
    assert_true(cl_status(&c, 1)->commit < idx);
    assert_true(cl_status(&c, 1)->config.joint);
    cl_heal(&c);
    run(&c, 1, 3);
    assert_false(cl_status(&c, 1)->config.joint);
    assert_int_equal(cl_status(&c, 1)->commit, idx + 1);
    cl_free(&c);
}

typedef struct qcase {
    const char *name;
    bool joint;
    uint8_t role[5], old_role[5]; /* members 1..5 */
    int vote[5];                  /* 1 yes, 0 no, -1 unknown */
    int want;
} qcase;

static int table_vote(void *ctx, uint64_t id)
{
    const qcase *q = ctx;
    return q->vote[id - 1];
}

/* Majorities (§5.2) and joint majorities (thesis §4.3), table-driven; learners never count. */
static void quorum_rules_table(void **state)
{
    (void)state;
    enum { V = PRAFT_ROLE_VOTER, L = PRAFT_ROLE_LEARNER, N = PRAFT_ROLE_NONE };
    const qcase cases[] = {
        {"3 voters, 2 yes", false, {V, V, V, N, N}, {0}, {1, 1, -1, -1, -1}, PR_VOTE_WON},
        {"3 voters, 1 yes 1 no", false, {V, V, V, N, N}, {0}, {1, 0, -1, -1, -1}, PR_VOTE_PENDING},
        {"3 voters, 2 no", false, {V, V, V, N, N}, {0}, {1, 0, 0, -1, -1}, PR_VOTE_LOST},
        {"learners never count", false, {V, V, V, L, L}, {0}, {1, -1, -1, 1, 1}, PR_VOTE_PENDING},
        {"4 voters need 3", false, {V, V, V, V, N}, {0}, {1, 1, -1, -1, -1}, PR_VOTE_PENDING},
        {"joint: old majority only",
         true,
         {V, V, V, V, N},
         {V, V, V, N, N},
         {1, 1, 0, 0, -1},
         PR_VOTE_LOST},
        {"joint: new majority only",
         true,
         {N, V, V, V, N},
         {V, V, V, N, N},
         {-1, -1, 1, 1, 1},
         PR_VOTE_PENDING},
        {"joint: both majorities",
         true,
         {N, V, V, V, N},
         {V, V, V, N, N},
         {1, 1, 1, 1, -1},
         PR_VOTE_WON},
        {"joint: removed leader counts only in old",
         true,
         {N, V, V, N, N},
         {V, V, V, N, N},
         {1, 1, -1, -1, -1},
         PR_VOTE_PENDING},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const qcase *q = &cases[i];
        praft_config cfg;
        memset(&cfg, 0, sizeof(cfg));
        cfg.joint = q->joint;
        for (uint64_t id = 1; id <= 5; id++) {
            if (q->role[id - 1] == N && q->old_role[id - 1] == N) {
                continue;
            }
            praft_member *m = &cfg.members[cfg.n_members++];
            m->id = id;
            m->role = q->role[id - 1];
            m->old_role = q->old_role[id - 1];
        }
        int got = praft__quorum_result(&cfg, table_vote, (void *)q);
        if (got != q->want) {
            fail_msg("%s: got %d, want %d", q->name, got, q->want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(learner_is_added_and_catches_up),
        cmocka_unit_test(learner_promoted_through_joint_consensus),
        cmocka_unit_test(lagging_learner_is_not_promoted),
        cmocka_unit_test(one_change_at_a_time_after_own_term_commit),
        cmocka_unit_test(invalid_changes_are_refused),
        cmocka_unit_test(follower_is_removed),
        cmocka_unit_test(removed_leader_steps_down_after_commit),
        cmocka_unit_test(config_in_effect_when_appended_reverts_on_truncation),
        cmocka_unit_test(blank_server_added_as_voter),
        cmocka_unit_test(joint_config_needs_both_majorities),
        cmocka_unit_test(quorum_rules_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
