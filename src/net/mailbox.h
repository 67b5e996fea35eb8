/*
 * The node loop's mailbox: how the transport (and any other thread) hands work to the one
 * thread that owns the Raft core.
 *
 * Why a mailbox with a condition variable: the node loop must wake for two reasons, something
 * arrived or its next tick is due. pnet_mailbox_wait(mb, next_tick) blocks until either, in one
 * call and without polling; other threads of the node (the storage writer) wake the same loop
 * with pnet_mailbox_wake. No lock is held while the loop works: a wait takes every pending event
 * at once (one lock per batch of events), and the loop handles them afterwards.
 *
 * Deadlines are absolute times in milliseconds of CLOCK_MONOTONIC (pnet_now_ms()).
 */
#ifndef PLATOON_NET_MAILBOX_H
#define PLATOON_NET_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/identity.h"
#include "platoon/raft.h"

typedef struct pnet_mailbox pnet_mailbox;
typedef struct pnet_call pnet_call;

/*
 * Completion of a pnet_client_call. @status is a gRPC status code (grpc_status_code, 0 = OK);
 * @message its details ("" if none); @data/@len the response bytes (only when status is 0).
 * Everything is valid during the callback only.
 */
typedef void (*pnet_client_done_fn)(void *ctx, int status, const char *message, const uint8_t *data,
                                    size_t len);

enum pnet_event_type {
    PNET_EV_MSG = 1,            /* a core message from a peer: hand @msg to praft_step */
    PNET_EV_CALL = 2,           /* a request to a registered method: answer @call */
    PNET_EV_CALL_CANCELLED = 3, /* the client of @call went away or its deadline passed */
    PNET_EV_CLIENT_DONE = 4,    /* a pnet_client_call completed: run @done */
    PNET_EV_STREAM_READY = 5,   /* the server stream of @call can send again, or ended */
};

typedef struct pnet_event {
    struct pnet_event *next; /* the next event of a list returned by pnet_mailbox_wait */
    uint32_t type;           /* enum pnet_event_type */

    /* PNET_EV_MSG: the decoded message, owned by the event, and the address its sender
     * advertised for its lane stream ("" if none). */
    praft_msg *msg;
    char peer_address[PRAFT_ADDRESS_MAX];

    /* PNET_EV_CALL, PNET_EV_CALL_CANCELLED, PNET_EV_STREAM_READY: the call. A CALL event hands the
     * loop a reference on the call, which the loop keeps past pnet_event_free and releases by
     * finishing the call exactly once with pnet_call_reply or pnet_call_fail (transport.h),
     * cancelled or not. A CANCELLED or STREAM_READY event holds a reference of its own, released by
     * pnet_event_free. */
    pnet_call *call;
    /* CALL, CALL_CANCELLED: the method's full name ("/platoon.v1.Platoon/GetVehicle"), valid
     * while the loop holds its reference on the call (until it finishes the call). */
    const char *method;
    void *method_ctx; /* CALL: the ctx given to pnet_transport_register_method */
    /* CALL: who made the call (PNET_ID_NONE without TLS), and the node that forwarded it on
     * the caller's behalf (0 if it came directly). */
    pnet_identity who;
    uint64_t via;
    int64_t deadline_ms; /* CALL: the client's deadline (pnet_now_ms() clock), INT64_MAX if none */

    /* PNET_EV_CALL: the request bytes; PNET_EV_CLIENT_DONE: the response bytes. */
    uint8_t *data;
    size_t len;
    /* PNET_EV_CALL: what the transport's prepare function (transport.h) made of the request
     * on a network thread, freed with prepared_free by pnet_event_free unless the loop took it
     * (set both to NULL then). NULL when there is none. */
    void *prepared;
    void (*prepared_free)(void *prepared);
    bool prepare_ran; /* PNET_EV_CALL: the prepare function accepted the request */

    /* PNET_EV_CLIENT_DONE: the outcome; call done(done_ctx, status, message, data, len). */
    int status;
    char *message;
    pnet_client_done_fn done;
    void *done_ctx;
} pnet_event;

/*
 * A function the transport calls for each request of a registered method on its network
 * threads, once the request's bytes have arrived and before its PNET_EV_CALL event is posted:
 * it can check, decode and prepare the request there, so that the node's loop does not spend
 * its time on it, and refuse a bad one without the loop hearing of it. @ev is the event about to
 * be posted (method, method_ctx, who, via, deadline_ms, data, len are set); it may set
 * ev->prepared and ev->prepared_free. Returns 0 to post the event, or a gRPC status code (1 to
 * 16) to answer the call with that status and the message written to @why (@cap bytes), posting
 * nothing. Called from several threads at once: it may read only what the loop does not change.
 */
typedef int (*pnet_prepare_fn)(void *ctx, struct pnet_event *ev, char *why, size_t cap);

/* Now, in milliseconds of CLOCK_MONOTONIC. */
int64_t pnet_now_ms(void);

/* Creates an empty mailbox. Errors: PT_ENOMEM. */
int pnet_mailbox_new(pnet_mailbox **out);

/*
 * Frees the mailbox and every event still in it; calls of undelivered PNET_EV_CALL events are
 * failed with UNAVAILABLE. Free it after every transport that posts to it.
 */
void pnet_mailbox_free(pnet_mailbox *mb);

/*
 * Waits until at least one event is pending, pnet_mailbox_wake was called, or @deadline_ms
 * passes; then takes every pending event. *events receives the list (in arrival order, linked
 * by ->next; NULL if none), which the caller owns: free each event with pnet_event_free.
 * Returns 0 (also after a wake with no event), or PT_ETIMEDOUT when the deadline passed with
 * nothing pending. @deadline_ms <= pnet_now_ms() only takes what is pending.
 */
int pnet_mailbox_wait(pnet_mailbox *mb, int64_t deadline_ms, pnet_event **events);

/* Makes the current or next pnet_mailbox_wait return. Any thread; never blocks for long. */
void pnet_mailbox_wake(pnet_mailbox *mb);

/* Number of pending events (for tests and status pages). */
size_t pnet_mailbox_pending(pnet_mailbox *mb);

/*
 * Frees one event and what it owns (message, bytes, a CANCELLED event's reference on its call).
 * It neither answers nor releases the call of a PNET_EV_CALL. NULL is ok.
 */
void pnet_event_free(pnet_event *ev);

/* Internal to net/: appends @ev (owned by the mailbox from now on) and wakes the waiter. */
void pnet__mailbox_post(pnet_mailbox *mb, pnet_event *ev);

/* Internal to net/: appends a chain of @n events linked by ->next, @head to @tail. */
void pnet__mailbox_post_list(pnet_mailbox *mb, pnet_event *head, pnet_event *tail, size_t n);

#endif
