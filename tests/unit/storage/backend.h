/* Test helper: open a store of any backend (memory, LMDB, write-ahead log), for suites run
 * against each. */
#ifndef PLATOON_TESTS_STORAGE_BACKEND_H
#define PLATOON_TESTS_STORAGE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platoon/storage.h"

typedef struct test_backend {
    const char *name;
    bool durable;    /* reopening finds the data again */
    uint32_t engine; /* durable ones: enum pstore_engine */
    uint32_t format; /* what pstore_identity reports */
    char dir[256];
} test_backend;

/* The backends, in the order suites run them: memory, lmdb, wal. */
extern test_backend tb_backends[3];
/* Segment size the suites give write-ahead logs: small, so that they rotate often. */
#define TB_SEGMENT ((uint64_t)64 << 10)

/* Opens a fresh store (a new temporary directory for the durable ones). */
int tb_open(test_backend *b, const pstore_options *opts, pstore **out);
/* Closes and reopens the same data (durable backends only). */
int tb_reopen(test_backend *b, pstore **s, const pstore_options *opts);
/* Closes the store and removes the directory. */
void tb_close(test_backend *b, pstore *s);
/* The write-ahead log segment files of data directory @dir, in order, into paths[0..cap);
 * returns how many there are. */
size_t tb_segments(const char *dir, char paths[][600], size_t cap);
/* Removes a directory tree. */
void tb_rmrf(const char *dir);
/* Makes a fresh temporary directory into @out. */
void tb_tmpdir(char *out, size_t cap);

#endif
