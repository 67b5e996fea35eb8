/*
 * The node's life: creation from storage, role changes, the clock, and the dispatch of
 * messages by term (§5.1: a higher term makes anyone a follower; a lower term is stale) and then
 * by role, through the role's step function.
 */
#include "raft/core.h"

#include <stdlib.h>
#include <string.h>

static int step_follower(praft_node *n, const praft_msg *m);
static int step_candidate(praft_node *n, const praft_msg *m);
static int step_leader(praft_node *n, const praft_msg *m);

/* ---- small shared services ---------------------------------------------------------------- */

int praft__track_free(praft_node *n, void *p)
{
    praft_outbox *ob = &n->ob[n->pending];
    void *f = ob->frees;
    int rv = praft__grow(&f, &ob->cap_frees, ob->n_frees + 1, sizeof(void *));
    ob->frees = f;
    if (rv != 0) {
        return rv;
    }
    ob->frees[ob->n_frees++] = p;
    return 0;
}

int praft__send(praft_node *n, praft_msg *m, bool after)
{
    praft_outbox *ob = &n->ob[n->pending];
    void *p = ob->msgs;
    int rv = praft__grow(&p, &ob->cap_msgs, ob->n_msgs + 1, sizeof(*ob->msgs));
    ob->msgs = p;
    if (rv != 0) {
        return rv;
    }
    p = ob->after;
    rv = praft__grow(&p, &ob->cap_after, ob->n_msgs + 1, 1);
    ob->after = p;
    if (rv != 0) {
        return rv;
    }
    m->from = n->id;
    if (m->term == 0) {
        m->term = n->term;
    }
    ob->msgs[ob->n_msgs] = *m;
    ob->after[ob->n_msgs] = after ? 1 : 0;
    ob->n_msgs++;
    return 0;
}

int praft__set_commit(praft_node *n, uint64_t commit)
{
    if (commit <= n->commit) {
        return 0; /* the commit index never goes backwards */
    }
    n->c.entries_committed += commit - n->commit;
    n->commit = commit;
    praft__cfg_committed(n);
    if (n->role == PRAFT_LEADER) {
        return praft__reads_on_commit(n);
    }
    return 0;
}

bool praft__self_is_learner(praft_node *n)
{
    const praft_member *m = praft_config_find(&n->cfg, n->id);
    return m != NULL && !praft__cfg_is_voter(&n->cfg, n->id);
}

bool praft__promotable(praft_node *n)
{
    /* A node without a configuration, a learner, or a node removed from the cluster never
     * campaigns: it could only disrupt the members. */
    return praft__cfg_is_voter(&n->cfg, n->id);
}

void praft__reset_randomized_timeout(praft_node *n)
{
    /* §5.2: randomized in [T, 2T) so that split votes are rare. */
    uint32_t t = n->o.election_ticks;
    n->randomized_timeout = t + (uint32_t)(praft__rand_next(&n->rng) % t);
}

/* ---- roles -------------------------------------------------------------------------------- */

static void reset(praft_node *n, uint64_t term)
{
    if (term != n->term) {
        n->term = term;
        n->vote = PRAFT_NONE;
    }
    n->leader = PRAFT_NONE;
    n->election_elapsed = 0;
    n->heartbeat_elapsed = 0;
    n->n_votes = 0;
    n->prevote = false;
    praft__reset_randomized_timeout(n);
}

void praft__become_follower(praft_node *n, uint64_t term, uint64_t leader)
{
    uint64_t old_leader = n->leader;
    if (n->role == PRAFT_LEADER) {
        praft__reads_fail_all(n);
        praft__pr_free_all(n);
        n->transferee = PRAFT_NONE;
        n->bcast_pending = false;
        n->read_round_pending = false;
        n->uncommitted_bytes = 0;
    }
    reset(n, term);
    n->leader = leader;
    n->role = praft__self_is_learner(n) ? PRAFT_LEARNER : PRAFT_FOLLOWER;
    n->step = step_follower;
    if (leader != old_leader) {
        praft__reads_leader_changed(n);
    }
}

static void become_candidate(praft_node *n, bool pre)
{
    if (pre) {
        /* thesis §9.6: a pre-candidate keeps its term and vote; it only asks. */
        uint64_t term = n->term, vote = n->vote;
        reset(n, term);
        n->vote = vote;
        n->prevote = true;
    } else {
        reset(n, n->term + 1);
        n->vote = n->id;
    }
    n->role = PRAFT_CANDIDATE;
    n->step = step_candidate;
    praft__reads_leader_changed(n);
}

void praft__become_leader(praft_node *n)
{
    reset(n, n->term);
    n->role = PRAFT_LEADER;
    n->leader = n->id;
    n->step = step_leader;
    n->c.leader_elected++;
    n->transferee = PRAFT_NONE;
    n->uncommitted_bytes = 0;
    if (praft__pr_sync(n) != 0) {
        /* Without memory to track followers this node cannot lead. */
        praft__become_follower(n, n->term, PRAFT_NONE);
        return;
    }
    praft__pr_reset_all(n);
    praft__lease_start(n);
    /* §5.4.2 and §8: a new leader commits a no-op of its term, so that earlier entries become
     * committed and reads can be served (thesis §6.4). */
    if (praft__append_own(n, PRAFT_ENTRY_NOOP, NULL, 0) != 0) {
        praft__become_follower(n, n->term, PRAFT_NONE);
    }
}

int praft__campaign(praft_node *n, bool pre, bool transfer)
{
    if (!praft__promotable(n)) {
        return 0;
    }
    if (n->term >= PRAFT_TERM_MAX) {
        /* The next term would not be followable (see PRAFT_TERM_MAX): stay a follower rather
         * than overflow. A pre-vote asks for that term too, so it is refused as well. */
        n->c.campaigns_refused_term++;
        return 0;
    }
    become_candidate(n, pre);
    if (pre) {
        n->c.prevotes_started++;
    } else {
        n->c.elections_started++;
    }
    uint64_t term = pre ? n->term + 1 : n->term;
    praft_msg self = {
        .type = pre ? PRAFT_MSG_PREVOTE_RESP : PRAFT_MSG_VOTE_RESP, .from = n->id, .term = term};
    int rv = praft__handle_vote_resp(n, &self);
    if (rv != 0 || n->role != PRAFT_CANDIDATE || n->prevote != pre) {
        return rv; /* a single voter wins at once */
    }
    for (uint32_t i = 0; i < n->cfg.n_members; i++) {
        uint64_t id = n->cfg.members[i].id;
        if (id == n->id || !praft__cfg_is_voter(&n->cfg, id)) {
            continue;
        }
        praft_msg m = {.type = pre ? PRAFT_MSG_PREVOTE : PRAFT_MSG_VOTE,
                       .to = id,
                       .term = term,
                       .last_index = praft__log_last(&n->log),
                       .last_term = praft__log_last_term(n),
                       .transfer = transfer};
        /* A vote request depends on the durable term and self-vote (§5.2); a pre-vote
         * depends on nothing. */
        rv = praft__send(n, &m, !pre);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* ---- step --------------------------------------------------------------------------------- */

static int step_follower(praft_node *n, const praft_msg *m)
{
    switch (m->type) {
    case PRAFT_MSG_APPEND:
        return praft__handle_append(n, m);
    case PRAFT_MSG_HEARTBEAT:
        return praft__handle_heartbeat(n, m);
    case PRAFT_MSG_SNAPSHOT:
        return praft__handle_snapshot(n, m);
    case PRAFT_MSG_TIMEOUT_NOW:
        /* thesis §3.10: the leader asks us to start an election at once, skipping pre-vote. */
        if (praft__promotable(n)) {
            return praft__campaign(n, false, true);
        }
        break;
    case PRAFT_MSG_READ_INDEX:
        if (n->leader != PRAFT_NONE) {
            /* A read forwarded to us by mistake: let the asker retry on the real leader. */
            praft_msg r = {.type = PRAFT_MSG_READ_INDEX_RESP,
                           .to = m->from,
                           .context = m->context,
                           .reject = true};
            return praft__send(n, &r, false);
        }
        break;
    case PRAFT_MSG_READ_INDEX_RESP:
        return praft__handle_read_index_resp(n, m);
    default:
        break;
    }
    n->c.msgs_dropped_stale++;
    return 0;
}

static int step_candidate(praft_node *n, const praft_msg *m)
{
    switch (m->type) {
    case PRAFT_MSG_APPEND:
    case PRAFT_MSG_HEARTBEAT:
    case PRAFT_MSG_SNAPSHOT:
        /* §5.2: a leader of our term exists; recognise it. (A pre-candidate at a lower term
         * already became a follower in praft_step.) */
        praft__become_follower(n, m->term, m->from);
        return step_follower(n, m);
    case PRAFT_MSG_VOTE_RESP:
    case PRAFT_MSG_PREVOTE_RESP:
        return praft__handle_vote_resp(n, m);
    case PRAFT_MSG_READ_INDEX_RESP:
        return praft__handle_read_index_resp(n, m);
    default:
        break;
    }
    n->c.msgs_dropped_stale++;
    return 0;
}

static int step_leader(praft_node *n, const praft_msg *m)
{
    switch (m->type) {
    case PRAFT_MSG_APPEND_RESP:
        return praft__handle_append_resp(n, m);
    case PRAFT_MSG_HEARTBEAT_RESP:
        return praft__handle_heartbeat_resp(n, m);
    case PRAFT_MSG_SNAPSHOT_RESP:
        return praft__handle_snapshot_resp(n, m);
    case PRAFT_MSG_READ_INDEX:
        return praft__handle_read_index(n, m);
    default:
        break;
    }
    n->c.msgs_dropped_stale++;
    return 0;
}

static bool valid_entries(const praft_msg *m)
{
    if (m->n_entries > 0 && m->entries == NULL) {
        return false;
    }
    if (m->prev_term > m->term || (m->prev_index == 0 && m->prev_term != 0)) {
        return false;
    }
    uint64_t prev_term = m->prev_term;
    for (size_t i = 0; i < m->n_entries; i++) {
        const praft_entry *e = &m->entries[i];
        if (e->index != m->prev_index + 1 + i || e->term < prev_term || e->term > m->term ||
            e->type > PRAFT_ENTRY_CONFIG || (e->len > 0 && e->data == NULL)) {
            return false;
        }
        if (e->type == PRAFT_ENTRY_CONFIG) {
            praft_config c;
            if (praft_config_decode(e->data, e->len, &c) != 0) {
                return false;
            }
        }
        prev_term = e->term;
    }
    return true;
}

static bool valid(praft_node *n, const praft_msg *m)
{
    if (m->type < PRAFT_MSG_APPEND || m->type > PRAFT_MSG_READ_INDEX_RESP ||
        m->from == PRAFT_NONE || m->from == m->to || m->to != n->id) {
        return false;
    }
    /* A term no node could follow with another would freeze every node that adopted it (§5.1:
     * a higher term is always adopted), so no correct peer can send one. */
    if (m->term > PRAFT_TERM_MAX) {
        return false;
    }
    switch (m->type) {
    case PRAFT_MSG_APPEND:
        return valid_entries(m);
    case PRAFT_MSG_SNAPSHOT: {
        const praft_snapshot_meta *s = m->snapshot;
        if (s == NULL || s->index == 0 || s->term == 0 || s->term > m->term ||
            m->offset > s->size || m->len > s->size - m->offset || (m->len > 0 && !m->data) ||
            (m->done && m->offset + m->len != s->size) ||
            praft__cfg_validate(&s->config, true) != 0) {
            return false;
        }
        return true;
    }
    case PRAFT_MSG_SNAPSHOT_RESP:
        return m->snapshot != NULL;
    default:
        return true;
    }
}

/* Leader stickiness (thesis §4.2.3, with check-quorum §6.2): for an election timeout after it
 * last heard from a leader, a node ignores campaigns (unless the leader itself asked for one:
 * a transfer). It counts from when it heard, whatever happened to its term since: a message of
 * a later term that is no leader's (a late rejected pre-vote answer) moves the node to that
 * term without a leader, and a vote granted then, within the leader's lease (§6.4.1), would
 * let a second leader be elected while the first still serves reads from its lease. */
static bool sticky(const praft_node *n)
{
    if (n->o.disable_check_quorum) {
        return false;
    }
    if (n->role == PRAFT_LEADER) {
        return true; /* the live leader itself: check-quorum deposes it if it is not */
    }
    bool heard = n->heard_leader_at != 0 && n->now + 1 - n->heard_leader_at < n->o.election_ticks;
    /* Leases count on this stickiness, and a restart forgets the leader heard from just
     * before the crash: a restarted node keeps still for an election timeout, as if it had
     * heard from a leader as it started. */
    return heard || (n->o.lease_reads && n->now < n->o.election_ticks);
}

static bool is_leader_msg(uint32_t type)
{
    return type == PRAFT_MSG_APPEND || type == PRAFT_MSG_HEARTBEAT || type == PRAFT_MSG_SNAPSHOT;
}

int praft_step(praft_node *n, const praft_msg *m)
{
    if (n == NULL || m == NULL) {
        return PT_EINVAL;
    }
    if (!valid(n, m)) {
        n->c.msgs_dropped_malformed++;
        return PT_EMALFORMED;
    }
    n->c.msgs_received++;

    if ((m->type == PRAFT_MSG_VOTE || m->type == PRAFT_MSG_PREVOTE) && m->term >= n->term &&
        !m->transfer && sticky(n)) {
        n->c.msgs_dropped_stale++;
        return 0;
    }
    if (m->term > n->term) {
        /* thesis §9.6: a pre-vote request never changes the receiver's term, and a granted
         * pre-vote carries the term we would campaign with: not a new term either. */
        bool keeps_term =
            m->type == PRAFT_MSG_PREVOTE || (m->type == PRAFT_MSG_PREVOTE_RESP && !m->reject);
        if (!keeps_term) {
            praft__become_follower(n, m->term, is_leader_msg(m->type) ? m->from : PRAFT_NONE);
        }
    } else if (m->term < n->term) {
        if ((is_leader_msg(m->type) || m->type == PRAFT_MSG_TIMEOUT_NOW) &&
            (!n->o.disable_check_quorum || !n->o.disable_pre_vote)) {
            /* A stale leader would otherwise never learn of the new term: with check-quorum
             * or pre-vote our own higher term may not reach it through elections. */
            praft_msg r = {.type = PRAFT_MSG_APPEND_RESP, .to = m->from};
            int rv = praft__send(n, &r, true);
            if (rv != 0) {
                return rv;
            }
        } else if (m->type == PRAFT_MSG_PREVOTE) {
            praft_msg r = {.type = PRAFT_MSG_PREVOTE_RESP, .to = m->from, .reject = true};
            int rv = praft__send(n, &r, true);
            if (rv != 0) {
                return rv;
            }
        }
        n->c.msgs_dropped_stale++;
        return 0;
    }

    if (m->type == PRAFT_MSG_VOTE || m->type == PRAFT_MSG_PREVOTE) {
        return praft__handle_vote_request(n, m);
    }
    return n->step(n, m);
}

/* ---- clock -------------------------------------------------------------------------------- */

void praft_tick(praft_node *n)
{
    n->now++;
    if (n->role == PRAFT_LEADER) {
        praft__lease_tick(n);
        praft__tick_leader(n);
    } else {
        praft__tick_election(n);
    }
}

/* ---- proposals ---------------------------------------------------------------------------- */

int praft_propose(praft_node *n, const void *data, size_t len, uint64_t *index, uint64_t *term)
{
    if (n == NULL || (len > 0 && data == NULL)) {
        return PT_EINVAL;
    }
    if (n->role != PRAFT_LEADER) {
        return PT_ENOTLEADER;
    }
    if (n->transferee != PRAFT_NONE) {
        /* thesis §3.10: new proposals would only delay the transfer. */
        return PT_ETRANSFER;
    }
    if (len > UINT32_MAX) {
        return PT_ETOOBIG;
    }
    if (n->o.max_uncommitted_bytes > 0 && n->uncommitted_bytes > 0 &&
        n->uncommitted_bytes + len > n->o.max_uncommitted_bytes) {
        return PT_EBUSY;
    }
    uint8_t *copy = NULL;
    if (len > 0) {
        copy = malloc(len);
        if (copy == NULL) {
            return PT_ENOMEM;
        }
        memcpy(copy, data, len);
    }
    int rv = praft__append_own(n, PRAFT_ENTRY_NORMAL, copy, (uint32_t)len);
    if (rv != 0) {
        free(copy);
        return rv;
    }
    n->c.entries_proposed++;
    if (index != NULL) {
        *index = praft__log_last(&n->log);
    }
    if (term != NULL) {
        *term = n->term;
    }
    return 0;
}

/* ---- creation ----------------------------------------------------------------------------- */

/* Reads the configuration entries of the log after the snapshot (thesis §4.1: the latest one
 * is in effect, committed or not). */
static int load_configs(praft_node *n, uint64_t lo, uint64_t last)
{
    int rv = 0;
    praft_entry *buf = NULL;
    const uint64_t batch = 256;
    buf = malloc(batch * sizeof(*buf));
    if (buf == NULL) {
        return PT_ENOMEM;
    }
    while (lo <= last) {
        uint64_t hi = PR_MIN(last + 1, lo + batch);
        size_t got = 0;
        rv = n->st.entries(n->st.ctx, lo, hi, 4u << 20, buf, &got);
        if (rv == 0 && got == 0) {
            rv = PT_ECORRUPT;
        }
        if (rv != 0) {
            goto out;
        }
        for (size_t i = 0; i < got; i++) {
            if (rv == 0 && (buf[i].index != lo + i)) {
                rv = PT_ECORRUPT;
            }
            if (rv == 0 && buf[i].type == PRAFT_ENTRY_CONFIG) {
                rv = praft__cfg_appended(n, buf[i].index, buf[i].data, buf[i].len);
            }
            free(buf[i].data);
        }
        if (rv != 0) {
            goto out;
        }
        lo += got;
    }
out:
    free(buf);
    return rv;
}

int praft_new(const praft_options *opts, const praft_storage *storage, praft_node **out)
{
    int rv;
    if (opts == NULL || storage == NULL || out == NULL || praft_options_validate(opts, NULL) != 0) {
        return PT_EINVAL;
    }
    praft_node *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        return PT_ENOMEM;
    }
    n->o = *opts;
    n->st = *storage;
    n->id = opts->id;
    n->rng = opts->seed;
    n->step = step_follower;
    n->role = PRAFT_FOLLOWER;
    if (opts->lease_reads) {
        n->lease_rounds = calloc(opts->election_ticks, sizeof(*n->lease_rounds));
        if (n->lease_rounds == NULL) {
            rv = PT_ENOMEM;
            goto err;
        }
    }

    praft_hard_state hs;
    uint64_t first, last;
    memset(&hs, 0, sizeof(hs));
    rv = n->st.initial_state(n->st.ctx, &hs, &n->log.snap);
    if (rv == 0) {
        rv = n->st.first_index(n->st.ctx, &first);
    }
    if (rv == 0) {
        rv = n->st.last_index(n->st.ctx, &last);
    }
    if (rv != 0) {
        goto err;
    }
    praft_log *l = &n->log;
    /* The storage may keep a few entries before its snapshot; the core starts after it. */
    if (first > l->snap.index + 1 || last + 1 < first || last < l->snap.index || hs.commit > last ||
        (l->snap.index > 0 && l->snap.term == 0) || hs.term > PRAFT_TERM_MAX) {
        rv = PT_ECORRUPT;
        goto err;
    }
    if (l->snap.index > 0 && praft__cfg_validate(&l->snap.config, true) != 0) {
        rv = PT_ECORRUPT;
        goto err;
    }
    l->mem_first = last + 1;
    l->unstable = last + 1;
    l->persisted = last;
    n->term = hs.term;
    n->vote = hs.vote;
    n->commit = PR_MAX(hs.commit, l->snap.index);
    n->applied = l->snap.index;
    n->cfg = l->snap.config;
    rv = load_configs(n, l->snap.index + 1, last);
    if (rv != 0) {
        goto err;
    }
    n->prev_hs = hs;
    n->prev_term = n->term;
    praft__become_follower(n, n->term, PRAFT_NONE);
    n->prev_role = n->role;
    *out = n;
    return 0;
err:
    praft_free(n);
    return rv;
}

void praft_free(praft_node *n)
{
    if (n == NULL) {
        return;
    }
    praft__pr_free_all(n);
    praft__outbox_free(&n->ob[0]);
    praft__outbox_free(&n->ob[1]);
    praft__log_free(&n->log);
    free(n->hist);
    free(n->reads_q);
    free(n->lease_rounds);
    free(n->fwd);
    free(n->done_reads);
    free(n->rx_chunk_data);
    free(n->rd_now);
    free(n->rd_after);
    free(n->rd_entries);
    free(n->rd_reads);
    free(n);
}

int praft_bootstrap_entry(const praft_config *config, praft_entry *out)
{
    if (config == NULL || out == NULL || praft__cfg_validate(config, false) != 0) {
        return PT_EINVAL;
    }
    uint8_t *data = NULL;
    size_t len = 0;
    int rv = praft_config_encode(config, &data, &len);
    if (rv != 0) {
        return rv;
    }
    *out = (praft_entry){
        .term = 1, .index = 1, .type = PRAFT_ENTRY_CONFIG, .len = (uint32_t)len, .data = data};
    return 0;
}
