/*
 * The watchers' index: which watchers want a change, so that the loop's work per change is the
 * watchers it reaches, not every watcher (watch.h).
 *
 * A member is one watcher's place in the index. A member with a filter (normalised ids,
 * history.h) is listed under each of its ids in a hash table from vehicle id to members; one
 * without is on the list of unfiltered members, which every change reaches.
 *
 * What a member has to examine. Its position @seq is the sequence number (history.h) of the
 * next change it has not examined. A filtered member also keeps the sequence numbers of the
 * changes after @seq that its filter matches, as the index saw them recorded (@pend): every
 * other change after @seq is known not to match, so the member skips to the next pending one
 * instead of testing each change. Two cases have no such list and walk from @seq testing the
 * filter, as an unfiltered member walks every change: changes recorded before the member was
 * added (a watch resuming from an old revision), and more pending matches than
 * PVEH_WINDEX_PEND_MAX (a watcher with many ids that fell far behind: a member that many
 * changes behind has that many events to send anyway). A walk that reaches the newest change
 * ends, and the list takes over again.
 *
 * Loop thread only, like the history.
 */
#ifndef PLATOON_VEHICLE_WATCH_INDEX_H
#define PLATOON_VEHICLE_WATCH_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platoon/history.h"

/* Pending matches one member keeps before it walks instead. */
#define PVEH_WINDEX_PEND_MAX 1024u

typedef struct pveh_windex_member {
    void *owner;
    const uint64_t *ids; /* normalised, not empty: the filter; NULL: every vehicle */
    size_t n_ids;
    size_t *slots;  /* filtered: its place in the list of each id; unfiltered: slots[0] */
    uint64_t seq;   /* the next change not examined */
    bool walk;      /* test each change from @seq (no @pend) */
    uint64_t *pend; /* ring of pending matches after @seq, ascending */
    size_t pend_head, pend_n, pend_cap;
    bool added;
} pveh_windex_member;

struct pveh_windex_bucket;

typedef struct pveh_windex {
    struct pveh_windex_bucket *table; /* open addressing; id 0 marks a free slot */
    size_t table_cap;                 /* a power of two, or 0 */
    size_t n_ids;                     /* ids with at least one member */
    pveh_windex_member **unfiltered;
    size_t n_unfiltered, cap_unfiltered;
    /* The unfiltered members were woken since the last pveh__windex_unfiltered_seen. */
    bool unfiltered_woken;
} pveh_windex;

/* Called for each member a change reaches (pveh__windex_record: it may remove that member,
 * and only it). */
typedef void (*pveh_windex_fn)(void *ctx, pveh_windex_member *m);

void pveh__windex_init(pveh_windex *x);
/* The index must be empty (every member removed). */
void pveh__windex_free(pveh_windex *x);

/*
 * Adds @m (zeroed by the caller, with @owner, @ids and @n_ids set; @ids stays the caller's and
 * must not change while @m is in the index), positioned at @seq in a history whose next change
 * will be @next_seq: it walks when @seq < @next_seq. Returns 0 or PT_ENOMEM (nothing added).
 */
int pveh__windex_add(pveh_windex *x, pveh_windex_member *m, uint64_t seq, uint64_t next_seq);
/* Removes @m (a member or not) and frees what the index allocated for it. */
void pveh__windex_remove(pveh_windex *x, pveh_windex_member *m);

/*
 * A change to vehicle @id was recorded with sequence number @seq (above every one before):
 * each filtered member with @id in its filter notes it and is passed to @wake; the unfiltered
 * members are passed to @wake too, unless they were since the last
 * pveh__windex_unfiltered_seen (a woken member need not be woken again).
 */
void pveh__windex_record(pveh_windex *x, uint64_t id, uint64_t seq, pveh_windex_fn wake, void *ctx);
/* An unfiltered member is about to examine what is new: the next change wakes them all. */
void pveh__windex_unfiltered_seen(pveh_windex *x);
/* Calls @fn for every member once, e.g. after the history restarted (pveh__history_reset);
 * @fn must not add or remove members. */
void pveh__windex_each(pveh_windex *x, pveh_windex_fn fn, void *ctx);

/* @m starts again at @seq == the history's next_seq (a full state): nothing pending. */
void pveh__windex_restart(pveh_windex_member *m, uint64_t seq);

/*
 * The next change @m must examine in @h: *@seq receives its sequence number and @m moves past
 * it; true. False when @m has examined everything recorded (@m->seq == h->next_seq then). In a
 * walk the change may not match the filter: test it; from the list it matches.
 */
bool pveh__windex_next(pveh_windex_member *m, const pveh_history *h, uint64_t *seq);

/* The oldest change @m still needs (the history must hold it), h->next_seq when none. */
uint64_t pveh__windex_needed(const pveh_windex_member *m, const pveh_history *h);

#endif
