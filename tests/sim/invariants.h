/*
 * The invariant checker: the safety properties of Raft (§5.2-§5.4, Figure 3, thesis §3.6.3 and
 * §4.1), checked from observations the simulator feeds it after every step. It knows nothing
 * of the simulator itself, so that tests can feed it known-bad observations and watch each be
 * caught.
 *
 * Every psim_inv_* observation returns 0 if it is consistent with everything seen before, or
 * PT_ECORRUPT after recording the first violation in inv->violation (later ones are counted
 * but not kept), or PT_ENOMEM.
 *
 * Nodes are named by id; a node's *lifetime* (slot, incarnation) is what a crash ends: the
 * monotonicity of commit and applied indices holds within a lifetime, since a restarted node
 * rebuilds its state machine from its snapshot and its commit index from its hard state.
 */
#ifndef PLATOON_SIM_INVARIANTS_H
#define PLATOON_SIM_INVARIANTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/pairmap.h"

#define PSIM_MAX_SLOTS 8

typedef struct psim_violation {
    char invariant[40]; /* e.g. "election-safety" */
    char detail[320];   /* "nodes=1,2 term=3 ..." */
} psim_violation;

/* What is known of one committed index: the entry every node applied there. */
typedef struct psim_committed {
    uint64_t term;
    uint64_t data_hash;
    uint64_t state_hash; /* the state machine's digest after applying it */
    uint64_t first_node;
    /* An upper bound on the term in which the entry was committed: the lowest current term
     * of any node when it applied the entry (a node's term is never below the term of the
     * leader that told it the commit index). Leader completeness binds leaders of later
     * terms only: an entry of term 21 committed in term 23 need not be in the log of a
     * leader of term 22. */
    uint64_t commit_term;
    bool known;
} psim_committed;

typedef struct psim_inv_lifetime {
    uint32_t incarnation;
    bool valid;
    uint64_t commit;
    uint64_t applied;
} psim_inv_lifetime;

typedef struct psim_inv {
    psim_pairmap leaders; /* (term, 0) -> leader id */
    psim_pairmap chains;  /* (index, term) -> chain hash of the log prefix ending there */
    psim_pairmap votes;   /* (term, node) -> the vote it made durable in that term */
    psim_pairmap hs_term; /* (node, 0) -> the highest term it made durable */
    psim_pairmap grants;  /* (term, voter) -> the candidate it sent a granted vote to */
    psim_committed *committed;
    size_t n_committed, cap_committed; /* entries 1..n_committed-1 may be known */
    uint64_t max_committed;            /* highest applied index seen anywhere */
    psim_inv_lifetime life[PSIM_MAX_SLOTS];
    bool violated;
    uint64_t n_violations;
    psim_violation violation;
} psim_inv;

void psim_inv_init(psim_inv *inv);
void psim_inv_free(psim_inv *inv);

/* The chain hash of a log prefix: the chain of the previous entry mixed with this entry's
 * index, term, type and data. Two logs with the same chain at an index hold the same prefix. */
uint64_t psim_inv_chain(uint64_t prev_chain, uint64_t index, uint64_t term, uint32_t type,
                        const void *data, size_t len);

/* Election safety (§5.2): @node is leader in @term. At most one leader per term. */
int psim_inv_leader(psim_inv *inv, uint64_t node, uint64_t term);

/* Log matching (§5.3): @node durably holds the entry (@index, @term) ending a prefix whose
 * chain hash is @chain. Two entries with the same index and term must end identical prefixes. */
int psim_inv_append(psim_inv *inv, uint64_t node, uint64_t index, uint64_t term, uint64_t chain);

/* The chain recorded for (index, term), if any (a snapshot's base). */
bool psim_inv_chain_of(const psim_inv *inv, uint64_t index, uint64_t term, uint64_t *chain);

/* A new lifetime of the node in @slot starts with its state machine at @applied (its snapshot
 * index, or 0) and its commit index at @commit. */
int psim_inv_start(psim_inv *inv, int slot, uint32_t incarnation, uint64_t applied,
                   uint64_t commit);

/* State machine safety (§5.4.3) and apply order: @node, in its current term @node_term,
 * applied the entry (@index, @term) whose data hashes to @data_hash, leaving its state machine
 * with digest @state_hash. Entries are
 * applied once each, in index order, and every node applies the same entry at an index. */
int psim_inv_apply(psim_inv *inv, int slot, uint32_t incarnation, uint64_t node, uint64_t node_term,
                   uint64_t index, uint64_t term, uint64_t data_hash, uint64_t state_hash);

/* Snapshot consistency: @node's state machine was restored from (or saved as) a snapshot at
 * (@index, @term) with digest @state_hash. It must match the entry committed there and the
 * state every other node had after applying it. @restore moves the lifetime's applied index. */
int psim_inv_snapshot(psim_inv *inv, int slot, uint32_t incarnation, uint64_t node, uint64_t index,
                      uint64_t term, uint64_t state_hash, bool restore);

/* Commit and applied indices of a lifetime never go backwards, and applied <= commit. */
int psim_inv_progress(psim_inv *inv, int slot, uint32_t incarnation, uint64_t node, uint64_t commit,
                      uint64_t applied);

/* At most one membership change in flight (thesis §4.1): a leader's log holds at most one
 * configuration entry past its commit index. */
int psim_inv_config_in_flight(psim_inv *inv, uint64_t node, uint64_t term, unsigned n_uncommitted);

/* Leader completeness (§5.4.1): the leader @node of @term holds every entry committed in an
 * earlier term (see psim_committed.commit_term). @last_index is its last log index; @term_at(ctx,
 * i, &t) gives the term it holds at i (returning false when it cannot tell, e.g. compacted or not
 * yet visible). */
int psim_inv_leader_log(psim_inv *inv, uint64_t node, uint64_t term, uint64_t last_index,
                        bool (*term_at)(void *ctx, uint64_t index, uint64_t *term), void *ctx);

/* Durable hard state: @node completed a sync of (@term, @vote). Terms never go backwards and a
 * vote once durable in a term never changes or disappears (§5.1 Figure 2, §5.2): not at a
 * restart either, since the disk is all a node keeps. */
int psim_inv_hard_state(psim_inv *inv, uint64_t node, uint64_t term, uint64_t vote);

/* @voter sent a granted vote for @candidate in @term. One vote per term (§5.2). */
int psim_inv_vote_granted(psim_inv *inv, uint64_t voter, uint64_t term, uint64_t candidate);

/* Election quorum (§5.2, thesis §4.3): @leader just became leader of @term. The voters of its
 * configuration are @new_side (and, while joint, @old_side); a majority of each side must have
 * sent it a granted vote in @term (the leader's own vote counts). */
int psim_inv_election_quorum(psim_inv *inv, uint64_t leader, uint64_t term,
                             const uint64_t *new_side, int n_new, const uint64_t *old_side,
                             int n_old);

/* Records a violation found elsewhere (the simulator's own checks: storage contract,
 * liveness, linearizability). Always returns PT_ECORRUPT. */
int psim_inv_fail(psim_inv *inv, const char *invariant, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
