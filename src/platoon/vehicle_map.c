/* The ordered vehicle table: see vehicle_map.h for why it is a sorted array. */
#include "platoon/vehicle_map.h"

#include <stdlib.h>
#include <string.h>

#include "platoon/error.h"

void pveh__map_init(pveh_map *m)
{
    m->v = NULL;
    m->n = 0;
    m->cap = 0;
}

void pveh__map_free(pveh_map *m)
{
    free(m->v);
    pveh__map_init(m);
}

size_t pveh__map_lower_bound(const pveh_map *m, uint64_t id)
{
    size_t lo = 0;
    size_t hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->v[mid].id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

pveh_vehicle *pveh__map_find(const pveh_map *m, uint64_t id)
{
    size_t i = pveh__map_lower_bound(m, id);
    if (i < m->n && m->v[i].id == id) {
        return &m->v[i];
    }
    return NULL;
}

int pveh__map_reserve_one(pveh_map *m)
{
    if (m->n < m->cap) {
        return 0;
    }
    size_t cap = m->cap ? m->cap * 2 : 16;
    if (cap > SIZE_MAX / sizeof(*m->v)) {
        return PT_ENOMEM;
    }
    pveh_vehicle *v = realloc(m->v, cap * sizeof(*v));
    if (v == NULL) {
        return PT_ENOMEM;
    }
    m->v = v;
    m->cap = cap;
    return 0;
}

int pveh__map_put(pveh_map *m, const pveh_vehicle *v)
{
    size_t i = pveh__map_lower_bound(m, v->id);
    if (i < m->n && m->v[i].id == v->id) {
        m->v[i] = *v;
        return 0;
    }
    int rv = pveh__map_reserve_one(m);
    if (rv != 0) {
        return rv;
    }
    memmove(&m->v[i + 1], &m->v[i], (m->n - i) * sizeof(*m->v));
    m->v[i] = *v;
    m->n++;
    return 0;
}

bool pveh__map_remove(pveh_map *m, uint64_t id)
{
    size_t i = pveh__map_lower_bound(m, id);
    if (i >= m->n || m->v[i].id != id) {
        return false;
    }
    memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof(*m->v));
    m->n--;
    return true;
}

int pveh__map_append(pveh_map *m, const pveh_vehicle *v)
{
    int rv = pveh__map_reserve_one(m);
    if (rv != 0) {
        return rv;
    }
    m->v[m->n++] = *v;
    return 0;
}
