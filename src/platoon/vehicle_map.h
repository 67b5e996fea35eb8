/*
 * The vehicles, ordered by id: a sorted array cut into chunks, shared copy-on-write.
 *
 * The dominant operation is replacing the state of a vehicle that already exists (position
 * reports): two bisections (the directory of chunks, then the chunk) and a 48-byte copy in
 * place, with no allocation. A listing is a sequential scan of contiguous chunks.
 *
 * Why chunks: a platoon may hold millions of vehicles, and two readers need the state frozen
 * at one applied index while the loop keeps applying writes: a snapshot being serialised off
 * the loop, and a GetPlatoon listing read page by page. Copying the whole array for each
 * (70 MB at 1.5 M vehicles) would stall the loop and multiply memory. Instead every chunk
 * (at most PVEH_CHUNK_MAX vehicles) carries a reference count: freezing a view copies only the
 * directory of chunk pointers, O(n / PVEH_CHUNK_MAX), and the first write to a shared chunk
 * copies that chunk alone (48 KiB). A chunk is written in place only while one map holds it.
 * The counts are atomic because a frozen snapshot is released on the snapshot thread.
 *
 * A vehicle joining or leaving moves at most one chunk's tail (memmove within 48 KiB); a full
 * chunk splits in two halves; a chunk that empties leaves the directory, and a small private
 * chunk merges into a private neighbour, so that deletions do not leave memory behind.
 *
 * Allocation failure: pveh__map_reserve_one takes beforehand everything the next put or
 * remove may need (two spare chunks and a directory slot), so that applying a command can be
 * made all-or-nothing: reserve, then change.
 */
#ifndef PLATOON_VEHICLE_MAP_H
#define PLATOON_VEHICLE_MAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platoon/vehicle.h"

/* Vehicles per chunk: 48 KiB, the cost of the first write to a chunk after a freeze. */
#define PVEH_CHUNK_MAX 1024

typedef struct pveh_chunk {
    atomic_uint refs; /* maps (live or frozen) holding it; written in place only at 1 */
    uint32_t n;       /* v[0..n) strictly ascending by id, n >= 1 inside a map */
    pveh_vehicle v[PVEH_CHUNK_MAX];
} pveh_chunk;

typedef struct pveh_map {
    pveh_chunk **c; /* c[0..nc): every id of c[k] below every id of c[k + 1] */
    size_t nc;
    size_t cap; /* of c */
    size_t n;   /* vehicles in all */
    /* Chunks taken by pveh__map_reserve_one, used by the next change (never shared). */
    pveh_chunk *spare[2];
} pveh_map;

/* A position in a map: chunk @k, vehicle @i within it. */
typedef struct pveh_map_iter {
    const pveh_map *m;
    size_t k;
    size_t i;
} pveh_map_iter;

void pveh__map_init(pveh_map *m);
/* Releases the map's references (a chunk is freed by the last map holding it; any thread). */
void pveh__map_free(pveh_map *m);

/* The position of the first vehicle whose id is >= @id (n when none). O(chunks). */
size_t pveh__map_lower_bound(const pveh_map *m, uint64_t id);

/* The vehicle @id, or NULL. The pointer is valid until the next change of the map and must
 * not be written through (the chunk may be shared). */
pveh_vehicle *pveh__map_find(const pveh_map *m, uint64_t id);

/* The vehicle with the largest id, or NULL when the map is empty. */
const pveh_vehicle *pveh__map_last(const pveh_map *m);

/* Makes sure that the next pveh__map_put or pveh__map_remove cannot fail for want of memory.
 * Returns 0 or PT_ENOMEM (nothing changed). */
int pveh__map_reserve_one(pveh_map *m);

/* Inserts or replaces @v. Returns 0 or PT_ENOMEM (nothing changed). */
int pveh__map_put(pveh_map *m, const pveh_vehicle *v);

/* Removes the vehicle @id; returns whether it was there. Removing from a shared chunk copies
 * it: call pveh__map_reserve_one first (without a reservation, it allocates, and asserts that
 * it could). */
bool pveh__map_remove(pveh_map *m, uint64_t id);

/* Appends @v, whose id must be greater than every id in the map (building from a snapshot).
 * Returns 0 or PT_ENOMEM. */
int pveh__map_append(pveh_map *m, const pveh_vehicle *v);

/*
 * Freezes @m into @view: a map with the same vehicles that later changes of @m do not affect
 * (and that shares every chunk with @m until one of them writes it). Costs one directory of
 * pointers. @view is read like any map and released with pveh__map_free, on any thread; it
 * must not be changed. Returns 0 or PT_ENOMEM (@view is then empty).
 */
int pveh__map_freeze(const pveh_map *m, pveh_map *view);

/* Positions @it at the first vehicle whose id is > @after (0: the first vehicle). */
void pveh__map_seek_after(const pveh_map *m, uint64_t after, pveh_map_iter *it);

/* The vehicle at @it, advancing it; NULL at the end. */
const pveh_vehicle *pveh__map_next(pveh_map_iter *it);

#endif
