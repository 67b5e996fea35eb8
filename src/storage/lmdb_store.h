/* State of the LMDB backend, shared by lmdb.c (log and metadata) and snapfiles.c (files). */
#ifndef PLATOON_STORAGE_LMDB_STORE_H
#define PLATOON_STORAGE_LMDB_STORE_H

#include <lmdb.h>
#include <limits.h>

#include "storage/internal.h"

typedef struct lstore_tmp {
    int fd; /* -1 when unused */
    uint64_t index, term;
    char path[400];
} lstore_tmp;

typedef struct lstore {
    MDB_env *env;
    MDB_dbi log_dbi;
    MDB_dbi meta_dbi;
    MDB_txn *rtxn; /* reset between reads, renewed for each */
    size_t map_size;
    size_t page_size;
    /* Zero-filled room kept ahead of LMDB's last page (lmdb.c, "Preallocation"). */
    uint64_t file_end;      /* the data file's size as last written or seen */
    uint64_t prealloc_cap;  /* never preallocate past this (file size limit), 0: no limit */
    uint64_t prealloc_next; /* after a failure: retry once LMDB's pages reach this size */
    int lock_fd;
    char log_file[300]; /* DIR/log/data.mdb, for messages */
    char snap_dir[300];
    lstore_tmp tmp[PSTORE_SLOTS];
} lstore;

/* Translates an errno value into a PT_E* code with a message naming @path. */
int pstore__errno(pstore *s, int err, const char *path, const char *what);
/* fsync()s a directory. */
int pstore__fsync_dir(pstore *s, const char *path);
/* Scans DIR/snapshots at open: removes temporary files, verifies and lists every snapshot. */
int pstore__files_scan(pstore *s);

/* Keeps zero-filled room ahead of LMDB's last page in the data file (lmdb.c). */
void pstore__lmdb_prealloc(pstore *s);

extern const pstore_ops pstore__lmdb_ops;
/* The snapshot file operations of pstore__lmdb_ops (snapfiles.c). */
int pstore__file_tmp_create(pstore *s, int slot, uint64_t index, uint64_t term);
int pstore__file_tmp_append(pstore *s, int slot, const void *data, size_t len);
int pstore__file_tmp_sync(pstore *s, int slot);
int pstore__file_tmp_read(pstore *s, int slot, uint64_t off, void *buf, size_t cap, size_t *n);
int pstore__file_tmp_publish(pstore *s, int slot);
void pstore__file_tmp_drop(pstore *s, int slot);
int pstore__file_blob_read(pstore *s, uint64_t index, uint64_t term, uint64_t off, void *buf,
                           size_t cap, size_t *n);
void pstore__file_blob_remove(pstore *s, uint64_t index, uint64_t term);

#endif
