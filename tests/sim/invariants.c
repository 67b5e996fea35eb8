#include "sim/invariants.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/checksum.h"
#include "platoon/error.h"
#include "sim/rng.h"

void psim_inv_init(psim_inv *inv)
{
    memset(inv, 0, sizeof(*inv));
    psim_pairmap_init(&inv->leaders);
    psim_pairmap_init(&inv->chains);
    psim_pairmap_init(&inv->votes);
    psim_pairmap_init(&inv->hs_term);
    psim_pairmap_init(&inv->grants);
}

void psim_inv_free(psim_inv *inv)
{
    psim_pairmap_free(&inv->leaders);
    psim_pairmap_free(&inv->chains);
    psim_pairmap_free(&inv->votes);
    psim_pairmap_free(&inv->hs_term);
    psim_pairmap_free(&inv->grants);
    free(inv->committed);
    inv->committed = NULL;
}

uint64_t psim_inv_chain(uint64_t prev_chain, uint64_t index, uint64_t term, uint32_t type,
                        const void *data, size_t len)
{
    uint64_t h = psim_mix(prev_chain, index);
    h = psim_mix(h, term);
    h = psim_mix(h, type);
    return psim_mix(h, pt__checksum(data, len));
}

int psim_inv_fail(psim_inv *inv, const char *invariant, const char *fmt, ...)
{
    inv->n_violations++;
    if (!inv->violated) {
        inv->violated = true;
        snprintf(inv->violation.invariant, sizeof(inv->violation.invariant), "%s", invariant);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(inv->violation.detail, sizeof(inv->violation.detail), fmt, ap);
        va_end(ap);
    }
    return PT_ECORRUPT;
}

int psim_inv_leader(psim_inv *inv, uint64_t node, uint64_t term)
{
    uint64_t other;
    if (psim_pairmap_get(&inv->leaders, term, 0, &other)) {
        if (other != node) {
            return psim_inv_fail(inv, "election-safety",
                                 "nodes=%" PRIu64 ",%" PRIu64 " term=%" PRIu64
                                 ": two leaders in one term",
                                 other, node, term);
        }
        return 0;
    }
    return psim_pairmap_put(&inv->leaders, term, 0, node);
}

int psim_inv_append(psim_inv *inv, uint64_t node, uint64_t index, uint64_t term, uint64_t chain)
{
    uint64_t known;
    if (psim_pairmap_get(&inv->chains, index, term, &known)) {
        if (known != chain) {
            return psim_inv_fail(inv, "log-matching",
                                 "nodes=%" PRIu64 " index=%" PRIu64 " term=%" PRIu64
                                 ": entry ends a log prefix that differs from another node's "
                                 "entry with the same index and term",
                                 node, index, term);
        }
        return 0;
    }
    return psim_pairmap_put(&inv->chains, index, term, chain);
}

bool psim_inv_chain_of(const psim_inv *inv, uint64_t index, uint64_t term, uint64_t *chain)
{
    return psim_pairmap_get(&inv->chains, index, term, chain);
}

static int committed_reserve(psim_inv *inv, uint64_t index)
{
    if (index < inv->cap_committed) {
        if (index >= inv->n_committed) {
            inv->n_committed = index + 1;
        }
        return 0;
    }
    size_t cap = inv->cap_committed ? inv->cap_committed : 1024;
    while (cap <= index) {
        cap *= 2;
    }
    psim_committed *c = realloc(inv->committed, cap * sizeof(*c));
    if (c == NULL) {
        return PT_ENOMEM;
    }
    memset(c + inv->cap_committed, 0, (cap - inv->cap_committed) * sizeof(*c));
    inv->committed = c;
    inv->cap_committed = cap;
    inv->n_committed = index + 1;
    return 0;
}

int psim_inv_start(psim_inv *inv, int slot, uint32_t incarnation, uint64_t applied, uint64_t commit)
{
    if (slot < 0 || slot >= PSIM_MAX_SLOTS) {
        return PT_EINVAL;
    }
    inv->life[slot] = (psim_inv_lifetime){
        .incarnation = incarnation, .valid = true, .commit = commit, .applied = applied};
    return 0;
}

static psim_inv_lifetime *lifetime(psim_inv *inv, int slot, uint32_t incarnation)
{
    if (slot < 0 || slot >= PSIM_MAX_SLOTS) {
        return NULL;
    }
    psim_inv_lifetime *l = &inv->life[slot];
    if (!l->valid || l->incarnation != incarnation) {
        *l = (psim_inv_lifetime){.incarnation = incarnation, .valid = true};
    }
    return l;
}

int psim_inv_apply(psim_inv *inv, int slot, uint32_t incarnation, uint64_t node, uint64_t node_term,
                   uint64_t index, uint64_t term, uint64_t data_hash, uint64_t state_hash)
{
    psim_inv_lifetime *l = lifetime(inv, slot, incarnation);
    if (l == NULL) {
        return PT_EINVAL;
    }
    if (index != l->applied + 1) {
        return psim_inv_fail(inv, index <= l->applied ? "duplicate-apply" : "apply-gap",
                             "nodes=%" PRIu64 " index=%" PRIu64 " applied=%" PRIu64
                             ": committed entries must be applied once each, in index order",
                             node, index, l->applied);
    }
    l->applied = index;
    int rc = committed_reserve(inv, index);
    if (rc != 0) {
        return rc;
    }
    psim_committed *c = &inv->committed[index];
    if (!c->known) {
        *c = (psim_committed){.term = term,
                              .data_hash = data_hash,
                              .state_hash = state_hash,
                              .first_node = node,
                              .commit_term = node_term,
                              .known = true};
        if (index > inv->max_committed) {
            inv->max_committed = index;
        }
        return 0;
    }
    if (c->term != term || c->data_hash != data_hash) {
        return psim_inv_fail(inv, "state-machine-safety",
                             "nodes=%" PRIu64 ",%" PRIu64 " index=%" PRIu64
                             ": applied different entries (terms %" PRIu64 " and %" PRIu64 ")",
                             c->first_node, node, index, c->term, term);
    }
    if (node_term < c->commit_term) {
        c->commit_term = node_term;
    }
    if (c->state_hash != state_hash) {
        return psim_inv_fail(inv, "state-divergence",
                             "nodes=%" PRIu64 ",%" PRIu64 " index=%" PRIu64
                             ": same entries applied, different state machine contents",
                             c->first_node, node, index);
    }
    return 0;
}

int psim_inv_snapshot(psim_inv *inv, int slot, uint32_t incarnation, uint64_t node, uint64_t index,
                      uint64_t term, uint64_t state_hash, bool restore)
{
    psim_inv_lifetime *l = lifetime(inv, slot, incarnation);
    if (l == NULL) {
        return PT_EINVAL;
    }
    if (index < inv->n_committed && inv->committed[index].known) {
        const psim_committed *c = &inv->committed[index];
        if (c->term != term) {
            return psim_inv_fail(inv, "snapshot-consistency",
                                 "nodes=%" PRIu64 " index=%" PRIu64 ": snapshot term %" PRIu64
                                 " but the entry committed there has term %" PRIu64,
                                 node, index, term, c->term);
        }
        if (c->state_hash != state_hash) {
            return psim_inv_fail(inv, "snapshot-consistency",
                                 "nodes=%" PRIu64 ",%" PRIu64 " index=%" PRIu64
                                 ": snapshot state differs from the state after applying "
                                 "the committed entries",
                                 node, c->first_node, index);
        }
    }
    if (restore) {
        if (index < l->applied) {
            return psim_inv_fail(inv, "snapshot-consistency",
                                 "nodes=%" PRIu64 " index=%" PRIu64 " applied=%" PRIu64
                                 ": restored a snapshot older than the applied state",
                                 node, index, l->applied);
        }
        l->applied = index;
        if (l->commit < index) {
            l->commit = index;
        }
    }
    return 0;
}

int psim_inv_progress(psim_inv *inv, int slot, uint32_t incarnation, uint64_t node, uint64_t commit,
                      uint64_t applied)
{
    psim_inv_lifetime *l = lifetime(inv, slot, incarnation);
    if (l == NULL) {
        return PT_EINVAL;
    }
    if (commit < l->commit) {
        return psim_inv_fail(inv, "commit-monotonic",
                             "nodes=%" PRIu64 " index=%" PRIu64 " was=%" PRIu64
                             ": commit index went backwards",
                             node, commit, l->commit);
    }
    l->commit = commit;
    if (applied > commit) {
        return psim_inv_fail(inv, "applied-le-commit",
                             "nodes=%" PRIu64 " index=%" PRIu64 " commit=%" PRIu64
                             ": applied beyond the commit index",
                             node, applied, commit);
    }
    return 0;
}

int psim_inv_config_in_flight(psim_inv *inv, uint64_t node, uint64_t term, unsigned n_uncommitted)
{
    if (n_uncommitted > 1) {
        return psim_inv_fail(inv, "single-config-change",
                             "nodes=%" PRIu64 " term=%" PRIu64
                             ": %u uncommitted configuration entries in the leader's log",
                             node, term, n_uncommitted);
    }
    return 0;
}

int psim_inv_leader_log(psim_inv *inv, uint64_t node, uint64_t term, uint64_t last_index,
                        bool (*term_at)(void *ctx, uint64_t index, uint64_t *term), void *ctx)
{
    for (uint64_t i = 1; i <= inv->max_committed && i < inv->n_committed; i++) {
        const psim_committed *c = &inv->committed[i];
        if (!c->known || c->commit_term >= term) {
            continue;
        }
        if (i > last_index) {
            return psim_inv_fail(inv, "leader-completeness",
                                 "nodes=%" PRIu64 " term=%" PRIu64 " index=%" PRIu64
                                 ": leader's log ends at %" PRIu64
                                 " before an entry committed in term %" PRIu64,
                                 node, term, i, last_index, c->term);
        }
        uint64_t t;
        if (term_at(ctx, i, &t) && t != c->term) {
            return psim_inv_fail(inv, "leader-completeness",
                                 "nodes=%" PRIu64 " term=%" PRIu64 " index=%" PRIu64
                                 ": leader holds term %" PRIu64 " where term %" PRIu64
                                 " was committed",
                                 node, term, i, t, c->term);
        }
    }
    return 0;
}

int psim_inv_hard_state(psim_inv *inv, uint64_t node, uint64_t term, uint64_t vote)
{
    uint64_t prev_term = 0, prev_vote = 0;
    if (psim_pairmap_get(&inv->hs_term, node, 0, &prev_term) && term < prev_term) {
        return psim_inv_fail(inv, "term-regressed",
                             "nodes=%" PRIu64 " term=%" PRIu64
                             ": durable term went back from %" PRIu64,
                             node, term, prev_term);
    }
    if (psim_pairmap_get(&inv->votes, term, node, &prev_vote) && prev_vote != vote) {
        return psim_inv_fail(inv, "double-vote",
                             "nodes=%" PRIu64 " term=%" PRIu64
                             ": durable vote changed from %" PRIu64 " to %" PRIu64
                             " within the term",
                             node, term, prev_vote, vote);
    }
    int rc = psim_pairmap_put(&inv->hs_term, node, 0, term);
    if (rc == 0 && vote != 0) {
        rc = psim_pairmap_put(&inv->votes, term, node, vote);
    }
    return rc;
}

int psim_inv_vote_granted(psim_inv *inv, uint64_t voter, uint64_t term, uint64_t candidate)
{
    uint64_t prev = 0;
    if (psim_pairmap_get(&inv->grants, term, voter, &prev) && prev != candidate) {
        return psim_inv_fail(inv, "double-vote",
                             "nodes=%" PRIu64 " term=%" PRIu64 ": voted for %" PRIu64
                             " and for %" PRIu64 " in one term",
                             voter, term, prev, candidate);
    }
    return psim_pairmap_put(&inv->grants, term, voter, candidate);
}

static bool side_elected(psim_inv *inv, uint64_t leader, uint64_t term, const uint64_t *side, int n)
{
    int yes = 0;
    for (int i = 0; i < n; i++) {
        uint64_t v = 0;
        yes +=
            side[i] == leader || (psim_pairmap_get(&inv->grants, term, side[i], &v) && v == leader);
    }
    return n == 0 || yes > n / 2;
}

int psim_inv_election_quorum(psim_inv *inv, uint64_t leader, uint64_t term,
                             const uint64_t *new_side, int n_new, const uint64_t *old_side,
                             int n_old)
{
    bool a = side_elected(inv, leader, term, new_side, n_new);
    bool b = side_elected(inv, leader, term, old_side, n_old);
    if (!a || !b) {
        return psim_inv_fail(inv, "election-quorum",
                             "nodes=%" PRIu64 " term=%" PRIu64
                             ": leader without durable votes from a majority of the %s "
                             "configuration (%d new voters, %d old)",
                             leader, term, a ? "old" : "new", n_new, n_old);
    }
    return 0;
}
