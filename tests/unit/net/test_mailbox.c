/*
 * The node loop's mailbox: what a wait returns, and that a sleeping loop is always woken by a
 * post or a wake from another thread (the mailbox signals only while someone sleeps).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "platoon/error.h"
#include "net/mailbox.h"

/* Long enough never to pass on a loaded machine unless a wake-up was lost. */
#define LONG_MS 20000

static pnet_event *event(uint32_t from, int seq)
{
    pnet_event *ev = calloc(1, sizeof(*ev));
    assert_non_null(ev);
    ev->type = PNET_EV_CLIENT_DONE;
    ev->len = from;
    ev->status = seq;
    return ev;
}

static void free_all(pnet_event *ev)
{
    while (ev != NULL) {
        pnet_event *next = ev->next;
        pnet_event_free(ev);
        ev = next;
    }
}

static void test_wait_returns_what_is_pending(void **state)
{
    (void)state;
    pnet_mailbox *mb;
    pnet_event *got;
    assert_int_equal(pnet_mailbox_new(&mb), 0);

    /* Nothing pending, deadline passed: at once, timed out. */
    int64_t t0 = pnet_now_ms();
    assert_int_equal(pnet_mailbox_wait(mb, t0 - 5, &got), PT_ETIMEDOUT);
    assert_null(got);
    /* A short deadline passes. */
    assert_int_equal(pnet_mailbox_wait(mb, pnet_now_ms() + 30, &got), PT_ETIMEDOUT);
    assert_true(pnet_now_ms() >= t0 + 30);
    assert_null(got);

    /* Posted before the wait: every event, in order, and the count resets. */
    for (int i = 0; i < 3; i++) {
        pnet__mailbox_post(mb, event(1, i));
    }
    assert_int_equal(pnet_mailbox_pending(mb), 3);
    assert_int_equal(pnet_mailbox_wait(mb, pnet_now_ms() + LONG_MS, &got), 0);
    int i = 0;
    for (pnet_event *ev = got; ev != NULL; ev = ev->next) {
        assert_int_equal(ev->status, i++);
    }
    assert_int_equal(i, 3);
    assert_int_equal(pnet_mailbox_pending(mb), 0);
    free_all(got);

    /* A wake before the wait: the wait returns at once, with nothing, not timed out; once. */
    pnet_mailbox_wake(mb);
    assert_int_equal(pnet_mailbox_wait(mb, pnet_now_ms() + LONG_MS, &got), 0);
    assert_null(got);
    assert_int_equal(pnet_mailbox_wait(mb, pnet_now_ms() + 10, &got), PT_ETIMEDOUT);

    /* Undelivered events are freed with the mailbox (ASan checks). */
    pnet__mailbox_post(mb, event(1, 9));
    pnet_mailbox_free(mb);
}

struct poster {
    pnet_mailbox *mb;
    uint32_t id;
    int count;
    bool wake_only; /* pnet_mailbox_wake instead of events */
};

static void *post_main(void *arg)
{
    struct poster *p = arg;
    for (int i = 0; i < p->count; i++) {
        if (p->wake_only) {
            pnet_mailbox_wake(p->mb);
        } else {
            pnet__mailbox_post(p->mb, event(p->id, i));
        }
        if (i % 16 == 0) {
            usleep(200); /* let the waiter fall asleep often */
        }
    }
    return NULL;
}

/* Several threads post while one waits: every event arrives, each poster's in its order, and no
 * wait runs to its deadline while events are still to come (a lost wake-up would). */
static void test_posts_from_many_threads_wake_the_waiter(void **state)
{
    (void)state;
    enum { POSTERS = 4, EACH = 5000 };
    pnet_mailbox *mb;
    assert_int_equal(pnet_mailbox_new(&mb), 0);
    pthread_t th[POSTERS + 1];
    struct poster p[POSTERS + 1];
    for (uint32_t i = 0; i <= POSTERS; i++) {
        p[i] = (struct poster){.mb = mb, .id = i, .count = EACH, .wake_only = i == POSTERS};
        assert_int_equal(pthread_create(&th[i], NULL, post_main, &p[i]), 0);
    }
    int next[POSTERS] = {0};
    int total = 0;
    while (total < POSTERS * EACH) {
        pnet_event *got;
        int64_t t0 = pnet_now_ms();
        assert_int_equal(pnet_mailbox_wait(mb, t0 + LONG_MS, &got), 0);
        assert_true(pnet_now_ms() - t0 < LONG_MS); /* not rescued by the deadline */
        for (pnet_event *ev = got; ev != NULL; ev = ev->next) {
            assert_true(ev->len < POSTERS);
            assert_int_equal(ev->status, next[ev->len]);
            next[ev->len]++;
            total++;
        }
        free_all(got);
    }
    for (int i = 0; i <= POSTERS; i++) {
        pthread_join(th[i], NULL);
    }
    pnet_mailbox_free(mb);
}

/* A waiter asleep with a far deadline is woken by a wake from another thread. */
static void *wake_later(void *arg)
{
    usleep(50 * 1000);
    pnet_mailbox_wake(arg);
    return NULL;
}

static void test_wake_reaches_a_sleeping_waiter(void **state)
{
    (void)state;
    pnet_mailbox *mb;
    pnet_event *got;
    assert_int_equal(pnet_mailbox_new(&mb), 0);
    for (int round = 0; round < 20; round++) {
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, wake_later, mb), 0);
        int64_t t0 = pnet_now_ms();
        assert_int_equal(pnet_mailbox_wait(mb, t0 + LONG_MS, &got), 0);
        assert_null(got);
        assert_true(pnet_now_ms() - t0 < LONG_MS);
        pthread_join(th, NULL);
    }
    pnet_mailbox_free(mb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_returns_what_is_pending),
        cmocka_unit_test(test_posts_from_many_threads_wake_the_waiter),
        cmocka_unit_test(test_wake_reaches_a_sleeping_waiter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
