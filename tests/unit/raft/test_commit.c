/* Commitment: the no-op of a new leader (§5.4.2, §8), counting replicas only for entries of the
 * current term (§5.4.2, Figure 8), the leader counting itself only once durable (thesis
 * §10.2.1), a commit index that never goes back, and exactly-once application. */
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

/* §5.4.2, §8: a new leader appends a no-op of its term and commits it. */
static void new_leader_commits_a_noop(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    const praft_entry *e = &c.t[1].st.ents[1];
    assert_int_equal(e->index, 2);
    assert_int_equal(e->type, PRAFT_ENTRY_NOOP);
    assert_int_equal(e->term, 2);
    for (uint64_t i = 1; i <= 3; i++) {
        assert_int_equal(cl_status(&c, i)->commit, 2);
    }
    cl_free(&c);
}

/* thesis §10.2.1: the leader counts itself toward the quorum only once its write is durable. */
static void leader_counts_itself_only_after_advance(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    cl_propose(&c, 1, "x");
    praft_ready rd;
    assert_int_equal(praft_ready_get(c.t[1].n, &rd), 0);
    praft_msg m;
    msg_copy(&m, &rd.send_now[0]); /* the append to one follower only */
    uint64_t to = m.to;
    assert_int_equal(praft_step(c.t[to].n, &m), 0);
    msg_free(&m);
    cl_ready(&c, to); /* its ack is queued */
    cl_deliver_all(&c);
    assert_int_equal(cl_status(&c, 1)->commit, 2); /* one ack, leader not durable yet */
    ms_write(&c.t[1].st, &rd);
    assert_int_equal(praft_advance(c.t[1].n, &rd), 0);
    assert_int_equal(cl_status(&c, 1)->commit, 3);
    cl_free(&c);
}

static int drop_appends_from_1(cluster *c, const praft_msg *m)
{
    (void)c;
    return !(m->type == PRAFT_MSG_APPEND && m->from == 1);
}

/* §5.4.2, Figure 8: an entry of an earlier term stored on a majority is not committed by
 * counting replicas; it becomes committed with an entry of the leader's term. */
static void old_term_entries_not_committed_by_counting(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 5, 0, plain);
    cl_elect(&c, 1);
    cl_isolate(&c, 1);
    cl_propose(&c, 1, "old"); /* index 3, term 2, only on node 1 */
    cl_ready(&c, 1);
    cl_crash(&c, 1);
    cl_restart(&c, 1);
    cl_heal(&c);
    c.filter = drop_appends_from_1;
    for (int i = 0; i < 30 && cl_status(&c, 1)->role != PRAFT_CANDIDATE; i++) {
        cl_tick(&c, 1);
    }
    cl_settle(&c);
    praft_status *s = cl_status(&c, 1);
    assert_int_equal(s->role, PRAFT_LEADER);
    assert_int_equal(s->term, 3);
    assert_int_equal(s->last_index, 4); /* the no-op of term 3 at index 4 */
    /* Two followers say they hold index 3 (term 2): with the leader, a majority of 5. */
    for (uint64_t f = 2; f <= 3; f++) {
        praft_msg r = {.type = PRAFT_MSG_APPEND_RESP, .from = f, .term = 3, .index = 3};
        assert_int_equal(cl_step(&c, 1, &r), 0);
    }
    assert_int_equal(cl_status(&c, 1)->commit, 2);
    for (uint64_t f = 2; f <= 3; f++) {
        praft_msg r = {.type = PRAFT_MSG_APPEND_RESP, .from = f, .term = 3, .index = 4};
        assert_int_equal(cl_step(&c, 1, &r), 0);
    }
    assert_int_equal(cl_status(&c, 1)->commit, 4);
    cl_free(&c);
}

/* The commit index never goes backwards, whatever a (stale) leader message says. */
static void commit_index_never_goes_back(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    cl_propose(&c, 1, "a");
    cl_propose(&c, 1, "b");
    cl_settle(&c);
    assert_int_equal(cl_status(&c, 2)->commit, 4);
    praft_msg hb = {.type = PRAFT_MSG_HEARTBEAT, .from = 1, .term = 2, .commit = 1};
    assert_int_equal(cl_step(&c, 2, &hb), 0);
    praft_msg ap = {.type = PRAFT_MSG_APPEND,
                    .from = 1,
                    .term = 2,
                    .prev_index = 2,
                    .prev_term = 2,
                    .commit = 2};
    assert_int_equal(cl_step(&c, 2, &ap), 0);
    assert_int_equal(cl_status(&c, 2)->commit, 4);
    cl_free(&c);
}

/* Committed entries are handed out once per node lifetime, in order; after a restart they are
 * handed out again from the snapshot (here: the beginning) for the fresh state machine. */
static void committed_entries_handed_out_once_then_replayed_after_restart(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    for (int i = 0; i < 5; i++) {
        cl_propose(&c, 1, "e");
    }
    cl_settle(&c);
    uint64_t sum = c.t[2].app_sum;
    assert_int_equal(c.t[2].n_applied, 5);
    cl_tick(&c, 1);
    cl_settle(&c);
    assert_int_equal(c.t[2].n_applied, 5); /* nothing handed out twice */
    cl_crash(&c, 2);
    cl_restart(&c, 2);
    assert_int_equal(cl_status(&c, 2)->commit, 7); /* the durable commit index */
    cl_settle(&c);
    assert_int_equal(c.t[2].n_applied, 5);
    assert_int_equal(c.t[2].app_sum, sum);
    assert_int_equal(cl_status(&c, 2)->applied, 7);
    cl_free(&c);
}

/* A follower applies entries committed by the leader even when they are still in its own
 * unstable tail (they are durable on a majority). */
static void follower_learns_commit_from_next_append(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    cl_propose(&c, 1, "z");
    cl_settle(&c);
    assert_int_equal(c.t[3].applied, 3);
    assert_int_equal(cl_status(&c, 3)->counters.entries_committed, 2);
    cl_free(&c);
}

/* thesis §10.2.1, §5.3: a follower that cuts a conflicting suffix no longer counts the cut
 * entries as durable. Leading later, it counts itself for an entry only once it wrote it, not
 * because it once wrote another entry at that index. */
static void durable_mark_is_cut_with_the_log(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 5, 0, plain);
    cl_elect(&c, 1); /* term 2, no-op at 2 */
    cl_isolate(&c, 1);
    c.cut[1][2] = false; /* node 2 hears node 1; nobody hears back */
    cl_propose(&c, 1, "a");
    cl_propose(&c, 1, "b");
    cl_propose(&c, 1, "c");
    cl_settle(&c);
    assert_int_equal(cl_status(&c, 2)->last_index, 5); /* 3..5 of term 2, durable on node 2 */
    assert_int_equal(cl_status(&c, 1)->commit, 2);
    c.cut[1][2] = true;
    cl_elect(&c, 3); /* term 3, with the votes of 4 and 5 */
    praft_status *s = cl_status(&c, 2);
    assert_int_equal(s->term, 3);
    assert_int_equal(s->last_index, 3); /* 3..5 cut, node 3's no-op at 3 */
    cl_isolate(&c, 3);
    cl_elect(&c, 2); /* term 4, no-op at 4 */
    assert_int_equal(cl_status(&c, 2)->commit, 4);
    cl_propose(&c, 2, "x"); /* index 5 again, now of term 4 */
    praft_ready rd;
    assert_int_equal(praft_ready_get(c.t[2].n, &rd), 0);
    for (size_t i = 0; i < rd.n_send_now; i++) {
        uint64_t to = rd.send_now[i].to;
        if (rd.send_now[i].type == PRAFT_MSG_APPEND && (to == 4 || to == 5)) {
            praft_msg m;
            msg_copy(&m, &rd.send_now[i]);
            assert_int_equal(praft_step(c.t[to].n, &m), 0);
            msg_free(&m);
            cl_ready(&c, to);
        }
    }
    cl_deliver_all(&c); /* two acks: with a durable leader a majority of 5, but it is not */
    assert_int_equal(cl_status(&c, 2)->commit, 4);
    ms_write(&c.t[2].st, &rd);
    assert_int_equal(praft_advance(c.t[2].n, &rd), 0);
    assert_int_equal(cl_status(&c, 2)->commit, 5);
    cl_free(&c);
}

/* Figure 2, §5.3: a leader's match index for each server starts at 0 in each of its terms; a
 * match learnt in an earlier leadership says nothing about the server's log now. */
static void match_index_starts_at_zero_at_each_election(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, plain);
    cl_elect(&c, 1); /* term 2 */
    cl_propose(&c, 1, "a");
    cl_settle(&c);
    praft_status *s = cl_status(&c, 1);
    assert_int_equal(s->n_progress, 2);
    assert_int_equal(s->progress[0].match, 3);
    cl_elect(&c, 2); /* term 3: node 1 steps down */
    assert_int_equal(cl_status(&c, 1)->role, PRAFT_FOLLOWER);
    c.filter = drop_appends_from_1; /* no answer can teach node 1 anything in term 4 */
    cl_elect(&c, 1);
    s = cl_status(&c, 1);
    assert_int_equal(s->term, 4);
    for (size_t i = 0; i < s->n_progress; i++) {
        assert_int_equal(s->progress[i].match, 0);
    }
    cl_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_leader_commits_a_noop),
        cmocka_unit_test(leader_counts_itself_only_after_advance),
        cmocka_unit_test(old_term_entries_not_committed_by_counting),
        cmocka_unit_test(commit_index_never_goes_back),
        cmocka_unit_test(committed_entries_handed_out_once_then_replayed_after_restart),
        cmocka_unit_test(follower_learns_commit_from_next_append),
        cmocka_unit_test(durable_mark_is_cut_with_the_log),
        cmocka_unit_test(match_index_starts_at_zero_at_each_election),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
