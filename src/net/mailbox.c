/*
 * The node loop's mailbox: a locked FIFO of events and a condition variable on CLOCK_MONOTONIC.
 *
 * A post signals only while the loop sleeps (a busy loop takes the event at its next turn
 * anyway), and signals after unlocking: a loop woken while the poster still held the mutex
 * would only wake to wait for it.
 */
#include "net/mailbox.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "net/codec.h"
#include "net/transport.h"
#include "net/transport_internal.h"

struct pnet_mailbox {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    pnet_event *head, *tail;
    size_t n;
    bool woken;
    unsigned sleepers; /* threads waiting on cond (the loop) */
};

int64_t pnet_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int pnet_mailbox_new(pnet_mailbox **out)
{
    pthread_condattr_t attr;
    pnet_mailbox *mb = calloc(1, sizeof(*mb));
    if (mb == NULL) {
        return PT_ENOMEM;
    }
    pthread_mutex_init(&mb->mu, NULL);
    pthread_condattr_init(&attr);
    /* Deadlines are monotonic: a wall-clock jump must not stall or hurry the loop. */
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&mb->cond, &attr);
    pthread_condattr_destroy(&attr);
    *out = mb;
    return 0;
}

void pnet_mailbox_free(pnet_mailbox *mb)
{
    if (mb == NULL) {
        return;
    }
    pnet_event *ev = mb->head;
    while (ev != NULL) {
        pnet_event *next = ev->next;
        if (ev->type == PNET_EV_CALL) {
            /* 14 = UNAVAILABLE: nobody will answer this request any more. */
            pnet_call_fail(ev->call, 14, "shutting down");
        }
        pnet_event_free(ev);
        ev = next;
    }
    pthread_cond_destroy(&mb->cond);
    pthread_mutex_destroy(&mb->mu);
    free(mb);
}

void pnet__mailbox_post_list(pnet_mailbox *mb, pnet_event *head, pnet_event *tail, size_t n)
{
    if (head == NULL) {
        return;
    }
    tail->next = NULL;
    pthread_mutex_lock(&mb->mu);
    if (mb->tail != NULL) {
        mb->tail->next = head;
    } else {
        mb->head = head;
    }
    mb->tail = tail;
    mb->n += n;
    bool wake = mb->sleepers > 0;
    pthread_mutex_unlock(&mb->mu);
    if (wake) {
        pthread_cond_signal(&mb->cond);
    }
}

void pnet__mailbox_post(pnet_mailbox *mb, pnet_event *ev)
{
    pnet__mailbox_post_list(mb, ev, ev, 1);
}

void pnet_mailbox_wake(pnet_mailbox *mb)
{
    pthread_mutex_lock(&mb->mu);
    mb->woken = true;
    bool wake = mb->sleepers > 0;
    pthread_mutex_unlock(&mb->mu);
    if (wake) {
        pthread_cond_signal(&mb->cond);
    }
}

size_t pnet_mailbox_pending(pnet_mailbox *mb)
{
    pthread_mutex_lock(&mb->mu);
    size_t n = mb->n;
    pthread_mutex_unlock(&mb->mu);
    return n;
}

int pnet_mailbox_wait(pnet_mailbox *mb, int64_t deadline_ms, pnet_event **events)
{
    struct timespec ts;
    int rc = 0;

    if (deadline_ms < 0) {
        deadline_ms = 0;
    }
    ts.tv_sec = deadline_ms / 1000;
    ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000;
    pthread_mutex_lock(&mb->mu);
    while (mb->head == NULL && !mb->woken) {
        mb->sleepers++;
        int w = pthread_cond_timedwait(&mb->cond, &mb->mu, &ts);
        mb->sleepers--;
        if (w == ETIMEDOUT) {
            break;
        }
    }
    *events = mb->head;
    if (mb->head == NULL && !mb->woken) {
        rc = PT_ETIMEDOUT;
    }
    mb->head = mb->tail = NULL;
    mb->n = 0;
    mb->woken = false;
    pthread_mutex_unlock(&mb->mu);
    return rc;
}

void pnet_event_free(pnet_event *ev)
{
    if (ev == NULL) {
        return;
    }
    pnet_msg_free(ev->msg);
    /* A CALL event's reference is the loop's, released by pnet_call_reply/fail. */
    if ((ev->type == PNET_EV_CALL_CANCELLED || ev->type == PNET_EV_STREAM_READY) &&
        ev->call != NULL) {
        pnet__call_unref(ev->call);
    }
    if (ev->prepared_free != NULL) {
        ev->prepared_free(ev->prepared);
    }
    free(ev->data);
    free(ev->message);
    free(ev);
}
