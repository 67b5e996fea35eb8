/*
 * The simulated world: 1 to 7 Raft cores, each with a simulated disk and a key-value state
 * machine, a simulated network, simulated clients and a fault schedule (the nemesis), all
 * driven by one event queue in simulated time. One seed decides everything: the same seed and
 * options give the same run, event for event, and the same trace, byte for byte.
 *
 * Time is counted in units; a Raft tick is PSIM_TICK units. A *step* is one event taken from
 * the queue; the invariants are checked after every step on the node it touched.
 */
#ifndef PLATOON_SIM_SIM_H
#define PLATOON_SIM_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "platoon/raft.h"
#include "sim/eventq.h"
#include "sim/history.h"
#include "sim/invariants.h"
#include "sim/rng.h"

#define PSIM_TICK        ((uint64_t)100) /* time units; every time here is a uint64_t */
#define PSIM_MAX_NODES   7
#define PSIM_MAX_CLIENTS 8
#define PSIM_MAX_KEYS    16

/* Fault switches. */
enum psim_fault {
    PSIM_F_LOSS = 1 << 0,       /* messages lost */
    PSIM_F_DELAY = 1 << 1,      /* long message delays */
    PSIM_F_DUP = 1 << 2,        /* messages duplicated */
    PSIM_F_REORDER = 1 << 3,    /* messages overtake each other on a link */
    PSIM_F_PARTITION = 1 << 4,  /* symmetric, one-way, majority/minority, leader isolation */
    PSIM_F_CRASH = 1 << 5,      /* crash (lose what is not durable) and restart */
    PSIM_F_PAUSE = 1 << 6,      /* a node stops, then resumes with what queued up */
    PSIM_F_SLOW = 1 << 7,       /* slow disk syncs and slow message handling on a node */
    PSIM_F_SNAPSHOT = 1 << 8,   /* snapshots taken at random points, logs compacted */
    PSIM_F_MEMBERSHIP = 1 << 9, /* add learner, promote, remove follower, remove leader */
    PSIM_F_TRANSFER = 1 << 10,  /* leadership transfers */
    PSIM_F_REPLAY = 1 << 11,    /* old messages and whole old snapshot transfers delivered late */
    PSIM_F_ALL = (1 << 12) - 1,
};

/* Parses a comma-separated list of fault names ("loss,crash", "all", "none") into *mask.
 * Returns 0 or PT_EINVAL. */
int psim_faults_parse(const char *s, uint32_t *mask);
/* Writes the names of @mask into @buf. */
void psim_faults_format(uint32_t mask, char *buf, size_t cap);

typedef struct psim_options {
    uint64_t seed;
    int nodes;           /* 1..PSIM_MAX_NODES */
    uint64_t steps;      /* steps of the faulty phase (random runs) */
    uint32_t faults;     /* enum psim_fault mask for the nemesis */
    bool nemesis;        /* random fault schedule on */
    bool workload;       /* clients issue random operations on their own */
    int clients;         /* 0..PSIM_MAX_CLIENTS */
    int keys;            /* 1..PSIM_MAX_KEYS */
    uint32_t heal_ticks; /* liveness bound once faults heal */
    bool disable_pre_vote;
    bool disable_check_quorum;
    bool lease_reads; /* leader leases (thesis §6.4.1) for every core */
    FILE *trace;      /* if not NULL, the text trace is written there */
    /* Bugs planted in the simulated application on purpose, to show that the checkers catch
     * their effects end to end (tests only; enum psim_bug). */
    uint32_t bug;
    bool mix; /* the options came from psim_options_mix (for the replay line) */
    /* The cores' flow-control bounds (praft_options): small values split appends and
     * snapshots into many messages. */
    uint32_t msg_bytes, chunk_bytes, inflight;
    /* Clock drift: each node's tick lasts PSIM_TICK +- drift_permille/1000 of it, fixed per
     * lifetime. Leases (thesis §6.4.1) allow clocks to drift apart by less than an eighth,
     * i.e. a ratio below 9/8: drift_permille <= 58 stays within it. */
    uint32_t drift_permille;
    uint32_t election_ticks; /* every core's election timeout (default 10 ticks) */
#define PSIM_DRIFT_BOUND 58  /* (1000 + 58) / (1000 - 58) < 9/8 */
} psim_options;

enum psim_bug {
    PSIM_BUG_NONE = 0,
    PSIM_BUG_STALE_READ = 1, /* answer reads from local state without waiting for ReadIndex */
    PSIM_BUG_EARLY_ACK = 2,  /* acknowledge a put once proposed, before it commits */
};

void psim_options_init(psim_options *o, uint64_t seed, int nodes);
/* The random event mix (platoon-sim --mix): the seed alone picks the cluster size (3, 4, 5 or
 * 7 voters: even sizes too), ReadIndex or leases, pre-vote and check-quorum on or off, and the
 * run's length; every fault and every ordinary event of the core is in the schedule. */
void psim_options_mix(psim_options *o, uint64_t seed);

/* A message in flight: a deep copy of a core's message (its ready memory dies at advance). */
typedef struct psim_msg {
    praft_msg m;
    praft_snapshot_meta meta;
    uint64_t sent_at; /* when the sender sent it (a replay keeps the first sending's time) */
    int shares;       /* other holders (a replay record): psim_msg_free frees it at the last */
} psim_msg;

/* A client's request to a node, and the node's answer. */
typedef struct psim_creq {
    int client;
    uint64_t attempt;
    uint32_t kind; /* enum psim_op_kind */
    uint32_t key;
    uint64_t value;
    uint64_t seq;
} psim_creq;

enum psim_cresp_status {
    PSIM_R_OK = 0,
    PSIM_R_RETRY = 1, /* refused or lost before taking effect: try again elsewhere */
};

typedef struct psim_cresp {
    int client;
    uint64_t attempt;
    int status;
    uint64_t value;
    uint64_t leader_hint;
} psim_cresp;

/* The simulated disk of one node: what has been synced. Nothing else survives a crash. */
typedef struct psim_disk {
    praft_hard_state hs;
    praft_snapshot_meta snap;
    uint8_t *snap_data;
    size_t snap_len;
    /* A snapshot being received in chunks. */
    bool in_active;
    praft_snapshot_meta in_meta;
    uint8_t *in_data;
    size_t in_len, in_cap;
    /* The log: entries first..first+n-1; the entry before is the snapshot's. */
    uint64_t first;
    uint64_t base_term;
    uint64_t base_chain;
    bool chain_valid; /* false when a snapshot's prefix chain was unknown */
    praft_entry *log;
    uint64_t *chain;
    size_t n, cap;
} psim_disk;

/* The key-value state machine with exactly-once writes: (client, seq) dedup. */
typedef struct psim_kv {
    uint64_t applied;
    uint64_t values[PSIM_MAX_KEYS];
    uint64_t last_seq[PSIM_MAX_CLIENTS];
} psim_kv;

typedef struct psim_pending {
    uint64_t index; /* proposals: log index; reads: read index once known */
    uint64_t ctx;   /* reads: the read's context */
    bool ready;     /* reads: read index received */
    bool seen;      /* reads: a ready came out since it was asked (a lease read comes in the
                     * first one) */
    uint64_t at;    /* reads: the time it was asked at */
    bool confirmed; /* reads: seen confirmed at the end of a step (check_read_confirmed) */
    uint64_t floor; /* reads: the highest commit index any leader had when it was asked */
    psim_creq req;
} psim_pending;

typedef struct psim_host {
    int slot;
    uint64_t id;
    uint32_t incarnation; /* bumped at each start: a crash ends a lifetime */
    bool exists;          /* slot in use (has an id) */
    bool up, paused, slow;
    uint32_t missed_ticks; /* ticks that passed while paused */
    bool blank;            /* created empty to be added; not yet seen in a configuration */
    praft_node *raft;
    psim_disk disk;
    psim_kv kv;
    bool writing;
    praft_ready rd;
    uint64_t write_id;
    psim_pending *props, *reads;
    size_t n_props, n_reads, cap_props, cap_reads;
    uint64_t next_ctx;
    psim_event *held; /* events that arrived while paused */
    size_t n_held, cap_held;
    uint32_t last_role;
    uint64_t last_term;
    uint64_t tick_period;        /* time units per tick of this lifetime (clock drift) */
    uint64_t seen_commit;        /* commit index at the last check of this lifetime */
    uint64_t ticks;              /* ticks the core was given in this lifetime */
    uint64_t lead_tick;          /* ticks when it last became leader */
    uint64_t cfg_hash, cfg_tick; /* its configuration, and ticks when that last changed */
    /* Ticks when an answer of its term last came from each node (by id: a retired node's slot
     * may hold another node since). */
    uint64_t heard_id[2 * PRAFT_MAX_MEMBERS], heard_tick[2 * PRAFT_MAX_MEMBERS];
    /* Whether it took a heartbeat from a leader, of which term, and how many ticks it has
     * counted since, over all its lifetimes (its promise to keep still for an election timeout
     * outlives a restart, thesis §6.4.1). */
    bool hb_seen;
    uint64_t hb_term, hb_ticks;
    /* hb_seen in this lifetime: without leases a restarted node may vote at once. */
    bool hb_this_life;
    /* As leader: when each node (by id) sent the latest heartbeat answer of its term that
     * reached it (check_read_confirmed). */
    uint64_t ack_term, ack_id[2 * PRAFT_MAX_MEMBERS], ack_sent[2 * PRAFT_MAX_MEMBERS];
} psim_host;

#define PSIM_APP_REC 16

typedef struct psim_net {
    bool blocked[PSIM_MAX_NODES][PSIM_MAX_NODES]; /* [from][to] */
    uint32_t loss_permille, dup_permille;
    uint32_t delay_min, delay_max;
    bool reorder;
    uint64_t last_arrival[PSIM_MAX_NODES][PSIM_MAX_NODES]; /* FIFO when !reorder */
    uint64_t sent, delivered, dropped, duplicated;
    uint32_t replay_permille; /* chance that a message is delivered again much later */
    /* The chunks of the latest snapshot transfer on each link, to replay it whole. */
    struct psim_msg *snap_rec[PSIM_MAX_NODES][PSIM_MAX_NODES][16];
    int n_snap_rec[PSIM_MAX_NODES][PSIM_MAX_NODES];
    /* The latest heartbeat and append answers on each link, to deliver late on purpose. */
    struct psim_msg *resp_rec[PSIM_MAX_NODES][PSIM_MAX_NODES][2];
    /* The latest appends carrying entries on each link (a ring, oldest first from app_next),
     * to deliver late while the receiver writes the last chunk of a snapshot. */
    struct psim_msg *app_rec[PSIM_MAX_NODES][PSIM_MAX_NODES][PSIM_APP_REC];
    int app_next[PSIM_MAX_NODES][PSIM_MAX_NODES];
    uint64_t replayed;
} psim_net;

typedef struct psim_client {
    int id;
    bool busy;
    psim_op op;
    uint64_t seq;
    uint64_t attempt;
    int attempts;
    bool maybe;   /* a put attempt may have been proposed */
    bool backoff; /* the pending timer is a back-off after a refusal, not a timeout */
    uint64_t leader_hint;
    uint64_t ops_ok, ops_failed, ops_unknown;
} psim_client;

typedef struct psim_world {
    psim_options opt;
    psim_rng rng_net, rng_nem, rng_cli, rng_disk, rng_app;
    psim_eventq q;
    uint64_t now;
    uint64_t step;
    uint64_t lclock; /* logical time of history events */
    int n_slots;
    uint64_t next_id;
    uint64_t next_write;
    psim_host hosts[PSIM_MAX_NODES];
    psim_net net;
    psim_client clients[PSIM_MAX_CLIENTS];
    uint64_t next_value;
    psim_history hist;
    psim_inv inv;
    bool healing;
    bool stop; /* a violation or an internal error ended the run */
    int error; /* internal error (not a violation), PT_E* */
    uint64_t trace_hash;
    uint64_t applied_entries, elections, snapshots_taken, snapshots_installed;
    uint64_t crashes, membership_changes, transfers, nemesis_actions;
    uint64_t lin_inconclusive;
    uint64_t max_term;      /* highest term any node reached */
    uint64_t max_commit;    /* highest commit index any leader reached */
    int lure_slot;          /* client reads go to this node (a deposed leader), or -1 */
    uint32_t lure_permille; /* how often they do (500 unless a scenario says otherwise) */
    bool lure_writes;       /* puts go to it too: it fills its log with entries never committed */
    uint64_t lure_until;
    int cur_event; /* type of the event being handled */
    /* (term, candidate): campaigns started by TimeoutNow; (term, 0): a TimeoutNow was sent in
     * that term, which ended its leader's lease. */
    psim_pairmap xfer_votes;
    /* (term, vote_key) of the vote and pre-vote requests a node took while leader stickiness
     * left it free to grant them (check_vote_stickiness in node_host.c). */
    psim_pairmap free_votes;
    /* A two-step fault in flight (nemesis.c: a follower restarted within the lease). */
    struct {
        int leader, candidate;
    } stick;
    bool figure8_armed; /* the Figure 8 fault is watching for its moment */
    /* A leadership transfer started on a healthy cluster, whose outcome is checked. */
    struct {
        bool on, sent, won;
        uint64_t target, deadline, term; /* term: of the TimeoutNow, once delivered */
        uint64_t since;                  /* the calm began (target 0: not asked yet) */
    } xfer;
} psim_world;

/* ---- The world ---------------------------------------------------------------------------- */

/* Creates a world of opt->nodes bootstrapped voters (ids 1..n). Returns 0 or PT_ENOMEM,
 * PT_EINVAL, or a core error. */
int psim_world_new(const psim_options *opt, psim_world **out);
void psim_world_free(psim_world *w);

/* Runs events until simulated time reaches now + @ticks ticks, or the run stops. */
void psim_world_run_ticks(psim_world *w, uint64_t ticks);

/* Runs @steps events (or until the run stops). */
void psim_world_run_steps(psim_world *w, uint64_t steps);

/* The slot of the leader of the highest term among up nodes, or -1. */
int psim_world_leader(psim_world *w);
/* Number of up nodes that are leaders, and the highest term of any up node. */
int psim_world_count_leaders(psim_world *w, uint64_t *max_term);

/* Heals every fault: network, crashed, paused and slow nodes. */
void psim_world_heal(psim_world *w);

/* Liveness: heals, then requires within opt.heal_ticks a leader and every client idle. Records
 * a "liveness" violation otherwise. Returns 0 or PT_ECORRUPT. */
int psim_world_check_liveness(psim_world *w);

/* Final checks: linearizability of the history, leader completeness. 0 or PT_ECORRUPT. */
int psim_world_final_checks(psim_world *w);

/* ---- Faults (nemesis.c, network.c, node_host.c) ------------------------------------------- */

void psim_net_isolate(psim_world *w, int slot);         /* both directions */
void psim_net_block(psim_world *w, int from, int to);   /* one way */
void psim_net_split(psim_world *w, const bool *side_a); /* two sides */
void psim_net_heal(psim_world *w);                      /* all links back */
void psim_net_free(psim_world *w);                      /* the replay records */
/* Delivers the latest answers every other node sent to @slot again, over the next @ticks. */
void psim_net_replay_answers_to(psim_world *w, int slot, uint64_t ticks);
/* Delivers the last whole snapshot transfer recorded on the link @from -> @to once more, its
 * chunks in order from @at on; false if the link holds none. */
bool psim_net_replay_snapshot(psim_world *w, int from, int to, uint64_t at);
/* Delivers again the latest appends every other node sent to @slot whose commit index is below
 * @commit_below, in the order they were sent, all within the next @within time units. */
void psim_net_replay_appends_to(psim_world *w, int slot, uint64_t within, uint64_t commit_below);
void psim_host_crash(psim_world *w, int slot);
int psim_host_restart(psim_world *w, int slot);
void psim_host_pause(psim_world *w, int slot);
void psim_host_resume(psim_world *w, int slot);
/* Takes a snapshot of the state machine of @slot and compacts its log. 0, or PT_ENOTREADY
 * when there is nothing new to snapshot, or a core error. */
int psim_host_snapshot(psim_world *w, int slot, uint64_t keep);
/* The fault schedule's next action (nemesis.c). */
void psim_nemesis_act(psim_world *w);
/* The second step of a two-step fault (PSIM_EV_NEMESIS_STEP). */
void psim_nemesis_step(psim_world *w);
/* The Figure 8 fault, armed: crashes the leader at its moment, or polls again (@polls_left). */
void psim_nemesis_figure8(psim_world *w, uint64_t polls_left);

/* ---- Clients (client.c) ------------------------------------------------------------------- */

/* Client @c starts a put (value 0: a fresh unique value) or a get of @key. PT_EBUSY if busy. */
int psim_client_start(psim_world *w, int c, uint32_t kind, uint32_t key, uint64_t value);
/* True when every client is idle. */
bool psim_clients_idle(psim_world *w);

/* ---- Internal plumbing between the simulator's files -------------------------------------- */

int psim_schedule(psim_world *w, uint64_t delay, int type, int slot, uint64_t a, void *payload);
void psim_trace(psim_world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void psim_fail_internal(psim_world *w, int rc, const char *what);
/* Records a violation and stops the run. */
void psim_halt(psim_world *w);

int psim_slot_of(psim_world *w, uint64_t id);
void psim_net_send(psim_world *w, int from, const praft_msg *m);
void psim_msg_free(psim_msg *m);
void psim_payload_free(int type, void *payload);

void psim_host_tick(psim_world *w, int slot, uint64_t incarnation);
void psim_host_deliver(psim_world *w, int slot, psim_msg *m);
void psim_host_disk_done(psim_world *w, int slot, uint64_t write_id);
void psim_host_client_req(psim_world *w, int slot, psim_creq *req);
void psim_host_pump(psim_world *w, int slot);
void psim_host_check(psim_world *w, int slot);
/* Checks a message as it leaves @slot against what the sender has made durable. */
void psim_host_check_send(psim_world *w, int slot, const praft_msg *m);
void psim_host_release(psim_host *h);

void psim_client_invoke(psim_world *w, int c);
void psim_client_resp(psim_world *w, psim_cresp *resp);
void psim_client_timer(psim_world *w, int c, uint64_t attempt);
void psim_respond(psim_world *w, int slot, const psim_creq *req, int status, uint64_t value);

/* disk.c */
void psim_disk_init(psim_disk *d);
void psim_disk_free(psim_disk *d);
praft_storage psim_disk_storage(psim_disk *d);
uint64_t psim_disk_last(const psim_disk *d);
bool psim_disk_term(const psim_disk *d, uint64_t index, uint64_t *term);
/* Compacts entries up to @index (<= the snapshot index). */
void psim_disk_compact(psim_disk *d, uint64_t index);

/* kv.c */
void psim_kv_reset(psim_kv *kv);
int psim_kv_encode_put(uint32_t client, uint64_t seq, uint32_t key, uint64_t value, uint8_t *buf,
                       size_t cap, size_t *len);
/* Applies a NORMAL entry's command. PT_ECORRUPT for an undecodable command. */
int psim_kv_apply(psim_kv *kv, const uint8_t *data, size_t len);
uint64_t psim_kv_hash(const psim_kv *kv);
#define PSIM_KV_SNAPSHOT_BYTES ((size_t)8 * (1 + PSIM_MAX_KEYS + PSIM_MAX_CLIENTS))
void psim_kv_save(const psim_kv *kv, uint8_t *buf);
int psim_kv_load(psim_kv *kv, const uint8_t *buf, size_t len);

#endif
