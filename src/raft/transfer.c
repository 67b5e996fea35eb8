/*
 * Leadership transfer (thesis §3.10): the leader stops taking proposals, brings the target's
 * log up to date, then tells it to start an election at once (TIMEOUT_NOW). If no new leader
 * emerges within an election timeout, the transfer is abandoned.
 */
#include "raft/core.h"

static int send_timeout_now(praft_node *n, uint64_t to)
{
    praft_msg m = {.type = PRAFT_MSG_TIMEOUT_NOW, .to = to};
    /* The target's election ignores leader stickiness, so no lease holds from now on in this
     * term (thesis §6.4.1): reads take a heartbeat round. */
    n->lease_void = true;
    return praft__send(n, &m, false);
}

int praft__transfer_check(praft_node *n, praft_pr *p)
{
    if (n->cfg.joint) {
        /* Once C_old,new commits the leader appends C_new by itself (thesis §4.3), even during
         * a transfer: a target told to campaign before that would lack C_new, and voters that
         * hold it refuse it (§5.4.1). TimeoutNow waits until the configuration is simple. */
        return 0;
    }
    if (p->id == n->transferee && p->match == praft__log_last(&n->log)) {
        return send_timeout_now(n, p->id);
    }
    return 0;
}

void praft__tick_transfer(praft_node *n)
{
    if (n->transferee == PRAFT_NONE) {
        return;
    }
    if (++n->transfer_elapsed >= n->o.election_ticks) {
        praft__transfer_abort(n);
    }
}

void praft__transfer_abort(praft_node *n)
{
    n->transferee = PRAFT_NONE;
    n->transfer_elapsed = 0;
}

int praft_transfer_leadership(praft_node *n, uint64_t to)
{
    if (n == NULL) {
        return PT_EINVAL;
    }
    if (n->role != PRAFT_LEADER) {
        return PT_ENOTLEADER;
    }
    if (n->transferee != PRAFT_NONE) {
        return PT_ETRANSFER;
    }
    if (to == PRAFT_NONE) {
        /* The most up-to-date other voter needs the least catching up. */
        praft_pr *best = NULL;
        for (size_t i = 0; i < n->n_prs; i++) {
            praft_pr *p = &n->prs[i];
            if (praft__cfg_is_voter(&n->cfg, p->id) && (best == NULL || p->match > best->match)) {
                best = p;
            }
        }
        if (best == NULL) {
            return PT_ENOQUORUM;
        }
        to = best->id;
    }
    if (to == n->id || !praft__cfg_is_voter(&n->cfg, to)) {
        return PT_EINVAL;
    }
    praft_pr *p = praft__pr_find(n, to);
    if (p == NULL) {
        return PT_EINVAL;
    }
    n->transferee = to;
    n->transfer_elapsed = 0;
    if (n->cfg.joint) {
        return praft__send_append(n, p, false); /* TimeoutNow waits for C_new (see above) */
    }
    if (p->match == praft__log_last(&n->log)) {
        return send_timeout_now(n, to);
    }
    return praft__send_append(n, p, false);
}
