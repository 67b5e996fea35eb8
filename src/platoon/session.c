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
    free(s->principals);
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

/* The position of the first principal whose key is >= @key. */
static uint32_t principal_lower_bound(const pveh_sessions *s, uint64_t key)
{
    uint32_t lo = 0, hi = s->n_principals;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->principals[mid].key < key) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static pveh_principal_rec *principal_find(const pveh_sessions *s, uint64_t key)
{
    uint32_t i = principal_lower_bound(s, key);
    return i < s->n_principals && s->principals[i].key == key ? &s->principals[i] : NULL;
}

uint32_t pveh__sessions_count_of(const pveh_sessions *s, uint64_t principal)
{
    const pveh_principal_rec *p = principal_find(s, principal);
    return p != NULL ? p->count : 0;
}

pveh_session *pveh__sessions_oldest_of(const pveh_sessions *s, uint64_t principal)
{
    const pveh_principal_rec *p = principal_find(s, principal);
    return p != NULL ? &s->slots[p->head] : NULL;
}

static int principals_reserve_one(pveh_sessions *s)
{
    if (s->n_principals < s->principals_cap) {
        return 0;
    }
    uint32_t cap = s->principals_cap ? s->principals_cap * 2 : 8;
    pveh_principal_rec *p = realloc(s->principals, (size_t)cap * sizeof(*p));
    if (p == NULL) {
        return PT_ENOMEM;
    }
    s->principals = p;
    s->principals_cap = cap;
    return 0;
}

int pveh__sessions_reserve_one(pveh_sessions *s)
{
    if (principals_reserve_one(s) != 0) {
        return PT_ENOMEM;
    }
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

/* Appends @slot to its principal's list, adding the principal when it is new (room for it
 * was reserved). */
static void principal_link(pveh_sessions *s, uint32_t slot)
{
    pveh_session *x = &s->slots[slot];
    uint32_t i = principal_lower_bound(s, x->principal);
    if (i == s->n_principals || s->principals[i].key != x->principal) {
        memmove(&s->principals[i + 1], &s->principals[i],
                (size_t)(s->n_principals - i) * sizeof(*s->principals));
        s->principals[i] = (pveh_principal_rec){x->principal, 0, PVEH_NIL, PVEH_NIL};
        s->n_principals++;
    }
    pveh_principal_rec *p = &s->principals[i];
    x->pprev = p->tail;
    x->pnext = PVEH_NIL;
    if (p->tail != PVEH_NIL) {
        s->slots[p->tail].pnext = slot;
    } else {
        p->head = slot;
    }
    p->tail = slot;
    p->count++;
}

static void principal_unlink(pveh_sessions *s, uint32_t slot)
{
    pveh_session *x = &s->slots[slot];
    uint32_t i = principal_lower_bound(s, x->principal);
    pveh_principal_rec *p = &s->principals[i];
    if (x->pprev != PVEH_NIL) {
        s->slots[x->pprev].pnext = x->pnext;
    } else {
        p->head = x->pnext;
    }
    if (x->pnext != PVEH_NIL) {
        s->slots[x->pnext].pprev = x->pprev;
    } else {
        p->tail = x->pprev;
    }
    if (--p->count == 0) {
        memmove(&s->principals[i], &s->principals[i + 1],
                (size_t)(s->n_principals - i - 1) * sizeof(*s->principals));
        s->n_principals--;
    }
}

static void drop(pveh_sessions *s, uint32_t slot)
{
    index_remove(s, slot);
    list_unlink(s, slot);
    principal_unlink(s, slot);
    s->slots[slot].next = s->free_head;
    s->free_head = slot;
    s->count--;
}

void pveh__sessions_remove(pveh_sessions *s, pveh_session *sess)
{
    drop(s, (uint32_t)(sess - s->slots));
}

pveh_session *pveh__sessions_add(pveh_sessions *s, uint64_t client_id, uint64_t principal)
{
    if (s->count >= s->max) {
        drop(s, s->head); /* the least recently used goes first */
    }
    uint32_t slot = s->free_head;
    pveh_session *x = &s->slots[slot];
    s->free_head = x->next;
    memset(x, 0, sizeof(*x));
    x->client_id = client_id;
    x->principal = principal;
    index_insert(s, slot);
    list_append(s, slot);
    principal_link(s, slot);
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
    /* The principal's list is the global one filtered: move it to the end there too. */
    const pveh_principal_rec *p = principal_find(s, sess->principal);
    if (p->tail != slot) {
        principal_unlink(s, slot);
        principal_link(s, slot);
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
