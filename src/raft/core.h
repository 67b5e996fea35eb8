/*
 * The Raft core's internal state, shared by the files of src/raft/. Nothing here is public: the
 * contract is include/platoon/raft.h.
 */
#ifndef PLATOON_RAFT_CORE_H
#define PLATOON_RAFT_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platoon/raft.h"

/* ---- small helpers ------------------------------------------------------------------------ */

#define PR_MIN(a, b) ((a) < (b) ? (a) : (b))
#define PR_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Grows *arr (of elements of @size bytes, capacity *cap) to hold at least @need elements. */
int praft__grow(void **arr, size_t *cap, size_t need, size_t size);

/* ---- random numbers (rand.c) -------------------------------------------------------------- */

uint64_t praft__rand_next(uint64_t *state);

/* ---- the outbox: messages and memory of one ready generation ------------------------------ */

/*
 * Two generations exist: the one being filled by steps, ticks and proposals (pending), and the
 * one handed out in the outstanding ready. Everything a generation's messages point to (entry
 * arrays, snapshot metas and chunks, entry data read from storage, data of log entries dropped
 * while messages may still point to it) is listed in @frees and released when the ready made
 * from that generation is advanced.
 */
typedef struct praft_outbox {
    praft_msg *msgs;
    uint8_t *after; /* per message: 1 if it goes in send_after_persist */
    size_t n_msgs, cap_msgs, cap_after;
    void **frees;
    size_t n_frees, cap_frees;
} praft_outbox;

/* ---- the log (log.c) ---------------------------------------------------------------------- */

/*
 * The log is the snapshot, then entries snap.index+1 .. mem_first-1 held durably by storage,
 * then entries mem_first .. last held in memory (the unstable tail and a cache of recent stable
 * entries). Entries from @unstable on have not yet been handed out in a ready.
 */
typedef struct praft_log {
    praft_snapshot_meta snap;
    praft_entry *e; /* ring-less array: e[head .. head + n) are indices mem_first .. */
    size_t head, n, cap;
    uint64_t mem_first;
    uint64_t unstable;  /* first index not yet handed out for persistence */
    uint64_t persisted; /* every index <= persisted is durable and belongs to this log */
    size_t mem_bytes;
    uint64_t trunc_since_ready; /* lowest truncation point since the last ready (0: none) */
} praft_log;

uint64_t praft__log_last(const praft_log *l);
/* Term of @index: 0 ok, PT_ECOMPACTED, PT_EUNAVAILABLE, or a storage error. */
int praft__log_term(praft_node *n, uint64_t index, uint64_t *term);
uint64_t praft__log_last_term(praft_node *n);
/* Term of @index or 0 when unknown (compacted, unavailable, error). */
uint64_t praft__log_term_or0(praft_node *n, uint64_t index);
praft_entry *praft__log_mem(praft_log *l, uint64_t index);
/* Appends copies of @ents (consecutive, starting at last+1 or earlier: then the log is cut). */
int praft__log_append(praft_node *n, const praft_entry *ents, size_t count);
/* Appends one new entry taking ownership of @data (malloc'd) on success. */
int praft__log_append_owned(praft_node *n, uint64_t term, uint32_t type, uint8_t *data,
                            uint32_t len);
/* Entries lo..hi-1 within @max_bytes (at least one), as shallow copies into a malloc'd array
 * owned by @ob. PT_ECOMPACTED if lo is before the log. */
int praft__log_slice(praft_node *n, praft_outbox *ob, uint64_t lo, uint64_t hi, size_t max_bytes,
                     praft_entry **out, size_t *count);
/* Drops memory entries <= @index (they are durable in storage). */
void praft__log_trim(praft_node *n, uint64_t index);
/* Replaces the whole log by a snapshot. */
void praft__log_restore(praft_node *n, const praft_snapshot_meta *meta);
bool praft__log_up_to_date(praft_node *n, uint64_t last_index, uint64_t last_term);
/* Largest index <= @index whose term is <= @term (fast backtracking, §5.3). */
uint64_t praft__log_find_conflict_by_term(praft_node *n, uint64_t index, uint64_t term,
                                          uint64_t *found_term);
void praft__log_free(praft_log *l);

/* ---- progress of one follower (progress.c) ------------------------------------------------ */

typedef struct praft_inflight {
    uint64_t index;
    size_t bytes;
} praft_inflight;

typedef struct praft_pr {
    uint64_t id;
    uint64_t match, next;
    uint32_t state;
    bool probe_sent;      /* PROBE: an append is out, wait for its answer or a heartbeat */
    bool recently_active; /* heard from since the last check-quorum */
    uint64_t lease_round; /* highest heartbeat round it acknowledged to this leader */
    praft_inflight *infl;
    uint32_t infl_start, infl_n;
    size_t infl_bytes;
    /* SNAPSHOT state: the transfer's identity, the acknowledged offset, a chunk in flight. */
    uint64_t snap_index, snap_term, snap_size;
    uint64_t snap_offset;
    bool snap_inflight;
    uint32_t snap_idle;
} praft_pr;

praft_pr *praft__pr_find(praft_node *n, uint64_t id);
/* Rebuilds the progress set from the configuration (leader only). */
int praft__pr_sync(praft_node *n);
void praft__pr_reset_all(praft_node *n);
void praft__pr_free_all(praft_node *n);
void praft__pr_become_probe(praft_pr *p);
void praft__pr_become_replicate(praft_pr *p);
bool praft__pr_full(praft_node *n, const praft_pr *p);
void praft__pr_infl_add(praft_node *n, praft_pr *p, uint64_t index, size_t bytes);
void praft__pr_infl_free_to(praft_node *n, praft_pr *p, uint64_t index);

/* ---- quorum.c ----------------------------------------------------------------------------- */

enum { PR_VOTE_PENDING = 0, PR_VOTE_WON = 1, PR_VOTE_LOST = 2 };

bool praft__cfg_is_voter(const praft_config *c, uint64_t id);
/* @yes(ctx, id): 1 yes, 0 no, -1 unknown. */
int praft__quorum_result(const praft_config *c, int (*yes)(void *ctx, uint64_t id), void *ctx);
uint64_t praft__quorum_commit_index(praft_node *n);

/* ---- membership.c ------------------------------------------------------------------------- */

typedef struct praft_cfg_hist {
    uint64_t index;
    praft_config cfg;
} praft_cfg_hist;

int praft__cfg_validate(const praft_config *c, bool allow_joint);
/* Records a CONFIG entry appended at @index (takes effect now, thesis §4.1). */
int praft__cfg_appended(praft_node *n, uint64_t index, const uint8_t *data, size_t len);
/* The log was cut at @from: configurations at >= from are forgotten. */
void praft__cfg_truncated(praft_node *n, uint64_t from);
void praft__cfg_committed(praft_node *n);
void praft__cfg_restored(praft_node *n, const praft_config *c);
/* Applies the current configuration to the node (progress, role). */
int praft__cfg_apply(praft_node *n);

/* ---- the node ----------------------------------------------------------------------------- */

typedef struct praft_vote_rec {
    uint64_t id;
    bool granted;
} praft_vote_rec;

typedef struct praft_read_req {
    uint64_t context;
    uint64_t from; /* this node or the follower that asked */
    uint64_t index;
    uint64_t round; /* heartbeat round that confirms it; 0 while queued for the no-op */
    uint64_t acks[PRAFT_MAX_MEMBERS];
    uint32_t n_acks;
} praft_read_req;

typedef struct praft_fwd_read {
    uint64_t context;
    uint64_t leader;
    uint64_t term;
} praft_fwd_read;

typedef int (*praft_step_fn)(praft_node *n, const praft_msg *m);

struct praft_node {
    praft_options o;
    praft_storage st;
    uint64_t id;

    /* persistent state (§5.1 Figure 2) and what the last ready said about it */
    uint64_t term, vote, commit;
    praft_hard_state prev_hs;
    uint64_t applied; /* highest index handed out in committed */

    /* soft state */
    uint32_t role;
    bool prevote; /* a candidate still in its pre-vote phase */
    uint64_t leader;
    uint32_t prev_role;
    uint64_t prev_leader, prev_term;
    praft_step_fn step;
    uint32_t election_elapsed, heartbeat_elapsed, randomized_timeout;
    uint64_t now; /* ticks since this core was created: the clock of leases */
    /* When this node last heard from a leader (any term), on @now's clock, or 0 if never:
     * leader stickiness counts from it. Not the leader field, which a message of a later term
     * clears (a late rejected pre-vote answer, say) while the promise a lease counts on still
     * runs. */
    uint64_t heard_leader_at;
    uint64_t rng;
    praft_vote_rec votes[PRAFT_MAX_MEMBERS];
    uint32_t n_votes;

    praft_log log;

    praft_config cfg; /* current: the last in the log (takes effect when appended) */
    praft_cfg_hist *hist;
    size_t n_hist, cap_hist;
    uint64_t pending_conf_index;

    praft_pr prs[PRAFT_MAX_MEMBERS];
    size_t n_prs;
    size_t uncommitted_bytes;

    /* reads */
    praft_read_req *reads_q;
    size_t n_reads_q, cap_reads_q;
    uint64_t read_round;
    /* Lease (thesis §6.4.1, read_index.c): lease_rounds[k % election_ticks] is read_round as
     * tick k began, for the last election_ticks ticks of this leadership, which started at
     * tick lease_since; lease_void once a TIMEOUT_NOW went out in this term. */
    uint64_t *lease_rounds;
    uint64_t lease_since;
    bool lease_void;
    praft_fwd_read *fwd;
    size_t n_fwd, cap_fwd;
    praft_read_state *done_reads; /* for the next ready */
    size_t n_done_reads, cap_done_reads;

    /* leadership transfer */
    uint64_t transferee;
    uint32_t transfer_elapsed;

    /* snapshot being received (follower) */
    bool rx_active;
    praft_snapshot_meta rx_meta;
    uint64_t rx_next; /* next offset expected */
    bool rx_chunk_pending;
    praft_snapshot_meta rx_chunk_meta;
    uint64_t rx_chunk_offset;
    uint8_t *rx_chunk_data;
    size_t rx_chunk_len;
    bool rx_chunk_done;
    uint64_t rx_leader;
    bool rx_complete;     /* the last chunk went out in the outstanding ready */
    bool install_pending; /* next ready carries has_snapshot */
    praft_snapshot_meta install_meta;

    /* readies */
    praft_outbox ob[2];
    int pending; /* which ob[] is being filled */
    bool ready_out;
    praft_msg *rd_now, *rd_after;
    size_t cap_rd_now, cap_rd_after;
    praft_entry *rd_entries;
    size_t cap_rd_entries;
    praft_read_state *rd_reads;
    size_t cap_rd_reads;
    uint64_t rd_last_index, rd_last_term; /* last entry of the outstanding ready */
    bool rd_chunk_done;

    bool bcast_pending; /* appends to every follower are due at the next ready */
    /* Reads wait for a heartbeat round, started at the next ready: all the reads that arrive
     * between two readies share one round instead of one broadcast each (read_index.c). */
    bool read_round_pending;

    praft_counters c;
};

/* node.c */
void praft__become_follower(praft_node *n, uint64_t term, uint64_t leader);
void praft__become_leader(praft_node *n);
void praft__reset_randomized_timeout(praft_node *n);
bool praft__promotable(praft_node *n);
bool praft__self_is_learner(praft_node *n);
/* Queues a message; @after: it depends on state not yet durable. */
int praft__send(praft_node *n, praft_msg *m, bool after);
int praft__track_free(praft_node *n, void *p);
int praft__set_commit(praft_node *n, uint64_t commit);

/* election.c */
int praft__campaign(praft_node *n, bool pre, bool transfer);
int praft__handle_vote_request(praft_node *n, const praft_msg *m);
int praft__handle_vote_resp(praft_node *n, const praft_msg *m);
void praft__tick_election(praft_node *n);
void praft__tick_leader(praft_node *n);

/* replication.c */
int praft__bcast_append(praft_node *n);
int praft__send_append(praft_node *n, praft_pr *p, bool allow_empty);
int praft__bcast_heartbeat(praft_node *n, uint64_t context);
int praft__handle_append(praft_node *n, const praft_msg *m);
int praft__handle_append_resp(praft_node *n, const praft_msg *m);
int praft__handle_heartbeat(praft_node *n, const praft_msg *m);
int praft__handle_heartbeat_resp(praft_node *n, const praft_msg *m);
int praft__maybe_commit(praft_node *n);
int praft__append_own(praft_node *n, uint32_t type, uint8_t *data, uint32_t len);

/* snapshot.c */
int praft__send_snapshot_chunk(praft_node *n, praft_pr *p);
int praft__start_snapshot(praft_node *n, praft_pr *p);
int praft__handle_snapshot(praft_node *n, const praft_msg *m);
int praft__handle_snapshot_resp(praft_node *n, const praft_msg *m);
void praft__tick_snapshots(praft_node *n);
int praft__snapshot_advance(praft_node *n);
void praft__snapshot_rx_reset(praft_node *n);

/* read_index.c */
int praft__read_local(praft_node *n, uint64_t from, uint64_t context);
int praft__handle_read_index(praft_node *n, const praft_msg *m);
int praft__handle_read_index_resp(praft_node *n, const praft_msg *m);
int praft__reads_on_heartbeat_resp(praft_node *n, uint64_t from, uint64_t round);
/* Starts the heartbeat round the queued reads wait for, if one is due (praft_ready_get). */
int praft__reads_start_round(praft_node *n);
int praft__reads_on_commit(praft_node *n);
void praft__reads_fail_all(praft_node *n);
void praft__reads_leader_changed(praft_node *n);
int praft__read_done(praft_node *n, uint64_t context, uint64_t index, int status);
/* The context of the next leader heartbeat: a fresh round with leases, else the last round. */
uint64_t praft__heartbeat_context(praft_node *n);
void praft__lease_start(praft_node *n);
void praft__lease_tick(praft_node *n);

/* transfer.c */
int praft__transfer_check(praft_node *n, praft_pr *p);
void praft__tick_transfer(praft_node *n);
void praft__transfer_abort(praft_node *n);

/* ready.c */
void praft__outbox_release(praft_outbox *ob);
void praft__outbox_free(praft_outbox *ob);

#endif
