/*
 * Test fixture for the Raft core: a storage over arrays that implements praft_storage and
 * carries out a ready's writes, and a cluster of cores whose messages the test delivers by
 * hand (or through cl_settle), with partitions and message loss.
 */
#ifndef PLATOON_TESTS_RAFT_HARNESS_H
#define PLATOON_TESTS_RAFT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platoon/raft.h"

/* ---- storage ------------------------------------------------------------------------------ */

typedef struct mstore {
    praft_hard_state hs;
    praft_snapshot_meta snap;
    uint8_t *snap_data; /* the complete snapshot */
    size_t snap_len;
    praft_snapshot_meta rx_meta; /* a snapshot being received */
    uint8_t *rx_data;
    size_t rx_len;
    praft_entry *ents; /* indices first .. first + n - 1 */
    size_t n, cap;
    uint64_t first;
    int fail_term; /* when non-zero, term() returns it once */
} mstore;

void ms_init(mstore *s);
void ms_free(mstore *s);
praft_storage ms_storage(mstore *s);
/* Writes a ready's snapshot, chunk, entries and hard state, as the contract orders. */
void ms_write(mstore *s, const praft_ready *rd);
/* Replaces the stored snapshot (application side) and drops entries <= index. */
void ms_set_snapshot(mstore *s, const praft_snapshot_meta *meta, const void *data, size_t len);
void ms_compact(mstore *s, uint64_t index);
uint64_t ms_last(const mstore *s);

/* ---- cluster ------------------------------------------------------------------------------ */

#define CL_MAX  8
#define CL_MAXQ 100000

typedef struct tnode {
    uint64_t id;
    bool up;
    mstore st;
    praft_options o;
    praft_node *n;
    uint64_t applied;   /* last index applied */
    uint64_t app_sum;   /* a digest of applied data, to compare state machines */
    uint64_t n_applied; /* normal entries applied */
    praft_read_state reads[256];
    size_t n_reads;
} tnode;

typedef struct qmsg {
    praft_msg m;
} qmsg;

typedef struct cluster {
    tnode t[CL_MAX + 1]; /* by id, 1..n */
    int n;
    qmsg *q;
    size_t nq;
    bool cut[CL_MAX + 1][CL_MAX + 1]; /* cut[a][b]: a's messages to b are lost */
    uint64_t delivered;
    int (*filter)(struct cluster *c, const praft_msg *m); /* 0: drop */
} cluster;

typedef void (*cl_opts_fn)(praft_options *o);

/* A cluster of @voters voters (ids 1..voters) and @learners learners after them, all
 * bootstrapped with the same configuration; @fn (may be NULL) adjusts each node's options. */
void cl_init(cluster *c, int voters, int learners, cl_opts_fn fn);
/* Adds a blank node @id (no log, no configuration), as a new server would start. */
void cl_add_blank(cluster *c, uint64_t id, cl_opts_fn fn);
void cl_free(cluster *c);
/* Carries out one ready of node @id, if it has one. Returns true if it did. */
bool cl_ready(cluster *c, uint64_t id);
/* Readies and deliveries until quiet (bounded). Returns the number of rounds. */
int cl_settle(cluster *c);
void cl_deliver_all(cluster *c);
void cl_tick(cluster *c, uint64_t id);
void cl_tick_all(cluster *c);
/* Ticks @id alone until it campaigns, then settles; asserts it became leader. */
void cl_elect(cluster *c, uint64_t id);
uint64_t cl_leader(cluster *c);
void cl_isolate(cluster *c, uint64_t id);
void cl_heal(cluster *c);
/* Crashes node @id (losing un-persisted state) and restarts it from its storage. */
void cl_crash(cluster *c, uint64_t id);
void cl_restart(cluster *c, uint64_t id);
void cl_propose(cluster *c, uint64_t id, const char *text);
praft_status *cl_status(cluster *c, uint64_t id); /* static buffer */
void cl_clear_queue(cluster *c);
/* The first queued message of @type from @from to @to (0: any), or NULL; and their count. */
praft_msg *cl_find(cluster *c, uint32_t type, uint64_t from, uint64_t to);
size_t cl_count(cluster *c, uint32_t type, uint64_t from, uint64_t to);
/* Steps @m into node @to directly (m->to is set to @to). */
int cl_step(cluster *c, uint64_t to, const praft_msg *m);
/* Deep copy and free of a message (for queues). */
void msg_copy(praft_msg *dst, const praft_msg *src);
void msg_free(praft_msg *m);

#endif
