/*
 * Majorities, simple and joint (thesis §4.3): in C_old,new every decision needs a majority of
 * the outgoing voters and a majority of the incoming voters. Learners never count.
 */
#include "raft/core.h"

#include <stdlib.h>

static bool in_side(const praft_member *m, int side)
{
    return side == 0 ? m->role == PRAFT_ROLE_VOTER : m->old_role == PRAFT_ROLE_VOTER;
}

bool praft__cfg_is_voter(const praft_config *c, uint64_t id)
{
    const praft_member *m = praft_config_find(c, id);
    if (m == NULL) {
        return false;
    }
    return m->role == PRAFT_ROLE_VOTER || (c->joint && m->old_role == PRAFT_ROLE_VOTER);
}

static int side_result(const praft_config *c, int side, int (*yes)(void *ctx, uint64_t id),
                       void *ctx)
{
    uint32_t total = 0, y = 0, no = 0;
    for (uint32_t i = 0; i < c->n_members; i++) {
        if (!in_side(&c->members[i], side)) {
            continue;
        }
        total++;
        int v = yes(ctx, c->members[i].id);
        if (v == 1) {
            y++;
        } else if (v == 0) {
            no++;
        }
    }
    if (total == 0) {
        /* An empty side (the outgoing side of a simple configuration) constrains nothing. */
        return PR_VOTE_WON;
    }
    uint32_t q = total / 2 + 1;
    if (y >= q) {
        return PR_VOTE_WON;
    }
    if (total - no < q) {
        return PR_VOTE_LOST;
    }
    return PR_VOTE_PENDING;
}

int praft__quorum_result(const praft_config *c, int (*yes)(void *ctx, uint64_t id), void *ctx)
{
    int a = side_result(c, 0, yes, ctx);
    int b = c->joint ? side_result(c, 1, yes, ctx) : PR_VOTE_WON;
    if (a == PR_VOTE_LOST || b == PR_VOTE_LOST) {
        return PR_VOTE_LOST;
    }
    if (a == PR_VOTE_WON && b == PR_VOTE_WON) {
        return PR_VOTE_WON;
    }
    return PR_VOTE_PENDING;
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : (x > y ? -1 : 0);
}

static uint64_t side_commit(praft_node *n, int side)
{
    uint64_t m[PRAFT_MAX_MEMBERS];
    uint32_t k = 0;
    for (uint32_t i = 0; i < n->cfg.n_members; i++) {
        const praft_member *mb = &n->cfg.members[i];
        if (!in_side(mb, side)) {
            continue;
        }
        if (mb->id == n->id) {
            /* The leader counts itself only for what it has made durable (thesis §10.2.1). */
            m[k++] = n->log.persisted;
        } else {
            praft_pr *p = praft__pr_find(n, mb->id);
            m[k++] = p ? p->match : 0;
        }
    }
    if (k == 0) {
        return UINT64_MAX;
    }
    qsort(m, k, sizeof(m[0]), cmp_desc);
    return m[k / 2];
}

uint64_t praft__quorum_commit_index(praft_node *n)
{
    uint64_t a = side_commit(n, 0);
    uint64_t b = n->cfg.joint ? side_commit(n, 1) : UINT64_MAX;
    uint64_t r = PR_MIN(a, b);
    return r == UINT64_MAX ? 0 : r;
}
