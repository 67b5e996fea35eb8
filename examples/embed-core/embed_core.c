/*
 * embed-core: the Raft core of Platoon (libplatoon-raft) driven by a program of its own.
 *
 * Three nodes live in this one process. Their "network" is a queue of messages in memory and
 * their "disk" is a log in memory that outlives a node's crash (the node's praft_node is freed
 * and created again from it, as a restarted process would from its files). The program:
 *
 *   1. bootstraps a cluster of three and waits for a leader;
 *   2. proposes a command and waits until every node has applied it;
 *   3. crashes the leader, waits for the two others to elect a new one, and commits a second
 *      command with them;
 *   4. restarts the crashed node from its durable state and waits until it has caught up.
 *
 * Everything the core asks of its user is in handle_ready(): persist, send, apply, advance.
 * docs/embedding.md walks through it. Build it against an installed Platoon with
 *
 *     cc -o embed_core embed_core.c $(pkg-config --cflags --libs platoon-raft)
 *
 * It prints what happens and exits 0 when every step succeeded, 1 otherwise.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <platoon/raft.h>

#define N_NODES    3
#define MAX_ROUNDS 2000 /* every wait below gives up after this many ticks */

/* ------------------------------------------------------------------------------------------
 * Storage: the durable state of one node, kept in memory. A real program keeps it in files
 * and syncs them; the rules are the same (docs/embedding.md, "The persistence contract").
 * ---------------------------------------------------------------------------------------- */

typedef struct mem_log {
    praft_hard_state hs;
    praft_entry *entries; /* entries[i] has index i + 1: this example never compacts */
    size_t n;
} mem_log;

static int copy_entry(praft_entry *dst, const praft_entry *src)
{
    *dst = *src;
    dst->data = NULL;
    if (src->len > 0) {
        dst->data = malloc(src->len);
        if (dst->data == NULL) {
            return PT_ENOMEM;
        }
        memcpy(dst->data, src->data, src->len);
    }
    return 0;
}

static int st_initial_state(void *ctx, praft_hard_state *hs, praft_snapshot_meta *snapshot)
{
    mem_log *l = ctx;
    *hs = l->hs;
    memset(snapshot, 0, sizeof(*snapshot)); /* no snapshot: index 0 */
    return 0;
}

static int st_first_index(void *ctx, uint64_t *index)
{
    (void)ctx;
    *index = 1;
    return 0;
}

static int st_last_index(void *ctx, uint64_t *index)
{
    *index = ((mem_log *)ctx)->n;
    return 0;
}

static int st_term(void *ctx, uint64_t index, uint64_t *term)
{
    mem_log *l = ctx;
    if (index > l->n) {
        return PT_EUNAVAILABLE;
    }
    *term = index == 0 ? 0 : l->entries[index - 1].term; /* index 0: the empty snapshot */
    return 0;
}

static int st_entries(void *ctx, uint64_t lo, uint64_t hi, size_t max_bytes, praft_entry *out,
                      size_t *n)
{
    mem_log *l = ctx;
    if (lo < 1) {
        return PT_ECOMPACTED;
    }
    if (hi > l->n + 1) {
        return PT_EUNAVAILABLE;
    }
    size_t bytes = 0;
    *n = 0;
    for (uint64_t i = lo; i < hi; i++) {
        const praft_entry *e = &l->entries[i - 1];
        if (*n > 0 && bytes + e->len > max_bytes) {
            break; /* at least one entry, then within the byte bound */
        }
        int rc = copy_entry(&out[*n], e); /* the caller frees each entry's data */
        if (rc != 0) {
            while (*n > 0) {
                free(out[--*n].data);
            }
            return rc;
        }
        bytes += e->len;
        (*n)++;
    }
    return 0;
}

static int st_snapshot_read(void *ctx, const praft_snapshot_meta *meta, uint64_t offset, void *buf,
                            size_t cap, size_t *len)
{
    (void)ctx, (void)meta, (void)offset, (void)buf, (void)cap, (void)len;
    return PT_ENOTFOUND; /* this example takes no snapshots */
}

/* Step 2c of the contract: drop the stored suffix the new entries replace, then append. */
static int log_append(mem_log *l, const praft_entry *ents, size_t n)
{
    if (n == 0) {
        return 0;
    }
    while (l->n >= ents[0].index) {
        free(l->entries[--l->n].data);
    }
    praft_entry *grown = realloc(l->entries, (l->n + n) * sizeof(*grown));
    if (grown == NULL) {
        return PT_ENOMEM;
    }
    l->entries = grown;
    for (size_t i = 0; i < n; i++) {
        int rc = copy_entry(&l->entries[l->n], &ents[i]);
        if (rc != 0) {
            return rc;
        }
        l->n++;
    }
    return 0;
}

static void log_free(mem_log *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->entries[i].data);
    }
    free(l->entries);
}

/* ------------------------------------------------------------------------------------------
 * Transport: one queue of messages for the whole process. A message handed out in a ready
 * belongs to the core until praft_advance, so the queue keeps deep copies.
 * ---------------------------------------------------------------------------------------- */

typedef struct msg_queue {
    praft_msg *msgs;
    size_t n, cap;
} msg_queue;

static void msg_free(praft_msg *m)
{
    for (size_t i = 0; i < m->n_entries; i++) {
        free(m->entries[i].data);
    }
    free(m->entries);
    free(m->snapshot);
    free(m->data);
}

static int msg_copy(praft_msg *dst, const praft_msg *src)
{
    *dst = *src;
    dst->entries = NULL;
    dst->snapshot = NULL;
    dst->data = NULL;
    dst->n_entries = 0;
    if (src->n_entries > 0) {
        dst->entries = calloc(src->n_entries, sizeof(*dst->entries));
        if (dst->entries == NULL) {
            return PT_ENOMEM;
        }
        for (; dst->n_entries < src->n_entries; dst->n_entries++) {
            if (copy_entry(&dst->entries[dst->n_entries], &src->entries[dst->n_entries]) != 0) {
                msg_free(dst);
                return PT_ENOMEM;
            }
        }
    }
    if (src->snapshot != NULL) {
        dst->snapshot = malloc(sizeof(*dst->snapshot));
        if (dst->snapshot == NULL) {
            msg_free(dst);
            return PT_ENOMEM;
        }
        *dst->snapshot = *src->snapshot;
    }
    if (src->len > 0) {
        dst->data = malloc(src->len);
        if (dst->data == NULL) {
            msg_free(dst);
            return PT_ENOMEM;
        }
        memcpy(dst->data, src->data, src->len);
    }
    return 0;
}

static int send_all(msg_queue *q, const praft_msg *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (q->n == q->cap) {
            size_t cap = q->cap == 0 ? 64 : 2 * q->cap;
            praft_msg *grown = realloc(q->msgs, cap * sizeof(*grown));
            if (grown == NULL) {
                return PT_ENOMEM;
            }
            q->msgs = grown;
            q->cap = cap;
        }
        int rc = msg_copy(&q->msgs[q->n], &msgs[i]);
        if (rc != 0) {
            return rc;
        }
        q->n++;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * The nodes and the ready loop
 * ---------------------------------------------------------------------------------------- */

typedef struct node {
    uint64_t id;
    mem_log disk;        /* survives a crash */
    praft_node *raft;    /* NULL while crashed */
    char applied[256];   /* the state machine: the commands applied, in order */
    uint64_t applied_to; /* its applied index; lost with the process, like the state */
} node;

static node nodes[N_NODES];
static msg_queue net;

/* Everything the core asks of its user, in the order the persistence contract demands. */
static int handle_ready(node *nd)
{
    praft_ready rd;
    int rc = praft_ready_get(nd->raft, &rd);
    if (rc != 0) {
        return rc;
    }
    /* 1. Messages that need no disk write first (a leader's appends, heartbeats). */
    rc = send_all(&net, rd.send_now, rd.n_send_now);
    /* 2. Persist, in this order, before sending anything else: entries, then the hard state.
     *    (rd.has_snapshot and rd.has_snapshot_chunk never occur here: no node takes one.) */
    if (rc == 0) {
        rc = log_append(&nd->disk, rd.entries, rd.n_entries);
    }
    if (rc == 0 && rd.has_hard_state) {
        nd->disk.hs = rd.hard_state;
    }
    /* 3. Messages that vouch for what was just persisted (votes, acknowledgements). */
    if (rc == 0) {
        rc = send_all(&net, rd.send_after_persist, rd.n_send_after_persist);
    }
    /* 4. Apply what is committed, in order; commands only (NOOP and CONFIG entries are the
     *    core's own). */
    for (size_t i = 0; rc == 0 && i < rd.n_committed; i++) {
        const praft_entry *e = &rd.committed[i];
        if (e->type == PRAFT_ENTRY_NORMAL) {
            size_t used = strlen(nd->applied);
            snprintf(nd->applied + used, sizeof(nd->applied) - used, "%s%.*s", used > 0 ? "," : "",
                     (int)e->len, (const char *)e->data);
        }
        nd->applied_to = e->index;
    }
    /* 5. (No reads in this example.) 6. Tell the core the batch is done. */
    int rc2 = praft_advance(nd->raft, &rd);
    return rc != 0 ? rc : rc2;
}

static int start_node(node *nd)
{
    praft_options opts;
    praft_options_init(&opts, nd->id);
    praft_storage st = {
        .ctx = &nd->disk,
        .initial_state = st_initial_state,
        .first_index = st_first_index,
        .last_index = st_last_index,
        .term = st_term,
        .entries = st_entries,
        .snapshot_read = st_snapshot_read,
    };
    nd->applied[0] = '\0'; /* the state machine starts empty and is rebuilt from the log */
    nd->applied_to = 0;
    return praft_new(&opts, &st, &nd->raft);
}

static void crash_node(node *nd)
{
    praft_free(nd->raft); /* what was persisted in nd->disk stays */
    nd->raft = NULL;
}

/* One tick of the whole cluster: clocks, then the network, then every node's ready. */
static int round_trip(void)
{
    for (int i = 0; i < N_NODES; i++) {
        if (nodes[i].raft != NULL) {
            praft_tick(nodes[i].raft);
        }
    }
    msg_queue inflight = net; /* messages sent while delivering go into the next round */
    memset(&net, 0, sizeof(net));
    int rc = 0;
    for (size_t m = 0; m < inflight.n; m++) {
        node *to = &nodes[inflight.msgs[m].to - 1];
        if (rc == 0 && to->raft != NULL) { /* a crashed node's messages are lost */
            rc = praft_step(to->raft, &inflight.msgs[m]);
        }
        msg_free(&inflight.msgs[m]);
    }
    free(inflight.msgs);
    for (int i = 0; rc == 0 && i < N_NODES; i++) {
        while (rc == 0 && nodes[i].raft != NULL && praft_has_ready(nodes[i].raft)) {
            rc = handle_ready(&nodes[i]);
        }
    }
    if (rc != 0) {
        fprintf(stderr, "embed-core: %s\n", pt_strerror(rc));
    }
    return rc;
}

static node *leader(void)
{
    for (int i = 0; i < N_NODES; i++) {
        praft_status st;
        if (nodes[i].raft != NULL) {
            praft_status_get(nodes[i].raft, &st);
            if (st.role == PRAFT_LEADER) {
                return &nodes[i];
            }
        }
    }
    return NULL;
}

static node *wait_for_leader(void)
{
    for (int r = 0; r < MAX_ROUNDS && round_trip() == 0; r++) {
        node *l = leader();
        if (l != NULL) {
            return l;
        }
    }
    return NULL;
}

/* Proposes @cmd on the leader and runs until every live node applied its entry. */
static bool commit(node *l, const char *cmd)
{
    uint64_t index, term;
    int rc = praft_propose(l->raft, cmd, strlen(cmd), &index, &term);
    if (rc != 0) {
        fprintf(stderr, "embed-core: propose: %s\n", pt_strerror(rc));
        return false;
    }
    for (int r = 0; r < MAX_ROUNDS && round_trip() == 0; r++) {
        bool all = true;
        for (int i = 0; i < N_NODES; i++) {
            all = all && (nodes[i].raft == NULL || nodes[i].applied_to >= index);
        }
        if (all) {
            printf("  \"%s\" committed at index %llu, term %llu\n", cmd, (unsigned long long)index,
                   (unsigned long long)term);
            return true;
        }
    }
    return false;
}

static bool run(void)
{
    /* Bootstrap: every founding member writes the same first entry (the configuration) and a
     * hard state that commits it, before its first praft_new. */
    praft_config config = {.joint = false, .n_members = N_NODES};
    for (int i = 0; i < N_NODES; i++) {
        nodes[i].id = (uint64_t)i + 1;
        config.members[i].id = nodes[i].id;
        config.members[i].role = PRAFT_ROLE_VOTER;
        snprintf(config.members[i].address, PRAFT_ADDRESS_MAX, "in-process:%d", i + 1);
    }
    praft_entry boot;
    if (praft_bootstrap_entry(&config, &boot) != 0) {
        return false;
    }
    bool ok = true;
    for (int i = 0; ok && i < N_NODES; i++) {
        nodes[i].disk.hs = (praft_hard_state){.term = 1, .vote = PRAFT_NONE, .commit = 1};
        ok = log_append(&nodes[i].disk, &boot, 1) == 0 && start_node(&nodes[i]) == 0;
    }
    free(boot.data);

    node *l = ok ? wait_for_leader() : NULL;
    ok = l != NULL;
    if (ok) {
        printf("1. node %llu leads\n", (unsigned long long)l->id);
        ok = commit(l, "set speed=80");
    }
    if (ok) {
        printf("2. node %llu crashes\n", (unsigned long long)l->id);
        node *dead = l;
        crash_node(dead);
        l = wait_for_leader();
        ok = l != NULL;
        if (ok) {
            printf("3. node %llu leads the two survivors\n", (unsigned long long)l->id);
            ok = commit(l, "set gap=20");
        }
        if (ok) {
            printf("4. node %llu restarts from its log\n", (unsigned long long)dead->id);
            ok = start_node(dead) == 0 && commit(l, "set lane=2");
        }
    }
    for (int i = 0; ok && i < N_NODES; i++) {
        printf("   node %llu applied: %s\n", (unsigned long long)nodes[i].id, nodes[i].applied);
        ok = strcmp(nodes[i].applied, "set speed=80,set gap=20,set lane=2") == 0;
    }
    return ok;
}

int main(void)
{
    bool ok = run();
    for (int i = 0; i < N_NODES; i++) {
        praft_free(nodes[i].raft);
        log_free(&nodes[i].disk);
    }
    for (size_t m = 0; m < net.n; m++) {
        msg_free(&net.msgs[m]);
    }
    free(net.msgs);
    printf("%s\n", ok ? "embed-core: ok" : "embed-core: FAILED");
    return ok ? 0 : 1;
}
