/*
 * The named scenarios: the classic situations every serious Raft test suite drives a cluster
 * through, each scripted on top of the simulated world. Every one ends by healing the cluster
 * and checking liveness, convergence of the state machines and linearizability of the client
 * history, besides the invariants checked after every step.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "platoon/error.h"
#include "sim/run.h"

#define DIRECT_CLIENT (PSIM_MAX_CLIENTS - 1) /* proposals made straight at a core */

int psim__host_create(psim_world *w, int slot, uint64_t id, const praft_config *boot);

static int setup(uint64_t seed, int nodes, FILE *trace, psim_world **w)
{
    psim_options o;
    psim_options_init(&o, seed, nodes);
    o.nemesis = false;
    o.workload = false;
    o.clients = 5;
    o.trace = trace;
    return psim_world_new(&o, w);
}

/* Records a failed expectation of a scenario as a violation. */
static bool expect(psim_world *w, bool cond, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool expect(psim_world *w, bool cond, const char *fmt, ...)
{
    if (cond || w->stop) {
        return cond;
    }
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    psim_inv_fail(&w->inv, "scenario", "%s", buf);
    psim_halt(w);
    return false;
}

static void status_of(psim_world *w, int slot, praft_status *st)
{
    memset(st, 0, sizeof(*st));
    if (w->hosts[slot].up) {
        praft_status_get(w->hosts[slot].raft, st);
    }
}

/* Runs until a leader is known to every up node it can reach, at most @max ticks. */
static int wait_leader(psim_world *w, uint64_t max)
{
    for (uint64_t t = 0; t < max && !w->stop; t++) {
        psim_world_run_ticks(w, 1);
        int l = psim_world_leader(w);
        if (l >= 0) {
            return l;
        }
    }
    return -1;
}

/* Runs one client operation to its end (at most @max ticks); true if it completed ok. */
static bool op_sync(psim_world *w, int c, uint32_t kind, uint32_t key, uint64_t max,
                    uint64_t *value)
{
    if (psim_client_start(w, c, kind, key, 0) != 0) {
        return false;
    }
    for (uint64_t t = 0; t < max && w->clients[c].busy && !w->stop; t++) {
        psim_world_run_ticks(w, 1);
    }
    if (w->clients[c].busy) {
        return false;
    }
    if (value != NULL) {
        *value = w->clients[c].op.value;
    }
    return w->clients[c].op.outcome == PSIM_OUT_OK;
}

/* Proposes a command straight at the core of @slot (not through a client). */
static int propose_at(psim_world *w, int slot, uint64_t *index)
{
    uint8_t buf[64];
    size_t len;
    uint64_t v = ++w->next_value;
    psim_kv_encode_put(DIRECT_CLIENT, v, 0, v, buf, sizeof(buf), &len);
    int rc = praft_propose(w->hosts[slot].raft, buf, len, index, NULL);
    psim_host_pump(w, slot);
    return rc;
}

static void run_clients_until_idle(psim_world *w, uint64_t max)
{
    for (uint64_t t = 0; t < max && !psim_clients_idle(w) && !w->stop; t++) {
        psim_world_run_ticks(w, 1);
    }
}

/* Every up member of the leader's configuration holds the leader's state machine. */
static void check_convergence(psim_world *w)
{
    psim_world_run_ticks(w, 30);
    int l = psim_world_leader(w);
    if (!expect(w, l >= 0, "no leader after healing")) {
        return;
    }
    praft_status ls;
    status_of(w, l, &ls);
    psim_host *lh = &w->hosts[l];
    for (int s = 0; s < w->n_slots; s++) {
        psim_host *h = &w->hosts[s];
        if (!h->up || praft_config_find(&ls.config, h->id) == NULL) {
            continue;
        }
        if (!expect(
                w, h->kv.applied == lh->kv.applied && psim_kv_hash(&h->kv) == psim_kv_hash(&lh->kv),
                "convergence: nodes=%" PRIu64 ",%" PRIu64 " applied %" PRIu64 " vs %" PRIu64
                " after healing",
                h->id, lh->id, h->kv.applied, lh->kv.applied)) {
            return;
        }
    }
}

static int finish(psim_world *w, psim_run_result *res)
{
    if (!w->stop) {
        psim_world_check_liveness(w);
    }
    if (!w->stop) {
        check_convergence(w);
    }
    if (!w->stop) {
        psim_world_final_checks(w);
    }
    psim_run_collect(w, res);
    psim_world_free(w);
    return res->violated ? PT_ECORRUPT : 0;
}

static uint64_t msgs_sent(psim_world *w)
{
    uint64_t n = 0;
    for (int s = 0; s < w->n_slots; s++) {
        praft_status st;
        if (w->hosts[s].up) {
            status_of(w, s, &st);
            n += st.counters.msgs_sent;
        }
    }
    return n;
}

/* ---- Elections ---------------------------------------------------------------------------- */

static int sc_initial_election(uint64_t seed, FILE *trace, psim_run_result *res)
{
    psim_world *w;
    int rc = setup(seed, 3, trace, &w);
    if (rc != 0) {
        return rc;
    }
    int l = wait_leader(w, 60);
    expect(w, l >= 0, "no leader elected within 60 ticks");
    uint64_t term = 0;
    expect(w, psim_world_count_leaders(w, &term) == 1, "not exactly one leader");
    praft_status ls;
    status_of(w, l >= 0 ? l : 0, &ls);
    /* With a reliable network and no failure, the leader and its term stay. */
    psim_world_run_ticks(w, 100);
    uint64_t term2 = 0;
    expect(w, psim_world_leader(w) == l, "leadership changed without any failure");
    psim_world_count_leaders(w, &term2);
    expect(w, term2 == term, "term moved from %" PRIu64 " to %" PRIu64 " without any failure", term,
           term2);
    for (int s = 0; s < 3; s++) {
        praft_status st;
        status_of(w, s, &st);
        expect(w, st.leader == ls.id && st.term == ls.term,
               "nodes=%" PRIu64 " follows %" PRIu64 " in term %" PRIu64, st.id, st.leader, st.term);
    }
    return finish(w, res);
}

static int sc_reelection(uint64_t seed, FILE *trace, psim_run_result *res)
{
    psim_world *w;
    int rc = setup(seed, 3, trace, &w);
    if (rc != 0) {
        return rc;
    }
    int l1 = wait_leader(w, 60);
    expect(w, l1 >= 0, "no initial leader");
    /* The leader is lost: the other two elect a new one. */
    psim_net_isolate(w, l1);
    psim_world_run_ticks(w, 60);
    int l2 = -1;
    for (int s = 0; s < 3; s++) {
        praft_status st;
        status_of(w, s, &st);
        if (s != l1 && st.role == PRAFT_LEADER) {
            l2 = s;
        }
    }
    expect(w, l2 >= 0, "no new leader after the leader was cut off");
    /* The old leader rejoins: it must not disturb the new one. */
    psim_net_heal(w);
    psim_world_run_ticks(w, 40);
    expect(w, psim_world_count_leaders(w, NULL) == 1, "not exactly one leader after rejoin");
    /* No quorum: no leader may stay. */
    int l3 = psim_world_leader(w);
    if (l3 >= 0) {
        psim_net_isolate(w, l3);
        psim_net_isolate(w, (l3 + 1) % 3);
        psim_world_run_ticks(w, 60);
        expect(w, psim_world_count_leaders(w, NULL) == 0,
               "a leader remains with no two nodes connected (check-quorum)");
        psim_net_heal(w);
        expect(w, wait_leader(w, 80) >= 0, "no leader after a quorum came back");
    }
    return finish(w, res);
}

static int sc_many_elections(uint64_t seed, FILE *trace, psim_run_result *res)
{
    psim_world *w;
    int rc = setup(seed, 7, trace, &w);
    if (rc != 0) {
        return rc;
    }
    expect(w, wait_leader(w, 60) >= 0, "no initial leader");
    for (int it = 0; it < 10 && !w->stop; it++) {
        /* Cut three random nodes off; four remain, a majority of seven. */
        bool cut[PSIM_MAX_NODES] = {false};
        for (int k = 0; k < 3;) {
            int s = (int)psim_rng_below(&w->rng_nem, 7);
            if (!cut[s]) {
                cut[s] = true;
                psim_net_isolate(w, s);
                k++;
            }
        }
        psim_world_run_ticks(w, 60);
        int in_majority = 0;
        for (int s = 0; s < 7; s++) {
            praft_status st;
            status_of(w, s, &st);
            in_majority += !cut[s] && st.role == PRAFT_LEADER;
        }
        expect(w, in_majority == 1, "iteration %d: %d leaders in the connected majority", it,
               in_majority);
        psim_net_heal(w);
    }
    return finish(w, res);
}

/* ---- Agreement ---------------------------------------------------------------------------- */

static int sc_basic_agreement(uint64_t seed, FILE *trace, psim_run_result *res)
{
    psim_world *w;
    int rc = setup(seed, 3, trace, &w);
    if (rc != 0) {
        return rc;
    }
    expect(w, wait_leader(w, 60) >= 0, "no leader");
    uint64_t last = 0;
    for (int i = 0; i < 10 && !w->stop; i++) {
        expect(w, op_sync(w, 0, PSIM_OP_PUT, 1, 50, NULL), "put %d did not complete", i);
        last = w->clients[0].op.value;
    }
    uint64_t v = 0;
    expect(w, op_sync(w, 1, PSIM_OP_GET, 1, 50, &v), "get did not complete");
    expect(w, v == last, "get returned %" PRIu64 ", last put wrote %" PRIu64, v, last);
    return finish(w, res);
}

static int sc_disconnected_follower(uint64_t seed, FILE *trace, psim_run_result *res)
{
    psim_world *w;
    int rc = setup(seed, 3, trace, &w);
    if (rc != 0) {
        return rc;
    }
    int l = wait_leader(w, 60);
    expect(w, l >= 0, "no leader");
    int f = (l + 1) % 3;
    psim_net_isolate(w, f);
    for (int i = 0; i < 5 && !w->stop; i++) {
        expect(w, op_sync(w, 0, PSIM_OP_PUT, 0, 80, NULL),
               "put %d did not complete with one follower cut off", i);
    }
    psim_net_heal(w);
    for (int i = 0; i < 3 && !w->stop; i++) {
        expect(w, op_sync(w, 0, PSIM_OP_PUT, 0, 80, NULL), "put after rejoin did not complete");
    }
    return finish(w, res); /* convergence: the follower caught up */
}

static int sc_no_majority(uint64_t seed, FILE *trace, psim_run_result *res)
{
    psim_world *w;
    int rc = setup(seed, 5, trace, &w);
    if (rc != 0) {
        return rc;
    }
    int l = wait_leader(w, 60);
    expect(w, l >= 0 && op_sync(w, 0, PSIM_OP_PUT, 0, 60, NULL), "first put failed");
    l = psim_world_leader(w);
    if (l >= 0) {
        for (int k = 1; k <= 3; k++) {
            psim_net_isolate(w, (l + k) % 5);
        }
        praft_status before, after;
        status_of(w, l, &before);
        uint64_t index = 0;
        int prc = propose_at(w, l, &index);
        psim_world_run_ticks(w, 8); /* less than an election timeout: still leader */
        status_of(w, l, &after);
        expect(w, prc != 0 || after.commit < index,
               "entry %" PRIu64 " committed without a majority", index);
        expect(w, after.commit == before.commit,
               "commit moved from %" PRIu64 " to %" PRIu64 " without a majority", before.commit,
               after.commit);
        psim_net_heal(w);
    }
    return finish(w, res);
}

static int sc_concurrent_proposals(uint64_t seed, FILE *trace, psim_run_result *res)
{
    psim_world *w;
    int rc = setup(seed, 5, trace, &w);
    if (rc != 0) {
        return rc;
    }
    expect(w, wait_leader(w, 60) >= 0, "no leader");
    for (int round = 0; round < 10 && !w->stop; round++) {
        for (int c = 0; c < 5; c++) {
            psim_client_start(w, c, c % 2 ? PSIM_OP_GET : PSIM_OP_PUT, (uint32_t)round % 2, 0);
        }
        run_clients_until_idle(w, 100);
        for (int c = 0; c < 5; c++) {
            expect(w, w->clients[c].op.outcome == PSIM_OUT_OK, "round %d client %d failed", round,
                   c);
        }
    }
    return finish(w, res);
}

static int sc_partitioned_leader_rejoins(uint64_t seed, FILE *trace, psim_run_result *res)
{
    psim_world *w;
    int rc = setup(seed, 3, trace, &w);
    if (rc != 0) {
        return rc;
    }
    int l1 = wait_leader(w, 60);
    expect(w, l1 >= 0 && op_sync(w, 0, PSIM_OP_PUT, 0, 60, NULL), "first put failed");
    l1 = psim_world_leader(w);
    if (l1 >= 0) {
        psim_net_isolate(w, l1);
        uint64_t idx;
        for (int i = 0; i < 3; i++) {
            propose_at(w, l1, &idx); /* entries that can never commit */
        }
        psim_world_run_ticks(w, 50);
        expect(w, op_sync(w, 1, PSIM_OP_PUT, 0, 100, NULL), "put to the new leader failed");
        /* A second round: the new leader is cut off too, the old one rejoins. */
        int l2 = psim_world_leader(w);
        psim_net_heal(w);
        if (l2 >= 0 && l2 != l1) {
            psim_net_isolate(w, l2);
        }
        expect(w, op_sync(w, 2, PSIM_OP_PUT, 0, 150, NULL),
               "put after the old leader rejoined failed");
        psim_net_heal(w);
    }
    return finish(w, res);
}

/* §5.3 optimisation: a follower far behind with many conflicting entries is brought back with
 * few round trips (conflict hints), not one per entry. */
static int sc_fast_backup(uint64_t seed, FILE *trace, psim_run_result *res)
{
    psim_world *w;
    int rc = setup(seed, 5, trace, &w);
    if (rc != 0) {
        return rc;
    }
    int l = wait_leader(w, 60);
    expect(w, l >= 0 && op_sync(w, 0, PSIM_OP_PUT, 0, 60, NULL), "first put failed");
    l = psim_world_leader(w);
    if (l < 0) {
        return finish(w, res);
    }
    /* The leader and one follower in a minority, piling up 50 uncommitted entries. */
    int f = (l + 1) % 5;
    bool side[PSIM_MAX_NODES] = {false};
    side[l] = side[f] = true;
    psim_net_split(w, side);
    uint64_t idx;
    for (int i = 0; i < 50; i++) {
        propose_at(w, l, &idx);
    }
    psim_world_run_ticks(w, 20);
    /* The majority elects a leader and commits 50 entries of its own. */
    wait_leader(w, 80);
    for (int i = 0; i < 50 && !w->stop; i++) {
        int l2 = psim_world_leader(w);
        if (l2 >= 0 && !side[l2]) {
            propose_at(w, l2, &idx);
        }
        psim_world_run_ticks(w, 1);
    }
    psim_world_run_ticks(w, 30);
    /* Heal: the old minority must discard its 50 conflicting entries. */
    uint64_t before = msgs_sent(w);
    psim_net_heal(w);
    psim_world_run_ticks(w, 60);
    uint64_t spent = msgs_sent(w) - before;
    praft_status a, b;
    int nl = psim_world_leader(w);
    expect(w, nl >= 0, "no leader after healing");
    if (nl >= 0) {
        status_of(w, nl, &a);
        status_of(w, f, &b);
        expect(w, b.commit == a.commit,
               "old follower not caught up: commit %" PRIu64 " vs %" PRIu64, b.commit, a.commit);
    }
    /* 60 ticks of heartbeats in a 5-node cluster cost about 60*4*2 messages; catching up 100
     * conflicting entries one index at a time would cost hundreds more. */
    expect(w, spent < 60 * 4 * 2 + 200, "catching up took %" PRIu64 " messages", spent);
    return finish(w, res);
}

static int sc_message_counts(uint64_t seed, FILE *trace, psim_run_result *res)
{
    psim_world *w;
    int rc = setup(seed, 3, trace, &w);
    if (rc != 0) {
        return rc;
    }
    int l = wait_leader(w, 60);
    uint64_t election = msgs_sent(w);
    /* An election in a quiet 3-node cluster: pre-votes, votes and a few heartbeats. */
    expect(w, l >= 0 && election < 60, "initial election cost %" PRIu64 " messages", election);
    expect(w, op_sync(w, 0, PSIM_OP_PUT, 0, 60, NULL), "first put failed");
    /* Steady state: 30 commands in one batch; messages per committed entry stay bounded. */
    uint64_t before = msgs_sent(w);
    praft_status s0, s1;
    status_of(w, psim_world_leader(w) >= 0 ? psim_world_leader(w) : 0, &s0);
    uint64_t idx;
    int ld = psim_world_leader(w);
    for (int i = 0; i < 30 && ld >= 0; i++) {
        propose_at(w, ld, &idx);
    }
    psim_world_run_ticks(w, 5);
    status_of(w, ld >= 0 ? ld : 0, &s1);
    uint64_t committed = s1.commit - s0.commit, spent = msgs_sent(w) - before;
    expect(w, committed >= 30, "only %" PRIu64 " of 30 entries committed", committed);
    /* 2 followers * (appends + responses) + heartbeats for 5 ticks, with batching: well under
     * 2 messages per entry. */
    expect(w, spent <= 2 * committed + (5 * 4 + 8),
           "%" PRIu64 " messages for %" PRIu64 " committed entries", spent, committed);
    return finish(w, res);
}

/* ---- Crashes ------------------------------------------------------------------------------ */

static int sc_persist_all_restart(uint64_t seed, FILE *trace, psim_run_result *res)
{
    psim_world *w;
    int rc = setup(seed, 3, trace, &w);
    if (rc != 0) {
        return rc;
    }
    expect(w, wait_leader(w, 60) >= 0, "no leader");
    for (int round = 0; round < 4 && !w->stop; round++) {
        expect(w, op_sync(w, 0, PSIM_OP_PUT, 2, 100, NULL), "put failed in round %d", round);
        uint64_t written = w->clients[0].op.value;
        for (int s = 0; s < 3; s++) {
            psim_host_crash(w, s);
        }
        psim_world_run_ticks(w, 5);
        for (int s = 0; s < 3; s++) {
            psim_host_restart(w, s);
        }
        uint64_t v = 0;
        expect(w, op_sync(w, 1, PSIM_OP_GET, 2, 150, &v) && v == written,
               "after a full restart the acknowledged write %" PRIu64 " reads as %" PRIu64, written,
               v);
    }
    return finish(w, res);
}

static int sc_persist_leader_and_follower(uint64_t seed, FILE *trace, psim_run_result *res)
{
    psim_world *w;
    int rc = setup(seed, 5, trace, &w);
    if (rc != 0) {
        return rc;
    }
    expect(w, wait_leader(w, 60) >= 0, "no leader");
    for (int round = 0; round < 6 && !w->stop; round++) {
        int l = psim_world_leader(w);
        psim_client_start(w, 0, PSIM_OP_PUT, 0, 0);
        psim_world_run_ticks(w, psim_rng_range(&w->rng_nem, 0, 3));
        if (l >= 0) {
            /* Crash in the middle of replication: some writes are still in flight. */
            psim_host_crash(w, l);
            psim_host_crash(w, (l + 1) % 5);
        }
        psim_world_run_ticks(w, 30);
        if (l >= 0) {
            psim_host_restart(w, l);
            psim_host_restart(w, (l + 1) % 5);
        }
        run_clients_until_idle(w, 200);
    }
    return finish(w, res);
}

static int sc_persist_crash_during_writes(uint64_t seed, FILE *trace, psim_run_result *res)
{
    psim_world *w;
    int rc = setup(seed, 3, trace, &w);
    if (rc != 0) {
        return rc;
    }
    expect(w, wait_leader(w, 60) >= 0, "no leader");
    /* Crash random nodes at random steps while clients write: a crash at any point of the
     * ready cycle loses exactly what was not synced. */
    for (int c = 0; c < 3; c++) {
        psim_client_start(w, c, PSIM_OP_PUT, (uint32_t)c, 0);
    }
    for (int round = 0; round < 20 && !w->stop; round++) {
        psim_world_run_steps(w, psim_rng_range(&w->rng_nem, 1, 60));
        int s = (int)psim_rng_below(&w->rng_nem, 3);
        psim_host_crash(w, s);
        psim_world_run_steps(w, psim_rng_range(&w->rng_nem, 1, 60));
        psim_host_restart(w, s);
        for (int c = 0; c < 3; c++) {
            if (!w->clients[c].busy) {
                psim_client_start(w, c, PSIM_OP_PUT, (uint32_t)c, 0);
            }
        }
    }
    return finish(w, res);
}

/* Figure 8 of the paper: leaders crash after appending entries that reach only some
 * followers; a later leader must never commit an earlier term's entry by counting. */
static int figure8(uint64_t seed, FILE *trace, psim_run_result *res, bool unreliable)
{
    psim_world *w;
    int rc = setup(seed, 5, trace, &w);
    if (rc != 0) {
        return rc;
    }
    if (unreliable) {
        w->net.loss_permille = 100;
        w->net.dup_permille = 50;
        w->net.delay_max = 4 * PSIM_TICK;
        w->net.reorder = true;
    }
    /* The first election runs on the lossy network too, and Raft does not resend a lost vote
     * request or grant: a round that loses one waits for the next election timeout. Over
     * 20,000 seeds the first leader came after 19 ticks at the median, 53 at the 99th
     * percentile and 90 at worst (a geometric tail: about one round in three fails), so a
     * bound of 80 ticks failed a few seeds in 10,000 on a correct core. The bound is the
     * one every liveness check of the simulator uses. */
    expect(w, wait_leader(w, w->opt.heal_ticks) >= 0, "no leader");
    int up = 5;
    for (int it = 0; it < 60 && !w->stop; it++) {
        int l = psim_world_leader(w);
        uint64_t idx;
        if (l >= 0) {
            propose_at(w, l, &idx);
            if (it % 4 == 0) {
                psim_client_start(w, it % 5, PSIM_OP_PUT, 0, 0);
            }
        }
        psim_world_run_ticks(w, psim_rng_chance(&w->rng_nem, 100)
                                    ? psim_rng_range(&w->rng_nem, 1, 50)
                                    : psim_rng_range(&w->rng_nem, 0, 2));
        l = psim_world_leader(w);
        if (l >= 0) {
            psim_host_crash(w, l);
            up--;
        }
        if (up < 3) {
            int s = (int)psim_rng_below(&w->rng_nem, 5);
            if (!w->hosts[s].up) {
                psim_host_restart(w, s);
                up++;
            }
        }
    }
    return finish(w, res);
}

static int sc_figure8(uint64_t seed, FILE *trace, psim_run_result *res)
{
    return figure8(seed, trace, res, false);
}

static int sc_figure8_unreliable(uint64_t seed, FILE *trace, psim_run_result *res)
{
    return figure8(seed, trace, res, true);
}

static int sc_unreliable_agreement(uint64_t seed, FILE *trace, psim_run_result *res)
{
    psim_world *w;
    int rc = setup(seed, 5, trace, &w);
    if (rc != 0) {
        return rc;
    }
    w->net.loss_permille = 150;
    w->net.dup_permille = 100;
    w->net.delay_max = 3 * PSIM_TICK;
    w->net.reorder = true;
    for (int round = 0; round < 8 && !w->stop; round++) {
        for (int c = 0; c < 5; c++) {
            psim_client_start(w, c, c == 4 ? PSIM_OP_GET : PSIM_OP_PUT, (uint32_t)round % 3, 0);
        }
        run_clients_until_idle(w, 400);
    }
    return finish(w, res);
}

/* Churn: the nemesis with crashes, pauses and partitions while the clients work. */
static int churn(uint64_t seed, FILE *trace, psim_run_result *res, bool unreliable)
{
    psim_options o;
    psim_options_init(&o, seed, 5);
    o.faults = PSIM_F_CRASH | PSIM_F_PARTITION | PSIM_F_PAUSE;
    if (unreliable) {
        o.faults |= PSIM_F_LOSS | PSIM_F_DUP | PSIM_F_DELAY | PSIM_F_REORDER;
    }
    o.steps = 15000;
    o.trace = trace;
    psim_world *w;
    int rc = psim_world_new(&o, &w);
    if (rc != 0) {
        return rc;
    }
    psim_world_run_steps(w, o.steps);
    expect(w, w->crashes > 0, "the churn crashed no node");
    return finish(w, res);
}

static int sc_reliable_churn(uint64_t seed, FILE *trace, psim_run_result *res)
{
    return churn(seed, trace, res, false);
}

static int sc_unreliable_churn(uint64_t seed, FILE *trace, psim_run_result *res)
{
    return churn(seed, trace, res, true);
}

/* ---- Snapshots ---------------------------------------------------------------------------- */

static int sc_snapshot_basic(uint64_t seed, FILE *trace, psim_run_result *res)
{
    psim_world *w;
    int rc = setup(seed, 3, trace, &w);
    if (rc != 0) {
        return rc;
    }
    expect(w, wait_leader(w, 60) >= 0, "no leader");
    for (int round = 0; round < 3 && !w->stop; round++) {
        for (int i = 0; i < 8 && !w->stop; i++) {
            expect(w, op_sync(w, 0, PSIM_OP_PUT, (uint32_t)i % 3, 60, NULL), "put failed");
        }
        psim_world_run_ticks(w, 5);
        for (int s = 0; s < 3; s++) {
            int r = psim_host_snapshot(w, s, round);
            expect(w, r == 0, "node slot%d could not snapshot: %s", s, pt_error_name(r));
            praft_status st;
            status_of(w, s, &st);
            expect(w, st.snapshot_index == w->hosts[s].disk.snap.index && st.first_index > 1,
                   "slot%d: snapshot %" PRIu64 " first index %" PRIu64 " after compaction", s,
                   st.snapshot_index, st.first_index);
        }
    }
    /* Restart from snapshot plus log. */
    psim_host_crash(w, 0);
    psim_host_restart(w, 0);
    return finish(w, res);
}

/* A follower falls behind the leader's compacted log and must receive a snapshot. */
static int snapshot_install(uint64_t seed, FILE *trace, psim_run_result *res, bool unreliable,
                            bool crashes)
{
    psim_world *w;
    int rc = setup(seed, 3, trace, &w);
    if (rc != 0) {
        return rc;
    }
    int l = wait_leader(w, 60);
    expect(w, l >= 0, "no leader");
    if (l < 0) {
        return finish(w, res);
    }
    int f = (l + 1) % 3;
    psim_net_isolate(w, f);
    if (crashes) {
        psim_host_crash(w, f);
    }
    for (int i = 0; i < 20 && !w->stop; i++) {
        op_sync(w, i % 5, PSIM_OP_PUT, (uint32_t)i % 3, 80, NULL);
    }
    psim_world_run_ticks(w, 5);
    for (int s = 0; s < 3; s++) {
        if (s != f) {
            psim_host_snapshot(w, s, 0);
        }
    }
    if (unreliable) {
        w->net.loss_permille = 200;
        w->net.dup_permille = 100;
        w->net.reorder = true;
        w->net.delay_max = 2 * PSIM_TICK;
    }
    psim_net_heal(w);
    if (crashes) {
        psim_host_restart(w, f);
        /* Crash the receiver and the sender in the middle of the transfer. */
        psim_world_run_steps(w, psim_rng_range(&w->rng_nem, 5, 40));
        psim_host_crash(w, f);
        psim_world_run_ticks(w, 3);
        psim_host_restart(w, f);
        int ld = psim_world_leader(w);
        psim_world_run_steps(w, psim_rng_range(&w->rng_nem, 5, 40));
        if (ld >= 0) {
            psim_host_crash(w, ld);
            psim_world_run_ticks(w, 3);
            psim_host_restart(w, ld);
        }
    }
    psim_world_run_ticks(w, 150);
    w->net.loss_permille = w->net.dup_permille = 0;
    psim_world_run_ticks(w, 50);
    expect(w, w->snapshots_installed > 0, "no snapshot was installed");
    return finish(w, res);
}

static int sc_snapshot_install(uint64_t seed, FILE *trace, psim_run_result *res)
{
    return snapshot_install(seed, trace, res, false, false);
}

static int sc_snapshot_install_unreliable(uint64_t seed, FILE *trace, psim_run_result *res)
{
    return snapshot_install(seed, trace, res, true, false);
}

static int sc_snapshot_install_crash(uint64_t seed, FILE *trace, psim_run_result *res)
{
    return snapshot_install(seed, trace, res, false, true);
}

static int sc_snapshot_membership(uint64_t seed, FILE *trace, psim_run_result *res)
{
    psim_options o;
    psim_options_init(&o, seed, 5);
    o.faults = PSIM_F_SNAPSHOT | PSIM_F_MEMBERSHIP | PSIM_F_TRANSFER | PSIM_F_CRASH;
    o.steps = 20000;
    o.trace = trace;
    psim_world *w;
    int rc = psim_world_new(&o, &w);
    if (rc != 0) {
        return rc;
    }
    psim_world_run_steps(w, o.steps);
    expect(w, w->membership_changes > 0 && w->snapshots_taken > 0,
           "no membership change (%" PRIu64 ") or no snapshot (%" PRIu64 ") happened",
           w->membership_changes, w->snapshots_taken);
    return finish(w, res);
}

/* ---- Membership ---------------------------------------------------------------------------- */

static int change_at(psim_world *w, int slot, uint32_t type, uint64_t id)
{
    praft_change ch = {.type = type, .id = id};
    snprintf(ch.address, sizeof(ch.address), "sim:%" PRIu64, id);
    int rc = praft_change_membership(w->hosts[slot].raft, &ch, NULL);
    psim_host_pump(w, slot);
    return rc;
}

/* Runs until the leader in @slot has committed its whole log, no change pending. */
static bool wait_settled(psim_world *w, int slot, uint64_t max)
{
    for (uint64_t t = 0; t < max && !w->stop; t++) {
        praft_status st;
        status_of(w, slot, &st);
        if (st.role == PRAFT_LEADER && !st.config.joint && st.pending_config_index == 0 &&
            st.commit == st.last_index) {
            return true;
        }
        psim_world_run_ticks(w, 1);
    }
    return false;
}

/*
 * thesis §4.2.3: a server whose configuration is stale must still answer a legitimate
 * candidate. Four voters; one is removed and its slot gets a blank server B, added as a
 * learner. Follower S is cut off while B is promoted, so S still sees B as a learner. Then
 * only B receives one more entry, the leader crashes and the network heals: C_new needs 3 of
 * the 4 live members L' (the other follower), S and B; B alone has the most up-to-date log,
 * so B is the only possible leader and needs S's vote. A receiver filtering vote requests by
 * its own configuration would leave the cluster without a leader.
 */
static int sc_stale_config_vote(uint64_t seed, FILE *trace, psim_run_result *res)
{
    psim_world *w;
    int rc = setup(seed, 4, trace, &w);
    if (rc != 0) {
        return rc;
    }
    int l = wait_leader(w, 80);
    if (!expect(w, l >= 0, "no initial leader")) {
        return finish(w, res);
    }
    int f[3], k = 0;
    for (int s = 0; s < 4; s++) {
        if (s != l) {
            f[k++] = s;
        }
    }
    int other = f[0], stale = f[1], gone = f[2];
    /* Remove one follower for good; its slot gets a blank server, added as a learner. */
    if (!expect(w, wait_settled(w, l, 200), "the leader's no-op did not commit") ||
        !expect(w, change_at(w, l, PRAFT_CHANGE_REMOVE, w->hosts[gone].id) == 0,
                "remove refused") ||
        !expect(w, wait_settled(w, l, 200), "removal did not commit")) {
        return finish(w, res);
    }
    psim_host_crash(w, gone);
    psim_disk_free(&w->hosts[gone].disk);
    rc = psim__host_create(w, gone, ++w->next_id, NULL);
    if (rc != 0) {
        psim_fail_internal(w, rc, "creating a blank node");
        return finish(w, res);
    }
    uint64_t b = w->hosts[gone].id;
    if (!expect(w, change_at(w, l, PRAFT_CHANGE_ADD_LEARNER, b) == 0, "add-learner refused") ||
        !expect(w, wait_settled(w, l, 200), "the learner was not added")) {
        return finish(w, res);
    }
    /* Promote B while S is cut off: C_old,new and C_new commit without S. */
    psim_net_isolate(w, stale);
    int prc = PT_ENOTREADY;
    for (int t = 0; t < 200 && prc == PT_ENOTREADY && !w->stop; t++) {
        prc = change_at(w, l, PRAFT_CHANGE_ADD_VOTER, b);
        if (prc == PT_ENOTREADY) {
            psim_world_run_ticks(w, 1);
        }
    }
    if (!expect(w, prc == 0, "promotion refused: %s", pt_error_name(prc)) ||
        !expect(w, wait_settled(w, l, 200), "the promotion did not commit")) {
        return finish(w, res);
    }
    praft_status st;
    status_of(w, stale, &st);
    const praft_member *m = praft_config_find(&st.config, b);
    if (!expect(w, m != NULL && m->role == PRAFT_ROLE_LEARNER, "S is not stale")) {
        return finish(w, res);
    }
    /* One more entry reaches B only; then the leader is lost. */
    psim_net_isolate(w, other);
    uint64_t index = 0;
    expect(w, propose_at(w, l, &index) == 0, "proposal refused");
    praft_status bs;
    for (int t = 0; t < 50 && !w->stop; t++) {
        status_of(w, gone, &bs);
        if (bs.last_index >= index) {
            break;
        }
        psim_world_run_ticks(w, 1);
    }
    status_of(w, gone, &bs);
    if (!expect(w, bs.last_index >= index, "B did not receive the last entry")) {
        return finish(w, res);
    }
    psim_host_crash(w, l);
    psim_net_heal(w);
    int nl = wait_leader(w, 300);
    expect(w, nl == gone,
           "no leader (%d) with 3 of 4 members up: the promoted B needs S's vote, and S's "
           "configuration is stale",
           nl);
    return finish(w, res);
}

/* Leases and clock drift (thesis §6.4.1): the leader's clock runs slow and the followers' fast
 * by @drift/1000 of a tick. The leader is cut off right after a heartbeat round; the others
 * elect a new leader and write; then clients read from the cut-off leader. Within the drift the
 * lease allows (PSIM_DRIFT_BOUND) its lease ends before any other leader can exist and the
 * reads wait for a round that never completes; beyond it, the lease outlives the followers'
 * stickiness and a read returns the value the new leader overwrote. */
static int lease_drift(uint64_t seed, FILE *trace, psim_run_result *res, uint32_t drift)
{
    psim_options o;
    psim_options_init(&o, seed, 3);
    o.nemesis = false;
    o.workload = false;
    o.clients = 5;
    o.trace = trace;
    o.lease_reads = true;
    psim_world *w;
    int rc = psim_world_new(&o, &w);
    if (rc != 0) {
        return rc;
    }
    int l = wait_leader(w, 100);
    expect(w, l >= 0, "no leader");
    if (l < 0) {
        return finish(w, res);
    }
    uint64_t d = PSIM_TICK * drift / 1000;
    for (int s = 0; s < 3; s++) {
        w->hosts[s].tick_period = s == l ? PSIM_TICK + d : PSIM_TICK - d;
    }
    op_sync(w, 0, PSIM_OP_PUT, 0, 60, NULL);
    /* Wait for a heartbeat acknowledged by the followers, then cut the leader off. */
    psim_world_run_ticks(w, 2 + psim_rng_below(&w->rng_nem, 3));
    psim_world_run_steps(w, psim_rng_below(&w->rng_nem, 20));
    psim_net_isolate(w, l);
    w->lure_slot = l;
    w->lure_permille = 1000;
    w->lure_until = w->now + 60 * PSIM_TICK;
    /* Writes to the others until one lands, then reads from the old leader. */
    for (int t = 0; t < 60 && !w->stop; t++) {
        for (int c = 0; c < 5; c++) {
            if (!w->clients[c].busy) {
                psim_client_start(w, c, c < 2 ? PSIM_OP_PUT : PSIM_OP_GET, 0, 0);
            }
        }
        psim_world_run_ticks(w, 1);
    }
    w->lure_slot = -1;
    int status = finish(w, res);
    if (res->violated && drift > PSIM_DRIFT_BOUND) {
        size_t n = strlen(res->violation.detail);
        snprintf(res->violation.detail + n, sizeof(res->violation.detail) - n,
                 " [clock drift %" PRIu32 "/1000 is beyond the %d/1000 leases allow: the "
                 "configuration breaks the core's contract]",
                 drift, PSIM_DRIFT_BOUND);
    }
    return status;
}

static int sc_lease_drift(uint64_t seed, FILE *trace, psim_run_result *res)
{
    return lease_drift(seed, trace, res, PSIM_DRIFT_BOUND);
}

static int sc_lease_drift_broken(uint64_t seed, FILE *trace, psim_run_result *res)
{
    return lease_drift(seed, trace, res, 500);
}

const psim_scenario psim_scenarios[] = {
    {"initial-election", "one leader is elected and stays", sc_initial_election},
    {"reelection", "a new leader after the leader is lost; none without quorum", sc_reelection},
    {"many-elections", "7 nodes, 3 random nodes cut off ten times", sc_many_elections},
    {"basic-agreement", "puts are agreed and read back", sc_basic_agreement},
    {"disconnected-follower", "agreement despite a cut-off follower", sc_disconnected_follower},
    {"no-majority", "no commit without a majority", sc_no_majority},
    {"concurrent-proposals", "five clients at once", sc_concurrent_proposals},
    {"partitioned-leader-rejoins", "an old leader's uncommitted entries are discarded",
     sc_partitioned_leader_rejoins},
    {"fast-backup", "a far-behind follower with 50 conflicting entries", sc_fast_backup},
    {"message-counts", "messages per election and per committed entry", sc_message_counts},
    {"persist-all-restart", "acknowledged writes survive a full cluster restart",
     sc_persist_all_restart},
    {"persist-leader-follower", "leader and follower crash mid-replication",
     sc_persist_leader_and_follower},
    {"persist-crash-during-writes", "crashes at random points of the ready cycle",
     sc_persist_crash_during_writes},
    {"figure8", "Figure 8, reliable network", sc_figure8},
    {"figure8-unreliable", "Figure 8, lossy reordering network", sc_figure8_unreliable},
    {"unreliable-agreement", "agreement over a lossy, duplicating network",
     sc_unreliable_agreement},
    {"reliable-churn", "crashes, pauses and partitions while clients work", sc_reliable_churn},
    {"unreliable-churn", "churn over an unreliable network", sc_unreliable_churn},
    {"snapshot-basic", "snapshots and compaction on every node", sc_snapshot_basic},
    {"snapshot-install", "a lagging follower receives a snapshot", sc_snapshot_install},
    {"snapshot-install-unreliable", "snapshot transfer over a lossy network",
     sc_snapshot_install_unreliable},
    {"snapshot-install-crash", "crashes of sender and receiver during the transfer",
     sc_snapshot_install_crash},
    {"stale-config-vote", "a promoted learner needs the vote of a member that missed it",
     sc_stale_config_vote},
    {"snapshot-membership", "snapshots during membership changes and transfers",
     sc_snapshot_membership},
    {"lease-drift", "lease reads from a cut-off leader, clock drift within the bound",
     sc_lease_drift},
    /* Expected to fail: it breaks the drift bound (test_world checks that it is caught). */
    {"lease-drift-broken", "lease reads from a cut-off leader, clock drift beyond the bound",
     sc_lease_drift_broken},
};
const int psim_n_scenarios = (int)(sizeof(psim_scenarios) / sizeof(psim_scenarios[0]));
