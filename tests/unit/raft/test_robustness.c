/* Robustness to the network: malformed messages are refused and counted; stale, duplicated,
 * reordered and lost messages never crash the core nor break Raft's safety properties
 * (§5.2 Election Safety, §5.3 Log Matching, §5.4 State Machine Safety). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

/* Anything that cannot be a valid message is PT_EMALFORMED, counted, and changes nothing. */
static void malformed_messages_are_refused_and_counted(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    praft_node *n = c.t[2].n;
    praft_status before = *cl_status(&c, 2);
    praft_entry good[2] = {{.index = 3, .term = 2}, {.index = 4, .term = 2}};
    praft_entry gap[2] = {{.index = 3, .term = 2}, {.index = 5, .term = 2}};
    praft_entry future[1] = {{.index = 3, .term = 9}};
    praft_entry backwards[2] = {{.index = 3, .term = 2}, {.index = 4, .term = 1}};
    praft_entry nodata[1] = {{.index = 3, .term = 2, .len = 5}};
    uint8_t junk[4] = {1, 2, 3, 4};
    praft_entry badcfg[1] = {
        {.index = 3, .term = 2, .type = PRAFT_ENTRY_CONFIG, .len = 4, .data = junk}};
    praft_entry badtype[1] = {{.index = 3, .term = 2, .type = 9}};
    praft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = 10;
    meta.term = 2;
    meta.size = 4;
    meta.config = before.config;
    const praft_msg bad[] = {
        {.type = 0, .from = 1, .to = 2, .term = 2},
        {.type = 99, .from = 1, .to = 2, .term = 2},
        {.type = PRAFT_MSG_HEARTBEAT, .from = 2, .to = 2, .term = 2},
        {.type = PRAFT_MSG_HEARTBEAT, .from = 1, .to = 3, .term = 2},
        {.type = PRAFT_MSG_HEARTBEAT, .from = 0, .to = 2, .term = 2},
        {.type = PRAFT_MSG_APPEND,
         .from = 1,
         .to = 2,
         .term = 2,
         .prev_index = 2,
         .prev_term = 2,
         .n_entries = 2},
        {.type = PRAFT_MSG_APPEND,
         .from = 1,
         .to = 2,
         .term = 2,
         .prev_index = 2,
         .prev_term = 2,
         .entries = gap,
         .n_entries = 2},
        {.type = PRAFT_MSG_APPEND,
         .from = 1,
         .to = 2,
         .term = 2,
         .prev_index = 2,
         .prev_term = 2,
         .entries = future,
         .n_entries = 1},
        {.type = PRAFT_MSG_APPEND,
         .from = 1,
         .to = 2,
         .term = 2,
         .prev_index = 2,
         .prev_term = 2,
         .entries = backwards,
         .n_entries = 2},
        {.type = PRAFT_MSG_APPEND,
         .from = 1,
         .to = 2,
         .term = 2,
         .prev_index = 2,
         .prev_term = 2,
         .entries = nodata,
         .n_entries = 1},
        {.type = PRAFT_MSG_APPEND,
         .from = 1,
         .to = 2,
         .term = 2,
         .prev_index = 2,
         .prev_term = 2,
         .entries = badcfg,
         .n_entries = 1},
        {.type = PRAFT_MSG_APPEND,
         .from = 1,
         .to = 2,
         .term = 2,
         .prev_index = 2,
         .prev_term = 2,
         .entries = badtype,
         .n_entries = 1},
        {.type = PRAFT_MSG_APPEND,
         .from = 1,
         .to = 2,
         .term = 2,
         .prev_index = 1,
         .prev_term = 1,
         .entries = good,
         .n_entries = 2}, /* index != prev + 1 */
        {.type = PRAFT_MSG_APPEND, .from = 1, .to = 2, .term = 2, .prev_index = 2, .prev_term = 5},
        {.type = PRAFT_MSG_SNAPSHOT, .from = 1, .to = 2, .term = 2},
        {.type = PRAFT_MSG_SNAPSHOT,
         .from = 1,
         .to = 2,
         .term = 2,
         .snapshot = &meta,
         .offset = 2,
         .len = 3,
         .data = junk},
        {.type = PRAFT_MSG_SNAPSHOT,
         .from = 1,
         .to = 2,
         .term = 2,
         .snapshot = &meta,
         .offset = 0,
         .len = 2,
         .data = junk,
         .done = true},
        {.type = PRAFT_MSG_SNAPSHOT,
         .from = 1,
         .to = 2,
         .term = 2,
         .snapshot = &meta,
         .offset = 0,
         .len = 2},
        {.type = PRAFT_MSG_SNAPSHOT_RESP, .from = 1, .to = 2, .term = 2},
    };
    size_t nbad = sizeof(bad) / sizeof(bad[0]);
    for (size_t i = 0; i < nbad; i++) {
        assert_int_equal(praft_step(n, &bad[i]), PT_EMALFORMED);
    }
    praft_status *after = cl_status(&c, 2);
    assert_int_equal(after->counters.msgs_dropped_malformed, nbad);
    assert_int_equal(after->term, before.term);
    assert_int_equal(after->last_index, before.last_index);
    assert_int_equal(after->commit, before.commit);
    assert_int_equal(after->counters.msgs_received, before.counters.msgs_received);
    /* A leader acknowledging entries it never sent is refused too. */
    praft_msg ack = {.type = PRAFT_MSG_APPEND_RESP, .from = 2, .to = 1, .term = 2, .index = 99};
    assert_int_equal(praft_step(c.t[1].n, &ack), PT_EMALFORMED);
    assert_int_equal(praft_step(NULL, &ack), PT_EINVAL);
    assert_int_equal(praft_step(n, NULL), PT_EINVAL);
    cl_free(&c);
}

/* §5.1 makes every node adopt a higher term. A term that cannot be followed by another would
 * freeze the cluster for good, so a message carrying one is malformed, whoever sent it. */
static void unfollowable_terms_are_refused(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    praft_status before = *cl_status(&c, 2);
    const praft_msg forged[] = {
        {.type = PRAFT_MSG_VOTE,
         .from = 3,
         .to = 2,
         .term = UINT64_MAX,
         .last_index = 99,
         .last_term = 99},
        {.type = PRAFT_MSG_PREVOTE, .from = 3, .to = 2, .term = UINT64_MAX},
        {.type = PRAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = UINT64_MAX},
        {.type = PRAFT_MSG_APPEND_RESP, .from = 3, .to = 2, .term = UINT64_MAX},
    };
    for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
        assert_int_equal(praft_step(c.t[2].n, &forged[i]), PT_EMALFORMED);
    }
    praft_status *after = cl_status(&c, 2);
    assert_int_equal(after->term, before.term);
    assert_int_equal(after->vote, before.vote);
    assert_int_equal(after->leader, 1);
    assert_int_equal(after->counters.msgs_dropped_malformed,
                     before.counters.msgs_dropped_malformed + 4);
    cl_free(&c);
}

/* A node that reached the largest term never campaigns into an overflow: it stays a
 * follower, counts the refusal, and its term stays where it was. */
static void a_node_at_the_largest_term_does_not_campaign(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    praft_msg hb = {.type = PRAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = PRAFT_TERM_MAX};
    assert_int_equal(praft_step(c.t[2].n, &hb), 0);
    assert_true(cl_ready(&c, 2));
    assert_int_equal(cl_status(&c, 2)->term, PRAFT_TERM_MAX);
    cl_isolate(&c, 2);
    cl_clear_queue(&c);
    for (int i = 0; i < 200; i++) {
        cl_tick(&c, 2);
        cl_ready(&c, 2);
    }
    praft_status *s = cl_status(&c, 2);
    assert_int_equal(s->term, PRAFT_TERM_MAX);
    assert_int_not_equal(s->role, PRAFT_CANDIDATE);
    assert_true(s->counters.campaigns_refused_term > 0);
    assert_int_equal(s->counters.elections_started, 0);
    assert_int_equal(s->counters.prevotes_started, 0);
    cl_free(&c);
}

/* ---- a lossy, duplicating, reordering network ---------------------------------------------- */

static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void chaotic_delivery(cluster *c)
{
    size_t nq = c->nq;
    qmsg *q = malloc((nq ? nq : 1) * sizeof(*q));
    assert_non_null(q);
    memcpy(q, c->q, nq * sizeof(*q));
    c->nq = 0;
    for (size_t i = nq; i > 1; i--) { /* reorder */
        size_t j = rnd() % i;
        qmsg t = q[i - 1];
        q[i - 1] = q[j];
        q[j] = t;
    }
    for (size_t i = 0; i < nq; i++) {
        praft_msg *m = &q[i].m;
        tnode *t = &c->t[m->to];
        unsigned r = (unsigned)(rnd() % 100);
        if (r >= 10 && t->up) { /* 10% lost */
            assert_int_equal(praft_step(t->n, m), 0);
            if (r >= 90) { /* 10% duplicated */
                assert_int_equal(praft_step(t->n, m), 0);
            }
        }
        if (r >= 95 && c->nq < CL_MAXQ) { /* 5% delivered again much later */
            msg_copy(&c->q[c->nq++].m, m);
        }
        msg_free(m);
    }
    free(q);
}

/* Election Safety (§5.2) and State Machine Safety (§5.4.3) under a hostile network: at most one
 * leader per term, and every node applies the same entries at the same indices. */
static void chaos_never_breaks_safety(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        rng_state = seed;
        cluster c;
        cl_init(&c, 5, 0, NULL);
        uint64_t leader_of_term[4096] = {0};
        for (int step = 0; step < 3000; step++) {
            uint64_t id = 1 + rnd() % 5;
            cl_tick(&c, id);
            if (rnd() % 4 == 0) {
                uint64_t l = cl_leader(&c);
                if (l != 0 && praft_propose(c.t[l].n, "cmd", 3, NULL, NULL) == 0) {
                    (void)0;
                }
            }
            if (rnd() % 150 == 0) {
                /* partitions come and go */
                cl_heal(&c);
                if (rnd() % 3 != 0) {
                    cl_isolate(&c, 1 + rnd() % 5);
                }
            }
            if (rnd() % 200 == 0) {
                uint64_t v = 1 + rnd() % 5;
                cl_crash(&c, v);
                cl_restart(&c, v);
            }
            for (int i = 1; i <= 5; i++) {
                while (cl_ready(&c, (uint64_t)i)) {
                }
            }
            chaotic_delivery(&c);
            for (int i = 1; i <= 5; i++) {
                praft_status *s = cl_status(&c, (uint64_t)i);
                if (s->role == PRAFT_LEADER && s->term < 4096) {
                    assert_true(leader_of_term[s->term] == 0 ||
                                leader_of_term[s->term] == (uint64_t)i);
                    leader_of_term[s->term] = (uint64_t)i;
                }
                assert_true(s->commit <= s->last_index);
            }
        }
        cl_heal(&c);
        /* Heal: a calm network brings everyone to the same state. */
        for (int i = 0; i < 200; i++) {
            cl_tick_all(&c);
            cl_settle(&c);
        }
        uint64_t l = cl_leader(&c);
        assert_int_not_equal(l, 0);
        print_message("seed %d: leader %d term %d applied %d cmds %d delivered %d\n", (int)seed,
                      (int)l, (int)cl_status(&c, l)->term, (int)c.t[l].applied,
                      (int)c.t[l].n_applied, (int)c.delivered);
        for (int i = 1; i <= 5; i++) {
            assert_int_equal(c.t[i].applied, c.t[l].applied);
            assert_int_equal(c.t[i].app_sum, c.t[l].app_sum);
            assert_int_equal(c.t[i].st.n, c.t[l].st.n);
            for (size_t k = 0; k < c.t[l].st.n; k++) {
                assert_int_equal(c.t[i].st.ents[k].term, c.t[l].st.ents[k].term);
            }
        }
        cl_free(&c);
    }
}

/* Random well-typed messages with arbitrary fields: never a crash, only 0 or PT_EMALFORMED,
 * and the commit index stays within the log. */
static void random_messages_never_crash(void **state)
{
    (void)state;
    rng_state = 99;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    praft_entry ents[4];
    praft_snapshot_meta meta;
    uint8_t data[16] = {0};
    for (int i = 0; i < 20000; i++) {
        praft_msg m;
        memset(&m, 0, sizeof(m));
        m.type = 1 + (uint32_t)(rnd() % 13);
        m.from = 1 + rnd() % 4;
        m.to = 1 + rnd() % 3;
        if (m.from == m.to) {
            m.from = m.to % 3 + 1;
        }
        m.term = rnd() % 6;
        m.prev_index = rnd() % 8;
        m.prev_term = m.prev_index ? rnd() % (m.term + 1) : 0;
        m.commit = rnd() % 10;
        m.index = rnd() % 10;
        m.reject = rnd() % 2;
        m.hint_index = rnd() % 10;
        m.hint_term = rnd() % 5;
        m.last_index = rnd() % 10;
        m.last_term = rnd() % 6;
        m.context = rnd() % 4;
        m.transfer = rnd() % 5 == 0;
        m.n_entries = rnd() % 4;
        uint64_t t = m.prev_term;
        for (size_t k = 0; k < m.n_entries; k++) {
            t += rnd() % 2;
            if (t > m.term) {
                t = m.term;
            }
            ents[k] =
                (praft_entry){.index = m.prev_index + 1 + k, .term = t, .len = 2, .data = data};
        }
        m.entries = ents;
        memset(&meta, 0, sizeof(meta));
        meta.index = 1 + rnd() % 10;
        meta.term = 1 + rnd() % 3;
        meta.size = rnd() % 20;
        meta.config = cl_status(&c, 1)->config;
        m.snapshot = &meta;
        m.offset = rnd() % 20;
        m.len = rnd() % 8;
        m.data = data;
        m.done = rnd() % 2;
        int rv = praft_step(c.t[m.to].n, &m);
        assert_true(rv == 0 || rv == PT_EMALFORMED);
        if (i % 7 == 0) {
            cl_tick(&c, m.to);
        }
        while (cl_ready(&c, m.to)) {
        }
        cl_clear_queue(&c);
        praft_status *s = cl_status(&c, m.to);
        assert_true(s->commit <= s->last_index);
    }
    cl_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(malformed_messages_are_refused_and_counted),
        cmocka_unit_test(unfollowable_terms_are_refused),
        cmocka_unit_test(a_node_at_the_largest_term_does_not_campaign),
        cmocka_unit_test(chaos_never_breaks_safety),
        cmocka_unit_test(random_messages_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
