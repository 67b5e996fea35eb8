/*
 * Elections (§5.2, §5.4.1), pre-vote (thesis §9.6) and check-quorum (thesis §6.2), and the
 * clock that drives them.
 */
#include "raft/core.h"

#include <string.h>

int praft__handle_vote_request(praft_node *n, const praft_msg *m)
{
    bool pre = m->type == PRAFT_MSG_PREVOTE;
    /* thesis §4.2.3: a server answers RequestVote without consulting its configuration. Ours
     * may be stale: a learner may not have received its own promotion yet, and a voter may
     * not have received the promotion of the candidate, who is then a legitimate voter of the
     * configuration that needs our vote. Refusing either deadlocks that configuration. Only
     * the candidate decides whose votes count (the voters of its own configuration, see
     * praft__handle_vote_resp). Removed servers gain nothing from this: their logs lack the
     * committed configuration that removed them, which every majority they would need holds,
     * so they win neither pre-votes nor votes (§5.4.1); pre-vote keeps them from raising
     * terms (thesis §9.6) and followers of a live leader ignore them (leader stickiness, in
     * praft_step).
     * §5.2: one vote per term, first come first served; a pre-vote for a later term is
     * granted without any promise (thesis §9.6). */
    bool can_vote = n->vote == m->from || (n->vote == PRAFT_NONE && n->leader == PRAFT_NONE) ||
                    (pre && m->term > n->term);
    bool grant = can_vote && praft__log_up_to_date(n, m->last_index, m->last_term); /* §5.4.1 */
    praft_msg r = {.type = pre ? PRAFT_MSG_PREVOTE_RESP : PRAFT_MSG_VOTE_RESP, .to = m->from};
    if (grant) {
        r.term = m->term;
        if (!pre) {
            n->vote = m->from;
            /* Granting a vote restarts the election timer (§5.2). */
            n->election_elapsed = 0;
        }
    } else {
        r.term = n->term;
        r.reject = true;
    }
    /* A grant depends on the vote being durable (§5.1 Figure 2): send it after persisting. */
    return praft__send(n, &r, !pre);
}

static int vote_of(void *ctx, uint64_t id)
{
    praft_node *n = ctx;
    for (uint32_t i = 0; i < n->n_votes; i++) {
        if (n->votes[i].id == id) {
            return n->votes[i].granted ? 1 : 0;
        }
    }
    return -1;
}

int praft__handle_vote_resp(praft_node *n, const praft_msg *m)
{
    bool pre = m->type == PRAFT_MSG_PREVOTE_RESP;
    if (pre != n->prevote || (pre && !m->reject && m->term != n->term + 1) ||
        (!pre && m->term != n->term)) {
        n->c.msgs_dropped_stale++;
        return 0;
    }
    if (!praft__cfg_is_voter(&n->cfg, m->from)) {
        /* thesis §4.3: only the voters of the candidate's own configuration count. A learner
         * or a stranger may grant (see above), but its answer is not even recorded, so it
         * can neither count nor take the place of a voter's answer. */
        n->c.msgs_dropped_stale++;
        return 0;
    }
    if (vote_of(n, m->from) >= 0) {
        n->c.msgs_dropped_stale++; /* a duplicate */
        return 0;
    }
    if (n->n_votes < PRAFT_MAX_MEMBERS) {
        n->votes[n->n_votes++] = (praft_vote_rec){.id = m->from, .granted = !m->reject};
    }
    switch (praft__quorum_result(&n->cfg, vote_of, n)) {
    case PR_VOTE_WON:
        if (pre) {
            return praft__campaign(n, false, false);
        }
        praft__become_leader(n);
        return 0;
    case PR_VOTE_LOST:
        praft__become_follower(n, n->term, PRAFT_NONE);
        return 0;
    default:
        return 0;
    }
}

void praft__tick_election(praft_node *n)
{
    n->election_elapsed++;
    if (praft__promotable(n) && n->election_elapsed >= n->randomized_timeout) {
        n->election_elapsed = 0;
        (void)praft__campaign(n, !n->o.disable_pre_vote, false);
    }
}

static int recently_active(void *ctx, uint64_t id)
{
    praft_node *n = ctx;
    if (id == n->id) {
        return 1;
    }
    praft_pr *p = praft__pr_find(n, id);
    return p != NULL && p->recently_active ? 1 : 0;
}

void praft__tick_leader(praft_node *n)
{
    n->election_elapsed++;
    n->heartbeat_elapsed++;
    praft__tick_transfer(n);
    if (n->election_elapsed >= n->o.election_ticks) {
        n->election_elapsed = 0;
        if (!n->o.disable_check_quorum) {
            /* thesis §6.2: a leader that has not heard from a majority within an election
             * timeout steps down, so that a partitioned leader does not serve stale reads or
             * hold clients forever. */
            if (praft__quorum_result(&n->cfg, recently_active, n) != PR_VOTE_WON) {
                praft__become_follower(n, n->term, PRAFT_NONE);
                return;
            }
            for (size_t i = 0; i < n->n_prs; i++) {
                n->prs[i].recently_active = false;
            }
        }
    }
    if (n->heartbeat_elapsed >= n->o.heartbeat_ticks) {
        n->heartbeat_elapsed = 0;
        (void)praft__bcast_heartbeat(n, praft__heartbeat_context(n));
    }
    praft__tick_snapshots(n);
}
