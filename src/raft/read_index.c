/*
 * Linearizable reads without writing to the log: ReadIndex (thesis §6.4) and leases
 * (thesis §6.4.1).
 *
 * The leader records its commit index as the read index, then confirms that it is still the
 * leader with a round of heartbeats acknowledged by a majority; the read may then be answered
 * once the state machine has applied up to the read index. A new leader does not know its
 * commit index is current until an entry of its own term is committed (the no-op), so reads
 * wait for that. Every read ends with an answer: reads that lose their leader fail with
 * PT_ENOTLEADER.
 *
 * Leases (thesis §6.4.1). A follower that heard from its leader ignores vote requests for an
 * election timeout (leader stickiness, in praft_step, on with check-quorum). So if a majority
 * acknowledged a heartbeat this leader sent at tick s, no other leader can be elected before
 * each of them has counted election_ticks ticks from receiving it, which is no earlier than
 * election_ticks - 1 of our ticks after s (its clock may tick just after it received the
 * heartbeat). Until then the leader may answer a read from its commit index without a round.
 * The lease therefore runs from the *send* tick of the heartbeat a majority acknowledged,
 * never from the tick the acknowledgement arrived.
 *
 * To know send ticks without changing the wire, every heartbeat of a lease leader starts a new
 * round (its context), rounds only grow, and the leader remembers the round counter at the
 * start of each of its last election_ticks ticks (lease_rounds). A follower's acknowledged
 * round above lease_rounds[k] proves it answered a heartbeat sent at tick k or later. Only
 * heartbeats extend the lease; appends do not carry a round.
 */
#include "raft/core.h"

#include <stdlib.h>
#include <string.h>

int praft__read_done(praft_node *n, uint64_t context, uint64_t index, int status)
{
    void *p = n->done_reads;
    int rv = praft__grow(&p, &n->cap_done_reads, n->n_done_reads + 1, sizeof(*n->done_reads));
    n->done_reads = p;
    if (rv != 0) {
        return rv;
    }
    n->done_reads[n->n_done_reads++] =
        (praft_read_state){.context = context, .index = index, .status = status};
    return 0;
}

static int answer(praft_node *n, const praft_read_req *r, int status)
{
    if (r->from == n->id) {
        return praft__read_done(n, r->context, r->index, status);
    }
    praft_msg m = {.type = PRAFT_MSG_READ_INDEX_RESP,
                   .to = r->from,
                   .context = r->context,
                   .index = r->index,
                   .reject = status != 0};
    return praft__send(n, &m, false);
}

static bool own_term_committed(praft_node *n)
{
    return praft__log_term_or0(n, n->commit) == n->term;
}

/*
 * The lease lasts election_ticks - 1 ticks from the send tick (see above), minus an allowance
 * for clock drift between leader and followers of an eighth of the election timeout: with the
 * default 10 ticks, a lease of 8 ticks. Clocks must not drift apart faster than that, and the
 * caller must deliver every tick that passed (including those missed while the process was
 * stopped) before anything else, or the lease outlives the followers' stickiness.
 */
static uint64_t lease_ticks(const praft_node *n)
{
    uint32_t t = n->o.election_ticks;
    return t - 1 - t / 8; /* election_ticks >= 2 (validated), so at least 1 */
}

void praft__lease_start(praft_node *n)
{
    n->lease_since = n->now;
    n->lease_void = false;
    if (n->lease_rounds != NULL) {
        n->lease_rounds[n->now % n->o.election_ticks] = n->read_round;
    }
}

void praft__lease_tick(praft_node *n)
{
    if (n->lease_rounds != NULL) {
        n->lease_rounds[n->now % n->o.election_ticks] = n->read_round;
    }
}

uint64_t praft__heartbeat_context(praft_node *n)
{
    if (n->o.lease_reads) {
        return ++n->read_round; /* a fresh round: its acknowledgements date the lease */
    }
    return n->n_reads_q > 0 ? n->read_round : 0;
}

/* The round counter as tick max(now - lease_ticks + 1, lease_since) began: a voter that
 * acknowledged a later round answered a heartbeat sent within the lease. */
static uint64_t lease_floor(const praft_node *n)
{
    uint64_t d = lease_ticks(n);
    uint64_t k = n->now + 1 >= n->lease_since + d ? n->now + 1 - d : n->lease_since;
    return n->lease_rounds[k % n->o.election_ticks];
}

struct lease_ctx {
    praft_node *n;
    uint64_t floor;
};

static int in_lease(void *ctx, uint64_t id)
{
    const struct lease_ctx *l = ctx;
    if (id == l->n->id) {
        return 1; /* the leader counts itself at the current tick */
    }
    praft_pr *p = praft__pr_find(l->n, id);
    return p != NULL && p->lease_round > l->floor ? 1 : 0;
}

/* thesis §6.4.1: true while a majority (of each side of a joint configuration) acknowledged a
 * heartbeat sent less than lease_ticks ago. Never after this leader sent TIMEOUT_NOW in this
 * term: a transfer's election ignores stickiness (thesis §3.10), so the target may win at once. */
static bool lease_holds(praft_node *n)
{
    if (!n->o.lease_reads || n->lease_void || n->lease_rounds == NULL) {
        return false;
    }
    struct lease_ctx l = {.n = n, .floor = lease_floor(n)};
    return praft__quorum_result(&n->cfg, in_lease, &l) == PR_VOTE_WON;
}

static int acked(void *ctx, uint64_t id)
{
    const praft_read_req *r = ctx;
    for (uint32_t i = 0; i < r->n_acks; i++) {
        if (r->acks[i] == id) {
            return 1;
        }
    }
    return -1;
}

/* Answers, in order, the reads whose heartbeat round a majority acknowledged. */
static int release(praft_node *n)
{
    size_t k = 0;
    int rv = 0;
    while (k < n->n_reads_q && n->reads_q[k].round != 0 &&
           praft__quorum_result(&n->cfg, acked, &n->reads_q[k]) == PR_VOTE_WON) {
        rv = answer(n, &n->reads_q[k], 0);
        if (rv != 0) {
            break;
        }
        k++;
    }
    if (k > 0) { /* reads_q may be NULL when empty */
        memmove(n->reads_q, n->reads_q + k, (n->n_reads_q - k) * sizeof(*n->reads_q));
        n->n_reads_q -= k;
    }
    return rv;
}

/* Starts a heartbeat round for every read still waiting for one. */
static int start_round(praft_node *n)
{
    uint64_t round = ++n->read_round;
    bool any = false;
    for (size_t i = 0; i < n->n_reads_q; i++) {
        praft_read_req *r = &n->reads_q[i];
        if (r->round == 0) {
            r->round = round;
            r->index = n->commit;
            r->n_acks = 0;
            r->acks[r->n_acks++] = n->id;
            any = true;
        }
    }
    if (!any) {
        return 0;
    }
    if (lease_holds(n)) {
        /* thesis §6.4.1: no other leader can exist before the lease ends, so it stands in for
         * the round. Every read queued here has its read index already. */
        for (size_t i = 0; i < n->n_reads_q; i++) {
            int rv = answer(n, &n->reads_q[i], 0);
            if (rv != 0) {
                memmove(n->reads_q, n->reads_q + i, (n->n_reads_q - i) * sizeof(*n->reads_q));
                n->n_reads_q -= i;
                return rv;
            }
        }
        n->n_reads_q = 0;
        return 0;
    }
    /* Without a lease (or once it expired) a read never fails for that: it takes a round. */
    int rv = release(n); /* a single voter needs no round */
    if (rv == 0 && n->n_reads_q > 0) {
        rv = praft__bcast_heartbeat(n, round);
    }
    return rv;
}

int praft__read_local(praft_node *n, uint64_t from, uint64_t context)
{
    void *p = n->reads_q;
    int rv = praft__grow(&p, &n->cap_reads_q, n->n_reads_q + 1, sizeof(*n->reads_q));
    n->reads_q = p;
    if (rv != 0) {
        return rv;
    }
    praft_read_req *r = &n->reads_q[n->n_reads_q++];
    memset(r, 0, sizeof(*r));
    r->context = context;
    r->from = from;
    if (!own_term_committed(n)) {
        return 0; /* queued until the no-op commits (thesis §6.4 step 1) */
    }
    /* The round starts when the next ready is taken, so that every read arriving before then
     * shares it: one heartbeat per follower for a batch of reads, not one per read. Its read
     * index is the commit index at that moment, no lower than now (thesis §6.4 step 1 asks
     * for at least the commit index when the read arrived). */
    n->read_round_pending = true;
    return 0;
}

int praft__reads_on_commit(praft_node *n)
{
    if (n->n_reads_q == 0 || !own_term_committed(n)) {
        return 0;
    }
    n->read_round_pending = true;
    return 0;
}

int praft__reads_start_round(praft_node *n)
{
    if (!n->read_round_pending) {
        return 0;
    }
    if (n->role != PRAFT_LEADER || !own_term_committed(n)) {
        n->read_round_pending = false;
        return 0;
    }
    int rv = start_round(n);
    if (rv == 0) {
        n->read_round_pending = false;
    }
    return rv;
}

int praft__reads_on_heartbeat_resp(praft_node *n, uint64_t from, uint64_t round)
{
    if (round > n->read_round) {
        n->c.msgs_dropped_stale++; /* no such round was ever sent */
        return 0;
    }
    praft_pr *p = praft__pr_find(n, from);
    if (p != NULL && round > p->lease_round) {
        p->lease_round = round;
    }
    for (size_t i = 0; i < n->n_reads_q; i++) {
        praft_read_req *r = &n->reads_q[i];
        /* An answer to round k proves leadership after every read of rounds <= k began. */
        if (r->round == 0 || r->round > round || acked(r, from) == 1 ||
            r->n_acks >= PRAFT_MAX_MEMBERS) {
            continue;
        }
        r->acks[r->n_acks++] = from;
    }
    return release(n);
}

void praft__reads_fail_all(praft_node *n)
{
    for (size_t i = 0; i < n->n_reads_q; i++) {
        (void)answer(n, &n->reads_q[i], PT_ENOTLEADER);
    }
    n->n_reads_q = 0;
}

void praft__reads_leader_changed(praft_node *n)
{
    size_t k = 0;
    for (size_t i = 0; i < n->n_fwd; i++) {
        praft_fwd_read *f = &n->fwd[i];
        if (f->leader == n->leader && f->term == n->term) {
            n->fwd[k++] = *f;
        } else {
            (void)praft__read_done(n, f->context, 0, PT_ENOTLEADER);
        }
    }
    n->n_fwd = k;
}

int praft__handle_read_index(praft_node *n, const praft_msg *m)
{
    if (m->context == 0) {
        n->c.msgs_dropped_malformed++;
        return PT_EMALFORMED;
    }
    return praft__read_local(n, m->from, m->context);
}

int praft__handle_read_index_resp(praft_node *n, const praft_msg *m)
{
    for (size_t i = 0; i < n->n_fwd; i++) {
        if (n->fwd[i].context == m->context && n->fwd[i].leader == m->from) {
            n->fwd[i] = n->fwd[--n->n_fwd];
            return praft__read_done(n, m->context, m->reject ? 0 : m->index,
                                    m->reject ? PT_ENOTLEADER : 0);
        }
    }
    n->c.msgs_dropped_stale++;
    return 0;
}

int praft_read_index(praft_node *n, uint64_t context)
{
    if (n == NULL || context == 0) {
        return PT_EINVAL;
    }
    if (n->role == PRAFT_LEADER) {
        return praft__read_local(n, n->id, context);
    }
    if (n->leader == PRAFT_NONE) {
        return PT_ENOTLEADER;
    }
    /* A follower asks the leader for a read index and answers once it has applied up to it. */
    void *p = n->fwd;
    int rv = praft__grow(&p, &n->cap_fwd, n->n_fwd + 1, sizeof(*n->fwd));
    n->fwd = p;
    if (rv != 0) {
        return rv;
    }
    praft_msg m = {.type = PRAFT_MSG_READ_INDEX, .to = n->leader, .context = context};
    rv = praft__send(n, &m, false);
    if (rv != 0) {
        return rv;
    }
    n->fwd[n->n_fwd++] = (praft_fwd_read){.context = context, .leader = n->leader, .term = n->term};
    return 0;
}
