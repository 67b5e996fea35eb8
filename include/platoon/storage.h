/*
 * platoon/storage.h — the durable store of a Raft node: log, hard state, configuration and
 * snapshots.
 *
 * Three backends share this one contract (same functions, same errors, same conformance tests):
 *
 *   - pstore_open(), write-ahead log engine (PSTORE_ENGINE_WAL, format 2, the default for new
 *     stores): segment files made for appending, ONE flush per write. Crash-safe and
 *     checksummed (XXH3-64 on every record, entry and snapshot).
 *   - pstore_open(), LMDB engine (PSTORE_ENGINE_LMDB, format 1): an LMDB environment. Its
 *     crash-safe commit costs two flushes (data pages, then the meta page). Stores created
 *     before the write-ahead log keep it: a directory holding DIR/log opens with LMDB, one
 *     holding DIR/wal with the log, whatever pstore_options.engine says (it only chooses the
 *     engine of a new store); both at once is refused (PT_ECORRUPT). LMDB stays for those
 *     stores, and as a second implementation of the same contract that the conformance and
 *     crash suites hold the new engine against; new stores have no reason to choose it.
 *   - pstore_open_memory(): everything in memory, for unit tests and the simulator. It is
 *     cheap to create and to write; it forgets everything when closed.
 *
 * Data directory layout (write-ahead log engine):
 *
 *     DIR/wal/<seq>.wal                    segments, <seq> counting from 1 in 16 hex digits;
 *                                          each made whole (header, then zeros up to
 *                                          pstore_options.segment_size) and flushed before
 *                                          use, so that a write's flush carries no file
 *                                          system metadata; the next one is prepared ahead
 *     DIR/wal/prep-<seq>.tmp               a segment being prepared (removed at open)
 *     DIR/snapshots/...                    as below
 *
 *   Each write (one pstore_write, pstore_purge or snapshot completion) is a run of records
 *   appended with one write and made durable with one fdatasync. A record holds its length,
 *   kind (entries, hard state, configuration, base, current snapshot, truncation of a
 *   conflicting suffix; each segment starts with a record of all the metadata), a sequence
 *   number, the sequence number of its write, and XXH3-64 checksums of its header and of all
 *   of it, the latter chained to the record before it so that bytes left over from an earlier
 *   use can never pass for a new record. Purging removes whole segments below the new base.
 *   Opening reads and verifies every record and rebuilds the index of entries in memory
 *   (pstore_term answers from it). A write interrupted by a crash (a "torn tail": the records
 *   after the last complete write, with no later write after them) was never acknowledged and
 *   is cut at open, with a warning in the log naming the file and offset; a bad record with a
 *   later write after it, a missing segment, a damaged segment header or a segment shorter
 *   than its size is PT_ECORRUPT naming the file and offset. Damage confined to the very last
 *   write cannot be told from a torn write and is cut like one. A read-only open cuts nothing:
 *   it serves the log up to the last complete write. Full rules: src/storage/wal_open.c.
 *
 * Data directory layout (LMDB engine):
 *
 *     DIR/log/data.mdb, DIR/log/lock.mdb   the LMDB environment: entries and metadata
 *                                          (with sync on, data.mdb is kept 2-6 MiB longer
 *                                          than its pages, zero-filled: a commit then
 *                                          rewrites blocks instead of growing the file,
 *                                          which would also flush file system metadata;
 *                                          never within the last 64 MiB free on the disk)
 *
 * Both durable engines:
 *
 *     DIR/LOCK                             held (flock) by the process that has it open
 *     DIR/snapshots/snap-<index>-<term>.psnap   complete snapshots (the newest few)
 *     DIR/snapshots/NAME.tmp               snapshots being written or received
 *
 * The log holds entries first_index..last_index. The entry just before first_index (the
 * "base", index first_index - 1) was compacted into a snapshot or installed from one; its term
 * stays known so that term(first_index - 1) works (§5.3 consistency check, §7). A brand-new
 * store has first_index 1, last_index 0 and base term 0.
 *
 * Writes. The node runtime turns each praft_ready into ONE call of pstore_write(): one atomic
 * write (an LMDB transaction, or one append to the write-ahead log) and one sync for the whole
 * batch (group commit), so a batch is either entirely durable or entirely absent after a
 * crash. Compaction (pstore_purge) and local
 * snapshot creation are separate calls.
 *
 * Threads: a pstore is not thread-safe; call its functions from one thread at a time (the
 * caller serialises, e.g. the node's loop or its storage writer under the loop's control).
 * Distinct pstores are independent.
 *
 * Integrity and its limits: every entry is checksummed (XXH3-64 seeded with its index) and
 * verified on every read; metadata records and snapshots carry their own checksums. The
 * write-ahead log verifies every record at open (pstore_term then answers from memory); LMDB
 * opening verifies the metadata, the log's bounds and its last 256 entries; pstore_check
 * verifies everything. LMDB commits are atomic, so a crash never leaves a torn batch: a batch whose
 * commit had not completed is simply absent (it was never acknowledged), and a bad entry found
 * later is damage, reported, never repaired silently. LMDB does not checksum its own B-tree
 * pages: a damaged page is usually reported (MDB_CORRUPTED, a missing or misplaced entry),
 * but some damage to a page's internal layout can make LMDB read out of bounds and crash the
 * process before anything is served (platoon-inspect runs its check in a child process and
 * reports this case).
 *
 * Errors: every function returns 0 or a negative PT_E* code (platoon/error.h). After an
 * error, pstore_last_error() gives one line naming the file, the index and what is wrong.
 * The library never prints and never aborts on bad data read from disk: corrupted data gives
 * PT_ECORRUPT and is never returned as if it were good.
 */
#ifndef PLATOON_STORAGE_H
#define PLATOON_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platoon/error.h"
#include "platoon/raft.h"

#ifdef __cplusplus
extern "C" {
#endif

/* On-disk formats, one per engine, as pstore_identity reports them: 1 is the LMDB engine
 * (DIR/log), 2 the write-ahead log (DIR/wal). PSTORE_FORMAT_VERSION is the newest, the one a
 * new store gets by default. This code reads and writes both; a data directory of any other
 * version is refused with PT_EVERSION. */
#define PSTORE_FORMAT_LMDB    1
#define PSTORE_FORMAT_WAL     2
#define PSTORE_FORMAT_VERSION PSTORE_FORMAT_WAL

/* Storage engines (pstore_options.engine). */
enum pstore_engine {
    PSTORE_ENGINE_WAL = 0,
    PSTORE_ENGINE_LMDB = 1,
};

/*
 * Sync modes: what a write that returned 0 guarantees.
 *
 * Whatever the mode, a write is atomic: after any crash the store holds every earlier write
 * and either all or none of the last one, and a crash of the *process* alone (SIGKILL, abort)
 * loses nothing that returned, because the data is already in the operating system's cache.
 * The modes differ only after a crash of the *machine* (power loss, kernel panic):
 *
 *  PSTORE_SYNC_FULL (default): durable before acknowledged. Each write is flushed to the
 *      device (write-ahead log: one fdatasync of the appended records; LMDB: fdatasync of
 *      the data pages, then a synchronous write of the meta page) before pstore_write returns.
 * After a power loss every write that returned is there, provided the device honours flushes.
 *  PSTORE_SYNC_NORMAL: write-ahead log: the same as FULL (one flush per write is already the
 *      least that keeps the log whole after a power loss). LMDB: MDB_NOMETASYNC. Data pages are
 * flushed at each commit but the meta page that makes the commit visible is flushed only by the
 * next commit. After a power loss the store is intact (consistent) but the last write that returned
 * may be missing. NOT enough for a Raft voter: a lost vote or a lost acknowledged entry breaks
 *      Raft's safety (§5.2, §5.4); meant for learners or measured trade-offs.
 *  PSTORE_SYNC_NONE: nothing is flushed (LMDB: MDB_NOSYNC; the write-ahead log makes new
 *      segments sparse instead of writing their zeros). UNSAFE: after a power loss any
 *      number of recent writes may be lost, and on a file system that reorders writes the
 *      log may be damaged in its middle (detected at open as PT_ECORRUPT; where possible for
 *      LMDB).
 *      For tests and benchmarks only.
 *
 * The memory backend accepts the mode and ignores it: it has no durability at all.
 */
enum pstore_sync {
    PSTORE_SYNC_FULL = 0,
    PSTORE_SYNC_NORMAL = 1,
    PSTORE_SYNC_NONE = 2,
};

typedef struct pstore_options {
    /* Identity recorded when the store is created and checked at every later open. Both are
     * non-zero; the one exception is inspection: both 0 with create = false opens an existing
     * store whatever its identity (pstore_identity then tells it). A node must always pass
     * its own identity. */
    uint64_t cluster_id;
    uint64_t node_id;
    /* Whether pstore_open may initialise an empty or missing directory. A node must pass
     * false once it has been bootstrapped or joined: a node that forgot its vote could vote
     * twice in one term (§5.2), so a missing store is an error, never a fresh start. */
    bool create;
    /* Open an existing store for reading only (inspection): nothing in the directory is
     * created, changed or removed, so a read-only file system or copy can be checked. A store
     * in use by another process is refused all the same (PT_EBUSY). Writing to a store opened
     * so fails. Requires create = false. Default false. */
    bool read_only;
    uint32_t sync; /* enum pstore_sync; default PSTORE_SYNC_FULL */
    /* How many complete snapshots to keep (the newest ones). Default 2; at least 1. */
    uint32_t keep_snapshots;
    /* Initial size of the LMDB map in bytes; it doubles whenever it fills (there is no limit
     * on the log's size other than the disk). Default 64 MiB. */
    size_t initial_map_size;
    /* zstd level for snapshots (1..19), or 0 to store snapshots uncompressed. Default 3. */
    int zstd_level;
    /* The engine of a store created by this open (enum pstore_engine). An existing store
     * always opens with the engine it was created with, whatever this says. Default
     * PSTORE_ENGINE_WAL. */
    uint32_t engine;
    /* Write-ahead log only: the size of each segment file in bytes, 64 KiB..1 GiB. A new
     * store starts with 1 MiB and each segment doubles the last up to this size (quick to
     * create, small while the log is). Chosen when a segment is made, and then smaller where the
     * file system is short of space (never more than an eighth of the space left, so that the zeros
     * of two segments never take a small disk) but always large enough for the batch that needs it
     * (a batch larger than a segment gets a segment of its own). Segments of other sizes are read
     * all the same. Default 64 MiB. */
    uint64_t segment_size;
} pstore_options;

/* Fills @opts with the defaults above, for node @node_id of cluster @cluster_id, with
 * create = false. */
PT_API void pstore_options_init(pstore_options *opts, uint64_t cluster_id, uint64_t node_id);

typedef struct pstore pstore;

/*
 * Opens (or, if opts->create, creates) the data directory @dir.
 *
 * Opening checks, and refuses to go on if anything is wrong: the format version; the identity
 * (cluster and node ids); that the directory holds all its parts (a directory with some of
 * the files but not all is damaged, not new); every metadata record's checksum; the last
 * entries of the log (the tail) and that first/last index agree with the metadata; every
 * complete snapshot's header and checksum. Stale temporary snapshot files are removed, as are
 * snapshots beyond the keep count, and a snapshot that was received but never installed.
 *
 * @dir: the data directory; created (with its parents' existence required) if opts->create.
 * @opts: see pstore_options; copied.
 * @out: receives the store on success; *out is NULL on failure.
 * @err, @err_cap: if @err is not NULL, receives one line describing a failure (file, index,
 *      what is wrong); "" on success.
 * Errors: PT_EINVAL (bad options), PT_ENOTFOUND (no store in @dir and !opts->create),
 *      PT_EMISMATCH (the store belongs to another cluster or node), PT_EVERSION (unknown
 *      format), PT_ECORRUPT (missing parts, damaged metadata, log or snapshot), PT_EIO,
 *      PT_ENOSPC, PT_ENOMEM, PT_EBUSY (another process has the directory open).
 */
PT_API int pstore_open(const char *dir, const pstore_options *opts, pstore **out, char *err,
                       size_t err_cap);

/*
 * Creates an empty in-memory store with the same contract (opts->create and opts->sync are
 * ignored; the identity is recorded and reported by pstore_identity).
 * Errors: PT_EINVAL, PT_ENOMEM.
 */
PT_API int pstore_open_memory(const pstore_options *opts, pstore **out);

/* Closes the store and frees it, aborting any snapshot being written or received (their
 * temporary files are removed at the next open). NULL is allowed. */
PT_API void pstore_close(pstore *s);

/* One line describing the last failure of a call on @s ("" if none); valid until the next
 * call on @s. Never NULL. */
PT_API const char *pstore_last_error(const pstore *s);

/* The identity and format version recorded in the store. */
PT_API void pstore_identity(const pstore *s, uint64_t *cluster_id, uint64_t *node_id,
                            uint32_t *format_version);

/* ============================================================================================
 * Reading
 * ========================================================================================== */

/* The durable hard state ({0,0,0} if never written). */
PT_API void pstore_hard_state(const pstore *s, praft_hard_state *hs);

/* The latest configuration written with pstore_write (or with the installed snapshot) and the
 * index of its entry. *has is false if none was ever written (then @config is untouched). */
PT_API void pstore_config(const pstore *s, bool *has, uint64_t *index, praft_config *config);

/* first_index and last_index as defined above (last = first - 1 when the log is empty). */
PT_API void pstore_log_range(const pstore *s, uint64_t *first, uint64_t *last);

/*
 * The term of the entry at @index, for first_index - 1 <= index <= last_index.
 * Errors: PT_ECOMPACTED (index < first_index - 1), PT_EUNAVAILABLE (index > last_index),
 * PT_ECORRUPT (the entry fails its checksum), PT_EIO.
 */
PT_API int pstore_term(pstore *s, uint64_t index, uint64_t *term);

/*
 * Entries lo..hi-1, at most @max_bytes of entry data in total but always at least one when
 * lo < hi. Fills out[0..*n) (room for hi - lo entries). Each entry's data is allocated with
 * malloc() (NULL when len is 0) and belongs to the caller. Every entry's checksum is verified.
 * On error *n is 0 and nothing is left allocated.
 * Errors: PT_EINVAL (lo > hi), PT_ECOMPACTED (lo < first_index), PT_EUNAVAILABLE (hi >
 * last_index + 1), PT_ECORRUPT, PT_EIO, PT_ENOMEM.
 */
PT_API int pstore_entries(pstore *s, uint64_t lo, uint64_t hi, size_t max_bytes, praft_entry *out,
                          size_t *n);

/* Frees the data of out[0..n) as returned by pstore_entries. */
PT_API void pstore_entries_free(praft_entry *out, size_t n);

/* The meta of the current snapshot (the one the state machine restores from at start-up):
 * *has is false if there is none. */
PT_API void pstore_snapshot_current(const pstore *s, bool *has, praft_snapshot_meta *meta);

/*
 * Fills @out so that the Raft core reads this store (praft_new, praft_storage). out->ctx is
 * @s, which must outlive the node. initial_state gives the hard state and the current
 * snapshot; snapshot_read serves any complete snapshot kept by the store.
 */
PT_API void pstore_raft_storage(pstore *s, praft_storage *out);

/* ============================================================================================
 * Writing: one call per praft_ready
 * ========================================================================================== */

typedef struct pstore_batch {
    /* A snapshot received in full (pstore_recv_finish returned 0 for it): install it, i.e.
     * replace the whole log by it (first_index = index + 1, base term = its term) and make it
     * the current snapshot; its configuration becomes the store's configuration unless
     * @config below is given too. NULL: none. */
    const praft_snapshot_meta *install_snapshot;
    /* Entries to append, consecutive, entries[0].index <= last_index + 1 and >= first_index
     * (after any installed snapshot). Every stored entry at index >= entries[0].index is
     * deleted first (a conflicting suffix, §5.3). The data is copied. */
    const praft_entry *entries;
    size_t n_entries;
    /* The new hard state, or NULL. */
    const praft_hard_state *hard_state;
    /* The latest configuration (a CONFIG entry in @entries, or a fallback after a
     * truncation) and the index of its entry, or NULL. */
    const praft_config *config;
    uint64_t config_index;
} pstore_batch;

/*
 * Carries out @w atomically: one write transaction and one sync (per the sync mode). On
 * success everything in @w is durable; on failure nothing of it is, the store is as before
 * the call, and nothing previously written is lost.
 * Errors: PT_EINVAL (non-consecutive entries, a gap after last_index, an append below
 * first_index, an unknown install_snapshot...), PT_ENOTFOUND (install_snapshot names no
 * complete snapshot), PT_ENOSPC (disk full: the call may be retried once space is freed),
 * PT_EIO, PT_ENOMEM.
 */
PT_API int pstore_write(pstore *s, const pstore_batch *w);

/*
 * Drops the log's prefix up to and including @upto, after a snapshot covering it was taken
 * (pstore_snap_finish). The base becomes @upto with its term. @upto below first_index is a
 * no-op. One write transaction and one sync.
 * Errors: PT_EINVAL (@upto beyond the current snapshot's index or beyond last_index),
 * PT_ECORRUPT, PT_EIO, PT_ENOSPC.
 */
PT_API int pstore_purge(pstore *s, uint64_t upto);

/* ============================================================================================
 * Snapshots
 *
 * A snapshot file holds a header (format, index, term, configuration, compression), the
 * application's serialized state (compressed with zstd unless zstd_level is 0) and a trailer
 * (sizes and XXH3-64 checksums of the payload and of the header). praft_snapshot_meta.size is
 * the length of the whole file and .checksum its XXH3-64: these are the bytes that
 * InstallSnapshot transfers, so the receiver verifies exactly what it received.
 * ========================================================================================== */

typedef struct pstore_snap_writer pstore_snap_writer;

/*
 * Starts a snapshot of the state after applying entries up to @index, of term @term, under
 * @config. The application then hands its serialized state in pieces to pstore_snap_write
 * and ends with pstore_snap_finish or pstore_snap_abort. One writer at a time per store.
 * Errors: PT_EINVAL (index 0, or older than the current snapshot), PT_EBUSY (a writer is
 * open), PT_EIO, PT_ENOSPC, PT_ENOMEM.
 */
PT_API int pstore_snap_begin(pstore *s, uint64_t index, uint64_t term, const praft_config *config,
                             pstore_snap_writer **out);

/* Appends @len bytes of the application's state. Errors: PT_EIO, PT_ENOSPC, PT_ENOMEM; after
 * an error the writer can only be aborted. */
PT_API int pstore_snap_write(pstore_snap_writer *w, const void *data, size_t len);

/*
 * Completes the snapshot: flushes the compressor, writes the trailer, syncs the temporary
 * file, renames it into place and syncs the directory; then records it as the current
 * snapshot (one small write transaction) and removes snapshots beyond the keep count. Frees
 * @w whatever the outcome. *meta (may be NULL) receives the snapshot's meta, with size and
 * checksum, ready for praft_snapshot_taken.
 * Errors: PT_EIO, PT_ENOSPC, PT_ENOMEM (on error nothing changed: the old snapshot stays).
 */
PT_API int pstore_snap_finish(pstore_snap_writer *w, praft_snapshot_meta *meta);

/* Abandons the snapshot and removes its temporary file; frees @w. NULL is allowed. */
PT_API void pstore_snap_abort(pstore_snap_writer *w);

/*
 * Reads up to @cap raw bytes (as transferred by InstallSnapshot) of the complete snapshot
 * @meta (matched by index and term) at @offset. *len is 0 only at the end.
 * Errors: PT_ENOTFOUND (no such snapshot any more), PT_EINVAL (offset past the end), PT_EIO.
 */
PT_API int pstore_snap_read(pstore *s, const praft_snapshot_meta *meta, uint64_t offset, void *buf,
                            size_t cap, size_t *len);

/*
 * Receiving a snapshot chunk by chunk (InstallSnapshot, §7). One transfer at a time; a transfer
 * is identified by @meta's index and term (and its size and checksum).
 *
 * pstore_recv_chunk writes @len bytes at @offset. Offset 0 starts the transfer over (any
 * partial transfer, of this snapshot or another, is dropped). Any other offset must equal the
 * number of bytes already received for this same snapshot (a resumed transfer continues where
 * the last durable chunk ended); otherwise the chunk is refused with PT_ESTALE and the transfer
 * is left as it was. Each chunk is synced before the call returns. *next (may be NULL)
 * receives the offset the receiver expects next, also on PT_ESTALE (0 if there is no transfer
 * of this snapshot).
 * Errors: PT_ESTALE, PT_EINVAL (data past meta->size, meta->size 0), PT_EIO, PT_ENOSPC,
 * PT_ENOMEM.
 */
PT_API int pstore_recv_chunk(pstore *s, const praft_snapshot_meta *meta, uint64_t offset,
                             const void *data, size_t len, uint64_t *next);

/*
 * Ends the transfer of @meta: checks that all meta->size bytes arrived, that their XXH3-64 is
 * meta->checksum, that the header and trailer are well formed and agree with @meta (index,
 * term) and that the payload's checksum is right; then renames the file into place and syncs
 * the directory. The snapshot is then complete but not installed: pass it as
 * pstore_batch.install_snapshot to replace the log (if the node crashes in between, the
 * uninstalled snapshot is removed at the next open). On a verification failure the partial
 * transfer is dropped and PT_ECORRUPT returned (the sender must start over at offset 0).
 * Errors: PT_ENOTFOUND (no transfer of this snapshot), PT_EUNAVAILABLE (bytes missing),
 * PT_ECORRUPT, PT_EIO, PT_ENOSPC.
 */
PT_API int pstore_recv_finish(pstore *s, const praft_snapshot_meta *meta);

/* Drops the transfer in progress, if any, and its temporary file. */
PT_API void pstore_recv_abort(pstore *s);

typedef struct pstore_snap_reader pstore_snap_reader;

/*
 * Opens the complete snapshot @meta (index and term) to read back the application's state,
 * decompressed, in pieces: memory stays bounded whatever the snapshot's size. *config_out
 * (may be NULL) receives the snapshot's configuration. The header is verified here; the
 * payload's checksum is verified as it is read (the read that reaches the end fails with
 * PT_ECORRUPT on a mismatch, so a restore must read to the end before trusting the state).
 * Errors: PT_ENOTFOUND, PT_ECORRUPT, PT_EIO, PT_ENOMEM.
 */
PT_API int pstore_snap_open(pstore *s, const praft_snapshot_meta *meta, praft_config *config_out,
                            pstore_snap_reader **out);

/* Reads up to @cap bytes of the decompressed state into @buf; *len is 0 at the end (once the
 * checksum was verified). Errors: PT_ECORRUPT, PT_EIO, PT_ENOMEM. */
PT_API int pstore_snap_reader_read(pstore_snap_reader *r, void *buf, size_t cap, size_t *len);

/* Closes the reader. NULL is allowed. */
PT_API void pstore_snap_reader_close(pstore_snap_reader *r);

/* A snapshot kept by the store. */
typedef struct pstore_snap_info {
    uint64_t index;
    uint64_t term;
    uint64_t size;     /* bytes of the file */
    uint64_t checksum; /* XXH3-64 of the file */
    uint64_t raw_size; /* bytes of the application's state, uncompressed */
    bool current;      /* the one restored from at start-up */
} pstore_snap_info;

/* Lists the complete snapshots, newest first, into out[0..*n) (at most @cap). */
PT_API void pstore_snap_list(const pstore *s, pstore_snap_info *out, size_t cap, size_t *n);

/* ============================================================================================
 * Integrity
 * ========================================================================================== */

/*
 * Reads and verifies everything: every entry's checksum and index, the log's contiguity,
 * every snapshot file. Returns 0, or PT_ECORRUPT / PT_EIO with pstore_last_error() naming the
 * first problem found. Takes time proportional to the store's size (platoon-inspect uses it).
 */
PT_API int pstore_check(pstore *s);

#ifdef __cplusplus
}
#endif
#endif
