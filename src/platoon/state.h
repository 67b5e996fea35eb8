/*
 * The vehicle state machine's state, shared by the files of the part: vehicle_sm.c applies
 * commands to it, snapshot.c freezes, writes and restores it.
 */
#ifndef PLATOON_VEHICLE_STATE_H
#define PLATOON_VEHICLE_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "platoon/listing.h"
#include "platoon/session.h"
#include "platoon/vehicle.h"
#include "platoon/vehicle_map.h"
#include "platoon/watch.h"

struct pveh_sm {
    pveh_options opts;
    pveh_map vehicles;
    pveh_sessions sessions;
    praft_config config; /* membership of the last applied configuration */
    uint64_t applied_index;
    uint64_t applied_term;
    uint64_t log_time_ms; /* the largest leader timestamp applied: never goes back */
    /* GetPlatoon listings in progress on this node (listing.h): local, never replicated. */
    pveh_listings listings;
    /* WatchPlatoon's history of recent changes and its watchers (watch.h): local too. */
    pveh_watch_hub watch;
};

/* True when @c is a configuration the state machine can hold: at most PRAFT_MAX_MEMBERS,
 * ids non-zero and strictly ascending, roles known and consistent with @joint, addresses
 * NUL-terminated. */
bool pveh__config_valid(const praft_config *c);

/* Snapshots (snapshot.c), behind the pnode_sm_ops of the same names. */
int pveh__snapshot_begin(const struct pveh_sm *sm, void **frozen);
int pveh__snapshot_write(void *frozen, pnode_sm_write_fn write, void *write_ctx);
void pveh__snapshot_end(void *frozen);
int pveh__snapshot_restore(struct pveh_sm *sm, pnode_sm_read_fn read, void *read_ctx);

#endif
