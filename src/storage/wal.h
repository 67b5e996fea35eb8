/*
 * The write-ahead log backend: state shared by wal.c (writing, reading, segment preparation)
 * and wal_open.c (creating a store, recovery at open). The format and the rules are
 * described at the top of wal.c.
 */
#ifndef PLATOON_STORAGE_WAL_H
#define PLATOON_STORAGE_WAL_H

#include <pthread.h>

#include "storage/files.h"

#define WAL_SEG_HDR   64u                 /* segment header */
#define WAL_REC_HDR   40u                 /* record header */
#define WAL_START_FIX 112u                /* fixed part of a segment start record's payload */
#define WAL_FIRST_SEG ((uint64_t)1 << 20) /* a new store's first segment (then doubling) */

enum wal_type {
    WAL_SEG_START = 1, /* first record of every segment: the metadata at that point */
    WAL_ENTRIES = 2,   /* a batch of consecutive entries */
    WAL_HARD_STATE = 3,
    WAL_CONFIG = 4,
    WAL_BASE = 5,     /* the entry before the log: drops every entry up to it */
    WAL_SNAPSHOT = 6, /* the current snapshot */
    WAL_TRUNCATE = 7, /* drops every entry from an index on (§5.3) */
};
#define WAL_F_COMMIT 1u /* the last record of its commit */

/* Where an entry lives: its value (codec.h entry layout) at @off in segment @seq. */
typedef struct wal_ent {
    uint64_t term;
    uint64_t seq;
    uint32_t off;
    uint32_t len;
} wal_ent;

typedef struct wal_seg {
    uint64_t seq;
    uint64_t size;
    uint64_t hsum; /* checksum of its header: the seed of its start record */
    uint64_t end;  /* end of its last durable record */
    int fd;
} wal_seg;

typedef struct wstore {
    pstore_files files; /* first: see files.h */
    char dir[300];      /* DIR/wal */
    wal_seg *segs;      /* the live segments in order; the last is the one appended to */
    size_t n_segs, cap_segs;
    uint64_t lsn;   /* sequence number of the next record */
    uint64_t chain; /* checksum of the last durable record: the next one's seed */

    /* The in-memory index of entries ents_first .. ents_first + n_ents - 1. */
    wal_ent *ents;
    size_t ents_off, n_ents, cap_ents;
    uint64_t ents_first;

    uint8_t *buf; /* encoding and reading space */
    size_t buf_cap;

    /* The next segment, prepared ahead by a thread of its own (wal.c, "Preparation"). */
    pthread_t thread;
    bool thread_on;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    uint64_t want_seq, want_size; /* what to prepare next (0: nothing) */
    bool busy;                    /* the thread is preparing */
    int ready_fd;                 /* a prepared segment, -1 if none */
    uint64_t ready_seq, ready_size, ready_hsum;
    int prep_errno; /* the thread's last failure, 0 if none */
} wstore;

/* "DIR/wal/<seq as 16 hex digits>.wal" */
void pstore__wal_seg_path(const wstore *ws, uint64_t seq, char *buf, size_t cap);
/* Encodes a segment header; returns its checksum. */
uint64_t pstore__wal_seg_hdr(uint8_t hdr[WAL_SEG_HDR], uint64_t seq, uint64_t size,
                             uint64_t cluster, uint64_t node);
/* Writes record header + payload at @p (payload already in place at p + WAL_REC_HDR, padded
 * with zeros to a multiple of 8); returns its checksum. */
uint64_t pstore__wal_seal(uint8_t *p, uint64_t seed, uint64_t seg_seq, uint64_t lsn,
                          uint64_t commit_lsn, uint32_t len, uint8_t type, uint8_t flags);
/* The checksum of the header of a record at @p (the part after the two sums). */
uint64_t pstore__wal_hsum(const uint8_t *p, uint64_t seg_seq);
/* The checksum of a whole record at @p with payload length @len. */
uint64_t pstore__wal_sum(const uint8_t *p, uint32_t len, uint64_t seed);
/* Encodes the current metadata (from s) as a start record's payload into @p; returns its
 * length (at most WAL_START_FIX + PSTORE_REC_MAX). */
size_t pstore__wal_start_payload(const pstore *s, uint64_t prev_sum, uint8_t *p);
/* Makes segment @seq (header, then zeros) under its final name, synced: @want bytes, less on
 * a file system short of space, never less than @need (wal_prep.c); *size gets its size. On
 * success *fd is open for reading and writing. Returns 0 or an errno value. */
int pstore__wal_make_seg(const wstore *ws, const pstore_options *o, uint64_t seq, uint64_t want,
                         uint64_t need, int *fd, uint64_t *hsum, uint64_t *size);

/* Index operations shared by commits and recovery. */
int pstore__wal_idx_append(wstore *ws, const wal_ent *e, uint64_t index);
void pstore__wal_idx_truncate(wstore *ws, uint64_t from);
void pstore__wal_idx_drop_upto(wstore *ws, uint64_t upto);
wal_ent *pstore__wal_idx_get(wstore *ws, uint64_t index);
int pstore__wal_buf(wstore *ws, size_t need);

/* Takes the prepared segment @seq of at least @need bytes into *out, making it now if the
 * thread has none (wal_prep.c). PT_ENOSPC and others with a message. */
int pstore__wal_take_next(pstore *s, uint64_t seq, uint64_t need, wal_seg *out);
/* Hands an unused segment back (a rotation whose commit failed). */
void pstore__wal_give_back(wstore *ws, wal_seg *seg);
/* Asks the thread to prepare segment @seq. */
void pstore__wal_want_next(pstore *s, uint64_t seq);
/* Starts the preparation thread (read-write opens). */
int pstore__wal_start_thread(pstore *s);
/* Removes segments that hold no live entry and are not the one appended to. */
int pstore__wal_drop_old(pstore *s);

/* Records of the commit being read, applied once its last record is seen. */
typedef struct wal_pending {
    uint8_t *data; /* payloads, each at an offset multiple of 8 */
    size_t len, cap;
    struct prec {
        uint8_t type;
        uint32_t len;
        size_t at;    /* in data */
        uint64_t off; /* in the file */
        uint64_t seq; /* segment */
    } * recs;
    size_t n, rcap;
} wal_pending;

/* What recovery rebuilds besides struct pstore. */
typedef struct wal_replay {
    bool started;
    bool has_snap;
    uint64_t snap_index, snap_term;
    uint64_t lsn_c, chain_c; /* after the last complete commit */
} wal_replay;

/* Adds a record of the commit being read (wal_replay.c). */
int pstore__wal_pend_add(pstore *s, wal_pending *pd, uint8_t type, const uint8_t *payload,
                         uint32_t len, uint64_t seq, uint64_t off);
/* Applies the records of a complete commit to the store's state and index; empties @pd. */
int pstore__wal_apply(pstore *s, wal_replay *rp, wal_pending *pd);

/* Opens the write-ahead log in @dir (the dispatch is in open.c). */
int pstore__wal_open(pstore *s, const char *dir);

extern const pstore_ops pstore__wal_ops;

#endif
