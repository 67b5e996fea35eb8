/*
 * The simulator's event queue: a binary min-heap ordered by (time, seq), where seq is the
 * order of insertion. Two events at the same time are thus always taken in the order they were
 * scheduled, which is what makes a run a pure function of its seed.
 */
#ifndef PLATOON_SIM_EVENTQ_H
#define PLATOON_SIM_EVENTQ_H

#include <stddef.h>
#include <stdint.h>

enum psim_event_type {
    PSIM_EV_TICK = 1,      /* slot: a node's clock ticks */
    PSIM_EV_DELIVER,       /* payload: a psim_msg arriving at its destination */
    PSIM_EV_DISK_DONE,     /* slot, a = write id: a simulated sync completes */
    PSIM_EV_CLIENT_REQ,    /* payload: a psim_creq arriving at node slot */
    PSIM_EV_CLIENT_RESP,   /* payload: a psim_cresp arriving at its client */
    PSIM_EV_CLIENT_TIMER,  /* slot = client, a = attempt id: the client gives up waiting */
    PSIM_EV_CLIENT_INVOKE, /* slot = client: the client starts its next operation */
    PSIM_EV_NEMESIS,       /* the fault schedule acts */
    PSIM_EV_RESTART,       /* slot: a crashed node comes back */
    PSIM_EV_RESUME,        /* slot: a paused node resumes */
    PSIM_EV_NEMESIS_STEP,  /* the second step of a two-step fault (nemesis.c) */
    PSIM_EV_FIGURE8,       /* a = polls left: the Figure 8 fault watches for its moment */
};

typedef struct psim_event {
    uint64_t time;
    uint64_t seq;
    int type; /* enum psim_event_type */
    int slot;
    uint64_t a;
    void *payload; /* owned by the event while queued */
} psim_event;

typedef struct psim_eventq {
    psim_event *heap;
    size_t n, cap;
    uint64_t next_seq;
} psim_eventq;

void psim_eventq_init(psim_eventq *q);

/* Frees the queue; @free_payload (may be NULL) releases each remaining payload. */
void psim_eventq_free(psim_eventq *q, void (*free_payload)(int type, void *payload));

/* Schedules @ev (its seq is assigned here). Returns 0 or PT_ENOMEM. */
int psim_eventq_push(psim_eventq *q, psim_event ev);

/* Takes the earliest event into *out. Returns 0, or PT_ENOTFOUND when the queue is empty. */
int psim_eventq_pop(psim_eventq *q, psim_event *out);

#endif
