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

/* thesis §4.3, §6.4: while joint, a read round needs a majority of each side. Removing voter 4
 * of four: acknowledgements from 1 (the leader) and 2 are a majority of the incoming {1,2,3} but
 * not of the outgoing {1,2,3,4}, so the read waits. */
static void joint_read_needs_a_majority_of_each_side(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 4, 0, NULL);
    cl_elect(&c, 1);
    cl_propose(&c, 1, "x");
    cl_settle(&c);
    cl_isolate(&c, 3);
    cl_isolate(&c, 4);
    praft_change ch = {.type = PRAFT_CHANGE_REMOVE, .id = 4};
    assert_int_equal(praft_change_membership(c.t[1].n, &ch, NULL), 0);
    assert_true(cl_status(&c, 1)->config.joint);
    assert_int_equal(praft_read_index(c.t[1].n, 43), 0);
    cl_settle(&c);
    assert_int_equal(c.t[1].n_reads, 0);
    cl_heal(&c);
    cl_tick(&c, 1);
    cl_settle(&c);
    assert_int_equal(c.t[1].n_reads, 1);
    assert_int_equal(c.t[1].reads[0].context, 43);
    assert_int_equal(c.t[1].reads[0].status, 0);
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

/* A fresh core with leases ignores campaigns for an election timeout (see lease_reads): let
 * every core count one and a leader emerge, hand leadership to node 1 (TIMEOUT_NOW ignores
 * stickiness), and let node 1's first heartbeats be acknowledged. */
static void lease_cluster(cluster *c, int voters)
{
    cl_init(c, voters, 0, lease);
    uint64_t l = 0;
    for (int i = 0; i < 100 && l == 0; i++) {
        cl_tick_all(c);
        cl_settle(c);
        l = cl_leader(c);
    }
    assert_int_not_equal(l, 0);
    if (l != 1) {
        assert_int_equal(praft_transfer_leadership(c->t[l].n, 1), 0);
        cl_settle(c);
    }
    assert_int_equal(cl_leader(c), 1);
    cl_tick(c, 1); /* a heartbeat round, acknowledged */
    cl_settle(c);
}

/* Reads node @id's next answer, starting a read with @ctx; the answer must come at once. */
static praft_read_state *read_at_once(cluster *c, uint64_t id, uint64_t ctx)
{
    size_t before = c->t[id].n_reads;
    assert_int_equal(praft_read_index(c->t[id].n, ctx), 0);
    cl_ready(c, id);
    assert_int_equal(c->t[id].n_reads, before + 1);
    assert_int_equal(c->t[id].reads[before].context, ctx);
    return &c->t[id].reads[before];
}

/* thesis §6.4.1: within its lease, the leader answers without a heartbeat round. */
static void lease_read_answers_without_a_round(void **state)
{
    (void)state;
    cluster c;
    lease_cluster(&c, 3);
    cl_propose(&c, 1, "x");
    cl_settle(&c);
    uint64_t commit = cl_status(&c, 1)->commit;
    praft_read_state *r = read_at_once(&c, 1, 3);
    assert_int_equal(r->index, commit);
    assert_int_equal(r->status, 0);
    assert_int_equal(cl_count(&c, PRAFT_MSG_HEARTBEAT, 1, 0), 0); /* no round */
    cl_free(&c);
}

/* thesis §6.4.1: a lease exists only once a majority acknowledged a heartbeat: a new leader
 * whose no-op committed through appends still takes a round. */
static void no_lease_before_heartbeats_are_acknowledged(void **state)
{
    (void)state;
    cluster c;
    lease_cluster(&c, 3);
    /* A new term: node 2 takes over, its no-op commits through appends. */
    assert_int_equal(praft_transfer_leadership(c.t[1].n, 2), 0);
    cl_settle(&c);
    assert_int_equal(cl_leader(&c), 2);
    assert_int_equal(praft_read_index(c.t[2].n, 7), 0);
    size_t before = c.t[2].n_reads;
    cl_ready(&c, 2);
    assert_int_equal(c.t[2].n_reads, before);
    assert_non_null(cl_find(&c, PRAFT_MSG_HEARTBEAT, 2, 1));
    cl_settle(&c);
    assert_int_equal(c.t[2].n_reads, before + 1);
    assert_int_equal(c.t[2].reads[before].status, 0);
    cl_free(&c);
}

/* thesis §6.4.1: the lease counts from when the acknowledged heartbeat was *sent*, and lasts
 * election_ticks - 1 - election_ticks / 8 = 8 ticks; acknowledgements extend it. An expired
 * lease does not fail the read: it takes a heartbeat round. */
static void lease_expires_and_is_extended_by_acknowledgements(void **state)
{
    (void)state;
    cluster c;
    lease_cluster(&c, 3);
    /* The followers hear nothing more; the leader keeps ticking (its heartbeats are lost). */
    cl_isolate(&c, 1);
    for (int i = 0; i < 7; i++) {
        cl_tick(&c, 1);
        cl_settle(&c);
    }
    /* 7 ticks after the acknowledged heartbeat was sent: still within the lease. */
    assert_int_equal(read_at_once(&c, 1, 1)->status, 0);
    cl_tick(&c, 1);
    cl_settle(&c);
    /* 8 ticks: expired. The read waits for a round that cannot complete. */
    assert_int_equal(praft_read_index(c.t[1].n, 2), 0);
    cl_settle(&c);
    assert_int_equal(c.t[1].n_reads, 1);
    /* The network heals: the next acknowledged heartbeat answers the read and renews the
     * lease. */
    cl_heal(&c);
    cl_tick(&c, 1);
    cl_settle(&c);
    assert_int_equal(c.t[1].n_reads, 2);
    assert_int_equal(c.t[1].reads[1].context, 2);
    assert_int_equal(c.t[1].reads[1].status, 0);
    assert_int_equal(read_at_once(&c, 1, 3)->status, 0);
    cl_free(&c);
}

/* An acknowledgement arriving late dates the lease from its heartbeat's send tick, not from
 * its arrival: a heartbeat sent 8 ticks ago and acknowledged now gives no lease. */
static void late_acknowledgement_counts_from_its_send_tick(void **state)
{
    (void)state;
    cluster c;
    lease_cluster(&c, 3);
    cl_clear_queue(&c);
    cl_tick(&c, 1);
    cl_ready(&c, 1);
    /* Hold the heartbeats of this tick; lose everything else. */
    praft_msg hb2, hb3;
    msg_copy(&hb2, cl_find(&c, PRAFT_MSG_HEARTBEAT, 1, 2));
    msg_copy(&hb3, cl_find(&c, PRAFT_MSG_HEARTBEAT, 1, 3));
    cl_isolate(&c, 1);
    for (int i = 0; i < 8; i++) {
        cl_clear_queue(&c);
        cl_tick(&c, 1);
        cl_settle(&c);
    }
    cl_clear_queue(&c);
    cl_heal(&c);
    /* Deliver the old heartbeats and only their answers. */
    assert_int_equal(cl_step(&c, 2, &hb2), 0);
    assert_int_equal(cl_step(&c, 3, &hb3), 0);
    cl_ready(&c, 2);
    cl_ready(&c, 3);
    praft_msg r2, r3;
    msg_copy(&r2, cl_find(&c, PRAFT_MSG_HEARTBEAT_RESP, 2, 1));
    msg_copy(&r3, cl_find(&c, PRAFT_MSG_HEARTBEAT_RESP, 3, 1));
    cl_clear_queue(&c);
    assert_int_equal(cl_step(&c, 1, &r2), 0);
    assert_int_equal(cl_step(&c, 1, &r3), 0);
    cl_ready(&c, 1);
    cl_clear_queue(&c);
    assert_int_equal(praft_read_index(c.t[1].n, 9), 0);
    size_t before = c.t[1].n_reads;
    cl_ready(&c, 1);
    assert_int_equal(c.t[1].n_reads, before); /* no lease: a round is needed */
    assert_non_null(cl_find(&c, PRAFT_MSG_HEARTBEAT, 1, 2));
    msg_free(&hb2);
    msg_free(&hb3);
    msg_free(&r2);
    msg_free(&r3);
    cl_free(&c);
}

static int drop_from_1(cluster *c, const praft_msg *m)
{
    (void)c;
    return m->from != 1 && m->to != 1;
}

/* The review's scenario (thesis §6.4.1): the leader is cut off from the others, who elect a
 * new leader once it stops being sticky and commit a write. The old leader's lease has run
 * out by then: its reads wait for a round it cannot complete, and fail with PT_ENOTLEADER when
 * check-quorum steps it down. It never returns a read index that misses the write. */
static void isolated_leader_never_reads_past_a_new_leaders_write(void **state)
{
    (void)state;
    cluster c;
    lease_cluster(&c, 5);
    cl_propose(&c, 1, "old");
    cl_settle(&c);
    /* Cut node 1 off just after its first check-quorum window began with acknowledgements:
     * that activity makes the next check pass, so it leads for almost two election timeouts
     * more (thesis §6.2), long after the others may elect a new leader. */
    c.filter = drop_from_1;
    uint64_t new_leader = 0, write_index = 0;
    bool overlap = false;
    size_t reads_at_write = 0;
    size_t reads_before = c.t[1].n_reads;
    uint64_t ctx = 100;
    for (int t = 0; t < 40; t++) {
        cl_tick_all(&c);
        cl_settle(&c);
        if (new_leader == 0) {
            uint64_t l = 0;
            for (uint64_t i = 2; i <= 5; i++) {
                if (cl_status(&c, i)->role == PRAFT_LEADER) {
                    l = i;
                }
            }
            if (l != 0) {
                new_leader = l;
                cl_propose(&c, l, "new");
                write_index = cl_status(&c, l)->last_index;
                cl_settle(&c);
                assert_true(cl_status(&c, l)->commit >= write_index);
                reads_at_write = c.t[1].n_reads;
            }
        }
        if (new_leader != 0 && cl_status(&c, 1)->role == PRAFT_LEADER) {
            overlap = true; /* two leaders, in two terms */
        }
        /* The old leader is asked for a read at every tick. */
        if (cl_status(&c, 1)->role == PRAFT_LEADER) {
            assert_int_equal(praft_read_index(c.t[1].n, ++ctx), 0);
            cl_settle(&c);
        }
    }
    assert_int_not_equal(new_leader, 0);
    assert_true(overlap); /* the case that matters was exercised */
    assert_int_not_equal(cl_status(&c, 1)->role, PRAFT_LEADER);
    bool abandoned = false, served = false;
    for (size_t i = reads_before; i < c.t[1].n_reads; i++) {
        praft_read_state *r = &c.t[1].reads[i];
        if (r->status == 0) {
            /* Answered (from the lease) before the write completed, or the read must see it. */
            assert_true(i < reads_at_write || r->index >= write_index);
            served = true;
        } else {
            assert_int_equal(r->status, PT_ENOTLEADER);
            abandoned = true;
        }
    }
    assert_true(abandoned);
    assert_true(served); /* from the lease, while it held */
    cl_free(&c);
}

/* A restarted core forgets the leader it heard from just before the crash; with leases it
 * keeps still for an election timeout, as if it had heard from one as it started. */
static void restarted_node_ignores_campaigns_for_an_election_timeout(void **state)
{
    (void)state;
    cluster c;
    lease_cluster(&c, 3);
    cl_crash(&c, 2);
    cl_restart(&c, 2);
    praft_msg v = {.type = PRAFT_MSG_VOTE,
                   .from = 3,
                   .term = cl_status(&c, 2)->term + 1,
                   .last_index = 100,
                   .last_term = 100};
    v.last_term = v.term;
    assert_int_equal(cl_step(&c, 2, &v), 0);
    assert_int_equal(cl_status(&c, 2)->term, v.term - 1); /* ignored */
    for (int i = 0; i < 10; i++) {
        cl_tick(&c, 2);
    }
    assert_int_equal(cl_step(&c, 2, &v), 0);
    assert_int_equal(cl_status(&c, 2)->term, v.term);
    assert_int_equal(cl_status(&c, 2)->vote, 3);
    cl_free(&c);
}

/* thesis §3.10: TIMEOUT_NOW lets its target win at once, whatever the followers' stickiness;
 * from then on this term's leader serves no read from a lease. */
static void no_lease_after_timeout_now(void **state)
{
    (void)state;
    cluster c;
    lease_cluster(&c, 3);
    c.filter = drop_from_1;
    assert_int_equal(praft_transfer_leadership(c.t[1].n, 2), 0);
    cl_settle(&c);
    c.filter = NULL;
    cl_clear_queue(&c);
    assert_int_equal(praft_read_index(c.t[1].n, 5), 0);
    size_t before = c.t[1].n_reads;
    cl_ready(&c, 1);
    assert_int_equal(c.t[1].n_reads, before);
    cl_settle(&c);
    assert_int_equal(c.t[1].n_reads, before + 1); /* after a round */
    assert_int_equal(c.t[1].reads[before].status, 0);
    cl_free(&c);
}

/* A single voter is its own majority: its lease always holds. */
static void single_voter_lease(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 1, 0, lease);
    for (int i = 0; i < 30 && cl_status(&c, 1)->role != PRAFT_LEADER; i++) {
        cl_tick(&c, 1);
        cl_settle(&c);
    }
    assert_int_equal(cl_status(&c, 1)->role, PRAFT_LEADER);
    assert_int_equal(read_at_once(&c, 1, 1)->status, 0);
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

/* Reads that arrive between two readies share one heartbeat round: one heartbeat per follower
 * for the batch, not one per read (a follower would otherwise do the work of every read). */
static void reads_between_readies_share_one_heartbeat(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    cl_propose(&c, 1, "x");
    cl_settle(&c);
    for (uint64_t i = 1; i <= 20; i++) {
        assert_int_equal(praft_read_index(c.t[1].n, i), 0);
    }
    assert_true(praft_has_ready(c.t[1].n));
    cl_ready(&c, 1);
    assert_int_equal(cl_count(&c, PRAFT_MSG_HEARTBEAT, 1, 2), 1);
    assert_int_equal(cl_count(&c, PRAFT_MSG_HEARTBEAT, 1, 3), 1);
    assert_int_equal(c.t[1].n_reads, 0); /* still not before the round */
    cl_settle(&c);
    assert_int_equal(c.t[1].n_reads, 20);
    for (size_t i = 0; i < 20; i++) {
        assert_int_equal(c.t[1].reads[i].context, i + 1);
        assert_int_equal(c.t[1].reads[i].index, 3);
        assert_int_equal(c.t[1].reads[i].status, 0);
    }
    /* A read arriving after the round went out waits for a round of its own. */
    assert_int_equal(praft_read_index(c.t[1].n, 99), 0);
    cl_ready(&c, 1);
    assert_int_equal(cl_count(&c, PRAFT_MSG_HEARTBEAT, 1, 2), 1);
    cl_settle(&c);
    assert_int_equal(c.t[1].n_reads, 21);
    assert_int_equal(c.t[1].reads[20].context, 99);
    cl_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(joint_read_needs_a_majority_of_each_side),
        cmocka_unit_test(leader_read_confirmed_by_a_heartbeat_round),
        cmocka_unit_test(read_waits_for_the_leaders_noop),
        cmocka_unit_test(follower_read_is_forwarded),
        cmocka_unit_test(abandoned_reads_fail_with_enotleader),
        cmocka_unit_test(lease_read_answers_without_a_round),
        cmocka_unit_test(no_lease_before_heartbeats_are_acknowledged),
        cmocka_unit_test(lease_expires_and_is_extended_by_acknowledgements),
        cmocka_unit_test(late_acknowledgement_counts_from_its_send_tick),
        cmocka_unit_test(isolated_leader_never_reads_past_a_new_leaders_write),
        cmocka_unit_test(restarted_node_ignores_campaigns_for_an_election_timeout),
        cmocka_unit_test(no_lease_after_timeout_now),
        cmocka_unit_test(single_voter_lease),
        cmocka_unit_test(read_index_errors),
        cmocka_unit_test(many_reads_share_rounds),
        cmocka_unit_test(reads_between_readies_share_one_heartbeat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
