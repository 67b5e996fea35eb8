/* The common layer: options, validation, cached state, reads, writes, the core's view. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/codec.h"
#include "storage/internal.h"

void pstore_options_init(pstore_options *opts, uint64_t cluster_id, uint64_t node_id)
{
    memset(opts, 0, sizeof(*opts));
    opts->cluster_id = cluster_id;
    opts->node_id = node_id;
    opts->create = false;
    opts->sync = PSTORE_SYNC_FULL;
    opts->keep_snapshots = 2;
    opts->initial_map_size = (size_t)64 << 20;
    opts->zstd_level = 3;
    opts->engine = PSTORE_ENGINE_WAL;
    opts->segment_size = (uint64_t)64 << 20;
}

int pstore__fail(pstore *s, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
    return code;
}

int pstore__fail_buf(char *err, size_t cap, int code, const char *fmt, ...)
{
    if (err != NULL && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return code;
}

int pstore__alloc(const pstore_options *opts, const char *name, pstore **out)
{
    *out = NULL;
    /* Identity 0/0 is only for inspecting an existing store (see pstore_options). */
    bool inspect = opts != NULL && opts->cluster_id == 0 && opts->node_id == 0 && !opts->create;
    if (opts == NULL || (!inspect && (opts->cluster_id == 0 || opts->node_id == 0)) ||
        opts->sync > PSTORE_SYNC_NONE || opts->keep_snapshots < 1 ||
        opts->keep_snapshots > PSTORE_MAX_SNAPS / 2 || opts->zstd_level < 0 ||
        opts->zstd_level > 19 || opts->engine > PSTORE_ENGINE_LMDB ||
        (opts->segment_size != 0 &&
         (opts->segment_size < (64u << 10) || opts->segment_size > (1u << 30)))) {
        return PT_EINVAL;
    }
    pstore *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return PT_ENOMEM;
    }
    s->opts = *opts;
    if (s->opts.initial_map_size == 0) {
        s->opts.initial_map_size = (size_t)64 << 20;
    }
    if (s->opts.segment_size == 0) {
        s->opts.segment_size = (uint64_t)64 << 20;
    }
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->version = PSTORE_FORMAT_VERSION;
    *out = s;
    return 0;
}

void pstore__free(pstore *s)
{
    free(s);
}

void pstore_close(pstore *s)
{
    if (s == NULL) {
        return;
    }
    if (s->writer != NULL) {
        pstore_snap_abort(s->writer);
    }
    pstore_recv_abort(s);
    s->ops->close(s);
    pstore__free(s);
}

const char *pstore_last_error(const pstore *s)
{
    return s ? s->err : "";
}

void pstore_identity(const pstore *s, uint64_t *cluster_id, uint64_t *node_id,
                     uint32_t *format_version)
{
    if (cluster_id) {
        *cluster_id = s->opts.cluster_id;
    }
    if (node_id) {
        *node_id = s->opts.node_id;
    }
    if (format_version) {
        *format_version = s->version;
    }
}

/* ---- metadata records ---- */

size_t pstore__rec_hard_state(const praft_hard_state *hs, uint8_t *buf)
{
    pstore__put64(buf, hs->term);
    pstore__put64(buf + 8, hs->vote);
    pstore__put64(buf + 16, hs->commit);
    pstore__rec_seal(buf, 24);
    return 24 + PSTORE_REC_SUM;
}

size_t pstore__rec_pair(uint64_t a, uint64_t b, uint8_t *buf)
{
    pstore__put64(buf, a);
    pstore__put64(buf + 8, b);
    pstore__rec_seal(buf, 16);
    return 16 + PSTORE_REC_SUM;
}

size_t pstore__rec_u32(uint32_t v, uint8_t *buf)
{
    pstore__put32(buf, v);
    pstore__rec_seal(buf, 4);
    return 4 + PSTORE_REC_SUM;
}

size_t pstore__rec_config(uint64_t index, const praft_config *c, uint8_t *buf)
{
    pstore__put64(buf, index);
    size_t n = 8 + pstore__config_encode(c, buf + 8);
    pstore__rec_seal(buf, n);
    return n + PSTORE_REC_SUM;
}

int pstore__rec_parse_hard_state(const uint8_t *buf, size_t len, praft_hard_state *hs)
{
    if (len != 24 + PSTORE_REC_SUM || !pstore__rec_ok(buf, len)) {
        return PT_ECORRUPT;
    }
    hs->term = pstore__get64(buf);
    hs->vote = pstore__get64(buf + 8);
    hs->commit = pstore__get64(buf + 16);
    return 0;
}

int pstore__rec_parse_pair(const uint8_t *buf, size_t len, uint64_t *a, uint64_t *b)
{
    if (len != 16 + PSTORE_REC_SUM || !pstore__rec_ok(buf, len)) {
        return PT_ECORRUPT;
    }
    *a = pstore__get64(buf);
    *b = pstore__get64(buf + 8);
    return 0;
}

int pstore__rec_parse_u32(const uint8_t *buf, size_t len, uint32_t *v)
{
    if (len != 4 + PSTORE_REC_SUM || !pstore__rec_ok(buf, len)) {
        return PT_ECORRUPT;
    }
    *v = pstore__get32(buf);
    return 0;
}

int pstore__rec_parse_config(const uint8_t *buf, size_t len, uint64_t *index, praft_config *c)
{
    size_t used = 0;
    if (len < 8 + PSTORE_REC_SUM || !pstore__rec_ok(buf, len) ||
        pstore__config_decode(buf + 8, len - 8 - PSTORE_REC_SUM, c, &used) != 0 ||
        used != len - 8 - PSTORE_REC_SUM) {
        return PT_ECORRUPT;
    }
    *index = pstore__get64(buf);
    return 0;
}

/* ---- reads ---- */

void pstore_hard_state(const pstore *s, praft_hard_state *hs)
{
    *hs = s->hs;
}

void pstore_config(const pstore *s, bool *has, uint64_t *index, praft_config *config)
{
    *has = s->has_config;
    if (s->has_config) {
        if (index) {
            *index = s->config_index;
        }
        if (config) {
            *config = s->config;
        }
    }
}

void pstore_log_range(const pstore *s, uint64_t *first, uint64_t *last)
{
    if (first) {
        *first = s->base_index + 1;
    }
    if (last) {
        *last = s->last_index;
    }
}

int pstore_term(pstore *s, uint64_t index, uint64_t *term)
{
    s->err[0] = '\0';
    if (index < s->base_index) {
        return PT_ECOMPACTED;
    }
    if (index > s->last_index) {
        return PT_EUNAVAILABLE;
    }
    if (index == s->base_index) {
        *term = s->base_term;
        return 0;
    }
    return s->ops->term(s, index, term);
}

int pstore_entries(pstore *s, uint64_t lo, uint64_t hi, size_t max_bytes, praft_entry *out,
                   size_t *n)
{
    s->err[0] = '\0';
    *n = 0;
    if (lo > hi) {
        return PT_EINVAL;
    }
    if (lo <= s->base_index) {
        return PT_ECOMPACTED;
    }
    if (hi > s->last_index + 1) {
        return PT_EUNAVAILABLE;
    }
    if (lo == hi) {
        return 0;
    }
    return s->ops->read(s, lo, hi, max_bytes, out, n);
}

void pstore_entries_free(praft_entry *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(out[i].data);
        out[i].data = NULL;
    }
}

void pstore_snapshot_current(const pstore *s, bool *has, praft_snapshot_meta *meta)
{
    *has = s->has_current;
    if (!s->has_current || meta == NULL) {
        return;
    }
    for (size_t i = 0; i < s->n_snaps; i++) {
        if (s->snaps[i].current) {
            memset(meta, 0, sizeof(*meta));
            meta->index = s->snaps[i].index;
            meta->term = s->snaps[i].term;
            meta->size = s->snaps[i].size;
            meta->checksum = s->snaps[i].checksum;
            meta->config = s->current_config;
            return;
        }
    }
}

/* ---- writes ---- */

int pstore_write(pstore *s, const pstore_batch *w)
{
    uint8_t hs_rec[PSTORE_REC_MAX], cfg_rec[PSTORE_REC_MAX], base_rec[PSTORE_REC_MAX],
        snap_rec[PSTORE_REC_MAX];
    s->err[0] = '\0';
    if (w == NULL || (w->n_entries > 0 && w->entries == NULL)) {
        return pstore__fail(s, PT_EINVAL, "%s: invalid write", s->name);
    }
    pstore_change c;
    memset(&c, 0, sizeof(c));
    uint64_t base = s->base_index, base_term = s->base_term, last = s->last_index;
    int snap_pos = -1;
    praft_config snap_cfg;
    const praft_config *cfg = w->config;
    uint64_t cfg_index = w->config_index;

    if (w->install_snapshot != NULL) {
        const praft_snapshot_meta *m = w->install_snapshot;
        snap_pos = pstore__snap_find(s, m->index, m->term);
        if (snap_pos < 0) {
            return pstore__fail(s, PT_ENOTFOUND,
                                "%s: snapshot %llu (term %llu) to install is not complete", s->name,
                                (unsigned long long)m->index, (unsigned long long)m->term);
        }
        /* §7: the snapshot replaces the whole log; the ready contract says the core already
         * decided that no stored entry is to be kept. */
        c.del_from = 1;
        base = m->index;
        base_term = m->term;
        last = m->index;
        c.base = base_rec;
        c.base_len = pstore__rec_pair(base, base_term, base_rec);
        c.snapshot = snap_rec;
        c.snapshot_len = pstore__rec_pair(m->index, m->term, snap_rec);
        int rv = pstore__snap_config(s, m->index, m->term, &snap_cfg);
        if (rv != 0) {
            return rv;
        }
        if (cfg == NULL) {
            cfg = &snap_cfg;
            cfg_index = m->index;
        }
    }
    if (w->n_entries > 0) {
        uint64_t first = w->entries[0].index;
        for (size_t i = 0; i < w->n_entries; i++) {
            if (w->entries[i].index != first + i || (w->entries[i].len && !w->entries[i].data)) {
                return pstore__fail(s, PT_EINVAL, "%s: entries to append are not consecutive",
                                    s->name);
            }
        }
        if (first <= base || first > last + 1) {
            return pstore__fail(
                s, PT_EINVAL, "%s: append at %llu outside the log (first %llu, last %llu)", s->name,
                (unsigned long long)first, (unsigned long long)base + 1, (unsigned long long)last);
        }
        if (first <= last && c.del_from == 0) {
            c.del_from = first; /* §5.3: a conflicting suffix goes */
        }
        c.entries = w->entries;
        c.n_entries = w->n_entries;
        last = w->entries[w->n_entries - 1].index;
    }
    if (w->hard_state != NULL) {
        c.hard_state = hs_rec;
        c.hard_state_len = pstore__rec_hard_state(w->hard_state, hs_rec);
    }
    if (cfg != NULL) {
        if (cfg->n_members > PRAFT_MAX_MEMBERS) {
            return pstore__fail(s, PT_EINVAL, "%s: configuration too large", s->name);
        }
        c.config = cfg_rec;
        c.config_len = pstore__rec_config(cfg_index, cfg, cfg_rec);
    }
    int rv = s->ops->commit(s, &c);
    if (rv != 0) {
        return rv;
    }
    s->base_index = base;
    s->base_term = base_term;
    s->last_index = last;
    if (w->hard_state != NULL) {
        s->hs = *w->hard_state;
    }
    if (cfg != NULL) {
        s->config = *cfg;
        s->config_index = cfg_index;
        s->has_config = true;
    }
    if (snap_pos >= 0) {
        for (size_t i = 0; i < s->n_snaps; i++) {
            s->snaps[i].current = (int)i == snap_pos;
        }
        s->has_current = true;
        s->current_config = snap_cfg;
        pstore__snap_prune(s, true);
    }
    return 0;
}

int pstore_purge(pstore *s, uint64_t upto)
{
    uint8_t base_rec[PSTORE_REC_MAX];
    s->err[0] = '\0';
    if (upto <= s->base_index) {
        return 0;
    }
    bool has = false;
    praft_snapshot_meta cur;
    pstore_snapshot_current(s, &has, &cur);
    if (!has || upto > cur.index || upto > s->last_index) {
        return pstore__fail(s, PT_EINVAL,
                            "%s: cannot purge up to %llu: beyond the current snapshot or the log",
                            s->name, (unsigned long long)upto);
    }
    uint64_t term = 0;
    int rv = s->ops->term(s, upto, &term);
    if (rv != 0) {
        return rv;
    }
    pstore_change c;
    memset(&c, 0, sizeof(c));
    c.del_upto = upto;
    c.base = base_rec;
    c.base_len = pstore__rec_pair(upto, term, base_rec);
    rv = s->ops->commit(s, &c);
    if (rv != 0) {
        return rv;
    }
    s->base_index = upto;
    s->base_term = term;
    return 0;
}

int pstore_check(pstore *s)
{
    s->err[0] = '\0';
    int rv = s->ops->check(s);
    if (rv != 0) {
        return rv;
    }
    for (size_t i = 0; i < s->n_snaps; i++) {
        pstore_snap_info info;
        praft_config cfg;
        rv = pstore__snap_verify(s, s->snaps[i].index, s->snaps[i].term, s->snaps[i].size, &info,
                                 &cfg);
        if (rv != 0) {
            return rv;
        }
        if (info.checksum != s->snaps[i].checksum) {
            return pstore__fail(s, PT_ECORRUPT, "%s: snapshot %llu changed since it was opened",
                                s->name, (unsigned long long)s->snaps[i].index);
        }
    }
    return 0;
}

/* ---- the core's view (praft_storage) ---- */

static int rs_initial_state(void *ctx, praft_hard_state *hs, praft_snapshot_meta *snap)
{
    pstore *s = ctx;
    bool has = false;
    *hs = s->hs;
    memset(snap, 0, sizeof(*snap));
    pstore_snapshot_current(s, &has, snap);
    return 0;
}

static int rs_first_index(void *ctx, uint64_t *index)
{
    pstore_log_range(ctx, index, NULL);
    return 0;
}

static int rs_last_index(void *ctx, uint64_t *index)
{
    pstore_log_range(ctx, NULL, index);
    return 0;
}

static int rs_term(void *ctx, uint64_t index, uint64_t *term)
{
    return pstore_term(ctx, index, term);
}

static int rs_entries(void *ctx, uint64_t lo, uint64_t hi, size_t max_bytes, praft_entry *out,
                      size_t *n)
{
    return pstore_entries(ctx, lo, hi, max_bytes, out, n);
}

static int rs_snapshot_read(void *ctx, const praft_snapshot_meta *meta, uint64_t offset, void *buf,
                            size_t cap, size_t *len)
{
    return pstore_snap_read(ctx, meta, offset, buf, cap, len);
}

void pstore_raft_storage(pstore *s, praft_storage *out)
{
    out->ctx = s;
    out->initial_state = rs_initial_state;
    out->first_index = rs_first_index;
    out->last_index = rs_last_index;
    out->term = rs_term;
    out->entries = rs_entries;
    out->snapshot_read = rs_snapshot_read;
}
