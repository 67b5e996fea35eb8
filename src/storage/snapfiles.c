/*
 * Snapshot files of the LMDB backend. A snapshot is written under a temporary name, synced,
 * renamed into place and the directory synced, so that after any crash a snapshot file under
 * its final name is complete (POSIX rename is atomic; the directory sync makes the rename
 * itself durable).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "storage/lmdb_store.h"

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

static void final_path(pstore *s, uint64_t index, uint64_t term, char *buf, size_t cap)
{
    char name[96];
    pstore__snap_filename(index, term, name, sizeof(name));
    snprintf(buf, cap, "%s/%s", s->name, name);
}

int pstore__file_tmp_create(pstore *s, int slot, uint64_t index, uint64_t term)
{
    lstore *ls = s->be;
    lstore_tmp *t = &ls->tmp[slot];
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
    lstore_tmp *t = &((lstore *)s->be)->tmp[slot];
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
    lstore_tmp *t = &((lstore *)s->be)->tmp[slot];
    if (fdatasync(t->fd) != 0) {
        return pstore__errno(s, errno, t->path, "fdatasync");
    }
    return 0;
}

static int pread_some(pstore *s, int fd, const char *path, uint64_t off, void *buf, size_t cap,
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
    lstore_tmp *t = &((lstore *)s->be)->tmp[slot];
    return pread_some(s, t->fd, t->path, off, buf, cap, n);
}

int pstore__file_tmp_publish(pstore *s, int slot)
{
    lstore *ls = s->be;
    lstore_tmp *t = &ls->tmp[slot];
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
    lstore_tmp *t = &((lstore *)s->be)->tmp[slot];
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
    int rv = pread_some(s, fd, path, off, buf, cap, n);
    close(fd);
    return rv;
}

void pstore__file_blob_remove(pstore *s, uint64_t index, uint64_t term)
{
    char path[PATH_MAX + 128];
    final_path(s, index, term, path, sizeof(path));
    if (unlink(path) == 0) {
        /* Best effort: a removal lost in a crash is redone at the next open. */
        pstore__fsync_dir(s, ((lstore *)s->be)->snap_dir);
    }
}

int pstore__files_scan(pstore *s)
{
    lstore *ls = s->be;
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
