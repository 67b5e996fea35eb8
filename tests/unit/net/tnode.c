/* Transports in one test process (tnode.h). */
#include "tnode.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void start(struct node *n, uint64_t id, const char *listen, pnet_tls *tls, int io_threads,
                  const char *const *methods, size_t n_methods)
{
    pnet_transport_options o;
    memset(n, 0, sizeof(*n));
    n->id = id;
    assert_int_equal(pnet_mailbox_new(&n->mb), 0);
    pnet_transport_options_init(&o);
    o.listen_address = listen;
    o.mailbox = n->mb;
    o.node_id = id;
    o.tls = tls;
    if (io_threads > 0) {
        o.io_threads = io_threads;
    }
    o.methods = methods;
    o.n_methods = n_methods;
    assert_int_equal(pnet_transport_new(&o, &n->t), 0);
    assert_true(pnet_transport_port(n->t) > 0);
    snprintf(n->addr, sizeof(n->addr), "127.0.0.1:%d", pnet_transport_port(n->t));
}

void node_start_tls(struct node *n, uint64_t id, const char *listen, pnet_tls *tls)
{
    start(n, id, listen, tls, 0, NULL, 0);
}

void node_start_threads(struct node *n, uint64_t id, int io_threads)
{
    start(n, id, "127.0.0.1:0", NULL, io_threads, NULL, 0);
}

void node_start_methods(struct node *n, uint64_t id, const char *const *methods, size_t count)
{
    start(n, id, "127.0.0.1:0", NULL, 0, methods, count);
}

void node_start_at(struct node *n, uint64_t id, const char *listen)
{
    node_start_tls(n, id, listen, NULL);
}

void node_start(struct node *n, uint64_t id)
{
    node_start_at(n, id, "127.0.0.1:0");
}

void node_drop_events(struct node *n)
{
    while (n->head != NULL) {
        pnet_event *ev = n->head;
        n->head = ev->next;
        if (ev->type == PNET_EV_CALL) {
            pnet_call_fail(ev->call, 14, "test over");
        }
        pnet_event_free(ev);
    }
    n->tail = NULL;
}

void node_stop(struct node *n)
{
    pnet_transport_free(n->t);
    n->t = NULL;
    node_drop_events(n);
    pnet_mailbox_free(n->mb);
    n->mb = NULL;
}

pnet_event *next_event(struct node *n, uint32_t type, int64_t wait_ms)
{
    int64_t deadline = pnet_now_ms() + wait_ms;
    for (;;) {
        pnet_event **pp = &n->head, *prev = NULL;
        while (*pp != NULL) {
            pnet_event *ev = *pp;
            if (ev->type == type) {
                *pp = ev->next;
                if (n->tail == ev) {
                    n->tail = prev;
                }
                ev->next = NULL;
                return ev;
            }
            prev = ev;
            pp = &ev->next;
        }
        if (pnet_now_ms() >= deadline) {
            return NULL;
        }
        pnet_event *got = NULL;
        pnet_mailbox_wait(n->mb, deadline, &got);
        while (got != NULL) {
            pnet_event *next = got->next;
            got->next = NULL;
            if (n->tail != NULL) {
                n->tail->next = got;
            } else {
                n->head = got;
            }
            n->tail = got;
            got = next;
        }
    }
}

praft_msg *next_msg(struct node *n, int64_t wait_ms)
{
    pnet_event *ev = next_event(n, PNET_EV_MSG, wait_ms);
    if (ev == NULL) {
        return NULL;
    }
    praft_msg *m = ev->msg;
    ev->msg = NULL;
    pnet_event_free(ev);
    return m;
}

void on_done(void *ctx, int status, const char *message, const uint8_t *data, size_t len)
{
    struct done *d = ctx;
    d->calls++;
    d->status = status;
    snprintf(d->message, sizeof(d->message), "%s", message != NULL ? message : "");
    d->len = len < sizeof(d->data) ? len : sizeof(d->data);
    if (len > 0) {
        memcpy(d->data, data, d->len);
    }
}

void run_done(struct node *n)
{
    pnet_event *ev = next_event(n, PNET_EV_CLIENT_DONE, WAIT_MS);
    assert_non_null(ev);
    ev->done(ev->done_ctx, ev->status, ev->message, ev->data, ev->len);
    pnet_event_free(ev);
}
