/*
 * Simulated clients of the key-value store. Each runs one operation at a time: a put (to the
 * node it believes leads) or a ReadIndex get (to any node: followers forward the read). An
 * attempt that is refused, lost or times out is retried elsewhere with the same (client, seq),
 * so a put takes effect at most once. Every operation ends ok, failed (certainly no effect)
 * or unknown (a put that may have taken effect), and goes into the history.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "platoon/error.h"
#include "sim/sim.h"

#define ATTEMPT_TIMEOUT (25 * PSIM_TICK)
#define MAX_ATTEMPTS    30

static void send_attempt(psim_world *w, psim_client *c)
{
    int slot = -1;
    if (c->op.kind == PSIM_OP_PUT || psim_rng_chance(&w->rng_cli, 500)) {
        slot = c->leader_hint ? psim_slot_of(w, c->leader_hint) : -1;
    }
    if (slot < 0) {
        slot = (int)psim_rng_below(&w->rng_cli, (uint64_t)w->n_slots);
    }
    if (c->op.kind == PSIM_OP_GET && w->lure_slot >= 0 && w->now < w->lure_until &&
        psim_rng_chance(&w->rng_cli, w->lure_permille)) {
        slot = w->lure_slot; /* a read sent to a leader that was just cut off */
    }
    if (c->op.kind == PSIM_OP_PUT && w->lure_writes && w->lure_slot >= 0 &&
        w->now < w->lure_until && psim_rng_chance(&w->rng_cli, 500)) {
        slot = w->lure_slot; /* a long log of an old term that must never win (§5.4.1) */
    } else if (c->op.kind == PSIM_OP_PUT && w->lure_slot >= 0 && w->now < w->lure_until &&
               slot == w->lure_slot && w->n_slots > 1) {
        /* Writes go where the new leader will be, so that they land while the cut-off one may
         * still answer reads. */
        slot = (w->lure_slot + 1 + (int)psim_rng_below(&w->rng_cli, (uint64_t)w->n_slots - 1)) %
               w->n_slots;
    }
    psim_creq *req = calloc(1, sizeof(*req));
    if (req == NULL) {
        psim_fail_internal(w, PT_ENOMEM, "a client request");
        return;
    }
    c->attempt++;
    c->attempts++;
    *req = (psim_creq){.client = c->id,
                       .attempt = c->attempt,
                       .kind = c->op.kind,
                       .key = c->op.key,
                       .value = c->op.value,
                       .seq = c->seq};
    psim_trace(w, "client%d attempt%d %s k%" PRIu32 " v%" PRIu64 " -> slot%d", c->id, c->attempts,
               c->op.kind == PSIM_OP_PUT ? "put" : "get", c->op.key, c->op.value, slot);
    psim_schedule(w, psim_rng_range(&w->rng_cli, 5, 40), PSIM_EV_CLIENT_REQ, slot, 0, req);
    psim_schedule(w, ATTEMPT_TIMEOUT, PSIM_EV_CLIENT_TIMER, c->id, c->attempt, NULL);
}

int psim_client_start(psim_world *w, int ci, uint32_t kind, uint32_t key, uint64_t value)
{
    psim_client *c = &w->clients[ci];
    if (c->busy) {
        return PT_EBUSY;
    }
    c->busy = true;
    c->seq++;
    c->attempts = 0;
    c->maybe = false;
    c->backoff = false;
    c->op = (psim_op){.client = (uint32_t)c->id,
                      .kind = kind,
                      .key = key,
                      .value = kind == PSIM_OP_PUT ? (value ? value : ++w->next_value) : 0,
                      .invoke = ++w->lclock};
    send_attempt(w, c);
    return 0;
}

bool psim_clients_idle(psim_world *w)
{
    for (int i = 0; i < w->opt.clients; i++) {
        if (w->clients[i].busy) {
            return false;
        }
    }
    return true;
}

static void finish(psim_world *w, psim_client *c, uint32_t outcome, uint64_t value)
{
    c->op.outcome = outcome;
    c->op.complete = outcome == PSIM_OUT_UNKNOWN ? PSIM_TIME_INF : ++w->lclock;
    if (c->op.kind == PSIM_OP_GET) {
        c->op.value = value;
    }
    c->busy = false;
    c->attempt++; /* late answers to old attempts are now stale */
    if (outcome == PSIM_OUT_OK) {
        c->ops_ok++;
    } else if (outcome == PSIM_OUT_FAILED) {
        c->ops_failed++;
    } else {
        c->ops_unknown++;
    }
    psim_trace(w, "client%d done %s k%" PRIu32 " v%" PRIu64 " %s", c->id,
               c->op.kind == PSIM_OP_PUT ? "put" : "get", c->op.key, c->op.value,
               outcome == PSIM_OUT_OK       ? "ok"
               : outcome == PSIM_OUT_FAILED ? "failed"
                                            : "unknown");
    if (psim_history_add(&w->hist, &c->op) != 0) {
        psim_fail_internal(w, PT_ENOMEM, "recording the history");
        return;
    }
    if (w->opt.workload && !w->healing) {
        psim_schedule(w, psim_rng_range(&w->rng_cli, 1, 2 * PSIM_TICK), PSIM_EV_CLIENT_INVOKE,
                      c->id, 0, NULL);
    }
}

/* After a failed attempt: retry (always while healing: liveness demands completion), or end
 * the operation. */
static void retry_or_give_up(psim_world *w, psim_client *c)
{
    if (w->healing || c->attempts < MAX_ATTEMPTS) {
        send_attempt(w, c);
        return;
    }
    if (c->op.kind == PSIM_OP_PUT && c->maybe) {
        finish(w, c, PSIM_OUT_UNKNOWN, 0);
    } else {
        finish(w, c, PSIM_OUT_FAILED, 0);
    }
}

void psim_client_invoke(psim_world *w, int ci)
{
    psim_client *c = &w->clients[ci];
    if (c->busy || w->healing) {
        return;
    }
    uint32_t key = (uint32_t)psim_rng_below(&w->rng_cli, (uint64_t)w->opt.keys);
    uint32_t kind = psim_rng_chance(&w->rng_cli, 500) ? PSIM_OP_PUT : PSIM_OP_GET;
    psim_client_start(w, ci, kind, key, 0);
}

void psim_client_resp(psim_world *w, psim_cresp *r)
{
    psim_client *c = &w->clients[r->client];
    if (!c->busy || r->attempt != c->attempt) {
        return; /* an answer to an attempt already given up */
    }
    if (r->leader_hint != PRAFT_NONE) {
        c->leader_hint = r->leader_hint;
    }
    if (r->status == PSIM_R_OK) {
        finish(w, c, PSIM_OUT_OK, r->value);
        return;
    }
    /* A refusal is definite for this attempt; only timed-out attempts leave a doubt. */
    if (r->leader_hint == PRAFT_NONE) {
        c->leader_hint = PRAFT_NONE;
    }
    c->attempt++;
    c->backoff = true;
    psim_schedule(w, psim_rng_range(&w->rng_cli, PSIM_TICK / 2, 2 * PSIM_TICK),
                  PSIM_EV_CLIENT_TIMER, c->id, c->attempt, NULL);
}

void psim_client_timer(psim_world *w, int ci, uint64_t attempt)
{
    psim_client *c = &w->clients[ci];
    if (!c->busy || attempt != c->attempt) {
        return;
    }
    /* Either the back-off after a refusal, or the timeout of an attempt that got no answer:
     * then a put may have been proposed and may still take effect. */
    if (c->backoff) {
        c->backoff = false;
    } else {
        if (c->op.kind == PSIM_OP_PUT) {
            c->maybe = true;
        }
        c->leader_hint = PRAFT_NONE;
    }
    retry_or_give_up(w, c);
}
