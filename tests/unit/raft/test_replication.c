/* Log replication (§5.3): the consistency check with fast backtracking, batching, byte bounds,
 * the pipelined in-flight window, and the persistence contract of acknowledgements. */
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

static void small_msgs(praft_options *o)
{
    o->max_msg_bytes = 100;
    o->max_inflight_bytes = 100000;
}

static void window4(praft_options *o)
{
    o->max_msg_bytes = 10;
    o->max_inflight_msgs = 4;
}

static void window25b(praft_options *o)
{
    o->max_msg_bytes = 10;
    o->max_inflight_bytes = 25;
}

/* §5.3: entries replicated to a majority are committed and applied everywhere, in order. */
static void replication_commits_and_applies_everywhere(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    for (int i = 0; i < 10; i++) {
        cl_propose(&c, 1, "entry");
    }
    cl_settle(&c);
    for (uint64_t i = 1; i <= 3; i++) {
        assert_int_equal(cl_status(&c, i)->commit, 12);
        assert_int_equal(c.t[i].applied, 12);
        assert_int_equal(c.t[i].n_applied, 10);
        assert_int_equal(c.t[i].app_sum, c.t[1].app_sum);
    }
    cl_free(&c);
}

/* Batching: proposals made between two readies travel in one append per follower. */
static void proposals_are_batched_into_one_append(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    for (int i = 0; i < 50; i++) {
        cl_propose(&c, 1, "abc");
    }
    cl_ready(&c, 1);
    assert_int_equal(cl_count(&c, PRAFT_MSG_APPEND, 1, 2), 1);
    assert_int_equal(cl_count(&c, PRAFT_MSG_APPEND, 1, 3), 1);
    assert_int_equal(cl_find(&c, PRAFT_MSG_APPEND, 1, 2)->n_entries, 50);
    cl_free(&c);
}

/* An append carries at most max_msg_bytes of entries; a larger entry goes alone. */
static void appends_are_bounded_in_bytes(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, small_msgs);
    cl_elect(&c, 1);
    char e40[41], big[501];
    memset(e40, 'a', 40);
    e40[40] = 0;
    memset(big, 'b', 500);
    big[500] = 0;
    for (int i = 0; i < 10; i++) {
        cl_propose(&c, 1, e40);
    }
    cl_propose(&c, 1, big);
    cl_ready(&c, 1);
    size_t total = 0;
    for (size_t i = 0; i < c.nq; i++) {
        praft_msg *m = &c.q[i].m;
        if (m->type != PRAFT_MSG_APPEND || m->to != 2) {
            continue;
        }
        size_t bytes = 0;
        for (size_t j = 0; j < m->n_entries; j++) {
            bytes += m->entries[j].len;
        }
        assert_true(bytes <= 100 || m->n_entries == 1);
        total += m->n_entries;
    }
    assert_int_equal(total, 11);
    assert_int_equal(cl_count(&c, PRAFT_MSG_APPEND, 1, 2), 6);
    cl_settle(&c);
    assert_int_equal(c.t[2].applied, 13);
    cl_free(&c);
}

static void fill_window(cluster *c)
{
    cl_elect(c, 1);
    cl_isolate(c, 2); /* 2's answers never come back: the window fills */
    c->cut[1][2] = false;
    for (int i = 0; i < 20; i++) {
        cl_propose(c, 1, "0123456789");
        cl_ready(c, 1);
    }
}

/* Pipelining is bounded in count (max_inflight_msgs)... */
static void inflight_window_is_bounded_in_count(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, window4);
    fill_window(&c);
    assert_int_equal(cl_count(&c, PRAFT_MSG_APPEND, 1, 2), 4);
    assert_int_equal(cl_count(&c, PRAFT_MSG_APPEND, 1, 3), 4); /* its acks are queued too */
    praft_status *s = cl_status(&c, 1);
    assert_int_equal(s->progress[0].state, PRAFT_PROGRESS_REPLICATE);
    cl_heal(&c);
    cl_settle(&c);
    for (int i = 0; i < 3; i++) {
        cl_tick(&c, 1);
        cl_settle(&c);
    }
    assert_int_equal(c.t[2].applied, 22);
    cl_free(&c);
}

/* ...and in bytes (max_inflight_bytes). */
static void inflight_window_is_bounded_in_bytes(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, window25b);
    fill_window(&c);
    assert_int_equal(cl_count(&c, PRAFT_MSG_APPEND, 1, 2), 3);
    cl_free(&c);
}

static int rejects;
static int count_rejects(cluster *c, const praft_msg *m)
{
    (void)c;
    if (m->type == PRAFT_MSG_APPEND_RESP && m->reject) {
        rejects++;
    }
    return 1;
}

/* §5.3 optimization: a follower with a long conflicting suffix is repaired in about one round
 * trip per conflicting term, not one per entry. */
static void fast_backtracking_skips_a_term_per_round_trip(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, plain);
    cl_elect(&c, 1);
    cl_isolate(&c, 1);
    for (int i = 0; i < 100; i++) {
        cl_propose(&c, 1, "lost");
    }
    cl_ready(&c, 1);
    assert_int_equal(cl_status(&c, 1)->last_index, 102);
    cl_elect(&c, 2);
    for (int i = 0; i < 5; i++) {
        cl_propose(&c, 2, "kept");
    }
    cl_settle(&c);
    /* A third leader: its first probe to node 1 starts far beyond the divergence point. */
    cl_elect(&c, 3);
    for (int i = 0; i < 5; i++) {
        cl_propose(&c, 3, "kept too");
    }
    cl_settle(&c);
    cl_heal(&c);
    rejects = 0;
    c.filter = count_rejects;
    cl_tick(&c, 3); /* a heartbeat makes 1 a follower of 3 */
    cl_settle(&c);
    cl_tick(&c, 3);
    cl_settle(&c);
    /* 95 conflicting entries of term 2, repaired with a single rejection. */
    assert_int_equal(rejects, 1);
    assert_int_equal(cl_status(&c, 1)->last_index, cl_status(&c, 3)->last_index);
    assert_int_equal(c.t[1].app_sum, c.t[3].app_sum);
    assert_int_equal(c.t[1].n_applied, 10);
    cl_free(&c);
}

/* Node 1's append of term 2 carrying @n entries of term 2 from index 2 on (filled into @e),
 * after the bootstrap entry. */
static praft_msg first_appends_of_term2(praft_entry *e, size_t n)
{
    memset(e, 0, n * sizeof(*e));
    for (size_t i = 0; i < n; i++) {
        e[i].index = (uint64_t)i + 2;
        e[i].term = 2;
    }
    return (praft_msg){.type = PRAFT_MSG_APPEND,
                       .from = 1,
                       .term = 2,
                       .prev_index = 1,
                       .prev_term = 1,
                       .commit = 1,
                       .entries = e,
                       .n_entries = n};
}

/* §5.3 (pitfalls): a duplicated or reordered older append must not cut entries the follower
 * holds beyond it; the follower's commit is bounded by the last entry the message vouches for. */
static void stale_append_does_not_truncate(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, plain);
    praft_entry e[4];
    praft_msg a = first_appends_of_term2(e, 4);
    assert_int_equal(cl_step(&c, 2, &a), 0);
    assert_int_equal(cl_status(&c, 2)->last_index, 5);
    a.n_entries = 2;
    assert_int_equal(cl_step(&c, 2, &a), 0);
    assert_int_equal(cl_status(&c, 2)->last_index, 5);
    /* a heartbeat-like append vouching for index 3 only commits up to 3 */
    praft_msg b = {.type = PRAFT_MSG_APPEND,
                   .from = 1,
                   .term = 2,
                   .prev_index = 3,
                   .prev_term = 2,
                   .commit = 10};
    assert_int_equal(cl_step(&c, 2, &b), 0);
    assert_int_equal(cl_status(&c, 2)->commit, 3);
    /* a real conflict does cut the suffix */
    praft_entry x = {.index = 4, .term = 3};
    praft_msg d = {.type = PRAFT_MSG_APPEND,
                   .from = 3,
                   .term = 3,
                   .prev_index = 3,
                   .prev_term = 2,
                   .commit = 3,
                   .entries = &x,
                   .n_entries = 1};
    assert_int_equal(cl_step(&c, 2, &d), 0);
    assert_int_equal(cl_status(&c, 2)->last_index, 4);
    cl_free(&c);
}

/* §5.3, Figure 2: a follower acknowledges only entries it stores. Appends of term 2 accepted
 * and acknowledged, then cut by a leader of term 3 before any ready was taken: the ready must
 * not carry the term-2 acknowledgements, which would leave after a write that holds other
 * entries at those indexes (a stale term-2 leader could then count this node for them). */
static void acks_of_cut_entries_are_dropped(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, plain);
    praft_entry e[2];
    praft_msg a = first_appends_of_term2(e, 2);
    assert_int_equal(cl_step(&c, 2, &a), 0);
    praft_entry x = {.index = 2, .term = 3};
    praft_msg d = {.type = PRAFT_MSG_APPEND,
                   .from = 3,
                   .term = 3,
                   .prev_index = 1,
                   .prev_term = 1,
                   .commit = 1,
                   .entries = &x,
                   .n_entries = 1};
    assert_int_equal(cl_step(&c, 2, &d), 0);
    praft_ready rd;
    assert_int_equal(praft_ready_get(c.t[2].n, &rd), 0);
    assert_int_equal(rd.n_entries, 1);
    assert_int_equal(rd.entries[0].term, 3);
    size_t acks = 0;
    for (size_t i = 0; i < rd.n_send_after_persist; i++) {
        const praft_msg *m = &rd.send_after_persist[i];
        if (m->type == PRAFT_MSG_APPEND_RESP && !m->reject) {
            assert_int_equal(m->term, 3);
            assert_int_equal(m->to, 3);
            assert_int_equal(m->index, 2);
            acks++;
        }
    }
    assert_int_equal(acks, 1);
    ms_write(&c.t[2].st, &rd);
    assert_int_equal(praft_advance(c.t[2].n, &rd), 0);
    cl_free(&c);
}

/* Persistence contract: a follower acknowledges only after the write; the leader sends its
 * entries before its own write is durable (thesis §10.2.1). */
static void acks_wait_for_persistence_and_leader_sends_early(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    cl_propose(&c, 1, "x");
    praft_ready rd;
    assert_int_equal(praft_ready_get(c.t[1].n, &rd), 0);
    assert_int_equal(rd.n_entries, 1);
    assert_int_equal(rd.n_send_now, 2);
    assert_int_equal(rd.send_now[0].type, PRAFT_MSG_APPEND);
    praft_msg copy;
    msg_copy(&copy, &rd.send_now[0]);
    assert_int_equal(praft_step(c.t[copy.to].n, &copy), 0);
    praft_ready fr;
    assert_int_equal(praft_ready_get(c.t[copy.to].n, &fr), 0);
    assert_int_equal(fr.n_entries, 1);
    assert_int_equal(fr.n_send_now, 0);
    assert_int_equal(fr.n_send_after_persist, 1);
    assert_int_equal(fr.send_after_persist[0].type, PRAFT_MSG_APPEND_RESP);
    assert_int_equal(fr.send_after_persist[0].index, 3);
    ms_write(&c.t[copy.to].st, &fr);
    assert_int_equal(praft_advance(c.t[copy.to].n, &fr), 0);
    msg_free(&copy);
    ms_write(&c.t[1].st, &rd);
    assert_int_equal(praft_advance(c.t[1].n, &rd), 0);
    cl_free(&c);
}

/* Stale responses: an old rejection never moves next below match; match never decreases. */
static void stale_responses_never_move_progress_back(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    cl_propose(&c, 1, "x");
    cl_settle(&c);
    praft_status *s = cl_status(&c, 1);
    assert_int_equal(s->progress[0].match, 3);
    praft_msg r = {.type = PRAFT_MSG_APPEND_RESP,
                   .from = 2,
                   .term = 2,
                   .index = 1,
                   .reject = true,
                   .hint_index = 0};
    assert_int_equal(cl_step(&c, 1, &r), 0);
    praft_msg ok = {.type = PRAFT_MSG_APPEND_RESP, .from = 2, .term = 2, .index = 2};
    assert_int_equal(cl_step(&c, 1, &ok), 0);
    s = cl_status(&c, 1);
    assert_int_equal(s->progress[0].id, 2);
    assert_int_equal(s->progress[0].match, 3);
    assert_true(s->progress[0].next >= 4);
    assert_int_equal(s->progress[0].state, PRAFT_PROGRESS_REPLICATE);
    cl_free(&c);
}

static int drop_first_append;
static int drop_one(cluster *c, const praft_msg *m)
{
    (void)c;
    if (m->type == PRAFT_MSG_APPEND && m->to == 3 && m->n_entries > 0 && drop_first_append) {
        drop_first_append = 0;
        return 0;
    }
    return 1;
}

/* A lost append is repaired: the gap makes the follower reject, the leader probes again. */
static void lost_append_is_repaired(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    c.filter = drop_one;
    drop_first_append = 1;
    cl_propose(&c, 1, "lost once");
    cl_settle(&c);
    cl_propose(&c, 1, "second");
    cl_settle(&c);
    for (int i = 0; i < 3; i++) {
        cl_tick(&c, 1);
        cl_settle(&c);
    }
    assert_int_equal(c.t[3].applied, 4);
    assert_int_equal(c.t[3].app_sum, c.t[1].app_sum);
    cl_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(replication_commits_and_applies_everywhere),
        cmocka_unit_test(proposals_are_batched_into_one_append),
        cmocka_unit_test(appends_are_bounded_in_bytes),
        cmocka_unit_test(inflight_window_is_bounded_in_count),
        cmocka_unit_test(inflight_window_is_bounded_in_bytes),
        cmocka_unit_test(fast_backtracking_skips_a_term_per_round_trip),
        cmocka_unit_test(stale_append_does_not_truncate),
        cmocka_unit_test(acks_of_cut_entries_are_dropped),
        cmocka_unit_test(acks_wait_for_persistence_and_leader_sends_early),
        cmocka_unit_test(stale_responses_never_move_progress_back),
        cmocka_unit_test(lost_append_is_repaired),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
