/*
 * The client session table that makes mutations exactly-once (thesis §6.3: the state machine
 * remembers, per client, the last sequence it applied and its answer, so that a retried
 * command is answered without being applied twice).
 *
 * Sessions live in a slab of slots linked in least-recently-used order (oldest first), and an
 * open-addressing hash index maps a client id to its slot. Using a session moves it to the end
 * of the list; since log time never goes back, the list is also ordered by last use, so both
 * expiry (too old) and eviction (too many) take sessions from its head in O(1) each. Nothing
 * here depends on addresses or on the hash layout: the order of the list is decided by the
 * order of the commands alone, which is what makes snapshots byte-identical across nodes.
 */
#ifndef PLATOON_VEHICLE_SESSION_H
#define PLATOON_VEHICLE_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "platoon/vehicle.h"

#define PVEH_NIL UINT32_MAX

typedef struct pveh_session {
    uint64_t client_id;
    /* The key of the principal that opened the session (pveh_principal_key): only it may use
     * the session. 0: a session created by a version 1 command or snapshot, before sessions
     * were bound, which anyone may use. */
    uint64_t principal;
    uint64_t last_sequence;
    uint64_t last_used_ms; /* log time of the last command of this client */
    /* What last_sequence asked for (pveh__command_fingerprint), so that a request reusing the
     * sequence with other content is told apart from a retry; 0 = unknown (a session restored
     * from a version 1 snapshot), when any request with that sequence counts as a retry. */
    uint64_t fingerprint;
    pveh_result last;      /* the answer to last_sequence */
    uint32_t prev, next;   /* LRU list, or the free list (next) */
    uint32_t pprev, pnext; /* the LRU list of the principal's own sessions */
} pveh_session;

/* The sessions of one principal: how many, and their LRU list (oldest first). */
typedef struct pveh_principal_rec {
    uint64_t key;
    uint32_t count;
    uint32_t head, tail;
} pveh_principal_rec;

typedef struct pveh_sessions {
    pveh_session *slots;
    uint32_t n_slots; /* slots allocated */
    uint32_t count;   /* sessions in use */
    uint32_t free_head;
    uint32_t head, tail; /* oldest, newest */
    uint32_t *index;     /* hash of client_id -> slot, PVEH_NIL when empty; power of two */
    uint32_t index_cap;
    /* The principals that hold sessions, ascending by key (a bisection finds one; a new
     * principal is rare: one per certificate name). */
    pveh_principal_rec *principals;
    uint32_t n_principals, principals_cap;
    uint32_t max;    /* most sessions kept */
    uint64_t ttl_ms; /* a session unused for longer than this expires */
} pveh_sessions;

void pveh__sessions_init(pveh_sessions *s, uint32_t max, uint64_t ttl_ms);
void pveh__sessions_free(pveh_sessions *s);

/* The session of @client_id, or NULL. Valid until the next change of the table. */
pveh_session *pveh__sessions_find(const pveh_sessions *s, uint64_t client_id);

/* Makes sure that one more session (of a principal not yet known, too) can be added without
 * allocating, so that a command can be applied entirely or not at all. Returns 0 or
 * PT_ENOMEM (nothing changed that matters). */
int pveh__sessions_reserve_one(pveh_sessions *s);

/* Adds a session for @client_id (not in the table) of @principal as the newest, evicting the
 * oldest first when the table is full. Needs a prior successful reserve; never fails then. */
pveh_session *pveh__sessions_add(pveh_sessions *s, uint64_t client_id, uint64_t principal);

/* Removes @sess (closed, or evicted by its own principal's quota). */
void pveh__sessions_remove(pveh_sessions *s, pveh_session *sess);

/* The number of sessions @principal holds, and the least recently used of them (NULL when
 * none). */
uint32_t pveh__sessions_count_of(const pveh_sessions *s, uint64_t principal);
pveh_session *pveh__sessions_oldest_of(const pveh_sessions *s, uint64_t principal);

/* Marks @sess as used at log time @now_ms: it becomes the newest. */
void pveh__sessions_touch(pveh_sessions *s, pveh_session *sess, uint64_t now_ms);

/* Drops every session unused for more than ttl_ms at log time @now_ms. */
void pveh__sessions_expire(pveh_sessions *s, uint64_t now_ms);

#endif
