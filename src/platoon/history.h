/*
 * The watch history: the most recent changes to the vehicles, in the order they were applied,
 * so that WatchPlatoon can stream them and a watch can resume after a revision.
 *
 * The state machine records every change as it applies it (one 64-byte copy into a ring; the
 * ring grows by doubling up to its bound, so an idle node does not hold the whole bound). A
 * change is a PUT (a vehicle created or replaced) or a DELETE (a vehicle that existed was
 * deleted); commands that change no vehicle (sessions, refusals, deleting an id that does not
 * exist) record nothing.
 *
 * What a watch may resume from: the history knows every change above its @base revision.
 * @base starts at the applied index when the history is (re)started — a new state machine, a
 * restore from a snapshot at start-up, a snapshot installed from the leader — and moves up to
 * the revision of each change the bound evicts. A resumption after revision F is exact iff
 * F >= base. Each restart bumps @epoch: positions taken before it are worthless.
 *
 * Positions are sequence numbers of changes (the first change ever recorded is 0), so a
 * reader's position stays meaningful while the ring turns: it is valid while it is at least
 * pveh__history_first_seq and the epoch has not changed.
 *
 * Loop thread only, like the state machine.
 */
#ifndef PLATOON_VEHICLE_HISTORY_H
#define PLATOON_VEHICLE_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platoon/vehicle.h"

enum pveh_change_op {
    PVEH_CHANGE_PUT = 1,
    PVEH_CHANGE_DELETE = 2,
};

typedef struct pveh_change {
    uint64_t revision;    /* the log index that made the change */
    uint32_t op;          /* enum pveh_change_op */
    pveh_vehicle vehicle; /* PUT: the new state (revision = @revision); DELETE: id only */
} pveh_change;

typedef struct pveh_history {
    pveh_change *ring; /* ring[(start + i) % cap] is the i-th oldest change held */
    size_t cap;        /* allocated */
    size_t max;        /* the bound: at most this many changes are held */
    size_t start;
    size_t n;
    uint64_t next_seq; /* the sequence number of the next change recorded */
    uint64_t base;     /* every change with a revision above it is held */
    uint64_t epoch;    /* bumped by every reset */
} pveh_history;

/* An empty history that will hold at most @max changes, knowing everything above @base. */
void pveh__history_init(pveh_history *h, size_t max, uint64_t base);
void pveh__history_free(pveh_history *h);

/* Forgets every change and starts again above @base (a snapshot replaced the state): the
 * epoch changes. */
void pveh__history_reset(pveh_history *h, uint64_t base);

/* Changes the bound; the oldest changes beyond it are evicted at once. */
void pveh__history_set_max(pveh_history *h, size_t max);

/*
 * Records @c, whose revision is above every revision recorded. Never fails: when the ring is
 * full (or cannot grow for want of memory), the oldest change is evicted and @base becomes
 * its revision. With a bound of 0 nothing is held and @base follows every change.
 */
void pveh__history_record(pveh_history *h, const pveh_change *c);

/* The sequence number of the oldest change held (== next_seq when none is). */
uint64_t pveh__history_first_seq(const pveh_history *h);

/* The change of sequence number @seq, or NULL when it is not held (evicted, or not yet). */
const pveh_change *pveh__history_at(const pveh_history *h, uint64_t seq);

/*
 * Where a watch resuming after revision @from starts: *@seq receives the sequence number of
 * the first change with a revision above @from (next_seq when there is none yet). Returns true,
 * or false when changes above @from may have been evicted (@from < base): the watch cannot
 * resume, and *@seq is untouched.
 */
bool pveh__history_seek(const pveh_history *h, uint64_t from, uint64_t *seq);

/* ----- vehicle id filters (WatchPlatoonRequest.ids) */

/* Sorts @ids in place and removes repeats; returns how many remain. */
size_t pveh__ids_normalize(uint64_t *ids, size_t n);

/* Whether @id is in the normalised set @ids (an empty set matches every id). */
bool pveh__ids_match(const uint64_t *ids, size_t n, uint64_t id);

#endif
