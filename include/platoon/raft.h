/*
 * platoon/raft.h — the Raft consensus core.
 *
 * A pure, deterministic state machine implementing Raft as described in Ongaro and Ousterhout,
 * "In Search of an Understandable Consensus Algorithm" (the paper, cited as §N) and Ongaro's
 * PhD thesis "Consensus: Bridging Theory and Practice" (cited as thesis §N):
 *
 *   - leader election with randomized timeouts, pre-vote (thesis §9.6) and check-quorum
 *     (thesis §6.2), with leader stickiness;
 *   - log replication with fast backtracking, per-follower flow control (probe / pipelined
 *     replicate / snapshot), batching and byte-bounded messages;
 *   - snapshots, log compaction and chunked, resumable InstallSnapshot (§7);
 *   - membership changes by joint consensus (§6, thesis §4.3) and learners (non-voters);
 *   - linearizable reads with ReadIndex (thesis §6.4) and optional leases (thesis §6.4.1);
 *   - leadership transfer (thesis §3.10).
 *
 * The core does no I/O: no threads, no clock, no sockets, no files, no printing, no global
 * state. Its inputs are function calls (praft_step for a message from a peer, praft_tick for
 * the passage of time, praft_propose, praft_read_index, praft_change_membership,
 * praft_transfer_leadership); its output is a batch of work, the *ready* (praft_ready), that
 * the caller carries out and then acknowledges with praft_advance. Given the same options
 * (including the random seed), the same storage contents and the same sequence of inputs, the
 * core produces the same outputs, always.
 *
 * A node's life:
 *
 *     praft_new(&opts, &storage, &node);
 *     loop:
 *         praft_tick(node) every tick; praft_step(node, msg) for every message received;
 *         praft_propose(node, ...) for client commands; ...
 *         if (praft_has_ready(node)) {
 *             praft_ready rd;
 *             praft_ready_get(node, &rd);
 *             send rd.send_now;                         (may overlap with the write below)
 *             persist rd.snapshot, rd.entries, rd.hard_state;   (durably, in that order)
 *             send rd.send_after_persist;
 *             apply rd.committed; answer rd.reads;
 *             praft_advance(node, &rd);
 *         }
 *     praft_free(node);
 *
 * Threads: a praft_node is not thread-safe. Call all functions on one node from one thread (or
 * serialise them); distinct nodes are independent.
 *
 * Errors: functions return 0 or a negative PT_E* code (platoon/error.h). Allocation failure is
 * reported as PT_ENOMEM and leaves the node as it was before the call. Bad input from the
 * network (a malformed or stale message) is never fatal: it is ignored, counted in the status
 * counters, and step returns 0 for stale messages, PT_EMALFORMED for malformed ones.
 */
#ifndef PLATOON_RAFT_H
#define PLATOON_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platoon/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ============================================================================================
 * Value types
 * ========================================================================================== */

/* No node: node ids are never 0. */
#define PRAFT_NONE 0

/*
 * The largest term a message or a node may carry. A term must always be followable by another:
 * a node that could not increment its term could never campaign again, and a cluster pushed to
 * that term would never elect a leader again. A message with a higher term is malformed
 * (PT_EMALFORMED, counted in msgs_dropped_malformed, whoever sent it); a node at this term
 * refuses to campaign (counted in campaigns_refused_term) instead of overflowing. No correct
 * cluster gets anywhere near it: a new term every millisecond would take 584 million years.
 */
#define PRAFT_TERM_MAX (UINT64_MAX - 1)

/* Bounds of a configuration. A cluster has at most PRAFT_MAX_MEMBERS members (voters and
 * learners together, counting both sides of a joint configuration); an address is at most
 * PRAFT_ADDRESS_MAX - 1 bytes. The core treats addresses as opaque strings carried for the
 * application (platoond dials them). */
#define PRAFT_MAX_MEMBERS 32
#define PRAFT_ADDRESS_MAX 128

enum praft_entry_type {
    PRAFT_ENTRY_NORMAL = 0, /* an application command: apply it */
    PRAFT_ENTRY_NOOP = 1,   /* appended by a new leader (§5.4.2, §8): apply nothing */
    PRAFT_ENTRY_CONFIG = 2, /* a membership configuration (praft_config_decode reads it) */
};

/*
 * One log entry. Ownership of @data is stated by each function that hands out or takes in
 * entries. @len may be 0 (then @data may be NULL).
 */
typedef struct praft_entry {
    uint64_t term;
    uint64_t index;
    uint32_t type; /* enum praft_entry_type */
    uint32_t len;
    uint8_t *data;
} praft_entry;

/* What must survive a crash besides the log (§5.1, Figure 2 "Persistent state"). The commit
 * index is persisted too so that a restarted node can apply what it knew committed without
 * waiting for a leader; losing it is safe. */
typedef struct praft_hard_state {
    uint64_t term;
    uint64_t vote; /* PRAFT_NONE if no vote in @term */
    uint64_t commit;
} praft_hard_state;

/*
 * Roles in a configuration. Only voters count, and each node counts by its own configuration:
 * a candidate tallies the answers of the voters of its configuration only. Every node answers
 * vote requests on their merits (term, vote, log: §5.2, §5.4.1) whatever its configuration
 * says of itself or of the candidate, because its configuration may be stale (thesis §4.2.3):
 * a learner may have been promoted, or the candidate added, without this node knowing yet.
 */
enum praft_member_role {
    PRAFT_ROLE_NONE = 0,    /* not in this side of the configuration */
    PRAFT_ROLE_VOTER = 1,   /* counts toward elections and commitment */
    PRAFT_ROLE_LEARNER = 2, /* receives the log, never counts toward any quorum */
};

typedef struct praft_member {
    uint64_t id;
    uint8_t role;     /* enum praft_member_role in the (incoming) configuration */
    uint8_t old_role; /* when joint: role in the outgoing configuration; else PRAFT_ROLE_NONE */
    char address[PRAFT_ADDRESS_MAX];
} praft_member;

/*
 * A membership configuration. When @joint is false it is simply the set of members with their
 * roles. When @joint is true the cluster is in C_old,new (thesis §4.3): decisions need a
 * majority of the voters of the outgoing configuration (old_role == VOTER) *and* a majority of
 * the voters of the incoming one (role == VOTER). Members are kept sorted by id.
 */
typedef struct praft_config {
    bool joint;
    uint32_t n_members;
    praft_member members[PRAFT_MAX_MEMBERS];
} praft_config;

/* Identifies a snapshot: the state after applying every entry up to @index, whose term is
 * @term, under configuration @config (the last configuration in the log at or before @index).
 * @size is the snapshot's byte length as the application stores it; @checksum its XXH3-64 as
 * the storage engine computes it (0 if unknown). */
typedef struct praft_snapshot_meta {
    uint64_t index;
    uint64_t term;
    uint64_t size;
    uint64_t checksum;
    praft_config config;
} praft_snapshot_meta;

/* ============================================================================================
 * Messages
 * ========================================================================================== */

enum praft_msg_type {
    PRAFT_MSG_APPEND = 1,       /* AppendEntries (§5.3) */
    PRAFT_MSG_APPEND_RESP = 2,  /* its answer */
    PRAFT_MSG_VOTE = 3,         /* RequestVote (§5.2) */
    PRAFT_MSG_VOTE_RESP = 4,    /* its answer */
    PRAFT_MSG_PREVOTE = 5,      /* pre-vote request (thesis §9.6): changes no state */
    PRAFT_MSG_PREVOTE_RESP = 6, /* its answer */
    PRAFT_MSG_HEARTBEAT = 7,    /* leader liveness, commit index, ReadIndex rounds */
    PRAFT_MSG_HEARTBEAT_RESP = 8,
    PRAFT_MSG_SNAPSHOT = 9, /* one chunk of InstallSnapshot (§7) */
    PRAFT_MSG_SNAPSHOT_RESP = 10,
    PRAFT_MSG_TIMEOUT_NOW = 11, /* leadership transfer: start an election now (thesis §3.10) */
    PRAFT_MSG_READ_INDEX = 12,  /* a follower asks the leader for a read index */
    PRAFT_MSG_READ_INDEX_RESP = 13,
};

/*
 * A message between two cores. One flat struct for every type, as on the wire; the comment of
 * each field says which types use it. Unused fields are zero.
 *
 * Field use by type:
 *   APPEND         term, prev_index, prev_term, commit, entries, n_entries
 *   APPEND_RESP    term, index (success: last index the append vouched for; rejection: the
 *                  rejected prev_index), reject, hint_index and hint_term (rejection: the
 *                  follower's conflict hint for fast backtracking, §5.3 "optimization")
 *   VOTE, PREVOTE  term (a PREVOTE carries the term the sender would campaign with),
 *                  last_index, last_term (the candidate's log, §5.4.1), transfer (set when the
 *                  election was started by TIMEOUT_NOW: followers then ignore stickiness)
 *   *VOTE_RESP     term, reject
 *   HEARTBEAT      term, commit, context (a ReadIndex round, 0 if none; with lease_reads
 *                  every heartbeat starts a round of its own)
 *   HEARTBEAT_RESP term, context (echoed)
 *   SNAPSHOT       term, snapshot (the whole meta: identity of the transfer), offset, data, len,
 *                  done (last chunk)
 *   SNAPSHOT_RESP  term, snapshot.index and snapshot.term (which transfer), offset (the next
 *                  byte the follower expects; after the last chunk, snapshot.size), reject
 *                  (the transfer must resume at @offset; 0 restarts it), index (0 while the
 *                  transfer goes on; once the snapshot is installed, or when the follower
 *                  needs none because it already holds the snapshot's last entry or has
 *                  committed past it, the index up to which its log matches the leader's).
 *                  The answer to the last chunk is sent only once the snapshot is installed.
 *   TIMEOUT_NOW    term
 *   READ_INDEX     term, context (the follower's request id)
 *   READ_INDEX_RESP term, context, index (the read index), reject (no read index could be
 *                  given: the follower must fail the read)
 */
typedef struct praft_msg {
    uint32_t type; /* enum praft_msg_type */
    uint64_t from;
    uint64_t to;
    uint64_t term;

    uint64_t prev_index;
    uint64_t prev_term;
    uint64_t commit;
    praft_entry *entries;
    size_t n_entries;

    uint64_t index;
    bool reject;
    uint64_t hint_index;
    uint64_t hint_term;

    uint64_t last_index;
    uint64_t last_term;
    bool transfer;

    uint64_t context;

    praft_snapshot_meta *snapshot; /* SNAPSHOT, SNAPSHOT_RESP (index and term only) */
    uint64_t offset;
    uint8_t *data;
    size_t len;
    bool done;
} praft_msg;

/* ============================================================================================
 * Storage: the read-only view of the log the core needs
 * ========================================================================================== */

/*
 * The core reads the durable log through these callbacks; it never writes through them (writes
 * are the caller's part of each ready). An implementation must reflect every write the caller
 * made for a ready by the time it calls praft_advance for that ready.
 *
 * The log holds entries first_index..last_index; the entry before first_index is the latest
 * snapshot (index first_index - 1), whose term term() must still return. An empty log after a
 * snapshot at S has first_index = S + 1 and last_index = S. A brand-new, empty node has
 * first_index = 1 and last_index = 0.
 *
 * Every callback returns 0 or a negative PT_E* code. Errors other than the ones named are
 * treated as storage failures: the core returns them to its caller unchanged.
 */
typedef struct praft_storage {
    void *ctx;

    /* The durable hard state, the latest snapshot's meta (index 0 if none), at start-up. */
    int (*initial_state)(void *ctx, praft_hard_state *hs, praft_snapshot_meta *snapshot);

    int (*first_index)(void *ctx, uint64_t *index);
    int (*last_index)(void *ctx, uint64_t *index);

    /* The term of the entry at @index, for first_index - 1 <= index <= last_index.
     * PT_ECOMPACTED if index < first_index - 1; PT_EUNAVAILABLE if index > last_index. */
    int (*term)(void *ctx, uint64_t index, uint64_t *term);

    /*
     * Entries lo..hi-1, at most @max_bytes of entry data in total but always at least one entry
     * when lo < hi. Fills out[0..*n) (the array has room for hi - lo entries); each entry's
     * data is allocated with malloc() and belongs to the caller, who frees it with free().
     * PT_ECOMPACTED if lo < first_index; PT_EUNAVAILABLE if hi > last_index + 1.
     */
    int (*entries)(void *ctx, uint64_t lo, uint64_t hi, size_t max_bytes, praft_entry *out,
                   size_t *n);

    /*
     * Reads up to @cap bytes of the snapshot identified by @meta (index and term), starting at
     * @offset, into @buf; *len receives the count (0 only at the end). PT_ENOTFOUND if that
     * snapshot is no longer there (a newer one replaced it).
     */
    int (*snapshot_read)(void *ctx, const praft_snapshot_meta *meta, uint64_t offset, void *buf,
                         size_t cap, size_t *len);
} praft_storage;

/* ============================================================================================
 * Options
 * ========================================================================================== */

typedef struct praft_options {
    uint64_t id; /* this node's id; != PRAFT_NONE */

    /* Election timeout T in ticks: a follower that hears from no leader for a randomized
     * timeout in [T, 2T) starts an election (§5.2). Default 10. Must exceed heartbeat_ticks. */
    uint32_t election_ticks;
    /* A leader sends heartbeats every heartbeat_ticks ticks. Default 1. */
    uint32_t heartbeat_ticks;
    /* Seed of the core's random generator (election timeouts). Same seed, same timeouts. */
    uint64_t seed;

    /* Pre-vote (thesis §9.6). Default on (set disable_pre_vote to turn it off). */
    bool disable_pre_vote;
    /* Check-quorum (thesis §6.2): a leader that has not heard from a majority within an
     * election timeout steps down; a follower that heard from a leader within an election
     * timeout ignores vote requests. Default on. */
    bool disable_check_quorum;
    /* Serve reads from a leader lease instead of a heartbeat round (thesis §6.4.1). The lease
     * runs from the tick the leader *sent* the latest heartbeat a majority acknowledged, for
     * election_ticks - 1 - election_ticks / 8 ticks (one tick for the followers' tick phase,
     * an eighth for clock drift); a read outside the lease takes a heartbeat round as without
     * this option. No lease holds once the leader sent TIMEOUT_NOW in its term. Requires
     * check-quorum, which brings leader stickiness (followers ignore campaigns for an election
     * timeout after hearing from their leader, and with this option also for an election
     * timeout after the core starts). Set it on every member alike. Only safe when the
     * clocks of leader and followers drift apart by less than an eighth, and when the caller
     * delivers every tick that passed (also those missed while the process was stopped)
     * before any other input. Default off. */
    bool lease_reads;

    /* Byte bound of the entries in one APPEND. Default 1 MiB. An entry larger than this is
     * still sent, alone. */
    size_t max_msg_bytes;
    /* Flow control of a follower in replicate state: at most this many APPENDs in flight...
     * Default 256. */
    uint32_t max_inflight_msgs;
    /* ...and at most this many bytes of entries in flight. Default 32 MiB. */
    size_t max_inflight_bytes;
    /* Bytes of snapshot data per SNAPSHOT chunk. Default 1 MiB. */
    size_t snapshot_chunk_bytes;
    /* A snapshot transfer that made no progress for this many ticks is restarted from the
     * last acknowledged offset. Default: 2 * election_ticks. */
    uint32_t snapshot_retry_ticks;
    /* Proposals are refused with PT_EBUSY while more than this many bytes of entries are
     * appended but not committed. 0: no limit. Default 64 MiB. */
    size_t max_uncommitted_bytes;
} praft_options;

/* Fills @opts with the defaults above for node @id (seed = id). */
PT_API void praft_options_init(praft_options *opts, uint64_t id);

/* Checks @opts; returns 0 or PT_EINVAL, and in that case a static message naming the faulty
 * field in *why (if why != NULL). */
PT_API int praft_options_validate(const praft_options *opts, const char **why);

/* ============================================================================================
 * The node
 * ========================================================================================== */

typedef struct praft_node praft_node;

/*
 * Creates a core from the durable state in @storage (hard state, snapshot, log).
 * The configuration is the snapshot's, updated by every CONFIG entry in the log after it (a
 * configuration takes effect when appended, thesis §4.1). A node with no configuration (a
 * blank node waiting to be added) never starts an election.
 * @storage is copied; its ctx must outlive the node.
 * Errors: PT_EINVAL (bad options, see praft_options_validate), PT_ENOMEM, PT_ECORRUPT (the
 * storage's contents contradict each other: commit beyond the log, undecodable config entry),
 * and storage errors.
 */
PT_API int praft_new(const praft_options *opts, const praft_storage *storage, praft_node **out);

/* Frees the node and everything it owns (including any ready not yet advanced). */
PT_API void praft_free(praft_node *node);

/*
 * Builds the configuration entry that bootstraps a new cluster: index 1, term 1, type CONFIG,
 * holding @config. Every initial member writes this same entry, and a hard state with term 1
 * and commit 1, to its empty storage before its first praft_new. @out->data is allocated with
 * malloc and belongs to the caller.
 * Errors: PT_EINVAL (no voter, duplicate ids, id 0, joint config), PT_ENOMEM.
 */
PT_API int praft_bootstrap_entry(const praft_config *config, praft_entry *out);

/* Advances the node's clock by one tick. */
PT_API void praft_tick(praft_node *node);

/*
 * Hands a message from a peer to the core. The core copies what it keeps; @msg is the
 * caller's again when the call returns.
 * Returns 0 (also for stale or duplicated messages, which are ignored and counted),
 * PT_EMALFORMED for a message that cannot be valid (unknown type, from == to, to != this node,
 * entries that are not consecutive or whose terms contradict the message, an undecodable
 * CONFIG entry, a chunk past the snapshot's size, an acknowledgement of entries this leader
 * never had, an append contradicting a committed entry...; counted too), PT_ENOMEM, or a
 * storage error.
 * A leader message (APPEND, HEARTBEAT, SNAPSHOT, TIMEOUT_NOW) with a lower term is answered
 * with an APPEND_RESP carrying this node's term, so that a stale leader steps down even when
 * pre-vote and check-quorum keep it from hearing of the new term otherwise.
 */
PT_API int praft_step(praft_node *node, const praft_msg *msg);

/*
 * Appends a command to the log, if this node is the leader. @data is copied.
 * *index and *term (either may be NULL) receive the entry's position: the command has been
 * applied when an entry at *index is applied; if the entry applied at *index has another term,
 * the command was lost and will never be applied.
 * Errors: PT_ENOTLEADER (no leader, or not this node: praft_status tells the leader),
 * PT_ETRANSFER (a leadership transfer is in progress), PT_EBUSY (max_uncommitted_bytes),
 * PT_ETOOBIG (len > UINT32_MAX), PT_ENOMEM.
 */
PT_API int praft_propose(praft_node *node, const void *data, size_t len, uint64_t *index,
                         uint64_t *term);

/*
 * Starts a linearizable read (thesis §6.4). @context is the caller's id for it (non-zero,
 * unique among reads in flight on this node). The answer comes in a later ready's reads: the
 * read index, once it is safe to answer from a state machine that has applied up to it, or an
 * error if the read had to be abandoned (leader change). On a follower the request is forwarded
 * to the leader. With lease_reads, a leader within its lease answers in the next ready without a
 * heartbeat round. Errors: PT_ENOTLEADER (no leader known), PT_EINVAL (context 0), PT_ENOMEM.
 */
PT_API int praft_read_index(praft_node *node, uint64_t context);

/* A membership change request; one at a time (thesis §4.1). */
enum praft_change_type {
    PRAFT_CHANGE_ADD_LEARNER = 1, /* add @id as a learner (no quorum change, no joint phase) */
    PRAFT_CHANGE_ADD_VOTER = 2,   /* add @id as a voter, or promote the learner @id */
    PRAFT_CHANGE_REMOVE = 3,      /* remove @id, voter or learner, possibly this leader */
};

typedef struct praft_change {
    uint32_t type; /* enum praft_change_type */
    uint64_t id;
    char address[PRAFT_ADDRESS_MAX]; /* for additions */
} praft_change;

/*
 * Proposes a membership change. A change of the voters goes through joint consensus: the
 * leader appends C_old,new, and once that is committed it appends C_new by itself; a learner
 * change is a single step. Only one change may be in flight: PT_ECONFCHANGE while an earlier
 * one is not committed (including the automatic C_new). The leader must also have committed
 * an entry of its own term first (PT_ENOTREADY). Promoting a learner that has not caught up
 * (its match index is below the leader's commit index) gives PT_ENOTREADY. A removed
 * leader keeps leading until C_new is committed, without counting itself, then steps down.
 * On success *index (if not NULL) receives the index of the first appended config entry.
 * Errors: PT_ENOTLEADER, PT_ETRANSFER, PT_ECONFCHANGE, PT_ENOTREADY, PT_EINVAL (unknown id
 * to remove or promote, id already a member for an addition, no voter would remain,
 * PRAFT_MAX_MEMBERS exceeded), PT_ENOMEM.
 */
PT_API int praft_change_membership(praft_node *node, const praft_change *change, uint64_t *index);

/*
 * Transfers leadership to voter @to (PRAFT_NONE: the most up-to-date other voter), thesis
 * §3.10: the leader stops accepting proposals, brings @to up to date, then sends it
 * TIMEOUT_NOW. If no new leader emerges within an election timeout the transfer is abandoned
 * and the leader accepts proposals again.
 * Errors: PT_ENOTLEADER, PT_EINVAL (@to is not a voter, or is this node), PT_ETRANSFER
 * (another transfer is in progress), PT_ENOQUORUM (no other voter).
 */
PT_API int praft_transfer_leadership(praft_node *node, uint64_t to);

/*
 * Tells the core that the application has taken a snapshot covering entries up to
 * @meta->index (<= the applied index) and stored it where storage.snapshot_read finds it. The
 * core will send this snapshot to followers that need entries before the log's first index.
 * The application may then drop log entries up to meta->index from storage (keeping a few
 * helps followers that are only slightly behind). @meta->size must be set (it bounds the
 * chunks sent). @meta->term and @meta->config are filled by the core from the log if
 * @meta->term is 0.
 * Errors: PT_EINVAL (index beyond the applied index, or older than the current snapshot),
 * storage errors.
 */
PT_API int praft_snapshot_taken(praft_node *node, praft_snapshot_meta *meta);

/* ============================================================================================
 * The ready: what the caller must do, in order
 * ========================================================================================== */

/* The outcome of a read started with praft_read_index. */
typedef struct praft_read_state {
    uint64_t context;
    uint64_t index; /* answer once the state machine has applied up to index */
    int status;     /* 0, or the reason the read was abandoned (PT_ENOTLEADER) */
} praft_read_state;

enum praft_role {
    PRAFT_FOLLOWER = 1,
    PRAFT_CANDIDATE = 2, /* also while pre-voting */
    PRAFT_LEADER = 3,
    PRAFT_LEARNER = 4, /* a non-voting member: follows, never campaigns, answers votes */
};

/*
 * A batch of work. Every pointer in it stays valid until praft_advance (or praft_free) and
 * belongs to the core; copy what must live longer.
 *
 * PERSISTENCE CONTRACT — the caller must:
 *  1. Send @send_now at any time, in parallel with the writes below. (These are the
 *     leader's own appends, heartbeats and snapshot chunks: thesis §10.2.1 lets a leader send
 *     entries before its own write is durable, because it counts itself toward commitment
 *     only after praft_advance.)
 *  2. Durably persist, in this order, before anything in step 3:
 *       a. @snapshot if has_snapshot: the snapshot received from the leader is complete
 *          (every chunk was handed out in @snapshot_chunk and stored, the last one in an
 *          earlier ready): verify it, restore the state machine from it, and replace the
 *          whole log by it (first_index = snapshot.index + 1, last_index = snapshot.index);
 *       b. @snapshot_chunk if has_snapshot_chunk: a chunk of a snapshot being received, to be
 *          written at @snapshot_chunk.offset of the snapshot identified by its meta (a chunk
 *          at offset 0 starts a new one, dropping any partial one);
 *       c. @entries: append them, first deleting every stored entry at index >=
 *          entries[0].index (a conflicting suffix, §5.3);
 *       d. @hard_state if has_hard_state.
 *     One write transaction and one sync for all of it is the intended use (group commit).
 *     A vote or a term change is thus durable before any message that depends on it is sent,
 *     and a follower acknowledges entries only once they are durable (§5.1 Figure 2).
 *  3. Send @send_after_persist.
 *  4. Apply @committed in order (may overlap with 2 and 3: these entries are durable on a
 *     majority). Committed entries are handed out exactly once per node lifetime; after a
 *     restart the application's own applied index decides what to skip.
 *  5. Answer @reads once the state machine has applied up to each read's index.
 *  6. Call praft_advance(node, &rd).
 * No new ready is produced until praft_advance; inputs (step, propose, tick...) may continue
 * meanwhile and their effects go into the next ready. This is how proposals that arrive during
 * a disk write join the next write.
 */
typedef struct praft_ready {
    praft_msg *send_now;
    size_t n_send_now;

    bool has_snapshot;
    praft_snapshot_meta snapshot;

    bool has_snapshot_chunk;
    struct {
        praft_snapshot_meta meta;
        uint64_t offset;
        const uint8_t *data;
        size_t len;
        bool done; /* the last chunk: the snapshot is complete once it is written */
    } snapshot_chunk;

    praft_entry *entries;
    size_t n_entries;

    bool has_hard_state;
    praft_hard_state hard_state;

    praft_msg *send_after_persist;
    size_t n_send_after_persist;

    praft_entry *committed;
    size_t n_committed;

    praft_read_state *reads;
    size_t n_reads;

    /* Soft state, for the caller's information (always filled). */
    uint32_t role; /* enum praft_role */
    uint64_t leader;
    uint64_t term;
} praft_ready;

/* True when praft_ready_get would return a non-empty batch (work to do, or a change of the
 * soft state: role, leader, term). Always false while a ready is outstanding. */
PT_API bool praft_has_ready(praft_node *node);

/*
 * Takes the next batch of work. Returns 0, or PT_EBUSY if the previous batch has not been
 * advanced, PT_ENOMEM, or a storage error (reading entries to send or to apply).
 */
PT_API int praft_ready_get(praft_node *node, praft_ready *rd);

/*
 * Tells the core that every step of @rd has been carried out (its writes are durable). The
 * core releases the batch's memory and, for a leader, counts its own newly persisted entries
 * toward commitment. Returns 0, or PT_EINVAL if @rd is not the outstanding batch.
 */
PT_API int praft_advance(praft_node *node, praft_ready *rd);

/* ============================================================================================
 * Status
 * ========================================================================================== */

enum praft_progress_state {
    PRAFT_PROGRESS_PROBE = 1,     /* position unknown: one append at a time */
    PRAFT_PROGRESS_REPLICATE = 2, /* pipelined appends within the in-flight window */
    PRAFT_PROGRESS_SNAPSHOT = 3,  /* receiving a snapshot */
};

typedef struct praft_progress {
    uint64_t id;
    uint64_t match;
    uint64_t next;
    uint32_t state; /* enum praft_progress_state */
    bool recently_active;
    uint64_t snapshot_offset; /* SNAPSHOT state: bytes acknowledged */
} praft_progress;

typedef struct praft_counters {
    uint64_t elections_started; /* real elections (term increments) */
    uint64_t prevotes_started;
    uint64_t leader_elected; /* times this node became leader */
    uint64_t msgs_sent;
    uint64_t msgs_received;
    uint64_t msgs_dropped_stale;     /* ignored: older term, duplicates, unknown sender */
    uint64_t msgs_dropped_malformed; /* rejected with PT_EMALFORMED */
    uint64_t campaigns_refused_term; /* elections not started: the term is at PRAFT_TERM_MAX */
    uint64_t entries_proposed;
    uint64_t entries_committed;
    uint64_t snapshots_sent;
    uint64_t snapshots_installed;
} praft_counters;

typedef struct praft_status {
    uint64_t id;
    uint32_t role; /* enum praft_role */
    uint64_t term;
    uint64_t vote;
    uint64_t leader;
    uint64_t commit;
    uint64_t applied; /* highest index handed out in a ready's committed */
    uint64_t first_index;
    uint64_t last_index;
    uint64_t snapshot_index;
    uint64_t snapshot_term;
    uint64_t transferee;           /* leadership transfer target, or PRAFT_NONE */
    uint64_t pending_config_index; /* an uncommitted config entry, or 0 */
    praft_config config;
    size_t n_progress; /* leader only: every other member */
    praft_progress progress[PRAFT_MAX_MEMBERS];
    praft_counters counters;
} praft_status;

/* Fills @out with the node's current status. */
PT_API void praft_status_get(praft_node *node, praft_status *out);

/* ============================================================================================
 * Helpers
 * ========================================================================================== */

/* Decodes the data of a CONFIG entry. Returns 0 or PT_ECORRUPT. */
PT_API int praft_config_decode(const uint8_t *data, size_t len, praft_config *out);

/* Encodes @config as CONFIG entry data into a malloc'd buffer (*data, *len), owned by the
 * caller. Returns 0, PT_EINVAL (invalid config), or PT_ENOMEM. */
PT_API int praft_config_encode(const praft_config *config, uint8_t **data, size_t *len);

/* The member with @id in @config, or NULL. */
PT_API const praft_member *praft_config_find(const praft_config *config, uint64_t id);

/* "follower", "candidate", "leader", "learner". */
PT_API const char *praft_role_name(uint32_t role);

/* "probe", "replicate", "snapshot". */
PT_API const char *praft_progress_state_name(uint32_t state);

/* "APPEND", "VOTE_RESP", ... */
PT_API const char *praft_msg_type_name(uint32_t type);

#ifdef __cplusplus
}
#endif
#endif
