/* The exactly-once session table: see session.h. */
#include "platoon/session.h"

#include <stdlib.h>
#include <string.h>

#include "platoon/error.h"

void pveh__sessions_init(pveh_sessions *s, uint32_t max, uint64_t ttl_ms)
{
    memset(s, 0, sizeof(*s));
    s->free_head = PVEH_NIL;
    s->head = PVEH_NIL;
    s->tail = PVEH_NIL;
    s->max = max;
    s->ttl_ms = ttl_ms;
}

void pveh__sessions_free(pveh_sessions *s)
{
    free(s->slots);
    free(s->index);
    pveh__sessions_init(s, s->max, s->ttl_ms);
}

/* Fibonacci hashing: the top bits of the product are well mixed even for sequential ids. */
static uint32_t home(const pveh_sessions *s, uint64_t client_id)
{
    uint64_t h = client_id * UINT64_C(0x9E3779B97F4A7C15);
    h ^= h >> 29;
    return (uint32_t)(h & (s->index_cap - 1));
}

pveh_session *pveh__sessions_find(const pveh_sessions *s, uint64_t client_id)
{
    if (s->index_cap == 0) {
        return NULL;
    }
    for (uint32_t i = home(s, client_id);; i = (i + 1) & (s->index_cap - 1)) {
        uint32_t slot = s->index[i];
        if (slot == PVEH_NIL) {
            return NULL;
        }
        if (s->slots[slot].client_id == client_id) {
            return &s->slots[slot];
        }
    }
}

static void index_insert(pveh_sessions *s, uint32_t slot)
{
    uint32_t i = home(s, s->slots[slot].client_id);
    while (s->index[i] != PVEH_NIL) {
        i = (i + 1) & (s->index_cap - 1);
    }
    s->index[i] = slot;
}

/* Removes @slot from the index by backward-shift deletion, which keeps every probe chain
 * unbroken without tombstones. */
static void index_remove(pveh_sessions *s, uint32_t slot)
{
    uint32_t mask = s->index_cap - 1;
    uint32_t i = home(s, s->slots[slot].client_id);
    while (s->index[i] != slot) {
        i = (i + 1) & mask;
    }
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (s->index[j] == PVEH_NIL) {
            break;
        }
        uint32_t k = home(s, s->slots[s->index[j]].client_id);
        /* The entry at j may move to the hole at i only if its home k is not in (i, j]. */
        bool k_in_range = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!k_in_range) {
            s->index[i] = s->index[j];
            i = j;
        }
    }
    s->index[i] = PVEH_NIL;
}

int pveh__sessions_reserve_one(pveh_sessions *s)
{
    /* A full table evicts before it adds: no new slot is needed. */
    if (s->free_head != PVEH_NIL || s->count >= s->max) {
        return 0;
    }
    uint32_t n_slots = s->n_slots ? s->n_slots * 2 : 64;
    if (n_slots > s->max) {
        n_slots = s->max;
    }
    /* Keep the index at most half full so probe chains stay short. */
    uint32_t index_cap = s->index_cap ? s->index_cap : 128;
    while (index_cap < 2 * (uint64_t)n_slots) {
        index_cap *= 2;
    }
    pveh_session *slots = realloc(s->slots, (size_t)n_slots * sizeof(*slots));
    if (slots == NULL) {
        return PT_ENOMEM;
    }
    s->slots = slots;
    if (index_cap != s->index_cap) {
        uint32_t *index = malloc((size_t)index_cap * sizeof(*index));
        if (index == NULL) {
            return PT_ENOMEM; /* the larger slab is harmless: n_slots is unchanged */
        }
        free(s->index);
        s->index = index;
        s->index_cap = index_cap;
        for (uint32_t i = 0; i < index_cap; i++) {
            index[i] = PVEH_NIL;
        }
        /* Rehash in list order: the result does not depend on the previous layout. */
        for (uint32_t slot = s->head; slot != PVEH_NIL; slot = s->slots[slot].next) {
            index_insert(s, slot);
        }
    }
    /* Thread the new slots onto the free list, lowest first. */
    for (uint32_t slot = n_slots; slot-- > s->n_slots;) {
        s->slots[slot].next = s->free_head;
        s->free_head = slot;
    }
    s->n_slots = n_slots;
    return 0;
}

static void list_unlink(pveh_sessions *s, uint32_t slot)
{
    pveh_session *x = &s->slots[slot];
    if (x->prev != PVEH_NIL) {
        s->slots[x->prev].next = x->next;
    } else {
        s->head = x->next;
    }
    if (x->next != PVEH_NIL) {
        s->slots[x->next].prev = x->prev;
    } else {
        s->tail = x->prev;
    }
}

static void list_append(pveh_sessions *s, uint32_t slot)
{
    pveh_session *x = &s->slots[slot];
    x->prev = s->tail;
    x->next = PVEH_NIL;
    if (s->tail != PVEH_NIL) {
        s->slots[s->tail].next = slot;
    } else {
        s->head = slot;
    }
    s->tail = slot;
}

static void drop(pveh_sessions *s, uint32_t slot)
{
    index_remove(s, slot);
    list_unlink(s, slot);
    s->slots[slot].next = s->free_head;
    s->free_head = slot;
    s->count--;
}

pveh_session *pveh__sessions_add(pveh_sessions *s, uint64_t client_id)
{
    if (s->count >= s->max) {
        drop(s, s->head); /* the least recently used goes first */
    }
    uint32_t slot = s->free_head;
    pveh_session *x = &s->slots[slot];
    s->free_head = x->next;
    memset(x, 0, sizeof(*x));
    x->client_id = client_id;
    index_insert(s, slot);
    list_append(s, slot);
    s->count++;
    return x;
}

void pveh__sessions_touch(pveh_sessions *s, pveh_session *sess, uint64_t now_ms)
{
    uint32_t slot = (uint32_t)(sess - s->slots);
    sess->last_used_ms = now_ms;
    if (s->tail != slot) {
        list_unlink(s, slot);
        list_append(s, slot);
    }
}

void pveh__sessions_expire(pveh_sessions *s, uint64_t now_ms)
{
    while (s->head != PVEH_NIL) {
        const pveh_session *oldest = &s->slots[s->head];
        /* Kept while now - last_used <= ttl: at least ttl after the last use. */
        if (now_ms - oldest->last_used_ms <= s->ttl_ms) {
            break;
        }
        drop(s, s->head);
    }
}
