/*
 * The kv state machine: applying Put and Append exactly once per (client, sequence), and
 * answering Get. Snapshots are in kv_snapshot.c.
 *
 * Every node applies the same commands in the same order and must end in the same state
 * (§5.3, State Machine Safety): nothing here reads a clock, a random number or an address.
 */
#ifndef _GNU_SOURCE /* tdestroy */
#define _GNU_SOURCE
#endif
#include <search.h>
#include <stdlib.h>
#include <string.h>

#include <platoon/error.h>

#include "kv_state.h"

int kv__pair_cmp(const void *a, const void *b)
{
    return strcmp(((const kv_pair *)a)->key, ((const kv_pair *)b)->key);
}

int kv__session_cmp(const void *a, const void *b)
{
    uint64_t x = ((const kv_session *)a)->client_id, y = ((const kv_session *)b)->client_id;
    return x < y ? -1 : x > y;
}

void kv__pair_free(void *p)
{
    kv_pair *pair = p;
    free(pair->key);
    free(pair->value);
    free(pair);
}

void kv__clear(kv_sm *sm)
{
    tdestroy(sm->pairs, kv__pair_free);
    tdestroy(sm->sessions, free);
    sm->pairs = sm->sessions = NULL;
    sm->n_pairs = sm->n_sessions = 0;
}

int kv_sm_new(kv_sm **out)
{
    kv_sm *sm = calloc(1, sizeof(*sm));
    if (sm == NULL) {
        return PT_ENOMEM;
    }
    *out = sm;
    return 0;
}

void kv_sm_free(kv_sm *sm)
{
    if (sm != NULL) {
        kv__clear(sm);
        free(sm);
    }
}

/* The pair of @key (NUL-terminated), or NULL. */
static kv_pair *find_pair(const kv_sm *sm, const char *key)
{
    kv_pair probe = {.key = (char *)key};
    void *node = tfind(&probe, &sm->pairs, kv__pair_cmp);
    return node != NULL ? *(kv_pair **)node : NULL;
}

static kv_session *find_session(const kv_sm *sm, uint64_t client_id)
{
    kv_session probe = {.client_id = client_id};
    void *node = tfind(&probe, &sm->sessions, kv__session_cmp);
    return node != NULL ? *(kv_session **)node : NULL;
}

static char *copy_string(const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/*
 * Carries out a Put or an Append at @index. Either the whole write happens, or (PT_ENOMEM)
 * nothing does: the runtime may then apply the command again, and every node must end in the
 * same state whatever its allocator did.
 */
static int execute(kv_sm *sm, const kv_command *c, uint64_t index, kv_result *r)
{
    char key[KV_KEY_MAX + 1];
    memcpy(key, c->key, c->key_len);
    key[c->key_len] = '\0';
    kv_pair *pair = find_pair(sm, key);

    size_t old_len = c->op == KV_OP_APPEND && pair != NULL ? pair->value_len : 0;
    if (old_len + c->value_len > KV_VALUE_MAX) {
        /* A deterministic refusal, the same on every node: part of the result, not an error. */
        *r = (kv_result){.status = KV_STATUS_TOO_BIG};
        return 0;
    }
    char *value = malloc(old_len + c->value_len + 1);
    if (value == NULL) {
        return PT_ENOMEM;
    }
    if (old_len > 0) {
        memcpy(value, pair->value, old_len);
    }
    memcpy(value + old_len, c->value, c->value_len);
    value[old_len + c->value_len] = '\0';

    if (pair == NULL) {
        /* A new key. tsearch (which allocates a tree node) is the last step that can fail;
         * the tree orders by key alone, so the value can be set after it. */
        pair = calloc(1, sizeof(*pair));
        if (pair != NULL) {
            pair->key = copy_string(key, c->key_len);
        }
        if (pair == NULL || pair->key == NULL || tsearch(pair, &sm->pairs, kv__pair_cmp) == NULL) {
            if (pair != NULL) {
                free(pair->key);
            }
            free(pair);
            free(value);
            return PT_ENOMEM;
        }
        sm->n_pairs++;
    } else {
        free(pair->value);
    }
    pair->value = value;
    pair->value_len = old_len + c->value_len;
    *r = (kv_result){.status = KV_STATUS_OK, .index = index};
    return 0;
}

static int sm_apply(void *ctx, uint64_t index, uint64_t term, const uint8_t *cmd, size_t len,
                    uint8_t **result, size_t *result_len)
{
    kv_sm *sm = ctx;
    if (index <= sm->applied_index) {
        return PT_EINVAL;
    }
    kv_command c;
    int rc = kv_command_decode(cmd, len, &c);
    if (rc != 0) {
        return rc;
    }
    uint8_t *out = malloc(KV_RESULT_LEN);
    if (out == NULL) {
        return PT_ENOMEM;
    }
    kv_result r;
    kv_session *s = find_session(sm, c.client_id);
    if (s != NULL && c.sequence == s->last_sequence) {
        /* A retry of the client's last write (its answer was lost, or it timed out and asked
         * another node): the first answer again, nothing applied. */
        r = s->last;
    } else if (s != NULL && c.sequence < s->last_sequence) {
        /* A clerk sends one write at a time, so it has had an answer for this one already:
         * this is a delayed duplicate, and applying it would undo later writes. */
        r = (kv_result){.status = KV_STATUS_STALE, .last_sequence = s->last_sequence};
    } else {
        bool created = false;
        if (s == NULL) {
            s = calloc(1, sizeof(*s));
            if (s == NULL) {
                free(out);
                return PT_ENOMEM;
            }
            s->client_id = c.client_id;
            if (tsearch(s, &sm->sessions, kv__session_cmp) == NULL) {
                free(s);
                free(out);
                return PT_ENOMEM;
            }
            sm->n_sessions++;
            created = true;
        }
        rc = execute(sm, &c, index, &r);
        if (rc != 0) {
            if (created) { /* leave the state exactly as it was */
                tdelete(s, &sm->sessions, kv__session_cmp);
                sm->n_sessions--;
                free(s);
            }
            free(out);
            return rc;
        }
        s->last_sequence = c.sequence;
        s->last = r;
    }
    sm->applied_index = index;
    sm->applied_term = term;
    kv_result_encode(&r, out);
    *result = out;
    *result_len = KV_RESULT_LEN;
    return 0;
}

/* A new leader's no-op (§5.4.2) and membership changes carry nothing for the map, but the
 * applied index moves on: snapshots and reads must reflect them. (The runtime keeps the
 * membership itself and stores it with each snapshot.) */
static int advance(kv_sm *sm, uint64_t index, uint64_t term)
{
    if (index <= sm->applied_index) {
        return PT_EINVAL;
    }
    sm->applied_index = index;
    sm->applied_term = term;
    return 0;
}

static int sm_applied_noop(void *ctx, uint64_t index, uint64_t term)
{
    return advance(ctx, index, term);
}

static int sm_applied_config(void *ctx, uint64_t index, uint64_t term, const praft_config *config)
{
    (void)config;
    return advance(ctx, index, term);
}

/* A Get: the query is the key. */
static int sm_query(void *ctx, const uint8_t *query, size_t len, uint8_t **result,
                    size_t *result_len)
{
    const kv_sm *sm = ctx;
    if (!kv_key_valid((const char *)query, len)) {
        return PT_EMALFORMED;
    }
    char key[KV_KEY_MAX + 1];
    memcpy(key, query, len);
    key[len] = '\0';
    const kv_pair *pair = find_pair(sm, key);
    kv_answer a = {.found = pair != NULL, .applied_index = sm->applied_index};
    if (pair != NULL) {
        a.value = pair->value;
        a.value_len = pair->value_len;
    }
    return kv_answer_encode(&a, result, result_len);
}

static uint64_t sm_applied_index(void *ctx)
{
    return ((const kv_sm *)ctx)->applied_index;
}

static const pnode_sm_ops kv_sm_ops = {
    .apply = sm_apply,
    .applied_noop = sm_applied_noop,
    .applied_config = sm_applied_config,
    .query = sm_query,
    .snapshot_begin = kv__snapshot_begin,
    .snapshot_write = kv__snapshot_write,
    .snapshot_end = kv__snapshot_end,
    .restore = kv__restore,
    .applied_index = sm_applied_index,
};

void kv_sm_interface(kv_sm *sm, pnode_sm *out)
{
    out->ops = &kv_sm_ops;
    out->ctx = sm;
}
