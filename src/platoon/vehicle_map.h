/*
 * The vehicles, ordered by id: a sorted array searched by bisection.
 *
 * Why a sorted array rather than a tree: the dominant operation is replacing the state of a
 * vehicle that already exists (position reports), which is a bisection and a 48-byte copy in
 * place, with no allocation and no pointer chasing. GetPlatoon lists every vehicle in id order,
 * which is one sequential scan of contiguous memory. Freezing the table for a snapshot is one
 * memcpy. What it pays for this is an O(n) memmove when a vehicle joins or leaves; a platoon
 * has tens to thousands of vehicles, where that move is a few microseconds (10,000 vehicles
 * move at most 480 KB), far below the cost of the fsync that committed the entry. The array
 * grows geometrically, so a new vehicle allocates only amortised O(1).
 */
#ifndef PLATOON_VEHICLE_MAP_H
#define PLATOON_VEHICLE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platoon/vehicle.h"

typedef struct pveh_map {
    pveh_vehicle *v; /* v[0..n) strictly ascending by id */
    size_t n;
    size_t cap;
} pveh_map;

void pveh__map_init(pveh_map *m);
void pveh__map_free(pveh_map *m);

/* The position of the first vehicle whose id is >= @id (n when none). */
size_t pveh__map_lower_bound(const pveh_map *m, uint64_t id);

/* The vehicle @id, or NULL. The pointer is valid until the next change of the map. */
pveh_vehicle *pveh__map_find(const pveh_map *m, uint64_t id);

/* Makes room for at least one more vehicle so that the next insert cannot fail.
 * Returns 0 or PT_ENOMEM (nothing changed). */
int pveh__map_reserve_one(pveh_map *m);

/* Inserts or replaces @v. Returns 0 or PT_ENOMEM (nothing changed). */
int pveh__map_put(pveh_map *m, const pveh_vehicle *v);

/* Removes the vehicle @id; returns whether it was there. */
bool pveh__map_remove(pveh_map *m, uint64_t id);

/* Appends @v, whose id must be greater than every id in the map (building from a snapshot).
 * Returns 0 or PT_ENOMEM. */
int pveh__map_append(pveh_map *m, const pveh_vehicle *v);

#endif
