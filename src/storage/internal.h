/*
 * The store's shared state and the seam between the common logic (store.c, snapshot.c) and
 * the two backends (memory.c, lmdb.c + snapfiles.c).
 *
 * The common layer validates every call, keeps the small state (hard state, configuration,
 * log range, snapshot list) cached in struct pstore, and hands each backend only resolved
 * operations: "apply this change to the log and metadata atomically", "read these entries",
 * "store these snapshot bytes". It updates its cache only after the backend succeeded, so a
 * failed write leaves the store exactly as before.
 */
#ifndef PLATOON_STORAGE_INTERNAL_H
#define PLATOON_STORAGE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platoon/storage.h"
#include "storage/codec.h"

/* One atomic change of the log and metadata. */
typedef struct pstore_change {
    /* Delete every entry with index <= @del_upto (0: none). */
    uint64_t del_upto;
    /* Delete every entry with index >= @del_from (0: none). */
    uint64_t del_from;
    const praft_entry *entries;
    size_t n_entries;
    /* Metadata records to write: encoded, checksummed (NULL: unchanged). */
    const uint8_t *hard_state;
    size_t hard_state_len;
    const uint8_t *config;
    size_t config_len;
    const uint8_t *base;
    size_t base_len;
    const uint8_t *snapshot;
    size_t snapshot_len;
} pstore_change;

/* Temporary snapshot slots: one for a snapshot being written locally, one for a received one. */
enum { PSTORE_SLOT_LOCAL = 0, PSTORE_SLOT_RECV = 1, PSTORE_SLOTS = 2 };

typedef struct pstore_ops {
    void (*close)(pstore *s);
    int (*commit)(pstore *s, const pstore_change *c);
    /* Entries lo..hi-1 bounded as pstore_entries; data malloc'd; verified. */
    int (*read)(pstore *s, uint64_t lo, uint64_t hi, size_t max_bytes, praft_entry *out, size_t *n);
    int (*term)(pstore *s, uint64_t index, uint64_t *term);
    /* Reads every entry first..last and verifies checksums and contiguity. */
    int (*check)(pstore *s);

    /* Snapshot blobs. A temporary blob is created empty (tmp_create), or reopened at its
     * current size (tmp_size); appended to; synced; read back; then published under its
     * (index, term) or dropped. */
    int (*tmp_create)(pstore *s, int slot, uint64_t index, uint64_t term);
    int (*tmp_append)(pstore *s, int slot, const void *data, size_t len);
    int (*tmp_sync)(pstore *s, int slot);
    int (*tmp_read)(pstore *s, int slot, uint64_t off, void *buf, size_t cap, size_t *n);
    int (*tmp_publish)(pstore *s, int slot);
    void (*tmp_drop)(pstore *s, int slot);
    int (*blob_read)(pstore *s, uint64_t index, uint64_t term, uint64_t off, void *buf, size_t cap,
                     size_t *n);
    void (*blob_remove)(pstore *s, uint64_t index, uint64_t term);
} pstore_ops;

#define PSTORE_MAX_SNAPS 64

struct pstore {
    const pstore_ops *ops;
    void *be; /* the backend's own state */
    pstore_options opts;
    char name[256]; /* the data directory, or "memory", for messages */
    uint32_t version;

    praft_hard_state hs;
    bool has_config;
    uint64_t config_index;
    praft_config config;
    uint64_t base_index; /* first_index - 1 */
    uint64_t base_term;
    uint64_t last_index;

    /* Complete snapshots, newest first; snaps[cur] is the current one if has_current. */
    pstore_snap_info snaps[PSTORE_MAX_SNAPS];
    size_t n_snaps;
    bool has_current;
    praft_config current_config;

    /* The transfer being received. */
    bool recv_active;
    praft_snapshot_meta recv_meta;
    uint64_t recv_bytes;

    pstore_snap_writer *writer;
    char err[512];
};

/* Records the message of a failure (printf-style) and returns @code. */
int pstore__fail(pstore *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Same, into a caller's buffer (for open, before a handle exists). */
int pstore__fail_buf(char *err, size_t cap, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Allocates a pstore with the common fields set; the backend fills ops and be. */
int pstore__alloc(const pstore_options *opts, const char *name, pstore **out);
void pstore__free(pstore *s);

/* Metadata record encoders (store.c): write into @buf, return the length. */
#define PSTORE_REC_MAX (24u + PSTORE_CONFIG_MAX)
size_t pstore__rec_hard_state(const praft_hard_state *hs, uint8_t *buf);
size_t pstore__rec_pair(uint64_t a, uint64_t b, uint8_t *buf);
size_t pstore__rec_config(uint64_t index, const praft_config *c, uint8_t *buf);
size_t pstore__rec_u32(uint32_t v, uint8_t *buf);
int pstore__rec_parse_hard_state(const uint8_t *buf, size_t len, praft_hard_state *hs);
int pstore__rec_parse_pair(const uint8_t *buf, size_t len, uint64_t *a, uint64_t *b);
int pstore__rec_parse_config(const uint8_t *buf, size_t len, uint64_t *index, praft_config *c);
int pstore__rec_parse_u32(const uint8_t *buf, size_t len, uint32_t *v);

/* Snapshots (snapshot.c). */
/* Verifies the complete snapshot (index, term) through blob_read, reading all of it; fills
 * @info (size, checksum, raw size) and the configuration. */
int pstore__snap_verify(pstore *s, uint64_t index, uint64_t term, uint64_t size,
                        pstore_snap_info *info, praft_config *config);
/* Adds a verified snapshot to the list (kept sorted, newest first). */
void pstore__snap_add(pstore *s, const pstore_snap_info *info);
/* Removes snapshots beyond the keep count among those at or below the current one, and any
 * snapshot newer than the current one unless @keep_newer. */
void pstore__snap_prune(pstore *s, bool keep_newer);
/* Index in s->snaps of (index, term), or -1. */
int pstore__snap_find(const pstore *s, uint64_t index, uint64_t term);
/* Reads the configuration in the header of the complete snapshot (index, term). */
int pstore__snap_config(pstore *s, uint64_t index, uint64_t term, praft_config *config);
/* "snapshots/snap-<index>-<term>.psnap" */
void pstore__snap_filename(uint64_t index, uint64_t term, char *buf, size_t cap);
/* Records (index, term) as the current snapshot durably. */
int pstore__snap_set_current(pstore *s, size_t pos);

extern const pstore_ops pstore__memory_ops;

#endif
