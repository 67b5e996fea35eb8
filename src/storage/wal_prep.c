/*
 * Segment preparation for the write-ahead log (format in wal.c). A segment is made whole
 * before it is used: its header, then zeros up to its size, written and flushed under a
 * temporary name, renamed into place, the directory flushed. Writing the zeros (rather than
 * fallocate, whose unwritten extents are converted, a metadata change, on first write) is
 * what lets a commit's fdatasync flush data only. A thread of its own prepares the next
 * segment as soon as the current one is taken, so that moving on to it costs a write
 * nothing; if the thread failed (a full disk, say) the write that needs the segment tries
 * once more itself, and fails with PT_ENOSPC, changing nothing, if there is still no room.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "storage/wal.h"

/*
 * The size of a new segment: @want, but never more than an eighth of the space left on the
 * file system (a store keeps two segments ahead of its data at most: the one being filled and
 * the one prepared; on a small or nearly full disk the room goes to what must be written, not
 * to zeros), and never less than @need (a batch larger than a segment) nor 64 KiB.
 */
static uint64_t fit_size(const wstore *ws, uint64_t want, uint64_t need)
{
    uint64_t size = want;
    struct statvfs vfs;
    if (statvfs(ws->dir, &vfs) == 0) {
        uint64_t cap = ((uint64_t)vfs.f_bavail * vfs.f_frsize / 8) & ~(uint64_t)0xffff;
        if (size > cap) {
            size = cap;
        }
    }
    if (size < need) {
        size = (need + 0xffff) & ~(uint64_t)0xffff;
    }
    return size < (64u << 10) ? (64u << 10) : size;
}

int pstore__wal_make_seg(const wstore *ws, const pstore_options *o, uint64_t seq, uint64_t want,
                         uint64_t need, int *fd_out, uint64_t *hsum, uint64_t *size_out)
{
    uint64_t size = fit_size(ws, want, need);
    *size_out = size;
    static const uint8_t zeros[1 << 16]; /* never written: .bss */
    char tmp[PATH_MAX], final[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s/prep-%016llx.tmp", ws->dir, (unsigned long long)seq);
    pstore__wal_seg_path(ws, seq, final, sizeof(final));
    *fd_out = -1;
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return errno;
    }
    uint8_t hdr[WAL_SEG_HDR];
    *hsum = pstore__wal_seg_hdr(hdr, seq, size, o->cluster_id, o->node_id);
    int err = pstore__pwrite_all(fd, hdr, sizeof(hdr), 0);
    bool sync = o->sync != PSTORE_SYNC_NONE;
    if (err == 0 && !sync) {
        /* Nothing is flushed in this mode: a sparse file reads as zeros all the same. */
        if (ftruncate(fd, (off_t)size) != 0) {
            err = errno;
        }
    }
    for (uint64_t at = WAL_SEG_HDR; err == 0 && sync && at < size;) {
        size_t n = size - at < sizeof(zeros) ? (size_t)(size - at) : sizeof(zeros);
        err = pstore__pwrite_all(fd, zeros, n, at);
        at += n;
    }
    if (err == 0 && sync && fdatasync(fd) != 0) {
        err = errno;
    }
    if (err == 0 && rename(tmp, final) != 0) {
        err = errno;
    }
    if (err != 0) {
        close(fd);
        unlink(tmp);
        return err;
    }
    if (sync) {
        int dfd = open(ws->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) != 0) {
            err = errno;
        }
        if (dfd >= 0) {
            close(dfd);
        }
        if (err != 0) {
            /* Left under its final name: a segment with a good header and only zeros after
             * it is a prepared segment at the next open, whether this rename lasts or not. */
            close(fd);
            return err;
        }
    }
    *fd_out = fd;
    return 0;
}

/*
 * The size wanted for the segment after the last one: segments start at WAL_FIRST_SEG and
 * double up to pstore_options.segment_size. A new store (a new node, a test) is then quick
 * to create and small while its log is; a busy log soon gets full-sized segments.
 */
static uint64_t next_size(const pstore *s)
{
    const wstore *ws = s->be;
    uint64_t size = ws->n_segs > 0 ? 2 * ws->segs[ws->n_segs - 1].size : WAL_FIRST_SEG;
    if (size < WAL_FIRST_SEG) {
        size = WAL_FIRST_SEG;
    }
    return size < s->opts.segment_size ? size : s->opts.segment_size;
}

static void *prep_main(void *arg)
{
    pstore *s = arg;
    wstore *ws = s->be;
    pthread_mutex_lock(&ws->mu);
    while (!ws->stop) {
        if (ws->want_seq != 0 && ws->ready_fd < 0 && ws->prep_errno == 0) {
            uint64_t seq = ws->want_seq, size = ws->want_size, hsum = 0;
            int fd = -1;
            ws->busy = true;
            pthread_mutex_unlock(&ws->mu);
            int err = pstore__wal_make_seg(ws, &s->opts, seq, size, 0, &fd, &hsum, &size);
            pthread_mutex_lock(&ws->mu);
            ws->busy = false;
            if (err == 0) {
                ws->ready_fd = fd;
                ws->ready_seq = seq;
                ws->ready_size = size;
                ws->ready_hsum = hsum;
                ws->want_seq = 0;
            } else {
                ws->prep_errno = err; /* the commit that needs it retries, then reports it */
            }
            pthread_cond_broadcast(&ws->cv);
            continue;
        }
        pthread_cond_wait(&ws->cv, &ws->mu);
    }
    pthread_mutex_unlock(&ws->mu);
    return NULL;
}

int pstore__wal_start_thread(pstore *s)
{
    wstore *ws = s->be;
    if (pthread_create(&ws->thread, NULL, prep_main, s) != 0) {
        return pstore__fail(s, PT_ENOMEM, "%s: cannot start the segment preparation thread",
                            ws->dir);
    }
    ws->thread_on = true;
    pthread_mutex_lock(&ws->mu);
    if (ws->ready_fd < 0) {
        ws->want_seq = ws->segs[ws->n_segs - 1].seq + 1;
        ws->want_size = next_size(s);
        pthread_cond_broadcast(&ws->cv);
    }
    pthread_mutex_unlock(&ws->mu);
    return 0;
}

/* Takes the prepared segment @seq of at least @need bytes, making it now if the thread has
 * none (it failed, e.g. on a full disk that may have room again, or it is too small). */
int pstore__wal_take_next(pstore *s, uint64_t seq, uint64_t need, wal_seg *out)
{
    wstore *ws = s->be;
    int stale = -1;
    pthread_mutex_lock(&ws->mu);
    while (ws->busy) {
        pthread_cond_wait(&ws->cv, &ws->mu);
    }
    if (ws->ready_fd >= 0 && ws->ready_seq == seq && ws->ready_size >= need) {
        *out = (wal_seg){.seq = seq,
                         .size = ws->ready_size,
                         .hsum = ws->ready_hsum,
                         .end = WAL_SEG_HDR,
                         .fd = ws->ready_fd};
        ws->ready_fd = -1;
        pthread_mutex_unlock(&ws->mu);
        return 0;
    }
    stale = ws->ready_fd;
    ws->ready_fd = -1;
    ws->want_seq = 0;
    ws->prep_errno = 0;
    pthread_mutex_unlock(&ws->mu);
    if (stale >= 0) {
        close(stale);
    }
    uint64_t size = 0;
    int fd = -1;
    uint64_t hsum = 0;
    int err = pstore__wal_make_seg(ws, &s->opts, seq, next_size(s), need, &fd, &hsum, &size);
    if (err != 0) {
        char path[PATH_MAX];
        pstore__wal_seg_path(ws, seq, path, sizeof(path));
        if (err == ENOSPC || err == EDQUOT || err == EFBIG) {
            return pstore__fail(s, PT_ENOSPC,
                                "%s: cannot make the next segment: no space left (%s); the write "
                                "was not done, nothing written before is lost",
                                path, strerror(err));
        }
        return pstore__errno(s, err, path, "make segment");
    }
    *out = (wal_seg){.seq = seq, .size = size, .hsum = hsum, .end = WAL_SEG_HDR, .fd = fd};
    return 0;
}

/* Hands an unused segment back (a rotation whose commit failed). */
void pstore__wal_give_back(wstore *ws, wal_seg *seg)
{
    pthread_mutex_lock(&ws->mu);
    if (ws->ready_fd < 0) {
        ws->ready_fd = seg->fd;
        ws->ready_seq = seg->seq;
        ws->ready_size = seg->size;
        ws->ready_hsum = seg->hsum;
        ws->want_seq = 0;
        seg->fd = -1;
    }
    pthread_mutex_unlock(&ws->mu);
    if (seg->fd >= 0) {
        close(seg->fd);
    }
}

void pstore__wal_want_next(pstore *s, uint64_t seq)
{
    wstore *ws = s->be;
    pthread_mutex_lock(&ws->mu);
    ws->want_seq = seq;
    ws->want_size = next_size(s);
    ws->prep_errno = 0;
    pthread_cond_broadcast(&ws->cv);
    pthread_mutex_unlock(&ws->mu);
}
