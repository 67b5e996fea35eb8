/*
 * The fault schedule: every few ticks the nemesis picks one enabled fault at random (from its
 * own random stream) and applies it. Faults are transient: crashed nodes are restarted and
 * paused nodes resumed after a random while, partitions are healed or replaced.
 */
#include <inttypes.h>
#include <string.h>

#include "platoon/error.h"
#include "sim/sim.h"

int psim__host_create(psim_world *w, int slot, uint64_t id, const praft_config *boot);

static int pick_up_slot(psim_world *w)
{
    int cand[PSIM_MAX_NODES], n = 0;
    for (int s = 0; s < w->n_slots; s++) {
        if (w->hosts[s].up) {
            cand[n++] = s;
        }
    }
    return n ? cand[psim_rng_below(&w->rng_nem, (uint64_t)n)] : -1;
}

static void partition(psim_world *w)
{
    int leader = psim_world_leader(w);
    switch (psim_rng_below(&w->rng_nem, 5)) {
    case 0: /* one node cut off both ways */
        psim_net_isolate(w, (int)psim_rng_below(&w->rng_nem, (uint64_t)w->n_slots));
        break;
    case 1: /* the leader cut off: the majority must elect another */
        if (leader >= 0) {
            psim_net_isolate(w, leader);
        }
        break;
    case 2: { /* a random majority / minority split */
        bool side[PSIM_MAX_NODES] = {false};
        for (int s = 0; s < w->n_slots; s++) {
            side[s] = psim_rng_chance(&w->rng_nem, 500);
        }
        psim_net_split(w, side);
        break;
    }
    case 3: /* one-way links: a node hears but is not heard, or the reverse */
        for (int k = 0; k < 3; k++) {
            int a = (int)psim_rng_below(&w->rng_nem, (uint64_t)w->n_slots);
            int b = (int)psim_rng_below(&w->rng_nem, (uint64_t)w->n_slots);
            if (a != b) {
                psim_net_block(w, a, b);
            }
        }
        break;
    default:
        psim_net_heal(w);
        break;
    }
}

static void network_quality(psim_world *w)
{
    uint32_t f = w->opt.faults;
    w->net.loss_permille = (f & PSIM_F_LOSS) ? (uint32_t)psim_rng_below(&w->rng_nem, 300) : 0;
    w->net.dup_permille = (f & PSIM_F_DUP) ? (uint32_t)psim_rng_below(&w->rng_nem, 150) : 0;
    w->net.delay_min = 5;
    w->net.delay_max =
        (f & PSIM_F_DELAY) ? (uint32_t)psim_rng_range(&w->rng_nem, 20, 12 * PSIM_TICK) : 40;
    w->net.reorder = (f & PSIM_F_REORDER) && psim_rng_chance(&w->rng_nem, 600);
    w->net.replay_permille = (f & PSIM_F_REPLAY) && psim_rng_chance(&w->rng_nem, 500)
                                 ? (uint32_t)psim_rng_range(&w->rng_nem, 5, 80)
                                 : 0;
    psim_trace(w, "nemesis net loss%" PRIu32 " dup%" PRIu32 " delay%" PRIu32 " reorder%d",
               w->net.loss_permille, w->net.dup_permille, w->net.delay_max, w->net.reorder);
}

/* A removed member whose removal is committed leaves for good: its slot gets a fresh, blank
 * node with a new id, which the nemesis may later add as a learner and promote (a node that
 * lost its state must never come back under its old identity). */
static void retire_removed(psim_world *w, const praft_status *ls)
{
    if (ls->pending_config_index != 0 || ls->config.joint) {
        return;
    }
    for (int s = 0; s < w->n_slots; s++) {
        psim_host *h = &w->hosts[s];
        if (!h->exists) {
            continue;
        }
        bool member = praft_config_find(&ls->config, h->id) != NULL;
        if (member) {
            h->blank = false;
            continue;
        }
        if (h->blank) {
            continue;
        }
        psim_trace(w, "nemesis retire slot%d id%" PRIu64, s, h->id);
        psim_host_crash(w, s);
        psim_disk_free(&h->disk);
        int rc = psim__host_create(w, s, ++w->next_id, NULL);
        if (rc != 0) {
            psim_fail_internal(w, rc, "creating a blank node");
            return;
        }
    }
}

/* Joint consensus needs a majority of each side for every decision (thesis §4.3), reads
 * included (§6.4). Removing a follower from an even number of voters makes a joint
 * configuration in which the leader and half of the voters are a majority of the new side but
 * not of the old one: the leader is cut off from the others at once, while clients read from
 * it. It must not answer a read (nor commit anything) until it hears from the old side. */
static void joint_cut(psim_world *w, int leader, uint64_t removed, int voters)
{
    praft_status st;
    praft_status_get(w->hosts[leader].raft, &st);
    int keep = voters / 2 - 1; /* besides the leader */
    bool with[PSIM_MAX_NODES] = {false};
    with[leader] = true;
    for (int s = 0; s < w->n_slots && keep > 0; s++) {
        const praft_member *m = praft_config_find(&st.config, w->hosts[s].id);
        if (!with[s] && m != NULL && m->role == PRAFT_ROLE_VOTER && w->hosts[s].id != removed) {
            with[s] = true;
            keep--;
        }
    }
    for (int s = 0; s < w->n_slots; s++) {
        if (!with[s]) {
            w->net.blocked[leader][s] = w->net.blocked[s][leader] = true;
        }
    }
    w->lure_slot = leader;
    w->lure_writes = false;
    w->lure_until = w->now + 4 * (uint64_t)w->opt.election_ticks * PSIM_TICK;
    psim_trace(w, "nemesis joint cut: slot%d keeps a majority of the new side only", leader);
}

static void membership(psim_world *w, int leader)
{
    psim_host *lh = &w->hosts[leader];
    praft_status st;
    praft_status_get(lh->raft, &st);
    retire_removed(w, &st);
    if (w->stop) {
        return;
    }
    int voters = 0;
    uint64_t learner = 0, follower = 0;
    for (uint32_t i = 0; i < st.config.n_members; i++) {
        const praft_member *m = &st.config.members[i];
        if (m->role == PRAFT_ROLE_VOTER) {
            voters++;
            if (m->id != lh->id && (follower == 0 || psim_rng_chance(&w->rng_nem, 500))) {
                follower = m->id;
            }
        } else if (m->role == PRAFT_ROLE_LEARNER) {
            learner = m->id;
        }
    }
    uint64_t blank = 0;
    for (int s = 0; s < w->n_slots; s++) {
        if (w->hosts[s].exists && w->hosts[s].blank && w->hosts[s].up) {
            blank = w->hosts[s].id;
        }
    }
    praft_change ch = {0};
    uint64_t r = psim_rng_below(&w->rng_nem, 4);
    if (r == 0 && blank) {
        ch.type = PRAFT_CHANGE_ADD_LEARNER;
        ch.id = blank;
    } else if (r == 1 && learner) {
        ch.type = PRAFT_CHANGE_ADD_VOTER;
        ch.id = learner;
    } else if (r == 2 && voters >= 3 && follower) {
        ch.type = PRAFT_CHANGE_REMOVE;
        ch.id = follower;
    } else if (r == 3 && voters >= 3) {
        ch.type = PRAFT_CHANGE_REMOVE;
        ch.id = lh->id;
    } else {
        return;
    }
    uint64_t index = 0;
    int rc = praft_change_membership(lh->raft, &ch, &index);
    static const char *names[] = {"?", "add-learner", "add-voter", "remove"};
    psim_trace(w, "nemesis change %s id%" PRIu64 " at leader id%" PRIu64 " -> %s i%" PRIu64,
               names[ch.type], ch.id, lh->id, pt_error_name(rc), index);
    if (rc == 0) {
        w->membership_changes++;
        if (ch.type == PRAFT_CHANGE_REMOVE && ch.id != lh->id && voters % 2 == 0 &&
            psim_rng_chance(&w->rng_nem, 500)) {
            joint_cut(w, leader, ch.id, voters);
        }
    } else if (rc == PT_ENOMEM) {
        psim_fail_internal(w, rc, "praft_change_membership");
    }
}

/* A transfer requested on a healthy cluster: once TimeoutNow went out (the target holds the
 * leader's log), the target must win (thesis §3.10). Other faults wait meanwhile. Returns true
 * while the watch goes on. */
static bool follows(psim_world *w, int leader)
{
    praft_status ls, st;
    praft_status_get(w->hosts[leader].raft, &ls);
    for (int s = 0; s < w->n_slots; s++) {
        psim_host *h = &w->hosts[s];
        if (!h->up || praft_config_find(&ls.config, h->id) == NULL) {
            continue;
        }
        praft_status_get(h->raft, &st);
        if (st.leader != ls.id || st.term != ls.term) {
            return false;
        }
    }
    return true;
}

static void ask_transfer(psim_world *w, int leader)
{
    int rc = praft_transfer_leadership(w->hosts[leader].raft, PRAFT_NONE);
    praft_status st;
    praft_status_get(w->hosts[leader].raft, &st);
    psim_trace(w, "nemesis watched transfer from id%" PRIu64 " to id%" PRIu64 " -> %s",
               w->hosts[leader].id, st.transferee, pt_error_name(rc));
    psim_host_pump(w, leader);
    if (rc != 0 || st.transferee == PRAFT_NONE) {
        w->xfer.on = false;
        return;
    }
    w->transfers++;
    w->xfer.target = st.transferee;
    /* Catching up may take a while; if TimeoutNow never goes out, the leader gave up. */
    w->xfer.deadline = w->now + 3 * (uint64_t)w->opt.election_ticks * PSIM_TICK;
}

/* A transfer on a healthy cluster: the cluster is calmed, and once a leader is followed by
 * every member for two election timeouts, a transfer is asked for. Once TimeoutNow went out
 * (the target holds the leader's log), the target must win (thesis §3.10). Other faults wait
 * meanwhile. Returns true while the watch goes on. */
static bool transfer_watch(psim_world *w)
{
    if (!w->xfer.on) {
        return false;
    }
    if (w->xfer.target == 0) {
        int l = psim_world_leader(w);
        if (l < 0 || !follows(w, l)) {
            w->xfer.since = w->now; /* not settled yet */
        } else if (w->now >= w->xfer.since + 2 * (uint64_t)w->opt.election_ticks * PSIM_TICK) {
            ask_transfer(w, l);
        }
        if (w->xfer.target == 0 && w->now >= w->xfer.deadline) {
            w->xfer.on = false; /* never settled: nothing to judge */
        }
        return w->xfer.on;
    }
    if (w->now < w->xfer.deadline) {
        return true;
    }
    w->xfer.on = false;
    if (w->xfer.term != 0 && !w->xfer.won) {
        psim_inv_fail(&w->inv, "transfer-outcome",
                      "nodes=%" PRIu64 ": TimeoutNow went out on a healthy cluster, but the "
                      "target did not become leader",
                      w->xfer.target);
        psim_halt(w);
    }
    return false;
}

static void clean_transfer(psim_world *w)
{
    psim_trace(w, "nemesis calm (for a transfer)");
    psim_net_heal(w);
    w->net.loss_permille = w->net.dup_permille = w->net.replay_permille = 0;
    w->net.delay_max = 40;
    w->lure_slot = -1;
    w->stick.leader = -1; /* no fault may come during the watch */
    for (int k = 0; k < w->n_slots && !w->stop; k++) {
        w->hosts[k].slow = false;
        psim_host_restart(w, k);
        psim_host_resume(w, k);
    }
    w->xfer.on = true;
    w->xfer.sent = w->xfer.won = false;
    w->xfer.term = w->xfer.target = 0;
    w->xfer.since = w->now;
    w->xfer.deadline = w->now + 8 * (uint64_t)w->opt.election_ticks * PSIM_TICK;
}

/* Figure 8 of the paper (§5.4.2): a leader crashes while entries it appended reached some
 * followers but not a majority, and restarts one to three election timeouts later, by when
 * another leader may have written other entries at the same indexes; it may win again and
 * finish replicating its old-term entries to a majority, which must still not make them count
 * as committed until an entry of its new term is (commit-rule, commit-quorum). Armed by the
 * nemesis, the fault looks for that moment four times a tick for up to two election timeouts. */
void psim_nemesis_figure8(psim_world *w, uint64_t polls_left)
{
    int l = psim_world_leader(w);
    if (l >= 0 && w->hosts[l].up && !w->hosts[l].paused) {
        praft_status st;
        praft_status_get(w->hosts[l].raft, &st);
        int ahead = 0;
        for (size_t i = 0; i < st.n_progress; i++) {
            ahead += st.progress[i].match > st.commit;
        }
        if (st.last_index > st.commit && ahead > 0) {
            psim_trace(w,
                       "nemesis figure8 crash slot%d (last i%" PRIu64 ", commit %" PRIu64
                       ", %d followers past it)",
                       l, st.last_index, st.commit, ahead);
            psim_host_crash(w, l);
            uint64_t e = w->opt.election_ticks;
            psim_schedule(w, psim_rng_range(&w->rng_nem, e * PSIM_TICK, 3 * e * PSIM_TICK),
                          PSIM_EV_RESTART, l, 0, NULL);
            return;
        }
    }
    if (polls_left > 0) {
        w->figure8_armed = true;
        psim_schedule(w, PSIM_TICK / 4, PSIM_EV_FIGURE8, -1, polls_left - 1, NULL);
    }
}

/* Leases count on leader stickiness surviving a restart (thesis §6.4.1): a follower that took
 * the leader's heartbeat and restarts at once must still keep still for an election timeout.
 * First step: a follower (the candidate) stops hearing the leader, so that it campaigns about an
 * election timeout later. */
static void stick_begin(psim_world *w, int leader)
{
    int cand[PSIM_MAX_NODES], n = 0;
    for (int s = 0; s < w->n_slots; s++) {
        if (s != leader && w->hosts[s].up && !w->hosts[s].paused) {
            cand[n++] = s;
        }
    }
    if (n == 0) {
        return;
    }
    int c = cand[psim_rng_below(&w->rng_nem, (uint64_t)n)];
    psim_net_block(w, leader, c);
    w->stick.leader = leader;
    w->stick.candidate = c;
    psim_trace(w, "nemesis stick slot%d stops hearing leader slot%d", c, leader);
    uint64_t e = w->opt.election_ticks;
    psim_schedule(w, (e - 3) * PSIM_TICK + psim_rng_below(&w->rng_nem, PSIM_TICK),
                  PSIM_EV_NEMESIS_STEP, -1, 0, NULL);
}

/* Second step, as the candidate is about to campaign: enough other followers to make it a
 * majority take one more heartbeat, stop hearing the leader, crash and restart within a tick
 * or two, while clients read from the leader. A correct restarted follower refuses to vote
 * until an election timeout has passed (check_vote_stickiness in node_host.c). */
void psim_nemesis_step(psim_world *w)
{
    int l = w->stick.leader, c = w->stick.candidate;
    w->stick.leader = -1;
    if (l < 0 || w->xfer.on || !w->hosts[l].up || w->hosts[l].last_role != PRAFT_LEADER) {
        return;
    }
    praft_status st;
    praft_status_get(w->hosts[l].raft, &st);
    int voters = 0;
    for (uint32_t i = 0; i < st.config.n_members; i++) {
        voters += st.config.members[i].role == PRAFT_ROLE_VOTER;
    }
    int need = voters / 2; /* with the candidate: a majority */
    for (int s = 0; s < w->n_slots && need > 0; s++) {
        const praft_member *m = praft_config_find(&st.config, w->hosts[s].id);
        if (s == l || s == c || !w->hosts[s].up || m == NULL || m->role != PRAFT_ROLE_VOTER) {
            continue;
        }
        psim_net_block(w, l, s);
        psim_host_crash(w, s);
        psim_schedule(w, psim_rng_range(&w->rng_nem, PSIM_TICK / 2, 2 * PSIM_TICK), PSIM_EV_RESTART,
                      s, 0, NULL);
        need--;
    }
    w->lure_slot = l;
    w->lure_writes = false;
    w->lure_until = w->now + 3 * (uint64_t)w->opt.election_ticks * PSIM_TICK;
    psim_trace(w, "nemesis stick: followers restart within the lease of slot%d", l);
}

void psim_nemesis_act(psim_world *w)
{
    uint32_t f = w->opt.faults;
    if (transfer_watch(w) || w->stop) {
        return;
    }
    int leader = psim_world_leader(w);
    w->nemesis_actions++;
    /* Weighted choice among the enabled faults. */
    enum {
        A_PART,
        A_NET,
        A_CRASH,
        A_PAUSE,
        A_SLOW,
        A_SNAP,
        A_MEMB,
        A_XFER,
        A_CALM,
        A_DEPOSE,
        A_STICK,
        A_FIGURE8,
        A_STALE_SNAPSHOT,
        A_SPLIT_APPENDS,
        A_N
    };
    static const uint32_t need[A_N] = {PSIM_F_PARTITION,
                                       PSIM_F_LOSS | PSIM_F_DELAY | PSIM_F_DUP | PSIM_F_REORDER |
                                           PSIM_F_REPLAY,
                                       PSIM_F_CRASH,
                                       PSIM_F_PAUSE,
                                       PSIM_F_SLOW,
                                       PSIM_F_SNAPSHOT,
                                       PSIM_F_MEMBERSHIP,
                                       PSIM_F_TRANSFER,
                                       PSIM_F_ALL,
                                       PSIM_F_PARTITION,
                                       PSIM_F_CRASH | PSIM_F_PARTITION,
                                       PSIM_F_CRASH,
                                       PSIM_F_SNAPSHOT,
                                       PSIM_F_PARTITION};
    /* Calm spells (everything healed for a while) let the cluster make progress between
     * faults, so that the faults meet a cluster in every phase of its work. */
    /* The restart within a lease matters with leases only (without them, every seed keeps
     * the schedule it had before this fault was added). */
    uint32_t weight[A_N] = {3, 2, 2, 1, 1, 3, 3, 1, 4, 2, 0, 1, 1, 1};
    weight[A_STICK] = w->opt.lease_reads && (f & PSIM_F_CRASH) && (f & PSIM_F_PARTITION) ? 2 : 0;
    uint32_t total = 0;
    for (int a = 0; a < A_N; a++) {
        total += (f & need[a]) ? weight[a] : 0;
    }
    if (total == 0) {
        return;
    }
    uint64_t pick = psim_rng_below(&w->rng_nem, total);
    int action = 0;
    for (; action < A_N; action++) {
        uint32_t wt = (f & need[action]) ? weight[action] : 0;
        if (pick < wt) {
            break;
        }
        pick -= wt;
    }
    int s = pick_up_slot(w);
    switch (action) {
    case A_PART:
        partition(w);
        break;
    case A_NET:
        network_quality(w);
        break;
    case A_CRASH:
        if (s >= 0) {
            if (psim_rng_chance(&w->rng_nem, 300) && leader >= 0) {
                s = leader;
            }
            psim_host_crash(w, s);
            psim_schedule(w, psim_rng_range(&w->rng_nem, PSIM_TICK, 40 * PSIM_TICK),
                          PSIM_EV_RESTART, s, 0, NULL);
        }
        break;
    case A_PAUSE:
        if (s >= 0 && !w->hosts[s].paused) {
            psim_host_pause(w, s);
            psim_schedule(w, psim_rng_range(&w->rng_nem, PSIM_TICK, 30 * PSIM_TICK), PSIM_EV_RESUME,
                          s, 0, NULL);
        }
        break;
    case A_SLOW:
        if (s >= 0) {
            w->hosts[s].slow = !w->hosts[s].slow;
            psim_trace(w, "nemesis slow slot%d %d", s, w->hosts[s].slow);
        }
        break;
    case A_SNAP:
        if (s >= 0) {
            int rc = psim_host_snapshot(w, s, psim_rng_below(&w->rng_nem, 4));
            if (rc == PT_ECORRUPT) {
                psim_halt(w);
            } else if (rc == PT_ENOMEM) {
                psim_fail_internal(w, rc, "taking a snapshot");
            }
        }
        break;
    case A_MEMB:
        if (leader >= 0) {
            membership(w, leader);
        }
        break;
    case A_XFER:
        if (leader >= 0 && psim_rng_chance(&w->rng_nem, 400)) {
            clean_transfer(w);
        } else if (leader >= 0) {
            praft_status st;
            praft_status_get(w->hosts[leader].raft, &st);
            uint64_t to = PRAFT_NONE;
            if (psim_rng_chance(&w->rng_nem, 500)) {
                const praft_member *m =
                    &st.config.members[psim_rng_below(&w->rng_nem, st.config.n_members)];
                to = m->id;
            }
            int rc = praft_transfer_leadership(w->hosts[leader].raft, to);
            psim_trace(w, "nemesis transfer from id%" PRIu64 " to id%" PRIu64 " -> %s",
                       w->hosts[leader].id, to, pt_error_name(rc));
            w->transfers += rc == 0;
            if (rc == 0 && w->opt.lease_reads && psim_rng_chance(&w->rng_nem, 500)) {
                /* The old leader stops hearing anyone (its TimeoutNow still goes out) while
                 * clients read from it: no lease may hold once TimeoutNow is sent (thesis
                 * §6.4.1, §3.10), since the target wins without waiting for stickiness. */
                for (int k = 0; k < w->n_slots; k++) {
                    w->net.blocked[k][leader] = k != leader;
                }
                w->lure_slot = leader;
                w->lure_writes = false;
                w->lure_until = w->now + 30 * PSIM_TICK;
                psim_trace(w, "nemesis deafen slot%d (reads lured to it)", leader);
            }
        }
        break;
    case A_DEPOSE:
        /* The leader is cut off while clients keep reading from it: until it notices, a
         * deposed leader must not answer a read the new leader's writes have made stale
         * (thesis §6.4: ReadIndex confirms leadership; §6.4.1: a lease ends in time). */
        if (leader >= 0) {
            psim_net_isolate(w, leader);
            /* Answers the others sent just before arrive late, after the cut: they prove
             * nothing about leadership after the moment they were sent. */
            if (psim_rng_chance(&w->rng_nem, 500)) {
                psim_net_replay_answers_to(w, leader, 3 * (uint64_t)w->opt.election_ticks);
            }
            w->lure_slot = leader;
            w->lure_until = w->now + 4 * (uint64_t)w->opt.election_ticks * PSIM_TICK;
            w->lure_writes = psim_rng_chance(&w->rng_nem, 500);
            if (w->opt.lease_reads) {
                /* The worst clocks the drift bound allows: the leader's slow, the others'
                 * fast, so its lease runs as long as it may. */
                uint64_t d = PSIM_TICK * w->opt.drift_permille / 1000;
                for (int k = 0; k < w->n_slots; k++) {
                    w->hosts[k].tick_period = k == leader ? PSIM_TICK + d : PSIM_TICK - d;
                }
            }
            psim_trace(w, "nemesis depose slot%d (reads lured to it)", leader);
        }
        break;
    case A_STICK:
        if (leader >= 0 && w->stick.leader < 0) {
            stick_begin(w, leader);
        }
        break;
    case A_STALE_SNAPSHOT:
        /* A whole snapshot transfer delivered again, long after, to a node that has usually
         * moved past it: a snapshot that is not newer than what the node holds is ignored (§7),
         * it must never roll the node's state back. */
        for (int tries = 0; tries < 2 * w->n_slots; tries++) {
            int a = (int)psim_rng_below(&w->rng_nem, (uint64_t)w->n_slots);
            int b = (int)psim_rng_below(&w->rng_nem, (uint64_t)w->n_slots);
            if (a != b &&
                psim_net_replay_snapshot(w, a, b, psim_rng_range(&w->rng_nem, 1, 3 * PSIM_TICK))) {
                break;
            }
        }
        break;
    case A_SPLIT_APPENDS:
        /* Two leaders' appends reach one follower: the leader keeps only that follower (slow
         * to write) while clients keep writing to it, and the others elect a new leader, whose
         * first append cuts what the old one sent. The follower must not acknowledge, after
         * its next write, old-term entries that write no longer holds (§5.3, Figure 2). */
        if (leader >= 0 && s >= 0 && s != leader && !w->hosts[s].paused) {
            for (int k = 0; k < w->n_slots; k++) {
                if (k != leader && k != s) {
                    psim_net_block(w, leader, k);
                    psim_net_block(w, k, leader);
                }
            }
            w->hosts[s].slow = true;
            w->lure_slot = leader;
            w->lure_writes = true;
            w->lure_until = w->now + 4 * (uint64_t)w->opt.election_ticks * PSIM_TICK;
            psim_trace(w, "nemesis split-appends leader slot%d keeps slow slot%d", leader, s);
        }
        break;
    case A_FIGURE8:
        if (!w->figure8_armed) {
            w->figure8_armed = true;
            psim_trace(w, "nemesis figure8 armed");
            psim_schedule(w, 0, PSIM_EV_FIGURE8, -1, 8 * (uint64_t)w->opt.election_ticks, NULL);
        }
        break;
    case A_CALM:
        psim_trace(w, "nemesis calm");
        psim_net_heal(w);
        w->net.loss_permille = w->net.dup_permille = w->net.replay_permille = 0;
        w->net.delay_max = 40;
        for (int k = 0; k < w->n_slots && !w->stop; k++) {
            w->hosts[k].slow = false;
            psim_host_restart(w, k);
            psim_host_resume(w, k);
        }
        break;
    default:
        break;
    }
}
