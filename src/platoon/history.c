/*
 * The watch history: a bounded ring of the most recent changes (history.h).
 */
#include <stdlib.h>
#include <string.h>

#include "platoon/history.h"

/* The ring's first allocation: small, because most nodes are watched little or not at all,
 * and a ring that grows by doubling costs each change one amortised copy. */
#define HISTORY_FIRST_CAP 1024

void pveh__history_init(pveh_history *h, size_t max, uint64_t base)
{
    memset(h, 0, sizeof(*h));
    h->max = max;
    h->base = base;
}

void pveh__history_free(pveh_history *h)
{
    free(h->ring);
    h->ring = NULL;
    h->cap = h->n = h->start = 0;
}

void pveh__history_reset(pveh_history *h, uint64_t base)
{
    h->start = 0;
    h->n = 0;
    h->base = base;
    h->epoch++;
}

static void evict_oldest(pveh_history *h)
{
    h->base = h->ring[h->start].revision;
    h->start = (h->start + 1) % h->cap;
    h->n--;
}

void pveh__history_set_max(pveh_history *h, size_t max)
{
    h->max = max;
    while (h->n > max) {
        evict_oldest(h);
    }
}

/* Makes room for one more change below the bound: false when there is none to make. */
static bool grow(pveh_history *h)
{
    size_t cap = h->cap == 0 ? HISTORY_FIRST_CAP : h->cap * 2;
    if (cap > h->max) {
        cap = h->max;
    }
    if (cap <= h->cap) {
        return false;
    }
    pveh_change *ring = malloc(cap * sizeof(*ring));
    if (ring == NULL) {
        return false;
    }
    for (size_t i = 0; i < h->n; i++) {
        ring[i] = h->ring[(h->start + i) % h->cap];
    }
    free(h->ring);
    h->ring = ring;
    h->cap = cap;
    h->start = 0;
    return true;
}

void pveh__history_record(pveh_history *h, const pveh_change *c)
{
    h->next_seq++;
    if (h->max == 0) {
        h->base = c->revision;
        return;
    }
    if (h->n >= h->max || (h->n == h->cap && !grow(h))) {
        if (h->n == 0) {
            h->base = c->revision; /* no memory for even one change */
            return;
        }
        evict_oldest(h);
    }
    h->ring[(h->start + h->n) % h->cap] = *c;
    h->n++;
}

uint64_t pveh__history_first_seq(const pveh_history *h)
{
    return h->next_seq - h->n;
}

const pveh_change *pveh__history_at(const pveh_history *h, uint64_t seq)
{
    uint64_t first = pveh__history_first_seq(h);
    if (seq < first || seq >= h->next_seq) {
        return NULL;
    }
    return &h->ring[(h->start + (size_t)(seq - first)) % h->cap];
}

bool pveh__history_seek(const pveh_history *h, uint64_t from, uint64_t *seq)
{
    if (from < h->base) {
        return false;
    }
    /* The first change above @from: revisions increase along the ring, so bisect. */
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->ring[(h->start + mid) % h->cap].revision <= from) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *seq = pveh__history_first_seq(h) + lo;
    return true;
}

static int cmp_id(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

size_t pveh__ids_normalize(uint64_t *ids, size_t n)
{
    if (n == 0) {
        return 0;
    }
    qsort(ids, n, sizeof(*ids), cmp_id);
    size_t k = 1;
    for (size_t i = 1; i < n; i++) {
        if (ids[i] != ids[k - 1]) {
            ids[k++] = ids[i];
        }
    }
    return k;
}

bool pveh__ids_match(const uint64_t *ids, size_t n, uint64_t id)
{
    if (n == 0) {
        return true;
    }
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ids[mid] < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < n && ids[lo] == id;
}
