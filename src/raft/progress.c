/*
 * The leader's view of each follower: how far its log matches (match), what to send next
 * (next), and the flow-control state. PROBE sends one append at a time until the follower's
 * position is known; REPLICATE pipelines appends within a window bounded in count and bytes;
 * SNAPSHOT sends a snapshot chunk by chunk.
 */
#include "raft/core.h"

#include <stdlib.h>
#include <string.h>

praft_pr *praft__pr_find(praft_node *n, uint64_t id)
{
    for (size_t i = 0; i < n->n_prs; i++) {
        if (n->prs[i].id == id) {
            return &n->prs[i];
        }
    }
    return NULL;
}

static void pr_init(praft_node *n, praft_pr *p, uint64_t id)
{
    praft_inflight *infl = p->infl;
    memset(p, 0, sizeof(*p));
    p->infl = infl;
    p->id = id;
    p->next = praft__log_last(&n->log) + 1;
    p->state = PRAFT_PROGRESS_PROBE;
}

int praft__pr_sync(praft_node *n)
{
    praft_pr old[PRAFT_MAX_MEMBERS];
    size_t n_old = n->n_prs;
    if (n_old > 0) { /* prs may be NULL when empty */
        memcpy(old, n->prs, n_old * sizeof(old[0]));
    }
    size_t k = 0;
    for (uint32_t i = 0; i < n->cfg.n_members; i++) {
        uint64_t id = n->cfg.members[i].id;
        if (id == n->id) {
            continue;
        }
        size_t j;
        for (j = 0; j < n_old; j++) {
            if (old[j].id == id) {
                break;
            }
        }
        if (j < n_old) {
            n->prs[k] = old[j];
            old[j].id = PRAFT_NONE; /* moved */
        } else {
            n->prs[k].infl = malloc(n->o.max_inflight_msgs * sizeof(praft_inflight));
            if (n->prs[k].infl == NULL) {
                /* Roll back to the previous set. */
                memcpy(n->prs, old, n_old * sizeof(old[0]));
                n->n_prs = n_old;
                return PT_ENOMEM;
            }
            pr_init(n, &n->prs[k], id);
        }
        k++;
    }
    for (size_t j = 0; j < n_old; j++) {
        if (old[j].id != PRAFT_NONE) {
            free(old[j].infl);
        }
    }
    n->n_prs = k;
    return 0;
}

void praft__pr_reset_all(praft_node *n)
{
    for (size_t i = 0; i < n->n_prs; i++) {
        pr_init(n, &n->prs[i], n->prs[i].id);
    }
}

void praft__pr_free_all(praft_node *n)
{
    for (size_t i = 0; i < n->n_prs; i++) {
        free(n->prs[i].infl);
    }
    n->n_prs = 0;
}

static void infl_reset(praft_pr *p)
{
    p->infl_start = 0;
    p->infl_n = 0;
    p->infl_bytes = 0;
}

void praft__pr_become_probe(praft_pr *p)
{
    /* After a snapshot the follower holds at least the snapshot's index. */
    if (p->state == PRAFT_PROGRESS_SNAPSHOT) {
        p->next = PR_MAX(p->match + 1, p->snap_index + 1);
    } else {
        p->next = p->match + 1;
    }
    p->state = PRAFT_PROGRESS_PROBE;
    p->probe_sent = false;
    p->snap_inflight = false;
    infl_reset(p);
}

void praft__pr_become_replicate(praft_pr *p)
{
    p->state = PRAFT_PROGRESS_REPLICATE;
    p->next = p->match + 1;
    p->probe_sent = false;
    infl_reset(p);
}

bool praft__pr_full(praft_node *n, const praft_pr *p)
{
    return p->infl_n >= n->o.max_inflight_msgs || p->infl_bytes >= n->o.max_inflight_bytes;
}

void praft__pr_infl_add(praft_node *n, praft_pr *p, uint64_t index, size_t bytes)
{
    /* The caller checked praft__pr_full, so the ring (max_inflight_msgs slots) has room. */
    uint32_t cap = n->o.max_inflight_msgs;
    p->infl[(p->infl_start + p->infl_n) % cap] = (praft_inflight){.index = index, .bytes = bytes};
    p->infl_n++;
    p->infl_bytes += bytes;
}

void praft__pr_infl_free_to(praft_node *n, praft_pr *p, uint64_t index)
{
    uint32_t cap = n->o.max_inflight_msgs;
    while (p->infl_n > 0 && p->infl[p->infl_start].index <= index) {
        p->infl_bytes -= p->infl[p->infl_start].bytes;
        p->infl_start = (p->infl_start + 1) % cap;
        p->infl_n--;
    }
}
