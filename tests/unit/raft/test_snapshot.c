/* Snapshots and compaction (§7): chunked InstallSnapshot that resumes and aborts, transfers
 * that never mix, restart from snapshot plus log suffix. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

static void chunks100(praft_options *o)
{
    o->snapshot_chunk_bytes = 100;
    o->snapshot_retry_ticks = 5;
}

/* The application snapshots its state (the digest, padded to span several chunks) at its
 * applied index, tells the core, and compacts the log. */
static uint64_t take_snapshot(cluster *c, uint64_t id)
{
    tnode *t = &c->t[id];
    uint8_t data[308];
    memset(data, 0x5a, sizeof(data));
    memcpy(data, &t->app_sum, sizeof(t->app_sum));
    praft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = t->applied;
    meta.size = sizeof(data);
    assert_int_equal(praft_snapshot_taken(t->n, &meta), 0);
    assert_true(meta.term > 0);
    assert_true(meta.config.n_members > 0);
    ms_set_snapshot(&t->st, &meta, data, sizeof(data));
    ms_compact(&t->st, meta.index);
    return meta.index;
}

static size_t chunks, chunks_at_0;
static int drop_second_chunk;
static int count_chunks(cluster *c, const praft_msg *m)
{
    (void)c;
    if (m->type == PRAFT_MSG_SNAPSHOT) {
        chunks++;
        chunks_at_0 += m->offset == 0;
        if (drop_second_chunk && m->offset == 100) {
            drop_second_chunk = 0;
            return 0;
        }
    }
    return 1;
}

static void catch_up(cluster *c, uint64_t leader, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        cl_tick(c, leader);
        cl_settle(c);
    }
}

/* §7: a follower behind the leader's first index gets the snapshot, in chunks, then the log. */
static void lagging_follower_gets_snapshot_in_chunks(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, chunks100);
    cl_elect(&c, 1);
    cl_isolate(&c, 3);
    for (int i = 0; i < 20; i++) {
        cl_propose(&c, 1, "payload");
    }
    cl_settle(&c);
    uint64_t snap = take_snapshot(&c, 1);
    assert_int_equal(snap, 22);
    cl_propose(&c, 1, "after");
    cl_settle(&c);
    cl_heal(&c);
    chunks = chunks_at_0 = 0;
    c.filter = count_chunks;
    catch_up(&c, 1, 3);
    assert_int_equal(chunks, 4); /* 308 bytes in chunks of 100 */
    assert_int_equal(c.t[3].applied, 23);
    assert_int_equal(c.t[3].app_sum, c.t[1].app_sum);
    assert_int_equal(cl_status(&c, 3)->snapshot_index, 22);
    assert_int_equal(cl_status(&c, 1)->counters.snapshots_sent, 1);
    assert_int_equal(cl_status(&c, 3)->counters.snapshots_installed, 1);
    cl_free(&c);
}

/* A lost chunk: the transfer resumes from the last acknowledged offset after
 * snapshot_retry_ticks, it does not restart. */
static void snapshot_transfer_resumes_after_a_lost_chunk(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, chunks100);
    cl_elect(&c, 1);
    cl_isolate(&c, 3);
    for (int i = 0; i < 5; i++) {
        cl_propose(&c, 1, "p");
    }
    cl_settle(&c);
    take_snapshot(&c, 1);
    cl_heal(&c);
    chunks = chunks_at_0 = 0;
    drop_second_chunk = 1;
    c.filter = count_chunks;
    catch_up(&c, 1, 10);
    assert_int_equal(chunks_at_0, 1);
    assert_int_equal(chunks, 5);
    assert_int_equal(c.t[3].applied, 7);
    assert_int_equal(c.t[3].app_sum, c.t[1].app_sum);
    cl_free(&c);
}

/* A newer snapshot taken during a transfer aborts it; the new one is sent from offset 0 and
 * the two never mix on the follower (identity = term and index). */
static void newer_snapshot_aborts_the_transfer(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, chunks100);
    cl_elect(&c, 1);
    cl_isolate(&c, 3);
    cl_propose(&c, 1, "p");
    cl_settle(&c);
    take_snapshot(&c, 1);
    cl_heal(&c);
    cl_tick(&c, 1); /* heartbeat, answers, a rejected probe, then the first chunk */
    for (int i = 0; i < 10 && cl_find(&c, PRAFT_MSG_SNAPSHOT, 1, 3) == NULL; i++) {
        cl_deliver_all(&c);
        cl_ready(&c, 3);
        cl_ready(&c, 1);
    }
    assert_non_null(cl_find(&c, PRAFT_MSG_SNAPSHOT, 1, 3));
    /* the first chunk is lost; the application takes a newer snapshot meanwhile */
    cl_propose(&c, 1, "q");
    cl_isolate(&c, 3);
    cl_settle(&c);
    cl_heal(&c);
    uint64_t newer = take_snapshot(&c, 1);
    chunks = chunks_at_0 = 0;
    c.filter = count_chunks;
    catch_up(&c, 1, 10);
    assert_int_equal(cl_status(&c, 3)->snapshot_index, newer);
    assert_int_equal(c.t[3].app_sum, c.t[1].app_sum);
    assert_int_equal(chunks_at_0, 1);
    assert_int_equal(cl_status(&c, 1)->counters.snapshots_sent, 2); /* the first was aborted */
    cl_free(&c);
}

/* A node restarts from its snapshot plus the log suffix after it. */
static void restart_from_snapshot_and_log_suffix(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    for (int i = 0; i < 5; i++) {
        cl_propose(&c, 1, "a");
    }
    cl_settle(&c);
    uint64_t snap = take_snapshot(&c, 2);
    for (int i = 0; i < 3; i++) {
        cl_propose(&c, 1, "b");
    }
    cl_settle(&c);
    uint64_t sum = c.t[2].app_sum;
    cl_crash(&c, 2);
    cl_restart(&c, 2);
    praft_status *s = cl_status(&c, 2);
    assert_int_equal(s->snapshot_index, snap);
    assert_int_equal(s->first_index, snap + 1);
    assert_int_equal(s->applied, snap);
    assert_int_equal(s->last_index, 10);
    assert_int_equal(s->config.n_members, 3);
    cl_settle(&c);
    assert_int_equal(c.t[2].applied, 10);
    assert_int_equal(c.t[2].app_sum, sum);
    cl_free(&c);
}

/* §7: a snapshot at or below the commit index is not installed; chunks of another transfer are
 * refused so the follower restarts the right one from 0. */
static void stale_or_foreign_chunks_are_refused(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    praft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = 1;
    meta.term = 1;
    meta.size = 10;
    meta.config = cl_status(&c, 2)->config;
    uint8_t data[10] = {0};
    praft_msg m = {.type = PRAFT_MSG_SNAPSHOT,
                   .from = 1,
                   .term = 2,
                   .snapshot = &meta,
                   .data = data,
                   .len = 10,
                   .done = true};
    assert_int_equal(cl_step(&c, 2, &m), 0);
    cl_ready(&c, 2);
    praft_msg *r = cl_find(&c, PRAFT_MSG_SNAPSHOT_RESP, 2, 1);
    assert_non_null(r);
    assert_int_equal(r->index, 2); /* our commit: nothing installed */
    assert_int_equal(cl_status(&c, 2)->snapshot_index, 0);
    cl_clear_queue(&c);
    /* chunk 0 of snapshot A, then a middle chunk of snapshot B */
    meta.index = 50;
    meta.term = 2;
    meta.size = 200;
    uint8_t big[100] = {0};
    praft_msg a = {.type = PRAFT_MSG_SNAPSHOT,
                   .from = 1,
                   .term = 2,
                   .snapshot = &meta,
                   .data = big,
                   .len = 100};
    assert_int_equal(cl_step(&c, 2, &a), 0);
    cl_ready(&c, 2); /* the chunk is stored */
    praft_snapshot_meta other = meta;
    other.index = 60;
    praft_msg b = a;
    b.snapshot = &other;
    b.offset = 100;
    b.done = true;
    assert_int_equal(cl_step(&c, 2, &b), 0);
    cl_ready(&c, 2);
    assert_int_equal(cl_count(&c, PRAFT_MSG_SNAPSHOT_RESP, 2, 1), 2);
    r = &c.q[1].m;
    assert_true(r->reject);
    assert_int_equal(r->offset, 0);
    assert_int_equal(r->snapshot->index, 60);
    assert_int_equal(c.t[2].st.rx_len, 100); /* only A's first chunk was stored */
    cl_free(&c);
}

/* §7: a follower whose log already holds the snapshot's last entry keeps its log (and the
 * entries after it) instead of installing the snapshot. */
static void follower_holding_the_entry_keeps_its_log(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    praft_entry e[3] = {{.index = 3, .term = 2}, {.index = 4, .term = 2}, {.index = 5, .term = 2}};
    praft_msg a = {.type = PRAFT_MSG_APPEND,
                   .from = 1,
                   .term = 2,
                   .prev_index = 2,
                   .prev_term = 2,
                   .commit = 2,
                   .entries = e,
                   .n_entries = 3};
    assert_int_equal(cl_step(&c, 2, &a), 0);
    praft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = 4;
    meta.term = 2;
    meta.size = 8;
    meta.config = cl_status(&c, 2)->config;
    uint8_t data[8] = {0};
    praft_msg m = {.type = PRAFT_MSG_SNAPSHOT,
                   .from = 1,
                   .term = 2,
                   .snapshot = &meta,
                   .data = data,
                   .len = 8,
                   .done = true};
    assert_int_equal(cl_step(&c, 2, &m), 0);
    praft_status *s = cl_status(&c, 2);
    assert_int_equal(s->last_index, 5);
    assert_int_equal(s->commit, 4);
    assert_int_equal(s->snapshot_index, 0);
    praft_ready rd;
    assert_int_equal(praft_ready_get(c.t[2].n, &rd), 0);
    assert_false(rd.has_snapshot_chunk);
    assert_int_equal(rd.n_send_after_persist, 2);
    assert_int_equal(rd.send_after_persist[1].type, PRAFT_MSG_SNAPSHOT_RESP);
    assert_int_equal(rd.send_after_persist[1].index, 4);
    ms_write(&c.t[2].st, &rd);
    assert_int_equal(praft_advance(c.t[2].n, &rd), 0);
    cl_free(&c);
}

/* §7 with the persistence contract: appends of the same leader accepted while the last chunk
 * is being written can reach past the snapshot; the log then holds its last entry and is kept,
 * since installing would drop entries whose acknowledgement is already queued. */
static void appends_during_the_last_chunk_are_kept(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    cl_clear_queue(&c);
    praft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = 4;
    meta.term = 2;
    meta.size = 8;
    meta.config = cl_status(&c, 2)->config;
    uint8_t data[8] = {0};
    praft_msg m = {.type = PRAFT_MSG_SNAPSHOT,
                   .from = 1,
                   .term = 2,
                   .snapshot = &meta,
                   .data = data,
                   .len = 8,
                   .done = true};
    assert_int_equal(cl_step(&c, 2, &m), 0);
    praft_ready rd;
    assert_int_equal(praft_ready_get(c.t[2].n, &rd), 0);
    assert_true(rd.has_snapshot_chunk && rd.snapshot_chunk.done);
    /* While the chunk is written, an append of the same leader covers the snapshot and more. */
    praft_entry e[3] = {{.index = 3, .term = 2}, {.index = 4, .term = 2}, {.index = 5, .term = 2}};
    praft_msg a = {.type = PRAFT_MSG_APPEND,
                   .from = 1,
                   .to = 2,
                   .term = 2,
                   .prev_index = 2,
                   .prev_term = 2,
                   .commit = 2,
                   .entries = e,
                   .n_entries = 3};
    assert_int_equal(praft_step(c.t[2].n, &a), 0);
    ms_write(&c.t[2].st, &rd);
    assert_int_equal(praft_advance(c.t[2].n, &rd), 0);
    praft_status *s = cl_status(&c, 2);
    assert_int_equal(s->last_index, 5);
    assert_int_equal(s->snapshot_index, 0);
    /* Every acknowledgement of the next ready covers only what that ready makes durable. */
    assert_int_equal(praft_ready_get(c.t[2].n, &rd), 0);
    assert_false(rd.has_snapshot);
    uint64_t durable = rd.n_entries > 0 ? rd.entries[rd.n_entries - 1].index : 2;
    bool acked = false;
    for (size_t i = 0; i < rd.n_send_after_persist; i++) {
        const praft_msg *r = &rd.send_after_persist[i];
        if (r->type == PRAFT_MSG_APPEND_RESP && !r->reject) {
            assert_true(r->index <= durable);
            acked = acked || r->index == 5;
        }
    }
    assert_true(acked);
    ms_write(&c.t[2].st, &rd);
    assert_int_equal(praft_advance(c.t[2].n, &rd), 0);
    cl_free(&c);
}

static int drop_chunks_at_100;
static int drop_after_first_chunk(cluster *c, const praft_msg *m)
{
    (void)c;
    if (m->type == PRAFT_MSG_SNAPSHOT) {
        chunks++;
        chunks_at_0 += m->offset == 0;
        if (drop_chunks_at_100 && m->offset >= 100) {
            return 0;
        }
    }
    return 1;
}

/* A follower that restarts in the middle of a transfer loses the partial snapshot; it asks the
 * leader to restart from offset 0, and the transfer completes. */
static void follower_restart_mid_transfer_restarts_it(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, chunks100);
    cl_elect(&c, 1);
    cl_isolate(&c, 3);
    cl_propose(&c, 1, "p");
    cl_settle(&c);
    take_snapshot(&c, 1);
    cl_heal(&c);
    chunks = chunks_at_0 = 0;
    drop_chunks_at_100 = 1;
    c.filter = drop_after_first_chunk;
    catch_up(&c, 1, 3);
    assert_int_equal(chunks_at_0, 1);
    cl_crash(&c, 3);
    cl_restart(&c, 3);
    drop_chunks_at_100 = 0;
    catch_up(&c, 1, 12);
    assert_int_equal(chunks_at_0, 2);
    assert_int_equal(cl_status(&c, 3)->snapshot_index, 3);
    assert_int_equal(c.t[3].app_sum, c.t[1].app_sum);
    cl_free(&c);
}

/* praft_snapshot_taken checks its index. */
static void snapshot_taken_validates_its_index(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    praft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = 99;
    assert_int_equal(praft_snapshot_taken(c.t[1].n, &meta), PT_EINVAL);
    meta.index = 2;
    assert_int_equal(praft_snapshot_taken(c.t[1].n, &meta), 0);
    meta.index = 1;
    meta.term = 0;
    assert_int_equal(praft_snapshot_taken(c.t[1].n, &meta), PT_EINVAL); /* older */
    cl_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lagging_follower_gets_snapshot_in_chunks),
        cmocka_unit_test(snapshot_transfer_resumes_after_a_lost_chunk),
        cmocka_unit_test(newer_snapshot_aborts_the_transfer),
        cmocka_unit_test(restart_from_snapshot_and_log_suffix),
        cmocka_unit_test(stale_or_foreign_chunks_are_refused),
        cmocka_unit_test(snapshot_taken_validates_its_index),
        cmocka_unit_test(follower_holding_the_entry_keeps_its_log),
        cmocka_unit_test(appends_during_the_last_chunk_are_kept),
        cmocka_unit_test(follower_restart_mid_transfer_restarts_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
