/* The arena of arena.h. */
#include "common/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>

/* A block taken from malloc: its link, then its bytes, aligned as the header is. */
struct pt_arena_block {
    struct pt_arena_block *next;
    max_align_t bytes[];
};

#define ALIGN ((uintptr_t)alignof(max_align_t))

static unsigned char *align_up(unsigned char *p)
{
    return (unsigned char *)(((uintptr_t)p + ALIGN - 1) & ~(ALIGN - 1));
}

void pt__arena_init(pt_arena *a, void *buf, size_t cap)
{
    unsigned char *start = buf;
    unsigned char *end = start != NULL ? start + cap : NULL;
    start = start != NULL ? align_up(start) : NULL;
    if (start == NULL || start > end) {
        start = end = NULL; /* too small to hold anything aligned */
    }
    a->buf = a->next = start;
    a->buf_end = a->end = end;
    a->blocks = NULL;
    a->last_block = 0;
}

void *pt__arena_alloc(void *arena, size_t n)
{
    pt_arena *a = arena;
    /* Round up so that the next object starts aligned; 0 bytes still get a distinct place. */
    size_t need = n == 0 ? ALIGN : n;
    if (need > SIZE_MAX - ALIGN) {
        return NULL;
    }
    need = (need + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (a->next != NULL && (size_t)(a->end - a->next) >= need) {
        void *p = a->next;
        a->next += need;
        return p;
    }
    /* A new block, twice the last one (so that a growing decode takes few of them), never
     * smaller than what is asked. */
    size_t size = a->last_block == 0 ? PT_ARENA_MIN_BLOCK : a->last_block * 2;
    if (size > (size_t)1 << 20) {
        size = (size_t)1 << 20; /* past 1 MiB, doubling only wastes memory */
    }
    if (size < need) {
        size = need;
    }
    if (size > SIZE_MAX - sizeof(struct pt_arena_block)) {
        return NULL;
    }
    struct pt_arena_block *b = malloc(sizeof(*b) + size);
    if (b == NULL) {
        return NULL;
    }
    b->next = a->blocks;
    a->blocks = b;
    a->last_block = size;
    unsigned char *start = (unsigned char *)b->bytes;
    a->next = start + need;
    a->end = start + size;
    return start;
}

void pt__arena_free(void *a, void *p)
{
    (void)a;
    (void)p;
}

void pt__arena_release(pt_arena *a)
{
    while (a->blocks != NULL) {
        struct pt_arena_block *next = a->blocks->next;
        free(a->blocks);
        a->blocks = next;
    }
    a->last_block = 0;
    a->next = a->buf;
    a->end = a->buf_end;
}

size_t pt__arena_blocks(const pt_arena *a)
{
    size_t n = 0;
    for (const struct pt_arena_block *b = a->blocks; b != NULL; b = b->next) {
        n++;
    }
    return n;
}
