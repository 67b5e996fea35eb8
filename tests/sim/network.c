/*
 * The simulated network: every message is deep-copied when sent (the core's ready memory is
 * only valid until praft_advance), then lost, delayed, duplicated or reordered according to the
 * current faults, and dropped on blocked links (partitions, symmetric or one-way).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "platoon/error.h"
#include "sim/sim.h"

void psim_msg_free(psim_msg *m)
{
    if (m == NULL) {
        return;
    }
    if (m->shares > 0) {
        m->shares--;
        return;
    }
    for (size_t i = 0; i < m->m.n_entries; i++) {
        free(m->m.entries[i].data);
    }
    free(m->m.entries);
    free(m->m.data);
    free(m);
}

static psim_msg *msg_copy(const praft_msg *src, uint64_t sent_at)
{
    psim_msg *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    m->sent_at = sent_at;
    m->m = *src;
    m->m.entries = NULL;
    m->m.n_entries = 0;
    m->m.data = NULL;
    m->m.len = 0;
    m->m.snapshot = NULL;
    if (src->snapshot != NULL) {
        m->meta = *src->snapshot;
        m->m.snapshot = &m->meta;
    }
    if (src->n_entries > 0) {
        m->m.entries = calloc(src->n_entries, sizeof(praft_entry));
        if (m->m.entries == NULL) {
            goto fail;
        }
        for (size_t i = 0; i < src->n_entries; i++) {
            m->m.entries[i] = src->entries[i];
            m->m.entries[i].data = NULL;
            m->m.n_entries = i + 1;
            if (src->entries[i].len > 0) {
                m->m.entries[i].data = malloc(src->entries[i].len);
                if (m->m.entries[i].data == NULL) {
                    goto fail;
                }
                memcpy(m->m.entries[i].data, src->entries[i].data, src->entries[i].len);
            }
        }
    }
    if (src->len > 0) {
        m->m.data = malloc(src->len);
        if (m->m.data == NULL) {
            goto fail;
        }
        memcpy(m->m.data, src->data, src->len);
        m->m.len = src->len;
    }
    return m;
fail:
    psim_msg_free(m);
    return NULL;
}

void psim_payload_free(int type, void *payload)
{
    if (type == PSIM_EV_DELIVER) {
        psim_msg_free(payload);
    } else {
        free(payload);
    }
}

int psim_slot_of(psim_world *w, uint64_t id)
{
    for (int s = 0; s < w->n_slots; s++) {
        if (w->hosts[s].exists && w->hosts[s].id == id) {
            return s;
        }
    }
    return -1;
}

static uint64_t link_delay(psim_world *w, int from, int to)
{
    uint64_t d = psim_rng_range(&w->rng_net, w->net.delay_min, w->net.delay_max);
    if (w->hosts[to].slow || w->hosts[from].slow) {
        d += psim_rng_range(&w->rng_net, 0, 3 * PSIM_TICK);
    }
    uint64_t at = w->now + d;
    /* Without the reorder fault a link is FIFO, as a TCP connection is. */
    if (!w->net.reorder && at < w->net.last_arrival[from][to]) {
        at = w->net.last_arrival[from][to];
    }
    if (at > w->net.last_arrival[from][to]) {
        w->net.last_arrival[from][to] = at;
    }
    return at - w->now;
}

/* Records the chunks of the snapshot transfer on a link; once its last chunk leaves, the
 * replay fault may deliver the whole transfer again, in order, much later: a stale transfer
 * that the receiver must recognise as older than what it has (§7). */
static void record_snapshot(psim_world *w, int from, int to, const praft_msg *m)
{
    psim_msg **rec = w->net.snap_rec[from][to];
    int *n = &w->net.n_snap_rec[from][to];
    if (m->offset == 0 || (*n > 0 && (rec[0]->meta.index != m->snapshot->index ||
                                      rec[0]->meta.term != m->snapshot->term))) {
        for (int i = 0; i < *n; i++) {
            psim_msg_free(rec[i]);
        }
        *n = 0;
    }
    if (*n >= 16 || (*n == 0 && m->offset != 0)) {
        return;
    }
    if ((rec[*n] = msg_copy(m, w->now)) == NULL) {
        psim_fail_internal(w, PT_ENOMEM, "recording a snapshot transfer");
        return;
    }
    (*n)++;
    if (!m->done || w->net.replay_permille == 0 ||
        !psim_rng_chance(&w->rng_net, 4 * w->net.replay_permille)) {
        return;
    }
    uint64_t at = psim_rng_range(&w->rng_net, 2 * PSIM_TICK, 60 * PSIM_TICK);
    psim_trace(w, "replay %" PRIu64 "->%" PRIu64 " snapshot i%" PRIu64 " (%d chunks) +%" PRIu64,
               m->from, m->to, m->snapshot->index, *n, at);
    for (int i = 0; i < *n; i++) {
        psim_msg *copy = msg_copy(&rec[i]->m, rec[i]->sent_at);
        if (copy == NULL) {
            psim_fail_internal(w, PT_ENOMEM, "replaying a snapshot transfer");
            return;
        }
        /* Spaced so that each chunk finds the previous one stored. */
        if (psim_schedule(w, at + (uint64_t)i * 60, PSIM_EV_DELIVER, to, 0, copy) != 0) {
            return;
        }
        w->net.replayed++;
    }
}

bool psim_net_replay_snapshot(psim_world *w, int from, int to, uint64_t at)
{
    psim_msg **rec = w->net.snap_rec[from][to];
    int n = w->net.n_snap_rec[from][to];
    if (n == 0 || !rec[n - 1]->m.done) {
        return false;
    }
    psim_trace(w,
               "replay %" PRIu64 "->%" PRIu64 " snapshot i%" PRIu64 " (%d chunks, stale) +%" PRIu64,
               rec[0]->m.from, rec[0]->m.to, rec[0]->meta.index, n, at);
    for (int i = 0; i < n; i++) {
        psim_msg *copy = msg_copy(&rec[i]->m, rec[i]->sent_at);
        if (copy == NULL) {
            psim_fail_internal(w, PT_ENOMEM, "replaying a snapshot transfer");
            return false;
        }
        if (psim_schedule(w, at + (uint64_t)i * 60, PSIM_EV_DELIVER, to, 0, copy) != 0) {
            return false;
        }
        w->net.replayed++;
    }
    return true;
}

void psim_net_free(psim_world *w)
{
    for (int a = 0; a < PSIM_MAX_NODES; a++) {
        for (int b = 0; b < PSIM_MAX_NODES; b++) {
            for (int i = 0; i < w->net.n_snap_rec[a][b]; i++) {
                psim_msg_free(w->net.snap_rec[a][b][i]);
            }
            w->net.n_snap_rec[a][b] = 0;
            for (int k = 0; k < 2; k++) {
                psim_msg_free(w->net.resp_rec[a][b][k]);
                w->net.resp_rec[a][b][k] = NULL;
            }
            for (int k = 0; k < PSIM_APP_REC; k++) {
                psim_msg_free(w->net.app_rec[a][b][k]);
                w->net.app_rec[a][b][k] = NULL;
            }
            w->net.app_next[a][b] = 0;
        }
    }
}

void psim_net_replay_answers_to(psim_world *w, int slot, uint64_t ticks)
{
    for (int s = 0; s < w->n_slots; s++) {
        for (int k = 0; k < 2; k++) {
            psim_msg *rec = w->net.resp_rec[s][slot][k];
            if (s == slot || rec == NULL) {
                continue;
            }
            psim_msg *copy = msg_copy(&rec->m, rec->sent_at);
            if (copy == NULL) {
                psim_fail_internal(w, PT_ENOMEM, "replaying an answer");
                return;
            }
            uint64_t at = psim_rng_range(&w->rng_net, 1, ticks * PSIM_TICK);
            psim_trace(w, "replay %" PRIu64 "->%" PRIu64 " %s t%" PRIu64 " +%" PRIu64, rec->m.from,
                       rec->m.to, praft_msg_type_name(rec->m.type), rec->m.term, at);
            if (psim_schedule(w, at, PSIM_EV_DELIVER, slot, 0, copy) != 0) {
                return;
            }
            w->net.replayed++;
        }
    }
}

void psim_net_replay_appends_to(psim_world *w, int slot, uint64_t within, uint64_t commit_below)
{
    if (within == 0) {
        return;
    }
    /* One arrival time for the whole burst: events at the same time keep their order. */
    uint64_t at = psim_rng_range(&w->rng_net, 0, within - 1);
    for (int s = 0; s < w->n_slots; s++) {
        for (int k = 0; k < PSIM_APP_REC; k++) {
            psim_msg *rec = w->net.app_rec[s][slot][(w->net.app_next[s][slot] + k) % PSIM_APP_REC];
            if (s == slot || rec == NULL || rec->m.commit >= commit_below) {
                continue;
            }
            psim_msg *copy = msg_copy(&rec->m, rec->sent_at);
            if (copy == NULL) {
                psim_fail_internal(w, PT_ENOMEM, "replaying an append");
                return;
            }
            psim_trace(
                w,
                "replay %" PRIu64 "->%" PRIu64 " APPEND t%" PRIu64 " i%" PRIu64 " n%zu +%" PRIu64,
                rec->m.from, rec->m.to, rec->m.term, rec->m.prev_index, rec->m.n_entries, at);
            if (psim_schedule(w, at, PSIM_EV_DELIVER, slot, 0, copy) != 0) {
                return;
            }
            w->net.replayed++;
        }
    }
}

void psim_net_send(psim_world *w, int from, const praft_msg *m)
{
    int to = psim_slot_of(w, m->to);
    w->net.sent++;
    psim_host_check_send(w, from, m);
    if (to >= 0 && (m->type == PRAFT_MSG_HEARTBEAT_RESP || m->type == PRAFT_MSG_APPEND_RESP)) {
        psim_msg **rec = &w->net.resp_rec[from][to][m->type == PRAFT_MSG_APPEND_RESP];
        psim_msg_free(*rec);
        *rec = msg_copy(m, w->now); /* NULL on no memory: nothing to replay then */
    }
    psim_msg **app_rec = NULL;
    if (to >= 0 && m->type == PRAFT_MSG_APPEND && m->n_entries > 0 &&
        (w->opt.faults & (PSIM_F_REPLAY | PSIM_F_REORDER))) {
        int *next = &w->net.app_next[from][to];
        app_rec = &w->net.app_rec[from][to][*next];
        psim_msg_free(*app_rec);
        *app_rec = NULL;
        *next = (*next + 1) % PSIM_APP_REC;
    }
    const char *name = praft_msg_type_name(m->type);
    if (to < 0 || w->net.blocked[from][to] || psim_rng_chance(&w->rng_net, w->net.loss_permille)) {
        w->net.dropped++;
        psim_trace(w, "drop %" PRIu64 "->%" PRIu64 " %s t%" PRIu64, m->from, m->to, name, m->term);
        if (app_rec != NULL) {
            *app_rec = msg_copy(m, w->now); /* NULL on no memory: nothing to replay then */
        }
        return;
    }
    int copies = psim_rng_chance(&w->rng_net, w->net.dup_permille) ? 2 : 1;
    for (int c = 0; c < copies; c++) {
        psim_msg *copy = msg_copy(m, w->now);
        if (copy == NULL) {
            psim_fail_internal(w, PT_ENOMEM, "copying a message");
            return;
        }
        if (app_rec != NULL && c == 0) {
            /* The record shares the copy on its way (the core never writes a message). */
            copy->shares++;
            *app_rec = copy;
        }
        uint64_t delay = link_delay(w, from, to);
        psim_trace(w,
                   "send %" PRIu64 "->%" PRIu64 " %s t%" PRIu64 " i%" PRIu64 " n%zu c%" PRIu64
                   "%s +%" PRIu64,
                   m->from, m->to, name, m->term, m->index ? m->index : m->prev_index, m->n_entries,
                   m->commit, m->reject ? " reject" : "", delay);
        if (psim_schedule(w, delay, PSIM_EV_DELIVER, to, 0, copy) != 0) {
            return;
        }
        if (c == 1) {
            w->net.duplicated++;
        }
    }
    if (m->type == PRAFT_MSG_SNAPSHOT) {
        record_snapshot(w, from, to, m); /* also for the stale-transfer fault of the nemesis */
        return;
    }
    if (w->net.replay_permille == 0) {
        return;
    }
    if (psim_rng_chance(&w->rng_net, w->net.replay_permille)) {
        /* The same message once more, long after: a stale append, heartbeat or answer. */
        psim_msg *copy = msg_copy(m, w->now);
        if (copy == NULL) {
            psim_fail_internal(w, PT_ENOMEM, "replaying a message");
            return;
        }
        uint64_t at = psim_rng_range(&w->rng_net, 2 * PSIM_TICK, 60 * PSIM_TICK);
        psim_trace(w, "replay %" PRIu64 "->%" PRIu64 " %s t%" PRIu64 " +%" PRIu64, m->from, m->to,
                   name, m->term, at);
        if (psim_schedule(w, at, PSIM_EV_DELIVER, to, 0, copy) == 0) {
            w->net.replayed++;
        }
    }
}

void psim_net_isolate(psim_world *w, int slot)
{
    for (int s = 0; s < PSIM_MAX_NODES; s++) {
        if (s != slot) {
            w->net.blocked[slot][s] = w->net.blocked[s][slot] = true;
        }
    }
    psim_trace(w, "nemesis isolate slot%d", slot);
}

void psim_net_block(psim_world *w, int from, int to)
{
    w->net.blocked[from][to] = true;
    psim_trace(w, "nemesis block slot%d->slot%d", from, to);
}

void psim_net_split(psim_world *w, const bool *side_a)
{
    for (int a = 0; a < PSIM_MAX_NODES; a++) {
        for (int b = 0; b < PSIM_MAX_NODES; b++) {
            w->net.blocked[a][b] = side_a[a] != side_a[b];
        }
    }
    psim_trace(w, "nemesis split");
}

void psim_net_heal(psim_world *w)
{
    memset(w->net.blocked, 0, sizeof(w->net.blocked));
    psim_trace(w, "nemesis heal-network");
}
