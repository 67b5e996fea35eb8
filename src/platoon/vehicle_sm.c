/*
 * The vehicle state machine: applying commands, answering queries, and the pnode_sm interface
 * the node runtime drives it through. Snapshots are in snapshot.c, encodings in codec.c.
 */
#include <stdlib.h>
#include <string.h>

#include "platoon/bytes.h"
#include "platoon/codec.h"
#include "platoon/state.h"

void pveh_options_init(pveh_options *opts)
{
    opts->max_sessions = PVEH_MAX_SESSIONS_DEFAULT;
    opts->session_ttl_ms = PVEH_SESSION_TTL_MS_MIN;
    opts->max_vehicles = PVEH_MAX_VEHICLES_DEFAULT;
    opts->max_sessions_per_principal = PVEH_SESSIONS_PER_PRINCIPAL_DEFAULT;
}

int pveh_sm_new(const pveh_options *opts, pveh_sm **out)
{
    pveh_options o;
    if (opts != NULL) {
        o = *opts;
    } else {
        pveh_options_init(&o);
    }
    if (out == NULL || o.max_sessions < PVEH_MAX_SESSIONS_MIN ||
        o.max_sessions > PVEH_MAX_SESSIONS_MAX || o.session_ttl_ms < PVEH_SESSION_TTL_MS_MIN ||
        o.max_sessions_per_principal == 0 || o.max_sessions_per_principal > o.max_sessions) {
        return PT_EINVAL;
    }
    pveh_sm *sm = calloc(1, sizeof(*sm));
    if (sm == NULL) {
        return PT_ENOMEM;
    }
    sm->opts = o;
    pveh__map_init(&sm->vehicles);
    pveh__sessions_init(&sm->sessions, o.max_sessions, o.session_ttl_ms);
    pveh__listings_init(&sm->listings);
    pveh__watch_init(&sm->watch);
    *out = sm;
    return 0;
}

void pveh_sm_free(pveh_sm *sm)
{
    if (sm == NULL) {
        return;
    }
    pveh__watch_free(&sm->watch);
    pveh__listings_free(&sm->listings);
    pveh__map_free(&sm->vehicles);
    pveh__sessions_free(&sm->sessions);
    free(sm);
}

bool pveh__config_valid(const praft_config *c)
{
    if (c->n_members > PRAFT_MAX_MEMBERS) {
        return false;
    }
    for (uint32_t i = 0; i < c->n_members; i++) {
        const praft_member *m = &c->members[i];
        if (m->id == PRAFT_NONE || (i > 0 && m->id <= c->members[i - 1].id)) {
            return false;
        }
        if (m->role > PRAFT_ROLE_LEARNER || m->old_role > PRAFT_ROLE_LEARNER) {
            return false;
        }
        /* Outside a joint configuration there is no outgoing side; inside one, a member
         * belongs to at least one side (thesis §4.3). */
        if (!c->joint && (m->old_role != PRAFT_ROLE_NONE || m->role == PRAFT_ROLE_NONE)) {
            return false;
        }
        if (c->joint && m->role == PRAFT_ROLE_NONE && m->old_role == PRAFT_ROLE_NONE) {
            return false;
        }
        if (memchr(m->address, '\0', sizeof(m->address)) == NULL) {
            return false;
        }
    }
    return true;
}

/* Carries out an UPDATE or DELETE at @index; the room it may need was reserved before. */
static void execute(pveh_sm *sm, const pveh_command *c, uint64_t index, pveh_result *r)
{
    memset(r, 0, sizeof(*r));
    r->op = c->op;
    r->status = PVEH_STATUS_OK;
    if (c->op == PVEH_OP_UPDATE) {
        pveh_vehicle v = c->vehicle;
        v.revision = index;
        int rv = pveh__map_put(&sm->vehicles, &v);
        (void)rv; /* cannot fail: pveh__map_reserve_one succeeded */
        r->vehicle = v;
        r->revision = index;
        pveh__watch_record(&sm->watch,
                           &(pveh_change){.revision = index, .op = PVEH_CHANGE_PUT, .vehicle = v});
    } else {
        r->existed = pveh__map_remove(&sm->vehicles, c->id);
        r->revision = index;
        if (r->existed) {
            pveh__watch_record(&sm->watch, &(pveh_change){.revision = index,
                                                          .op = PVEH_CHANGE_DELETE,
                                                          .vehicle = {.id = c->id}});
        }
    }
}

/* OPEN_SESSION (thesis §6.3: RegisterClient): the session's id is the command's index. A
 * principal at its quota gives up its own least recently used session; a table full of other
 * principals' live sessions refuses, since evicting one of them would let a late retry of
 * theirs be refused (safe, but their loss for someone else's load). */
static void open_session(pveh_sm *sm, const pveh_command *c, uint64_t index, pveh_result *r)
{
    pveh_sessions *s = &sm->sessions;
    if (pveh__sessions_count_of(s, c->principal) >= c->limit) {
        pveh__sessions_remove(s, pveh__sessions_oldest_of(s, c->principal));
    }
    if (s->count >= s->max) {
        r->status = PVEH_STATUS_SESSIONS_FULL;
        return;
    }
    pveh_session *sess = pveh__sessions_add(s, index, c->principal);
    pveh__sessions_touch(s, sess, sm->log_time_ms);
    r->client_id = index;
    sess->last = *r; /* nothing applied yet: what a snapshot records for it */
}

static void close_session(pveh_sm *sm, const pveh_command *c, pveh_result *r)
{
    pveh_session *sess = pveh__sessions_find(&sm->sessions, c->client_id);
    if (sess != NULL && sess->principal != 0 && sess->principal != c->principal) {
        r->status = PVEH_STATUS_FOREIGN_SESSION;
        return;
    }
    r->existed = sess != NULL;
    if (sess != NULL) {
        pveh__sessions_remove(&sm->sessions, sess);
    }
}

/* An UPDATE or DELETE, under the session rules (platoon/vehicle.h). */
static void mutate(pveh_sm *sm, const pveh_command *c, uint64_t fingerprint, uint64_t index,
                   pveh_result *r)
{
    pveh_session *sess = NULL;
    if (c->client_id != 0) {
        sess = pveh__sessions_find(&sm->sessions, c->client_id);
        if (sess == NULL && c->version >= 2) {
            /* Sessions are opened explicitly now: an unknown id was closed, expired or
             * evicted, and this may be a late retry of a request applied long ago. */
            r->status = PVEH_STATUS_UNKNOWN_SESSION;
            return;
        }
        if (sess != NULL && sess->principal != 0 && sess->principal != c->principal) {
            /* Untouched: another principal can neither use nor keep alive this session. */
            r->status = PVEH_STATUS_FOREIGN_SESSION;
            return;
        }
    }
    if (sess != NULL && c->version >= 2 && c->sequence == 0) {
        /* Sequences start at 1 with a session; 0 is what a fresh session has "applied". */
        pveh__sessions_touch(&sm->sessions, sess, sm->log_time_ms);
        r->status = PVEH_STATUS_STALE_SEQUENCE;
        r->last_sequence = sess->last_sequence;
        return;
    }
    if (sess != NULL && c->sequence == sess->last_sequence &&
        (sess->fingerprint == 0 || sess->fingerprint == fingerprint)) {
        /* A retry of the last applied request: the original answer, nothing applied. */
        pveh__sessions_touch(&sm->sessions, sess, sm->log_time_ms);
        *r = sess->last;
        return;
    }
    if (sess != NULL && c->sequence == sess->last_sequence) {
        /* The same sequence naming another request (a client bug, or two clients sharing an
         * id): answering with the earlier result would report success for a write that never
         * happens, so it is refused and nothing is applied (thesis §6.3 assumes one request
         * per sequence; this enforces it). */
        pveh__sessions_touch(&sm->sessions, sess, sm->log_time_ms);
        r->status = PVEH_STATUS_SEQUENCE_CONFLICT;
        r->last_sequence = sess->last_sequence;
        return;
    }
    if (sess != NULL && c->sequence < sess->last_sequence) {
        /* The client has moved on past this request: it can only be a delayed duplicate. */
        pveh__sessions_touch(&sm->sessions, sess, sm->log_time_ms);
        r->status = PVEH_STATUS_STALE_SEQUENCE;
        r->last_sequence = sess->last_sequence;
        return;
    }
    if (c->op == PVEH_OP_UPDATE && c->limit != 0 && pveh__map_find(&sm->vehicles, c->id) == NULL &&
        sm->vehicles.n >= c->limit) {
        r->status = PVEH_STATUS_PLATOON_FULL;
    } else {
        execute(sm, c, index, r);
    }
    if (c->client_id != 0) {
        if (sess == NULL) {
            /* Version 1 only: the session is created by its first request. */
            sess = pveh__sessions_add(&sm->sessions, c->client_id, 0);
        }
        pveh__sessions_touch(&sm->sessions, sess, sm->log_time_ms);
        sess->last_sequence = c->sequence;
        sess->fingerprint = fingerprint;
        sess->last = *r;
    }
}

static int sm_apply(void *ctx, uint64_t index, uint64_t term, const uint8_t *cmd, size_t len,
                    uint8_t **result, size_t *result_len)
{
    pveh_sm *sm = ctx;
    if (index <= sm->applied_index || result == NULL || result_len == NULL) {
        return PT_EINVAL;
    }
    pveh_command c;
    int rv = pveh_command_decode(cmd, len, &c);
    if (rv != 0) {
        return rv;
    }
    /* Take every allocation the command may need before changing anything, so that it is
     * applied entirely or not at all. */
    if ((rv = pveh__map_reserve_one(&sm->vehicles)) != 0) { /* a delete may copy a chunk */
        return rv;
    }
    if ((c.client_id != 0 || c.op == PVEH_OP_OPEN_SESSION) &&
        (rv = pveh__sessions_reserve_one(&sm->sessions)) != 0) {
        return rv;
    }
    uint8_t *out = malloc(PVEH_RESULT_MAX_LEN);
    if (out == NULL) {
        return PT_ENOMEM;
    }

    /* Log time is the leader's clock as stamped in the log, kept monotonic across leaders
     * whose clocks disagree: every node computes the same value from the same entries. */
    if (c.timestamp_ms > sm->log_time_ms) {
        sm->log_time_ms = c.timestamp_ms;
    }
    pveh__sessions_expire(&sm->sessions, sm->log_time_ms);

    pveh_result r;
    memset(&r, 0, sizeof(r));
    r.op = c.op;
    r.status = PVEH_STATUS_OK;
    if (c.op == PVEH_OP_OPEN_SESSION) {
        open_session(sm, &c, index, &r);
    } else if (c.op == PVEH_OP_CLOSE_SESSION) {
        close_session(sm, &c, &r);
    } else {
        mutate(sm, &c, pveh__command_fingerprint(cmd, len), index, &r);
    }
    sm->applied_index = index;
    sm->applied_term = term;
    rv = pveh__result_put(out, &r, result_len);
    (void)rv; /* r was built here with a known op and status */
    *result = out;
    return 0;
}

static int sm_applied_noop(void *ctx, uint64_t index, uint64_t term)
{
    pveh_sm *sm = ctx;
    if (index <= sm->applied_index) {
        return PT_EINVAL;
    }
    sm->applied_index = index;
    sm->applied_term = term;
    return 0;
}

static int sm_applied_config(void *ctx, uint64_t index, uint64_t term, const praft_config *config)
{
    pveh_sm *sm = ctx;
    if (index <= sm->applied_index || config == NULL || !pveh__config_valid(config)) {
        return PT_EINVAL;
    }
    sm->config = *config;
    sm->applied_index = index;
    sm->applied_term = term;
    return 0;
}

static void put_qresult_header(uint8_t *p, uint32_t op, uint32_t status, uint64_t applied)
{
    p[0] = PVEH_FORMAT_VERSION;
    p[1] = (uint8_t)op;
    p[2] = (uint8_t)status;
    pveh__put_u64(p + 3, applied);
}

static int sm_query(void *ctx, const uint8_t *query, size_t len, uint8_t **result,
                    size_t *result_len)
{
    const pveh_sm *sm = ctx;
    if (result == NULL || result_len == NULL) {
        return PT_EINVAL;
    }
    if (pveh__watch_query_is(query, len)) {
        return pveh__watch_query_run(query, len, result, result_len);
    }
    if (pveh__listing_query_is(query, len)) {
        /* Opens a listing: a frozen view on the side, the replicated state is untouched. */
        return pveh__listing_query_run(ctx, query, len, result, result_len);
    }
    pveh_query q;
    int rv = pveh_query_decode(query, len, &q);
    if (rv != 0) {
        return rv;
    }
    uint8_t *out;
    size_t out_len;
    if (q.op == PVEH_QUERY_GET) {
        const pveh_vehicle *v = pveh__map_find(&sm->vehicles, q.id);
        out_len = PVEH_QRESULT_HEADER_LEN + (v != NULL ? PVEH_VEHICLE_RECORD_LEN : 0);
        out = malloc(out_len);
        if (out == NULL) {
            return PT_ENOMEM;
        }
        put_qresult_header(out, q.op, v != NULL ? PVEH_STATUS_OK : PVEH_STATUS_NOT_FOUND,
                           sm->applied_index);
        if (v != NULL) {
            pveh__vehicle_put(out + PVEH_QRESULT_HEADER_LEN, v, true);
        }
    } else {
        size_t n = sm->vehicles.n;
        if (n > UINT32_MAX ||
            n > (SIZE_MAX - PVEH_QRESULT_HEADER_LEN - 4) / PVEH_VEHICLE_RECORD_LEN) {
            return PT_ETOOBIG;
        }
        out_len = PVEH_QRESULT_HEADER_LEN + 4 + n * PVEH_VEHICLE_RECORD_LEN;
        out = malloc(out_len);
        if (out == NULL) {
            return PT_ENOMEM;
        }
        put_qresult_header(out, q.op, PVEH_STATUS_OK, sm->applied_index);
        uint8_t *p = out + PVEH_QRESULT_HEADER_LEN;
        pveh__put_u32(p, (uint32_t)n);
        p += 4;
        pveh_map_iter it;
        pveh__map_seek_after(&sm->vehicles, 0, &it);
        for (const pveh_vehicle *v; (v = pveh__map_next(&it)) != NULL;
             p += PVEH_VEHICLE_RECORD_LEN) {
            pveh__vehicle_put(p, v, true);
        }
    }
    *result = out;
    *result_len = out_len;
    return 0;
}

static int sm_snapshot_begin(void *ctx, void **frozen, uint64_t *index, uint64_t *term)
{
    pveh_sm *sm = ctx;
    if (frozen == NULL) {
        return PT_EINVAL;
    }
    /* Listings cost memory only as writes copy the chunks they share, and writes are what
     * bring snapshots: drop the abandoned ones here too, not only at the next GetPlatoon
     * (which may never come). Local and not replicated: the snapshot is unaffected. */
    pveh__listings_expire(&sm->listings, pveh__listings_now_ms());
    int rv = pveh__snapshot_begin(sm, frozen);
    if (rv == 0) {
        if (index != NULL) {
            *index = sm->applied_index;
        }
        if (term != NULL) {
            *term = sm->applied_term;
        }
    }
    return rv;
}

static int sm_restore(void *ctx, pnode_sm_read_fn read, void *read_ctx)
{
    pveh_sm *sm = ctx;
    int rv = pveh__snapshot_restore(sm, read, read_ctx);
    if (rv == 0) {
        /* The changes the snapshot covers were never seen here: watchers start over. */
        pveh__watch_reset(&sm->watch, sm->applied_index);
    }
    return rv;
}

static uint64_t sm_applied_index(void *ctx)
{
    const pveh_sm *sm = ctx;
    return sm->applied_index;
}

static const pnode_sm_ops vehicle_sm_ops = {
    .apply = sm_apply,
    .applied_noop = sm_applied_noop,
    .applied_config = sm_applied_config,
    .query = sm_query,
    .snapshot_begin = sm_snapshot_begin,
    .snapshot_write = pveh__snapshot_write,
    .snapshot_end = pveh__snapshot_end,
    .restore = sm_restore,
    .applied_index = sm_applied_index,
};

void pveh_sm_interface(pveh_sm *sm, pnode_sm *out)
{
    out->ops = &vehicle_sm_ops;
    out->ctx = sm;
}

int pveh_sm_get(const pveh_sm *sm, uint64_t id, pveh_vehicle *out)
{
    const pveh_vehicle *v = pveh__map_find(&sm->vehicles, id);
    if (v == NULL) {
        return PT_ENOTFOUND;
    }
    *out = *v;
    return 0;
}

size_t pveh_sm_vehicle_count(const pveh_sm *sm)
{
    return sm->vehicles.n;
}

uint64_t pveh_sm_applied_index(const pveh_sm *sm)
{
    return sm->applied_index;
}

uint64_t pveh_sm_log_time(const pveh_sm *sm)
{
    return sm->log_time_ms;
}

void pveh_sm_membership(const pveh_sm *sm, praft_config *out)
{
    *out = sm->config;
}

size_t pveh_sm_session_count(const pveh_sm *sm)
{
    return sm->sessions.count;
}

int pveh_sm_session_get(const pveh_sm *sm, uint64_t client_id, uint64_t *last_sequence,
                        uint64_t *last_used_ms)
{
    const pveh_session *s = pveh__sessions_find(&sm->sessions, client_id);
    if (s == NULL) {
        return PT_ENOTFOUND;
    }
    if (last_sequence != NULL) {
        *last_sequence = s->last_sequence;
    }
    if (last_used_ms != NULL) {
        *last_used_ms = s->last_used_ms;
    }
    return 0;
}
