/*
 * The log as the core sees it: the latest snapshot, the durable entries read through the
 * storage callbacks, and a tail in memory (entries not yet persisted, plus recent persisted
 * ones kept so that replication and application rarely go back to storage).
 *
 * Memory entries are never freed while a message or a ready may point at them: dropped data
 * is handed to the pending outbox, which frees it when the ready that carried it is advanced.
 */
#include "raft/core.h"

#include <stdlib.h>
#include <string.h>

uint64_t praft__log_last(const praft_log *l)
{
    return l->mem_first + l->n - 1;
}

praft_entry *praft__log_mem(praft_log *l, uint64_t index)
{
    if (index < l->mem_first || index > praft__log_last(l)) {
        return NULL;
    }
    return &l->e[l->head + (index - l->mem_first)];
}

int praft__log_term(praft_node *n, uint64_t index, uint64_t *term)
{
    praft_log *l = &n->log;
    if (index == l->snap.index) {
        *term = l->snap.term;
        return 0;
    }
    if (index < l->snap.index) {
        return PT_ECOMPACTED;
    }
    if (index > praft__log_last(l)) {
        return PT_EUNAVAILABLE;
    }
    praft_entry *e = praft__log_mem(l, index);
    if (e != NULL) {
        *term = e->term;
        return 0;
    }
    return n->st.term(n->st.ctx, index, term);
}

uint64_t praft__log_term_or0(praft_node *n, uint64_t index)
{
    uint64_t t = 0;
    if (praft__log_term(n, index, &t) != 0) {
        return 0;
    }
    return t;
}

uint64_t praft__log_last_term(praft_node *n)
{
    return praft__log_term_or0(n, praft__log_last(&n->log));
}

bool praft__log_up_to_date(praft_node *n, uint64_t last_index, uint64_t last_term)
{
    /* §5.4.1: compare the terms of the last entries, then the lengths. */
    uint64_t my_term = praft__log_last_term(n);
    return last_term > my_term || (last_term == my_term && last_index >= praft__log_last(&n->log));
}

uint64_t praft__log_find_conflict_by_term(praft_node *n, uint64_t index, uint64_t term,
                                          uint64_t *found_term)
{
    uint64_t last = praft__log_last(&n->log);
    if (index > last) {
        index = last;
    }
    /* Walk back over the entries whose term is greater than @term: they all conflict, so the
     * other side can skip the whole run in one round trip (§5.3, the "optimization"). */
    for (;;) {
        uint64_t t;
        if (praft__log_term(n, index, &t) != 0) {
            *found_term = 0;
            return index;
        }
        if (t <= term || index == 0) {
            *found_term = t;
            return index;
        }
        index--;
    }
}

static int bury(praft_node *n, void *p)
{
    if (p == NULL) {
        return 0;
    }
    return praft__track_free(n, p);
}

/* Cuts memory entries >= @from (from >= mem_first). */
static void cut_mem(praft_node *n, uint64_t from)
{
    praft_log *l = &n->log;
    while (l->n > 0 && praft__log_last(l) >= from) {
        praft_entry *e = &l->e[l->head + l->n - 1];
        l->mem_bytes -= e->len;
        if (bury(n, e->data) != 0) {
            free(e->data); /* cannot be tracked: only possible when nothing points at it */
        }
        l->n--;
    }
}

static int reserve(praft_log *l, size_t extra)
{
    if (l->head + l->n + extra <= l->cap) {
        return 0;
    }
    if (l->head > 0 && l->n + extra <= l->cap && l->head >= l->cap / 2) {
        memmove(l->e, l->e + l->head, l->n * sizeof(*l->e));
        l->head = 0;
        return 0;
    }
    if (l->head > 0) {
        memmove(l->e, l->e + l->head, l->n * sizeof(*l->e));
        l->head = 0;
    }
    void *p = l->e;
    int rv = praft__grow(&p, &l->cap, l->n + extra, sizeof(*l->e));
    l->e = p;
    return rv;
}

/* Acknowledgements of entries >= @from still waiting in the outbox that has not been handed out
 * would leave after the write of this very ready, which no longer holds those entries: a
 * leader of the older term counting them could commit an entry no longer on this node (§5.3,
 * Figure 2: reply success only for entries stored). Dropped like lost messages; the leader
 * learns the truth from the next append. Acknowledgements already handed out in a ready
 * follow a write that does hold their entries. */
static void drop_acks_from(praft_node *n, uint64_t from)
{
    praft_outbox *ob = &n->ob[n->pending];
    size_t k = 0;
    for (size_t i = 0; i < ob->n_msgs; i++) {
        const praft_msg *m = &ob->msgs[i];
        if (ob->after[i] && m->type == PRAFT_MSG_APPEND_RESP && !m->reject && m->index >= from) {
            n->c.msgs_dropped_stale++;
            continue;
        }
        ob->msgs[k] = ob->msgs[i];
        ob->after[k] = ob->after[i];
        k++;
    }
    ob->n_msgs = k;
}

/* The log is cut at @from: everything that depended on entries >= from forgets them. */
static void truncated(praft_node *n, uint64_t from)
{
    praft_log *l = &n->log;
    drop_acks_from(n, from);
    if (from < l->unstable) {
        l->unstable = from;
    }
    if (l->persisted >= from) {
        l->persisted = from - 1;
    }
    if (l->trunc_since_ready == 0 || from < l->trunc_since_ready) {
        l->trunc_since_ready = from;
    }
    praft__cfg_truncated(n, from);
}

int praft__log_append(praft_node *n, const praft_entry *ents, size_t count)
{
    praft_log *l = &n->log;
    if (count == 0) {
        return 0;
    }
    uint64_t first = ents[0].index;
    int rv = reserve(l, count);
    if (rv != 0) {
        return rv;
    }
    /* Copy the data first so that a failed allocation leaves the log untouched. */
    uint8_t **copies = NULL;
    uint8_t *stack_copies[64];
    copies = count <= 64 ? stack_copies : malloc(count * sizeof(*copies));
    if (copies == NULL) {
        return PT_ENOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        copies[i] = NULL;
        if (ents[i].len > 0) {
            copies[i] = malloc(ents[i].len);
            if (copies[i] == NULL) {
                for (size_t j = 0; j < i; j++) {
                    free(copies[j]);
                }
                rv = PT_ENOMEM;
                goto out;
            }
            memcpy(copies[i], ents[i].data, ents[i].len);
        }
    }
    if (first <= praft__log_last(l)) {
        /* §5.3: a conflicting suffix is deleted before the new entries are appended. */
        if (first >= l->mem_first) {
            cut_mem(n, first);
        } else {
            cut_mem(n, l->mem_first);
            l->mem_first = first;
        }
        truncated(n, first);
    }
    for (size_t i = 0; i < count; i++) {
        praft_entry *e = &l->e[l->head + l->n];
        *e = ents[i];
        e->data = copies[i];
        l->n++;
        l->mem_bytes += e->len;
        if (e->type == PRAFT_ENTRY_CONFIG) {
            /* Already validated by the caller for network input; a failure here is an entry
             * that cannot be decoded, which the caller has excluded. */
            (void)praft__cfg_appended(n, e->index, e->data, e->len);
        }
    }
out:
    if (copies != stack_copies) {
        free(copies);
    }
    return rv;
}

int praft__log_append_owned(praft_node *n, uint64_t term, uint32_t type, uint8_t *data,
                            uint32_t len)
{
    praft_log *l = &n->log;
    int rv = reserve(l, 1);
    if (rv != 0) {
        return rv;
    }
    praft_entry *e = &l->e[l->head + l->n];
    e->index = praft__log_last(l) + 1;
    e->term = term;
    e->type = type;
    e->len = len;
    e->data = data;
    l->n++;
    l->mem_bytes += len;
    return 0;
}

int praft__log_slice(praft_node *n, praft_outbox *ob, uint64_t lo, uint64_t hi, size_t max_bytes,
                     praft_entry **out, size_t *count)
{
    praft_log *l = &n->log;
    int rv;
    *out = NULL;
    *count = 0;
    if (lo >= hi) {
        return 0;
    }
    if (lo <= l->snap.index) {
        return PT_ECOMPACTED;
    }
    praft_entry *arr = malloc((hi - lo) * sizeof(*arr));
    if (arr == NULL) {
        return PT_ENOMEM;
    }
    size_t k = 0, bytes = 0;
    uint64_t i = lo;
    if (lo < l->mem_first) {
        /* Older entries come from storage; their data is ours to free with the outbox. */
        uint64_t shi = PR_MIN(hi, l->mem_first);
        size_t got = 0;
        rv = n->st.entries(n->st.ctx, lo, shi, max_bytes, arr, &got);
        if (rv != 0) {
            free(arr);
            return rv;
        }
        for (size_t j = 0; j < got; j++) {
            bytes += arr[j].len;
            if (arr[j].data != NULL && praft__track_free(n, arr[j].data) != 0) {
                for (size_t q = j; q < got; q++) {
                    free(arr[q].data);
                }
                free(arr);
                return PT_ENOMEM;
            }
        }
        k = got;
        i = lo + got;
        if (i < shi) {
            goto done; /* the byte bound stopped it */
        }
    }
    for (; i < hi; i++) {
        praft_entry *e = praft__log_mem(l, i);
        if (e == NULL) {
            break;
        }
        if (k > 0 && bytes + e->len > max_bytes) {
            break;
        }
        arr[k++] = *e;
        bytes += e->len;
    }
done:
    (void)ob;
    if (praft__track_free(n, arr) != 0) {
        free(arr);
        return PT_ENOMEM;
    }
    *out = arr;
    *count = k;
    return 0;
}

void praft__log_trim(praft_node *n, uint64_t index)
{
    praft_log *l = &n->log;
    if (index >= l->unstable) {
        index = l->unstable - 1;
    }
    if (index > l->persisted) {
        index = l->persisted;
    }
    while (l->n > 0 && l->mem_first <= index) {
        praft_entry *e = &l->e[l->head];
        l->mem_bytes -= e->len;
        if (bury(n, e->data) != 0) {
            /* Keep it rather than risk freeing what a message points at. */
            return;
        }
        l->head++;
        l->n--;
        l->mem_first++;
    }
    if (l->n == 0) {
        l->head = 0;
    }
}

void praft__log_restore(praft_node *n, const praft_snapshot_meta *meta)
{
    praft_log *l = &n->log;
    drop_acks_from(n, meta->index + 1); /* the entries past the snapshot are gone too */
    cut_mem(n, l->mem_first);
    l->head = 0;
    l->snap = *meta;
    l->mem_first = meta->index + 1;
    l->unstable = meta->index + 1;
    l->persisted = meta->index;
    l->trunc_since_ready = 0;
}

void praft__log_free(praft_log *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->e[l->head + i].data);
    }
    free(l->e);
    memset(l, 0, sizeof(*l));
}
