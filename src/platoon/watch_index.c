/*
 * The watchers' index (watch_index.h).
 */
#include <stdlib.h>
#include <string.h>

#include "platoon/error.h"
#include "platoon/watch_index.h"

/* The members of one id: a list in no order (removal moves the last into the gap). */
struct pveh_windex_bucket {
    uint64_t id; /* 0: a free slot */
    struct pveh_windex_ref *refs;
    size_t n, cap;
};

/* A member in the list of an id, and which of its ids that is. */
struct pveh_windex_ref {
    pveh_windex_member *m;
    size_t which;
};

#define FIRST_TABLE 64
#define FIRST_PEND  8

static size_t hash_slot(uint64_t id, size_t cap)
{
    /* Fibonacci hashing: vehicle ids are often consecutive. */
    return (size_t)((id * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (cap - 1);
}

void pveh__windex_init(pveh_windex *x)
{
    memset(x, 0, sizeof(*x));
}

void pveh__windex_free(pveh_windex *x)
{
    for (size_t i = 0; i < x->table_cap; i++) {
        free(x->table[i].refs);
    }
    free(x->table);
    free(x->unfiltered);
    memset(x, 0, sizeof(*x));
}

static struct pveh_windex_bucket *find(const pveh_windex *x, uint64_t id)
{
    if (x->table_cap == 0) {
        return NULL;
    }
    for (size_t i = hash_slot(id, x->table_cap);; i = (i + 1) & (x->table_cap - 1)) {
        struct pveh_windex_bucket *b = &x->table[i];
        if (b->id == id) {
            return b;
        }
        if (b->id == 0) {
            return NULL;
        }
    }
}

/* Room for one more id at most half full. */
static int reserve(pveh_windex *x)
{
    if ((x->n_ids + 1) * 2 <= x->table_cap) {
        return 0;
    }
    size_t cap = x->table_cap == 0 ? FIRST_TABLE : x->table_cap * 2;
    struct pveh_windex_bucket *t = calloc(cap, sizeof(*t));
    if (t == NULL) {
        return PT_ENOMEM;
    }
    for (size_t i = 0; i < x->table_cap; i++) {
        struct pveh_windex_bucket *b = &x->table[i];
        if (b->id == 0) {
            continue;
        }
        size_t j = hash_slot(b->id, cap);
        while (t[j].id != 0) {
            j = (j + 1) & (cap - 1);
        }
        t[j] = *b;
        /* The members' slots index lists, not buckets: they stay right. */
    }
    free(x->table);
    x->table = t;
    x->table_cap = cap;
    return 0;
}

static struct pveh_windex_bucket *find_or_insert(pveh_windex *x, uint64_t id)
{
    struct pveh_windex_bucket *b = find(x, id);
    if (b != NULL) {
        return b;
    }
    if (reserve(x) != 0) {
        return NULL;
    }
    size_t i = hash_slot(id, x->table_cap);
    while (x->table[i].id != 0) {
        i = (i + 1) & (x->table_cap - 1);
    }
    x->table[i].id = id;
    x->n_ids++;
    return &x->table[i];
}

/* Frees the bucket of @b (now empty) and shifts back the entries after it that would no
 * longer be found (linear probing keeps no tombstones). */
static void erase(pveh_windex *x, struct pveh_windex_bucket *b)
{
    size_t mask = x->table_cap - 1;
    size_t hole = (size_t)(b - x->table);
    free(b->refs);
    memset(b, 0, sizeof(*b));
    x->n_ids--;
    for (size_t i = (hole + 1) & mask; x->table[i].id != 0; i = (i + 1) & mask) {
        size_t home = hash_slot(x->table[i].id, x->table_cap);
        /* Movable into the hole when its home is not cyclically within (hole, i]. */
        bool stays = hole < i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (!stays) {
            x->table[hole] = x->table[i];
            memset(&x->table[i], 0, sizeof(x->table[i]));
            hole = i;
        }
    }
}

static void unlist(pveh_windex *x, pveh_windex_member *m, size_t which)
{
    struct pveh_windex_bucket *b = find(x, m->ids[which]);
    if (b == NULL) {
        return;
    }
    size_t at = m->slots[which];
    b->refs[at] = b->refs[--b->n];
    if (at < b->n) {
        b->refs[at].m->slots[b->refs[at].which] = at;
    }
    if (b->n == 0) {
        erase(x, b);
    }
}

static int list(pveh_windex *x, pveh_windex_member *m, size_t which)
{
    struct pveh_windex_bucket *b = find_or_insert(x, m->ids[which]);
    if (b == NULL) {
        return PT_ENOMEM;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap == 0 ? 4 : b->cap * 2;
        struct pveh_windex_ref *refs = realloc(b->refs, cap * sizeof(*refs));
        if (refs == NULL) {
            if (b->n == 0) {
                erase(x, b);
            }
            return PT_ENOMEM;
        }
        b->refs = refs;
        b->cap = cap;
    }
    m->slots[which] = b->n;
    b->refs[b->n++] = (struct pveh_windex_ref){.m = m, .which = which};
    return 0;
}

int pveh__windex_add(pveh_windex *x, pveh_windex_member *m, uint64_t seq, uint64_t next_seq)
{
    size_t n_slots = m->n_ids > 0 ? m->n_ids : 1;
    m->slots = malloc(n_slots * sizeof(*m->slots));
    if (m->slots == NULL) {
        return PT_ENOMEM;
    }
    m->seq = seq;
    m->walk = m->n_ids == 0 || seq < next_seq;
    m->pend = NULL;
    m->pend_head = m->pend_n = m->pend_cap = 0;
    if (m->n_ids == 0) {
        if (x->n_unfiltered == x->cap_unfiltered) {
            size_t cap = x->cap_unfiltered == 0 ? 16 : x->cap_unfiltered * 2;
            pveh_windex_member **u = realloc(x->unfiltered, cap * sizeof(*u));
            if (u == NULL) {
                free(m->slots);
                m->slots = NULL;
                return PT_ENOMEM;
            }
            x->unfiltered = u;
            x->cap_unfiltered = cap;
        }
        m->slots[0] = x->n_unfiltered;
        x->unfiltered[x->n_unfiltered++] = m;
        m->added = true;
        return 0;
    }
    for (size_t i = 0; i < m->n_ids; i++) {
        if (list(x, m, i) != 0) {
            while (i-- > 0) {
                unlist(x, m, i);
            }
            free(m->slots);
            m->slots = NULL;
            return PT_ENOMEM;
        }
    }
    m->added = true;
    return 0;
}

void pveh__windex_remove(pveh_windex *x, pveh_windex_member *m)
{
    if (!m->added) {
        return;
    }
    if (m->n_ids == 0) {
        size_t at = m->slots[0];
        x->unfiltered[at] = x->unfiltered[--x->n_unfiltered];
        if (at < x->n_unfiltered) {
            x->unfiltered[at]->slots[0] = at;
        }
    } else {
        for (size_t i = 0; i < m->n_ids; i++) {
            unlist(x, m, i);
        }
    }
    free(m->slots);
    free(m->pend);
    m->slots = NULL;
    m->pend = NULL;
    m->pend_head = m->pend_n = m->pend_cap = 0;
    m->added = false;
}

/* Notes @seq as a pending match of @m, or makes @m walk when it has too many. */
static void note(pveh_windex_member *m, uint64_t seq)
{
    if (m->walk) {
        return;
    }
    if (m->pend_n == m->pend_cap) {
        size_t cap = m->pend_cap == 0 ? FIRST_PEND : m->pend_cap * 2;
        uint64_t *p = cap <= PVEH_WINDEX_PEND_MAX ? malloc(cap * sizeof(*p)) : NULL;
        if (p == NULL) {
            /* Walking is always right, only slower. */
            free(m->pend);
            m->pend = NULL;
            m->pend_head = m->pend_n = m->pend_cap = 0;
            m->walk = true;
            return;
        }
        for (size_t i = 0; i < m->pend_n; i++) {
            p[i] = m->pend[(m->pend_head + i) % m->pend_cap];
        }
        free(m->pend);
        m->pend = p;
        m->pend_head = 0;
        m->pend_cap = cap;
    }
    m->pend[(m->pend_head + m->pend_n) % m->pend_cap] = seq;
    m->pend_n++;
}

void pveh__windex_record(pveh_windex *x, uint64_t id, uint64_t seq, pveh_windex_fn wake, void *ctx)
{
    struct pveh_windex_bucket *b = find(x, id);
    if (b != NULL) {
        /* From the end: a member that removes itself moves the last into its place, which
         * was visited already. */
        for (size_t i = b->n; i-- > 0;) {
            pveh_windex_member *m = b->refs[i].m;
            note(m, seq);
            wake(ctx, m);
            if (b->id != id) {
                break; /* its last member left: the slot is free, or another id's now */
            }
        }
    }
    if (!x->unfiltered_woken && x->n_unfiltered > 0) {
        x->unfiltered_woken = true;
        for (size_t i = x->n_unfiltered; i-- > 0;) {
            wake(ctx, x->unfiltered[i]);
        }
    }
}

void pveh__windex_unfiltered_seen(pveh_windex *x)
{
    x->unfiltered_woken = false;
}

void pveh__windex_each(pveh_windex *x, pveh_windex_fn fn, void *ctx)
{
    for (size_t i = x->n_unfiltered; i-- > 0;) {
        fn(ctx, x->unfiltered[i]);
    }
    for (size_t k = 0; k < x->table_cap; k++) {
        const struct pveh_windex_bucket *b = &x->table[k];
        for (size_t i = 0; b->id != 0 && i < b->n; i++) {
            /* A member with several ids is in several lists: once, from its first. */
            if (b->refs[i].which == 0) {
                fn(ctx, b->refs[i].m);
            }
        }
    }
}

void pveh__windex_restart(pveh_windex_member *m, uint64_t seq)
{
    m->seq = seq;
    m->walk = m->n_ids == 0;
    m->pend_head = m->pend_n = 0;
}

bool pveh__windex_next(pveh_windex_member *m, const pveh_history *h, uint64_t *seq)
{
    if (m->walk) {
        if (m->seq < h->next_seq) {
            *seq = m->seq++;
            return true;
        }
        /* Caught up: from now on the index notes every match as it is recorded. */
        m->walk = m->n_ids == 0;
        return false;
    }
    if (m->pend_n == 0) {
        m->seq = h->next_seq;
        return false;
    }
    *seq = m->pend[m->pend_head];
    m->pend_head = (m->pend_head + 1) % m->pend_cap;
    m->pend_n--;
    m->seq = *seq + 1;
    return true;
}

uint64_t pveh__windex_needed(const pveh_windex_member *m, const pveh_history *h)
{
    if (m->walk) {
        return m->seq;
    }
    return m->pend_n > 0 ? m->pend[m->pend_head] : h->next_seq;
}
