/*
 * What the state machine holds, shared by kv_sm.c (applying, querying) and kv_snapshot.c.
 *
 * Both maps are binary search trees (POSIX tsearch): their in-order walk visits keys and
 * client ids sorted, so a snapshot's bytes depend on the state alone, not on the order in
 * which it was built. Every node that reached the same index writes the same snapshot.
 */
#ifndef KV_STATE_H
#define KV_STATE_H

#include "kv_codec.h"
#include "kv_sm.h"

typedef struct kv_pair {
    char *key; /* NUL-terminated (keys hold no NUL) */
    char *value;
    size_t value_len;
} kv_pair;

/* thesis §6.3: per client, its last sequence and the answer it got, so that a retry is
 * answered without being applied again. */
typedef struct kv_session {
    uint64_t client_id;
    uint64_t last_sequence;
    kv_result last;
} kv_session;

struct kv_sm {
    void *pairs; /* tsearch tree of kv_pair, by key */
    size_t n_pairs;
    void *sessions; /* tsearch tree of kv_session, by client id */
    size_t n_sessions;
    uint64_t applied_index; /* the last log index applied (or reported as no-op/config) */
    uint64_t applied_term;
};

int kv__pair_cmp(const void *a, const void *b);
int kv__session_cmp(const void *a, const void *b);
void kv__pair_free(void *p);

/* Empties @sm's maps (the indexes stay). */
void kv__clear(kv_sm *sm);

/* The snapshot functions of the pnode_sm interface (kv_snapshot.c). */
int kv__snapshot_begin(void *ctx, void **frozen, uint64_t *index, uint64_t *term);
int kv__snapshot_write(void *frozen, pnode_sm_write_fn write, void *write_ctx);
void kv__snapshot_end(void *frozen);
int kv__restore(void *ctx, pnode_sm_read_fn read, void *read_ctx);

#endif
