/* The ordered vehicle table: see vehicle_map.h for why it is chunked and copy-on-write. */
#include "platoon/vehicle_map.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "platoon/error.h"

/* A chunk that holds fewer than this after a removal merges into a private neighbour when
 * both fit in half a chunk (so the merged chunk still has room to grow before it splits). */
#define MERGE_BELOW (PVEH_CHUNK_MAX / 4)

static pveh_chunk *chunk_new(void)
{
    pveh_chunk *c = malloc(sizeof(*c));
    if (c != NULL) {
        atomic_init(&c->refs, 1);
        c->n = 0;
    }
    return c;
}

static void chunk_unref(pveh_chunk *c)
{
    /* The release half publishes this holder's reads before a free on another thread; the
     * acquire half orders the free after every other holder's reads. */
    if (c != NULL && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1) {
        free(c);
    }
}

static bool chunk_private(pveh_chunk *c)
{
    /* Only this map holds it, and no other can take a reference meanwhile (views are made
     * from a live map, on the thread that changes it): writing in place is safe. */
    return atomic_load_explicit(&c->refs, memory_order_acquire) == 1;
}

void pveh__map_init(pveh_map *m)
{
    memset(m, 0, sizeof(*m));
}

void pveh__map_free(pveh_map *m)
{
    for (size_t k = 0; k < m->nc; k++) {
        chunk_unref(m->c[k]);
    }
    free(m->c);
    chunk_unref(m->spare[0]);
    chunk_unref(m->spare[1]);
    pveh__map_init(m);
}

/* The first chunk whose last id is >= @id (nc when none). */
static size_t chunk_lower_bound(const pveh_map *m, uint64_t id)
{
    size_t lo = 0;
    size_t hi = m->nc;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const pveh_chunk *c = m->c[mid];
        if (c->v[c->n - 1].id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* The position in @c of the first vehicle whose id is >= @id (c->n when none). */
static size_t in_chunk_lower_bound(const pveh_chunk *c, uint64_t id)
{
    size_t lo = 0;
    size_t hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->v[mid].id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

size_t pveh__map_lower_bound(const pveh_map *m, uint64_t id)
{
    size_t k = chunk_lower_bound(m, id);
    size_t pos = 0;
    for (size_t j = 0; j < k; j++) {
        pos += m->c[j]->n;
    }
    return k < m->nc ? pos + in_chunk_lower_bound(m->c[k], id) : pos;
}

pveh_vehicle *pveh__map_find(const pveh_map *m, uint64_t id)
{
    size_t k = chunk_lower_bound(m, id);
    if (k == m->nc) {
        return NULL;
    }
    pveh_chunk *c = m->c[k];
    size_t i = in_chunk_lower_bound(c, id);
    return i < c->n && c->v[i].id == id ? &c->v[i] : NULL;
}

const pveh_vehicle *pveh__map_last(const pveh_map *m)
{
    if (m->nc == 0) {
        return NULL;
    }
    const pveh_chunk *c = m->c[m->nc - 1];
    return &c->v[c->n - 1];
}

int pveh__map_reserve_one(pveh_map *m)
{
    if (m->nc == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 4;
        if (cap > SIZE_MAX / sizeof(*m->c)) {
            return PT_ENOMEM;
        }
        pveh_chunk **c = realloc(m->c, cap * sizeof(*c));
        if (c == NULL) {
            return PT_ENOMEM;
        }
        m->c = c;
        m->cap = cap;
    }
    for (int j = 0; j < 2; j++) {
        if (m->spare[j] == NULL && (m->spare[j] = chunk_new()) == NULL) {
            return PT_ENOMEM;
        }
    }
    return 0;
}

/* A new private chunk: a reserved spare, or a fresh allocation. */
static pveh_chunk *take_chunk(pveh_map *m)
{
    for (int j = 1; j >= 0; j--) {
        if (m->spare[j] != NULL) {
            pveh_chunk *c = m->spare[j];
            m->spare[j] = NULL;
            c->n = 0;
            return c;
        }
    }
    return chunk_new();
}

/* Chunk @k made private to this map (copied if shared). NULL when the copy cannot be
 * allocated (nothing changed). */
static pveh_chunk *writable(pveh_map *m, size_t k)
{
    pveh_chunk *c = m->c[k];
    if (chunk_private(c)) {
        return c;
    }
    pveh_chunk *copy = take_chunk(m);
    if (copy == NULL) {
        return NULL;
    }
    copy->n = c->n;
    memcpy(copy->v, c->v, c->n * sizeof(*c->v));
    m->c[k] = copy;
    chunk_unref(c);
    return copy;
}

static void dir_insert(pveh_map *m, size_t k, pveh_chunk *c)
{
    assert(m->nc < m->cap);
    memmove(&m->c[k + 1], &m->c[k], (m->nc - k) * sizeof(*m->c));
    m->c[k] = c;
    m->nc++;
}

static void dir_remove(pveh_map *m, size_t k)
{
    memmove(&m->c[k], &m->c[k + 1], (m->nc - k - 1) * sizeof(*m->c));
    m->nc--;
}

int pveh__map_put(pveh_map *m, const pveh_vehicle *v)
{
    size_t k = chunk_lower_bound(m, v->id);
    if (k < m->nc) {
        size_t i = in_chunk_lower_bound(m->c[k], v->id);
        if (m->c[k]->v[i].id == v->id) {
            pveh_chunk *c = writable(m, k);
            if (c == NULL) {
                return PT_ENOMEM;
            }
            c->v[i] = *v;
            return 0;
        }
    }
    /* A new vehicle: everything it may need (a copy, a split, a directory slot) first. */
    int rv = pveh__map_reserve_one(m);
    if (rv != 0) {
        return rv;
    }
    if (m->nc == 0) {
        dir_insert(m, 0, take_chunk(m));
    }
    if (k == m->nc) {
        k = m->nc - 1; /* above every id: the end of the last chunk */
    }
    pveh_chunk *c = writable(m, k);
    size_t i = in_chunk_lower_bound(c, v->id);
    if (c->n == PVEH_CHUNK_MAX) {
        /* Split in halves: both keep room, so neither splits again at once. */
        pveh_chunk *upper = take_chunk(m);
        size_t half = PVEH_CHUNK_MAX / 2;
        upper->n = PVEH_CHUNK_MAX - half;
        memcpy(upper->v, &c->v[half], upper->n * sizeof(*c->v));
        c->n = half;
        dir_insert(m, k + 1, upper);
        if (i > half) {
            c = upper;
            i -= half;
        }
    }
    memmove(&c->v[i + 1], &c->v[i], (c->n - i) * sizeof(*c->v));
    c->v[i] = *v;
    c->n++;
    m->n++;
    return 0;
}

/* Folds chunk @k + 1 into chunk @k when both are private and small together. */
static void maybe_merge(pveh_map *m, size_t k)
{
    if (k + 1 >= m->nc) {
        return;
    }
    pveh_chunk *a = m->c[k];
    pveh_chunk *b = m->c[k + 1];
    if ((a->n >= MERGE_BELOW && b->n >= MERGE_BELOW) || a->n + b->n > PVEH_CHUNK_MAX / 2 ||
        !chunk_private(a) || !chunk_private(b)) {
        return;
    }
    memcpy(&a->v[a->n], b->v, b->n * sizeof(*b->v));
    a->n += b->n;
    dir_remove(m, k + 1);
    chunk_unref(b);
}

bool pveh__map_remove(pveh_map *m, uint64_t id)
{
    size_t k = chunk_lower_bound(m, id);
    if (k == m->nc) {
        return false;
    }
    size_t i = in_chunk_lower_bound(m->c[k], id);
    if (m->c[k]->v[i].id != id) {
        return false;
    }
    if (m->c[k]->n == 1) {
        /* Its last vehicle: the chunk leaves this map without being copied. */
        chunk_unref(m->c[k]);
        dir_remove(m, k);
        m->n--;
        return true;
    }
    pveh_chunk *c = writable(m, k);
    assert(c != NULL); /* pveh__map_reserve_one took a spare for this */
    if (c == NULL) {
        return false;
    }
    memmove(&c->v[i], &c->v[i + 1], (c->n - i - 1) * sizeof(*c->v));
    c->n--;
    m->n--;
    maybe_merge(m, k);
    if (k > 0) {
        maybe_merge(m, k - 1);
    }
    return true;
}

int pveh__map_append(pveh_map *m, const pveh_vehicle *v)
{
    if (m->nc == 0 || m->c[m->nc - 1]->n == PVEH_CHUNK_MAX || !chunk_private(m->c[m->nc - 1])) {
        int rv = pveh__map_reserve_one(m);
        if (rv != 0) {
            return rv;
        }
        dir_insert(m, m->nc, take_chunk(m));
    }
    pveh_chunk *c = m->c[m->nc - 1];
    c->v[c->n++] = *v;
    m->n++;
    return 0;
}

int pveh__map_freeze(const pveh_map *m, pveh_map *view)
{
    pveh__map_init(view);
    if (m->nc == 0) {
        return 0;
    }
    view->c = malloc(m->nc * sizeof(*view->c));
    if (view->c == NULL) {
        return PT_ENOMEM;
    }
    for (size_t k = 0; k < m->nc; k++) {
        /* Relaxed: the new holder is on this thread; the chunk's contents were published
         * to it by program order. */
        atomic_fetch_add_explicit(&m->c[k]->refs, 1, memory_order_relaxed);
        view->c[k] = m->c[k];
    }
    view->nc = view->cap = m->nc;
    view->n = m->n;
    return 0;
}

void pveh__map_seek_after(const pveh_map *m, uint64_t after, pveh_map_iter *it)
{
    it->m = m;
    if (after == UINT64_MAX) {
        it->k = m->nc;
        it->i = 0;
        return;
    }
    it->k = chunk_lower_bound(m, after + 1);
    it->i = it->k < m->nc ? in_chunk_lower_bound(m->c[it->k], after + 1) : 0;
}

const pveh_vehicle *pveh__map_next(pveh_map_iter *it)
{
    const pveh_map *m = it->m;
    while (it->k < m->nc && it->i >= m->c[it->k]->n) {
        it->k++;
        it->i = 0;
    }
    if (it->k >= m->nc) {
        return NULL;
    }
    return &m->c[it->k]->v[it->i++];
}
