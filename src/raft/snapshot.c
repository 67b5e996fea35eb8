/*
 * Snapshots (§7): sending one to a follower behind the log's first index, chunk by chunk, and
 * receiving one.
 *
 * A transfer is identified by the snapshot's (term, index), so chunks of two transfers never
 * mix; every chunk carries its offset. The leader keeps one chunk in flight per follower and
 * moves on when the follower acknowledges the next offset it expects. A transfer that makes no
 * progress for snapshot_retry_ticks resumes from the last acknowledged offset; a follower that
 * gets a chunk it cannot place answers with the offset it needs (or 0 to restart). A newer
 * snapshot replacing the one being sent aborts the transfer and starts the new one.
 */
#include "raft/core.h"

#include <stdlib.h>
#include <string.h>

static bool same_snapshot(const praft_snapshot_meta *a, uint64_t index, uint64_t term)
{
    return a->index == index && a->term == term;
}

int praft__start_snapshot(praft_node *n, praft_pr *p)
{
    const praft_snapshot_meta *s = &n->log.snap;
    if (s->index == 0) {
        return PT_EINTERNAL; /* compacted without a snapshot: storage broke its contract */
    }
    p->state = PRAFT_PROGRESS_SNAPSHOT;
    p->snap_index = s->index;
    p->snap_term = s->term;
    p->snap_size = s->size;
    p->snap_offset = 0;
    p->snap_inflight = false;
    p->snap_idle = 0;
    p->probe_sent = false;
    p->infl_n = 0;
    p->infl_bytes = 0;
    n->c.snapshots_sent++;
    return praft__send_snapshot_chunk(n, p);
}

int praft__send_snapshot_chunk(praft_node *n, praft_pr *p)
{
    const praft_snapshot_meta *s = &n->log.snap;
    if (!same_snapshot(s, p->snap_index, p->snap_term)) {
        /* A newer snapshot was taken: abort this transfer and send the new one. */
        return praft__start_snapshot(n, p);
    }
    size_t cap = (size_t)PR_MIN((uint64_t)n->o.snapshot_chunk_bytes, s->size - p->snap_offset);
    uint8_t *buf = NULL;
    praft_snapshot_meta *meta = malloc(sizeof(*meta));
    if (meta == NULL) {
        return PT_ENOMEM;
    }
    *meta = *s;
    int rv = 0;
    size_t len = 0;
    if (cap > 0) {
        buf = malloc(cap);
        if (buf == NULL) {
            rv = PT_ENOMEM;
            goto err;
        }
        rv = n->st.snapshot_read(n->st.ctx, meta, p->snap_offset, buf, cap, &len);
        if (rv == PT_ENOTFOUND) {
            /* Replaced under our feet: the retry timer tries again with the newest one. */
            p->snap_inflight = true;
            p->snap_idle = 0;
            rv = 0;
            goto err;
        }
        if (rv == 0 && (len == 0 || len > cap)) {
            rv = PT_ECORRUPT; /* shorter than its meta says */
        }
        if (rv != 0) {
            goto err;
        }
    }
    rv = praft__track_free(n, meta);
    if (rv != 0) {
        goto err;
    }
    praft_snapshot_meta *tracked = meta;
    meta = NULL;
    if (buf != NULL) {
        rv = praft__track_free(n, buf);
        if (rv != 0) {
            free(buf); /* meta is tracked already */
            return rv;
        }
    }
    praft_msg m = {.type = PRAFT_MSG_SNAPSHOT,
                   .to = p->id,
                   .snapshot = tracked,
                   .offset = p->snap_offset,
                   .data = buf,
                   .len = len,
                   .done = p->snap_offset + len == s->size};
    rv = praft__send(n, &m, false);
    if (rv != 0) {
        return rv;
    }
    p->snap_inflight = true;
    p->snap_idle = 0;
    return 0;
err:
    free(buf);
    free(meta);
    return rv;
}

int praft__handle_snapshot_resp(praft_node *n, const praft_msg *m)
{
    praft_pr *p = praft__pr_find(n, m->from);
    if (p == NULL || p->state != PRAFT_PROGRESS_SNAPSHOT ||
        !(m->snapshot->index == p->snap_index && m->snapshot->term == p->snap_term) ||
        m->offset > p->snap_size) {
        n->c.msgs_dropped_stale++;
        return 0;
    }
    p->recently_active = true;
    if (!m->reject && m->offset < p->snap_offset) {
        n->c.msgs_dropped_stale++; /* a duplicate acknowledgement */
        return 0;
    }
    /* On a rejection the follower lost track (restart, other transfer): resume where it says. */
    p->snap_offset = m->offset;
    p->snap_inflight = false;
    p->snap_idle = 0;
    if (!m->reject && m->index != 0) {
        /* Installed: the follower's log now ends at m->index (at least the snapshot). */
        p->match = PR_MAX(p->match, m->index);
        praft__pr_become_probe(p);
        return praft__send_append(n, p, true);
    }
    if (p->snap_offset < p->snap_size || m->reject) {
        return praft__send_snapshot_chunk(n, p);
    }
    /* Every byte is there; the follower acknowledges again once installed. */
    p->snap_inflight = true;
    return 0;
}

void praft__tick_snapshots(praft_node *n)
{
    for (size_t i = 0; i < n->n_prs; i++) {
        praft_pr *p = &n->prs[i];
        if (p->state != PRAFT_PROGRESS_SNAPSHOT) {
            continue;
        }
        if (++p->snap_idle >= n->o.snapshot_retry_ticks) {
            /* No progress: resume from the last acknowledged offset. */
            p->snap_inflight = false;
            p->snap_idle = 0;
            (void)praft__send_snapshot_chunk(n, p);
        }
    }
}

/* ---- receiving ---------------------------------------------------------------------------- */

static int reply(praft_node *n, uint64_t to, const praft_snapshot_meta *s, uint64_t offset,
                 bool reject, uint64_t index)
{
    praft_snapshot_meta *meta = calloc(1, sizeof(*meta));
    if (meta == NULL) {
        return PT_ENOMEM;
    }
    meta->index = s->index;
    meta->term = s->term;
    meta->size = s->size;
    int rv = praft__track_free(n, meta);
    if (rv != 0) {
        free(meta);
        return rv;
    }
    praft_msg r = {.type = PRAFT_MSG_SNAPSHOT_RESP,
                   .to = to,
                   .snapshot = meta,
                   .offset = offset,
                   .reject = reject,
                   .index = index};
    /* An acknowledgement vouches for stored chunks: after the write. */
    return praft__send(n, &r, true);
}

void praft__snapshot_rx_reset(praft_node *n)
{
    n->rx_active = false;
    n->rx_next = 0;
}

int praft__handle_snapshot(praft_node *n, const praft_msg *m)
{
    const praft_snapshot_meta *s = m->snapshot;
    n->election_elapsed = 0;
    n->heard_leader_at = n->now + 1;
    if (n->leader != m->from) {
        n->leader = m->from;
        praft__reads_leader_changed(n);
    }
    if (s->index <= n->commit) {
        /* Older than what we know committed: nothing to install (§7). */
        return reply(n, m->from, s, s->size, false, n->commit);
    }
    if (praft__log_term_or0(n, s->index) == s->term) {
        /* Our log already holds the snapshot's last entry, hence everything before it (Log
         * Matching, §5.3): keep the log and its suffix, which a snapshot would discard. */
        int rv = praft__set_commit(n, s->index);
        if (rv != 0) {
            return rv;
        }
        praft__snapshot_rx_reset(n);
        return reply(n, m->from, s, s->size, false, s->index);
    }
    bool same = n->rx_active && same_snapshot(&n->rx_meta, s->index, s->term);
    if (same && m->offset < n->rx_next) {
        n->c.msgs_dropped_stale++; /* a duplicate: acknowledge where we are */
        return reply(n, m->from, s, n->rx_next, false, 0);
    }
    if (n->rx_chunk_pending || n->rx_complete) {
        /* One chunk at a time is handed to the caller, and a complete snapshot is being
         * installed: anything else now is early or stale, and the leader retries. */
        n->c.msgs_dropped_stale++;
        return 0;
    }
    if (m->offset == 0) {
        /* A new transfer: any partial one is dropped (the chunk at offset 0 says so). */
        n->rx_active = true;
        n->rx_meta = *s;
        n->rx_next = 0;
        n->rx_leader = m->from;
    } else if (!same || m->offset > n->rx_next) {
        /* A chunk we cannot place: tell the leader where to resume (0: restart). */
        return reply(n, m->from, s, same ? n->rx_next : 0, true, 0);
    }
    uint8_t *copy = NULL;
    if (m->len > 0) {
        copy = malloc(m->len);
        if (copy == NULL) {
            return PT_ENOMEM;
        }
        memcpy(copy, m->data, m->len);
    }
    free(n->rx_chunk_data);
    n->rx_chunk_pending = true;
    n->rx_chunk_meta = *s;
    n->rx_chunk_offset = m->offset;
    n->rx_chunk_data = copy;
    n->rx_chunk_len = m->len;
    n->rx_chunk_done = m->done;
    n->rx_next = m->offset + m->len;
    if (m->done) {
        return 0; /* acknowledged once installed */
    }
    return reply(n, m->from, s, n->rx_next, false, 0);
}

int praft__snapshot_advance(praft_node *n)
{
    /* The last chunk is durable: install the snapshot (§7). */
    praft_snapshot_meta s = n->rx_meta;
    uint64_t to = n->rx_leader;
    n->rx_complete = false;
    praft__snapshot_rx_reset(n);
    if (s.index <= n->commit) {
        return reply(n, to, &s, s.size, false, n->commit);
    }
    if (praft__log_term_or0(n, s.index) == s.term) {
        /* While the last chunk was being written, appends of the same leader reached past
         * the snapshot, and the log holds its last entry now (hence all before it, §5.3):
         * keep the log. Installing would drop the entries after the snapshot, which this node
         * has accepted and will acknowledge once they are durable. */
        int rv = praft__set_commit(n, s.index);
        if (rv != 0) {
            return rv;
        }
        return reply(n, to, &s, s.size, false, s.index);
    }
    praft__log_restore(n, &s);
    praft__cfg_restored(n, &s.config);
    n->commit = s.index;
    n->applied = s.index;
    n->install_pending = true;
    n->install_meta = s;
    n->c.snapshots_installed++;
    return reply(n, to, &s, s.size, false, s.index);
}

int praft_snapshot_taken(praft_node *n, praft_snapshot_meta *meta)
{
    if (n == NULL || meta == NULL || meta->index > n->applied || meta->index <= n->log.snap.index) {
        return PT_EINVAL;
    }
    if (meta->term == 0) {
        int rv = praft__log_term(n, meta->index, &meta->term);
        if (rv != 0) {
            return rv;
        }
        /* The configuration in force at the snapshot's index. */
        meta->config = n->log.snap.config;
        for (size_t i = 0; i < n->n_hist && n->hist[i].index <= meta->index; i++) {
            meta->config = n->hist[i].cfg;
        }
    }
    n->log.snap = *meta;
    /* Configurations at or before the snapshot live in it now. */
    size_t k = 0;
    while (k < n->n_hist && n->hist[k].index <= meta->index) {
        k++;
    }
    if (k > 0) {
        /* Guarded: memmove with a NULL history (none recorded yet) is undefined even for 0
         * bytes. */
        memmove(n->hist, n->hist + k, (n->n_hist - k) * sizeof(*n->hist));
        n->n_hist -= k;
    }
    return 0;
}
