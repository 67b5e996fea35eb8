/* The durability suite's fixture, shared by its engine-neutral tests (test_durability.c) and
 * those that look inside write-ahead log files (durability_wal.c). */
#ifndef PLATOON_TESTS_STORAGE_DURABILITY_H
#define PLATOON_TESTS_STORAGE_DURABILITY_H

#include <stddef.h>
#include <stdint.h>

#include "platoon/storage.h"
#include "unit/storage/backend.h"

#define N_ENTRIES 608
#define DATA_LEN  64

/* A store holding entries 1..N_ENTRIES (term 2, in batches of 16, each with a hard state whose
 * commit is the batch's first index) and a current snapshot at 100; closed. */
typedef struct fx {
    const test_backend *b;
    char parent[200];
    char dir[256];
    pstore_options opts;
    praft_snapshot_meta snap;
} fx;

/* Entry i's data: "entry-<i>" then a pattern, so that a test can find it in the file. */
void entry_data(uint64_t i, uint8_t *d);
int reopen(fx *f, pstore **s, char *err, size_t cap);
void path_of(fx *f, const char *rel, char *out, size_t cap);
uint8_t *slurp(const char *path, size_t *len);
void spit(const char *path, const uint8_t *buf, size_t len);

void segments_are_preallocated(void **state);
void wal_lost_log_is_refused(void **state);
void wal_flipped_entry_is_caught(void **state);
void wal_cut_segment_is_refused(void **state);
void wal_random_flips_never_give_wrong_data(void **state);
void wal_full_disk_loses_nothing(void **state);

#endif
