/*
 * platoon/state_machine.h — the interface between the node runtime and an application's
 * replicated state machine.
 *
 * The runtime (storage, transport, the Raft core, snapshots and compaction) knows the
 * application only through this interface, so any application can embed it: the vehicle state
 * machine (platoon/vehicle.h) is one implementation. An implementation is a table of functions
 * (pnode_sm_ops) plus an opaque context pointer (pnode_sm.ctx) passed back to every call.
 *
 * DETERMINISM. Every node applies the same committed commands in the same order and must reach
 * the same state (§5.3 "State Machine Safety", Figure 3). An implementation must therefore
 * depend only on the commands, their log index and term, and the notifications below: no
 * clock, no randomness, no environment, no iteration order of a hash table keyed by pointers.
 * When the application needs time (e.g. to expire client sessions), the leader stamps it into
 * the command before proposing it, so every node sees the same value.
 *
 * THREADS. Every function is called on the runtime's loop thread, except snapshot_write and
 * snapshot_end, which may run on a background thread while the loop keeps applying commands.
 * The frozen snapshot handed to them must therefore not share anything mutable with the live
 * state.
 *
 * INDEXES. The runtime reports every committed log index exactly once and in increasing order,
 * through apply (application commands), applied_noop (a leader's no-op, §5.4.2) or
 * applied_config (a membership change). After a restart or restore the runtime asks
 * applied_index and skips every entry at or below it (thesis §5.1: a snapshot replaces a
 * prefix of the log). Gaps are allowed (entries covered by a snapshot are never reported).
 *
 * ERRORS. Functions return 0 or a negative PT_E* code (platoon/error.h). A failure of apply,
 * applied_noop or applied_config other than PT_ENOMEM and PT_EINVAL means that this node can no
 * longer apply the log identically to the others: the runtime must stop applying (and report
 * it) rather than diverge.
 */
#ifndef PLATOON_STATE_MACHINE_H
#define PLATOON_STATE_MACHINE_H

#include <stddef.h>
#include <stdint.h>

#include "platoon/error.h"
#include "platoon/raft.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Where snapshot bytes go: writes all @len bytes of @data (len > 0) to the destination chosen by
 * the runtime (typically the storage engine's snapshot store). Returns 0, or a negative PT_E*
 * code that the state machine returns unchanged from snapshot_write (e.g. PT_EIO, PT_ENOSPC).
 * @data belongs to the caller and is valid only during the call.
 */
typedef int (*pnode_sm_write_fn)(void *write_ctx, const void *data, size_t len);

/*
 * Where snapshot bytes come from: copies up to @cap bytes of the stream into @buf and sets
 * *@n to how many (at least 1 while the stream has bytes left; 0 exactly at the end of the
 * stream). Returns 0, or a negative PT_E* code that restore returns unchanged.
 */
typedef int (*pnode_sm_read_fn)(void *read_ctx, void *buf, size_t cap, size_t *n);

typedef struct pnode_sm_ops {
    /*
     * Applies one committed application command (a PRAFT_ENTRY_NORMAL entry).
     * @index, @term: the entry's position in the log; @index > applied_index().
     * @cmd, @len:    the command as proposed (owned by the runtime, valid during the call).
     * @result, @result_len: on success, a malloc'd answer for the client that proposed the
     *     command (the runtime owns it and frees it with free(); *@result may be NULL when
     *     *@result_len is 0). Application-level refusals (a stale client sequence, ...) are
     *     encoded in the result: they are deterministic outcomes of the command, not failures.
     * Returns 0, or:
     *   PT_ECORRUPT / PT_EVERSION  the command cannot be decoded; the state is unchanged and
     *                              the runtime must stop (every node would fail the same way
     *                              only if the corruption is in the replicated log itself);
     *   PT_EINVAL                  @index is not above the applied index (a runtime bug);
     *   PT_ENOMEM                  the state is unchanged; the runtime may retry.
     */
    int (*apply)(void *ctx, uint64_t index, uint64_t term, const uint8_t *cmd, size_t len,
                 uint8_t **result, size_t *result_len);

    /*
     * The entry at @index was a no-op (appended by a new leader, §5.4.2 and §8): nothing to
     * apply, but the applied index advances to @index, so that snapshots and reads
     * (GetPlatoon's revision) reflect it. Returns 0 or PT_EINVAL (@index not above the
     * applied index; nothing changes).
     */
    int (*applied_noop)(void *ctx, uint64_t index, uint64_t term);

    /*
     * The entry at @index was a membership configuration (§6, thesis §4), now committed:
     * the state machine records @config (copied; owned by the caller) as the cluster's
     * membership so that it travels in snapshots, and the applied index advances to @index.
     * Returns 0 or PT_EINVAL (@index not above the applied index, or @config invalid:
     * more than PRAFT_MAX_MEMBERS members or an address not terminated; nothing changes).
     */
    int (*applied_config)(void *ctx, uint64_t index, uint64_t term, const praft_config *config);

    /*
     * Answers a read-only query against the current state. The runtime calls it on the loop
     * thread once ReadIndex (thesis §6.4) says the state is fresh enough, or at once for a
     * stale read. @query, @len are owned by the runtime. On success *@result is a malloc'd
     * answer owned by the caller (free()). Application-level outcomes (not found, ...) are in
     * the result. Returns 0, PT_EMALFORMED (the query cannot be decoded), PT_EVERSION, or
     * PT_ENOMEM. Never changes the state.
     */
    int (*query)(void *ctx, const uint8_t *query, size_t len, uint8_t **result, size_t *result_len);

    /*
     * Starts a snapshot (§7) on the loop thread: makes a consistent frozen copy of the whole
     * state as of the current applied index, cheaply enough not to stall the loop (the
     * serialisation itself happens later in snapshot_write, off the loop: Raft users report
     * write stalls when snapshots are serialised on the hot path).
     * @frozen: set to an opaque handle owned by the caller until snapshot_end.
     * @index, @term: set to the applied index and its term that the snapshot covers (the
     *     runtime passes them to praft_snapshot_taken; a term of 0 lets the core look it up).
     * Returns 0 or PT_ENOMEM (nothing to release then).
     */
    int (*snapshot_begin)(void *ctx, void **frozen, uint64_t *index, uint64_t *term);

    /*
     * Serialises a frozen copy through @write (called any number of times, in order). May run
     * on any thread, concurrently with every other function of the interface; may be called
     * more than once on the same frozen copy and then produces the same bytes. Returns 0,
     * PT_ENOMEM, or the first error returned by @write.
     */
    int (*snapshot_write)(void *frozen, pnode_sm_write_fn write, void *write_ctx);

    /* Releases a frozen copy (any thread). @frozen may be NULL. */
    void (*snapshot_end)(void *frozen);

    /*
     * Replaces the whole state by the snapshot read from @read (on start, and when the core
     * hands out a snapshot received by InstallSnapshot, §7). The snapshot is validated
     * entirely — format version, counts, every record, the trailing checksum, the end of the
     * stream — before anything changes: on any error the previous state is left intact.
     * Returns 0, PT_ECORRUPT (the bytes are not a valid snapshot of this state machine),
     * PT_EVERSION (a format this build does not know), PT_EINVAL (valid, but it does not fit
     * this node's configured limits), PT_ENOMEM, or the first error of @read.
     */
    int (*restore)(void *ctx, pnode_sm_read_fn read, void *read_ctx);

    /* The index of the last entry applied or reported (0 for a new, empty state machine). */
    uint64_t (*applied_index)(void *ctx);
} pnode_sm_ops;

/* A state machine as the runtime holds it: the implementation's function table (static,
 * never NULL) and its context. The context is owned by the application, which creates it before
 * the runtime starts and frees it after the runtime has stopped. */
typedef struct pnode_sm {
    const pnode_sm_ops *ops;
    void *ctx;
} pnode_sm;

#ifdef __cplusplus
}
#endif
#endif
