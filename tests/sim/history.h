/*
 * The history of client operations on the simulated key-value store, as the clients saw it.
 *
 * Each logical operation is recorded once, however many times the client retried it: it is
 * invoked at the time of its first attempt and completes at the time of the answer that ended
 * it. A write whose fate the client could not learn (every attempt timed out) is recorded with
 * outcome UNKNOWN: it may or may not have taken effect, at any time after its invocation. A
 * read that got no answer has no effect and is not recorded.
 */
#ifndef PLATOON_SIM_HISTORY_H
#define PLATOON_SIM_HISTORY_H

#include <stddef.h>
#include <stdint.h>

enum psim_op_kind {
    PSIM_OP_PUT = 1,
    PSIM_OP_GET = 2,
};

enum psim_op_outcome {
    PSIM_OUT_OK = 1,      /* completed: a put took effect, a get returned @value */
    PSIM_OUT_FAILED = 2,  /* definitely had no effect */
    PSIM_OUT_UNKNOWN = 3, /* a put that may or may not have taken effect */
};

#define PSIM_TIME_INF UINT64_MAX

typedef struct psim_op {
    uint32_t client;
    uint32_t kind; /* enum psim_op_kind */
    uint32_t key;
    uint32_t outcome;  /* enum psim_op_outcome */
    uint64_t value;    /* put: the value written; get: the value read (0: absent) */
    uint64_t invoke;   /* logical time of the first attempt */
    uint64_t complete; /* logical time of the answer; PSIM_TIME_INF when UNKNOWN */
} psim_op;

typedef struct psim_history {
    psim_op *ops;
    size_t n, cap;
} psim_history;

void psim_history_init(psim_history *h);
void psim_history_free(psim_history *h);

/* Appends a copy of @op. Returns 0 or PT_ENOMEM. */
int psim_history_add(psim_history *h, const psim_op *op);

#endif
