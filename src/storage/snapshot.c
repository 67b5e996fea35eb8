/*
 * Snapshots, for both backends: the streaming writer (zstd), the chunked receiver of
 * InstallSnapshot (§7), verification, the streaming payload reader, and the list of kept
 * snapshots. The backends only store bytes (pstore_ops tmp_* and blob_*).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <zstd.h>

#include "storage/codec.h"
#include "storage/internal.h"

#define IO_CHUNK ((size_t)64 * 1024)

void pstore__snap_filename(uint64_t index, uint64_t term, char *buf, size_t cap)
{
    snprintf(buf, cap, "snapshots/snap-%020llu-%020llu.psnap", (unsigned long long)index,
             (unsigned long long)term);
}

int pstore__snap_find(const pstore *s, uint64_t index, uint64_t term)
{
    for (size_t i = 0; i < s->n_snaps; i++) {
        if (s->snaps[i].index == index && s->snaps[i].term == term) {
            return (int)i;
        }
    }
    return -1;
}

void pstore__snap_add(pstore *s, const pstore_snap_info *info)
{
    int at = pstore__snap_find(s, info->index, info->term);
    if (at >= 0) {
        bool cur = s->snaps[at].current;
        s->snaps[at] = *info;
        s->snaps[at].current = cur;
        return;
    }
    if (s->n_snaps == PSTORE_MAX_SNAPS) {
        /* Full (only possible with many received-but-not-installed snapshots): the oldest
         * non-current one goes. */
        size_t victim = s->n_snaps - 1;
        while (victim > 0 && s->snaps[victim].current) {
            victim--;
        }
        s->ops->blob_remove(s, s->snaps[victim].index, s->snaps[victim].term);
        memmove(&s->snaps[victim], &s->snaps[victim + 1],
                (s->n_snaps - victim - 1) * sizeof(s->snaps[0]));
        s->n_snaps--;
    }
    size_t pos = 0;
    while (pos < s->n_snaps &&
           (s->snaps[pos].index > info->index ||
            (s->snaps[pos].index == info->index && s->snaps[pos].term > info->term))) {
        pos++;
    }
    memmove(&s->snaps[pos + 1], &s->snaps[pos], (s->n_snaps - pos) * sizeof(s->snaps[0]));
    s->snaps[pos] = *info;
    s->snaps[pos].current = false;
    s->n_snaps++;
}

void pstore__snap_prune(pstore *s, bool keep_newer)
{
    uint64_t cur_index = 0;
    bool found = false;
    for (size_t i = 0; i < s->n_snaps; i++) {
        if (s->snaps[i].current) {
            cur_index = s->snaps[i].index;
            found = true;
        }
    }
    uint32_t kept = 0;
    size_t w = 0;
    for (size_t i = 0; i < s->n_snaps; i++) {
        pstore_snap_info *in = &s->snaps[i];
        bool keep;
        if (in->current) {
            keep = true;
            kept++;
        } else if (!found || in->index > cur_index) {
            keep = keep_newer;
        } else {
            keep = kept < s->opts.keep_snapshots;
            kept += keep ? 1 : 0;
        }
        if (keep) {
            s->snaps[w++] = *in;
        } else {
            s->ops->blob_remove(s, in->index, in->term);
        }
    }
    s->n_snaps = w;
}

void pstore_snap_list(const pstore *s, pstore_snap_info *out, size_t cap, size_t *n)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n_snaps && k < cap; i++) {
        out[k++] = s->snaps[i];
    }
    *n = k;
}

int pstore__snap_set_current(pstore *s, size_t pos)
{
    uint8_t rec[PSTORE_REC_MAX];
    pstore_change c;
    memset(&c, 0, sizeof(c));
    c.snapshot = rec;
    c.snapshot_len = pstore__rec_pair(s->snaps[pos].index, s->snaps[pos].term, rec);
    int rv = s->ops->commit(s, &c);
    if (rv != 0) {
        return rv;
    }
    for (size_t i = 0; i < s->n_snaps; i++) {
        s->snaps[i].current = i == pos;
    }
    s->has_current = true;
    return 0;
}

/* ---- verification, through either a temporary slot or a complete blob ---- */

typedef struct source {
    int slot; /* >= 0: a temporary slot; < 0: the blob (index, term) */
    uint64_t index, term;
} source;

static int src_read(pstore *s, const source *src, uint64_t off, void *buf, size_t cap, size_t *n)
{
    if (src->slot >= 0) {
        return s->ops->tmp_read(s, src->slot, off, buf, cap, n);
    }
    return s->ops->blob_read(s, src->index, src->term, off, buf, cap, n);
}

/* Reads exactly @len bytes at @off. */
static int src_read_full(pstore *s, const source *src, uint64_t off, void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        size_t n = 0;
        int rv = src_read(s, src, off + done, (uint8_t *)buf + done, len - done, &n);
        if (rv != 0) {
            return rv;
        }
        if (n == 0) {
            return PT_ECORRUPT;
        }
        done += n;
    }
    return 0;
}

/* Parses the trailer and header of a snapshot of @size bytes. */
static int read_hdr(pstore *s, const source *src, uint64_t size, const char *what,
                    pstore_snap_hdr *h)
{
    uint8_t trailer[PSTORE_SNAP_TRAILER];
    const char *why = "file too short for a snapshot";
    int rv = PT_ECORRUPT;
    uint8_t *hdr = NULL;
    if (size < PSTORE_SNAP_TRAILER + 37) {
        goto corrupt;
    }
    rv = src_read_full(s, src, size - PSTORE_SNAP_TRAILER, trailer, sizeof(trailer));
    if (rv != 0) {
        why = "cannot read the trailer";
        goto corrupt;
    }
    rv = pstore__snap_trailer_decode(trailer, size, h, &why);
    if (rv != 0) {
        goto corrupt;
    }
    hdr = malloc(h->header_len);
    if (hdr == NULL) {
        return PT_ENOMEM;
    }
    rv = src_read_full(s, src, 0, hdr, h->header_len);
    if (rv != 0) {
        why = "cannot read the header";
        goto corrupt;
    }
    rv = pstore__snap_hdr_decode(hdr, trailer, h, &why);
    if (rv != 0) {
        goto corrupt;
    }
    free(hdr);
    return 0;
corrupt:
    free(hdr);
    if (rv != PT_ECORRUPT && rv != PT_EVERSION) {
        why = pt_strerror(rv);
    }
    /* rv is non-zero on every path here; returning it directly makes plain that no caller sees
     * success with *h unfilled. */
    pstore__fail(s, rv, "%s: %s: %s", s->name, what, why);
    return rv;
}

/* Verifies a whole snapshot: header, trailer, payload checksum; *file_sum gets the XXH3-64 of
 * all its bytes. */
static int verify(pstore *s, const source *src, uint64_t size, const char *what, pstore_snap_hdr *h,
                  uint64_t *file_sum)
{
    int rv = read_hdr(s, src, size, what, h);
    if (rv != 0) {
        return rv;
    }
    uint8_t *buf = malloc(IO_CHUNK);
    XXH3_state_t *fs = XXH3_createState();
    XXH3_state_t *ps = XXH3_createState();
    if (buf == NULL || fs == NULL || ps == NULL) {
        rv = PT_ENOMEM;
        goto out;
    }
    XXH3_64bits_reset(fs);
    XXH3_64bits_reset(ps);
    uint64_t pay_lo = h->header_len, pay_hi = h->header_len + h->payload_size;
    for (uint64_t off = 0; off < size;) {
        size_t want = size - off < IO_CHUNK ? (size_t)(size - off) : IO_CHUNK;
        rv = src_read_full(s, src, off, buf, want);
        if (rv != 0) {
            rv = pstore__fail(s, rv == PT_ECORRUPT ? PT_ECORRUPT : rv,
                              "%s: %s: cannot read at offset %llu", s->name, what,
                              (unsigned long long)off);
            goto out;
        }
        XXH3_64bits_update(fs, buf, want);
        uint64_t lo = off > pay_lo ? off : pay_lo;
        uint64_t hi = off + want < pay_hi ? off + want : pay_hi;
        if (lo < hi) {
            XXH3_64bits_update(ps, buf + (lo - off), (size_t)(hi - lo));
        }
        off += want;
    }
    if ((uint64_t)XXH3_64bits_digest(ps) != h->payload_sum) {
        rv = pstore__fail(s, PT_ECORRUPT, "%s: %s: payload checksum mismatch", s->name, what);
        goto out;
    }
    *file_sum = (uint64_t)XXH3_64bits_digest(fs);
out:
    XXH3_freeState(ps);
    XXH3_freeState(fs);
    free(buf);
    return rv;
}

int pstore__snap_verify(pstore *s, uint64_t index, uint64_t term, uint64_t size,
                        pstore_snap_info *info, praft_config *config)
{
    char what[96];
    pstore__snap_filename(index, term, what, sizeof(what));
    source src = {.slot = -1, .index = index, .term = term};
    pstore_snap_hdr h;
    uint64_t sum = 0;
    int rv = verify(s, &src, size, what, &h, &sum);
    if (rv != 0) {
        return rv;
    }
    if (h.index != index || h.term != term) {
        return pstore__fail(s, PT_ECORRUPT,
                            "%s: %s: header says index %llu term %llu, not what its name says",
                            s->name, what, (unsigned long long)h.index, (unsigned long long)h.term);
    }
    memset(info, 0, sizeof(*info));
    info->index = index;
    info->term = term;
    info->size = size;
    info->checksum = sum;
    info->raw_size = h.raw_size;
    *config = h.config;
    return 0;
}

int pstore__snap_config(pstore *s, uint64_t index, uint64_t term, praft_config *config)
{
    int pos = pstore__snap_find(s, index, term);
    if (pos < 0) {
        return PT_ENOTFOUND;
    }
    char what[96];
    pstore__snap_filename(index, term, what, sizeof(what));
    source src = {.slot = -1, .index = index, .term = term};
    pstore_snap_hdr h;
    int rv = read_hdr(s, &src, s->snaps[pos].size, what, &h);
    if (rv == 0) {
        *config = h.config;
    }
    return rv;
}

/* ---- the writer ---- */

struct pstore_snap_writer {
    pstore *s;
    pstore_snap_hdr h;
    uint8_t hdr[PSTORE_SNAP_HDR_MAX];
    size_t hdr_len;
    ZSTD_CCtx *cctx;
    uint8_t *out;
    size_t out_cap;
    XXH3_state_t *file_sum;
    XXH3_state_t *payload_sum;
    uint64_t size;
    int failed;
};

static int emit(pstore_snap_writer *w, const void *data, size_t len, bool payload)
{
    int rv = w->s->ops->tmp_append(w->s, PSTORE_SLOT_LOCAL, data, len);
    if (rv != 0) {
        w->failed = rv;
        return rv;
    }
    XXH3_64bits_update(w->file_sum, data, len);
    if (payload) {
        XXH3_64bits_update(w->payload_sum, data, len);
        w->h.payload_size += len;
    }
    w->size += len;
    return 0;
}

static void writer_free(pstore_snap_writer *w)
{
    ZSTD_freeCCtx(w->cctx);
    free(w->out);
    XXH3_freeState(w->file_sum);
    XXH3_freeState(w->payload_sum);
    w->s->writer = NULL;
    free(w);
}

int pstore_snap_begin(pstore *s, uint64_t index, uint64_t term, const praft_config *config,
                      pstore_snap_writer **out)
{
    s->err[0] = '\0';
    *out = NULL;
    if (index == 0 || config == NULL || config->n_members > PRAFT_MAX_MEMBERS) {
        return pstore__fail(s, PT_EINVAL, "%s: invalid snapshot", s->name);
    }
    if (s->writer != NULL) {
        return pstore__fail(s, PT_EBUSY, "%s: a snapshot is already being written", s->name);
    }
    bool has = false;
    praft_snapshot_meta cur;
    pstore_snapshot_current(s, &has, &cur);
    if (has && index < cur.index) {
        return pstore__fail(s, PT_EINVAL, "%s: snapshot %llu is older than the current one %llu",
                            s->name, (unsigned long long)index, (unsigned long long)cur.index);
    }
    int rv = PT_ENOMEM;
    pstore_snap_writer *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return rv;
    }
    w->s = s;
    s->writer = w;
    w->h.compression = s->opts.zstd_level > 0 ? PSTORE_COMP_ZSTD : PSTORE_COMP_NONE;
    w->h.index = index;
    w->h.term = term;
    w->h.config = *config;
    w->hdr_len = pstore__snap_hdr_encode(&w->h, w->hdr);
    w->file_sum = XXH3_createState();
    w->payload_sum = XXH3_createState();
    if (w->file_sum == NULL || w->payload_sum == NULL) {
        goto fail;
    }
    XXH3_64bits_reset(w->file_sum);
    XXH3_64bits_reset(w->payload_sum);
    if (w->h.compression == PSTORE_COMP_ZSTD) {
        w->cctx = ZSTD_createCCtx();
        w->out_cap = ZSTD_CStreamOutSize();
        w->out = malloc(w->out_cap);
        if (w->cctx == NULL || w->out == NULL ||
            ZSTD_isError(
                ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, s->opts.zstd_level))) {
            goto fail;
        }
    }
    rv = s->ops->tmp_create(s, PSTORE_SLOT_LOCAL, index, term);
    if (rv != 0) {
        goto fail;
    }
    rv = emit(w, w->hdr, w->hdr_len, false);
    if (rv != 0) {
        s->ops->tmp_drop(s, PSTORE_SLOT_LOCAL);
        goto fail;
    }
    *out = w;
    return 0;
fail:
    writer_free(w);
    return rv;
}

static int compress(pstore_snap_writer *w, const void *data, size_t len, ZSTD_EndDirective mode)
{
    ZSTD_inBuffer in = {data, len, 0};
    for (;;) {
        ZSTD_outBuffer o = {w->out, w->out_cap, 0};
        size_t left = ZSTD_compressStream2(w->cctx, &o, &in, mode);
        if (ZSTD_isError(left)) {
            w->failed = PT_EINTERNAL;
            return pstore__fail(w->s, PT_EINTERNAL, "%s: zstd: %s", w->s->name,
                                ZSTD_getErrorName(left));
        }
        if (o.pos > 0) {
            int rv = emit(w, w->out, o.pos, true);
            if (rv != 0) {
                return rv;
            }
        }
        bool finished = mode == ZSTD_e_end ? left == 0 : in.pos == in.size;
        if (finished) {
            return 0;
        }
    }
}

int pstore_snap_write(pstore_snap_writer *w, const void *data, size_t len)
{
    if (w->failed) {
        return w->failed;
    }
    if (len == 0) {
        return 0;
    }
    w->h.raw_size += len;
    if (w->h.compression == PSTORE_COMP_NONE) {
        return emit(w, data, len, true);
    }
    return compress(w, data, len, ZSTD_e_continue);
}

int pstore_snap_finish(pstore_snap_writer *w, praft_snapshot_meta *meta)
{
    pstore *s = w->s;
    uint8_t trailer[PSTORE_SNAP_TRAILER];
    int rv = w->failed;
    if (rv != 0) {
        goto fail;
    }
    if (w->h.compression == PSTORE_COMP_ZSTD) {
        rv = compress(w, NULL, 0, ZSTD_e_end);
        if (rv != 0) {
            goto fail;
        }
    }
    w->h.payload_sum = (uint64_t)XXH3_64bits_digest(w->payload_sum);
    pstore__snap_trailer_encode(&w->h, w->hdr, w->hdr_len, trailer);
    rv = emit(w, trailer, sizeof(trailer), false);
    if (rv == 0) {
        rv = s->ops->tmp_sync(s, PSTORE_SLOT_LOCAL);
    }
    if (rv == 0) {
        rv = s->ops->tmp_publish(s, PSTORE_SLOT_LOCAL);
    }
    if (rv != 0) {
        goto fail;
    }
    pstore_snap_info info;
    memset(&info, 0, sizeof(info));
    info.index = w->h.index;
    info.term = w->h.term;
    info.size = w->size;
    info.checksum = (uint64_t)XXH3_64bits_digest(w->file_sum);
    info.raw_size = w->h.raw_size;
    pstore__snap_add(s, &info);
    int pos = pstore__snap_find(s, info.index, info.term);
    rv = pstore__snap_set_current(s, (size_t)pos);
    if (rv != 0) {
        /* Not recorded: the file is dropped again so that the store is as before. */
        if (!s->snaps[pos].current) {
            s->ops->blob_remove(s, info.index, info.term);
            memmove(&s->snaps[pos], &s->snaps[pos + 1],
                    (s->n_snaps - (size_t)pos - 1) * sizeof(s->snaps[0]));
            s->n_snaps--;
        }
        writer_free(w);
        return rv;
    }
    s->current_config = w->h.config;
    pstore__snap_prune(s, true);
    if (meta != NULL) {
        memset(meta, 0, sizeof(*meta));
        meta->index = info.index;
        meta->term = info.term;
        meta->size = info.size;
        meta->checksum = info.checksum;
        meta->config = w->h.config;
    }
    writer_free(w);
    return 0;
fail:
    s->ops->tmp_drop(s, PSTORE_SLOT_LOCAL);
    writer_free(w);
    return rv;
}

void pstore_snap_abort(pstore_snap_writer *w)
{
    if (w == NULL) {
        return;
    }
    w->s->ops->tmp_drop(w->s, PSTORE_SLOT_LOCAL);
    writer_free(w);
}

int pstore_snap_read(pstore *s, const praft_snapshot_meta *meta, uint64_t offset, void *buf,
                     size_t cap, size_t *len)
{
    *len = 0;
    int pos = pstore__snap_find(s, meta->index, meta->term);
    if (pos < 0) {
        return PT_ENOTFOUND;
    }
    if (offset > s->snaps[pos].size) {
        return PT_EINVAL;
    }
    uint64_t left = s->snaps[pos].size - offset;
    if (cap > left) {
        cap = (size_t)left;
    }
    if (cap == 0) {
        return 0;
    }
    return s->ops->blob_read(s, meta->index, meta->term, offset, buf, cap, len);
}

/* ---- the receiver ---- */

static bool same_transfer(const praft_snapshot_meta *a, const praft_snapshot_meta *b)
{
    return a->index == b->index && a->term == b->term && a->size == b->size &&
           a->checksum == b->checksum;
}

int pstore_recv_chunk(pstore *s, const praft_snapshot_meta *meta, uint64_t offset, const void *data,
                      size_t len, uint64_t *next)
{
    s->err[0] = '\0';
    uint64_t dummy;
    if (next == NULL) {
        next = &dummy;
    }
    bool same = s->recv_active && same_transfer(&s->recv_meta, meta);
    *next = same ? s->recv_bytes : 0;
    if (meta->size == 0 || meta->index == 0 || offset > meta->size || len > meta->size - offset ||
        (len > 0 && data == NULL)) {
        return pstore__fail(s, PT_EINVAL, "%s: snapshot chunk outside the snapshot", s->name);
    }
    if (offset != 0 && (!same || offset != s->recv_bytes)) {
        return pstore__fail(s, PT_ESTALE, "%s: snapshot %llu chunk at %llu, expected offset %llu",
                            s->name, (unsigned long long)meta->index, (unsigned long long)offset,
                            (unsigned long long)*next);
    }
    int rv;
    if (offset == 0) {
        pstore_recv_abort(s);
        rv = s->ops->tmp_create(s, PSTORE_SLOT_RECV, meta->index, meta->term);
        if (rv != 0) {
            *next = 0;
            return rv;
        }
        s->recv_active = true;
        s->recv_meta = *meta;
        s->recv_bytes = 0;
    }
    rv = s->ops->tmp_append(s, PSTORE_SLOT_RECV, data, len);
    if (rv == 0) {
        rv = s->ops->tmp_sync(s, PSTORE_SLOT_RECV);
    }
    if (rv != 0) {
        /* The file may hold part of the chunk: the transfer restarts from 0. */
        pstore_recv_abort(s);
        *next = 0;
        return rv;
    }
    s->recv_bytes += len;
    *next = s->recv_bytes;
    return 0;
}

int pstore_recv_finish(pstore *s, const praft_snapshot_meta *meta)
{
    s->err[0] = '\0';
    if (!s->recv_active || !same_transfer(&s->recv_meta, meta)) {
        return pstore__fail(s, PT_ENOTFOUND, "%s: no transfer of snapshot %llu in progress",
                            s->name, (unsigned long long)meta->index);
    }
    if (s->recv_bytes != meta->size) {
        return pstore__fail(s, PT_EUNAVAILABLE, "%s: snapshot %llu: %llu of %llu bytes received",
                            s->name, (unsigned long long)meta->index,
                            (unsigned long long)s->recv_bytes, (unsigned long long)meta->size);
    }
    char what[128];
    snprintf(what, sizeof(what), "received snapshot %llu (term %llu)",
             (unsigned long long)meta->index, (unsigned long long)meta->term);
    source src = {.slot = PSTORE_SLOT_RECV};
    pstore_snap_hdr h;
    uint64_t sum = 0;
    int rv = verify(s, &src, meta->size, what, &h, &sum);
    if (rv == 0 && sum != meta->checksum) {
        rv = pstore__fail(s, PT_ECORRUPT, "%s: %s: checksum of the received bytes mismatch",
                          s->name, what);
    }
    if (rv == 0 && (h.index != meta->index || h.term != meta->term)) {
        rv = pstore__fail(s, PT_ECORRUPT, "%s: %s: its header says index %llu term %llu", s->name,
                          what, (unsigned long long)h.index, (unsigned long long)h.term);
    }
    if (rv == 0) {
        rv = s->ops->tmp_publish(s, PSTORE_SLOT_RECV);
    }
    if (rv != 0) {
        pstore_recv_abort(s);
        return rv;
    }
    s->recv_active = false;
    pstore_snap_info info;
    memset(&info, 0, sizeof(info));
    info.index = meta->index;
    info.term = meta->term;
    info.size = meta->size;
    info.checksum = sum;
    info.raw_size = h.raw_size;
    pstore__snap_add(s, &info);
    return 0;
}

void pstore_recv_abort(pstore *s)
{
    if (s->recv_active) {
        s->ops->tmp_drop(s, PSTORE_SLOT_RECV);
    }
    s->recv_active = false;
    s->recv_bytes = 0;
}

/* ---- the payload reader ---- */

struct pstore_snap_reader {
    pstore *s;
    source src;
    pstore_snap_hdr h;
    char what[96];
    uint64_t pos; /* payload bytes read from the blob */
    uint64_t produced;
    XXH3_state_t *sum;
    ZSTD_DCtx *d;
    uint8_t *in;
    ZSTD_inBuffer ib;
    bool frame_done;
    bool done;
};

int pstore_snap_open(pstore *s, const praft_snapshot_meta *meta, praft_config *config_out,
                     pstore_snap_reader **out)
{
    s->err[0] = '\0';
    *out = NULL;
    int pos = pstore__snap_find(s, meta->index, meta->term);
    if (pos < 0) {
        return pstore__fail(s, PT_ENOTFOUND, "%s: no snapshot %llu (term %llu)", s->name,
                            (unsigned long long)meta->index, (unsigned long long)meta->term);
    }
    pstore_snap_reader *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return PT_ENOMEM;
    }
    r->s = s;
    r->src = (source){.slot = -1, .index = meta->index, .term = meta->term};
    pstore__snap_filename(meta->index, meta->term, r->what, sizeof(r->what));
    int rv = read_hdr(s, &r->src, s->snaps[pos].size, r->what, &r->h);
    if (rv != 0) {
        goto fail;
    }
    rv = PT_ENOMEM;
    r->sum = XXH3_createState();
    r->in = malloc(IO_CHUNK);
    if (r->sum == NULL || r->in == NULL) {
        goto fail;
    }
    XXH3_64bits_reset(r->sum);
    if (r->h.compression == PSTORE_COMP_ZSTD) {
        r->d = ZSTD_createDCtx();
        if (r->d == NULL) {
            goto fail;
        }
    }
    if (config_out != NULL) {
        *config_out = r->h.config;
    }
    *out = r;
    return 0;
fail:
    pstore_snap_reader_close(r);
    return rv;
}

/* Reads the next piece of payload into r->in; verifies the checksum with the last piece. */
static int refill(pstore_snap_reader *r)
{
    uint64_t left = r->h.payload_size - r->pos;
    size_t want = left < IO_CHUNK ? (size_t)left : IO_CHUNK;
    int rv = src_read_full(r->s, &r->src, r->h.header_len + r->pos, r->in, want);
    if (rv != 0) {
        return pstore__fail(r->s, rv, "%s: %s: cannot read the payload", r->s->name, r->what);
    }
    XXH3_64bits_update(r->sum, r->in, want);
    r->pos += want;
    if (r->pos == r->h.payload_size && (uint64_t)XXH3_64bits_digest(r->sum) != r->h.payload_sum) {
        return pstore__fail(r->s, PT_ECORRUPT, "%s: %s: payload checksum mismatch", r->s->name,
                            r->what);
    }
    r->ib = (ZSTD_inBuffer){r->in, want, 0};
    return 0;
}

static int finish_read(pstore_snap_reader *r)
{
    if (r->produced != r->h.raw_size) {
        return pstore__fail(r->s, PT_ECORRUPT, "%s: %s: decompressed size mismatch", r->s->name,
                            r->what);
    }
    r->done = true;
    return 0;
}

int pstore_snap_reader_read(pstore_snap_reader *r, void *buf, size_t cap, size_t *len)
{
    *len = 0;
    if (r->done || cap == 0) {
        return 0;
    }
    if (r->h.compression == PSTORE_COMP_NONE) {
        if (r->ib.pos == r->ib.size) {
            if (r->pos == r->h.payload_size) {
                return finish_read(r);
            }
            int rv = refill(r);
            if (rv != 0) {
                return rv;
            }
        }
        size_t n = r->ib.size - r->ib.pos < cap ? r->ib.size - r->ib.pos : cap;
        memcpy(buf, (const uint8_t *)r->ib.src + r->ib.pos, n);
        r->ib.pos += n;
        r->produced += n;
        *len = n;
        return 0;
    }
    ZSTD_outBuffer ob = {buf, cap, 0};
    while (ob.pos == 0) {
        if (r->ib.pos == r->ib.size) {
            if (r->pos == r->h.payload_size) {
                if (!r->frame_done) {
                    return pstore__fail(r->s, PT_ECORRUPT, "%s: %s: compressed payload ends early",
                                        r->s->name, r->what);
                }
                return finish_read(r);
            }
            int rv = refill(r);
            if (rv != 0) {
                return rv;
            }
        }
        size_t ret = ZSTD_decompressStream(r->d, &ob, &r->ib);
        if (ZSTD_isError(ret)) {
            return pstore__fail(r->s, PT_ECORRUPT, "%s: %s: zstd: %s", r->s->name, r->what,
                                ZSTD_getErrorName(ret));
        }
        r->frame_done = ret == 0;
    }
    r->produced += ob.pos;
    *len = ob.pos;
    return 0;
}

void pstore_snap_reader_close(pstore_snap_reader *r)
{
    if (r == NULL) {
        return;
    }
    ZSTD_freeDCtx(r->d);
    XXH3_freeState(r->sum);
    free(r->in);
    free(r);
}
