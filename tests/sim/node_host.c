/*
 * The node host: drives one core the way a real node must, following the persistence contract
 * of praft_ready to the letter — send_now at once; the snapshot, chunk, entries and hard state
 * become durable only when the simulated sync completes; send_after_persist, apply and reads
 * only after that; then advance. Committed entries go into the node's key-value state machine;
 * reads are answered once the state machine has applied up to their read index.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/checksum.h"
#include "platoon/error.h"
#include "raft/core.h" /* read only: the durable mark no public API shows (check_durable_mark) */
#include "sim/sim.h"

/* The check-quorum activity record of a leader (psim_host.heard_*). */
static void heard_set(psim_host *h, uint64_t id)
{
    size_t n = sizeof(h->heard_id) / sizeof(h->heard_id[0]), free_at = n;
    for (size_t i = 0; i < n; i++) {
        if (h->heard_id[i] == id) {
            h->heard_tick[i] = h->ticks;
            return;
        }
        if (h->heard_id[i] == 0 && free_at == n) {
            free_at = i;
        }
    }
    if (free_at < n) {
        h->heard_id[free_at] = id;
        h->heard_tick[free_at] = h->ticks;
    }
}

/* When @id last answered, or when the leadership began if it never did. */
static uint64_t heard_get(const psim_host *h, uint64_t id)
{
    for (size_t i = 0; i < sizeof(h->heard_id) / sizeof(h->heard_id[0]); i++) {
        if (h->heard_id[i] == id) {
            return h->heard_tick[i];
        }
    }
    return h->lead_tick;
}

/* A heartbeat answer of @term from @id, sent at @sent, reached this leader. */
static void ack_set(psim_host *h, uint64_t id, uint64_t term, uint64_t sent)
{
    size_t n = sizeof(h->ack_id) / sizeof(h->ack_id[0]), free_at = n;
    if (h->ack_term != term) {
        memset(h->ack_id, 0, sizeof(h->ack_id));
        h->ack_term = term;
    }
    for (size_t i = 0; i < n; i++) {
        if (h->ack_id[i] == id) {
            h->ack_sent[i] = sent > h->ack_sent[i] ? sent : h->ack_sent[i];
            return;
        }
        if (h->ack_id[i] == 0 && free_at == n) {
            free_at = i;
        }
    }
    if (free_at < n) {
        h->ack_id[free_at] = id;
        h->ack_sent[free_at] = sent;
    }
}

static bool acked_since(const psim_host *h, uint64_t id, uint64_t term, uint64_t since)
{
    for (size_t i = 0; h->ack_term == term && i < sizeof(h->ack_id) / sizeof(h->ack_id[0]); i++) {
        if (h->ack_id[i] == id) {
            return h->ack_sent[i] >= since;
        }
    }
    return false;
}

static int pending_add(psim_pending **arr, size_t *n, size_t *cap, const psim_pending *p)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        psim_pending *a = realloc(*arr, c * sizeof(*a));
        if (a == NULL) {
            return PT_ENOMEM;
        }
        *arr = a;
        *cap = c;
    }
    (*arr)[(*n)++] = *p;
    return 0;
}

static void pending_remove(psim_pending *arr, size_t *n, size_t i)
{
    memmove(&arr[i], &arr[i + 1], (*n - i - 1) * sizeof(*arr));
    (*n)--;
}

static void hold(psim_world *w, psim_host *h, psim_event ev)
{
    if (h->n_held == h->cap_held) {
        size_t c = h->cap_held ? h->cap_held * 2 : 16;
        psim_event *a = realloc(h->held, c * sizeof(*a));
        if (a == NULL) {
            psim_payload_free(ev.type, ev.payload);
            psim_fail_internal(w, PT_ENOMEM, "holding an event");
            return;
        }
        h->held = a;
        h->cap_held = c;
    }
    h->held[h->n_held++] = ev;
}

void psim_host_release(psim_host *h)
{
    if (h->raft != NULL) {
        praft_free(h->raft);
        h->raft = NULL;
    }
    h->writing = false;
    free(h->props);
    free(h->reads);
    h->props = h->reads = NULL;
    h->n_props = h->n_reads = h->cap_props = h->cap_reads = 0;
    for (size_t i = 0; i < h->n_held; i++) {
        psim_payload_free(h->held[i].type, h->held[i].payload);
    }
    free(h->held);
    h->held = NULL;
    h->n_held = h->cap_held = 0;
}

void psim_respond(psim_world *w, int slot, const psim_creq *req, int status, uint64_t value)
{
    psim_cresp *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        psim_fail_internal(w, PT_ENOMEM, "a client response");
        return;
    }
    psim_host *h = &w->hosts[slot];
    r->client = req->client;
    r->attempt = req->attempt;
    r->status = status;
    r->value = value;
    if (h->raft != NULL) {
        praft_status st;
        praft_status_get(h->raft, &st);
        r->leader_hint = st.leader;
    }
    psim_schedule(w, psim_rng_range(&w->rng_cli, 5, 40), PSIM_EV_CLIENT_RESP, req->client, 0, r);
}

/* Starts (or restarts) the core of @slot from its disk. */
static int host_start(psim_world *w, int slot)
{
    psim_host *h = &w->hosts[slot];
    praft_options o;
    praft_options_init(&o, h->id);
    h->incarnation++;
    o.seed = psim_mix(w->opt.seed, psim_mix(h->id, h->incarnation));
    o.election_ticks = w->opt.election_ticks;
    o.heartbeat_ticks = 1;
    o.disable_pre_vote = w->opt.disable_pre_vote;
    o.disable_check_quorum = w->opt.disable_check_quorum;
    o.lease_reads = w->opt.lease_reads;
    /* Small bounds so that batching, flow control and chunking are exercised with a small
     * workload. */
    o.max_msg_bytes = w->opt.msg_bytes;
    o.max_inflight_msgs = w->opt.inflight;
    o.max_inflight_bytes =
        o.max_inflight_bytes < o.max_msg_bytes ? o.max_msg_bytes : o.max_inflight_bytes;
    o.snapshot_chunk_bytes = w->opt.chunk_bytes;
    o.snapshot_retry_ticks = 20;
    praft_storage st = psim_disk_storage(&h->disk);
    int rc = praft_new(&o, &st, &h->raft);
    if (rc != 0) {
        return rc;
    }
    psim_kv_reset(&h->kv);
    if (h->disk.snap.index > 0) {
        rc = psim_kv_load(&h->kv, h->disk.snap_data, h->disk.snap_len);
        if (rc != 0) {
            return rc;
        }
    }
    praft_status s;
    praft_status_get(h->raft, &s);
    h->up = true;
    h->paused = false;
    /* Ticks missed while paused belong to the lifetime that was paused: a crash ends it (a
     * resume of this lifetime must not jump its clock by them). */
    h->missed_ticks = 0;
    h->writing = false;
    h->last_role = s.role;
    h->last_term = s.term;
    h->seen_commit = s.commit;
    h->ticks = h->lead_tick = 0;
    memset(h->heard_id, 0, sizeof(h->heard_id));
    h->ack_term = 0;
    rc = psim_inv_start(&w->inv, slot, h->incarnation, h->kv.applied, s.commit);
    if (rc != 0) {
        return rc;
    }
    psim_trace(w,
               "start slot%d id%" PRIu64 " inc%" PRIu32 " term%" PRIu64 " commit%" PRIu64
               " snap%" PRIu64 " last%" PRIu64,
               slot, h->id, h->incarnation, s.term, s.commit, h->disk.snap.index,
               psim_disk_last(&h->disk));
    /* Each lifetime's clock runs at its own rate, within opt.drift_permille of PSIM_TICK
     * (from the seed, the id and the lifetime, not from a shared stream). */
    uint64_t d = PSIM_TICK * w->opt.drift_permille / 1000;
    h->tick_period = PSIM_TICK - d + psim_mix(o.seed, 7) % (2 * d + 1);
    return psim_schedule(w, psim_rng_range(&w->rng_disk, 1, PSIM_TICK), PSIM_EV_TICK, slot,
                         h->incarnation, NULL);
}

int psim_host_restart(psim_world *w, int slot)
{
    psim_host *h = &w->hosts[slot];
    if (h->up || !h->exists) {
        return 0;
    }
    int rc = host_start(w, slot);
    if (rc != 0) {
        psim_fail_internal(w, rc, "restarting a node (praft_new from durable state)");
    }
    return rc;
}

int psim__host_create(psim_world *w, int slot, uint64_t id, const praft_config *boot);
int psim__host_create(psim_world *w, int slot, uint64_t id, const praft_config *boot)
{
    psim_host *h = &w->hosts[slot];
    psim_disk_init(&h->disk);
    h->slot = slot;
    h->id = id;
    h->exists = true;
    h->blank = boot == NULL;
    h->hb_seen = false;
    if (boot != NULL) {
        /* Every initial member writes the same bootstrap entry and hard state. */
        praft_entry e;
        int rc = praft_bootstrap_entry(boot, &e);
        if (rc != 0) {
            return rc;
        }
        h->disk.log = malloc(sizeof(praft_entry));
        h->disk.chain = malloc(sizeof(uint64_t));
        if (h->disk.log == NULL || h->disk.chain == NULL) {
            free(e.data);
            return PT_ENOMEM;
        }
        h->disk.log[0] = e;
        h->disk.chain[0] = psim_inv_chain(0, e.index, e.term, e.type, e.data, e.len);
        h->disk.n = h->disk.cap = 1;
        h->disk.hs = (praft_hard_state){.term = 1, .vote = PRAFT_NONE, .commit = 1};
        rc = psim_inv_append(&w->inv, id, e.index, e.term, h->disk.chain[0]);
        if (rc != 0 && rc != PT_ECORRUPT) {
            return rc;
        }
    }
    return host_start(w, slot);
}

void psim_host_crash(psim_world *w, int slot)
{
    psim_host *h = &w->hosts[slot];
    if (!h->up) {
        return;
    }
    psim_trace(w, "crash slot%d id%" PRIu64 " (in-flight write %s)", slot, h->id,
               h->writing ? "lost" : "none");
    psim_host_release(h);
    /* A crash loses the partial snapshot only if it was never synced: it is on disk. */
    h->up = false;
    h->paused = false;
    h->hb_this_life = false;
    w->crashes++;
}

void psim_host_pause(psim_world *w, int slot)
{
    psim_host *h = &w->hosts[slot];
    if (h->up && !h->paused) {
        h->paused = true;
        psim_trace(w, "pause slot%d", slot);
    }
}

void psim_host_resume(psim_world *w, int slot)
{
    psim_host *h = &w->hosts[slot];
    if (!h->up || !h->paused) {
        return;
    }
    h->paused = false;
    psim_trace(w, "resume slot%d (%zu held events)", slot, h->n_held);
    if (w->opt.lease_reads) {
        /* Leases need a clock that keeps running while the process is stopped, read before
         * any queued input (see lease_reads in platoon/raft.h): the time that passed is
         * ticked first. */
        for (uint32_t i = 0; i < h->missed_ticks; i++) {
            praft_tick(h->raft);
            h->ticks++;
            h->hb_ticks++;
        }
    }
    h->missed_ticks = 0;
    /* What queued up while the process was stopped is handled now, in arrival order. */
    for (size_t i = 0; i < h->n_held; i++) {
        psim_event ev = h->held[i];
        psim_schedule(w, 0, ev.type, ev.slot, ev.a, ev.payload);
    }
    h->n_held = 0;
}

void psim_host_tick(psim_world *w, int slot, uint64_t incarnation)
{
    psim_host *h = &w->hosts[slot];
    if (!h->up || h->incarnation != incarnation) {
        return; /* the tick chain of a previous lifetime */
    }
    if (!h->paused) {
        praft_tick(h->raft);
        h->ticks++;
        h->hb_ticks++;
    } else {
        h->missed_ticks++;
    }
    psim_schedule(w, h->tick_period, PSIM_EV_TICK, slot, incarnation, NULL);
}

static int note_vote_request(psim_world *w, const psim_host *h, const praft_msg *m);

void psim_host_deliver(psim_world *w, int slot, psim_msg *m)
{
    psim_host *h = &w->hosts[slot];
    if (!h->up || h->id != m->m.to) {
        psim_msg_free(m);
        return;
    }
    if (h->paused) {
        hold(w, h, (psim_event){.type = PSIM_EV_DELIVER, .slot = slot, .payload = m});
        return;
    }
    w->net.delivered++;
    if (m->m.type == PRAFT_MSG_TIMEOUT_NOW && w->xfer.on && w->xfer.sent && w->xfer.term == 0 &&
        h->id == w->xfer.target) {
        /* The target holds the leader's log and the leader's term: the election it starts now
         * must make it leader (thesis §3.10), unless another node campaigns too. */
        if (h->last_term == m->m.term && h->last_role == PRAFT_FOLLOWER) {
            w->xfer.term = m->m.term;
            /* Within an election timeout: no other node may campaign before then, since all
             * heard from the leader just now (a little more for clock drift). */
            w->xfer.deadline = w->now + (uint64_t)w->opt.election_ticks * (PSIM_TICK + 10);
        } else {
            w->xfer.on = false;
        }
    }
    if (h->last_role == PRAFT_LEADER && m->m.term == h->last_term &&
        (m->m.type == PRAFT_MSG_APPEND_RESP || m->m.type == PRAFT_MSG_HEARTBEAT_RESP ||
         m->m.type == PRAFT_MSG_SNAPSHOT_RESP)) {
        heard_set(h, m->m.from); /* what check-quorum counts as activity (§6.2) */
        if (m->m.type == PRAFT_MSG_HEARTBEAT_RESP) {
            ack_set(h, m->m.from, m->m.term, m->sent_at);
        }
    }
    if (m->m.type == PRAFT_MSG_HEARTBEAT && m->m.term >= h->last_term) {
        /* A heartbeat of its term or a later one: taken, and answered (what a lease counts). */
        h->hb_seen = h->hb_this_life = true;
        h->hb_term = m->m.term;
        h->hb_ticks = 0;
    }
    psim_trace(w, "recv %" PRIu64 "->%" PRIu64 " %s t%" PRIu64, m->m.from, m->m.to,
               praft_msg_type_name(m->m.type), m->m.term);
    if ((m->m.type == PRAFT_MSG_VOTE || m->m.type == PRAFT_MSG_PREVOTE) &&
        note_vote_request(w, h, &m->m) != 0) {
        psim_msg_free(m);
        return;
    }
    int rc = praft_step(h->raft, &m->m);
    if (rc == PT_EMALFORMED) {
        psim_inv_fail(&w->inv, "message-validity",
                      "nodes=%" PRIu64 ",%" PRIu64 " term=%" PRIu64
                      ": a message built by one core is rejected as malformed by another (%s)",
                      m->m.from, m->m.to, m->m.term, praft_msg_type_name(m->m.type));
        psim_halt(w);
    } else if (rc != 0) {
        psim_fail_internal(w, rc, "praft_step");
    }
    psim_msg_free(m);
}

void psim_host_client_req(psim_world *w, int slot, psim_creq *req)
{
    psim_host *h = &w->hosts[slot];
    if (!h->up) {
        free(req);
        return;
    }
    if (h->paused) {
        hold(w, h, (psim_event){.type = PSIM_EV_CLIENT_REQ, .slot = slot, .payload = req});
        return;
    }
    int rc;
    psim_pending p = {.req = *req, .at = w->now, .floor = w->max_commit};
    if (req->kind == PSIM_OP_PUT) {
        uint8_t buf[64];
        size_t len;
        psim_kv_encode_put((uint32_t)req->client, req->seq, req->key, req->value, buf, sizeof(buf),
                           &len);
        uint64_t index = 0;
        rc = praft_propose(h->raft, buf, len, &index, NULL);
        if (rc == 0 && w->opt.bug == PSIM_BUG_EARLY_ACK) {
            psim_respond(w, slot, req, PSIM_R_OK, 0);
        } else if (rc == 0) {
            p.index = index;
            rc = pending_add(&h->props, &h->n_props, &h->cap_props, &p);
        }
        psim_trace(w, "propose slot%d client%d seq%" PRIu64 " -> %s i%" PRIu64, slot, req->client,
                   req->seq, pt_error_name(rc), index);
    } else if (w->opt.bug == PSIM_BUG_STALE_READ) {
        rc = 0;
        psim_respond(w, slot, req, PSIM_R_OK, h->kv.values[req->key]);
    } else {
        p.ctx = ++h->next_ctx;
        rc = praft_read_index(h->raft, p.ctx);
        if (rc == 0) {
            rc = pending_add(&h->reads, &h->n_reads, &h->cap_reads, &p);
        }
        psim_trace(w, "read slot%d client%d ctx%" PRIu64 " -> %s", slot, req->client, p.ctx,
                   pt_error_name(rc));
    }
    if (rc == PT_ENOMEM) {
        psim_fail_internal(w, rc, "a client request");
    } else if (rc != 0) {
        psim_respond(w, slot, req, PSIM_R_RETRY, 0);
    }
    free(req);
}

/* Answers the reads whose read index the state machine has reached (thesis §6.4 step 4). */
static void answer_reads(psim_world *w, psim_host *h)
{
    for (size_t i = 0; i < h->n_reads;) {
        psim_pending *p = &h->reads[i];
        if (p->ready && p->index <= h->kv.applied) {
            psim_respond(w, h->slot, &p->req, PSIM_R_OK, h->kv.values[p->req.key]);
            pending_remove(h->reads, &h->n_reads, i);
        } else {
            i++;
        }
    }
}

/* Proposals at or below the applied index have their answer: the dedup table says whether
 * the client's command took effect (it may have been applied at another index through
 * another attempt; if not, the entry at its index was someone else's and it is lost). */
static void answer_props(psim_world *w, psim_host *h)
{
    for (size_t i = 0; i < h->n_props;) {
        psim_pending *p = &h->props[i];
        if (p->index <= h->kv.applied) {
            bool done = h->kv.last_seq[p->req.client] >= p->req.seq;
            psim_respond(w, h->slot, &p->req, done ? PSIM_R_OK : PSIM_R_RETRY, 0);
            pending_remove(h->props, &h->n_props, i);
        } else {
            i++;
        }
    }
}

static int write_chunk(psim_world *w, psim_host *h, const praft_ready *rd)
{
    psim_disk *d = &h->disk;
    uint64_t off = rd->snapshot_chunk.offset;
    const praft_snapshot_meta *meta = &rd->snapshot_chunk.meta;
    if (off == 0) {
        d->in_active = true;
        d->in_meta = *meta;
        d->in_len = 0;
    } else if (!d->in_active || d->in_meta.index != meta->index || d->in_meta.term != meta->term ||
               off > d->in_len) {
        return psim_inv_fail(&w->inv, "snapshot-transfer",
                             "nodes=%" PRIu64 " index=%" PRIu64 " offset=%" PRIu64
                             ": chunk does not continue the snapshot being received "
                             "(have %zu bytes of index %" PRIu64 ")",
                             h->id, meta->index, off, d->in_len, d->in_meta.index);
    }
    size_t need = (size_t)off + rd->snapshot_chunk.len;
    if (need > d->in_cap) {
        uint8_t *b = realloc(d->in_data, need);
        if (b == NULL) {
            return PT_ENOMEM;
        }
        d->in_data = b;
        d->in_cap = need;
    }
    if (rd->snapshot_chunk.len > 0) {
        memcpy(d->in_data + off, rd->snapshot_chunk.data, rd->snapshot_chunk.len);
    }
    d->in_len = need;
    return 0;
}

static int install_snapshot(psim_world *w, psim_host *h, const praft_snapshot_meta *meta)
{
    psim_disk *d = &h->disk;
    if (!d->in_active || d->in_meta.index != meta->index || d->in_meta.term != meta->term ||
        d->in_len != meta->size ||
        (meta->checksum != 0 && pt__checksum(d->in_data, d->in_len) != meta->checksum)) {
        return psim_inv_fail(&w->inv, "snapshot-transfer",
                             "nodes=%" PRIu64 " index=%" PRIu64 " term=%" PRIu64
                             ": snapshot to install is incomplete or corrupt (%zu of %" PRIu64
                             " bytes)",
                             h->id, meta->index, meta->term, d->in_len, meta->size);
    }
    psim_kv kv;
    psim_kv_reset(&kv);
    if (psim_kv_load(&kv, d->in_data, d->in_len) != 0 || kv.applied != meta->index) {
        return psim_inv_fail(&w->inv, "snapshot-consistency",
                             "nodes=%" PRIu64 " index=%" PRIu64
                             ": received snapshot does not decode to the state at its index",
                             h->id, meta->index);
    }
    /* The snapshot replaces the whole log (contract step 2a). */
    for (size_t i = 0; i < d->n; i++) {
        free(d->log[i].data);
    }
    d->n = 0;
    d->first = meta->index + 1;
    d->base_term = meta->term;
    d->chain_valid = psim_inv_chain_of(&w->inv, meta->index, meta->term, &d->base_chain);
    free(d->snap_data);
    d->snap = *meta;
    d->snap_data = d->in_data;
    d->snap_len = d->in_len;
    d->in_data = NULL;
    d->in_len = d->in_cap = 0;
    d->in_active = false;
    h->kv = kv;
    w->snapshots_installed++;
    psim_trace(w, "install slot%d snap i%" PRIu64 " t%" PRIu64, h->slot, meta->index, meta->term);
    int rc = psim_inv_snapshot(&w->inv, h->slot, h->incarnation, h->id, meta->index, meta->term,
                               psim_kv_hash(&kv), true);
    if (rc != 0) {
        return rc;
    }
    answer_props(w, h);
    return 0;
}

static int append_entries(psim_world *w, psim_host *h, const praft_entry *es, size_t n)
{
    psim_disk *d = &h->disk;
    uint64_t at = es[0].index;
    if (at < d->first || at > psim_disk_last(d) + 1) {
        return psim_inv_fail(&w->inv, "storage-contract",
                             "nodes=%" PRIu64 " index=%" PRIu64
                             ": entries to persist do not attach to the stored log (%" PRIu64
                             "..%" PRIu64 ")",
                             h->id, at, d->first, psim_disk_last(d));
    }
    for (size_t i = 1; i < n; i++) {
        if (es[i].index != at + i) {
            return psim_inv_fail(&w->inv, "storage-contract",
                                 "nodes=%" PRIu64 " index=%" PRIu64
                                 ": entries to persist are not consecutive",
                                 h->id, es[i].index);
        }
    }
    /* §5.3: delete the conflicting suffix, then append. */
    size_t keep = (size_t)(at - d->first);
    for (size_t i = keep; i < d->n; i++) {
        free(d->log[i].data);
    }
    d->n = keep;
    if (keep + n > d->cap) {
        size_t cap = d->cap ? d->cap : 64;
        while (cap < keep + n) {
            cap *= 2;
        }
        praft_entry *l = realloc(d->log, cap * sizeof(*l));
        if (l == NULL) {
            return PT_ENOMEM;
        }
        d->log = l;
        uint64_t *c = realloc(d->chain, cap * sizeof(*c));
        if (c == NULL) {
            return PT_ENOMEM;
        }
        d->chain = c;
        d->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        praft_entry e = es[i];
        e.data = NULL;
        if (e.len > 0) {
            e.data = malloc(e.len);
            if (e.data == NULL) {
                return PT_ENOMEM;
            }
            memcpy(e.data, es[i].data, e.len);
        }
        uint64_t prev = d->n ? d->chain[d->n - 1] : d->base_chain;
        d->log[d->n] = e;
        d->chain[d->n] = psim_inv_chain(prev, e.index, e.term, e.type, e.data, e.len);
        if (d->chain_valid) {
            int rc = psim_inv_append(&w->inv, h->id, e.index, e.term, d->chain[d->n]);
            if (rc != 0) {
                d->n++;
                return rc;
            }
        }
        d->n++;
    }
    return 0;
}

static int apply_committed(psim_world *w, psim_host *h, const praft_ready *rd)
{
    praft_status st;
    praft_status_get(h->raft, &st);
    uint64_t node_term = st.term > rd->term ? st.term : rd->term;
    for (size_t i = 0; i < rd->n_committed; i++) {
        const praft_entry *e = &rd->committed[i];
        if (e->index <= h->kv.applied) {
            continue; /* already in the state restored from the snapshot */
        }
        if (e->type == PRAFT_ENTRY_NORMAL && psim_kv_apply(&h->kv, e->data, e->len) != 0) {
            return psim_inv_fail(&w->inv, "state-machine-input",
                                 "nodes=%" PRIu64 " index=%" PRIu64
                                 ": committed entry is not a command any client sent",
                                 h->id, e->index);
        }
        h->kv.applied = e->index;
        w->applied_entries++;
        uint64_t dh = psim_mix(e->type, pt__checksum(e->data, e->len));
        int rc = psim_inv_apply(&w->inv, h->slot, h->incarnation, h->id, node_term, e->index,
                                e->term, dh, psim_kv_hash(&h->kv));
        if (rc != 0) {
            return rc;
        }
    }
    if (rd->n_committed > 0) {
        psim_trace(w, "apply slot%d ..i%" PRIu64, h->slot, h->kv.applied);
    }
    answer_props(w, h);
    return 0;
}

/* Steps 2 (the writes, now durable) to 6 of the persistence contract. */
static int finish_ready(psim_world *w, psim_host *h)
{
    praft_ready *rd = &h->rd;
    int rc = 0;
    bool chunk_done = false;
    if (rd->has_snapshot && rd->has_snapshot_chunk &&
        rd->snapshot_chunk.meta.index == rd->snapshot.index &&
        rd->snapshot_chunk.meta.term == rd->snapshot.term) {
        /* The last chunk of the snapshot to install travels with it. */
        rc = write_chunk(w, h, rd);
        chunk_done = true;
    }
    if (rc == 0 && rd->has_snapshot) {
        rc = install_snapshot(w, h, &rd->snapshot);
    }
    if (rc == 0 && rd->has_snapshot_chunk && !chunk_done) {
        rc = write_chunk(w, h, rd);
    }
    if (rc == 0 && rd->n_entries > 0) {
        rc = append_entries(w, h, rd->entries, rd->n_entries);
    }
    if (rc == 0 && rd->has_hard_state) {
        h->disk.hs = rd->hard_state;
        rc = psim_inv_hard_state(&w->inv, h->id, rd->hard_state.term, rd->hard_state.vote);
    }
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0; i < rd->n_send_after_persist; i++) {
        psim_net_send(w, h->slot, &rd->send_after_persist[i]);
    }
    rc = apply_committed(w, h, rd);
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0; i < rd->n_reads; i++) {
        const praft_read_state *r = &rd->reads[i];
        for (size_t j = 0; j < h->n_reads; j++) {
            psim_pending *p = &h->reads[j];
            if (p->ctx != r->context || p->ready) {
                continue;
            }
            if (r->status != 0) {
                psim_respond(w, h->slot, &p->req, PSIM_R_RETRY, 0);
                pending_remove(h->reads, &h->n_reads, j);
            } else {
                p->ready = true;
                p->index = r->index;
            }
            break;
        }
    }
    answer_reads(w, h);
    rc = praft_advance(h->raft, rd);
    h->writing = false;
    if (rc != 0) {
        psim_fail_internal(w, rc, "praft_advance");
    }
    return rc;
}

static void finish_or_fail(psim_world *w, psim_host *h)
{
    int rc = finish_ready(w, h);
    if (rc == PT_ECORRUPT) {
        psim_halt(w);
    } else if (rc != 0 && !w->stop) {
        psim_fail_internal(w, rc, "carrying out a ready");
    }
}

static int check_config_latest(psim_world *w, psim_host *h, const praft_ready *rd);
static int check_lease_reads(psim_world *w, psim_host *h, const praft_ready *rd);
static int check_read_confirmed(psim_world *w, psim_host *h, const praft_ready *rd);
static int check_read_floor(psim_world *w, psim_host *h, const praft_ready *rd);

void psim_host_pump(psim_world *w, int slot)
{
    psim_host *h = &w->hosts[slot];
    for (int guard = 0; guard < 64 && !w->stop; guard++) {
        if (!h->up || h->paused || h->writing || !praft_has_ready(h->raft)) {
            return;
        }
        int rc = praft_ready_get(h->raft, &h->rd);
        if (rc != 0) {
            psim_fail_internal(w, rc, "praft_ready_get");
            return;
        }
        h->writing = true;
        praft_ready *rd = &h->rd;
        for (size_t i = 0; i < rd->n_send_now; i++) {
            psim_net_send(w, slot, &rd->send_now[i]);
        }
        if (((rd->n_entries > 0 || rd->has_snapshot) && check_config_latest(w, h, rd) != 0) ||
            (rd->n_reads > 0 && check_lease_reads(w, h, rd) != 0) ||
            (rd->n_reads > 0 && check_read_confirmed(w, h, rd) != 0) ||
            (rd->n_reads > 0 && check_read_floor(w, h, rd) != 0)) {
            psim_halt(w);
            return;
        }
        for (size_t i = 0; i < h->n_reads; i++) {
            h->reads[i].seen = true;
        }
        bool persist =
            rd->has_snapshot || rd->has_snapshot_chunk || rd->n_entries > 0 || rd->has_hard_state;
        if (!persist) {
            finish_or_fail(w, h);
            continue;
        }
        /* The write becomes durable when the simulated sync completes; a crash before then
         * loses all of it. */
        uint64_t lat = psim_rng_range(&w->rng_disk, 2, 30);
        if (h->slow) {
            lat += psim_rng_range(&w->rng_disk, PSIM_TICK, 8 * PSIM_TICK);
        }
        h->write_id = ++w->next_write;
        psim_trace(w, "write slot%d w%" PRIu64 " n%zu hs%d snap%d chunk%d +%" PRIu64, slot,
                   h->write_id, rd->n_entries, rd->has_hard_state, rd->has_snapshot,
                   rd->has_snapshot_chunk, lat);
        if (rd->has_snapshot_chunk && rd->snapshot_chunk.done &&
            (w->net.replay_permille > 0 || w->net.reorder)) {
            /* On a network that reorders or replays, old appends arrive while the last chunk
             * is written: sent before the leader committed the snapshot's index (so before the
             * snapshot existed), overtaken by the transfer. Accepted, they can reach past the
             * snapshot, and installing it must not drop them (§7, §5.3). */
            psim_net_replay_appends_to(w, slot, lat, rd->snapshot_chunk.meta.index);
        }
        psim_schedule(w, lat, PSIM_EV_DISK_DONE, slot, h->write_id, NULL);
        return;
    }
}

void psim_host_disk_done(psim_world *w, int slot, uint64_t write_id)
{
    psim_host *h = &w->hosts[slot];
    if (!h->up || !h->writing || h->write_id != write_id) {
        return; /* the write of a crashed lifetime */
    }
    if (h->paused) {
        hold(w, h, (psim_event){.type = PSIM_EV_DISK_DONE, .slot = slot, .a = write_id});
        return;
    }
    psim_trace(w, "synced slot%d w%" PRIu64, slot, write_id);
    finish_or_fail(w, h);
}

int psim_host_snapshot(psim_world *w, int slot, uint64_t keep)
{
    psim_host *h = &w->hosts[slot];
    if (!h->up || h->paused || (h->writing && h->rd.has_snapshot) ||
        h->kv.applied <= h->disk.snap.index || h->kv.applied < h->disk.first) {
        return PT_ENOTREADY;
    }
    uint8_t *data = malloc(PSIM_KV_SNAPSHOT_BYTES);
    if (data == NULL) {
        return PT_ENOMEM;
    }
    psim_kv_save(&h->kv, data);
    praft_snapshot_meta meta = {.index = h->kv.applied,
                                .size = PSIM_KV_SNAPSHOT_BYTES,
                                .checksum = pt__checksum(data, PSIM_KV_SNAPSHOT_BYTES)};
    int rc = praft_snapshot_taken(h->raft, &meta);
    if (rc != 0) {
        free(data);
        psim_trace(w, "snapshot slot%d i%" PRIu64 " -> %s", slot, h->kv.applied, pt_error_name(rc));
        return rc;
    }
    free(h->disk.snap_data);
    h->disk.snap = meta;
    h->disk.snap_data = data;
    h->disk.snap_len = PSIM_KV_SNAPSHOT_BYTES;
    w->snapshots_taken++;
    uint64_t t;
    if (psim_disk_term(&h->disk, meta.index, &t) && t != meta.term) {
        return psim_inv_fail(&w->inv, "snapshot-consistency",
                             "nodes=%" PRIu64 " index=%" PRIu64 ": core filled term %" PRIu64
                             " but the log holds term %" PRIu64,
                             h->id, meta.index, meta.term, t);
    }
    rc = psim_inv_snapshot(&w->inv, slot, h->incarnation, h->id, meta.index, meta.term,
                           psim_kv_hash(&h->kv), false);
    if (rc != 0) {
        return rc;
    }
    if (meta.index > keep) {
        psim_disk_compact(&h->disk, meta.index - keep);
    }
    psim_trace(w, "snapshot slot%d i%" PRIu64 " t%" PRIu64 " first%" PRIu64, slot, meta.index,
               meta.term, h->disk.first);
    return 0;
}

/* The term @slot holds at @index: the write in flight first, then the disk. */
static bool host_term_at(void *ctx, uint64_t index, uint64_t *term)
{
    psim_host *h = ctx;
    if (h->writing) {
        const praft_ready *rd = &h->rd;
        if (rd->has_snapshot) {
            return false;
        }
        if (rd->n_entries > 0 && index >= rd->entries[0].index) {
            uint64_t k = index - rd->entries[0].index;
            if (k < rd->n_entries) {
                *term = rd->entries[k].term;
                return true;
            }
            return false;
        }
    }
    return psim_disk_term(&h->disk, index, term);
}

static unsigned own_uncommitted_configs(psim_host *h, uint64_t commit, uint64_t term)
{
    unsigned n = 0;
    psim_disk *d = &h->disk;
    uint64_t from = commit + 1 > d->first ? commit + 1 : d->first;
    uint64_t pending_from = UINT64_MAX;
    if (h->writing && h->rd.n_entries > 0) {
        pending_from = h->rd.entries[0].index;
        for (size_t i = 0; i < h->rd.n_entries; i++) {
            const praft_entry *e = &h->rd.entries[i];
            n += e->index > commit && e->term == term && e->type == PRAFT_ENTRY_CONFIG;
        }
    }
    for (uint64_t i = from; i <= psim_disk_last(d) && i < pending_from; i++) {
        const praft_entry *e = &d->log[i - d->first];
        n += e->term == term && e->type == PRAFT_ENTRY_CONFIG;
    }
    return n;
}

/* True when the disk of @slot durably holds the entry (@index, @term) (or a snapshot past it). */
static bool disk_holds(psim_world *w, int slot, uint64_t index, uint64_t term)
{
    const psim_disk *d = &w->hosts[slot].disk;
    if (d->snap.index >= index) {
        return true;
    }
    uint64_t t;
    return psim_disk_term(d, index, &t) && t == term;
}

/* The voters of each side of @c: [0] the incoming (or only) configuration, [1] the outgoing one
 * while joint. */
static void config_sides(const praft_config *c, uint64_t side[2][PRAFT_MAX_MEMBERS], int n[2])
{
    n[0] = n[1] = 0;
    for (uint32_t i = 0; i < c->n_members; i++) {
        const praft_member *m = &c->members[i];
        if (m->role == PRAFT_ROLE_VOTER) {
            side[0][n[0]++] = m->id;
        }
        if (c->joint && m->old_role == PRAFT_ROLE_VOTER) {
            side[1][n[1]++] = m->id;
        }
    }
}

/* A leader's commit index moved to @st->commit: that entry is of the leader's own term (§5.4.2,
 * Figure 8: earlier terms' entries are only committed with it) and is durable on a majority
 * of each side of the leader's configuration (§5.3, thesis §4.3). Checked on every advance. */
static int check_leader_commit(psim_world *w, psim_host *h, const praft_status *st)
{
    uint64_t c = st->commit, t = 0;
    if (!host_term_at(h, c, &t)) {
        return 0; /* compacted on the leader itself: nothing left to compare */
    }
    if (t != st->term) {
        return psim_inv_fail(&w->inv, "commit-rule",
                             "nodes=%" PRIu64 " term=%" PRIu64 " index=%" PRIu64
                             ": leader advanced its commit index to an entry of term %" PRIu64
                             " (only entries of its own term commit by counting, §5.4.2)",
                             h->id, st->term, c, t);
    }
    uint64_t side[2][PRAFT_MAX_MEMBERS];
    int n[2];
    config_sides(&st->config, side, n);
    for (int k = 0; k < 2; k++) {
        int held = 0;
        for (int i = 0; i < n[k]; i++) {
            int s = psim_slot_of(w, side[k][i]);
            held += s >= 0 && disk_holds(w, s, c, t);
        }
        if (n[k] > 0 && held <= n[k] / 2) {
            return psim_inv_fail(&w->inv, "commit-quorum",
                                 "nodes=%" PRIu64 " term=%" PRIu64 " index=%" PRIu64
                                 ": committed entry durable on %d of %d %s voters",
                                 h->id, st->term, c, held, n[k], k == 0 ? "new" : "old");
        }
    }
    return 0;
}

/* thesis §10.2.1: a leader counts itself towards a commit only for the entries it has made
 * durable, so the core keeps a durable mark (praft_log.persisted), which no public API shows:
 * it is read here through the core's internal header. Whenever it is above the snapshot, the
 * node's disk must hold the entry there, with the term the core's log has there: a log cut
 * below it (§5.3) must lower it at once, before the node can lead and count itself with it. */
static int check_durable_mark(psim_world *w, psim_host *h)
{
    praft_node *n = h->raft;
    uint64_t p = n->log.persisted, on_disk = 0, in_log = 0;
    if (p <= n->log.snap.index) {
        return 0; /* within the snapshot: installed, or its chunks durable and being installed */
    }
    bool held = psim_disk_term(&h->disk, p, &on_disk);
    int rc = praft__log_term(n, p, &in_log);
    if (held && rc == 0 && on_disk == in_log) {
        return 0;
    }
    return psim_inv_fail(&w->inv, "durable-mark",
                         "nodes=%" PRIu64 " index=%" PRIu64
                         ": the core counts the log up to here as durable, but its disk %s "
                         "(disk ends at %" PRIu64 ", log at %" PRIu64 ")",
                         h->id, p, held ? "holds another entry there" : "does not hold it",
                         psim_disk_last(&h->disk), praft__log_last(&n->log));
}

static bool config_same(const praft_config *a, const praft_config *b)
{
    if (a->joint != b->joint || a->n_members != b->n_members) {
        return false;
    }
    for (uint32_t i = 0; i < a->n_members; i++) {
        const praft_member *m = praft_config_find(b, a->members[i].id);
        if (m == NULL || m->role != a->members[i].role || m->old_role != a->members[i].old_role) {
            return false;
        }
    }
    return true;
}

/* The configuration the log of @h ends with once @rd is written: its last CONFIG entry, else
 * its snapshot's. The log is then the disk up to where @rd's entries start (they may cut it),
 * followed by @rd's entries, or @rd's snapshot and entries. False when there is none (a blank
 * node) or it cannot be decoded (state-machine-input's business). */
static bool log_config(const psim_host *h, const praft_ready *rd, praft_config *out)
{
    for (size_t i = rd->n_entries; i-- > 0;) {
        const praft_entry *e = &rd->entries[i];
        if (e->type == PRAFT_ENTRY_CONFIG) {
            return praft_config_decode(e->data, e->len, out) == 0;
        }
    }
    if (rd->has_snapshot) {
        *out = rd->snapshot.config;
        return true;
    }
    const psim_disk *d = &h->disk;
    uint64_t end = psim_disk_last(d) + 1;
    if (rd->n_entries > 0 && rd->entries[0].index < end) {
        end = rd->entries[0].index;
    }
    for (uint64_t i = end; i-- > d->first;) {
        const praft_entry *e = &d->log[i - d->first];
        if (e->type == PRAFT_ENTRY_CONFIG) {
            return praft_config_decode(e->data, e->len, out) == 0;
        }
    }
    if (d->snap.index == 0) {
        return false;
    }
    *out = d->snap.config;
    return true;
}

/* thesis §4.1: a server always uses the latest configuration in its log, committed or not;
 * when a conflicting suffix holding a configuration entry is cut (§5.3), it falls back to the
 * one before. Checked whenever the log changes (every ready with entries or a snapshot: the
 * ready carries every entry not yet handed out, so the log is then known in full). */
static int check_config_latest(psim_world *w, psim_host *h, const praft_ready *rd)
{
    praft_config want;
    if (!log_config(h, rd, &want)) {
        return 0;
    }
    praft_status st;
    praft_status_get(h->raft, &st);
    if (config_same(&st.config, &want)) {
        return 0;
    }
    return psim_inv_fail(&w->inv, "config-latest",
                         "nodes=%" PRIu64 " index=%" PRIu64
                         ": the configuration in force (%u members%s) is not the last one in the "
                         "log (%u members%s)",
                         h->id, st.last_index, st.config.n_members,
                         st.config.joint ? ", joint" : "", want.n_members,
                         want.joint ? ", joint" : "");
}

/* Leader stickiness (thesis §4.2.3; the core keeps it with check-quorum, §6.2): a server that
 * took a leader's heartbeat grants no vote or pre-vote until it has counted an election
 * timeout of its own ticks, whatever happened to its term meanwhile, unless the campaign comes
 * from TimeoutNow (which ends the lease, §3.10). Without leases the promise protects liveness
 * and ends with a restart; with leases it is what a lease read counts on (§6.4.1), so it
 * outlives a restart. Clock drift is the leader's side of the bargain, judged by
 * linearizability. */
static bool stickiness_binds(const psim_world *w, const psim_host *h, uint64_t term,
                             uint64_t candidate)
{
    uint64_t x;
    bool kept = w->opt.lease_reads ? h->hb_seen : !w->opt.disable_check_quorum && h->hb_this_life;
    return kept && term > h->hb_term && h->hb_ticks < w->opt.election_ticks &&
           !psim_pairmap_get(&w->xfer_votes, term, candidate, &x) &&
           !psim_pairmap_get(&w->xfer_votes, h->hb_term, 0, &x);
}

static uint64_t vote_key(uint64_t voter, uint64_t candidate, bool pre)
{
    return voter << 32 | candidate << 1 | (pre ? 1u : 0u);
}

/* A vote is decided when its request is taken and leaves once it is durable: a heartbeat taken
 * in between does not make it wrong. So a request taken while the node was free to grant it is
 * noted, and a grant is judged against the moment of its request. */
static int note_vote_request(psim_world *w, const psim_host *h, const praft_msg *m)
{
    if (stickiness_binds(w, h, m->term, m->from)) {
        return 0;
    }
    int rc = psim_pairmap_put(&w->free_votes, m->term,
                              vote_key(h->id, m->from, m->type == PRAFT_MSG_PREVOTE), 1);
    if (rc != 0) {
        psim_fail_internal(w, rc, "recording a vote request");
    }
    return rc;
}

static int check_vote_stickiness(psim_world *w, psim_host *h, const praft_msg *m)
{
    uint64_t x;
    bool pre = m->type == PRAFT_MSG_PREVOTE_RESP;
    if (!stickiness_binds(w, h, m->term, m->to) ||
        psim_pairmap_get(&w->free_votes, m->term, vote_key(h->id, m->to, pre), &x)) {
        return 0; /* kept still long enough, or the request came while it was free to vote */
    }
    return psim_inv_fail(&w->inv, "vote-stickiness",
                         "nodes=%" PRIu64 ",%" PRIu64 " term=%" PRIu64 ": %s granted %" PRIu64
                         " ticks after a heartbeat of term %" PRIu64
                         " (an election timeout is %" PRIu32 ")",
                         h->id, m->to, m->term, pre ? "pre-vote" : "vote", h->hb_ticks, h->hb_term,
                         w->opt.election_ticks);
}

/* A read is linearizable only if it sees every write committed before it was asked (thesis
 * §6.4): its read index is at least the highest commit index any leader had reached at that
 * moment, whichever node it was asked at and whether ReadIndex or a lease answered it. Judged
 * when the read index is handed out, with no wait for a write that would make the answer
 * stale: a read index below the floor is wrong even if no write lands in between. */
static int check_read_floor(psim_world *w, psim_host *h, const praft_ready *rd)
{
    for (size_t i = 0; i < rd->n_reads; i++) {
        const praft_read_state *r = &rd->reads[i];
        for (size_t j = 0; j < h->n_reads; j++) {
            const psim_pending *p = &h->reads[j];
            if (p->ctx != r->context || p->ready || r->status != 0) {
                continue;
            }
            if (r->index < p->floor) {
                return psim_inv_fail(&w->inv, "read-index",
                                     "nodes=%" PRIu64 " index=%" PRIu64
                                     ": read index below %" PRIu64
                                     ", the commit index a leader had reached when the read was "
                                     "asked %" PRIu64 " time units before",
                                     h->id, r->index, p->floor, w->now - p->at);
            }
            break;
        }
    }
    return 0;
}

/* Leader leases (thesis §6.4.1): a leader answers a read from its lease, with no heartbeat
 * round, only while a majority of each side of its configuration still keeps the promise its
 * heartbeats bought: a voter that took a heartbeat of the leader's term grants no vote until it
 * has counted an election timeout of its own ticks (a restart stops its clock, which only
 * lengthens the promise). The lease is measured on the leader's clock, so this is where clock
 * drift within the bound must be allowed for. A lease read is answered in the first ready
 * after it was asked (when the core starts its round and finds the lease holding): a ReadIndex
 * read waits for answers from other nodes. */
static int check_lease_reads(psim_world *w, psim_host *h, const praft_ready *rd)
{
    if (!w->opt.lease_reads) {
        return 0;
    }
    bool lease = false;
    for (size_t i = 0; i < rd->n_reads && !lease; i++) {
        for (size_t j = 0; j < h->n_reads; j++) {
            const psim_pending *p = &h->reads[j];
            if (p->ctx == rd->reads[i].context && !p->ready && !p->seen &&
                rd->reads[i].status == 0) {
                lease = true;
                break;
            }
        }
    }
    if (!lease) {
        return 0;
    }
    praft_status st;
    praft_status_get(h->raft, &st);
    if (st.role != PRAFT_LEADER) {
        return 0;
    }
    uint64_t side[2][PRAFT_MAX_MEMBERS];
    int n[2];
    config_sides(&st.config, side, n);
    for (int k = 0; k < 2; k++) {
        int kept = 0;
        for (int i = 0; i < n[k]; i++) {
            int s = psim_slot_of(w, side[k][i]);
            const psim_host *f = s >= 0 ? &w->hosts[s] : NULL;
            kept += side[k][i] == h->id || (f != NULL && f->hb_seen && f->hb_term == st.term &&
                                            f->hb_ticks < w->opt.election_ticks);
        }
        if (n[k] > 0 && kept <= n[k] / 2) {
            return psim_inv_fail(&w->inv, "lease-read",
                                 "nodes=%" PRIu64 " term=%" PRIu64
                                 ": read answered from a lease that only %d of %d %s voters "
                                 "still keep",
                                 h->id, st.term, kept, n[k], k == 0 ? "new" : "old");
        }
    }
    return 0;
}

/* ReadIndex (thesis §6.4 step 3), with joint consensus (§4.3): before a leader answers a read
 * it confirms that it is still leader by a heartbeat exchange begun after the read arrived,
 * answered by a majority of each side of its configuration: a majority of each side (the leader
 * counting for itself) must have sent it a heartbeat answer of its term since the read came.
 * The core decides within a step and hands the answer out at its next ready, and its
 * configuration may change in between: a read counts as confirmed if it was at the end of any
 * step since it came (confirm_reads) or is when handed out. Reads asked of the leader itself,
 * without leases only: with them, the lease may stand in for the round (check_lease_reads). */
static bool read_confirmed(const psim_host *h, const praft_status *st, uint64_t since, int *yes,
                           int *n, int *k)
{
    uint64_t side[2][PRAFT_MAX_MEMBERS];
    config_sides(&st->config, side, n);
    for (*k = 0; *k < 2; (*k)++) {
        *yes = 0;
        for (int i = 0; i < n[*k]; i++) {
            *yes += side[*k][i] == h->id || acked_since(h, side[*k][i], st->term, since);
        }
        if (n[*k] > 0 && *yes <= n[*k] / 2) {
            return false;
        }
    }
    return true;
}

static void confirm_reads(psim_world *w, psim_host *h, const praft_status *st)
{
    int yes, n[2], k;
    for (size_t j = 0; !w->opt.lease_reads && j < h->n_reads; j++) {
        psim_pending *p = &h->reads[j];
        if (!p->confirmed && !p->ready) {
            p->confirmed = read_confirmed(h, st, p->at, &yes, n, &k);
        }
    }
}

static int check_read_confirmed(psim_world *w, psim_host *h, const praft_ready *rd)
{
    const psim_pending *read = NULL;
    if (w->opt.lease_reads) {
        return 0;
    }
    for (size_t i = 0; i < rd->n_reads && read == NULL; i++) {
        for (size_t j = 0; j < h->n_reads; j++) {
            const psim_pending *p = &h->reads[j];
            if (p->ctx == rd->reads[i].context && !p->ready && !p->confirmed &&
                rd->reads[i].status == 0) {
                read = p;
                break;
            }
        }
    }
    if (read == NULL) {
        return 0;
    }
    praft_status st;
    praft_status_get(h->raft, &st);
    int yes, n[2], k;
    if (st.role != PRAFT_LEADER || read_confirmed(h, &st, read->at, &yes, n, &k)) {
        return 0;
    }
    return psim_inv_fail(&w->inv, "read-confirmed",
                         "nodes=%" PRIu64 " term=%" PRIu64
                         ": read answered with heartbeat answers since it came from only %d of "
                         "%d %s voters",
                         h->id, st.term, yes, n[k], k == 0 ? "new" : "old");
}

/* Figure 2: a leader's matchIndex for a server is the highest entry known to be replicated
 * there, learnt from the server's answers in the leader's term (reinitialised at each election,
 * §5.3). A server answers in a term only once the term is durable, and within that term only
 * this leader changes its log, never cutting the leader's entries: so a server with a match
 * index holds the leader's term durably, and, unless it has moved on to a later term, its disk
 * holds the leader's entry at the match index. */
static int check_match(psim_world *w, psim_host *h, const praft_status *st)
{
    for (size_t i = 0; i < st->n_progress; i++) {
        const praft_progress *p = &st->progress[i];
        int s = psim_slot_of(w, p->id);
        if (p->match == 0 || s < 0 || w->hosts[s].disk.hs.term > st->term) {
            continue;
        }
        uint64_t t = 0;
        bool behind = w->hosts[s].disk.hs.term < st->term;
        if (behind || (host_term_at(h, p->match, &t) && !disk_holds(w, s, p->match, t))) {
            return psim_inv_fail(&w->inv, "match-index",
                                 "nodes=%" PRIu64 ",%" PRIu64 " term=%" PRIu64 " index=%" PRIu64
                                 ": leader's match index for a server %s",
                                 h->id, p->id, st->term, p->match,
                                 behind ? "that never answered in its term"
                                        : "beyond what the server's log shares with it");
        }
    }
    return 0;
}

void psim_host_check_send(psim_world *w, int slot, const praft_msg *m)
{
    psim_host *h = &w->hosts[slot];
    const psim_disk *d = &h->disk;
    if (w->stop || !h->up) {
        return;
    }
    int rc = 0;
    bool prevote = m->type == PRAFT_MSG_PREVOTE || m->type == PRAFT_MSG_PREVOTE_RESP;
    if (!prevote && m->term > d->hs.term) {
        /* §5.1 Figure 2: a server makes its term durable before it speaks in it. */
        rc = psim_inv_fail(&w->inv, "durable-before-send",
                           "nodes=%" PRIu64 " term=%" PRIu64 ": %s sent in a term not yet durable "
                           "(disk has %" PRIu64 ")",
                           h->id, m->term, praft_msg_type_name(m->type), d->hs.term);
    } else if (m->type == PRAFT_MSG_VOTE_RESP && !m->reject) {
        /* The vote is durable, or a later term is (which rules out voting again in this
         * one). */
        if (d->hs.term == m->term && d->hs.vote != m->to) {
            rc = psim_inv_fail(&w->inv, "durable-before-send",
                               "nodes=%" PRIu64 ",%" PRIu64 " term=%" PRIu64
                               ": vote granted before it is durable",
                               h->id, m->to, m->term);
        } else {
            rc = psim_inv_vote_granted(&w->inv, h->id, m->term, m->to);
        }
        if (rc == 0) {
            rc = check_vote_stickiness(w, h, m);
        }
    } else if (m->type == PRAFT_MSG_PREVOTE_RESP && !m->reject) {
        rc = check_vote_stickiness(w, h, m); /* a pre-vote is held to it too (thesis §9.6) */
    } else if (m->type == PRAFT_MSG_APPEND_RESP && !m->reject && m->index > 0 &&
               psim_disk_last(d) < m->index && d->snap.index < m->index) {
        rc = psim_inv_fail(&w->inv, "durable-before-send",
                           "nodes=%" PRIu64 ",%" PRIu64 " index=%" PRIu64
                           ": entries acknowledged before they are durable (disk ends at %" PRIu64
                           ")",
                           h->id, m->to, m->index, psim_disk_last(d));
    } else if ((m->type == PRAFT_MSG_VOTE || m->type == PRAFT_MSG_PREVOTE) && m->transfer) {
        rc = psim_pairmap_put(&w->xfer_votes, m->term, h->id, 1);
        if (rc != 0) {
            psim_fail_internal(w, rc, "recording a transfer campaign");
            return;
        }
    } else if (m->type == PRAFT_MSG_TIMEOUT_NOW) {
        uint64_t x;
        if (!psim_pairmap_get(&w->xfer_votes, m->term, 0, &x)) {
            /* The lease of this term ends here (thesis §3.10, §6.4.1). */
            rc = psim_pairmap_put(&w->xfer_votes, m->term, 0, w->now);
            if (rc != 0) {
                psim_fail_internal(w, rc, "recording a TimeoutNow");
                return;
            }
        }
        if (w->xfer.on && !w->xfer.sent && m->to == w->xfer.target) {
            w->xfer.sent = true; /* judged once it arrives (psim_host_deliver) */
            w->xfer.deadline = UINT64_MAX;
        }
        /* thesis §3.10: the target is told to campaign only once it holds the whole log. */
        praft_status st;
        praft_status_get(h->raft, &st);
        uint64_t t = 0;
        int to = psim_slot_of(w, m->to);
        /* Messages leave at the next ready, not when made: only while the transfer is still
         * on (the leader then takes no proposals) and no configuration entry was appended
         * since (leaving a joint configuration) is the leader's log the one it compared. */
        /* A target that has moved to a later term may have had its log cut by that term's
         * leader since it acknowledged this one's: it ignores a TimeoutNow of this term. */
        if (to >= 0 && st.transferee == m->to && st.pending_config_index == 0 &&
            w->hosts[to].disk.hs.term <= st.term && host_term_at(h, st.last_index, &t) &&
            !disk_holds(w, to, st.last_index, t)) {
            rc = psim_inv_fail(&w->inv, "transfer-target-behind",
                               "nodes=%" PRIu64 ",%" PRIu64 " index=%" PRIu64
                               ": TimeoutNow sent before the target holds the leader's log",
                               h->id, m->to, st.last_index);
        }
    }
    if (rc != 0) {
        psim_halt(w);
    }
}

/* Check-quorum (thesis §6.2), seen from outside: a leader that heard no answer of its term from
 * a majority of either side of its configuration for two election timeouts of its own clock
 * (one full check period plus the one the last answer fell in) has stepped down. */
static int check_step_down(psim_world *w, psim_host *h, const praft_status *st)
{
    uint64_t limit = 2 * (uint64_t)w->opt.election_ticks;
    /* The core checks at its ticks, against the configuration of the moment: judge it at its
     * ticks, once its configuration has been the same for the whole window. */
    if (w->opt.disable_check_quorum || w->cur_event != PSIM_EV_TICK ||
        h->ticks - h->lead_tick <= limit || h->ticks - h->cfg_tick <= limit) {
        return 0;
    }
    uint64_t side[2][PRAFT_MAX_MEMBERS];
    int n[2];
    config_sides(&st->config, side, n);
    for (int k = 0; k < 2; k++) {
        int live = 0;
        for (int i = 0; i < n[k]; i++) {
            live += side[k][i] == h->id || h->ticks - heard_get(h, side[k][i]) <= limit;
        }
        if (n[k] > 0 && live <= n[k] / 2) {
            return psim_inv_fail(&w->inv, "step-down",
                                 "nodes=%" PRIu64 " term=%" PRIu64 ": still leader after %" PRIu64
                                 " ticks without answers from a majority of its %s voters",
                                 h->id, st->term, limit, k == 0 ? "new" : "old");
        }
    }
    return 0;
}

/* A leader steps down in its own term only at a tick (check-quorum) or once the configuration
 * that removes it is committed (§6: it keeps leading until C_new commits). */
static int check_left_leadership(psim_world *w, psim_host *h, const praft_status *st)
{
    if (h->last_role != PRAFT_LEADER || st->role == PRAFT_LEADER || st->term != h->last_term ||
        (w->cur_event != PSIM_EV_DELIVER && w->cur_event != PSIM_EV_DISK_DONE)) {
        return 0;
    }
    const praft_member *me = praft_config_find(&st->config, h->id);
    bool voter = me != NULL && (me->role == PRAFT_ROLE_VOTER ||
                                (st->config.joint && me->old_role == PRAFT_ROLE_VOTER));
    if (st->pending_config_index != 0 || voter) {
        return psim_inv_fail(&w->inv, "leader-step-down",
                             "nodes=%" PRIu64 " term=%" PRIu64
                             ": leader stepped down without a new term, a failed check-quorum "
                             "or a committed configuration that removes it",
                             h->id, st->term);
    }
    return 0;
}

void psim_host_check(psim_world *w, int slot)
{
    psim_host *h = &w->hosts[slot];
    if (!h->up || w->stop) {
        return;
    }
    praft_status st;
    praft_status_get(h->raft, &st);
    uint64_t ch = st.config.joint;
    for (uint32_t i = 0; i < st.config.n_members; i++) {
        const praft_member *m = &st.config.members[i];
        ch = psim_mix(ch, m->id * 16 + m->role * 4 + m->old_role);
    }
    if (ch != h->cfg_hash) {
        h->cfg_hash = ch;
        h->cfg_tick = h->ticks;
    }
    int rc = psim_inv_progress(&w->inv, slot, h->incarnation, h->id, st.commit, st.applied);
    if (rc == 0 && st.role == PRAFT_LEADER) {
        rc = psim_inv_leader(&w->inv, h->id, st.term);
        if (rc == 0 && (h->last_role != PRAFT_LEADER || h->last_term != st.term)) {
            w->elections++;
            psim_trace(w, "leader slot%d id%" PRIu64 " term%" PRIu64, slot, h->id, st.term);
            rc = psim_inv_leader_log(&w->inv, h->id, st.term, st.last_index, host_term_at, h);
            if (rc == 0) {
                uint64_t side[2][PRAFT_MAX_MEMBERS];
                int n[2];
                config_sides(&st.config, side, n);
                rc =
                    psim_inv_election_quorum(&w->inv, h->id, st.term, side[0], n[0], side[1], n[1]);
            }
            h->lead_tick = h->ticks;
            memset(h->heard_id, 0, sizeof(h->heard_id));
            if (w->xfer.on && w->xfer.sent && w->xfer.target == h->id) {
                w->xfer.won = true;
            }
        }
        if (rc == 0 && st.commit > h->seen_commit && h->last_role == PRAFT_LEADER &&
            h->last_term == st.term) {
            rc = check_leader_commit(w, h, &st);
        }
        if (rc == 0 && st.commit > w->max_commit) {
            w->max_commit = st.commit; /* the floor of every read asked from now on */
        }
        if (rc == 0 && !h->paused) {
            rc = check_step_down(w, h, &st);
        }
        if (rc == 0) {
            rc = check_match(w, h, &st);
        }
        confirm_reads(w, h, &st);
        if (rc == 0) {
            rc = psim_inv_config_in_flight(&w->inv, h->id, st.term,
                                           own_uncommitted_configs(h, st.commit, st.term));
        }
    }
    if (w->xfer.on && w->xfer.term != 0 && h->id != w->xfer.target && st.role == PRAFT_CANDIDATE &&
        st.term > w->xfer.term) {
        w->xfer.on = false; /* a competing election: the outcome is open */
    }
    if (rc == 0 && st.term > w->max_term) {
        /* A term is born only at a node that campaigns for it (§5.2); a pre-vote or any other
         * message never moves a term ahead of every candidate's (thesis §9.6). */
        if (st.role != PRAFT_CANDIDATE && st.role != PRAFT_LEADER) {
            rc = psim_inv_fail(&w->inv, "term-origin",
                               "nodes=%" PRIu64 " term=%" PRIu64
                               ": first node in a new term did not campaign for it (role %s)",
                               h->id, st.term, praft_role_name(st.role));
        }
        w->max_term = st.term;
    }
    if (rc == 0) {
        rc = check_left_leadership(w, h, &st);
    }
    if (rc == 0) {
        rc = check_durable_mark(w, h);
    }
    h->last_role = st.role;
    h->last_term = st.term;
    h->seen_commit = st.commit;
    if (rc == PT_ECORRUPT) {
        psim_halt(w);
    } else if (rc != 0) {
        psim_fail_internal(w, rc, "checking invariants");
    }
}
