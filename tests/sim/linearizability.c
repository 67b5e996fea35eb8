#include "sim/linearizability.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platoon/error.h"
#include "sim/rng.h"

/* One call or return event in the doubly linked list the search walks. */
typedef struct lin_entry {
    struct lin_entry *prev, *next;
    struct lin_entry *match; /* a call's return entry; NULL for a return */
    size_t op;               /* index in the per-key op array */
    bool is_call;
    uint64_t time;
    int order; /* tie-break: calls before returns at equal times (treat them as overlapping) */
} lin_entry;

/* The memo of explored (linearized set, register value) pairs: open addressing. */
typedef struct lin_cache {
    uint64_t *words; /* n_slots * (nw + 1) words: the bitset then the state */
    bool *used;
    size_t n_slots, n_used, nw;
} lin_cache;

static uint64_t bits_hash(const uint64_t *bits, size_t nw, uint64_t state)
{
    uint64_t h = psim_mix(state, nw);
    for (size_t i = 0; i < nw; i++) {
        h = psim_mix(h, bits[i]);
    }
    return h;
}

static int cache_grow(lin_cache *c);

/* Inserts (bits, state); *fresh tells whether it was new. */
static int cache_insert(lin_cache *c, const uint64_t *bits, uint64_t state, bool *fresh)
{
    if ((c->n_used + 1) * 2 > c->n_slots) {
        int rc = cache_grow(c);
        if (rc != 0) {
            return rc;
        }
    }
    size_t stride = c->nw + 1;
    size_t i = bits_hash(bits, c->nw, state) & (c->n_slots - 1);
    while (c->used[i]) {
        uint64_t *w = &c->words[i * stride];
        if (w[c->nw] == state && memcmp(w, bits, c->nw * sizeof(uint64_t)) == 0) {
            *fresh = false;
            return 0;
        }
        i = (i + 1) & (c->n_slots - 1);
    }
    c->used[i] = true;
    memcpy(&c->words[i * stride], bits, c->nw * sizeof(uint64_t));
    c->words[i * stride + c->nw] = state;
    c->n_used++;
    *fresh = true;
    return 0;
}

static int cache_grow(lin_cache *c)
{
    lin_cache n = {.nw = c->nw, .n_slots = c->n_slots ? c->n_slots * 2 : 1024};
    n.words = calloc(n.n_slots * (n.nw + 1), sizeof(uint64_t));
    n.used = calloc(n.n_slots, sizeof(bool));
    if (n.words == NULL || n.used == NULL) {
        free(n.words);
        free(n.used);
        return PT_ENOMEM;
    }
    for (size_t i = 0; i < c->n_slots; i++) {
        if (c->used[i]) {
            bool fresh;
            const uint64_t *w = &c->words[i * (c->nw + 1)];
            (void)cache_insert(&n, w, w[c->nw], &fresh);
        }
    }
    free(c->words);
    free(c->used);
    *c = n;
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    const lin_entry *x = a, *y = b;
    if (x->time != y->time) {
        return x->time < y->time ? -1 : 1;
    }
    if (x->order != y->order) {
        return x->order - y->order;
    }
    return x->op < y->op ? -1 : (x->op > y->op);
}

/* A call sorts before its own return, so it is never last in the list; still, like the return,
 * it is unlinked and relinked without assuming a successor. */
static void lift(lin_entry *call)
{
    call->prev->next = call->next;
    if (call->next != NULL) {
        call->next->prev = call->prev;
    }
    lin_entry *ret = call->match;
    ret->prev->next = ret->next;
    if (ret->next != NULL) {
        ret->next->prev = ret->prev;
    }
}

static void unlift(lin_entry *call)
{
    lin_entry *ret = call->match;
    ret->prev->next = ret;
    if (ret->next != NULL) {
        ret->next->prev = ret;
    }
    call->prev->next = call;
    if (call->next != NULL) {
        call->next->prev = call;
    }
}

/* The register model: a put always succeeds; a get must read the current value. */
static bool model_step(const psim_op *op, uint64_t state, uint64_t *next)
{
    if (op->kind == PSIM_OP_PUT) {
        *next = op->value;
        return true;
    }
    *next = state;
    return op->value == state;
}

typedef struct lin_frame {
    lin_entry *call;
    uint64_t state;
} lin_frame;

static void describe(const psim_op *op, char *buf, size_t cap)
{
    if (op->complete == PSIM_TIME_INF) {
        snprintf(buf, cap, "client %" PRIu32 " %s(%" PRIu64 ") [%" PRIu64 ", unknown]", op->client,
                 op->kind == PSIM_OP_PUT ? "put" : "get", op->value, op->invoke);
    } else {
        snprintf(buf, cap, "client %" PRIu32 " %s -> %" PRIu64 " [%" PRIu64 ", %" PRIu64 "]",
                 op->client, op->kind == PSIM_OP_PUT ? "put" : "get", op->value, op->invoke,
                 op->complete);
    }
}

/* Checks the operations of one key. */
static int check_key(const psim_op *ops, size_t n, uint64_t max_steps, psim_lin_report *rep)
{
    int rc = 0;
    size_t nw = (n + 63) / 64;
    lin_entry *ev = calloc(2 * n + 1, sizeof(*ev));
    lin_frame *stack = calloc(n + 1, sizeof(*stack));
    uint64_t *bits = calloc(nw ? nw : 1, sizeof(uint64_t));
    lin_cache cache = {.nw = nw};
    if (ev == NULL || stack == NULL || bits == NULL) {
        rc = PT_ENOMEM;
        goto out;
    }
    rc = cache_grow(&cache);
    if (rc != 0) {
        goto out;
    }
    lin_entry *sorted = ev + 1;
    for (size_t i = 0; i < n; i++) {
        sorted[2 * i] = (lin_entry){.op = i, .is_call = true, .time = ops[i].invoke, .order = 0};
        sorted[2 * i + 1] = (lin_entry){.op = i, .time = ops[i].complete, .order = 1};
    }
    qsort(sorted, 2 * n, sizeof(*sorted), entry_cmp);
    /* Link the list behind a sentinel head, and pair calls with their returns. */
    size_t *ret_of = calloc(n ? n : 1, sizeof(size_t));
    if (ret_of == NULL) {
        rc = PT_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < 2 * n; i++) {
        if (!sorted[i].is_call) {
            ret_of[sorted[i].op] = i;
        }
    }
    lin_entry *head = &ev[0];
    head->prev = NULL;
    head->next = n ? &sorted[0] : NULL;
    for (size_t i = 0; i < 2 * n; i++) {
        sorted[i].prev = i ? &sorted[i - 1] : head;
        sorted[i].next = i + 1 < 2 * n ? &sorted[i + 1] : NULL;
        if (sorted[i].is_call) {
            sorted[i].match = &sorted[ret_of[sorted[i].op]];
        }
    }
    free(ret_of);

    size_t depth = 0, best_depth = 0, blocker = SIZE_MAX;
    uint64_t state = 0, steps = 0;
    lin_entry *e = head->next;
    while (e != NULL) {
        if (++steps > max_steps) {
            rc = PT_ETIMEDOUT;
            if (rep) {
                snprintf(rep->detail, sizeof(rep->detail), "search gave up after %" PRIu64 " steps",
                         max_steps);
            }
            goto out;
        }
        const psim_op *op = &ops[e->op];
        if (e->is_call) {
            uint64_t next;
            if (model_step(op, state, &next)) {
                bits[e->op / 64] |= 1ULL << (e->op % 64);
                bool fresh;
                rc = cache_insert(&cache, bits, next, &fresh);
                if (rc != 0) {
                    goto out;
                }
                if (fresh) {
                    stack[depth++] = (lin_frame){.call = e, .state = state};
                    state = next;
                    lift(e);
                    e = head->next;
                    continue;
                }
                bits[e->op / 64] &= ~(1ULL << (e->op % 64));
            }
            e = e->next;
            continue;
        }
        /* A return of an operation not linearized yet. Unknown-outcome returns sort last, so
         * reaching one means every definite operation has been placed. */
        if (op->complete == PSIM_TIME_INF) {
            break;
        }
        if (depth >= best_depth) {
            best_depth = depth;
            blocker = e->op;
        }
        if (depth == 0) {
            rc = PT_ECORRUPT;
            break;
        }
        lin_frame f = stack[--depth];
        state = f.state;
        bits[f.call->op / 64] &= ~(1ULL << (f.call->op % 64));
        unlift(f.call);
        e = f.call->next;
    }
    if (rc == PT_ECORRUPT && rep != NULL) {
        char what[160];
        describe(&ops[blocker], what, sizeof(what));
        snprintf(rep->detail, sizeof(rep->detail),
                 "no linearization: at most %zu of %zu operations could be ordered before %s",
                 best_depth, n, what);
    }
out:
    free(ev);
    free(stack);
    free(bits);
    free(cache.words);
    free(cache.used);
    return rc;
}

static int op_key_cmp(const void *a, const void *b)
{
    const psim_op *x = a, *y = b;
    if (x->key != y->key) {
        return x->key < y->key ? -1 : 1;
    }
    return x->invoke < y->invoke ? -1 : (x->invoke > y->invoke);
}

int psim_lin_check(const psim_history *h, uint64_t max_steps, psim_lin_report *rep)
{
    int rc = 0;
    psim_op *ops = malloc((h->n ? h->n : 1) * sizeof(*ops));
    if (ops == NULL) {
        return PT_ENOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < h->n; i++) {
        const psim_op *op = &h->ops[i];
        /* Failed operations had no effect, and a get can only be unknown if it failed. */
        if (op->outcome == PSIM_OUT_FAILED ||
            (op->outcome == PSIM_OUT_UNKNOWN && op->kind == PSIM_OP_GET)) {
            continue;
        }
        ops[n] = *op;
        if (op->outcome == PSIM_OUT_UNKNOWN) {
            ops[n].complete = PSIM_TIME_INF;
        }
        n++;
    }
    qsort(ops, n, sizeof(*ops), op_key_cmp);
    for (size_t lo = 0; lo < n;) {
        size_t hi = lo;
        while (hi < n && ops[hi].key == ops[lo].key) {
            hi++;
        }
        if (rep != NULL) {
            rep->key = ops[lo].key;
            rep->n_ops = hi - lo;
            rep->detail[0] = '\0';
        }
        rc = check_key(&ops[lo], hi - lo, max_steps, rep);
        if (rc != 0) {
            goto out;
        }
        lo = hi;
    }
out:
    free(ops);
    return rc;
}
