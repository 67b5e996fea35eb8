/*
 * Recovery of the write-ahead log, the part that applies records (wal_open.c reads and checks
 * them): each complete commit's records change the metadata in struct pstore and the index of
 * entries exactly as the write that made them did. A record whose checksum is right but whose
 * content is impossible (an append outside the log, a start record that disagrees with the
 * segments before it) is damage: PT_ECORRUPT naming the file and offset.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/codec.h"
#include "storage/wal.h"

int pstore__wal_pend_add(pstore *s, wal_pending *pd, uint8_t type, const uint8_t *payload,
                         uint32_t len, uint64_t seq, uint64_t off)
{
    size_t need = pd->len + ((len + 7u) & ~7u);
    if (need > pd->cap) {
        size_t cap = pd->cap ? pd->cap : 1 << 16;
        while (cap < need) {
            cap *= 2;
        }
        uint8_t *d = realloc(pd->data, cap);
        if (d == NULL) {
            return pstore__fail(s, PT_ENOMEM, "%s: out of memory", s->name);
        }
        pd->data = d;
        pd->cap = cap;
    }
    if (pd->n == pd->rcap) {
        size_t cap = pd->rcap ? pd->rcap * 2 : 8;
        struct prec *r = realloc(pd->recs, cap * sizeof(*r));
        if (r == NULL) {
            return pstore__fail(s, PT_ENOMEM, "%s: out of memory", s->name);
        }
        pd->recs = r;
        pd->rcap = cap;
    }
    memcpy(pd->data + pd->len, payload, len);
    pd->recs[pd->n++] =
        (struct prec){.type = type, .len = len, .at = pd->len, .off = off, .seq = seq};
    pd->len = need;
    return 0;
}

static int bad_content(pstore *s, uint64_t seq, uint64_t off, const char *why)
{
    char path[PATH_MAX];
    pstore__wal_seg_path(s->be, seq, path, sizeof(path));
    return pstore__fail(s, PT_ECORRUPT, "%s: offset %llu: %s", path, (unsigned long long)off, why);
}

static int apply_start(pstore *s, wal_replay *rp, const uint8_t *p, uint32_t len, uint64_t seq,
                       uint64_t off)
{
    if (len < WAL_START_FIX) {
        return bad_content(s, seq, off, "segment start record too short");
    }
    praft_hard_state hs = {pstore__get64(p + 32), pstore__get64(p + 40), pstore__get64(p + 48)};
    uint64_t base = pstore__get64(p + 56), base_term = pstore__get64(p + 64),
             last = pstore__get64(p + 72);
    uint32_t cfg_len = pstore__get32(p + 104);
    if (pstore__get64(p + 16) != s->opts.cluster_id || pstore__get64(p + 24) != s->opts.node_id ||
        last < base || WAL_START_FIX + (size_t)cfg_len != len) {
        return bad_content(s, seq, off, "segment start record is inconsistent");
    }
    if (rp->started) {
        /* It restates what the log before it says. */
        if (hs.term != s->hs.term || hs.vote != s->hs.vote || hs.commit != s->hs.commit ||
            base != s->base_index || last != s->last_index) {
            return bad_content(s, seq, off,
                               "segment start record disagrees with the segments before it");
        }
        return 0;
    }
    wstore *ws = s->be;
    rp->started = true;
    s->hs = hs;
    s->base_index = base;
    s->base_term = base_term;
    s->last_index = last;
    rp->has_snap = pstore__get64(p + 80) != 0;
    rp->snap_index = pstore__get64(p + 88);
    rp->snap_term = pstore__get64(p + 96);
    if (cfg_len > 0) {
        if (pstore__rec_parse_config(p + WAL_START_FIX, cfg_len, &s->config_index, &s->config) !=
            0) {
            return bad_content(s, seq, off, "configuration in the segment start record is bad");
        }
        s->has_config = true;
    }
    /* Entries up to @last are in segments before this one (removed, or to be checked). */
    ws->ents_first = last + 1;
    ws->n_ents = 0;
    ws->ents_off = 0;
    return 0;
}

static int apply_entries(pstore *s, const uint8_t *p, uint32_t len, uint64_t seq, uint64_t off)
{
    wstore *ws = s->be;
    if (len < 16) {
        return bad_content(s, seq, off, "entries record too short");
    }
    uint64_t first = pstore__get64(p);
    uint32_t count = pstore__get32(p + 8);
    if (count == 0 || first <= s->base_index || first > s->last_index + 1) {
        return bad_content(s, seq, off, "entries record outside the log");
    }
    pstore__wal_idx_truncate(ws, first);
    size_t at = 16;
    for (uint32_t i = 0; i < count; i++) {
        if (len - at < PSTORE_ENTRY_HDR) {
            return bad_content(s, seq, off, "entries record cut short");
        }
        uint32_t dlen = pstore__get32(p + at + 20);
        size_t vlen = PSTORE_ENTRY_HDR + (size_t)dlen;
        praft_entry e;
        const char *why = NULL;
        if (vlen > len - at || pstore__entry_decode(first + i, p + at, vlen, &e, &why) != 0) {
            return bad_content(s, seq, off, why ? why : "entries record cut short");
        }
        wal_ent we = {.term = e.term,
                      .seq = seq,
                      .off = (uint32_t)(off + WAL_REC_HDR + at),
                      .len = (uint32_t)vlen};
        int rv = pstore__wal_idx_append(ws, &we, first + i);
        if (rv != 0) {
            return rv == PT_ENOMEM ? pstore__fail(s, rv, "%s: out of memory", s->name)
                                   : bad_content(s, seq, off, "entries out of order");
        }
        at += vlen;
    }
    if (at != len) {
        return bad_content(s, seq, off, "entries record longer than its entries");
    }
    s->last_index = first + count - 1;
    return 0;
}

int pstore__wal_apply(pstore *s, wal_replay *rp, wal_pending *pd)
{
    wstore *ws = s->be;
    for (size_t i = 0; i < pd->n; i++) {
        const struct prec *r = &pd->recs[i];
        const uint8_t *p = pd->data + r->at;
        uint64_t a = 0, b = 0;
        int rv = 0;
        switch (r->type) {
        case WAL_SEG_START:
            rv = apply_start(s, rp, p, r->len, r->seq, r->off);
            break;
        case WAL_ENTRIES:
            rv = apply_entries(s, p, r->len, r->seq, r->off);
            break;
        case WAL_HARD_STATE:
            if (pstore__rec_parse_hard_state(p, r->len, &s->hs) != 0) {
                rv = bad_content(s, r->seq, r->off, "hard state record is bad");
            }
            break;
        case WAL_CONFIG:
            if (pstore__rec_parse_config(p, r->len, &s->config_index, &s->config) != 0) {
                rv = bad_content(s, r->seq, r->off, "configuration record is bad");
            }
            s->has_config = true;
            break;
        case WAL_BASE:
            if (pstore__rec_parse_pair(p, r->len, &a, &b) != 0 || a < s->base_index) {
                rv = bad_content(s, r->seq, r->off, "base record is bad");
                break;
            }
            s->base_index = a;
            s->base_term = b;
            if (s->last_index < a) {
                s->last_index = a;
            }
            pstore__wal_idx_drop_upto(ws, a);
            break;
        case WAL_SNAPSHOT:
            if (pstore__rec_parse_pair(p, r->len, &a, &b) != 0) {
                rv = bad_content(s, r->seq, r->off, "snapshot record is bad");
                break;
            }
            rp->has_snap = true;
            rp->snap_index = a;
            rp->snap_term = b;
            break;
        case WAL_TRUNCATE:
            a = r->len == 8 ? pstore__get64(p) : 0;
            if (a == 0 || (a <= s->base_index && a != 1) || a > s->last_index + 1) {
                rv = bad_content(s, r->seq, r->off, "truncation record is bad");
                break;
            }
            pstore__wal_idx_truncate(ws, a);
            s->last_index = a - 1;
            break;
        default:
            rv = bad_content(s, r->seq, r->off, "unknown record type");
        }
        if (rv != 0) {
            return rv;
        }
    }
    pd->n = 0;
    pd->len = 0;
    return 0;
}
