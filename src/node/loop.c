/*
 * The loop thread: the one thread that owns the Raft core, the state machine and the pending
 * requests (DESIGN.md, "Threads in platoond").
 *
 * Each turn it waits for the mailbox (messages, calls, completions) or the next tick, hands
 * what arrived to the core, ticks it, and runs the ready cycle: send what may go at once, apply
 * what is committed, hand the durable part to the storage writer, and, once that is durable,
 * send what had to wait for it and advance the core (raft.h, "PERSISTENCE CONTRACT").
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "node/node_internal.h"
#include "platoon/state_machine.h"

/* How long to wait before retrying a storage write that failed (a full disk may free up). */
#define WRITE_RETRY_MS 500

static void send_all(pnode *n, const praft_msg *msgs, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        int rc = pnet_transport_send(n->net, &msgs[i]);
        if (rc != 0 && rc != PT_ENOTFOUND) {
            PT_DEBUG("sending %s to %llu: %s", praft_msg_type_name(msgs[i].type),
                     (unsigned long long)msgs[i].to, pt_strerror(rc));
        }
    }
}

void pnode__refresh_peers(pnode *n)
{
    praft_status *st = malloc(sizeof(*st));
    if (st == NULL) {
        return;
    }
    praft_status_get(n->raft, st);
    const praft_config *now = &st->config;
    const praft_config *was = &n->peers_config;
    /* Members that left: drop their lanes. */
    for (uint32_t i = 0; i < was->n_members; i++) {
        const praft_member *m = &was->members[i];
        if (m->id != n->opts.id && praft_config_find(now, m->id) == NULL) {
            pnet_transport_remove_peer(n->net, m->id);
            PT_INFO("peer %llu removed", (unsigned long long)m->id);
        }
    }
    /* Members that joined or moved. */
    for (uint32_t i = 0; i < now->n_members; i++) {
        const praft_member *m = &now->members[i];
        if (m->id == n->opts.id || m->address[0] == '\0') {
            continue;
        }
        const praft_member *old = praft_config_find(was, m->id);
        if (old == NULL || strcmp(old->address, m->address) != 0) {
            int rc = pnet_transport_set_peer(n->net, m->id, m->address);
            if (rc != 0) {
                PT_WARN("peer %llu at %s: %s", (unsigned long long)m->id, m->address,
                        pt_strerror(rc));
            } else {
                PT_INFO("peer %llu at %s", (unsigned long long)m->id, m->address);
            }
        }
    }
    /* Whether this node is still a member (thesis §4.1: a server uses the latest
     * configuration in its log, committed or not). A node that was a member and is left out
     * has been removed: it says so once, and answers clients at once instead of letting them
     * wait for a leader it will never hear from again. */
    bool member = praft_config_find(now, n->opts.id) != NULL;
    if (member) {
        n->was_member = true;
        n->removed = false;
    } else if (n->was_member && now->n_members > 0 && !n->removed) {
        n->removed = true;
        n->removed_config_index = st->last_index;
        PT_WARN("node %llu was removed from the cluster (configuration in the log up to index "
                "%llu no longer lists it): it takes no further part and refuses clients; stop "
                "it, and clear its data directory before it may join again",
                (unsigned long long)n->opts.id, (unsigned long long)st->last_index);
    }
    n->peers_config = *now;
    free(st);
}

const char *pnode__unfit(pnode *n, char *buf, size_t cap)
{
    /* A leader that removes itself leads until the change commits (thesis §4.2.2): it
     * serves until it steps down. */
    if (!n->removed || n->role == PRAFT_LEADER) {
        return NULL;
    }
    snprintf(buf, cap,
             "this node (%llu) was removed from the cluster; send requests to a member (see "
             "`platoonctl cluster status` on one)",
             (unsigned long long)n->opts.id);
    return buf;
}

const char *pnode__no_leader_message(pnode *n, char *buf, size_t cap)
{
    if (n->no_leader_since_ms == 0) {
        snprintf(buf, cap, "no leader is known");
        return buf;
    }
    time_t t = (time_t)(n->no_leader_since_wall / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, cap,
             "no leader is known since %02d:%02d:%02d UTC (%.1f s ago): a majority of voters "
             "may be down or cut off",
             tm.tm_hour, tm.tm_min, tm.tm_sec,
             (double)(pnode_now_ms() - n->no_leader_since_ms) / 1000.0);
    return buf;
}

/* A node without a leader for long says so in its log now and then, naming the likely
 * causes, instead of staying a silent candidate forever. */
static void warn_no_leader(pnode *n, int64_t now)
{
    if (n->no_leader_since_ms == 0 || n->removed || n->peers_config.n_members == 0) {
        return;
    }
    int64_t quiet = (int64_t)n->opts.election_ticks * n->opts.tick_ms * 20;
    if (now - n->no_leader_since_ms < quiet || now - n->no_leader_warned_ms < quiet * 3) {
        return;
    }
    n->no_leader_warned_ms = now;
    char why[200];
    PT_WARN("%s; this node (%llu) is %s: check that a majority of voters runs and is reachable, "
            "that this node was not removed from the cluster, and that no other process runs "
            "with id %llu",
            pnode__no_leader_message(n, why, sizeof(why)), (unsigned long long)n->opts.id,
            praft_role_name(n->role), (unsigned long long)n->opts.id);
}

/* Applies one committed entry to the state machine and answers whoever waits for it. */
static int apply_entry(pnode *n, const praft_entry *e)
{
    const pnode_sm *sm = &n->opts.sm;
    int rc = 0;
    switch (e->type) {
    case PRAFT_ENTRY_NORMAL: {
        uint8_t *result = NULL;
        size_t result_len = 0;
        rc = sm->ops->apply(sm->ctx, e->index, e->term, e->data, e->len, &result, &result_len);
        if (rc == 0) {
            pnode__requests_applied(n, e->index, e->term, PNODE_OK, result, result_len);
        }
        free(result);
        break;
    }
    case PRAFT_ENTRY_NOOP:
        rc = sm->ops->applied_noop(sm->ctx, e->index, e->term);
        if (rc == 0) {
            pnode__requests_applied(n, e->index, e->term, PNODE_OK, NULL, 0);
        }
        break;
    case PRAFT_ENTRY_CONFIG: {
        praft_config *cfg = malloc(sizeof(*cfg));
        if (cfg == NULL) {
            return PT_ENOMEM;
        }
        rc = praft_config_decode(e->data, e->len, cfg);
        if (rc == 0) {
            rc = sm->ops->applied_config(sm->ctx, e->index, e->term, cfg);
        }
        if (rc == 0) {
            n->applied_config = *cfg;
            pnode__requests_applied(n, e->index, e->term, PNODE_OK, NULL, 0);
        }
        free(cfg);
        break;
    }
    default:
        rc = PT_ECORRUPT;
        break;
    }
    return rc;
}

static void apply_committed(pnode *n)
{
    const pnode_sm *sm = &n->opts.sm;
    for (size_t i = 0; i < n->rd.n_committed && !n->sm_failed; i++) {
        const praft_entry *e = &n->rd.committed[i];
        if (e->index <= sm->ops->applied_index(sm->ctx)) {
            continue; /* covered by the snapshot the state machine was restored from */
        }
        int rc = apply_entry(n, e);
        n->counters.entries_applied++;
        if (rc != 0) {
            /* Applying differently from the other nodes would be worse than stopping: the
             * node stops serving and says why (state machine safety, §5.4.3). */
            PT_ERROR("cannot apply entry %llu (term %llu): %s; this node stops applying",
                     (unsigned long long)e->index, (unsigned long long)e->term, pt_strerror(rc));
            n->sm_failed = true;
            pnode__requests_fail_all(n, PNODE_INTERNAL, "the state machine failed on this node");
        }
    }
}

static bool ready_has_config(const praft_ready *rd)
{
    if (rd->has_snapshot) {
        return true;
    }
    for (size_t i = 0; i < rd->n_entries; i++) {
        if (rd->entries[i].type == PRAFT_ENTRY_CONFIG) {
            return true;
        }
    }
    return false;
}

static void note_soft_state(pnode *n)
{
    if (n->rd.leader != n->leader || n->rd.role != n->role || n->rd.term != n->term) {
        if (n->rd.leader != n->leader) {
            PT_INFO("term %llu: leader is %llu (this node is %s)", (unsigned long long)n->rd.term,
                    (unsigned long long)n->rd.leader, praft_role_name(n->rd.role));
            if (n->rd.leader != PRAFT_NONE) {
                atomic_fetch_add_explicit(&n->metrics.leader_changes, 1, memory_order_relaxed);
            }
        }
        if (n->rd.leader == PRAFT_NONE && n->no_leader_since_ms == 0) {
            n->no_leader_since_ms = pnode_now_ms();
            n->no_leader_since_wall = pnode_wall_ms();
        } else if (n->rd.leader != PRAFT_NONE) {
            n->no_leader_since_ms = 0;
            n->ever_leader = true;
        }
        if (n->role == PRAFT_LEADER && n->rd.role != PRAFT_LEADER) {
            /* A leader that steps down (no majority answered in an election timeout, a
             * transfer, a higher term) cannot tell whether its uncommitted entries will be
             * kept: its clients learn so now rather than at their deadline. */
            pnode__proposals_fail(n, PNODE_UNAVAILABLE,
                                  "this node stopped being the leader before the write was "
                                  "committed; the outcome is unknown: retry with the same "
                                  "client_id and sequence");
        }
        n->leader = n->rd.leader;
        n->role = n->rd.role;
        n->term = n->rd.term;
    }
}

/* Fills the writer's job from the ready; false if nothing needs to be durable. */
static bool prepare_job(pnode *n)
{
    writer_job *job = &n->job;
    memset(job, 0, sizeof(*job));
    const praft_ready *rd = &n->rd;
    if (rd->has_snapshot_chunk) {
        job->has_chunk = true;
        job->chunk_meta = rd->snapshot_chunk.meta;
        job->chunk_offset = rd->snapshot_chunk.offset;
        job->chunk_data = rd->snapshot_chunk.data;
        job->chunk_len = rd->snapshot_chunk.len;
    }
    if (rd->has_snapshot) {
        job->has_snapshot = true;
        job->snapshot = rd->snapshot;
    }
    job->batch.entries = rd->entries;
    job->batch.n_entries = rd->n_entries;
    if (!rd->has_snapshot) {
        /* With a snapshot the loop restores the state machine first (finish_ready). */
        job->after = rd->send_after_persist;
        job->n_after = rd->n_send_after_persist;
    }
    bool durable = job->has_chunk || job->has_snapshot || rd->n_entries > 0;
    if (rd->has_hard_state) {
        /* Only the commit index moved: not worth a sync, which would also hold back the next
         * ready (and so every proposal behind it) for a whole disk flush. Each replicated
         * entry would otherwise cost two synced writes on every node, one for the entry and
         * one for the commit index that follows it. The newest hard state is kept and goes
         * with the next write that happens anyway. */
        bool commit_only = n->hs_seen && rd->hard_state.term == n->hs_last.term &&
                           rd->hard_state.vote == n->hs_last.vote;
        n->hs_seen = true;
        n->hs_last = rd->hard_state;
        n->hs_deferred = true;
        durable = durable || !commit_only;
    }
    if (durable && n->hs_deferred) {
        job->batch.hard_state = &n->hs_last;
        n->hs_deferred = false;
    }
    /* The store keeps the latest configuration alongside the log, for inspection; the core
     * itself derives its configuration from the snapshot and the log. */
    for (size_t i = rd->n_entries; i-- > 0;) {
        const praft_entry *e = &rd->entries[i];
        if (e->type == PRAFT_ENTRY_CONFIG &&
            praft_config_decode(e->data, e->len, &job->config) == 0) {
            job->batch.config = &job->config;
            job->batch.config_index = e->index;
            break;
        }
    }
    return durable;
}

static void finish_ready(pnode *n)
{
    if (n->rd.has_snapshot) {
        int rc = pnode__restore_from(n, &n->rd.snapshot, true);
        if (rc != 0) {
            PT_ERROR("cannot restore the state machine from snapshot %llu: %s",
                     (unsigned long long)n->rd.snapshot.index, pt_strerror(rc));
            n->sm_failed = true;
            pnode__requests_fail_all(n, PNODE_INTERNAL, "the state machine failed on this node");
        }
    }
    if (!(n->ready_needs_write && n->job.after_sent)) {
        send_all(n, n->rd.send_after_persist, n->rd.n_send_after_persist);
    }
    pnode__requests_reads(n, n->rd.reads, n->rd.n_reads);
    praft_advance(n->raft, &n->rd);
    n->ready_out = false;
    n->ready_needs_write = false;
    /* Only now is everything applied also durable in this node's log. */
    pnode__maybe_snapshot(n, false);
}

void pnode__process_ready(pnode *n)
{
    while (!n->ready_out && praft_has_ready(n->raft)) {
        int rc = praft_ready_get(n->raft, &n->rd);
        if (rc != 0) {
            PT_ERROR("taking the next batch from the core: %s", pt_strerror(rc));
            return;
        }
        n->ready_out = true;
        n->counters.readies++;
        note_soft_state(n);
        if (ready_has_config(&n->rd)) {
            pnode__refresh_peers(n);
        }
        /* Thesis §10.2.1: the leader's appends go out while its own write is in flight. */
        send_all(n, n->rd.send_now, n->rd.n_send_now);
        apply_committed(n);
        for (size_t i = 0; i < n->rd.n_committed; i++) {
            if (n->rd.committed[i].type == PRAFT_ENTRY_CONFIG) {
                pnode__refresh_peers(n);
                break;
            }
        }
        if (prepare_job(n)) {
            n->ready_needs_write = true;
            n->counters.writes++;
            n->counters.entries_written += n->job.batch.n_entries;
            pnode__writer_submit(n);
            return; /* the rest of this ready waits for the write */
        }
        finish_ready(n);
    }
}

/* A message from a node this one has no address for (not in its configuration): dial it back
 * at the address it advertised, so that it can be answered (thesis §4.2.1: a new server must
 * be able to reply to the leader before it knows the configuration). */
static void learn_sender(pnode *n, const pnet_event *ev)
{
    uint64_t from = ev->msg->from;
    const praft_member *known = praft_config_find(&n->peers_config, from);
    if (ev->peer_address[0] != '\0' &&
        (from == n->opts.id || (known != NULL && known->address[0] != '\0' &&
                                !pnode__same_endpoint(known->address, ev->peer_address)))) {
        /* Two processes with one id: the cluster would take them for one member, and the one
         * at the wrong address would never be answered. Said now and then, not per message. */
        int64_t now = pnode_now_ms();
        if (now - n->dup_warned_ms > 10000 || n->dup_warned_ms == 0) {
            n->dup_warned_ms = now;
            PT_WARN("a message from node %llu came from %s, but node %llu is %s: is a second "
                    "process running with id %llu?",
                    (unsigned long long)from, ev->peer_address, (unsigned long long)from,
                    from == n->opts.id ? "this node" : known->address, (unsigned long long)from);
        }
        return;
    }
    if (ev->peer_address[0] == '\0' || from == n->opts.id || known != NULL) {
        return;
    }
    for (size_t i = 0; i < n->n_learned; i++) {
        if (n->learned[i].id == from && strcmp(n->learned[i].address, ev->peer_address) == 0) {
            n->learned_seen_ms[i] = pnode_now_ms();
            return;
        }
    }
    if (pnet_transport_set_peer(n->net, from, ev->peer_address) == 0) {
        /* Remember it (replacing an older address of the same node), also to forward requests
         * to a leader that is being removed and so is no longer in the configuration. */
        size_t k = 0;
        while (k < n->n_learned && n->learned[k].id != from) {
            k++;
        }
        if (k == PRAFT_MAX_MEMBERS) {
            k = 0; /* full: forget the oldest */
        } else if (k == n->n_learned) {
            n->n_learned++;
        }
        memset(&n->learned[k], 0, sizeof(n->learned[k]));
        n->learned[k].id = from;
        n->learned_seen_ms[k] = pnode_now_ms();
        snprintf(n->learned[k].address, sizeof(n->learned[k].address), "%s", ev->peer_address);
        PT_INFO("peer %llu at %s (learned from its messages)", (unsigned long long)from,
                ev->peer_address);
    }
}

/*
 * Forgets the peers learned from their messages that are not members and have been silent for
 * ten election timeouts (at least 5 s): typically a node removed from the cluster that kept
 * talking for a while and was then stopped. Without this its lane would keep dialing it until
 * this node restarts. The current leader is kept (requests are forwarded to it by the address
 * learned); a learned peer that became a member is left to the configuration.
 */
static void forget_silent_learned(pnode *n, int64_t now)
{
    int64_t ttl = (int64_t)n->opts.election_ticks * n->opts.tick_ms * 10;
    if (ttl < 5000) {
        ttl = 5000;
    }
    size_t k = 0;
    for (size_t i = 0; i < n->n_learned; i++) {
        const praft_member *m = &n->learned[i];
        bool member = praft_config_find(&n->peers_config, m->id) != NULL;
        if (!member && (m->id == n->leader || now - n->learned_seen_ms[i] < ttl)) {
            n->learned[k] = n->learned[i];
            n->learned_seen_ms[k] = n->learned_seen_ms[i];
            k++;
            continue;
        }
        if (!member) {
            pnet_transport_remove_peer(n->net, m->id);
            PT_INFO("peer %llu at %s forgotten (not a member, silent for %lld s)",
                    (unsigned long long)m->id, m->address,
                    (long long)((now - n->learned_seen_ms[i]) / 1000));
        }
    }
    n->n_learned = k;
}

void pnode__heard(pnode *n, uint64_t id)
{
    size_t cap = sizeof(n->heard_id) / sizeof(n->heard_id[0]);
    size_t free_slot = cap, oldest = 0;
    for (size_t i = 0; i < cap; i++) {
        if (n->heard_id[i] == id) {
            n->heard_ms[i] = pnode_now_ms();
            return;
        }
        if (n->heard_id[i] == 0 && free_slot == cap) {
            free_slot = i;
        }
        if (n->heard_ms[i] < n->heard_ms[oldest]) {
            oldest = i;
        }
    }
    /* Room for twice the largest configuration; beyond that the stalest entry goes. */
    size_t slot = free_slot != cap ? free_slot : oldest;
    n->heard_id[slot] = id;
    n->heard_ms[slot] = pnode_now_ms();
}

int64_t pnode__since_heard_ms(const pnode *n, uint64_t id)
{
    for (size_t i = 0; i < sizeof(n->heard_id) / sizeof(n->heard_id[0]); i++) {
        if (n->heard_id[i] == id && id != 0) {
            return pnode_now_ms() - n->heard_ms[i];
        }
    }
    return -1;
}

static void handle_event(pnode *n, pnet_event *ev)
{
    switch (ev->type) {
    case PNET_EV_MSG: {
        learn_sender(n, ev);
        pnode__heard(n, ev->msg->from);
        int rc = praft_step(n->raft, ev->msg);
        if (rc != 0 && rc != PT_EMALFORMED) {
            PT_WARN("step %s from %llu: %s", praft_msg_type_name(ev->msg->type),
                    (unsigned long long)ev->msg->from, pt_strerror(rc));
        }
        break;
    }
    case PNET_EV_CALL:
        pnode__dispatch_call(n, ev);
        break;
    case PNET_EV_CALL_CANCELLED:
        /* A request stays pending until its work completes or its deadline passes; the
         * answer then finds the call gone, which the transport handles. A stream waits for
         * nothing that would end it: it is closed now. */
        pnode__streams_cancelled(n, ev->call);
        break;
    case PNET_EV_STREAM_READY:
        pnode__streams_ready(n, ev->call);
        break;
    case PNET_EV_CLIENT_DONE:
        ev->done(ev->done_ctx, ev->status, ev->message ? ev->message : "", ev->data, ev->len);
        break;
    default:
        break;
    }
}

static void take_inbox(pnode *n)
{
    pthread_mutex_lock(&n->inbox_mu);
    pnode_request *list = n->inbox;
    n->inbox = NULL;
    pthread_mutex_unlock(&n->inbox_mu);
    while (list != NULL) {
        pnode_request *req = list;
        list = req->next;
        req->next = NULL;
        if (!pnode_is_leader(n)) {
            pnode_fail(req, PNODE_FAILED_PRECONDITION, "this node is not the leader");
            continue;
        }
        pnode_submit(n, req, req->data, req->len, NULL, NULL);
    }
}

/* Says in the log what the core refused: messages no correct peer sends (at most one line every
 * ten seconds, with the count), and elections it cannot start because its term is the largest
 * a node may hold (PRAFT_TERM_MAX, once). */
static void report_refusals(pnode *n, const praft_status *rs, int64_t now)
{
    const praft_counters *c = &rs->counters;
    if (c->msgs_dropped_malformed > n->logged_malformed &&
        (n->logged_malformed_ms == 0 || now - n->logged_malformed_ms >= 10000)) {
        PT_WARN("node %" PRIu64 ": refused %" PRIu64
                " malformed peer messages (a term no node could follow, impossible indices or "
                "undecodable entries); %" PRIu64 " in all",
                n->opts.id, c->msgs_dropped_malformed - n->logged_malformed,
                c->msgs_dropped_malformed);
        n->logged_malformed = c->msgs_dropped_malformed;
        n->logged_malformed_ms = now;
    }
    if (c->campaigns_refused_term > 0 && n->logged_term_refused == 0) {
        PT_ERROR("node %" PRIu64 ": term %" PRIu64
                 " is the largest a node may hold; it will not start an election",
                 n->opts.id, rs->term);
        n->logged_term_refused = c->campaigns_refused_term;
    }
}

static void publish_status(pnode *n)
{
    pnode_status *st = malloc(sizeof(*st));
    if (st == NULL) {
        return;
    }
    praft_status_get(n->raft, &st->raft);
    report_refusals(n, &st->raft, pnode_now_ms());
    st->applied = n->opts.sm.ops->applied_index(n->opts.sm.ctx);
    st->snapshot_index = n->last_snapshot_index;
    pthread_mutex_lock(&n->store_mu);
    pstore_log_range(n->store, &st->first_index, &st->last_index);
    pthread_mutex_unlock(&n->store_mu);
    st->failed = n->sm_failed;
    st->counters = n->counters;

    /* Monitoring: readiness against the commit index of the previous publication (monitor.h:
     * pnode_ready), the leader's view of its peers, the application's gauges. */
    pnode__published pub;
    memset(&pub, 0, sizeof(pub));
    pub.commit_before = n->commit_published;
    pub.ready = pnode__readiness(n, &st->raft, st->applied, pub.commit_before, pub.not_ready,
                                 sizeof(pub.not_ready));
    n->commit_published = st->raft.commit;
    pub.leader_changes_seen =
        atomic_load_explicit(&n->metrics.leader_changes, memory_order_relaxed);
    for (size_t i = 0; i < st->raft.n_progress && i < PRAFT_MAX_MEMBERS; i++) {
        pub.peer_id[pub.n_peers] = st->raft.progress[i].id;
        pub.peer_heard_ago_ms[pub.n_peers] = pnode__since_heard_ms(n, st->raft.progress[i].id);
        pub.n_peers++;
    }
    pnode__metrics_sample(n);

    pthread_mutex_lock(&n->status_mu);
    n->status = *st;
    n->published = pub;
    pthread_mutex_unlock(&n->status_mu);
    free(st);
}

void *pnode__loop_main(void *arg)
{
    pthread_setname_np(pthread_self(), "pt-loop"); /* shown by top -H, perf, gdb */
    pnode *n = arg;
    const int64_t tick = n->opts.tick_ms;
    n->next_tick_ms = pnode_now_ms() + tick;
    int64_t retry_write_at = 0;
    publish_status(n);

    while (!atomic_load(&n->stopping)) {
        pnet_event *events = NULL;
        int64_t deadline = n->next_tick_ms;
        if (retry_write_at != 0 && retry_write_at < deadline) {
            deadline = retry_write_at;
        }
        pnet_mailbox_wait(n->mailbox, deadline, &events);
        /* What this turn sends (answers, messages to peers) is written by the transport's
         * sender thread, woken once at the end of the turn: the loop never writes a socket. */
        pnet_transport_hold(n->net);
        n->counters.loop_turns++;
        /* Time first, then what arrived: after a pause (SIGSTOP, a stall) the core must learn
         * how much time passed before it answers anything that depends on time (a leader's
         * lease, thesis §6.4.1; check-quorum). Replaying every missed tick is not needed: two
         * election timeouts' worth is the same as any longer pause. */
        int64_t now = pnode_now_ms();
        if (now >= n->next_tick_ms) {
            int64_t behind = (now - n->next_tick_ms) / tick + 1;
            int64_t cap = (int64_t)n->opts.election_ticks * 2;
            for (int64_t i = 0; i < behind && i < cap; i++) {
                praft_tick(n->raft);
            }
            n->next_tick_ms = now - (now - n->next_tick_ms) % tick + tick;
            publish_status(n);
            forget_silent_learned(n, now);
            warn_no_leader(n, now);
        }
        while (events != NULL) {
            pnet_event *ev = events;
            events = ev->next;
            n->counters.events++;
            handle_event(n, ev);
            pnet_event_free(ev);
        }
        take_inbox(n);

        int rc = 0;
        if (n->ready_out && n->ready_needs_write && retry_write_at == 0 &&
            pnode__writer_poll(n, &rc)) {
            if (rc == 0) {
                finish_ready(n);
            } else {
                /* Nothing of the batch is durable and nothing that depends on it was sent;
                 * try again shortly (a full disk may be freed). */
                retry_write_at = pnode_now_ms() + WRITE_RETRY_MS;
            }
        }
        if (retry_write_at != 0 && pnode_now_ms() >= retry_write_at) {
            retry_write_at = 0;
            pnode__writer_submit(n);
        }
        pnode__snapshot_poll(n);

        pnode__process_ready(n);
        pnode__requests_progress(n);
        pnode__admin_progress(n);
        pnode__streams_pump(n);
        /* With nothing waiting, the loop writes a quiet turn's one or two sends itself. */
        pnet_transport_flush(n->net, pnet_mailbox_pending(n->mailbox) == 0);
    }
    return NULL;
}
