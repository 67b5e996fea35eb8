/*
 * An arena (arena.h) as protobuf-c's allocator, with its first bytes on the caller's stack: the
 * way a request or a batch of peer messages is decoded, read and dropped without an allocation
 * per field.
 *
 *     pt_decode_arena da;
 *     Msg *m = msg__unpack(pt__decode_arena_init(&da), len, data);
 *     ... read m (NULL: malformed) ...
 *     pt__decode_arena_release(&da);   (always, instead of msg__free_unpacked)
 *
 * Only for code that has protobuf-c (the network and vehicle libraries); arena.h itself does
 * not need it.
 */
#ifndef PLATOON_COMMON_ARENA_PROTOBUF_H
#define PLATOON_COMMON_ARENA_PROTOBUF_H

#include <protobuf-c/protobuf-c.h>
#include <stdalign.h>
#include <stddef.h>

#include "common/arena.h"

/* A ProtobufCAllocator that allocates from arena @a. */
#define PT_ARENA_PROTOBUF_C(a) \
    ((ProtobufCAllocator){.alloc = pt__arena_alloc, .free = pt__arena_free, .allocator_data = (a)})

/* What fits on the stack: any request of the public API, and a batch of acknowledgements,
 * heartbeats or a few entries; a larger message takes a few growing blocks. */
#define PT_DECODE_ARENA_BYTES 8192

typedef struct pt_decode_arena {
    alignas(max_align_t) unsigned char bytes[PT_DECODE_ARENA_BYTES];
    pt_arena arena;
    ProtobufCAllocator alloc;
} pt_decode_arena;

/* Makes @da empty and returns the allocator to decode into it. */
static inline ProtobufCAllocator *pt__decode_arena_init(pt_decode_arena *da)
{
    pt__arena_init(&da->arena, da->bytes, sizeof(da->bytes));
    da->alloc = PT_ARENA_PROTOBUF_C(&da->arena);
    return &da->alloc;
}

/* Frees what did not fit on the stack; everything decoded into @da is gone. */
static inline void pt__decode_arena_release(pt_decode_arena *da)
{
    pt__arena_release(&da->arena);
}

#endif
