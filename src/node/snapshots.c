/*
 * Snapshots and compaction (§7): every snapshot_every applied entries the state machine is
 * frozen on the loop thread (a cheap copy), serialised and written on a background thread
 * (users of other Raft libraries report write stalls when this happens on the hot path), and
 * once the file is durable the core learns of it and the log's prefix is dropped, keeping
 * snapshot_keep entries for followers that are only slightly behind.
 *
 * Restoring: at start-up from the newest local snapshot, and when the core hands over a
 * snapshot received from the leader (InstallSnapshot), once it is verified and installed.
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "node/node_internal.h"

static int write_to_store(void *ctx, const void *data, size_t len)
{
    /* The snapshot writer touches only its own temporary file, so serialising does not hold
     * the store lock: the loop keeps reading the log meanwhile. */
    return pstore_snap_write(ctx, data, len);
}

static void *snapshot_main(void *arg)
{
    pthread_setname_np(pthread_self(), "pt-snapshot"); /* shown by top -H, perf, gdb */
    pnode *n = arg;
    const pnode_sm *sm = &n->opts.sm;
    pstore_snap_writer *w = NULL;
    int64_t began = pnode__now_ns();

    pthread_mutex_lock(&n->store_mu);
    int rc = pstore_snap_begin(n->store, n->snap_index, n->snap_term, &n->snap_config, &w);
    if (rc != 0) {
        PT_WARN("snapshot at %llu: %s", (unsigned long long)n->snap_index,
                pstore_last_error(n->store));
    }
    pthread_mutex_unlock(&n->store_mu);

    if (rc == 0) {
        rc = sm->ops->snapshot_write(n->snap_frozen, write_to_store, w);
        pthread_mutex_lock(&n->store_mu);
        if (rc == 0) {
            rc = pstore_snap_finish(w, &n->snap_meta);
            if (rc != 0) {
                PT_WARN("snapshot at %llu: %s", (unsigned long long)n->snap_index,
                        pstore_last_error(n->store));
            }
        } else {
            pstore_snap_abort(w);
            PT_WARN("snapshot at %llu: serialising failed: %s", (unsigned long long)n->snap_index,
                    pt_strerror(rc));
        }
        pthread_mutex_unlock(&n->store_mu);
    }
    if (rc == 0) {
        int64_t took = pnode__now_ns() - began;
        pt__hist_observe(&n->metrics.snapshot_take_seconds, took > 0 ? (uint64_t)took : 0);
    }
    n->snap_rc = rc;
    atomic_store(&n->snap_done, true);
    pnet_mailbox_wake(n->mailbox);
    return NULL;
}

void pnode__maybe_snapshot(pnode *n, bool forced)
{
    const pnode_sm *sm = &n->opts.sm;
    /* A follower applies committed entries while its own write of them may still be in
     * flight (they are durable on a majority). A snapshot must not get ahead of this node's
     * durable log: after a crash the store would hold a snapshot beyond its log's end. */
    if (n->snap_running || n->sm_failed || (n->ready_out && n->ready_needs_write)) {
        return;
    }
    uint64_t applied = sm->ops->applied_index(sm->ctx);
    if (applied == 0 || applied <= n->last_snapshot_index) {
        return;
    }
    if (!forced && (n->opts.snapshot_every == 0 ||
                    applied - n->last_snapshot_index < n->opts.snapshot_every)) {
        return;
    }
    void *frozen = NULL;
    uint64_t index = 0, term = 0;
    int rc = sm->ops->snapshot_begin(sm->ctx, &frozen, &index, &term);
    if (rc != 0) {
        PT_WARN("cannot start a snapshot: %s", pt_strerror(rc));
        return;
    }
    n->snap_frozen = frozen;
    n->snap_index = index;
    n->snap_term = term;
    /* The configuration in force at the snapshot's index: the last one applied. */
    n->snap_config = n->applied_config;
    atomic_store(&n->snap_done, false);
    if (pthread_create(&n->snap_thread, NULL, snapshot_main, n) != 0) {
        sm->ops->snapshot_end(frozen);
        n->snap_frozen = NULL;
        return;
    }
    n->snap_running = true;
}

void pnode__snapshot_join(pnode *n)
{
    if (n->snap_running) {
        pthread_join(n->snap_thread, NULL);
        n->snap_running = false;
        n->opts.sm.ops->snapshot_end(n->snap_frozen);
        n->snap_frozen = NULL;
    }
}

void pnode__snapshot_poll(pnode *n)
{
    if (!n->snap_running || !atomic_load(&n->snap_done)) {
        return;
    }
    pnode__snapshot_join(n);
    if (n->snap_rc != 0) {
        return;
    }
    int rc = praft_snapshot_taken(n->raft, &n->snap_meta);
    if (rc != 0) {
        PT_WARN("core refused snapshot %llu: %s", (unsigned long long)n->snap_meta.index,
                pt_strerror(rc));
        return;
    }
    n->last_snapshot_index = n->snap_meta.index;
    atomic_fetch_add_explicit(&n->metrics.snapshots_taken, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n->metrics.snapshot_bytes_taken, n->snap_meta.size,
                              memory_order_relaxed);
    atomic_store_explicit(&n->metrics.snapshot_last_bytes, n->snap_meta.size, memory_order_relaxed);
    PT_INFO("snapshot at index %llu (term %llu, %llu bytes)",
            (unsigned long long)n->snap_meta.index, (unsigned long long)n->snap_meta.term,
            (unsigned long long)n->snap_meta.size);
    if (n->snap_meta.index > n->opts.snapshot_keep) {
        uint64_t upto = n->snap_meta.index - n->opts.snapshot_keep;
        pthread_mutex_lock(&n->store_mu);
        rc = pstore_purge(n->store, upto);
        if (rc != 0) {
            PT_WARN("compacting the log up to %llu: %s", (unsigned long long)upto,
                    pstore_last_error(n->store));
        }
        pthread_mutex_unlock(&n->store_mu);
    }
    pnode__admin_progress(n);
}

static int read_from_store(void *ctx, void *buf, size_t cap, size_t *n)
{
    return pstore_snap_reader_read(ctx, buf, cap, n);
}

int pnode__restore_from(pnode *n, const praft_snapshot_meta *meta, bool installed)
{
    const pnode_sm *sm = &n->opts.sm;
    pstore_snap_reader *r = NULL;
    praft_config *config = malloc(sizeof(*config));
    if (config == NULL) {
        return PT_ENOMEM;
    }
    int64_t began = pnode__now_ns();
    pthread_mutex_lock(&n->store_mu);
    int rc = pstore_snap_open(n->store, meta, config, &r);
    if (rc == 0) {
        rc = sm->ops->restore(sm->ctx, read_from_store, r);
        pstore_snap_reader_close(r);
    }
    if (rc != 0) {
        PT_ERROR("restoring snapshot %llu: %s (%s)", (unsigned long long)meta->index,
                 pt_strerror(rc), pstore_last_error(n->store));
    }
    pthread_mutex_unlock(&n->store_mu);
    if (rc == 0) {
        n->applied_config = *config;
        if (meta->index > n->last_snapshot_index) {
            n->last_snapshot_index = meta->index;
        }
        if (installed) {
            int64_t took = pnode__now_ns() - began;
            pnode__metrics *m = &n->metrics;
            pt__hist_observe(&m->snapshot_install_seconds, took > 0 ? (uint64_t)took : 0);
            atomic_fetch_add_explicit(&m->snapshots_installed, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&m->snapshot_bytes_installed, meta->size,
                                      memory_order_relaxed);
            atomic_store_explicit(&m->snapshot_last_bytes, meta->size, memory_order_relaxed);
            PT_INFO("state restored from snapshot %llu (term %llu) sent by the leader",
                    (unsigned long long)meta->index, (unsigned long long)meta->term);
        } else {
            PT_INFO("state loaded from this node's snapshot %llu (term %llu); the log after it "
                    "is replayed",
                    (unsigned long long)meta->index, (unsigned long long)meta->term);
        }
    }
    free(config);
    return rc;
}
