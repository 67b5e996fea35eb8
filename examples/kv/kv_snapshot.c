/*
 * Snapshots of the kv state machine (§7): the whole map and every client session, so that a
 * node restarted from a snapshot, or brought up to date by one (InstallSnapshot), still
 * recognises retries of writes that were applied before the snapshot.
 *
 * Format (little-endian):
 *   "PKVS" | u32 version (1) | u64 applied index | u64 applied term
 *   u64 pairs    | per pair, sorted by key:      u32 key length, key, u32 value length, value
 *   u64 sessions | per session, by client id:    u64 client id, u64 last sequence,
 *                                                u8 status, u64 index, u64 last sequence seen
 *   u64 FNV-1a checksum of everything before it
 *
 * The frozen copy handed to the runtime is the serialised snapshot itself, made on the loop
 * thread: the runtime writes it to disk on its snapshot thread while the loop goes on applying,
 * and nothing in it is shared with the live state. Serialising costs one pass over the state,
 * which is fine for an example; a large state would want a copy-on-write structure instead, so
 * that freezing is O(1) and the pass happens off the loop.
 */
#ifndef _GNU_SOURCE /* twalk_r */
#define _GNU_SOURCE
#endif
#include <search.h>
#include <stdlib.h>
#include <string.h>

#include <platoon/error.h>

#include "kv_state.h"

#define MAGIC       "PKVS"
#define VERSION     1
#define SESSION_LEN (8 + 8 + 1 + 8 + 8)

typedef struct frozen {
    uint8_t *buf;
    size_t len;
} frozen;

static uint64_t fnv1a(const uint8_t *p, size_t len)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (size_t i = 0; i < len; i++) {
        h = (h ^ p[i]) * UINT64_C(1099511628211);
    }
    return h;
}

/* ----- writing: one walk to size the buffer, one to fill it ----- */

typedef struct walk {
    uint8_t *p;  /* NULL while sizing */
    size_t size; /* bytes counted or written */
} walk;

static void put(walk *w, const void *data, size_t len)
{
    if (w->p != NULL) {
        memcpy(w->p + w->size, data, len);
    }
    w->size += len;
}

static void put_u32(walk *w, uint32_t v)
{
    uint8_t b[4];
    kv_put_u32(b, v);
    put(w, b, 4);
}

static void put_u64(walk *w, uint64_t v)
{
    uint8_t b[8];
    kv_put_u64(b, v);
    put(w, b, 8);
}

/* twalk_r visits an inner node three times; in-order is its second visit (postorder). */
static bool in_order(VISIT which)
{
    return which == postorder || which == leaf;
}

static void put_pair(const void *node, VISIT which, void *closure)
{
    if (in_order(which)) {
        const kv_pair *pair = *(const kv_pair *const *)node;
        size_t key_len = strlen(pair->key);
        put_u32(closure, (uint32_t)key_len);
        put(closure, pair->key, key_len);
        put_u32(closure, (uint32_t)pair->value_len);
        put(closure, pair->value, pair->value_len);
    }
}

static void put_session(const void *node, VISIT which, void *closure)
{
    if (in_order(which)) {
        const kv_session *s = *(const kv_session *const *)node;
        put_u64(closure, s->client_id);
        put_u64(closure, s->last_sequence);
        put(closure, &s->last.status, 1);
        put_u64(closure, s->last.index);
        put_u64(closure, s->last.last_sequence);
    }
}

static void put_state(const kv_sm *sm, walk *w)
{
    put(w, MAGIC, 4);
    put_u32(w, VERSION);
    put_u64(w, sm->applied_index);
    put_u64(w, sm->applied_term);
    put_u64(w, sm->n_pairs);
    twalk_r(sm->pairs, put_pair, w);
    put_u64(w, sm->n_sessions);
    twalk_r(sm->sessions, put_session, w);
}

int kv__snapshot_begin(void *ctx, void **out, uint64_t *index, uint64_t *term)
{
    const kv_sm *sm = ctx;
    walk sizing = {0};
    put_state(sm, &sizing);
    frozen *f = malloc(sizeof(*f));
    uint8_t *buf = malloc(sizing.size + 8);
    if (f == NULL || buf == NULL) {
        free(f);
        free(buf);
        return PT_ENOMEM;
    }
    walk w = {.p = buf};
    put_state(sm, &w);
    kv_put_u64(buf + w.size, fnv1a(buf, w.size));
    f->buf = buf;
    f->len = w.size + 8;
    *out = f;
    *index = sm->applied_index;
    *term = sm->applied_term;
    return 0;
}

int kv__snapshot_write(void *frozen_copy, pnode_sm_write_fn write, void *write_ctx)
{
    const frozen *f = frozen_copy;
    return write(write_ctx, f->buf, f->len);
}

void kv__snapshot_end(void *frozen_copy)
{
    frozen *f = frozen_copy;
    if (f != NULL) {
        free(f->buf);
        free(f);
    }
}

/* ----- reading: the whole stream, checked, into a new state; swapped in only if valid ----- */

static int read_all(pnode_sm_read_fn read, void *read_ctx, uint8_t **out, size_t *out_len)
{
    size_t cap = 64 << 10, len = 0;
    uint8_t *buf = malloc(cap);
    if (buf == NULL) {
        return PT_ENOMEM;
    }
    for (;;) {
        if (len == cap) {
            uint8_t *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                free(buf);
                return PT_ENOMEM;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t n = 0;
        int rc = read(read_ctx, buf + len, cap - len, &n);
        if (rc != 0) {
            free(buf);
            return rc;
        }
        if (n == 0) {
            break;
        }
        len += n;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

typedef struct cursor {
    const uint8_t *p;
    size_t left;
} cursor;

static bool take(cursor *c, size_t n, const uint8_t **out)
{
    if (c->left < n) {
        return false;
    }
    *out = c->p;
    c->p += n;
    c->left -= n;
    return true;
}

static bool take_u32(cursor *c, uint32_t *v)
{
    const uint8_t *p;
    return take(c, 4, &p) ? (*v = kv_get_u32(p), true) : false;
}

static bool take_u64(cursor *c, uint64_t *v)
{
    const uint8_t *p;
    return take(c, 8, &p) ? (*v = kv_get_u64(p), true) : false;
}

/* Adds one pair, read at @c, to @into. Keys must come strictly sorted: that also proves
 * there are no duplicates. */
static int load_pair(cursor *c, kv_sm *into, const char **prev_key)
{
    uint32_t key_len, value_len;
    const uint8_t *key, *value;
    if (!take_u32(c, &key_len) || !take(c, key_len, &key) || !take_u32(c, &value_len) ||
        !take(c, value_len, &value) || !kv_key_valid((const char *)key, key_len) ||
        value_len > KV_VALUE_MAX) {
        return PT_ECORRUPT;
    }
    kv_pair *pair = calloc(1, sizeof(*pair));
    if (pair == NULL) {
        return PT_ENOMEM;
    }
    pair->key = malloc(key_len + 1);
    pair->value = malloc(value_len + 1);
    if (pair->key == NULL || pair->value == NULL) {
        kv__pair_free(pair);
        return PT_ENOMEM;
    }
    memcpy(pair->key, key, key_len);
    pair->key[key_len] = '\0';
    memcpy(pair->value, value, value_len);
    pair->value[value_len] = '\0';
    pair->value_len = value_len;
    if (*prev_key != NULL && strcmp(*prev_key, pair->key) >= 0) {
        kv__pair_free(pair);
        return PT_ECORRUPT;
    }
    if (tsearch(pair, &into->pairs, kv__pair_cmp) == NULL) {
        kv__pair_free(pair);
        return PT_ENOMEM;
    }
    into->n_pairs++;
    *prev_key = pair->key;
    return 0;
}

static int load_session(cursor *c, kv_sm *into, uint64_t *prev_id)
{
    kv_session *s = calloc(1, sizeof(*s));
    const uint8_t *status;
    if (s == NULL) {
        return PT_ENOMEM;
    }
    if (!take_u64(c, &s->client_id) || !take_u64(c, &s->last_sequence) || !take(c, 1, &status) ||
        !take_u64(c, &s->last.index) || !take_u64(c, &s->last.last_sequence) ||
        *status > KV_STATUS_TOO_BIG || s->client_id <= *prev_id) {
        free(s);
        return PT_ECORRUPT;
    }
    s->last.status = *status;
    if (tsearch(s, &into->sessions, kv__session_cmp) == NULL) {
        free(s);
        return PT_ENOMEM;
    }
    into->n_sessions++;
    *prev_id = s->client_id;
    return 0;
}

static int parse(const uint8_t *buf, size_t len, kv_sm *into)
{
    if (len < 8 + 4 + 4 || kv_get_u64(buf + len - 8) != fnv1a(buf, len - 8)) {
        return PT_ECORRUPT;
    }
    cursor c = {buf, len - 8};
    const uint8_t *magic;
    uint32_t version;
    if (!take(&c, 4, &magic) || memcmp(magic, MAGIC, 4) != 0 || !take_u32(&c, &version)) {
        return PT_ECORRUPT;
    }
    if (version != VERSION) {
        return PT_EVERSION;
    }
    uint64_t n;
    if (!take_u64(&c, &into->applied_index) || !take_u64(&c, &into->applied_term) ||
        !take_u64(&c, &n)) {
        return PT_ECORRUPT;
    }
    const char *prev_key = NULL;
    for (uint64_t i = 0; i < n; i++) {
        int rc = load_pair(&c, into, &prev_key);
        if (rc != 0) {
            return rc;
        }
    }
    if (!take_u64(&c, &n)) {
        return PT_ECORRUPT;
    }
    uint64_t prev_id = 0; /* client ids are never 0 */
    for (uint64_t i = 0; i < n; i++) {
        int rc = load_session(&c, into, &prev_id);
        if (rc != 0) {
            return rc;
        }
    }
    return c.left == 0 ? 0 : PT_ECORRUPT;
}

int kv__restore(void *ctx, pnode_sm_read_fn read, void *read_ctx)
{
    kv_sm *sm = ctx;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = read_all(read, read_ctx, &buf, &len);
    if (rc != 0) {
        return rc;
    }
    kv_sm fresh = {0};
    rc = parse(buf, len, &fresh);
    free(buf);
    if (rc != 0) {
        kv__clear(&fresh); /* the state in use is untouched */
        return rc;
    }
    kv__clear(sm);
    *sm = fresh;
    return 0;
}
