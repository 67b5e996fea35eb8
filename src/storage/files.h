/*
 * What the two durable backends (LMDB and the write-ahead log) share: the data directory's
 * lock file, the folder of snapshot files and the temporary files of snapshots being written
 * or received (snapfiles.c). Each durable backend's state begins with a pstore_files, so
 * that s->be can be read as one.
 */
#ifndef PLATOON_STORAGE_FILES_H
#define PLATOON_STORAGE_FILES_H

#include <limits.h>

#include "storage/internal.h"

typedef struct pstore_tmp {
    int fd; /* -1 when unused */
    uint64_t index, term;
    char path[400];
} pstore_tmp;

typedef struct pstore_files {
    int lock_fd; /* DIR/LOCK, flock()ed; -1 when none */
    char snap_dir[300];
    pstore_tmp tmp[PSTORE_SLOTS];
} pstore_files;

/* Sets every descriptor to -1. */
void pstore__files_init(pstore_files *fs);
/* Closes the descriptors (temporary files are removed at the next open). */
void pstore__files_close(pstore_files *fs);

/* Translates an errno value into a PT_E* code with a message naming @path. */
int pstore__errno(pstore *s, int err, const char *path, const char *what);
/* fsync()s a directory. */
int pstore__fsync_dir(pstore *s, const char *path);
/* Writes all of @len bytes at @off (retrying short writes and EINTR); errno on failure. */
int pstore__pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
/* Reads up to @cap bytes at @off (retrying EINTR) into @buf; *n gets the count. */
int pstore__pread_some(pstore *s, int fd, const char *path, uint64_t off, void *buf, size_t cap,
                       size_t *n);

/*
 * Opening a data directory, the part both durable backends share: makes @dir if opts.create
 * allows (a missing one is PT_ENOTFOUND otherwise), refuses a read-only open that asks to
 * create, and takes DIR/LOCK (shared for a read-only open, exclusive otherwise; PT_EBUSY when
 * another process holds it). Sets fs->snap_dir.
 */
int pstore__files_lock(pstore *s, const char *dir);
/* Scans DIR/snapshots at open: removes temporary files, verifies and lists every snapshot. */
int pstore__files_scan(pstore *s);
/*
 * The end of every durable open: creates DIR/snapshots if an initialisation stopped before
 * it, lists the snapshots, marks (snap_index, snap_term) current if @has_snap and checks it
 * against the log's base; removes what is beyond the keep count or was never installed.
 * @log_name names the log in messages.
 */
int pstore__files_open_snapshots(pstore *s, bool has_snap, uint64_t snap_index, uint64_t snap_term,
                                 const char *log_name);

/* The snapshot file operations of pstore_ops (snapfiles.c). */
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
