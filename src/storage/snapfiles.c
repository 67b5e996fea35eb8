/*
 * Snapshot files and the data directory's lock, shared by both durable backends (LMDB and
 * the write-ahead log: files.h). A snapshot is written under a temporary name, synced,
 * renamed into place and the directory synced, so that after any crash a snapshot file under
 * its final name is complete (POSIX rename is atomic; the directory sync makes the rename
 * itself durable).
 */
#include <dirent.h>
#include <sys/file.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "storage/files.h"

int pstore__errno(pstore *s, int err, const char *path, const char *what)
{
    int code = PT_EIO;
    if (err == ENOSPC || err == EDQUOT || err == EFBIG) {
        code = PT_ENOSPC;
    } else if (err == ENOMEM) {
        code = PT_ENOMEM;
    } else if (err == ENOENT) {
        code = PT_ENOTFOUND;
    }
    return pstore__fail(s, code, "%s: %s: %s", path, what, strerror(err));
}

int pstore__fsync_dir(pstore *s, const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return pstore__errno(s, errno, path, "open directory");
    }
    int rv = 0;
    if (fsync(fd) != 0) {
        rv = pstore__errno(s, errno, path, "fsync directory");
    }
    close(fd);
    return rv;
}

int pstore__pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n < 0 ? errno : EIO;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

void pstore__files_init(pstore_files *fs)
{
    fs->lock_fd = -1;
    for (int i = 0; i < PSTORE_SLOTS; i++) {
        fs->tmp[i].fd = -1;
    }
}

void pstore__files_close(pstore_files *fs)
{
    for (int i = 0; i < PSTORE_SLOTS; i++) {
        if (fs->tmp[i].fd >= 0) {
            close(fs->tmp[i].fd); /* the .tmp file is removed at the next open */
            fs->tmp[i].fd = -1;
        }
    }
    if (fs->lock_fd >= 0) {
        close(fs->lock_fd);
        fs->lock_fd = -1;
    }
}

int pstore__files_lock(pstore *s, const char *dir)
{
    pstore_files *fs = s->be;
    char path[PATH_MAX];
    snprintf(fs->snap_dir, sizeof(fs->snap_dir), "%s/snapshots", dir);
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT) {
            return pstore__errno(s, errno, dir, "stat");
        }
        if (!s->opts.create) {
            return pstore__fail(s, PT_ENOTFOUND,
                                "%s: no data directory (a new node must be created explicitly)",
                                dir);
        }
        if (mkdir(dir, 0700) != 0) {
            return pstore__errno(s, errno, dir, "mkdir");
        }
    } else if (!S_ISDIR(st.st_mode)) {
        return pstore__fail(s, PT_EINVAL, "%s: not a directory", dir);
    }
    bool ro = s->opts.read_only;
    if (ro && s->opts.create) {
        return pstore__fail(s, PT_EINVAL, "%s: a read-only open cannot create a store", dir);
    }
    snprintf(path, sizeof(path), "%s/LOCK", dir);
    fs->lock_fd =
        ro ? open(path, O_RDONLY | O_CLOEXEC) : open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fs->lock_fd < 0 && !(ro && errno == ENOENT)) {
        return pstore__errno(s, errno, path, "open");
    }
    /* A reader shares the lock with other readers; a node holds it alone. */
    if (fs->lock_fd >= 0 && flock(fs->lock_fd, (ro ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        return pstore__fail(s, PT_EBUSY, "%s: in use by another process", dir);
    }
    return 0;
}

static void final_path(pstore *s, uint64_t index, uint64_t term, char *buf, size_t cap)
{
    char name[96];
    pstore__snap_filename(index, term, name, sizeof(name));
    snprintf(buf, cap, "%s/%s", s->name, name);
}

int pstore__file_tmp_create(pstore *s, int slot, uint64_t index, uint64_t term)
{
    pstore_files *ls = s->be;
    pstore_tmp *t = &ls->tmp[slot];
    pstore__file_tmp_drop(s, slot);
    snprintf(t->path, sizeof(t->path), "%s/%s-%llu-%llu.tmp", ls->snap_dir,
             slot == PSTORE_SLOT_LOCAL ? "local" : "recv", (unsigned long long)index,
             (unsigned long long)term);
    t->fd = open(t->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (t->fd < 0) {
        return pstore__errno(s, errno, t->path, "create");
    }
    t->index = index;
    t->term = term;
    return 0;
}

int pstore__file_tmp_append(pstore *s, int slot, const void *data, size_t len)
{
    pstore_tmp *t = &((pstore_files *)s->be)->tmp[slot];
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = write(t->fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return pstore__errno(s, n < 0 ? errno : EIO, t->path, "write");
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int pstore__file_tmp_sync(pstore *s, int slot)
{
    pstore_tmp *t = &((pstore_files *)s->be)->tmp[slot];
    if (fdatasync(t->fd) != 0) {
        return pstore__errno(s, errno, t->path, "fdatasync");
    }
    return 0;
}

int pstore__pread_some(pstore *s, int fd, const char *path, uint64_t off, void *buf, size_t cap,
                       size_t *n)
{
    for (;;) {
        ssize_t r = pread(fd, buf, cap, (off_t)off);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            return pstore__errno(s, errno, path, "read");
        }
        *n = (size_t)r;
        return 0;
    }
}

int pstore__file_tmp_read(pstore *s, int slot, uint64_t off, void *buf, size_t cap, size_t *n)
{
    pstore_tmp *t = &((pstore_files *)s->be)->tmp[slot];
    return pstore__pread_some(s, t->fd, t->path, off, buf, cap, n);
}

int pstore__file_tmp_publish(pstore *s, int slot)
{
    pstore_files *ls = s->be;
    pstore_tmp *t = &ls->tmp[slot];
    char path[PATH_MAX + 128];
    final_path(s, t->index, t->term, path, sizeof(path));
    if (fdatasync(t->fd) != 0) {
        return pstore__errno(s, errno, t->path, "fdatasync");
    }
    if (rename(t->path, path) != 0) {
        return pstore__errno(s, errno, path, "rename");
    }
    close(t->fd);
    t->fd = -1;
    return pstore__fsync_dir(s, ls->snap_dir);
}

void pstore__file_tmp_drop(pstore *s, int slot)
{
    pstore_tmp *t = &((pstore_files *)s->be)->tmp[slot];
    if (t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
        unlink(t->path);
    }
}

int pstore__file_blob_read(pstore *s, uint64_t index, uint64_t term, uint64_t off, void *buf,
                           size_t cap, size_t *n)
{
    char path[PATH_MAX + 128];
    final_path(s, index, term, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? PT_ENOTFOUND : pstore__errno(s, errno, path, "open");
    }
    int rv = pstore__pread_some(s, fd, path, off, buf, cap, n);
    close(fd);
    return rv;
}

void pstore__file_blob_remove(pstore *s, uint64_t index, uint64_t term)
{
    if (s->opts.read_only) {
        return; /* nothing in a store opened read-only is changed */
    }
    char path[PATH_MAX + 128];
    final_path(s, index, term, path, sizeof(path));
    if (unlink(path) == 0) {
        /* Best effort: a removal lost in a crash is redone at the next open. */
        pstore__fsync_dir(s, ((pstore_files *)s->be)->snap_dir);
    }
}

int pstore__files_scan(pstore *s)
{
    pstore_files *ls = s->be;
    DIR *d = opendir(ls->snap_dir);
    if (d == NULL) {
        return pstore__errno(s, errno, ls->snap_dir, "open directory");
    }
    int rv = 0;
    struct dirent *de;
    while (rv == 0 && (de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        size_t len = strlen(name);
        char path[PATH_MAX + 300];
        snprintf(path, sizeof(path), "%s/%s", ls->snap_dir, name);
        if (len > 4 && strcmp(name + len - 4, ".tmp") == 0) {
            /* A snapshot being written or received when the node stopped: never complete. */
            if (!s->opts.read_only) {
                PT_WARN("%s: removing unfinished snapshot file", path);
                unlink(path);
            }
            continue;
        }
        unsigned long long index = 0, term = 0;
        char tail[16] = "";
        if (sscanf(name, "snap-%20llu-%20llu%15s", &index, &term, tail) != 3 ||
            strcmp(tail, ".psnap") != 0) {
            continue;
        }
        struct stat st;
        if (stat(path, &st) != 0) {
            rv = pstore__errno(s, errno, path, "stat");
            break;
        }
        pstore_snap_info info;
        praft_config cfg;
        rv = pstore__snap_verify(s, index, term, (uint64_t)st.st_size, &info, &cfg);
        if (rv == 0) {
            pstore__snap_add(s, &info);
        }
    }
    closedir(d);
    if (rv == 0) {
        rv = pstore__fsync_dir(s, ls->snap_dir);
    }
    return rv;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int pstore__files_open_snapshots(pstore *s, bool has_snap, uint64_t snap_index, uint64_t snap_term,
                                 const char *log_name)
{
    pstore_files *ls = s->be;
    if (!exists(ls->snap_dir)) {
        if (has_snap) {
            return pstore__fail(s, PT_ECORRUPT,
                                "%s: missing, but snapshot %llu is recorded as current",
                                ls->snap_dir, (unsigned long long)snap_index);
        }
        if (s->opts.read_only) {
            return 0; /* nothing to read, and nothing may be created */
        }
        /* Initialisation stopped between creating the log and this folder. */
        if (mkdir(ls->snap_dir, 0700) != 0) {
            return pstore__errno(s, errno, ls->snap_dir, "mkdir");
        }
        int rv = pstore__fsync_dir(s, s->name);
        if (rv != 0) {
            return rv;
        }
    }
    int rv = pstore__files_scan(s);
    if (rv != 0) {
        return rv;
    }
    if (has_snap) {
        int pos = pstore__snap_find(s, snap_index, snap_term);
        if (pos < 0) {
            char name[96];
            pstore__snap_filename(snap_index, snap_term, name, sizeof(name));
            return pstore__fail(s, PT_ECORRUPT, "%s/%s: missing (it is the current snapshot)",
                                s->name, name);
        }
        s->snaps[pos].current = true;
        s->has_current = true;
        rv = pstore__snap_config(s, snap_index, snap_term, &s->current_config);
        if (rv != 0) {
            return rv;
        }
        if (s->base_index > snap_index) {
            return pstore__fail(
                s, PT_ECORRUPT, "%s: the log was compacted up to %llu, past the snapshot %llu",
                log_name, (unsigned long long)s->base_index, (unsigned long long)snap_index);
        }
    } else if (s->base_index > 0) {
        return pstore__fail(s, PT_ECORRUPT,
                            "%s: the log was compacted up to %llu but no snapshot is recorded",
                            log_name, (unsigned long long)s->base_index);
    }
    for (size_t i = 0; i < s->n_snaps; i++) {
        if (!s->has_current || s->snaps[i].index > snap_index) {
            PT_WARN("%s: removing snapshot %llu: received but never installed", s->name,
                    (unsigned long long)s->snaps[i].index);
        }
    }
    pstore__snap_prune(s, false);
    return 0;
}
