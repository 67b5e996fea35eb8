/*
 * bench-raft — throughput of the Raft core alone.
 *
 * Three cores in one thread, storage in preallocated memory, messages handed from one core to
 * another directly: what is measured is the core's own cost per committed entry (the work a
 * leader and two followers do for it), which must stay far below what disks and networks
 * cost. Reports committed entries per second and heap allocations per entry.
 *
 *   bench-raft [entries (default 2000000)] [proposals per batch (default 512)]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "platoon/raft.h"

/* ---- counting allocator ------------------------------------------------------------------- */

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);

static uint64_t allocations;

void *__wrap_malloc(size_t size)
{
    allocations++;
    return __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    allocations++;
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    allocations++;
    return __real_realloc(p, size);
}

/* ---- storage in preallocated memory ------------------------------------------------------- */

#define ENTRY_BYTES 64

typedef struct store {
    praft_hard_state hs;
    uint64_t last;
    uint64_t *terms; /* by index */
    uint32_t *types;
    uint8_t *data; /* ENTRY_BYTES per index */
    uint32_t *lens;
    uint64_t cap;
    praft_entry boot; /* index 1: the bootstrap configuration */
} store;

static int st_initial(void *ctx, praft_hard_state *hs, praft_snapshot_meta *snap)
{
    store *s = ctx;
    *hs = s->hs;
    memset(snap, 0, sizeof(*snap));
    return 0;
}

static int st_first(void *ctx, uint64_t *index)
{
    (void)ctx;
    *index = 1;
    return 0;
}

static int st_last(void *ctx, uint64_t *index)
{
    *index = ((store *)ctx)->last;
    return 0;
}

static int st_term(void *ctx, uint64_t index, uint64_t *term)
{
    store *s = ctx;
    if (index > s->last) {
        return PT_EUNAVAILABLE;
    }
    *term = index == 0 ? 0 : s->terms[index];
    return 0;
}

static int st_entries(void *ctx, uint64_t lo, uint64_t hi, size_t max_bytes, praft_entry *out,
                      size_t *n)
{
    store *s = ctx;
    size_t k = 0, bytes = 0;
    for (uint64_t i = lo; i < hi; i++) {
        if (k > 0 && bytes + s->lens[i] > max_bytes) {
            break;
        }
        out[k] =
            (praft_entry){.index = i, .term = s->terms[i], .type = s->types[i], .len = s->lens[i]};
        out[k].data = NULL;
        const uint8_t *src = i == 1 ? s->boot.data : s->data + i * ENTRY_BYTES;
        if (s->lens[i] > 0) {
            out[k].data = malloc(s->lens[i]);
            if (out[k].data == NULL) {
                return PT_ENOMEM;
            }
            memcpy(out[k].data, src, s->lens[i]);
        }
        bytes += s->lens[i];
        k++;
    }
    *n = k;
    return 0;
}

static int st_snapshot_read(void *ctx, const praft_snapshot_meta *meta, uint64_t offset, void *buf,
                            size_t cap, size_t *len)
{
    (void)ctx;
    (void)meta;
    (void)offset;
    (void)buf;
    (void)cap;
    (void)len;
    return PT_ENOTFOUND;
}

static void store_write(store *s, const praft_ready *rd)
{
    for (size_t i = 0; i < rd->n_entries; i++) {
        const praft_entry *e = &rd->entries[i];
        if (e->index >= s->cap || e->len > ENTRY_BYTES) {
            fprintf(stderr, "bench-raft: store too small\n");
            exit(1);
        }
        s->terms[e->index] = e->term;
        s->types[e->index] = e->type;
        s->lens[e->index] = e->len;
        if (e->len > 0) {
            memcpy(s->data + e->index * ENTRY_BYTES, e->data, e->len);
        }
        s->last = e->index;
    }
    if (rd->has_hard_state) {
        s->hs = rd->hard_state;
    }
}

/* ---- the cluster -------------------------------------------------------------------------- */

#define N 3

static store stores[N + 1];
static praft_node *nodes[N + 1];
static uint64_t applied_normal[N + 1];

static void check(int rv, const char *what)
{
    if (rv != 0) {
        fprintf(stderr, "bench-raft: %s: %s\n", what, pt_strerror(rv));
        exit(1);
    }
}

static void deliver(const praft_msg *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        check(praft_step(nodes[msgs[i].to], &msgs[i]), "step");
    }
}

static int pump(void)
{
    int any = 0;
    for (int id = 1; id <= N; id++) {
        if (!praft_has_ready(nodes[id])) {
            continue;
        }
        any = 1;
        praft_ready rd;
        check(praft_ready_get(nodes[id], &rd), "ready");
        deliver(rd.send_now, rd.n_send_now);
        store_write(&stores[id], &rd);
        deliver(rd.send_after_persist, rd.n_send_after_persist);
        for (size_t i = 0; i < rd.n_committed; i++) {
            applied_normal[id] += rd.committed[i].type == PRAFT_ENTRY_NORMAL;
        }
        check(praft_advance(nodes[id], &rd), "advance");
    }
    return any;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    uint64_t total = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
    uint64_t batch = argc > 2 ? strtoull(argv[2], NULL, 10) : 512;
    if (total == 0 || batch == 0) {
        fprintf(stderr, "usage: bench-raft [entries] [batch]\n");
        return 2;
    }
    praft_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    for (int i = 1; i <= N; i++) {
        cfg.members[cfg.n_members].id = (uint64_t)i;
        cfg.members[cfg.n_members].role = PRAFT_ROLE_VOTER;
        snprintf(cfg.members[cfg.n_members].address, PRAFT_ADDRESS_MAX, "node%d", i);
        cfg.n_members++;
    }
    for (int id = 1; id <= N; id++) {
        store *s = &stores[id];
        check(praft_bootstrap_entry(&cfg, &s->boot), "bootstrap");
        s->cap = total + batch + 64;
        s->terms = calloc(s->cap, sizeof(*s->terms));
        s->types = calloc(s->cap, sizeof(*s->types));
        s->lens = calloc(s->cap, sizeof(*s->lens));
        s->data = calloc(s->cap, ENTRY_BYTES);
        if (!s->terms || !s->types || !s->lens || !s->data) {
            fprintf(stderr, "bench-raft: out of memory\n");
            return 1;
        }
        s->terms[1] = 1;
        s->types[1] = PRAFT_ENTRY_CONFIG;
        s->lens[1] = s->boot.len;
        s->last = 1;
        s->hs = (praft_hard_state){.term = 1, .commit = 1};
        praft_options o;
        praft_options_init(&o, (uint64_t)id);
        praft_storage st = {.ctx = s,
                            .initial_state = st_initial,
                            .first_index = st_first,
                            .last_index = st_last,
                            .term = st_term,
                            .entries = st_entries,
                            .snapshot_read = st_snapshot_read};
        check(praft_new(&o, &st, &nodes[id]), "new");
    }
    /* Elect node 1 (ticks until it campaigns) and let the no-op commit. */
    for (int i = 0; i < 100; i++) {
        praft_status stt;
        praft_status_get(nodes[1], &stt);
        if (stt.role == PRAFT_LEADER) {
            break;
        }
        praft_tick(nodes[1]);
        while (pump()) {
        }
    }
    while (pump()) {
    }
    praft_status stt;
    praft_status_get(nodes[1], &stt);
    if (stt.role != PRAFT_LEADER) {
        fprintf(stderr, "bench-raft: no leader\n");
        return 1;
    }

    uint8_t payload[ENTRY_BYTES];
    memset(payload, 0xab, sizeof(payload));
    uint64_t proposed = 0;
    uint64_t allocs0 = allocations;
    double t0 = now();
    while (applied_normal[1] < total) {
        for (uint64_t i = 0; i < batch && proposed < total; i++) {
            int rv = praft_propose(nodes[1], payload, sizeof(payload), NULL, NULL);
            if (rv == PT_EBUSY) {
                break; /* flow control: let the cluster catch up */
            }
            check(rv, "propose");
            proposed++;
        }
        pump();
    }
    double t1 = now();
    uint64_t allocs = allocations - allocs0;
    while (pump()) {
    }
    praft_status_get(nodes[1], &stt);
    for (int id = 2; id <= N; id++) {
        if (applied_normal[id] != total) {
            fprintf(stderr, "bench-raft: follower %d applied %llu of %llu\n", id,
                    (unsigned long long)applied_normal[id], (unsigned long long)total);
            return 1;
        }
    }
    double secs = t1 - t0;
    printf("bench-raft: 3 nodes, %llu entries of %d bytes, %llu proposals per batch\n",
           (unsigned long long)total, ENTRY_BYTES, (unsigned long long)batch);
    printf("  committed on the leader: %.0f entries/s (%.3f s)\n", (double)total / secs, secs);
    printf("  allocations: %.2f per entry (all three nodes)\n", (double)allocs / (double)total);
    printf("  messages sent by the leader: %llu (%.1f entries per message)\n",
           (unsigned long long)stt.counters.msgs_sent,
           (double)total / (double)(stt.counters.msgs_sent ? stt.counters.msgs_sent : 1));
    for (int id = 1; id <= N; id++) {
        praft_free(nodes[id]);
        free(stores[id].terms);
        free(stores[id].types);
        free(stores[id].lens);
        free(stores[id].data);
        free(stores[id].boot.data);
    }
    return 0;
}
