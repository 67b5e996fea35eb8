/*
 * The simulated disk of one node and the read-only storage view the core reads it through.
 *
 * Only synced state lives here: the node host applies a ready's writes to it when the
 * simulated sync completes, and a crash simply keeps this structure and drops everything else.
 * The core therefore reads exactly what would survive a crash at that moment.
 */
#include <stdlib.h>
#include <string.h>

#include "platoon/error.h"
#include "sim/sim.h"

void psim_disk_init(psim_disk *d)
{
    memset(d, 0, sizeof(*d));
    d->first = 1;
    d->chain_valid = true;
}

void psim_disk_free(psim_disk *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->log[i].data);
    }
    free(d->log);
    free(d->chain);
    free(d->snap_data);
    free(d->in_data);
    psim_disk_init(d);
}

uint64_t psim_disk_last(const psim_disk *d)
{
    return d->first + d->n - 1;
}

bool psim_disk_term(const psim_disk *d, uint64_t index, uint64_t *term)
{
    if (index + 1 == d->first) {
        *term = d->base_term;
        return true;
    }
    if (index < d->first || index > psim_disk_last(d)) {
        return false;
    }
    *term = d->log[index - d->first].term;
    return true;
}

void psim_disk_compact(psim_disk *d, uint64_t index)
{
    if (index < d->first || index > psim_disk_last(d)) {
        return;
    }
    size_t drop = (size_t)(index - d->first + 1);
    d->base_term = d->log[drop - 1].term;
    d->base_chain = d->chain[drop - 1];
    for (size_t i = 0; i < drop; i++) {
        free(d->log[i].data);
    }
    memmove(d->log, d->log + drop, (d->n - drop) * sizeof(*d->log));
    memmove(d->chain, d->chain + drop, (d->n - drop) * sizeof(*d->chain));
    d->n -= drop;
    d->first = index + 1;
}

static int st_initial_state(void *ctx, praft_hard_state *hs, praft_snapshot_meta *snapshot)
{
    psim_disk *d = ctx;
    *hs = d->hs;
    *snapshot = d->snap;
    return 0;
}

static int st_first_index(void *ctx, uint64_t *index)
{
    *index = ((psim_disk *)ctx)->first;
    return 0;
}

static int st_last_index(void *ctx, uint64_t *index)
{
    *index = psim_disk_last(ctx);
    return 0;
}

static int st_term(void *ctx, uint64_t index, uint64_t *term)
{
    psim_disk *d = ctx;
    if (index + 1 < d->first) {
        return PT_ECOMPACTED;
    }
    if (index > psim_disk_last(d)) {
        return PT_EUNAVAILABLE;
    }
    psim_disk_term(d, index, term);
    return 0;
}

static int st_entries(void *ctx, uint64_t lo, uint64_t hi, size_t max_bytes, praft_entry *out,
                      size_t *n)
{
    psim_disk *d = ctx;
    *n = 0;
    if (lo < d->first) {
        return PT_ECOMPACTED;
    }
    if (hi > psim_disk_last(d) + 1) {
        return PT_EUNAVAILABLE;
    }
    size_t bytes = 0;
    for (uint64_t i = lo; i < hi; i++) {
        const praft_entry *e = &d->log[i - d->first];
        if (*n > 0 && bytes + e->len > max_bytes) {
            break;
        }
        out[*n] = *e;
        out[*n].data = NULL;
        if (e->len > 0) {
            out[*n].data = malloc(e->len);
            if (out[*n].data == NULL) {
                for (size_t j = 0; j < *n; j++) {
                    free(out[j].data);
                }
                *n = 0;
                return PT_ENOMEM;
            }
            memcpy(out[*n].data, e->data, e->len);
        }
        bytes += e->len;
        (*n)++;
    }
    return 0;
}

static int st_snapshot_read(void *ctx, const praft_snapshot_meta *meta, uint64_t offset, void *buf,
                            size_t cap, size_t *len)
{
    psim_disk *d = ctx;
    *len = 0;
    if (d->snap.index == 0 || d->snap.index != meta->index || d->snap.term != meta->term) {
        return PT_ENOTFOUND;
    }
    if (offset >= d->snap_len) {
        return 0;
    }
    size_t n = d->snap_len - (size_t)offset;
    if (n > cap) {
        n = cap;
    }
    memcpy(buf, d->snap_data + offset, n);
    *len = n;
    return 0;
}

praft_storage psim_disk_storage(psim_disk *d)
{
    return (praft_storage){.ctx = d,
                           .initial_state = st_initial_state,
                           .first_index = st_first_index,
                           .last_index = st_last_index,
                           .term = st_term,
                           .entries = st_entries,
                           .snapshot_read = st_snapshot_read};
}
