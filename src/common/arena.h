/*
 * An arena: memory for objects that are made together and die together, such as a request
 * decoded by protobuf-c, then read and dropped. Allocating is moving a pointer in a buffer the
 * caller gives (usually an array on its stack); freeing one object does nothing; everything is
 * released at once by pt__arena_release. A request path that decodes into an arena makes no
 * malloc call for a request that fits the buffer, and a few for one that does not: what does
 * not fit goes into blocks taken from malloc, each at least twice the size of the one before
 * (PT_ARENA_MIN_BLOCK at first), so a batch of a thousand entries costs a handful of blocks, not
 * a thousand allocations.
 *
 * One thread at a time; nothing is shared. Every pointer handed out is aligned for any type.
 *
 * protobuf-c takes an arena through its allocator interface: arena_protobuf.h.
 */
#ifndef PLATOON_COMMON_ARENA_H
#define PLATOON_COMMON_ARENA_H

#include <stddef.h>

/* The first block taken from malloc once the caller's buffer is full, in bytes. */
#define PT_ARENA_MIN_BLOCK 4096

struct pt_arena_block;

typedef struct pt_arena {
    unsigned char *next;           /* the next free byte of the current buffer or block */
    unsigned char *end;            /* one past its last byte */
    unsigned char *buf, *buf_end;  /* the caller's buffer, aligned */
    struct pt_arena_block *blocks; /* the blocks taken from malloc, newest first */
    size_t last_block;             /* the size of the newest block, 0 before the first */
} pt_arena;

/* Makes @a allocate from @buf (@cap bytes; @buf may be NULL when @cap is 0), then from malloc. */
void pt__arena_init(pt_arena *a, void *buf, size_t cap);

/* @n bytes from @a (a pt_arena *: the signature is protobuf-c's allocator's), aligned for any
 * type, uninitialised; NULL only when malloc fails. @n may be 0. */
void *pt__arena_alloc(void *a, size_t n);

/* Nothing: an object of an arena lives until the arena is released. The signature is
 * protobuf-c's allocator's. */
void pt__arena_free(void *a, void *p);

/* Frees the blocks taken from malloc and makes @a empty, allocating again from the start of
 * the caller's buffer. Every pointer @a handed out is invalid from then on. */
void pt__arena_release(pt_arena *a);

/* How many blocks @a has taken from malloc since it was made or released (what a buffer too
 * small costs: tests and measurements). */
size_t pt__arena_blocks(const pt_arena *a);

#endif
