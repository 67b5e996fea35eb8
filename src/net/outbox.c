/*
 * The outbox and its sender threads ("pt-send"): where answers and messages to peers are
 * written to their sockets.
 *
 * gRPC writes to the socket in the thread that starts a batch, so a loop that started the batch
 * of every answer and every lane message would spend a good part of its time in sendmsg (a
 * quarter of a leader's loop under load, bench/README.md). The loop prepares each batch (the
 * checks, the bounds, the byte buffer) and hands it over here; a sender thread starts it.
 *
 * Order. A unary call has one answer, so answers may be started by any sender in any order. A
 * server stream has at most one message here at a time (its turn, taken when it was handed
 * over); the completion of each message starts the next one, on the completion's thread. A
 * lane sends from the head of its own queue, one stream message at a time, under t->mu; only
 * sender 0 pumps the lanes, so that two senders never wait for each other on t->mu.
 *
 * Several senders (pnet__outbox_senders: half the I/O threads) spread the socket writes over
 * cores: a single one would be the serial point of a leader under load. A turn's answers are
 * dealt to them in runs of at least OUTBOX_RUN, so that a turn with few answers wakes one
 * thread, not all.
 *
 * Holding. While the loop is in a turn (pnet_transport_hold), what it hands over waits on a
 * list of its own, which no sender looks at (what other threads hand over meanwhile, such as
 * the acknowledgements the storage writer sends once a write is durable, goes at once): the loop's
 * flush at the end of the turn deals it out and wakes each sender that got some, once. A sender
 * that is draining is never woken: it looks again before it sleeps. Lanes are marked the same way;
 * a lane's queue is shared, though, so a drain under way may start messages queued during the turn
 * (only their wake-up waits).
 *
 * A quiet turn's few sends (at most OUTBOX_INLINE_MAX answers and lane wake-ups, while every
 * sender sleeps with nothing to do, and the loop has nothing waiting for it) are started by the
 * flushing thread itself: a hand-off costs a wake-up, which is as much as such a send and lies
 * on the answer's way back to its client. A loop with events waiting hands over even one send:
 * its time is the node's serial resource.
 */
#include <stdlib.h>
#include <unistd.h>

#include "net/transport_internal.h"

/* The most sends (answers, and the lanes as one) a turn's flush starts itself. */
#define OUTBOX_INLINE_MAX 2
/* The fewest answers of a turn dealt to one sender (fewer senders are woken for fewer). */
#define OUTBOX_RUN        8

int pnet__outbox_senders(int io_threads)
{
    int n = (io_threads + 1) / 2;
    return n < 1 ? 1 : (n > PNET_MAX_SENDERS ? PNET_MAX_SENDERS : n);
}

/* With ob_mu held: wakes sender @s if it sleeps and has something to do. */
static void sender_wake(pnet_transport *t, struct pnet_sender *s)
{
    if (!s->busy && (s->head != NULL || s->lanes || t->ob_stop)) {
        s->busy = true; /* woken once; it drains before it sleeps again */
        pthread_cond_signal(&s->cv);
    }
}

void pnet__outbox_push(pnet_transport *t, struct pnet_call *call)
{
    pthread_mutex_lock(&t->ob_mu);
    if (t->ob_hold && pthread_equal(t->ob_holder, pthread_self())) {
        if (call == NULL) {
            t->ob_held_lanes = true;
        } else {
            pnet__call_outbox_link(&t->ob_held_head, &t->ob_held_tail, call);
            t->ob_held_n++;
        }
    } else if (call == NULL) {
        t->senders[0].lanes = true;
        sender_wake(t, &t->senders[0]);
    } else {
        struct pnet_sender *s = &t->senders[t->ob_next_sender++ % (unsigned)t->n_senders];
        pnet__call_outbox_link(&s->head, &s->tail, call);
        sender_wake(t, s);
    }
    pthread_mutex_unlock(&t->ob_mu);
}

void pnet_transport_hold(pnet_transport *t)
{
    pthread_mutex_lock(&t->ob_mu);
    t->ob_hold = true;
    t->ob_holder = pthread_self();
    pthread_mutex_unlock(&t->ob_mu);
}

/* Starts answers @calls (a list) and, if @lanes, every lane with messages to send; no lock
 * held. */
static void outbox_start(pnet_transport *t, struct pnet_call *calls, bool lanes)
{
    if (lanes) {
        pthread_mutex_lock(&t->mu);
        pnet__lanes_pump(t);
        pthread_mutex_unlock(&t->mu);
    }
    while (calls != NULL) {
        calls = pnet__call_start_queued(calls); /* returns the next one */
    }
}

/* With ob_mu held: ends the hold and deals what it kept to the senders. */
static void outbox_release_held(pnet_transport *t)
{
    t->ob_hold = false;
    size_t n = t->ob_held_n;
    size_t k = (n + OUTBOX_RUN - 1) / OUTBOX_RUN; /* senders to use */
    if (k > (size_t)t->n_senders) {
        k = (size_t)t->n_senders;
    }
    size_t per = k > 0 ? (n + k - 1) / k : 0;
    struct pnet_call *c = t->ob_held_head;
    for (size_t i = 0; c != NULL; i++) {
        struct pnet_call *next = pnet__call_outbox_next(c);
        struct pnet_sender *s = &t->senders[(t->ob_next_sender + i / per) % (unsigned)t->n_senders];
        pnet__call_outbox_link(&s->head, &s->tail, c);
        c = next;
    }
    t->ob_next_sender += (unsigned)k;
    t->ob_held_head = t->ob_held_tail = NULL;
    t->ob_held_n = 0;
    if (t->ob_held_lanes) {
        t->senders[0].lanes = true;
        t->ob_held_lanes = false;
    }
    for (int i = 0; i < t->n_senders; i++) {
        sender_wake(t, &t->senders[i]);
    }
}

/* With ob_mu held: whether every sender sleeps with nothing to do. */
static bool senders_idle(const pnet_transport *t)
{
    for (int i = 0; i < t->n_senders; i++) {
        const struct pnet_sender *s = &t->senders[i];
        if (s->busy || s->head != NULL || s->lanes) {
            return false;
        }
    }
    return true;
}

void pnet_transport_flush(pnet_transport *t, bool idle)
{
    pthread_mutex_lock(&t->ob_mu);
    size_t units = t->ob_held_n + (t->ob_held_lanes ? 1 : 0);
    if (!idle || units == 0 || units > OUTBOX_INLINE_MAX || t->ob_stop || !senders_idle(t)) {
        outbox_release_held(t);
        pthread_mutex_unlock(&t->ob_mu);
        return;
    }
    /* A quiet turn: waking a sender would cost more than the sends, and add a hand-off to
     * each answer's way back (update@1's latency); the caller starts them itself. */
    struct pnet_call *calls = t->ob_held_head;
    bool lanes = t->ob_held_lanes;
    t->ob_held_head = t->ob_held_tail = NULL;
    t->ob_held_n = 0;
    t->ob_held_lanes = false;
    t->ob_hold = false;
    pthread_mutex_unlock(&t->ob_mu);
    outbox_start(t, calls, lanes);
}

static void *sender_main(void *arg)
{
    pthread_setname_np(pthread_self(), "pt-send"); /* shown by top -H, perf, gdb */
    struct pnet_sender *s = arg;
    pnet_transport *t = s->t;
    pthread_mutex_lock(&t->ob_mu);
    for (;;) {
        if (s->head == NULL && !s->lanes) {
            if (t->ob_stop) {
                break;
            }
            s->busy = false;
            pthread_cond_wait(&s->cv, &t->ob_mu);
            continue;
        }
        s->busy = true;
        struct pnet_call *calls = s->head;
        bool lanes = s->lanes;
        s->head = s->tail = NULL;
        s->lanes = false;
        pthread_mutex_unlock(&t->ob_mu);
        outbox_start(t, calls, lanes);
        pthread_mutex_lock(&t->ob_mu);
    }
    pthread_mutex_unlock(&t->ob_mu);
    return NULL;
}

int pnet__outbox_start(pnet_transport *t)
{
    pthread_mutex_init(&t->ob_mu, NULL);
    int want = pnet__outbox_senders(t->opts.io_threads);
    for (int i = 0; i < want; i++) {
        struct pnet_sender *s = &t->senders[i];
        s->t = t;
        pthread_cond_init(&s->cv, NULL);
        if (pthread_create(&s->thread, NULL, sender_main, s) != 0) {
            pthread_cond_destroy(&s->cv);
            if (i > 0) {
                break; /* fewer senders than wanted: slower, not wrong */
            }
            pthread_mutex_destroy(&t->ob_mu);
            return PT_ENOMEM;
        }
        t->n_senders = i + 1;
    }
    return 0;
}

void pnet__outbox_stop(pnet_transport *t)
{
    if (t->n_senders == 0) {
        return;
    }
    pthread_mutex_lock(&t->ob_mu);
    t->ob_stop = true;
    outbox_release_held(t);
    pthread_mutex_unlock(&t->ob_mu);
    for (int i = 0; i < t->n_senders; i++) {
        pthread_join(t->senders[i].thread, NULL);
        pthread_cond_destroy(&t->senders[i].cv);
    }
    t->n_senders = 0;
    pthread_mutex_destroy(&t->ob_mu);
}
