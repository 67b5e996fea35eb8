/*
 * The write-ahead log backend: a log made for appending, one flush per write.
 *
 * Files. DIR/wal/<seq>.wal, seq counting segments from 1 in 16 hex digits. Each segment is
 * made whole before it is used: a 64-byte header, then zeros up to its size (1 MiB for a new
 * store's first, doubling up to pstore_options.segment_size, 64 MiB by default; less on a file
 * system short of space), written and fdatasync()ed under a temporary name,
 * renamed into place, the directory synced. Appends then overwrite blocks that are already
 * allocated and written, so the fdatasync of a commit flushes the data and no file system
 * metadata (no size change, no new extent). A thread prepares the next segment while the
 * current one fills, so that moving on (rotation) does not stall a write.
 *
 * Segment header: magic "PLTWAL01"(8) format(4) 0(4) seq(8) cluster(8) node(8) size(8) 0(8)
 * sum(8), the XXH3-64 of the first 56 bytes. A header is durable before its segment is used:
 * a bad header is always damage.
 *
 * Records, from offset 64, each aligned to 8 bytes, little-endian:
 *
 *     sum(8)  hsum(8)  lsn(8)  commit_lsn(8)  len(4)  type(1)  flags(1)  0(2)  payload  pad
 *
 *   lsn:        the record's sequence number over the whole log (+1 per record, never
 *               reused while the record it numbers is durable);
 *   commit_lsn: the lsn of the first record of its commit;
 *   flags:      WAL_F_COMMIT on the last record of a commit;
 *   hsum:       XXH3-64 of bytes 16..40 (the header after the sums) seeded with the
 *               segment's seq: a header can be recognised on its own, and only in its file;
 *   sum:        XXH3-64 of bytes 16..40+len seeded with the previous record's sum (a
 *               segment's first record: with the segment header's sum). The chain means a
 *               record is valid only right after the record it was written after: bytes left
 *               over from a write that failed and was overwritten by a shorter one can never
 *               pass for a new record, whatever they contain.
 *
 * Kinds: SEG_START (the first record of every segment: identity, hard state, base, last
 * index, current snapshot and configuration as they were when the segment was started, and
 * the sum of the record before it, linking it to the previous segment), ENTRIES (a batch:
 * first index, count, then each entry as codec.h lays it out, with its own XXH3-64 seeded
 * with its index), HARD_STATE, CONFIG, BASE, SNAPSHOT (the records of store.c, each with its
 * own checksum), TRUNCATE (drop every entry from an index on, §5.3).
 *
 * One commit (pstore_write, pstore_purge, setting the current snapshot) is the records of
 * its change, the last flagged, written with ONE pwrite() at the end of the current segment
 * and made durable with ONE fdatasync(). A commit that does not fit in what is left of the
 * segment goes whole into the next one, after that segment's start record (a commit larger
 * than a segment gets a segment of its own size). A commit never spans two segments.
 *
 * Sync modes: FULL: one fdatasync per commit. NORMAL: the same as FULL (there is no cheaper
 * mode that keeps the log whole after a power loss; LMDB's NORMAL keeps it whole but loses
 * the last write, this engine has nothing to gain by doing so). NONE: nothing is flushed and
 * segments are made with ftruncate() rather than written zeros: after a power loss recent
 * writes may be lost and, where the disk wrote blocks out of order, damage in the middle of
 * the log is found at open (PT_ECORRUPT), never served. For tests and benchmarks only.
 *
 * A failed commit (disk full, I/O error) leaves the durable end where it was: the bytes
 * written past it are overwritten with zeros at once where possible, and in any case by the
 * next commit or ignored at open (the chain above). Memory is reserved before writing, so a
 * commit that reached the disk is always recorded in memory too.
 *
 * Purge drops whole segments once no live entry is in them; the metadata survives because
 * every segment starts with it. Recovery (the torn tail rule) is in wal_open.c.
 */
#include <errno.h>
#include <fcntl.h>
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

static const uint8_t seg_magic[8] = {'P', 'L', 'T', 'W', 'A', 'L', '0', '1'};

#define READ_SPAN (1u << 20) /* most bytes read at once when serving entries */

static size_t rec_size(size_t payload)
{
    return WAL_REC_HDR + ((payload + 7) & ~(size_t)7);
}

void pstore__wal_seg_path(const wstore *ws, uint64_t seq, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%016llx.wal", ws->dir, (unsigned long long)seq);
}

uint64_t pstore__wal_seg_hdr(uint8_t hdr[WAL_SEG_HDR], uint64_t seq, uint64_t size,
                             uint64_t cluster, uint64_t node)
{
    memset(hdr, 0, WAL_SEG_HDR);
    memcpy(hdr, seg_magic, 8);
    pstore__put32(hdr + 8, PSTORE_FORMAT_WAL);
    pstore__put64(hdr + 16, seq);
    pstore__put64(hdr + 24, cluster);
    pstore__put64(hdr + 32, node);
    pstore__put64(hdr + 40, size);
    uint64_t sum = XXH3_64bits(hdr, 56);
    pstore__put64(hdr + 56, sum);
    return sum;
}

uint64_t pstore__wal_hsum(const uint8_t *p, uint64_t seg_seq)
{
    return XXH3_64bits_withSeed(p + 16, WAL_REC_HDR - 16, seg_seq);
}

uint64_t pstore__wal_sum(const uint8_t *p, uint32_t len, uint64_t seed)
{
    return XXH3_64bits_withSeed(p + 16, WAL_REC_HDR - 16 + (size_t)len, seed);
}

uint64_t pstore__wal_seal(uint8_t *p, uint64_t seed, uint64_t seg_seq, uint64_t lsn,
                          uint64_t commit_lsn, uint32_t len, uint8_t type, uint8_t flags)
{
    pstore__put64(p + 16, lsn);
    pstore__put64(p + 24, commit_lsn);
    pstore__put32(p + 32, len);
    p[36] = type;
    p[37] = flags;
    p[38] = 0;
    p[39] = 0;
    size_t padded = (len + 7u) & ~7u;
    memset(p + WAL_REC_HDR + len, 0, padded - len);
    uint64_t sum = pstore__wal_sum(p, len, seed);
    pstore__put64(p, sum);
    pstore__put64(p + 8, pstore__wal_hsum(p, seg_seq));
    return sum;
}

size_t pstore__wal_start_payload(const pstore *s, uint64_t prev_sum, uint8_t *p)
{
    memset(p, 0, WAL_START_FIX);
    pstore__put64(p, prev_sum);
    pstore__put32(p + 8, PSTORE_FORMAT_WAL);
    pstore__put64(p + 16, s->opts.cluster_id);
    pstore__put64(p + 24, s->opts.node_id);
    pstore__put64(p + 32, s->hs.term);
    pstore__put64(p + 40, s->hs.vote);
    pstore__put64(p + 48, s->hs.commit);
    pstore__put64(p + 56, s->base_index);
    pstore__put64(p + 64, s->base_term);
    pstore__put64(p + 72, s->last_index);
    bool has = false;
    praft_snapshot_meta cur;
    pstore_snapshot_current(s, &has, &cur);
    if (has) {
        pstore__put64(p + 80, 1);
        pstore__put64(p + 88, cur.index);
        pstore__put64(p + 96, cur.term);
    }
    size_t n = WAL_START_FIX;
    if (s->has_config) {
        size_t len = pstore__rec_config(s->config_index, &s->config, p + n);
        pstore__put32(p + 104, (uint32_t)len);
        n += len;
    }
    return n;
}

/* ---- the index ---- */

wal_ent *pstore__wal_idx_get(wstore *ws, uint64_t index)
{
    return &ws->ents[ws->ents_off + (size_t)(index - ws->ents_first)];
}

/* Room for @more entries at the end. */
static int idx_reserve(wstore *ws, size_t more)
{
    if (ws->ents_off + ws->n_ents + more <= ws->cap_ents) {
        return 0;
    }
    if (ws->ents_off > 0) {
        memmove(ws->ents, ws->ents + ws->ents_off, ws->n_ents * sizeof(wal_ent));
        ws->ents_off = 0;
        if (ws->n_ents + more <= ws->cap_ents) {
            return 0;
        }
    }
    size_t cap = ws->cap_ents ? ws->cap_ents : 1024;
    while (cap < ws->n_ents + more) {
        cap *= 2;
    }
    wal_ent *e = realloc(ws->ents, cap * sizeof(wal_ent));
    if (e == NULL) {
        return PT_ENOMEM;
    }
    ws->ents = e;
    ws->cap_ents = cap;
    return 0;
}

int pstore__wal_idx_append(wstore *ws, const wal_ent *e, uint64_t index)
{
    if (ws->n_ents == 0) {
        ws->ents_first = index;
        ws->ents_off = 0;
    } else if (index != ws->ents_first + ws->n_ents) {
        return PT_ECORRUPT;
    }
    if (idx_reserve(ws, 1) != 0) {
        return PT_ENOMEM;
    }
    ws->ents[ws->ents_off + ws->n_ents++] = *e;
    return 0;
}

void pstore__wal_idx_truncate(wstore *ws, uint64_t from)
{
    if (from <= ws->ents_first) {
        ws->n_ents = 0;
        ws->ents_off = 0;
        ws->ents_first = from;
    } else if (from - ws->ents_first < ws->n_ents) {
        ws->n_ents = (size_t)(from - ws->ents_first);
    }
}

void pstore__wal_idx_drop_upto(wstore *ws, uint64_t upto)
{
    if (upto < ws->ents_first) {
        return;
    }
    if (upto - ws->ents_first >= ws->n_ents) {
        ws->n_ents = 0;
        ws->ents_off = 0;
        ws->ents_first = upto + 1;
        return;
    }
    size_t k = (size_t)(upto + 1 - ws->ents_first);
    ws->ents_off += k;
    ws->n_ents -= k;
    ws->ents_first = upto + 1;
}

int pstore__wal_buf(wstore *ws, size_t need)
{
    if (need <= ws->buf_cap) {
        return 0;
    }
    size_t cap = ws->buf_cap ? ws->buf_cap : 1 << 16;
    while (cap < need) {
        cap *= 2;
    }
    uint8_t *b = realloc(ws->buf, cap);
    if (b == NULL) {
        return PT_ENOMEM;
    }
    ws->buf = b;
    ws->buf_cap = cap;
    return 0;
}

/* ---- writes ---- */

static int write_fail(pstore *s, int err, const wal_seg *seg, uint64_t off, const char *what)
{
    char path[PATH_MAX];
    pstore__wal_seg_path(s->be, seg->seq, path, sizeof(path));
    if (err == ENOSPC || err == EDQUOT || err == EFBIG) {
        return pstore__fail(s, PT_ENOSPC,
                            "%s: offset %llu: %s: no space left (%s); the write was not done, "
                            "nothing written before is lost",
                            path, (unsigned long long)off, what, strerror(err));
    }
    return pstore__fail(s, err == ENOMEM ? PT_ENOMEM : PT_EIO, "%s: offset %llu: %s: %s", path,
                        (unsigned long long)off, what, strerror(err));
}

typedef struct enc {
    uint8_t *p;
    uint64_t seed, seg_seq, lsn, commit_lsn;
    size_t n_left; /* records still to encode, to flag the last */
} enc;

/* Seals the record whose payload of @len bytes is in place at e->p + WAL_REC_HDR. */
static void enc_rec(enc *e, uint32_t len, uint8_t type)
{
    e->n_left--;
    e->seed = pstore__wal_seal(e->p, e->seed, e->seg_seq, e->lsn++, e->commit_lsn, len, type,
                               e->n_left == 0 ? WAL_F_COMMIT : 0);
    e->p += rec_size(len);
}

static void enc_blob(enc *e, const uint8_t *data, size_t len, uint8_t type)
{
    memcpy(e->p + WAL_REC_HDR, data, len);
    enc_rec(e, (uint32_t)len, type);
}

static int wal_commit(pstore *s, const pstore_change *c)
{
    wstore *ws = s->be;
    if (s->opts.read_only) {
        return pstore__fail(s, PT_EINVAL, "%s: opened read-only", s->name);
    }
    size_t n_rec = 0, total = 0, ents_payload = 16;
    if (c->del_from != 0) {
        n_rec++;
        total += rec_size(8);
    }
    const size_t blob_len[4] = {c->base_len, c->snapshot_len, c->hard_state_len, c->config_len};
    const uint8_t *blob[4] = {c->base, c->snapshot, c->hard_state, c->config};
    for (int i = 0; i < 4; i++) {
        if (blob[i] != NULL) {
            n_rec++;
            total += rec_size(blob_len[i]);
        }
    }
    if (c->n_entries > 0) {
        for (size_t i = 0; i < c->n_entries; i++) {
            ents_payload += pstore__entry_size(&c->entries[i]);
        }
        if (ents_payload > (1u << 30)) {
            return pstore__fail(s, PT_EINVAL, "%s: a batch of %zu bytes is too large", s->name,
                                ents_payload);
        }
        n_rec++;
        total += rec_size(ents_payload);
    }
    if (n_rec == 0) {
        return 0;
    }
    if (idx_reserve(ws, c->n_entries) != 0) {
        return pstore__fail(s, PT_ENOMEM, "%s: out of memory", s->name);
    }
    wal_seg *cur = &ws->segs[ws->n_segs - 1];
    wal_seg next = {.fd = -1};
    bool rotate = cur->end + total > cur->size;
    uint8_t start[WAL_START_FIX + PSTORE_REC_MAX];
    size_t start_len = 0;
    if (rotate) {
        start_len = pstore__wal_start_payload(s, ws->chain, start);
        int rv = pstore__wal_take_next(s, cur->seq + 1, WAL_SEG_HDR + rec_size(start_len) + total,
                                       &next);
        if (rv != 0) {
            return rv;
        }
        total += rec_size(start_len);
        n_rec++;
    }
    wal_seg *dst = rotate ? &next : cur;
    if (ws->n_segs == ws->cap_segs) {
        size_t cap = ws->cap_segs ? ws->cap_segs * 2 : 8;
        wal_seg *segs = realloc(ws->segs, cap * sizeof(*segs));
        if (segs == NULL) {
            if (rotate) {
                pstore__wal_give_back(ws, &next);
            }
            return pstore__fail(s, PT_ENOMEM, "%s: out of memory", s->name);
        }
        ws->segs = segs;
        ws->cap_segs = cap;
        cur = &ws->segs[ws->n_segs - 1];
        dst = rotate ? &next : cur;
    }
    if (pstore__wal_buf(ws, total) != 0) {
        if (rotate) {
            pstore__wal_give_back(ws, &next);
        }
        return pstore__fail(s, PT_ENOMEM, "%s: out of memory", s->name);
    }
    uint64_t at = dst->end;
    enc e = {.p = ws->buf,
             .seed = rotate ? next.hsum : ws->chain,
             .seg_seq = dst->seq,
             .lsn = ws->lsn,
             .commit_lsn = ws->lsn,
             .n_left = n_rec};
    if (rotate) {
        enc_blob(&e, start, start_len, WAL_SEG_START);
    }
    /* The order replay applies them in: truncate, base, snapshot, entries, hard state,
     * configuration (store.c builds the change in that sense). */
    if (c->del_from != 0) {
        uint8_t v[8];
        pstore__put64(v, c->del_from);
        enc_blob(&e, v, 8, WAL_TRUNCATE);
    }
    if (c->base != NULL) {
        enc_blob(&e, c->base, c->base_len, WAL_BASE);
    }
    if (c->snapshot != NULL) {
        enc_blob(&e, c->snapshot, c->snapshot_len, WAL_SNAPSHOT);
    }
    uint64_t ents_at = 0;
    if (c->n_entries > 0) {
        uint8_t *p = e.p + WAL_REC_HDR;
        ents_at = at + (uint64_t)(e.p - ws->buf) + WAL_REC_HDR + 16;
        pstore__put64(p, c->entries[0].index);
        pstore__put32(p + 8, (uint32_t)c->n_entries);
        pstore__put32(p + 12, 0);
        size_t o = 16;
        for (size_t i = 0; i < c->n_entries; i++) {
            pstore__entry_encode(&c->entries[i], p + o);
            o += pstore__entry_size(&c->entries[i]);
        }
        enc_rec(&e, (uint32_t)ents_payload, WAL_ENTRIES);
    }
    if (c->hard_state != NULL) {
        enc_blob(&e, c->hard_state, c->hard_state_len, WAL_HARD_STATE);
    }
    if (c->config != NULL) {
        enc_blob(&e, c->config, c->config_len, WAL_CONFIG);
    }
    int err = pstore__pwrite_all(dst->fd, ws->buf, total, at);
    const char *what = "append";
    if (err == 0 && s->opts.sync != PSTORE_SYNC_NONE && fdatasync(dst->fd) != 0) {
        err = errno;
        what = "fdatasync";
    }
    if (err != 0) {
        /* Nothing of it counts: put zeros back over what may have been written, so that the
         * segment reads as it did (the chain would make the bytes harmless anyway). */
        memset(ws->buf, 0, total);
        if (pstore__pwrite_all(dst->fd, ws->buf, total, at) == 0 &&
            s->opts.sync != PSTORE_SYNC_NONE) {
            (void)fdatasync(dst->fd);
        }
        int rv = write_fail(s, err, dst, at, what);
        if (rotate) {
            pstore__wal_give_back(ws, &next);
        }
        return rv;
    }
    /* Durable: record it in memory (nothing below can fail). */
    if (rotate) {
        ws->segs[ws->n_segs++] = next;
        cur = &ws->segs[ws->n_segs - 1];
        pstore__wal_want_next(s, next.seq + 1);
    }
    cur->end = at + total;
    ws->lsn = e.lsn;
    ws->chain = e.seed;
    if (c->del_from != 0) {
        pstore__wal_idx_truncate(ws, c->del_from);
    }
    if (c->base != NULL) {
        uint64_t bi = 0, bt = 0;
        (void)pstore__rec_parse_pair(c->base, c->base_len, &bi, &bt);
        pstore__wal_idx_drop_upto(ws, bi);
    }
    if (c->n_entries > 0) {
        pstore__wal_idx_truncate(ws, c->entries[0].index);
        for (size_t i = 0; i < c->n_entries; i++) {
            size_t len = pstore__entry_size(&c->entries[i]);
            wal_ent we = {.term = c->entries[i].term,
                          .seq = cur->seq,
                          .off = (uint32_t)ents_at,
                          .len = (uint32_t)len};
            (void)pstore__wal_idx_append(ws, &we, c->entries[i].index);
            ents_at += len;
        }
    }
    if (c->del_upto != 0 || c->del_from == 1) {
        (void)pstore__wal_drop_old(s);
    }
    return 0;
}

int pstore__wal_drop_old(pstore *s)
{
    wstore *ws = s->be;
    uint64_t keep = ws->n_ents > 0 ? ws->ents[ws->ents_off].seq : ws->segs[ws->n_segs - 1].seq;
    size_t k = 0;
    while (k + 1 < ws->n_segs && ws->segs[k].seq < keep) {
        k++;
    }
    if (k == 0) {
        return 0;
    }
    /* Oldest first: a crash in between leaves a shorter prefix gone, never a hole. */
    size_t done = 0;
    for (; done < k; done++) {
        char path[PATH_MAX];
        pstore__wal_seg_path(ws, ws->segs[done].seq, path, sizeof(path));
        if (unlink(path) != 0 && errno != ENOENT) {
            break; /* tried again at the next purge or open */
        }
        close(ws->segs[done].fd);
    }
    memmove(ws->segs, ws->segs + done, (ws->n_segs - done) * sizeof(*ws->segs));
    ws->n_segs -= done;
    if (done > 0 && s->opts.sync != PSTORE_SYNC_NONE) {
        int dfd = open(ws->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
    return 0;
}

/* ---- reads ---- */

static wal_seg *seg_of(wstore *ws, uint64_t seq)
{
    /* Segments are consecutive: seq - first is the position. */
    uint64_t k = seq - ws->segs[0].seq;
    return k < ws->n_segs ? &ws->segs[k] : NULL;
}

static int entry_corrupt(pstore *s, uint64_t seq, uint64_t off, uint64_t index, const char *why)
{
    char path[PATH_MAX];
    pstore__wal_seg_path(s->be, seq, path, sizeof(path));
    return pstore__fail(s, PT_ECORRUPT, "%s: offset %llu: entry %llu: %s", path,
                        (unsigned long long)off, (unsigned long long)index, why);
}

static int wal_term(pstore *s, uint64_t index, uint64_t *term)
{
    wstore *ws = s->be;
    if (index < ws->ents_first || index - ws->ents_first >= ws->n_ents) {
        return pstore__fail(s, PT_ECORRUPT, "%s: entry %llu: missing from the index", ws->dir,
                            (unsigned long long)index);
    }
    *term = pstore__wal_idx_get(ws, index)->term;
    return 0;
}

static int wal_read(pstore *s, uint64_t lo, uint64_t hi, size_t max_bytes, praft_entry *out,
                    size_t *n)
{
    wstore *ws = s->be;
    size_t got = 0, bytes = 0;
    int rv = 0;
    uint64_t i = lo;
    while (i < hi) {
        /* One pread for a run of entries of one segment, up to READ_SPAN bytes. */
        const wal_ent *e0 = pstore__wal_idx_get(ws, i);
        uint64_t span_end = (uint64_t)e0->off + e0->len, j = i + 1;
        size_t budget = bytes + (e0->len - PSTORE_ENTRY_HDR);
        while (j < hi) {
            const wal_ent *ej = pstore__wal_idx_get(ws, j);
            size_t dlen = ej->len - PSTORE_ENTRY_HDR;
            if (ej->seq != e0->seq || ej->off < span_end ||
                (uint64_t)ej->off + ej->len - e0->off > READ_SPAN || budget + dlen > max_bytes) {
                break;
            }
            budget += dlen;
            span_end = (uint64_t)ej->off + ej->len;
            j++;
        }
        wal_seg *seg = seg_of(ws, e0->seq);
        size_t span = (size_t)(span_end - e0->off), r = 0;
        if (seg == NULL) {
            rv = entry_corrupt(s, e0->seq, e0->off, i, "its segment is gone");
            goto fail;
        }
        if (pstore__wal_buf(ws, span) != 0) {
            rv = pstore__fail(s, PT_ENOMEM, "%s: out of memory", s->name);
            goto fail;
        }
        char path[PATH_MAX];
        pstore__wal_seg_path(ws, seg->seq, path, sizeof(path));
        rv = pstore__pread_some(s, seg->fd, path, e0->off, ws->buf, span, &r);
        if (rv != 0) {
            goto fail;
        }
        for (; i < j; i++) {
            const wal_ent *e = pstore__wal_idx_get(ws, i);
            size_t at = e->off - e0->off;
            praft_entry v;
            const char *why = "entry cut short";
            if (at + e->len > r || pstore__entry_decode(i, ws->buf + at, e->len, &v, &why) != 0) {
                rv = entry_corrupt(s, seg->seq, e->off, i, why);
                goto fail;
            }
            if (got > 0 && bytes + v.len > max_bytes) {
                *n = got;
                return 0;
            }
            out[got] = v;
            out[got].data = NULL;
            if (v.len > 0) {
                out[got].data = malloc(v.len);
                if (out[got].data == NULL) {
                    rv = pstore__fail(s, PT_ENOMEM, "%s: out of memory", s->name);
                    goto fail;
                }
                memcpy(out[got].data, v.data, v.len);
            }
            got++;
            bytes += v.len;
        }
        if (bytes >= max_bytes) {
            break;
        }
    }
    *n = got;
    return 0;
fail:
    pstore_entries_free(out, got);
    *n = 0;
    return rv;
}

/* Verifies every record of every segment up to its durable end (sums, chain, links). */
static int check_records(pstore *s)
{
    wstore *ws = s->be;
    uint64_t chain = 0, lsn = 0;
    for (size_t k = 0; k < ws->n_segs; k++) {
        wal_seg *seg = &ws->segs[k];
        char path[PATH_MAX];
        pstore__wal_seg_path(ws, seg->seq, path, sizeof(path));
        uint64_t off = WAL_SEG_HDR, seed = seg->hsum;
        while (off < seg->end) {
            uint8_t h[WAL_REC_HDR];
            size_t r = 0;
            int rv = pstore__pread_some(s, seg->fd, path, off, h, sizeof(h), &r);
            if (rv != 0) {
                return rv;
            }
            uint32_t len = r == sizeof(h) ? pstore__get32(h + 32) : 0;
            if (r != sizeof(h) || pstore__get64(h + 8) != pstore__wal_hsum(h, seg->seq) ||
                off + rec_size(len) > seg->end || (lsn != 0 && pstore__get64(h + 16) != lsn)) {
                return pstore__fail(s, PT_ECORRUPT, "%s: offset %llu: bad record header", path,
                                    (unsigned long long)off);
            }
            if (pstore__wal_buf(ws, WAL_REC_HDR + (size_t)len) != 0) {
                return pstore__fail(s, PT_ENOMEM, "%s: out of memory", s->name);
            }
            rv = pstore__pread_some(s, seg->fd, path, off, ws->buf, WAL_REC_HDR + len, &r);
            if (rv != 0) {
                return rv;
            }
            if (r != WAL_REC_HDR + len || pstore__wal_sum(ws->buf, len, seed) != pstore__get64(h)) {
                return pstore__fail(s, PT_ECORRUPT, "%s: offset %llu: record fails its checksum",
                                    path, (unsigned long long)off);
            }
            if (off == WAL_SEG_HDR && k > 0 &&
                (h[36] != WAL_SEG_START || len < WAL_START_FIX ||
                 pstore__get64(ws->buf + WAL_REC_HDR) != chain)) {
                return pstore__fail(s, PT_ECORRUPT,
                                    "%s: offset %llu: does not follow the previous segment", path,
                                    (unsigned long long)off);
            }
            seed = chain = pstore__get64(h);
            lsn = pstore__get64(h + 16) + 1;
            off += rec_size(len);
        }
    }
    return 0;
}

static int wal_check(pstore *s)
{
    int rv = check_records(s);
    if (rv != 0) {
        return rv;
    }
    praft_entry *out = calloc(256, sizeof(*out));
    if (out == NULL) {
        return PT_ENOMEM;
    }
    uint64_t prev = s->base_term;
    for (uint64_t at = s->base_index + 1; at <= s->last_index && rv == 0;) {
        uint64_t hi = s->last_index + 1 - at > 256 ? at + 256 : s->last_index + 1;
        size_t n = 0;
        rv = wal_read(s, at, hi, SIZE_MAX, out, &n);
        for (size_t i = 0; rv == 0 && i < n; i++) {
            if (out[i].term < prev) {
                uint64_t index = at + i;
                rv = pstore__fail(s, PT_ECORRUPT,
                                  "%s: entry %llu: term lower than the previous entry's",
                                  ((wstore *)s->be)->dir, (unsigned long long)index);
            }
            prev = out[i].term;
        }
        pstore_entries_free(out, n);
        at += n;
    }
    free(out);
    return rv;
}

static void wal_close(pstore *s)
{
    wstore *ws = s->be;
    if (ws == NULL) {
        return;
    }
    if (ws->thread_on) {
        pthread_mutex_lock(&ws->mu);
        ws->stop = true;
        pthread_cond_broadcast(&ws->cv);
        pthread_mutex_unlock(&ws->mu);
        pthread_join(ws->thread, NULL);
    }
    pthread_mutex_destroy(&ws->mu);
    pthread_cond_destroy(&ws->cv);
    if (ws->ready_fd >= 0) {
        close(ws->ready_fd);
    }
    for (size_t i = 0; i < ws->n_segs; i++) {
        if (ws->segs[i].fd >= 0) {
            close(ws->segs[i].fd);
        }
    }
    pstore__files_close(&ws->files);
    free(ws->segs);
    free(ws->ents);
    free(ws->buf);
    free(ws);
    s->be = NULL;
}

const pstore_ops pstore__wal_ops = {
    .close = wal_close,
    .commit = wal_commit,
    .read = wal_read,
    .term = wal_term,
    .check = wal_check,
    .tmp_create = pstore__file_tmp_create,
    .tmp_append = pstore__file_tmp_append,
    .tmp_sync = pstore__file_tmp_sync,
    .tmp_read = pstore__file_tmp_read,
    .tmp_publish = pstore__file_tmp_publish,
    .tmp_drop = pstore__file_tmp_drop,
    .blob_read = pstore__file_blob_read,
    .blob_remove = pstore__file_blob_remove,
};
