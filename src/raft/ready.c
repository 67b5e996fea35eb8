/*
 * The ready: the batch of work the caller carries out (persist, send, apply, answer reads), in
 * the order the persistence contract of raft.h states, then acknowledges with praft_advance.
 * One ready is outstanding at a time; inputs meanwhile accumulate for the next one, which is
 * how proposals arriving during a disk write join the next write (group commit).
 */
#include "raft/core.h"

#include <stdlib.h>
#include <string.h>

/* Bytes of committed entries handed out per ready when they must be read from storage. */
#define COMMITTED_BATCH_BYTES (64u << 20)

void praft__outbox_release(praft_outbox *ob)
{
    for (size_t i = 0; i < ob->n_frees; i++) {
        free(ob->frees[i]);
    }
    ob->n_frees = 0;
    ob->n_msgs = 0;
}

void praft__outbox_free(praft_outbox *ob)
{
    praft__outbox_release(ob);
    free(ob->frees);
    free(ob->msgs);
    free(ob->after);
    memset(ob, 0, sizeof(*ob));
}

static bool hs_changed(const praft_node *n)
{
    return n->term != n->prev_hs.term || n->vote != n->prev_hs.vote ||
           n->commit != n->prev_hs.commit;
}

static uint64_t apply_limit(const praft_node *n)
{
    return PR_MIN(n->commit, praft__log_last(&n->log));
}

bool praft_has_ready(praft_node *n)
{
    if (n == NULL || n->ready_out) {
        return false;
    }
    return n->bcast_pending || n->read_round_pending || n->ob[n->pending].n_msgs > 0 ||
           n->log.unstable <= praft__log_last(&n->log) || hs_changed(n) ||
           n->applied < apply_limit(n) || n->n_done_reads > 0 || n->install_pending ||
           n->rx_chunk_pending || n->role != n->prev_role || n->leader != n->prev_leader ||
           n->term != n->prev_term;
}

int praft_ready_get(praft_node *n, praft_ready *rd)
{
    int rv;
    if (n == NULL || rd == NULL) {
        return PT_EINVAL;
    }
    if (n->ready_out) {
        return PT_EBUSY;
    }
    if (n->bcast_pending && n->role == PRAFT_LEADER) {
        rv = praft__bcast_append(n);
        if (rv != 0) {
            return rv;
        }
    }
    n->bcast_pending = false;
    rv = praft__reads_start_round(n);
    if (rv != 0) {
        return rv;
    }
    memset(rd, 0, sizeof(*rd));
    praft_log *l = &n->log;
    praft_outbox *ob = &n->ob[n->pending];

    /* Fallible steps first, so that an error leaves the node as it was. */
    uint64_t last = praft__log_last(l);
    size_t n_ents = l->unstable <= last ? (size_t)(last - l->unstable + 1) : 0;
    void *p = n->rd_entries;
    rv = praft__grow(&p, &n->cap_rd_entries, n_ents, sizeof(praft_entry));
    n->rd_entries = p;
    if (rv != 0) {
        return rv;
    }
    size_t n_now = 0, n_after = 0;
    bool hs_dep = n->term != n->prev_hs.term || n->vote != n->prev_hs.vote;
    for (size_t i = 0; i < ob->n_msgs; i++) {
        /* With a new term or vote in this batch, every message depends on it. */
        if (ob->after[i] || hs_dep) {
            n_after++;
        } else {
            n_now++;
        }
    }
    p = n->rd_now;
    rv = praft__grow(&p, &n->cap_rd_now, n_now, sizeof(praft_msg));
    n->rd_now = p;
    if (rv == 0) {
        p = n->rd_after;
        rv = praft__grow(&p, &n->cap_rd_after, n_after, sizeof(praft_msg));
        n->rd_after = p;
    }
    if (rv != 0) {
        return rv;
    }
    uint64_t limit = apply_limit(n);
    praft_entry *committed = NULL;
    size_t n_committed = 0;
    if (n->applied < limit) {
        rv = praft__log_slice(n, ob, n->applied + 1, limit + 1, COMMITTED_BATCH_BYTES, &committed,
                              &n_committed);
        if (rv != 0) {
            return rv;
        }
    }

    /* Last fallible step: from here on the node changes. */
    if (n->rx_chunk_pending && n->rx_chunk_data != NULL) {
        /* The chunk's bytes now belong to this ready's generation. */
        rv = praft__track_free(n, n->rx_chunk_data);
        if (rv != 0) {
            return rv;
        }
    }

    /* a. snapshot installed from the leader */
    if (n->install_pending) {
        rd->has_snapshot = true;
        rd->snapshot = n->install_meta;
        n->install_pending = false;
    }
    /* b. a chunk of a snapshot being received */
    n->rd_chunk_done = false;
    if (n->rx_chunk_pending) {
        rd->has_snapshot_chunk = true;
        rd->snapshot_chunk.meta = n->rx_chunk_meta;
        rd->snapshot_chunk.offset = n->rx_chunk_offset;
        rd->snapshot_chunk.data = n->rx_chunk_data;
        rd->snapshot_chunk.len = n->rx_chunk_len;
        rd->snapshot_chunk.done = n->rx_chunk_done;
        n->rx_chunk_data = NULL;
        n->rd_chunk_done = n->rx_chunk_done;
        n->rx_complete = n->rx_chunk_done;
        n->rx_chunk_pending = false;
    }
    /* c. entries */
    for (size_t i = 0; i < n_ents; i++) {
        n->rd_entries[i] = *praft__log_mem(l, l->unstable + i);
    }
    rd->entries = n->rd_entries;
    rd->n_entries = n_ents;
    n->rd_last_index = n_ents ? last : 0;
    n->rd_last_term = n_ents ? n->rd_entries[n_ents - 1].term : 0;
    l->unstable = last + 1;
    l->trunc_since_ready = 0;
    /* d. hard state */
    if (hs_changed(n)) {
        rd->has_hard_state = true;
        rd->hard_state = (praft_hard_state){.term = n->term, .vote = n->vote, .commit = n->commit};
        n->prev_hs = rd->hard_state;
    }
    /* messages */
    n_now = n_after = 0;
    for (size_t i = 0; i < ob->n_msgs; i++) {
        if (ob->after[i] || hs_dep) {
            n->rd_after[n_after++] = ob->msgs[i];
        } else {
            n->rd_now[n_now++] = ob->msgs[i];
        }
    }
    rd->send_now = n->rd_now;
    rd->n_send_now = n_now;
    rd->send_after_persist = n->rd_after;
    rd->n_send_after_persist = n_after;
    n->c.msgs_sent += ob->n_msgs;
    /* committed entries, handed out exactly once */
    rd->committed = committed;
    rd->n_committed = n_committed;
    if (n_committed > 0) {
        n->applied = committed[n_committed - 1].index;
    }
    /* reads: swap the buffers so that new answers collect in the other one */
    praft_read_state *tmp = n->rd_reads;
    size_t tcap = n->cap_rd_reads;
    rd->reads = n->done_reads;
    rd->n_reads = n->n_done_reads;
    n->rd_reads = n->done_reads;
    n->cap_rd_reads = n->cap_done_reads;
    n->done_reads = tmp;
    n->cap_done_reads = tcap;
    n->n_done_reads = 0;

    rd->role = n->role;
    rd->leader = n->leader;
    rd->term = n->term;
    n->prev_role = n->role;
    n->prev_leader = n->leader;
    n->prev_term = n->term;

    n->pending = 1 - n->pending;
    n->ready_out = true;
    return 0;
}

int praft_advance(praft_node *n, praft_ready *rd)
{
    if (n == NULL || rd == NULL || !n->ready_out || rd->entries != n->rd_entries) {
        return PT_EINVAL;
    }
    praft_log *l = &n->log;
    int rv = 0;
    if (n->rd_last_index != 0) {
        uint64_t t = 0;
        uint64_t durable = n->rd_last_index;
        if (praft__log_term(n, durable, &t) != 0 || t != n->rd_last_term) {
            /* The log was cut while the write was in flight: only the part before the cut is
             * ours for sure. */
            durable = l->trunc_since_ready ? PR_MIN(durable, l->trunc_since_ready - 1) : 0;
        }
        if (durable > l->persisted && durable < l->unstable) {
            l->persisted = durable;
        }
    }
    n->ready_out = false;
    /* The generation handed out in @rd is done: free what its messages pointed to. */
    praft__outbox_release(&n->ob[1 - n->pending]);
    if (n->rd_chunk_done) {
        n->rd_chunk_done = false;
        rv = praft__snapshot_advance(n);
    }
    if (rv == 0 && n->role == PRAFT_LEADER) {
        /* thesis §10.2.1: the leader counts itself only for what is durable. */
        rv = praft__maybe_commit(n);
    }
    /* Drop memory entries nobody needs: applied, durable, and (on a leader, within a memory
     * budget) matched by every follower. */
    uint64_t trim = PR_MIN(n->applied, l->persisted);
    if (n->role == PRAFT_LEADER && l->mem_bytes < n->o.max_inflight_bytes) {
        for (size_t i = 0; i < n->n_prs; i++) {
            trim = PR_MIN(trim, n->prs[i].match);
        }
    }
    /* Keep the last entry everyone has: the next APPEND's consistency check (§5.3) needs its
     * term as prev_term, and reading it back from storage would wait for the disk whenever
     * the storage writer is busy. */
    praft__log_trim(n, trim > 0 ? trim - 1 : 0);
    memset(rd, 0, sizeof(*rd));
    return rv;
}
