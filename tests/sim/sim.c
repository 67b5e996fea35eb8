/*
 * The world: creation, the event loop, tracing, healing, the liveness and final checks.
 */
#include "sim/sim.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "platoon/error.h"
#include "sim/linearizability.h"

int psim__host_create(psim_world *w, int slot, uint64_t id, const praft_config *boot);

#define LIN_MAX_STEPS 2000000ULL

static const char *const fault_names[] = {"loss",      "delay",      "dup",      "reorder",
                                          "partition", "crash",      "pause",    "slow",
                                          "snapshot",  "membership", "transfer", "replay"};
#define N_FAULTS (sizeof(fault_names) / sizeof(fault_names[0]))

int psim_faults_parse(const char *s, uint32_t *mask)
{
    *mask = 0;
    if (strcmp(s, "all") == 0) {
        *mask = PSIM_F_ALL;
        return 0;
    }
    if (strcmp(s, "none") == 0) {
        return 0;
    }
    while (*s) {
        size_t len = strcspn(s, ",");
        size_t i = 0;
        for (; i < N_FAULTS; i++) {
            if (strlen(fault_names[i]) == len && strncmp(s, fault_names[i], len) == 0) {
                *mask |= 1u << i;
                break;
            }
        }
        if (i == N_FAULTS) {
            return PT_EINVAL;
        }
        s += len;
        s += *s == ',';
    }
    return 0;
}

void psim_faults_format(uint32_t mask, char *buf, size_t cap)
{
    if (mask == PSIM_F_ALL) {
        snprintf(buf, cap, "all");
        return;
    }
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_FAULTS; i++) {
        if ((mask & (1u << i)) && at < cap) {
            at += (size_t)snprintf(buf + at, cap - at, "%s%s", at ? "," : "", fault_names[i]);
        }
    }
    if (at == 0) {
        snprintf(buf, cap, "none");
    }
}

void psim_options_init(psim_options *o, uint64_t seed, int nodes)
{
    memset(o, 0, sizeof(*o));
    o->seed = seed;
    o->nodes = nodes;
    o->steps = 20000;
    o->faults = PSIM_F_ALL;
    o->nemesis = true;
    o->workload = true;
    o->clients = 3;
    o->keys = 3;
    o->heal_ticks = 300;
    o->msg_bytes = 200;
    o->election_ticks = 10;
    o->chunk_bytes = 48;
    o->inflight = 4;
}

void psim_options_mix(psim_options *o, uint64_t seed)
{
    psim_rng r;
    psim_rng_init(&r, seed, 99);
    static const int sizes[] = {3, 4, 5, 7, 3, 5};
    psim_options_init(o, seed, sizes[psim_rng_below(&r, 6)]);
    o->mix = true;
    uint64_t mode = psim_rng_below(&r, 12);
    if (mode < 4) {
        o->lease_reads = true; /* leases need check-quorum (and pre-vote is usual) */
    } else if (mode < 6) {
        o->disable_pre_vote = true;
    } else if (mode < 7) {
        o->disable_pre_vote = true;
        o->disable_check_quorum = true;
    } else if (mode < 8) {
        o->disable_check_quorum = true;
    }
    static const uint32_t msg[] = {40, 200, 200, 1000}, chunk[] = {16, 48, 48, 256};
    static const uint32_t infl[] = {1, 4, 4, 16};
    o->msg_bytes = msg[psim_rng_below(&r, 4)];
    o->chunk_bytes = chunk[psim_rng_below(&r, 4)];
    o->inflight = infl[psim_rng_below(&r, 4)];
    /* Clocks drift within the bound leases allow (see psim_options.drift_permille). */
    o->drift_permille = (uint32_t)psim_rng_below(&r, 59);
    /* Longer election timeouts give leases more than one tick of drift allowance. */
    static const uint32_t et[] = {10, 10, 10, 16, 24, 48};
    o->election_ticks = et[psim_rng_below(&r, 6)];
    o->heal_ticks = 30 * o->election_ticks;
}

void psim_trace(psim_world *w, const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "%" PRIu64 " %" PRIu64 " ", w->step, w->now);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2) {
        len = sizeof(line) - 2;
    }
    line[len++] = '\n';
    line[len] = '\0';
    /* FNV-1a over every byte of the trace, written or not: two runs are identical exactly
     * when their hashes agree. */
    for (size_t i = 0; i < len; i++) {
        w->trace_hash = (w->trace_hash ^ (uint8_t)line[i]) * 0x100000001b3ULL;
    }
    if (w->opt.trace != NULL) {
        fputs(line, w->opt.trace);
    }
}

void psim_halt(psim_world *w)
{
    if (!w->stop) {
        psim_trace(w, "VIOLATION %s %s", w->inv.violation.invariant, w->inv.violation.detail);
    }
    w->stop = true;
}

void psim_fail_internal(psim_world *w, int rc, const char *what)
{
    if (w->stop) {
        return;
    }
    w->error = rc;
    psim_inv_fail(&w->inv, "core-error", "%s failed: %s", what, pt_error_name(rc));
    psim_halt(w);
}

int psim_schedule(psim_world *w, uint64_t delay, int type, int slot, uint64_t a, void *payload)
{
    psim_event ev = {
        .time = w->now + delay, .type = type, .slot = slot, .a = a, .payload = payload};
    int rc = psim_eventq_push(&w->q, ev);
    if (rc != 0) {
        if (payload != NULL) {
            psim_payload_free(type, payload);
        }
        psim_fail_internal(w, rc, "scheduling an event");
    }
    return rc;
}

int psim_world_new(const psim_options *opt, psim_world **out)
{
    if (opt->nodes < 1 || opt->nodes > PSIM_MAX_NODES || opt->clients < 0 ||
        opt->clients > PSIM_MAX_CLIENTS || opt->keys < 1 || opt->keys > PSIM_MAX_KEYS) {
        return PT_EINVAL;
    }
    psim_world *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return PT_ENOMEM;
    }
    w->opt = *opt;
    w->trace_hash = 0xcbf29ce484222325ULL;
    psim_rng_init(&w->rng_net, opt->seed, 1);
    psim_rng_init(&w->rng_nem, opt->seed, 2);
    psim_rng_init(&w->rng_cli, opt->seed, 3);
    psim_rng_init(&w->rng_disk, opt->seed, 4);
    psim_rng_init(&w->rng_app, opt->seed, 5);
    psim_eventq_init(&w->q);
    psim_history_init(&w->hist);
    psim_inv_init(&w->inv);
    psim_pairmap_init(&w->xfer_votes);
    psim_pairmap_init(&w->free_votes);
    w->n_slots = opt->nodes;
    w->net.delay_min = 5;
    w->net.delay_max = 40;
    praft_config boot = {.joint = false, .n_members = (uint32_t)opt->nodes};
    for (int s = 0; s < opt->nodes; s++) {
        boot.members[s].id = (uint64_t)s + 1;
        boot.members[s].role = PRAFT_ROLE_VOTER;
        snprintf(boot.members[s].address, PRAFT_ADDRESS_MAX, "sim-%d", s + 1);
    }
    w->next_id = (uint64_t)opt->nodes;
    w->max_term = 1; /* every bootstrapped node starts in term 1 */
    w->lure_slot = -1;
    w->lure_permille = 500;
    w->stick.leader = -1;
    int rc = 0;
    for (int s = 0; s < opt->nodes && rc == 0; s++) {
        rc = psim__host_create(w, s, (uint64_t)s + 1, &boot);
    }
    for (int c = 0; c < opt->clients && rc == 0; c++) {
        w->clients[c].id = c;
        if (opt->workload) {
            rc = psim_schedule(w, psim_rng_range(&w->rng_cli, 1, 20 * PSIM_TICK),
                               PSIM_EV_CLIENT_INVOKE, c, 0, NULL);
        }
    }
    if (rc == 0 && opt->lease_reads) {
        /* Leases rely on check-quorum's stickiness (thesis §6.4.1): the core must refuse a
         * configuration with leases and without check-quorum, not run it. */
        psim_disk d;
        psim_disk_init(&d);
        praft_options o;
        praft_options_init(&o, 99);
        o.lease_reads = true;
        o.disable_check_quorum = true;
        praft_storage st = psim_disk_storage(&d);
        praft_node *n = NULL;
        if (praft_new(&o, &st, &n) == 0) {
            praft_free(n);
            psim_inv_fail(&w->inv, "options-contract",
                          "nodes=* : lease_reads without check-quorum was accepted");
            psim_halt(w);
        }
        psim_disk_free(&d);
    }
    if (rc == 0 && opt->nemesis) {
        rc = psim_schedule(w, 20 * PSIM_TICK, PSIM_EV_NEMESIS, -1, 0, NULL);
    }
    if (rc != 0) {
        psim_world_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

void psim_world_free(psim_world *w)
{
    if (w == NULL) {
        return;
    }
    for (int s = 0; s < w->n_slots; s++) {
        psim_host_release(&w->hosts[s]);
        psim_disk_free(&w->hosts[s].disk);
    }
    psim_eventq_free(&w->q, psim_payload_free);
    psim_net_free(w);
    psim_history_free(&w->hist);
    psim_inv_free(&w->inv);
    psim_pairmap_free(&w->xfer_votes);
    psim_pairmap_free(&w->free_votes);
    free(w);
}

static void dispatch(psim_world *w, psim_event *ev)
{
    bool all = false;
    switch (ev->type) {
    case PSIM_EV_TICK:
        psim_host_tick(w, ev->slot, ev->a);
        break;
    case PSIM_EV_DELIVER:
        psim_host_deliver(w, ev->slot, ev->payload);
        break;
    case PSIM_EV_DISK_DONE:
        psim_host_disk_done(w, ev->slot, ev->a);
        break;
    case PSIM_EV_CLIENT_REQ:
        psim_host_client_req(w, ev->slot, ev->payload);
        break;
    case PSIM_EV_CLIENT_RESP:
        psim_client_resp(w, ev->payload);
        free(ev->payload);
        return;
    case PSIM_EV_CLIENT_TIMER:
        psim_client_timer(w, ev->slot, ev->a);
        return;
    case PSIM_EV_CLIENT_INVOKE:
        psim_client_invoke(w, ev->slot);
        return;
    case PSIM_EV_NEMESIS:
        if (!w->healing && w->opt.nemesis) {
            psim_nemesis_act(w);
            psim_schedule(w, psim_rng_range(&w->rng_nem, PSIM_TICK, 12 * PSIM_TICK),
                          PSIM_EV_NEMESIS, -1, 0, NULL);
        }
        all = true;
        break;
    case PSIM_EV_NEMESIS_STEP:
        if (!w->healing) {
            psim_nemesis_step(w);
        }
        all = true;
        break;
    case PSIM_EV_FIGURE8:
        w->figure8_armed = false;
        if (!w->healing) {
            psim_nemesis_figure8(w, ev->a);
        }
        all = true;
        break;
    case PSIM_EV_RESTART:
        psim_host_restart(w, ev->slot);
        break;
    case PSIM_EV_RESUME:
        psim_host_resume(w, ev->slot);
        break;
    default:
        break;
    }
    for (int s = 0; s < w->n_slots && !w->stop; s++) {
        if (all || s == ev->slot) {
            psim_host_pump(w, s);
            psim_host_check(w, s);
        }
    }
}

static bool run_one(psim_world *w)
{
    psim_event ev;
    if (w->stop || psim_eventq_pop(&w->q, &ev) != 0) {
        return false;
    }
    w->now = ev.time;
    w->step++;
    w->cur_event = ev.type;
    dispatch(w, &ev);
    return true;
}

void psim_world_run_steps(psim_world *w, uint64_t steps)
{
    for (uint64_t i = 0; i < steps && run_one(w); i++) {
    }
}

void psim_world_run_ticks(psim_world *w, uint64_t ticks)
{
    uint64_t until = w->now + ticks * PSIM_TICK;
    while (!w->stop && w->q.n > 0 && w->q.heap[0].time <= until) {
        run_one(w);
    }
    if (!w->stop && w->now < until) {
        w->now = until;
    }
}

int psim_world_count_leaders(psim_world *w, uint64_t *max_term)
{
    int n = 0;
    uint64_t mt = 0;
    for (int s = 0; s < w->n_slots; s++) {
        psim_host *h = &w->hosts[s];
        if (!h->up) {
            continue;
        }
        praft_status st;
        praft_status_get(h->raft, &st);
        n += st.role == PRAFT_LEADER;
        mt = st.term > mt ? st.term : mt;
    }
    if (max_term != NULL) {
        *max_term = mt;
    }
    return n;
}

int psim_world_leader(psim_world *w)
{
    int best = -1;
    uint64_t best_term = 0;
    for (int s = 0; s < w->n_slots; s++) {
        psim_host *h = &w->hosts[s];
        if (!h->up || h->paused) {
            continue;
        }
        praft_status st;
        praft_status_get(h->raft, &st);
        if (st.role == PRAFT_LEADER && st.term >= best_term) {
            best = s;
            best_term = st.term;
        }
    }
    return best;
}

void psim_world_heal(psim_world *w)
{
    psim_trace(w, "heal all");
    w->healing = true;
    psim_net_heal(w);
    w->net.loss_permille = w->net.dup_permille = w->net.replay_permille = 0;
    w->lure_slot = -1;
    w->xfer.on = false;
    w->net.delay_min = 5;
    w->net.delay_max = 40;
    w->net.reorder = false;
    for (int s = 0; s < w->n_slots && !w->stop; s++) {
        psim_host *h = &w->hosts[s];
        h->slow = false;
        if (h->exists && !h->up) {
            psim_host_restart(w, s);
        }
        psim_host_resume(w, s);
        psim_host_pump(w, s);
        /* What the resume did (ticks missed while paused, in lease mode) is judged now, as if
         * it were a resume event, not at the node's next message. */
        w->cur_event = PSIM_EV_RESUME;
        psim_host_check(w, s);
    }
}

/* A leader that every up member of its configuration follows. */
static bool stable_leader(psim_world *w)
{
    int l = psim_world_leader(w);
    if (l < 0) {
        return false;
    }
    praft_status ls;
    praft_status_get(w->hosts[l].raft, &ls);
    for (int s = 0; s < w->n_slots; s++) {
        psim_host *h = &w->hosts[s];
        if (!h->up || praft_config_find(&ls.config, h->id) == NULL) {
            continue;
        }
        praft_status st;
        praft_status_get(h->raft, &st);
        if (st.leader != ls.id || st.term != ls.term) {
            return false;
        }
    }
    return true;
}

int psim_world_check_liveness(psim_world *w)
{
    if (w->stop) {
        return PT_ECORRUPT;
    }
    psim_world_heal(w);
    uint64_t start = w->now;
    for (uint32_t t = 0; t < w->opt.heal_ticks && !w->stop; t++) {
        psim_world_run_ticks(w, 1);
        if (stable_leader(w) && psim_clients_idle(w)) {
            psim_trace(w, "live after %" PRIu64 " ticks", (w->now - start) / PSIM_TICK);
            return 0;
        }
    }
    if (w->stop) {
        return PT_ECORRUPT;
    }
    int busy = 0;
    for (int c = 0; c < w->opt.clients; c++) {
        busy += w->clients[c].busy;
    }
    psim_inv_fail(&w->inv, "liveness",
                  "nodes=* leader=%s busy_clients=%d: %" PRIu32
                  " ticks after every fault healed, the cluster %s",
                  stable_leader(w) ? "yes" : "no", busy, w->opt.heal_ticks,
                  stable_leader(w) ? "still has unfinished requests" : "has no stable leader");
    psim_halt(w);
    return PT_ECORRUPT;
}

int psim_world_final_checks(psim_world *w)
{
    if (w->stop) {
        return PT_ECORRUPT;
    }
    psim_lin_report rep;
    int rc = psim_lin_check(&w->hist, LIN_MAX_STEPS, &rep);
    if (rc == PT_ETIMEDOUT) {
        w->lin_inconclusive++;
        return 0;
    }
    if (rc == PT_ECORRUPT) {
        psim_inv_fail(&w->inv, "linearizability", "key=%" PRIu32 " ops=%zu: %s", rep.key, rep.n_ops,
                      rep.detail);
        psim_halt(w);
        return rc;
    }
    if (rc != 0) {
        psim_fail_internal(w, rc, "the linearizability check");
    }
    return rc;
}
