/*
 * Opening a write-ahead log (format in wal.c): creating a new one atomically, then recovery:
 * every segment is read in order, every record verified, the metadata and the index of
 * entries rebuilt.
 *
 * Torn tail or damage. A crash (of the process or of the machine) can interrupt only the
 * commit being written, and only at the end of the log: earlier commits were flushed before
 * it began. Such an interrupted commit is a "torn tail": records of it may be missing, cut
 * short, or present in any mix (a disk may write a commit's blocks in any order), and the
 * zeros of the preallocated segment follow it. It was never acknowledged, so it is cut at
 * open. The rule, at the first record that is not valid where the log stands (a bad header
 * or checksum, a broken chain, the wrong sequence number, the file ending inside it):
 *
 *   - if the next segment starts with a valid start record that continues the log exactly
 *     (its lsn and the chain value it records), what is left in this segment after its last
 *     complete commit was a write that failed and was given up: ignored;
 *   - otherwise this is the end of the log. Everything after the last complete commit, in
 *     this segment and in at most one following segment (prepared ahead, perhaps holding the
 *     first commit after a rotation), is read: if any record header there is valid and
 *     belongs to a LATER commit (its commit_lsn is past the interrupted commit's), acknowledged
 *     writes lie beyond the bad record: that is damage, PT_ECORRUPT naming the file and the
 *     offset. If none does, the bytes are the torn tail: cut (overwritten with zeros and
 *     flushed), with a warning in the log naming the file, the offset and the size.
 *
 * Also damage, never repaired: a segment header that is bad (it was flushed before the
 * segment was used), a segment shorter than its header says (segments are made whole and a
 * crash never shortens them), a missing segment in the sequence, more than one segment after
 * the end of the log, a first segment whose start record is bad, a record whose checksum is
 * right but whose content is impossible, and entries missing between the base and the last
 * index (a removed segment).
 *
 * The limit of any log of this kind: damage confined to the last commit (a flipped bit in
 * its last record, say) cannot be told from a write interrupted by a crash, and is cut like
 * one, although that commit may have been acknowledged. Everything before it is kept or
 * refused, never silently lost.
 *
 * A read-only open cuts nothing: it serves the log up to the end of the last complete commit
 * and reports what a writer would cut (a warning in the log); damage is refused as above.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "common/log.h"
#include "storage/codec.h"
#include "storage/wal.h"

#define WINDOW (1u << 20)

static size_t rec_size(size_t payload)
{
    return WAL_REC_HDR + ((payload + 7) & ~(size_t)7);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static bool want_sync(const pstore *s)
{
    return s->opts.sync != PSTORE_SYNC_NONE;
}

/* Creates DIR/wal.init holding segment 1 with its start record, then renames it to DIR/wal:
 * a crash leaves either no log (a fresh directory, retried) or a complete one. */
static int init_dir(pstore *s, const char *dir)
{
    wstore *ws = s->be;
    char final[300];
    snprintf(ws->dir, sizeof(ws->dir), "%s/wal.init", dir);
    snprintf(final, sizeof(final), "%s/wal", dir);
    nftw(ws->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    if (mkdir(ws->dir, 0700) != 0) {
        return pstore__errno(s, errno, ws->dir, "mkdir");
    }
    int fd = -1;
    uint64_t hsum = 0;
    char path[PATH_MAX];
    pstore__wal_seg_path(ws, 1, path, sizeof(path));
    uint64_t size = 0;
    uint64_t want = s->opts.segment_size < WAL_FIRST_SEG ? s->opts.segment_size : WAL_FIRST_SEG;
    int err = pstore__wal_make_seg(ws, &s->opts, 1, want, 0, &fd, &hsum, &size);
    if (err != 0) {
        return pstore__errno(s, err, path, "make segment");
    }
    uint8_t rec[WAL_REC_HDR + WAL_START_FIX + PSTORE_REC_MAX + 8];
    size_t len = pstore__wal_start_payload(s, 0, rec + WAL_REC_HDR);
    pstore__wal_seal(rec, hsum, 1, 1, 1, (uint32_t)len, WAL_SEG_START, WAL_F_COMMIT);
    err = pstore__pwrite_all(fd, rec, rec_size(len), WAL_SEG_HDR);
    if (err == 0 && want_sync(s) && fdatasync(fd) != 0) {
        err = errno;
    }
    close(fd);
    if (err != 0) {
        return pstore__errno(s, err, path, "write");
    }
    int rv = want_sync(s) ? pstore__fsync_dir(s, ws->dir) : 0;
    if (rv != 0) {
        return rv;
    }
    if (rename(ws->dir, final) != 0) {
        return pstore__errno(s, errno, final, "rename");
    }
    snprintf(ws->dir, sizeof(ws->dir), "%s", final);
    if ((rv = pstore__fsync_dir(s, dir)) != 0) {
        return rv;
    }
    PT_INFO("%s: initialised for cluster %llu node %llu (write-ahead log)", dir,
            (unsigned long long)s->opts.cluster_id, (unsigned long long)s->opts.node_id);
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the segments, in order; removes preparations that did not finish. */
static int list_segments(pstore *s, uint64_t **out, size_t *n)
{
    wstore *ws = s->be;
    DIR *d = opendir(ws->dir);
    if (d == NULL) {
        return pstore__errno(s, errno, ws->dir, "open directory");
    }
    uint64_t *seqs = NULL;
    size_t cnt = 0, cap = 0;
    int rv = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        size_t len = strlen(name);
        if (len > 4 && strcmp(name + len - 4, ".tmp") == 0) {
            if (!s->opts.read_only) {
                char path[PATH_MAX];
                snprintf(path, sizeof(path), "%s/%s", ws->dir, name);
                unlink(path);
            }
            continue;
        }
        unsigned long long seq = 0;
        char tail[8] = "";
        if (len != 20 || sscanf(name, "%16llx%7s", &seq, tail) != 2 || strcmp(tail, ".wal") != 0 ||
            seq == 0) {
            continue;
        }
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *m = realloc(seqs, cap * sizeof(*m));
            if (m == NULL) {
                rv = pstore__fail(s, PT_ENOMEM, "%s: out of memory", s->name);
                break;
            }
            seqs = m;
        }
        seqs[cnt++] = seq;
    }
    closedir(d);
    if (rv != 0) {
        free(seqs);
        return rv;
    }
    if (cnt > 1) {
        qsort(seqs, cnt, sizeof(*seqs), cmp_u64);
    }
    *out = seqs;
    *n = cnt;
    return 0;
}

/* Opens segment @seq and verifies its header. */
static int seg_open(pstore *s, uint64_t seq, wal_seg *seg, uint64_t *cluster, uint64_t *node)
{
    wstore *ws = s->be;
    char path[PATH_MAX];
    pstore__wal_seg_path(ws, seq, path, sizeof(path));
    seg->seq = seq;
    seg->fd = open(path, (s->opts.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (seg->fd < 0) {
        return pstore__errno(s, errno, path, "open");
    }
    struct stat st;
    if (fstat(seg->fd, &st) != 0) {
        return pstore__errno(s, errno, path, "stat");
    }
    uint8_t h[WAL_SEG_HDR];
    size_t r = 0;
    int rv = pstore__pread_some(s, seg->fd, path, 0, h, sizeof(h), &r);
    if (rv != 0) {
        return rv;
    }
    if (r != sizeof(h) || memcmp(h, "PLTWAL01", 8) != 0 ||
        XXH3_64bits(h, 56) != pstore__get64(h + 56)) {
        return pstore__fail(s, PT_ECORRUPT, "%s: offset 0: bad segment header", path);
    }
    if (pstore__get32(h + 8) != PSTORE_FORMAT_WAL) {
        return pstore__fail(s, PT_EVERSION, "%s: format version %u, this program reads %u", path,
                            pstore__get32(h + 8), PSTORE_FORMAT_WAL);
    }
    seg->size = pstore__get64(h + 40);
    if (pstore__get64(h + 16) != seq || seg->size < WAL_SEG_HDR + WAL_REC_HDR) {
        return pstore__fail(s, PT_ECORRUPT, "%s: offset 0: the header names segment %llu", path,
                            (unsigned long long)pstore__get64(h + 16));
    }
    if ((uint64_t)st.st_size != seg->size) {
        return pstore__fail(s, PT_ECORRUPT,
                            "%s: %lld bytes, its header says %llu: the file was cut or "
                            "extended (a crash never does that)",
                            path, (long long)st.st_size, (unsigned long long)seg->size);
    }
    seg->hsum = pstore__get64(h + 56);
    seg->end = WAL_SEG_HDR;
    *cluster = pstore__get64(h + 24);
    *node = pstore__get64(h + 32);
    return 0;
}

/* A window over one segment, read in large pieces. */
typedef struct window {
    pstore *s;
    const wal_seg *seg;
    char path[PATH_MAX];
    uint8_t *buf;
    size_t cap;
    uint64_t at; /* file offset of buf[0] */
    size_t len;
} window;

/* Points *p at bytes off..off+len of the segment; *p is NULL if they are past its end. */
static int win_get(window *w, uint64_t off, size_t len, const uint8_t **p)
{
    *p = NULL;
    if (off + len > w->seg->size) {
        return 0;
    }
    if (off >= w->at && off + len <= w->at + w->len) {
        *p = w->buf + (off - w->at);
        return 0;
    }
    size_t want = len > WINDOW ? len : WINDOW;
    if (want > w->seg->size - off) {
        want = (size_t)(w->seg->size - off);
    }
    if (want > w->cap) {
        uint8_t *b = realloc(w->buf, want);
        if (b == NULL) {
            return pstore__fail(w->s, PT_ENOMEM, "%s: out of memory", w->s->name);
        }
        w->buf = b;
        w->cap = want;
    }
    size_t r = 0;
    int rv = pstore__pread_some(w->s, w->seg->fd, w->path, off, w->buf, want, &r);
    if (rv != 0) {
        return rv;
    }
    w->at = off;
    w->len = r;
    if (r >= len) {
        *p = w->buf;
    }
    return 0;
}

/* Whether a valid record starting a segment's records continues the log at (lsn, chain). */
static int links(window *w, const wal_replay *rp, bool *ok)
{
    const uint8_t *h = NULL;
    *ok = false;
    int rv = win_get(w, WAL_SEG_HDR, WAL_REC_HDR, &h);
    if (rv != 0 || h == NULL) {
        return rv;
    }
    uint32_t len = pstore__get32(h + 32);
    if (pstore__get64(h + 8) != pstore__wal_hsum(h, w->seg->seq) || h[36] != WAL_SEG_START ||
        pstore__get64(h + 16) != rp->lsn_c || len < WAL_START_FIX ||
        WAL_SEG_HDR + rec_size(len) > w->seg->size) {
        return 0;
    }
    const uint8_t *p = NULL;
    rv = win_get(w, WAL_SEG_HDR, WAL_REC_HDR + len, &p);
    if (rv != 0 || p == NULL) {
        return rv;
    }
    *ok = pstore__wal_sum(p, len, w->seg->hsum) == pstore__get64(p) &&
          pstore__get64(p + WAL_REC_HDR) == rp->chain_c;
    return 0;
}

/*
 * Reads the records of one segment from its start. Stops at the first record that is not
 * valid where the log stands; *stop gets its offset. Applies each complete commit.
 */
static int read_segment(window *w, wal_replay *rp, wal_pending *pd, uint64_t *stop)
{
    pstore *s = w->s;
    wal_seg *seg = (wal_seg *)w->seg;
    uint64_t off = WAL_SEG_HDR, seed = seg->hsum, lsn = rp->lsn_c, commit_lsn = 0;
    pd->n = 0;
    pd->len = 0;
    for (;;) {
        const uint8_t *h = NULL;
        int rv = win_get(w, off, WAL_REC_HDR, &h);
        if (rv != 0) {
            return rv;
        }
        if (h == NULL) {
            break;
        }
        uint32_t len = pstore__get32(h + 32);
        uint64_t rl = pstore__get64(h + 16), rc = pstore__get64(h + 24);
        bool first = off == WAL_SEG_HDR;
        if (!rp->started && first) {
            lsn = rl; /* the oldest segment kept: its start record begins the log */
        }
        if (pstore__get64(h + 8) != pstore__wal_hsum(h, seg->seq) || rl != lsn ||
            rc != (pd->n > 0 ? commit_lsn : rl) || (h[36] == WAL_SEG_START) != first ||
            h[36] < WAL_SEG_START || h[36] > WAL_TRUNCATE ||
            (uint64_t)len > seg->size - off - WAL_REC_HDR) {
            break;
        }
        const uint8_t *p = NULL;
        if ((rv = win_get(w, off, WAL_REC_HDR + len, &p)) != 0) {
            return rv;
        }
        if (p == NULL || pstore__wal_sum(p, len, seed) != pstore__get64(p)) {
            break;
        }
        h = p; /* the window may have moved: read the header where the record now is */
        if (pd->n == 0) {
            commit_lsn = rl;
        }
        rv = pstore__wal_pend_add(s, pd, h[36], p + WAL_REC_HDR, len, seg->seq, off);
        if (rv != 0) {
            return rv;
        }
        seed = pstore__get64(p);
        lsn++;
        off += rec_size(len);
        if (h[37] & WAL_F_COMMIT) {
            if ((rv = pstore__wal_apply(s, rp, pd)) != 0) {
                return rv;
            }
            rp->lsn_c = lsn;
            rp->chain_c = seed;
            seg->end = off;
        }
    }
    *stop = off;
    return 0;
}

/*
 * Looks at the bytes of @seg from @from on (after the end of the log): *last_nz gets the end
 * of the last non-zero 8 bytes (@from if none); *later the offset of a valid record header of
 * a commit after @lsn_c, or 0.
 */
static int scan_after(window *w, uint64_t from, uint64_t lsn_c, uint64_t *last_nz, uint64_t *later)
{
    *last_nz = from;
    *later = 0;
    for (uint64_t o = from; o + 8 <= w->seg->size; o += 8) {
        const uint8_t *p = NULL;
        size_t need = o + WAL_REC_HDR <= w->seg->size ? WAL_REC_HDR : 8;
        int rv = win_get(w, o, need, &p);
        if (rv != 0) {
            return rv;
        }
        if (pstore__get64(p) == 0) {
            continue;
        }
        *last_nz = o + 8;
        if (need == WAL_REC_HDR && pstore__get64(p + 8) == pstore__wal_hsum(p, w->seg->seq) &&
            pstore__get64(p + 24) > lsn_c) {
            *later = o;
            return 0;
        }
    }
    return 0;
}

/* Overwrites @seg from @from to @to with zeros and flushes it. */
static int cut(pstore *s, window *w, uint64_t from, uint64_t to)
{
    static const uint8_t zeros[1 << 16];
    for (uint64_t at = from; at < to;) {
        size_t n = to - at < sizeof(zeros) ? (size_t)(to - at) : sizeof(zeros);
        int err = pstore__pwrite_all(w->seg->fd, zeros, n, at);
        if (err != 0) {
            return pstore__errno(s, err, w->path, "cut the unfinished write");
        }
        at += n;
    }
    if (want_sync(s) && fdatasync(w->seg->fd) != 0) {
        return pstore__errno(s, errno, w->path, "fdatasync");
    }
    return 0;
}

/* The end of the log is in segment @k at @stop, after its last complete commit (seg->end);
 * segment k + 1, if any, was not continued. At most two segments may follow the end: the
 * one a rotation moved to (its first commit torn, or prepared and never used) and the one
 * prepared right after that rotation. */
static int tail(pstore *s, wal_replay *rp, size_t k, size_t n, uint64_t stop)
{
    wstore *ws = s->be;
    if (k + 3 < n) {
        char path[PATH_MAX];
        pstore__wal_seg_path(ws, ws->segs[k + 3].seq, path, sizeof(path));
        return pstore__fail(s, PT_ECORRUPT,
                            "%s: follows the end of the log (segment %llu, offset %llu): "
                            "records are missing",
                            path, (unsigned long long)ws->segs[k].seq, (unsigned long long)stop);
    }
    int rv = 0;
    uint64_t nz[3] = {0, 0, 0}, from[3] = {ws->segs[k].end, WAL_SEG_HDR, WAL_SEG_HDR};
    window w[3];
    memset(w, 0, sizeof(w));
    size_t parts = n - k;
    for (size_t i = 0; i < parts && rv == 0; i++) {
        w[i].s = s;
        w[i].seg = &ws->segs[k + i];
        pstore__wal_seg_path(ws, w[i].seg->seq, w[i].path, sizeof(w[i].path));
        uint64_t later = 0;
        rv = scan_after(&w[i], from[i], rp->lsn_c, &nz[i], &later);
        if (rv == 0 && later != 0) {
            char at[PATH_MAX];
            pstore__wal_seg_path(ws, ws->segs[k].seq, at, sizeof(at));
            rv = pstore__fail(s, PT_ECORRUPT,
                              "%s: offset %llu: bad record, and later writes follow it (%s "
                              "offset %llu): damage, not an unfinished write",
                              at, (unsigned long long)stop, w[i].path, (unsigned long long)later);
        }
    }
    for (size_t i = 0; i < parts && rv == 0; i++) {
        if (nz[i] <= from[i]) {
            continue;
        }
        if (s->opts.read_only) {
            PT_WARN("%s: offset %llu: %llu bytes of a write that never completed (never "
                    "acknowledged) would be cut; opened read-only, left as they are",
                    w[i].path, (unsigned long long)from[i], (unsigned long long)(nz[i] - from[i]));
            continue;
        }
        PT_WARN("%s: offset %llu: cutting %llu bytes of a write that never completed (never "
                "acknowledged)",
                w[i].path, (unsigned long long)from[i], (unsigned long long)(nz[i] - from[i]));
        rv = cut(s, &w[i], from[i], nz[i]);
    }
    for (size_t i = 0; i < 3; i++) {
        free(w[i].buf);
    }
    return rv;
}

static int recover(pstore *s, uint64_t *seqs, size_t n, wal_replay *rp)
{
    wstore *ws = s->be;
    wal_pending pd;
    memset(&pd, 0, sizeof(pd));
    window w;
    memset(&w, 0, sizeof(w));
    w.s = s;
    int rv = 0;
    size_t k = 0;
    uint64_t stop = 0;
    for (k = 0; k < n; k++) {
        w.seg = &ws->segs[k];
        w.at = 0;
        w.len = 0;
        pstore__wal_seg_path(ws, w.seg->seq, w.path, sizeof(w.path));
        if (k > 0) {
            bool ok = false;
            if ((rv = links(&w, rp, &ok)) != 0) {
                goto out;
            }
            if (!ok) {
                break; /* the log ended in segment k - 1 */
            }
        }
        if ((rv = read_segment(&w, rp, &pd, &stop)) != 0) {
            goto out;
        }
        if (k > 0 && ws->segs[k].end == WAL_SEG_HDR) {
            /* Its first commit (the one that moved to it) never completed: the log ends in
             * the segment before, and this one is what a rotation left behind. */
            stop = ws->segs[k - 1].end;
            break;
        }
        if (!rp->started) {
            rv = pstore__fail(s, PT_ECORRUPT, "%s: offset %u: bad segment start record", w.path,
                              WAL_SEG_HDR);
            goto out;
        }
    }
    (void)seqs;
    /* Always look past the end: a commit whose first block never reached the disk leaves
     * zeros where its first record should be, and what follows them must still be judged. */
    size_t end_k = k - 1;
    rv = tail(s, rp, end_k, n, stop);
    if (rv == 0) {
        /* Keep the segments of the log; one after them is the prepared next one. */
        for (size_t i = end_k + 1; i < n; i++) {
            if (i == end_k + 1 && !s->opts.read_only) {
                /* Used next; one after it is prepared again when needed (renamed over). */
                ws->ready_fd = ws->segs[i].fd;
                ws->ready_seq = ws->segs[i].seq;
                ws->ready_size = ws->segs[i].size;
                ws->ready_hsum = ws->segs[i].hsum;
            } else {
                close(ws->segs[i].fd);
            }
            ws->segs[i].fd = -1;
        }
        ws->n_segs = end_k + 1;
    }
out:
    free(w.buf);
    free(pd.data);
    free(pd.recs);
    return rv;
}

static int open_store(pstore *s, const char *dir)
{
    wstore *ws = s->be;
    int rv = pstore__files_lock(s, dir);
    if (rv != 0) {
        return rv;
    }
    char path[PATH_MAX];
    snprintf(ws->dir, sizeof(ws->dir), "%s/wal", dir);
    bool ro = s->opts.read_only;
    snprintf(path, sizeof(path), "%s/wal.init", dir);
    if (!ro && exists(path)) {
        PT_WARN("%s: removing an initialisation that did not finish", path);
        nftw(path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    }
    bool has_wal = exists(ws->dir);
    if (!has_wal && exists(ws->files.snap_dir)) {
        return pstore__fail(s, PT_ECORRUPT,
                            "%s: missing while %s exists: the log, vote and identity are gone; "
                            "refusing to start blank",
                            ws->dir, ws->files.snap_dir);
    }
    if (!has_wal) {
        if (!s->opts.create) {
            return pstore__fail(s, PT_ENOTFOUND,
                                "%s: not initialised (a new node must be created explicitly)", dir);
        }
        if ((rv = init_dir(s, dir)) != 0) {
            return rv;
        }
    }
    uint64_t *seqs = NULL;
    size_t n = 0;
    if ((rv = list_segments(s, &seqs, &n)) != 0) {
        return rv;
    }
    if (n == 0) {
        free(seqs);
        return pstore__fail(s, PT_ECORRUPT,
                            "%s: no segment: the log, vote and identity are gone; refusing to "
                            "start blank",
                            ws->dir);
    }
    ws->segs = calloc(n, sizeof(*ws->segs));
    if (ws->segs == NULL) {
        free(seqs);
        return pstore__fail(s, PT_ENOMEM, "%s: out of memory", s->name);
    }
    ws->cap_segs = n;
    for (size_t i = 0; i < n; i++) {
        ws->segs[i].fd = -1;
    }
    ws->n_segs = n; /* all of them are closed by wal_close on failure */
    for (size_t i = 0; i < n && rv == 0; i++) {
        if (i > 0 && seqs[i] != seqs[i - 1] + 1) {
            pstore__wal_seg_path(ws, seqs[i - 1] + 1, path, sizeof(path));
            rv = pstore__fail(s, PT_ECORRUPT,
                              "%s: missing (segments %llu and %llu exist): records are lost", path,
                              (unsigned long long)seqs[i - 1], (unsigned long long)seqs[i]);
            break;
        }
        uint64_t cluster = 0, node = 0;
        rv = seg_open(s, seqs[i], &ws->segs[i], &cluster, &node);
        if (rv == 0 && i == 0 && s->opts.cluster_id == 0 && s->opts.node_id == 0) {
            s->opts.cluster_id = cluster; /* inspection: take the recorded identity */
            s->opts.node_id = node;
        }
        if (rv == 0 && (cluster != s->opts.cluster_id || node != s->opts.node_id)) {
            if (i == 0) {
                rv = pstore__fail(s, PT_EMISMATCH,
                                  "%s: belongs to cluster %llu node %llu, not cluster %llu node "
                                  "%llu",
                                  s->name, (unsigned long long)cluster, (unsigned long long)node,
                                  (unsigned long long)s->opts.cluster_id,
                                  (unsigned long long)s->opts.node_id);
            } else {
                pstore__wal_seg_path(ws, seqs[i], path, sizeof(path));
                rv = pstore__fail(s, PT_ECORRUPT, "%s: belongs to another store", path);
            }
        }
    }
    wal_replay rp;
    memset(&rp, 0, sizeof(rp));
    if (rv == 0) {
        rv = recover(s, seqs, n, &rp);
    }
    free(seqs);
    if (rv != 0) {
        return rv;
    }
    /* Every entry between the base and the last index must be there. */
    if (ws->n_ents != s->last_index - s->base_index ||
        (ws->n_ents > 0 && ws->ents_first != s->base_index + 1)) {
        pstore__wal_seg_path(ws, ws->segs[0].seq, path, sizeof(path));
        return pstore__fail(s, PT_ECORRUPT,
                            "%s: entries %llu..%llu are missing (a segment before it is gone)",
                            path, (unsigned long long)s->base_index + 1,
                            (unsigned long long)(ws->n_ents ? ws->ents_first - 1 : s->last_index));
    }
    ws->lsn = rp.lsn_c;
    ws->chain = rp.chain_c;
    rv = pstore__files_open_snapshots(s, rp.has_snap, rp.snap_index, rp.snap_term, ws->dir);
    if (rv != 0 || ro) {
        return rv;
    }
    (void)pstore__wal_drop_old(s);
    return pstore__wal_start_thread(s);
}

int pstore__wal_open(pstore *s, const char *dir)
{
    wstore *ws = calloc(1, sizeof(*ws));
    if (ws == NULL) {
        return pstore__fail(s, PT_ENOMEM, "%s: out of memory", dir);
    }
    pstore__files_init(&ws->files);
    ws->ready_fd = -1;
    pthread_mutex_init(&ws->mu, NULL);
    pthread_cond_init(&ws->cv, NULL);
    s->be = ws;
    s->ops = &pstore__wal_ops;
    s->version = PSTORE_FORMAT_WAL;
    return open_store(s, dir);
}
