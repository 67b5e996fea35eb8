/*
 * What the node counts for monitoring (the /metrics endpoint, docs/operations.md "Metrics")
 * and its readiness (/readyz and grpc.health.v1), shared by the files of src/node/.
 *
 * Threads: the loop, the storage writer and the snapshot thread update the atomics below;
 * a scrape reads them from the HTTP server's threads. Everything else a scrape shows comes from
 * the status the loop publishes under status_mu (pnode_status plus pnode__published), so a
 * scrape never waits for the loop and never touches its state.
 *
 * ADDING METRICS. A part of the library with something to expose registers a collect function
 * (pnode__metrics_register): it runs on a scrape thread, writes its families with the
 * pt__prom_* functions (common/metrics.h) and must read only what is safe from any thread
 * (atomics, or a copy it publishes itself). An application uses the public
 * pnode_metrics_add_gauge (platoon/monitor.h), whose values the loop samples.
 */
#ifndef PLATOON_NODE_METRICS_H
#define PLATOON_NODE_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/metrics.h"
#include "platoon/monitor.h"
#include "platoon/raft.h"

/* How a proposal (pnode_submit) ended: the label "result" of platoon_proposals_total. */
enum pnode__proposal_result {
    PNODE__PROPOSAL_APPLIED,    /* committed and applied here */
    PNODE__PROPOSAL_NOT_LEADER, /* refused: this node is not the leader */
    PNODE__PROPOSAL_REFUSED,    /* refused by the core (transfer in progress, too many bytes
                                   in flight, too large) */
    PNODE__PROPOSAL_LOST,       /* outcome unknown: leadership lost or the entry overwritten */
    PNODE__PROPOSAL_TIMEOUT,    /* the caller's deadline passed first */
    PNODE__PROPOSAL_ABORTED,    /* anything else (shutdown, failure of the state machine) */
    PNODE__PROPOSAL_RESULTS
};

typedef void (*pnode__collect_fn)(void *ctx, pt_prom *out);

#define PNODE__MAX_COLLECTORS 8
#define PNODE__MAX_APP_GAUGES 16

/* An application's gauge (pnode_metrics_add_gauge). */
struct pnode__app_gauge {
    char name[96];
    char help[200];
    pnode_gauge_fn fn;
    void *ctx;
    atomic_uint_fast64_t value; /* the loop's latest sample */
};

typedef struct pnode__metrics {
    atomic_uint_fast64_t leader_changes;
    atomic_uint_fast64_t proposals[PNODE__PROPOSAL_RESULTS];
    pt_histogram commit_seconds; /* propose -> applied, on the leader (ns) */
    pt_histogram sync_seconds;   /* one storage write with its sync (ns) */
    pt_histogram sync_entries;   /* log entries in that write */
    atomic_uint_fast64_t sync_failures;
    atomic_uint_fast64_t snapshots_taken;
    atomic_uint_fast64_t snapshots_installed;
    atomic_uint_fast64_t snapshot_bytes_taken;     /* sizes of the snapshots taken, summed */
    atomic_uint_fast64_t snapshot_bytes_installed; /* ...and of those installed */
    atomic_uint_fast64_t snapshot_last_bytes;      /* the newest one, either way */
    pt_histogram snapshot_take_seconds;            /* serialising and storing one (ns) */
    pt_histogram snapshot_install_seconds;         /* restoring the state machine from one (ns) */

    /* Registered collectors and application gauges: appended under mu, read by scrapes under
     * mu; the loop samples the gauges under mu too (a few calls per tick). */
    pthread_mutex_t mu;
    struct {
        pnode__collect_fn fn;
        void *ctx;
    } collectors[PNODE__MAX_COLLECTORS];
    size_t n_collectors;
    struct pnode__app_gauge gauges[PNODE__MAX_APP_GAUGES];
    size_t n_gauges;
} pnode__metrics;

/* What the loop publishes besides pnode_status, under status_mu (see publish_status). */
typedef struct pnode__published {
    bool ready;
    char not_ready[200]; /* why not, one line */
    uint64_t leader_changes_seen;
    /* The commit index known at the previous publication: readiness asks the state machine to
     * have applied it (see pnode__readiness). */
    uint64_t commit_before;
    /* Leader only: each other member's time since it was last heard from (-1: never). */
    size_t n_peers;
    uint64_t peer_id[PRAFT_MAX_MEMBERS];
    int64_t peer_heard_ago_ms[PRAFT_MAX_MEMBERS];
} pnode__published;

typedef struct pnode pnode;

void pnode__metrics_init(pnode__metrics *m);
void pnode__metrics_destroy(pnode__metrics *m);

/* Adds a collect function, run on a scrape thread for every scrape. PT_ENOMEM when full. */
int pnode__metrics_register(pnode *n, pnode__collect_fn fn, void *ctx);

/* Loop thread, at every publication of the status: samples the application gauges. */
void pnode__metrics_sample(pnode *n);

/* Counts a finished proposal, with its latency from proposal to apply when @proposed_ns is
 * not 0 and it was applied. Loop thread. */
void pnode__metrics_proposal(pnode *n, int result, int64_t proposed_ns);

/* Loop thread, while publishing: whether this node is ready (docs/operations.md, "Health"),
 * else why not in @why. @st is the status being published; @commit_before the commit index
 * of the previous publication. */
bool pnode__readiness(pnode *n, const praft_status *st, uint64_t applied, uint64_t commit_before,
                      char *why, size_t cap);

/* Monotonic nanoseconds, for durations. */
int64_t pnode__now_ns(void);

#endif
