/*
 * The storage writer: a thread that carries out the durable part of each ready (DESIGN.md,
 * "Persistence contract") so that the loop never waits for a disk.
 *
 * The loop hands over one job at a time (the core produces no new ready before the previous
 * one is advanced). While the job's write and sync are in flight the loop keeps stepping the
 * core, whose new entries accumulate for the next ready: every proposal that arrives during
 * one sync joins the next one (group commit), which is what makes throughput scale with load.
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "node/node_internal.h"

static int run_job(pnode *n, writer_job *job, char *err, size_t err_cap)
{
    int rc = 0;
    pthread_mutex_lock(&n->store_mu);
    if (job->has_chunk) {
        uint64_t next = 0;
        rc = pstore_recv_chunk(n->store, &job->chunk_meta, job->chunk_offset, job->chunk_data,
                               job->chunk_len, &next);
        if (rc != 0) {
            snprintf(err, err_cap, "storing snapshot chunk at offset %llu: %s",
                     (unsigned long long)job->chunk_offset, pstore_last_error(n->store));
            goto out;
        }
    }
    if (job->has_snapshot) {
        rc = pstore_recv_finish(n->store, &job->snapshot);
        if (rc != 0) {
            snprintf(err, err_cap, "verifying received snapshot %llu: %s",
                     (unsigned long long)job->snapshot.index, pstore_last_error(n->store));
            goto out;
        }
        job->batch.install_snapshot = &job->snapshot;
    }
    if (job->batch.install_snapshot != NULL || job->batch.n_entries > 0 ||
        job->batch.hard_state != NULL || job->batch.config != NULL) {
        int64_t began = pnode__now_ns();
        rc = pstore_write(n->store, &job->batch);
        if (rc != 0) {
            snprintf(err, err_cap, "%s", pstore_last_error(n->store));
            atomic_fetch_add_explicit(&n->metrics.sync_failures, 1, memory_order_relaxed);
        } else {
            int64_t took = pnode__now_ns() - began;
            pt__hist_observe(&n->metrics.sync_seconds, took > 0 ? (uint64_t)took : 0);
            pt__hist_observe(&n->metrics.sync_entries, job->batch.n_entries);
        }
    }
out:
    pthread_mutex_unlock(&n->store_mu);
    return rc;
}

static void *writer_main(void *arg)
{
    pthread_setname_np(pthread_self(), "pt-writer"); /* shown by top -H, perf, gdb */
    pnode *n = arg;
    pthread_mutex_lock(&n->writer_mu);
    for (;;) {
        while (!n->writer_has_job && !n->writer_quit) {
            pthread_cond_wait(&n->writer_cv, &n->writer_mu);
        }
        if (!n->writer_has_job && n->writer_quit) {
            break;
        }
        pthread_mutex_unlock(&n->writer_mu);

        char err[sizeof(n->writer_err)] = "";
        int rc = run_job(n, &n->job, err, sizeof(err));
        if (rc == 0 && n->job.n_after > 0) {
            /* raft.h: these may go once the ready's writes are durable, which they now are.
             * Sending them here spares the answer (a follower's acknowledgement, a vote) a
             * wake-up of the loop on its way: the loop sends the next ready's messages only
             * after it has seen this job done, so the order on each lane is kept. */
            for (size_t i = 0; i < n->job.n_after; i++) {
                (void)pnet_transport_send(n->net, &n->job.after[i]);
            }
            n->job.after_sent = true;
        }

        pthread_mutex_lock(&n->writer_mu);
        n->writer_rc = rc;
        memcpy(n->writer_err, err, sizeof(err));
        n->writer_has_job = false;
        n->writer_done = true;
        pnet_mailbox_wake(n->mailbox);
    }
    pthread_mutex_unlock(&n->writer_mu);
    return NULL;
}

int pnode__writer_start(pnode *n)
{
    if (pthread_create(&n->writer_thread, NULL, writer_main, n) != 0) {
        return PT_ENOMEM;
    }
    n->writer_started = true;
    return 0;
}

void pnode__writer_stop(pnode *n)
{
    if (!n->writer_started) {
        return;
    }
    pthread_mutex_lock(&n->writer_mu);
    n->writer_quit = true;
    pthread_cond_signal(&n->writer_cv);
    pthread_mutex_unlock(&n->writer_mu);
    pthread_join(n->writer_thread, NULL);
    n->writer_started = false;
}

void pnode__writer_submit(pnode *n)
{
    pthread_mutex_lock(&n->writer_mu);
    n->writer_done = false;
    n->writer_has_job = true;
    pthread_cond_signal(&n->writer_cv);
    pthread_mutex_unlock(&n->writer_mu);
}

bool pnode__writer_busy(pnode *n)
{
    pthread_mutex_lock(&n->writer_mu);
    bool busy = n->writer_has_job;
    pthread_mutex_unlock(&n->writer_mu);
    return busy;
}

bool pnode__writer_poll(pnode *n, int *rc)
{
    pthread_mutex_lock(&n->writer_mu);
    bool done = n->writer_done;
    if (done) {
        n->writer_done = false;
        *rc = n->writer_rc;
        if (n->writer_rc != 0) {
            PT_ERROR("storage write failed: %s", n->writer_err);
        }
    }
    pthread_mutex_unlock(&n->writer_mu);
    return done;
}
