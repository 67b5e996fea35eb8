/*
 * Log replication (§5.3): AppendEntries and its consistency check with fast backtracking,
 * pipelined within each follower's window, heartbeats, and the commit rule (§5.4.2).
 */
#include "raft/core.h"

#include <stdlib.h>
#include <string.h>

int praft__append_own(praft_node *n, uint32_t type, uint8_t *data, uint32_t len)
{
    int rv = praft__log_append_owned(n, n->term, type, data, len);
    if (rv != 0) {
        return rv;
    }
    uint64_t index = praft__log_last(&n->log);
    if (type == PRAFT_ENTRY_CONFIG) {
        rv = praft__cfg_appended(n, index, data, len);
        if (rv != 0) {
            /* Undo the append: the entry is ours and nothing points at it yet. */
            n->log.n--;
            n->log.mem_bytes -= len;
            return rv;
        }
    }
    n->uncommitted_bytes += len;
    /* Appends to followers are built when the next ready is taken, so that every proposal
     * made meanwhile travels in the same message (batching). */
    n->bcast_pending = true;
    return 0;
}

static int send_empty_or_entries(praft_node *n, praft_pr *p, bool allow_empty, bool *sent)
{
    praft_log *l = &n->log;
    uint64_t last = praft__log_last(l);
    uint64_t lo = p->next;
    *sent = false;
    if (lo > last + 1) {
        lo = last + 1;
    }
    if (lo > last && !allow_empty) {
        return 0;
    }
    uint64_t prev_term;
    int rv = praft__log_term(n, lo - 1, &prev_term);
    praft_entry *ents = NULL;
    size_t count = 0;
    if (rv == 0) {
        rv = praft__log_slice(n, &n->ob[n->pending], lo, last + 1, n->o.max_msg_bytes, &ents,
                              &count);
    }
    if (rv == PT_ECOMPACTED) {
        /* §7: the entries the follower needs are gone; send the snapshot instead. */
        return praft__start_snapshot(n, p);
    }
    if (rv != 0) {
        return rv;
    }
    praft_msg m = {.type = PRAFT_MSG_APPEND,
                   .to = p->id,
                   .prev_index = lo - 1,
                   .prev_term = prev_term,
                   .commit = n->commit,
                   .entries = ents,
                   .n_entries = count};
    rv = praft__send(n, &m, false);
    if (rv != 0) {
        return rv;
    }
    *sent = true;
    if (count > 0) {
        size_t bytes = 0;
        for (size_t i = 0; i < count; i++) {
            bytes += ents[i].len;
        }
        uint64_t hi = ents[count - 1].index;
        if (p->state == PRAFT_PROGRESS_REPLICATE) {
            /* Optimistically assume delivery and keep the pipe full. */
            p->next = hi + 1;
            praft__pr_infl_add(n, p, hi, bytes);
        }
    }
    if (p->state == PRAFT_PROGRESS_PROBE) {
        p->probe_sent = true;
    }
    return 0;
}

int praft__send_append(praft_node *n, praft_pr *p, bool allow_empty)
{
    if (p->state == PRAFT_PROGRESS_SNAPSHOT) {
        if (!p->snap_inflight) {
            return praft__send_snapshot_chunk(n, p);
        }
        return 0;
    }
    int rv = 0;
    bool sent;
    for (int i = 0;; i++) {
        if (p->state == PRAFT_PROGRESS_PROBE && p->probe_sent) {
            break;
        }
        if (p->state == PRAFT_PROGRESS_REPLICATE && praft__pr_full(n, p)) {
            break;
        }
        rv = send_empty_or_entries(n, p, allow_empty && i == 0, &sent);
        if (rv != 0 || !sent || p->state != PRAFT_PROGRESS_REPLICATE) {
            break;
        }
    }
    return rv;
}

int praft__bcast_append(praft_node *n)
{
    for (size_t i = 0; i < n->n_prs; i++) {
        int rv = praft__send_append(n, &n->prs[i], true);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

int praft__bcast_heartbeat(praft_node *n, uint64_t context)
{
    for (size_t i = 0; i < n->n_prs; i++) {
        praft_pr *p = &n->prs[i];
        /* The follower may not hold our entries up to commit yet: only vouch for what it
         * matches (a follower's commit never passes what the leader knows it holds). */
        praft_msg m = {.type = PRAFT_MSG_HEARTBEAT,
                       .to = p->id,
                       .commit = PR_MIN(p->match, n->commit),
                       .context = context};
        int rv = praft__send(n, &m, false);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

int praft__maybe_commit(praft_node *n)
{
    uint64_t idx = praft__quorum_commit_index(n);
    if (idx <= n->commit) {
        return 0;
    }
    /* §5.4.2 (Figure 8): only an entry of the current term is committed by counting
     * replicas; earlier ones are committed with it. */
    if (praft__log_term_or0(n, idx) != n->term) {
        return 0;
    }
    size_t committed_bytes = 0;
    for (uint64_t i = n->commit + 1; i <= idx; i++) {
        praft_entry *e = praft__log_mem(&n->log, i);
        committed_bytes += e ? e->len : 0;
    }
    n->uncommitted_bytes -= PR_MIN(n->uncommitted_bytes, committed_bytes);
    int rv = praft__set_commit(n, idx);
    /* Tell the followers (the new commit index rides on the next appends). */
    n->bcast_pending = n->role == PRAFT_LEADER;
    return rv;
}

static int respond(praft_node *n, const praft_msg *m, uint64_t index, bool reject,
                   uint64_t hint_index, uint64_t hint_term)
{
    praft_msg r = {.type = PRAFT_MSG_APPEND_RESP,
                   .to = m->from,
                   .index = index,
                   .reject = reject,
                   .hint_index = hint_index,
                   .hint_term = hint_term};
    /* An acknowledgement vouches for durable entries: it leaves after the write. */
    return praft__send(n, &r, true);
}

static void heard_from_leader(praft_node *n, uint64_t leader)
{
    n->election_elapsed = 0;
    n->heard_leader_at = n->now + 1; /* + 1: 0 means never */
    if (n->leader != leader) {
        n->leader = leader;
        praft__reads_leader_changed(n);
    }
}

int praft__handle_append(praft_node *n, const praft_msg *m)
{
    heard_from_leader(n, m->from);
    uint64_t prev = m->prev_index, prev_term = m->prev_term;
    const praft_entry *ents = m->entries;
    size_t count = m->n_entries;
    if (prev < n->commit) {
        /* Entries up to our commit index are committed, hence identical to the leader's
         * (Leader Completeness, §5.4): skip them. */
        if (prev + count <= n->commit) {
            return respond(n, m, n->commit, false, 0, 0);
        }
        size_t skip = n->commit - prev;
        prev_term = ents[skip - 1].term;
        prev = n->commit;
        ents += skip;
        count -= skip;
    }
    uint64_t my_term = 0;
    int rv = praft__log_term(n, prev, &my_term);
    if (rv != 0 && rv != PT_EUNAVAILABLE && rv != PT_ECOMPACTED) {
        return rv;
    }
    if (rv != 0 || my_term != prev_term) {
        /* §5.3: the consistency check failed. Hint where our log could match, skipping a whole
         * term per round trip: the last index <= prev whose term is <= prev_term. */
        uint64_t hint_term = 0;
        uint64_t hint = praft__log_find_conflict_by_term(n, PR_MIN(prev, praft__log_last(&n->log)),
                                                         prev_term, &hint_term);
        return respond(n, m, m->prev_index, true, hint, hint_term);
    }
    /* Truncate only on a real conflict: a duplicated or reordered older append must not cut
     * entries we hold beyond it (§5.3). */
    size_t i = 0;
    for (; i < count; i++) {
        uint64_t t = 0;
        if (praft__log_term(n, ents[i].index, &t) != 0 || t != ents[i].term) {
            break;
        }
    }
    if (i < count) {
        if (ents[i].index <= n->commit) {
            /* A leader contradicting a committed entry: impossible from a correct peer. */
            n->c.msgs_dropped_malformed++;
            return PT_EMALFORMED;
        }
        rv = praft__log_append(n, ents + i, count - i);
        if (rv != 0) {
            return rv;
        }
    }
    uint64_t last_new = prev + count;
    /* The commit index is bounded by what this message vouches for, not by our last index:
     * entries past last_new may still be stale. */
    rv = praft__set_commit(n, PR_MIN(m->commit, last_new));
    if (rv != 0) {
        return rv;
    }
    return respond(n, m, last_new, false, 0, 0);
}

int praft__handle_append_resp(praft_node *n, const praft_msg *m)
{
    praft_pr *p = praft__pr_find(n, m->from);
    if (p == NULL) {
        n->c.msgs_dropped_stale++;
        return 0;
    }
    p->recently_active = true;
    if (m->reject) {
        bool stale = p->state == PRAFT_PROGRESS_SNAPSHOT ||
                     (p->state == PRAFT_PROGRESS_REPLICATE && m->index <= p->match) ||
                     (p->state == PRAFT_PROGRESS_PROBE && m->index != p->next - 1);
        if (stale) {
            n->c.msgs_dropped_stale++;
            return 0;
        }
        uint64_t probe = m->hint_index;
        if (m->hint_term > 0) {
            uint64_t t;
            probe = praft__log_find_conflict_by_term(n, m->hint_index, m->hint_term, &t);
        }
        praft__pr_become_probe(p);
        p->next = PR_MAX(PR_MIN(m->index, probe + 1), p->match + 1);
        return praft__send_append(n, p, true);
    }
    if (m->index > praft__log_last(&n->log)) {
        n->c.msgs_dropped_malformed++;
        return PT_EMALFORMED;
    }
    if (m->index > p->match) {
        p->match = m->index;
        if (p->next <= p->match) {
            p->next = p->match + 1;
        }
        if (p->state == PRAFT_PROGRESS_PROBE) {
            praft__pr_become_replicate(p);
        } else if (p->state == PRAFT_PROGRESS_SNAPSHOT && p->match >= p->snap_index) {
            praft__pr_become_probe(p);
            praft__pr_become_replicate(p);
        } else {
            praft__pr_infl_free_to(n, p, m->index);
        }
        uint64_t from = p->id;
        int rv = praft__maybe_commit(n);
        if (rv != 0 || n->role != PRAFT_LEADER) {
            return rv;
        }
        /* Committing may have committed a configuration (leaving a joint one appends C_new),
         * which rebuilds the progress array: @p may now point at another member's slot or at
         * freed memory. Look the sender up again; it may have been removed. */
        p = praft__pr_find(n, from);
        if (p == NULL) {
            return 0;
        }
        rv = praft__transfer_check(n, p);
        if (rv != 0) {
            return rv;
        }
    } else if (p->state == PRAFT_PROGRESS_PROBE) {
        p->probe_sent = false;
    } else {
        n->c.msgs_dropped_stale++;
    }
    return praft__send_append(n, p, false);
}

int praft__handle_heartbeat(praft_node *n, const praft_msg *m)
{
    heard_from_leader(n, m->from);
    int rv = praft__set_commit(n, PR_MIN(m->commit, praft__log_last(&n->log)));
    if (rv != 0) {
        return rv;
    }
    praft_msg r = {.type = PRAFT_MSG_HEARTBEAT_RESP, .to = m->from, .context = m->context};
    return praft__send(n, &r, false);
}

int praft__handle_heartbeat_resp(praft_node *n, const praft_msg *m)
{
    praft_pr *p = praft__pr_find(n, m->from);
    if (p == NULL) {
        n->c.msgs_dropped_stale++;
        return 0;
    }
    p->recently_active = true;
    if (p->state == PRAFT_PROGRESS_PROBE) {
        p->probe_sent = false;
    } else if (p->state == PRAFT_PROGRESS_REPLICATE && praft__pr_full(n, p)) {
        /* An append may have been lost: let one more through; a gap makes the follower
         * reject it and the progress falls back to probing. */
        praft__pr_infl_free_to(n, p, p->infl[p->infl_start].index);
    }
    int rv = 0;
    if (p->match < praft__log_last(&n->log)) {
        rv = praft__send_append(n, p, p->state != PRAFT_PROGRESS_SNAPSHOT);
    }
    if (rv == 0 && m->context != 0) {
        rv = praft__reads_on_heartbeat_resp(n, m->from, m->context);
    }
    return rv;
}
