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

/* Applies a version 1 UPDATE / DELETE (as written by releases before sessions were opened
 * explicitly: a session is created by its first request, unbound) at @index (term 1) and
 * decodes its result; asserts success. */
pveh_result tsm_update(tsm *t, uint64_t index, const pveh_vehicle *v, uint64_t client, uint64_t seq,
                       uint64_t ts);
pveh_result tsm_delete(tsm *t, uint64_t index, uint64_t id, uint64_t client, uint64_t seq,
                       uint64_t ts);

/* Applies @c (current format) at @index and decodes its result. */
pveh_result tsm_apply(tsm *t, uint64_t index, const pveh_command *c);

/* The current format's commands, from principal @who (a name, keyed with pveh_principal_key):
 * OPEN_SESSION with quota @quota (returns the result: client_id on success), UPDATE with the
 * vehicle bound @max_vehicles (0: none), DELETE, CLOSE_SESSION. */
pveh_result tsm_open(tsm *t, uint64_t index, const char *who, uint64_t quota, uint64_t ts);
pveh_result tsm_put(tsm *t, uint64_t index, const char *who, const pveh_vehicle *v, uint64_t client,
                    uint64_t seq, uint64_t ts, uint64_t max_vehicles);
pveh_result tsm_del(tsm *t, uint64_t index, const char *who, uint64_t id, uint64_t client,
                    uint64_t seq, uint64_t ts);
pveh_result tsm_close(tsm *t, uint64_t index, const char *who, uint64_t client, uint64_t ts);

/* Re-encodes a current-format UPDATE or DELETE in version 1 (malloc'd). */
void to_v1(uint8_t **cmd, size_t *len);

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
