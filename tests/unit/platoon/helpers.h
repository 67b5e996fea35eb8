/* Shared helpers of the vehicle state machine tests: driving a state machine through the
 * generic interface, and snapshots to and from memory. */
#ifndef PLATOON_TEST_VEHICLE_HELPERS_H
#define PLATOON_TEST_VEHICLE_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include "platoon/state_machine.h"
#include "platoon/vehicle.h"

/* A state machine and its interface. */
typedef struct tsm {
    pveh_sm *sm;
    pnode_sm iface;
} tsm;

void tsm_new(tsm *t, const pveh_options *opts);
void tsm_free(tsm *t);

pveh_vehicle veh(uint64_t id, double lat, double lon, double speed, double heading);

/* Applies an UPDATE / DELETE at @index (term 1) and decodes its result; asserts success. */
pveh_result tsm_update(tsm *t, uint64_t index, const pveh_vehicle *v, uint64_t client, uint64_t seq,
                       uint64_t ts);
pveh_result tsm_delete(tsm *t, uint64_t index, uint64_t id, uint64_t client, uint64_t seq,
                       uint64_t ts);

/* A growing byte buffer: the writer side of a snapshot. */
typedef struct membuf {
    uint8_t *data;
    size_t len, cap;
    size_t fail_after; /* when non-zero, writes fail with PT_EIO once len would pass it */
} membuf;
int membuf_write(void *ctx, const void *data, size_t len);

/* The reader side: hands out @data in chunks of at most @chunk bytes (0 = as asked). */
typedef struct memreader {
    const uint8_t *data;
    size_t len, pos, chunk;
} memreader;
int memreader_read(void *ctx, void *buf, size_t cap, size_t *n);

/* Takes a whole snapshot of @t into a malloc'd buffer (asserts success). */
membuf tsm_snapshot(tsm *t);

/* Restores @t from @data; returns restore's code. */
int tsm_restore(tsm *t, const uint8_t *data, size_t len, size_t chunk);

#endif
