/* State of the LMDB backend, shared by lmdb.c (log and metadata) and snapfiles.c (files). */
#ifndef PLATOON_STORAGE_LMDB_STORE_H
#define PLATOON_STORAGE_LMDB_STORE_H

#include <lmdb.h>
#include <limits.h>

#include "storage/files.h"

typedef struct lstore {
    pstore_files files; /* first: see files.h */
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
    char log_file[300];     /* DIR/log/data.mdb, for messages */
} lstore;

/* Keeps zero-filled room ahead of LMDB's last page in the data file (lmdb.c). */
void pstore__lmdb_prealloc(pstore *s);

extern const pstore_ops pstore__lmdb_ops;
/* Opens the LMDB store in @dir (the dispatch is in open.c). */
int pstore__lmdb_open(pstore *s, const char *dir);

#endif
