/*
 * Snapshots of the vehicle state machine (§7): freezing the state on the loop thread,
 * serialising the frozen copy off it, and restoring a serialised snapshot with full
 * validation.
 *
 * Format, version 3, little-endian:
 *
 *   header (64 bytes)
 *     magic "PVEHSNAP" | version u32 | flags u32 (0) | applied_index u64 | applied_term u64 |
 *     log_time_ms u64 | n_vehicles u64 | n_sessions u32 | n_members u32 | joint u8 |
 *     7 reserved bytes (0)
 *   n_vehicles vehicle records (48 bytes each, codec.h), strictly ascending id
 *   n_sessions sessions, least recently used first:
 *     client_id u64 | last_sequence u64 | last_used_ms u64 | fingerprint u64 |
 *     principal u64 | result_len u8 | result
 *   (versions 1 and 2 are still read: version 1 has no fingerprint, its sessions take 0,
 *   "unknown"; neither has the principal, their sessions take 0, "unbound")
 *   n_members members: id u64 | role u8 | old_role u8 | address_len u16 | address bytes
 *   checksum u64: XXH3-64 of every byte before it
 *
 * The order of every part is decided by the commands alone (ids; session use), so two nodes
 * that applied the same log produce byte-identical snapshots.
 */
#include <stdlib.h>
#include <string.h>

#include "common/checksum.h"
#include "platoon/bytes.h"
#include "platoon/codec.h"
#include "platoon/state.h"

#define SNAP_VERSION    3 /* 2 added the sessions' request fingerprints, 3 their principal */
#define SNAP_HEADER_LEN 64
#define SNAP_BUF_LEN    ((size_t)64 * 1024)

/* The first 8 bytes of the header: a tag, not a string, so it has no terminator. */
static const uint8_t snap_magic[8] = {'P', 'V', 'E', 'H', 'S', 'N', 'A', 'P'};

/* A consistent copy of the state, owned by the snapshot, sharing nothing with the live one. */
typedef struct frozen {
    uint64_t applied_index;
    uint64_t applied_term;
    uint64_t log_time_ms;
    pveh_map vehicles;      /* a frozen view: chunks shared copy-on-write with the live map */
    pveh_session *sessions; /* least recently used first; links unused */
    uint32_t n_sessions;
    praft_config config;
} frozen;

void pveh__snapshot_end(void *arg)
{
    frozen *f = arg;
    if (f != NULL) {
        pveh__map_free(&f->vehicles);
        free(f->sessions);
        free(f);
    }
}

/* The vehicles are frozen copy-on-write (one directory of chunk pointers; a chunk is copied
 * only when the loop writes it before the snapshot is released); the sessions are gathered
 * in list order in one flat pass: memory bandwidth, no encoding, no hashing. */
int pveh__snapshot_begin(const struct pveh_sm *sm, void **out)
{
    int rv = PT_ENOMEM;
    frozen *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        goto err;
    }
    f->applied_index = sm->applied_index;
    f->applied_term = sm->applied_term;
    f->log_time_ms = sm->log_time_ms;
    f->config = sm->config;
    if (pveh__map_freeze(&sm->vehicles, &f->vehicles) != 0) {
        goto err_frozen;
    }
    const pveh_sessions *s = &sm->sessions;
    if (s->count > 0) {
        f->sessions = malloc((size_t)s->count * sizeof(*f->sessions));
        if (f->sessions == NULL) {
            goto err_frozen;
        }
        for (uint32_t slot = s->head; slot != PVEH_NIL; slot = s->slots[slot].next) {
            f->sessions[f->n_sessions++] = s->slots[slot];
        }
    }
    *out = f;
    return 0;

err_frozen:
    pveh__snapshot_end(f);
err:
    return rv;
}

/* ---------------------------------------------------------------------------------------------
 * Writing: a buffered writer that checksums what it hands out. */

typedef struct writer {
    pnode_sm_write_fn fn;
    void *ctx;
    pt_checksum_state *sum;
    uint8_t *buf;
    size_t len;
    int err; /* the first error; later writes are skipped */
} writer;

static void w_flush(writer *w)
{
    if (w->err == 0 && w->len > 0) {
        pt__checksum_update(w->sum, w->buf, w->len);
        w->err = w->fn(w->ctx, w->buf, w->len);
    }
    w->len = 0;
}

static void w_put(writer *w, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0 && w->err == 0) {
        size_t take = SNAP_BUF_LEN - w->len;
        if (take > len) {
            take = len;
        }
        memcpy(w->buf + w->len, p, take);
        w->len += take;
        p += take;
        len -= take;
        if (w->len == SNAP_BUF_LEN) {
            w_flush(w);
        }
    }
}

static void put_member(writer *w, const praft_member *m)
{
    uint8_t rec[12];
    size_t alen = strnlen(m->address, sizeof(m->address));
    pveh__put_u64(rec, m->id);
    rec[8] = m->role;
    rec[9] = m->old_role;
    pveh__put_u16(rec + 10, (uint16_t)alen);
    w_put(w, rec, sizeof(rec));
    w_put(w, m->address, alen);
}

int pveh__snapshot_write(void *arg, pnode_sm_write_fn fn, void *ctx)
{
    const frozen *f = arg;
    int rv = PT_ENOMEM;
    if (f == NULL || fn == NULL) {
        return PT_EINVAL;
    }
    writer w = {.fn = fn, .ctx = ctx};
    w.sum = pt__checksum_new();
    if (w.sum == NULL) {
        goto err;
    }
    w.buf = malloc(SNAP_BUF_LEN);
    if (w.buf == NULL) {
        goto err_sum;
    }

    uint8_t hdr[SNAP_HEADER_LEN] = {0};
    memcpy(hdr, snap_magic, sizeof(snap_magic));
    pveh__put_u32(hdr + 8, SNAP_VERSION);
    pveh__put_u32(hdr + 12, 0);
    pveh__put_u64(hdr + 16, f->applied_index);
    pveh__put_u64(hdr + 24, f->applied_term);
    pveh__put_u64(hdr + 32, f->log_time_ms);
    pveh__put_u64(hdr + 40, f->vehicles.n);
    pveh__put_u32(hdr + 48, f->n_sessions);
    pveh__put_u32(hdr + 52, f->config.n_members);
    hdr[56] = f->config.joint ? 1 : 0;
    w_put(&w, hdr, sizeof(hdr));

    pveh_map_iter it;
    pveh__map_seek_after(&f->vehicles, 0, &it);
    for (const pveh_vehicle *v; (v = pveh__map_next(&it)) != NULL;) {
        uint8_t rec[PVEH_VEHICLE_RECORD_LEN];
        pveh__vehicle_put(rec, v, true);
        w_put(&w, rec, sizeof(rec));
    }
    for (uint32_t i = 0; i < f->n_sessions; i++) {
        const pveh_session *s = &f->sessions[i];
        uint8_t rec[41 + PVEH_RESULT_MAX_LEN];
        size_t rlen = 0;
        pveh__put_u64(rec, s->client_id);
        pveh__put_u64(rec + 8, s->last_sequence);
        pveh__put_u64(rec + 16, s->last_used_ms);
        pveh__put_u64(rec + 24, s->fingerprint);
        pveh__put_u64(rec + 32, s->principal);
        rv = pveh__result_put(rec + 41, &s->last, &rlen);
        if (rv != 0) {
            goto err_buf; /* cannot happen: sessions hold results built by apply */
        }
        rec[40] = (uint8_t)rlen;
        w_put(&w, rec, 41 + rlen);
    }
    for (uint32_t i = 0; i < f->config.n_members; i++) {
        put_member(&w, &f->config.members[i]);
    }
    w_flush(&w);
    if (w.err == 0) {
        uint8_t trailer[8];
        pveh__put_u64(trailer, pt__checksum_digest(w.sum));
        w.err = fn(ctx, trailer, sizeof(trailer));
    }
    rv = w.err;

err_buf:
    free(w.buf);
err_sum:
    pt__checksum_free(w.sum);
err:
    return rv;
}

/* ---------------------------------------------------------------------------------------------
 * Restoring: a buffered reader that checksums what it consumes. Nothing read is trusted until
 * it has been checked, and no allocation is sized from an unchecked count: tables grow as
 * records actually arrive, so a corrupt count ends in a truncation error, not a huge malloc. */

typedef struct reader {
    pnode_sm_read_fn fn;
    void *ctx;
    pt_checksum_state *sum;
    uint8_t *buf;
    size_t pos, len;
} reader;

static int r_get(reader *r, void *dst, size_t n)
{
    uint8_t *p = dst;
    while (n > 0) {
        if (r->pos == r->len) {
            size_t got = 0;
            int rv = r->fn(r->ctx, r->buf, SNAP_BUF_LEN, &got);
            if (rv != 0) {
                return rv;
            }
            if (got == 0 || got > SNAP_BUF_LEN) {
                return PT_ECORRUPT; /* truncated (or a reader that broke its contract) */
            }
            r->pos = 0;
            r->len = got;
        }
        size_t take = r->len - r->pos;
        if (take > n) {
            take = n;
        }
        memcpy(p, r->buf + r->pos, take);
        pt__checksum_update(r->sum, r->buf + r->pos, take);
        r->pos += take;
        p += take;
        n -= take;
    }
    return 0;
}

/* Succeeds only at the very end of the stream: trailing bytes mean a corrupt snapshot. */
static int r_expect_end(reader *r)
{
    if (r->pos != r->len) {
        return PT_ECORRUPT;
    }
    size_t got = 0;
    int rv = r->fn(r->ctx, r->buf, SNAP_BUF_LEN, &got);
    if (rv != 0) {
        return rv;
    }
    return got == 0 ? 0 : PT_ECORRUPT;
}

/* The new state, built aside and swapped in only once everything checked out. */
typedef struct staged {
    uint64_t applied_index, applied_term, log_time_ms;
    pveh_map vehicles;
    pveh_sessions sessions;
    praft_config config;
} staged;

static int read_vehicles(reader *r, staged *st, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        uint8_t rec[PVEH_VEHICLE_RECORD_LEN];
        pveh_vehicle v;
        int rv = r_get(r, rec, sizeof(rec));
        if (rv != 0) {
            return rv;
        }
        if (!pveh__vehicle_get(rec, true, &v) || v.revision > st->applied_index ||
            (st->vehicles.n > 0 && v.id <= pveh__map_last(&st->vehicles)->id)) {
            return PT_ECORRUPT;
        }
        rv = pveh__map_append(&st->vehicles, &v);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

static int read_sessions(reader *r, staged *st, uint32_t n, uint32_t version)
{
    uint64_t prev_used = 0;
    size_t fixed = version >= 3 ? 41 : version == 2 ? 33 : 25;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t rec[41 + PVEH_RESULT_MAX_LEN];
        int rv = r_get(r, rec, fixed);
        if (rv != 0) {
            return rv;
        }
        uint64_t client_id = pveh__get_u64(rec);
        uint64_t last_sequence = pveh__get_u64(rec + 8);
        uint64_t last_used = pveh__get_u64(rec + 16);
        uint64_t fingerprint = version >= 2 ? pveh__get_u64(rec + 24) : 0;
        uint64_t principal = version >= 3 ? pveh__get_u64(rec + 32) : 0;
        size_t rlen = rec[fixed - 1];
        if (client_id == 0 || last_used < prev_used || last_used > st->log_time_ms ||
            rlen > PVEH_RESULT_MAX_LEN || pveh__sessions_find(&st->sessions, client_id) != NULL) {
            return PT_ECORRUPT;
        }
        rv = r_get(r, rec + fixed, rlen);
        if (rv != 0) {
            return rv;
        }
        pveh_result res;
        /* A session's last answer is what its last request got when applied: a success,
         * or a full platoon. A session not used yet holds the answer to its opening. */
        if (pveh_result_decode(rec + fixed, rlen, &res) != 0 ||
            (res.status != PVEH_STATUS_OK && res.status != PVEH_STATUS_PLATOON_FULL) ||
            res.op == PVEH_OP_CLOSE_SESSION || res.revision > st->applied_index ||
            (res.op == PVEH_OP_OPEN_SESSION && res.client_id != client_id) ||
            (version < 3 && res.op > PVEH_OP_DELETE)) {
            return PT_ECORRUPT;
        }
        rv = pveh__sessions_reserve_one(&st->sessions);
        if (rv != 0) {
            return rv;
        }
        pveh_session *s = pveh__sessions_add(&st->sessions, client_id, principal);
        s->last_sequence = last_sequence;
        s->last_used_ms = last_used;
        s->fingerprint = fingerprint;
        s->last = res;
        prev_used = last_used;
    }
    return 0;
}

static int read_members(reader *r, staged *st, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        praft_member *m = &st->config.members[i];
        uint8_t rec[12];
        int rv = r_get(r, rec, sizeof(rec));
        if (rv != 0) {
            return rv;
        }
        m->id = pveh__get_u64(rec);
        m->role = rec[8];
        m->old_role = rec[9];
        size_t alen = pveh__get_u16(rec + 10);
        if (alen >= sizeof(m->address)) {
            return PT_ECORRUPT;
        }
        rv = r_get(r, m->address, alen);
        if (rv != 0) {
            return rv;
        }
        if (memchr(m->address, '\0', alen) != NULL) {
            return PT_ECORRUPT;
        }
        m->address[alen] = '\0';
    }
    st->config.n_members = n;
    return pveh__config_valid(&st->config) ? 0 : PT_ECORRUPT;
}

static int read_snapshot(reader *r, staged *st, const pveh_options *opts)
{
    uint8_t hdr[SNAP_HEADER_LEN];
    int rv = r_get(r, hdr, sizeof(hdr));
    if (rv != 0) {
        return rv;
    }
    if (memcmp(hdr, snap_magic, sizeof(snap_magic)) != 0) {
        return PT_ECORRUPT;
    }
    uint32_t version = pveh__get_u32(hdr + 8);
    if (version < 1 || version > SNAP_VERSION) {
        return PT_EVERSION;
    }
    st->applied_index = pveh__get_u64(hdr + 16);
    st->applied_term = pveh__get_u64(hdr + 24);
    st->log_time_ms = pveh__get_u64(hdr + 32);
    uint64_t n_vehicles = pveh__get_u64(hdr + 40);
    uint32_t n_sessions = pveh__get_u32(hdr + 48);
    uint32_t n_members = pveh__get_u32(hdr + 52);
    uint8_t joint = hdr[56];
    static const uint8_t zeros[7] = {0};
    if (pveh__get_u32(hdr + 12) != 0 || memcmp(hdr + 57, zeros, sizeof(zeros)) != 0 || joint > 1 ||
        n_members > PRAFT_MAX_MEMBERS || n_sessions > PVEH_MAX_SESSIONS_MAX) {
        return PT_ECORRUPT;
    }
    st->config.joint = joint == 1;
    /* While reading, the table may hold every session of the snapshot: whether they fit this
     * node's limit is decided after the checksum, so that corruption reads as corruption. */
    st->sessions.max = n_sessions;

    if ((rv = read_vehicles(r, st, n_vehicles)) != 0 ||
        (rv = read_sessions(r, st, n_sessions, version)) != 0 ||
        (rv = read_members(r, st, n_members)) != 0) {
        return rv;
    }
    uint64_t digest = pt__checksum_digest(r->sum);
    uint8_t trailer[8];
    if ((rv = r_get(r, trailer, sizeof(trailer))) != 0) {
        return rv;
    }
    if (pveh__get_u64(trailer) != digest) {
        return PT_ECORRUPT;
    }
    if ((rv = r_expect_end(r)) != 0) {
        return rv;
    }
    if (n_sessions > opts->max_sessions) {
        return PT_EINVAL;
    }
    st->sessions.max = opts->max_sessions;
    return 0;
}

int pveh__snapshot_restore(struct pveh_sm *sm, pnode_sm_read_fn fn, void *ctx)
{
    int rv = PT_ENOMEM;
    if (fn == NULL) {
        return PT_EINVAL;
    }
    reader r = {.fn = fn, .ctx = ctx};
    staged *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        goto err;
    }
    pveh__map_init(&st->vehicles);
    pveh__sessions_init(&st->sessions, 0, sm->opts.session_ttl_ms);
    r.sum = pt__checksum_new();
    if (r.sum == NULL) {
        goto err_staged;
    }
    r.buf = malloc(SNAP_BUF_LEN);
    if (r.buf == NULL) {
        goto err_sum;
    }
    rv = read_snapshot(&r, st, &sm->opts);
    if (rv != 0) {
        goto err_buf;
    }

    /* Everything checked out: the new state replaces the old one in one step. */
    pveh__map_free(&sm->vehicles);
    pveh__sessions_free(&sm->sessions);
    sm->vehicles = st->vehicles;
    sm->sessions = st->sessions;
    sm->config = st->config;
    sm->applied_index = st->applied_index;
    sm->applied_term = st->applied_term;
    sm->log_time_ms = st->log_time_ms;
    pveh__map_init(&st->vehicles);
    pveh__sessions_init(&st->sessions, 0, 0);

err_buf:
    free(r.buf);
err_sum:
    pt__checksum_free(r.sum);
err_staged:
    pveh__map_free(&st->vehicles);
    pveh__sessions_free(&st->sessions);
    free(st);
err:
    return rv;
}
