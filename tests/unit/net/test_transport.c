/*
 * Transport tests on loopback: two (or more) transports in one process exchange core messages
 * and unary calls. Every wait is bounded by a generous deadline and asserts on what arrived,
 * never on how long it took.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include "net/codec.h"
#include "net/mailbox.h"
#include "net/transport.h"
#include "net/transport_internal.h"

#include "tnode.h"

/* A port nothing listens on right now. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t len = sizeof(sa);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* Compares what the protocol carries (the codec tests cover every field in depth). */
static void assert_same(const praft_msg *a, const praft_msg *b)
{
    uint8_t *ea, *eb;
    size_t la, lb;
    assert_int_equal(pnet_msg_encode(a, &ea, &la), 0);
    assert_int_equal(pnet_msg_encode(b, &eb, &lb), 0);
    assert_int_equal(la, lb);
    assert_memory_equal(ea, eb, la);
    free(ea);
    free(eb);
}

/* ============================================================================================ */

static praft_snapshot_meta meta;
static uint8_t chunk[4096];
static uint8_t payload[] = "vehicle 42 at 48.85N 2.35E";
static praft_entry ents[2];

static size_t every_type(praft_msg *out, uint64_t from, uint64_t to)
{
    size_t n = 0;
    memset(&meta, 0, sizeof(meta));
    meta.index = 50;
    meta.term = 3;
    meta.size = sizeof(chunk);
    meta.config.n_members = 2;
    /* Members are sorted by id. */
    meta.config.members[0] = (praft_member){.id = from < to ? from : to, .role = PRAFT_ROLE_VOTER};
    meta.config.members[1] =
        (praft_member){.id = from < to ? to : from, .role = PRAFT_ROLE_LEARNER};
    strcpy(meta.config.members[0].address, "127.0.0.1:1");
    for (size_t i = 0; i < sizeof(chunk); i++) {
        chunk[i] = (uint8_t)(i * 13);
    }
    ents[0] = (praft_entry){.term = 3,
                            .index = 51,
                            .type = PRAFT_ENTRY_NORMAL,
                            .len = sizeof(payload),
                            .data = payload};
    ents[1] = (praft_entry){.term = 4, .index = 52, .type = PRAFT_ENTRY_NOOP};
    praft_msg base = {.from = from, .to = to, .term = 4};
    for (uint32_t type = PRAFT_MSG_APPEND; type <= PRAFT_MSG_READ_INDEX_RESP; type++) {
        praft_msg m = base;
        m.type = type;
        switch (type) {
        case PRAFT_MSG_APPEND:
            m.prev_index = 50;
            m.prev_term = 3;
            m.commit = 50;
            m.entries = ents;
            m.n_entries = 2;
            break;
        case PRAFT_MSG_SNAPSHOT:
            m.snapshot = &meta;
            m.data = chunk;
            m.len = sizeof(chunk);
            m.done = true;
            break;
        case PRAFT_MSG_SNAPSHOT_RESP:
            m.snapshot = &meta;
            m.offset = sizeof(chunk);
            m.index = 50;
            break;
        default:
            m.index = (uint64_t)type * 10;
            m.context = (uint64_t)type * 100;
            m.commit = 7;
            m.last_index = 3;
            m.last_term = 2;
            m.reject = type % 2;
            break;
        }
        out[n++] = m;
    }
    return n;
}

/* Every core message type goes both ways, and each lane delivers in the order sent. */
static void test_every_type_both_ways(void **state)
{
    (void)state;
    struct node a, b;
    node_start(&a, 1);
    node_start(&b, 2);
    assert_int_equal(pnet_transport_set_peer(a.t, 2, b.addr), 0);
    assert_int_equal(pnet_transport_set_peer(b.t, 1, a.addr), 0);

    struct node *src[2] = {&a, &b}, *dst[2] = {&b, &a};
    for (int dir = 0; dir < 2; dir++) {
        praft_msg msgs[16];
        size_t n = every_type(msgs, src[dir]->id, dst[dir]->id);
        for (int round = 0; round < 2; round++) { /* twice: order within each lane matters */
            for (size_t i = 0; i < n; i++) {
                assert_int_equal(pnet_transport_send(src[dir]->t, &msgs[i]), 0);
            }
        }
        size_t next_of_lane[PNET_LANE_COUNT][2] = {{0}};
        size_t got = 0;
        while (got < 2 * n) {
            praft_msg *m = next_msg(dst[dir], WAIT_MS);
            assert_non_null(m);
            int lane = pnet__lane_of(m->type);
            /* Find which message of this lane is expected next. */
            size_t seen = 0, want = SIZE_MAX;
            size_t k = next_of_lane[lane][0];
            for (size_t r = 0; r < 2 && want == SIZE_MAX; r++) {
                for (size_t i = 0; i < n; i++) {
                    if (pnet__lane_of(msgs[i].type) == lane) {
                        if (seen == k) {
                            want = i;
                            break;
                        }
                        seen++;
                    }
                }
            }
            assert_true(want != SIZE_MAX);
            assert_same(&msgs[want], m);
            next_of_lane[lane][0]++;
            pnet_msg_free(m);
            got++;
        }
    }
    pnet_transport_stats st;
    pnet_transport_stats_get(b.t, &st);
    assert_int_equal(st.msgs_received, 2 * (PRAFT_MSG_READ_INDEX_RESP));
    assert_int_equal(st.msgs_malformed, 0);
    node_stop(&a);
    node_stop(&b);
}

/* 10,000 APPENDs arrive complete and in order (pipelining needs it). */
static void test_ten_thousand_appends_in_order(void **state)
{
    (void)state;
    struct node a, b;
    node_start(&a, 1);
    node_start(&b, 2);
    assert_int_equal(pnet_transport_set_peer(a.t, 2, b.addr), 0);
    const uint64_t count = 10000;
    uint8_t data[64];
    for (uint64_t i = 1; i <= count; i++) {
        memset(data, (int)(i & 0xff), sizeof(data));
        praft_entry e = {.term = 2, .index = i, .len = sizeof(data), .data = data};
        praft_msg m = {.type = PRAFT_MSG_APPEND,
                       .from = 1,
                       .to = 2,
                       .term = 2,
                       .prev_index = i - 1,
                       .prev_term = i > 1 ? 2 : 0,
                       .commit = i / 2,
                       .entries = &e,
                       .n_entries = 1};
        assert_int_equal(pnet_transport_send(a.t, &m), 0);
    }
    for (uint64_t i = 1; i <= count; i++) {
        praft_msg *m = next_msg(&b, WAIT_MS);
        assert_non_null(m);
        assert_int_equal(m->type, PRAFT_MSG_APPEND);
        assert_int_equal(m->prev_index, i - 1);
        assert_int_equal(m->n_entries, 1);
        assert_int_equal(m->entries[0].index, i);
        assert_int_equal(m->entries[0].len, 64);
        assert_int_equal(m->entries[0].data[63], (uint8_t)(i & 0xff));
        pnet_msg_free(m);
    }
    pnet_transport_stats st;
    pnet_transport_stats_get(a.t, &st);
    assert_int_equal(st.msgs_queued, count);
    assert_int_equal(st.msgs_dropped_full, 0);
    assert_int_equal(st.msgs_dropped_lost, 0);
    /* Batching: far fewer stream messages than core messages would be normal, but how many
     * depends on timing, so only the bound that always holds is asserted. */
    assert_true(st.batches_sent <= count);
    print_message("10000 appends in %llu stream messages\n", (unsigned long long)st.batches_sent);
    node_stop(&a);
    node_stop(&b);
}

/* An APPEND carrying 8 MiB of entries, and a 3 MiB snapshot chunk, pass whole. */
static void test_large_messages(void **state)
{
    (void)state;
    struct node a, b;
    node_start(&a, 1);
    node_start(&b, 2);
    assert_int_equal(pnet_transport_set_peer(a.t, 2, b.addr), 0);
    enum { N = 8, SIZE = 1 << 20 };
    praft_entry e[N];
    for (int i = 0; i < N; i++) {
        e[i] =
            (praft_entry){.term = 1, .index = (uint64_t)i + 1, .len = SIZE, .data = malloc(SIZE)};
        assert_non_null(e[i].data);
        for (int j = 0; j < SIZE; j += 4096) {
            e[i].data[j] = (uint8_t)(i + j / 4096);
        }
    }
    praft_msg m = {
        .type = PRAFT_MSG_APPEND, .from = 1, .to = 2, .term = 1, .entries = e, .n_entries = N};
    assert_int_equal(pnet_transport_send(a.t, &m), 0);

    praft_snapshot_meta sm = {.index = 8, .term = 1, .size = 3 << 20};
    uint8_t *big = calloc(1, sm.size);
    assert_non_null(big);
    big[sm.size - 1] = 0xab;
    praft_msg s = {.type = PRAFT_MSG_SNAPSHOT,
                   .from = 1,
                   .to = 2,
                   .term = 1,
                   .snapshot = &sm,
                   .data = big,
                   .len = sm.size,
                   .done = true};
    assert_int_equal(pnet_transport_send(a.t, &s), 0);

    for (int k = 0; k < 2; k++) {
        praft_msg *got = next_msg(&b, WAIT_MS);
        assert_non_null(got);
        if (got->type == PRAFT_MSG_APPEND) {
            assert_int_equal(got->n_entries, N);
            for (int i = 0; i < N; i++) {
                assert_int_equal(got->entries[i].len, SIZE);
                assert_memory_equal(got->entries[i].data, e[i].data, SIZE);
            }
        } else {
            assert_int_equal(got->type, PRAFT_MSG_SNAPSHOT);
            assert_int_equal(got->len, sm.size);
            assert_memory_equal(got->data, big, sm.size);
        }
        pnet_msg_free(got);
    }
    for (int i = 0; i < N; i++) {
        free(e[i].data);
    }
    free(big);
    node_stop(&a);
    node_stop(&b);
}

static praft_msg vote(uint64_t term)
{
    return (praft_msg){
        .type = PRAFT_MSG_VOTE, .from = 1, .to = 2, .term = term, .last_index = 5, .last_term = 1};
}

/* A peer that is down is reached once it starts, and again after it restarts. */
static void test_peer_down_then_up_then_restarted(void **state)
{
    (void)state;
    struct node a, b;
    char listen[64];
    node_start(&a, 1);
    int port = free_port();
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    assert_int_equal(pnet_transport_set_peer(a.t, 2, listen), 0);
    praft_msg m = vote(7);
    assert_int_equal(pnet_transport_send(a.t, &m), 0);
    usleep(300 * 1000); /* let the first connection attempts fail */

    node_start_at(&b, 2, listen);
    praft_msg *got = next_msg(&b, WAIT_MS);
    assert_non_null(got);
    assert_int_equal(got->term, 7);
    pnet_msg_free(got);

    /* Restart the peer: the old stream breaks, a new one reaches the new process. The core
     * resends on its timers, so does this test until something arrives. */
    node_stop(&b);
    node_start_at(&b, 2, listen);
    got = NULL;
    for (uint64_t term = 8; got == NULL && term < 8 + WAIT_MS / 100; term++) {
        m = vote(term);
        assert_int_equal(pnet_transport_send(a.t, &m), 0);
        got = next_msg(&b, 100);
    }
    assert_non_null(got);
    assert_true(got->term >= 8);
    pnet_msg_free(got);
    node_stop(&a);
    node_stop(&b);
}

/* A full queue drops its oldest messages and counts them; the newest still arrive. */
static void test_bounded_queue_drops_oldest(void **state)
{
    (void)state;
    struct node a, b;
    pnet_mailbox *mb;
    pnet_transport *t;
    pnet_transport_options o;
    assert_int_equal(pnet_mailbox_new(&mb), 0);
    pnet_transport_options_init(&o);
    o.mailbox = mb;
    o.max_queue_msgs = 10;
    assert_int_equal(pnet_transport_new(&o, &t), 0); /* client only */
    assert_int_equal(pnet_transport_port(t), 0);
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", free_port());
    assert_int_equal(pnet_transport_set_peer(t, 2, listen), 0);
    for (uint64_t term = 1; term <= 100; term++) {
        praft_msg m = vote(term);
        assert_int_equal(pnet_transport_send(t, &m), 0);
    }
    pnet_transport_stats st;
    pnet_transport_stats_get(t, &st);
    /* At most one stream message is in flight, holding at most what was queued then. */
    assert_true(st.msgs_dropped_full >= 100 - 10 - 10);
    node_start_at(&b, 2, listen);
    praft_msg *last = NULL;
    for (;;) {
        praft_msg *got = next_msg(&b, last == NULL ? WAIT_MS : 500);
        if (got == NULL) {
            break;
        }
        pnet_msg_free(last);
        last = got;
    }
    assert_non_null(last);
    assert_int_equal(last->term, 100);
    pnet_msg_free(last);
    pnet_transport_free(t);
    pnet_mailbox_free(mb);
    node_stop(&b);
    (void)a;
}

static void test_send_errors(void **state)
{
    (void)state;
    struct node a;
    node_start(&a, 1);
    praft_msg m = vote(1);
    assert_int_equal(pnet_transport_send(a.t, &m), PT_ENOTFOUND);
    assert_int_equal(pnet_transport_set_peer(a.t, 0, "127.0.0.1:1"), PT_EINVAL);
    assert_int_equal(pnet_transport_set_peer(a.t, 2, NULL), PT_EINVAL);
    assert_int_equal(pnet_transport_set_peer(a.t, 2, "127.0.0.1:1"), 0);
    m.type = 99;
    assert_int_equal(pnet_transport_send(a.t, &m), PT_EINVAL);
    assert_int_equal(pnet_transport_remove_peer(a.t, 2), 0);
    assert_int_equal(pnet_transport_remove_peer(a.t, 2), PT_ENOTFOUND);
    m = vote(1);
    assert_int_equal(pnet_transport_send(a.t, &m), PT_ENOTFOUND);
    /* An address that cannot be bound. */
    pnet_transport_options o;
    pnet_transport *t = NULL;
    pnet_transport_options_init(&o);
    o.mailbox = a.mb;
    o.listen_address = a.addr; /* taken */
    assert_int_equal(pnet_transport_new(&o, &t), PT_EIO);
    o.mailbox = NULL;
    assert_int_equal(pnet_transport_new(&o, &t), PT_EINVAL);
    node_stop(&a);
}

/* ============================================================================================
 * Unary service and client
 * ========================================================================================== */

static int method_tag;

static void test_unary_reply_fail_unknown(void **state)
{
    (void)state;
    struct node a, b;
    node_start(&a, 1);
    node_start(&b, 2);
    assert_int_equal(pnet_transport_register_method(b.t, "/test.v1.Echo/Echo", &method_tag), 0);

    /* Reply. */
    struct done d = {0};
    assert_int_equal(pnet_client_call(a.t, 0, b.addr, NULL, "/test.v1.Echo/Echo", "hello", 5,
                                      pnet_now_ms() + WAIT_MS, on_done, &d),
                     0);
    pnet_event *ev = next_event(&b, PNET_EV_CALL, WAIT_MS);
    assert_non_null(ev);
    assert_string_equal(ev->method, "/test.v1.Echo/Echo");
    assert_ptr_equal(ev->method_ctx, &method_tag);
    assert_int_equal(ev->len, 5);
    assert_memory_equal(ev->data, "hello", 5);
    assert_true(ev->deadline_ms != INT64_MAX && ev->deadline_ms > pnet_now_ms());
    assert_int_equal(pnet_call_reply(ev->call, "olleh", 5), 0);
    pnet_event_free(ev);
    run_done(&a);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, 0);
    assert_int_equal(d.len, 5);
    assert_memory_equal(d.data, "olleh", 5);

    /* An empty request and an empty reply are fine too. */
    memset(&d, 0, sizeof(d));
    assert_int_equal(pnet_client_call(a.t, 0, b.addr, NULL, "/test.v1.Echo/Echo", NULL, 0,
                                      INT64_MAX, on_done, &d),
                     0);
    ev = next_event(&b, PNET_EV_CALL, WAIT_MS);
    assert_non_null(ev);
    assert_int_equal(ev->len, 0);
    assert_int_equal(ev->deadline_ms, INT64_MAX);
    assert_int_equal(pnet_call_reply(ev->call, NULL, 0), 0);
    pnet_event_free(ev);
    run_done(&a);
    assert_int_equal(d.status, 0);
    assert_int_equal(d.len, 0);

    /* Fail with a status and a message. */
    memset(&d, 0, sizeof(d));
    assert_int_equal(pnet_client_call(a.t, 0, b.addr, NULL, "/test.v1.Echo/Echo", "x", 1, INT64_MAX,
                                      on_done, &d),
                     0);
    ev = next_event(&b, PNET_EV_CALL, WAIT_MS);
    assert_non_null(ev);
    assert_int_equal(pnet_call_fail(ev->call, 9, "vehicle 3 is stale"), 0);
    pnet_event_free(ev);
    run_done(&a);
    assert_int_equal(d.status, 9); /* FAILED_PRECONDITION */
    assert_string_equal(d.message, "vehicle 3 is stale");
    assert_int_equal(d.len, 0);

    /* Unknown method. */
    memset(&d, 0, sizeof(d));
    assert_int_equal(pnet_client_call(a.t, 0, b.addr, NULL, "/test.v1.Echo/Nope", "x", 1, INT64_MAX,
                                      on_done, &d),
                     0);
    run_done(&a);
    assert_int_equal(d.status, 12); /* UNIMPLEMENTED */

    /* Nothing listening. */
    memset(&d, 0, sizeof(d));
    char nowhere[64];
    snprintf(nowhere, sizeof(nowhere), "127.0.0.1:%d", free_port());
    assert_int_equal(pnet_client_call(a.t, 0, nowhere, NULL, "/test.v1.Echo/Echo", "x", 1,
                                      pnet_now_ms() + WAIT_MS, on_done, &d),
                     0);
    run_done(&a);
    assert_int_equal(d.status, 14); /* UNAVAILABLE */
    assert_int_equal(pnet_mailbox_pending(b.mb), 0);
    node_stop(&a);
    node_stop(&b);
}

/* The prepare function (pnet_transport_set_prepare): what it records, per test. */
struct prep {
    pthread_t loop; /* the test's thread, standing for the node's loop */
    atomic_int ran, off_loop, freed;
};
static struct prep prep;

static void prepared_free(void *p)
{
    atomic_fetch_add(&prep.freed, 1);
    free(p);
}

/* Accepts "ok..." with what it made of it, refuses anything else naming the field. */
static int prepare_fn(void *ctx, pnet_event *ev, char *why, size_t cap)
{
    struct prep *p = ctx;
    atomic_fetch_add(&p->ran, 1);
    if (!pthread_equal(pthread_self(), p->loop)) {
        atomic_fetch_add(&p->off_loop, 1);
    }
    if (ev->type != PNET_EV_CALL || ev->len < 2 || memcmp(ev->data, "ok", 2) != 0) {
        snprintf(why, cap, "field greeting must start with ok");
        return 3; /* INVALID_ARGUMENT */
    }
    char *made = malloc(ev->len + 6);
    assert_non_null(made);
    memcpy(made, "made:", 5);
    memcpy(made + 5, ev->data, ev->len);
    made[ev->len + 5] = '\0';
    ev->prepared = made;
    ev->prepared_free = prepared_free;
    return 0;
}

/* Requests are prepared on the transport's threads, never the loop's; a refused one is
 * answered from there and never reaches the mailbox; what was prepared travels with the event
 * and is freed with it, unless the loop takes it. */
static void prepare_on_network_threads(bool registered_early)
{
    static const char *const methods[] = {"/test.v1.Echo/Echo"};
    memset(&prep, 0, sizeof(prep));
    prep.loop = pthread_self();
    struct node a, b;
    node_start(&a, 1);
    if (registered_early) {
        node_start_methods(&b, 2, methods, 1);
    } else {
        node_start(&b, 2);
    }
    pnet_transport_set_prepare(b.t, prepare_fn, &prep);
    assert_int_equal(pnet_transport_register_method(b.t, "/test.v1.Echo/Echo", &method_tag), 0);

    /* Accepted: the event carries what was made. */
    struct done d = {0};
    assert_int_equal(pnet_client_call(a.t, 0, b.addr, NULL, "/test.v1.Echo/Echo", "ok-1", 4,
                                      pnet_now_ms() + WAIT_MS, on_done, &d),
                     0);
    pnet_event *ev = next_event(&b, PNET_EV_CALL, WAIT_MS);
    assert_non_null(ev);
    assert_true(ev->prepare_ran);
    assert_string_equal((const char *)ev->prepared, "made:ok-1");
    assert_memory_equal(ev->data, "ok-1", 4); /* the bytes stay, for forwarding */
    assert_int_equal(pnet_call_reply(ev->call, "fine", 4), 0);
    pnet_event_free(ev); /* frees what was prepared */
    assert_int_equal(atomic_load(&prep.freed), 1);
    run_done(&a);
    assert_int_equal(d.status, 0);

    /* Refused: the client hears the prepare function's status and words; the loop nothing. */
    memset(&d, 0, sizeof(d));
    assert_int_equal(pnet_client_call(a.t, 0, b.addr, NULL, "/test.v1.Echo/Echo", "bad", 3,
                                      pnet_now_ms() + WAIT_MS, on_done, &d),
                     0);
    run_done(&a);
    assert_int_equal(d.status, 3);
    assert_string_equal(d.message, "field greeting must start with ok");
    assert_null(next_event(&b, PNET_EV_CALL, 200));

    /* Many at once, over several threads: each prepared once, each event its own; the loop
     * takes what was prepared from some and leaves it to pnet_event_free on the others. */
    enum { N = 64 };
    static struct done many[N];
    memset(many, 0, sizeof(many));
    int before = atomic_load(&prep.ran);
    for (int i = 0; i < N; i++) {
        char req[16];
        int len = snprintf(req, sizeof(req), "ok%d", i);
        assert_int_equal(pnet_client_call(a.t, 0, b.addr, NULL, "/test.v1.Echo/Echo", req,
                                          (size_t)len, pnet_now_ms() + WAIT_MS, on_done, &many[i]),
                         0);
    }
    bool seen[N] = {false};
    int taken = 0;
    for (int i = 0; i < N; i++) {
        ev = next_event(&b, PNET_EV_CALL, WAIT_MS);
        assert_non_null(ev);
        assert_true(ev->prepare_ran);
        int k = atoi((const char *)ev->prepared + 7); /* "made:ok<k>" */
        assert_true(k >= 0 && k < N && !seen[k]);
        seen[k] = true;
        if (i % 2 == 0) {
            free(ev->prepared); /* the loop takes it */
            ev->prepared = NULL;
            ev->prepared_free = NULL;
            taken++;
        }
        assert_int_equal(pnet_call_reply(ev->call, "y", 1), 0);
        pnet_event_free(ev);
    }
    for (int i = 0; i < N; i++) {
        run_done(&a);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(many[i].status, 0);
    }
    assert_int_equal(atomic_load(&prep.ran) - before, N);
    assert_int_equal(atomic_load(&prep.freed), 1 + N - taken);
    assert_int_equal(atomic_load(&prep.off_loop), atomic_load(&prep.ran));

    /* One left in the mailbox when the node stops: freed with it (the sanitizers check). */
    memset(&d, 0, sizeof(d));
    assert_int_equal(pnet_client_call(a.t, 0, b.addr, NULL, "/test.v1.Echo/Echo", "ok-last", 7,
                                      pnet_now_ms() + WAIT_MS, on_done, &d),
                     0);
    while (pnet_mailbox_pending(b.mb) == 0) {
        usleep(1000);
    }
    node_stop(&b);
    assert_int_equal(atomic_load(&prep.freed), 1 + N - taken + 1);
    run_done(&a);
    assert_true(d.status != 0); /* nobody answered it */
    node_stop(&a);
}

static void test_prepare_on_network_threads(void **state)
{
    (void)state;
    prepare_on_network_threads(false);
}

/* The same with the method registered with gRPC before the server started: its calls come
 * with their request, by another path. */
static void test_prepare_on_network_threads_registered_early(void **state)
{
    (void)state;
    prepare_on_network_threads(true);
}

/* Methods named at creation are served once registered: UNIMPLEMENTED before, answered after,
 * with everything a call carries (method, ctx, bytes, deadline), empty requests included. */
static void test_methods_registered_early(void **state)
{
    (void)state;
    static const char *const methods[] = {"/test.v1.Echo/Echo", "/test.v1.Echo/Later"};
    struct node a, b;
    node_start(&a, 1);
    node_start_methods(&b, 2, methods, 2);
    assert_int_equal(pnet_transport_register_method(b.t, "/test.v1.Echo/Echo", &method_tag), 0);

    struct done d = {0};
    assert_int_equal(pnet_client_call(a.t, 0, b.addr, NULL, "/test.v1.Echo/Later", "x", 1,
                                      pnet_now_ms() + WAIT_MS, on_done, &d),
                     0);
    run_done(&a);
    assert_int_equal(d.status, 12); /* UNIMPLEMENTED: named, not registered yet */
    assert_int_equal(pnet_mailbox_pending(b.mb), 0);

    assert_int_equal(pnet_transport_register_method(b.t, "/test.v1.Echo/Later", NULL), 0);
    for (int round = 0; round < 2; round++) {
        const char *name = round == 0 ? "/test.v1.Echo/Echo" : "/test.v1.Echo/Later";
        memset(&d, 0, sizeof(d));
        assert_int_equal(pnet_client_call(a.t, 0, b.addr, NULL, name, "hello", 5,
                                          pnet_now_ms() + WAIT_MS, on_done, &d),
                         0);
        pnet_event *ev = next_event(&b, PNET_EV_CALL, WAIT_MS);
        assert_non_null(ev);
        assert_string_equal(ev->method, name);
        assert_ptr_equal(ev->method_ctx, round == 0 ? (void *)&method_tag : NULL);
        assert_int_equal(ev->len, 5);
        assert_memory_equal(ev->data, "hello", 5);
        assert_true(ev->deadline_ms != INT64_MAX && ev->deadline_ms > pnet_now_ms());
        assert_int_equal(pnet_call_reply(ev->call, "olleh", 5), 0);
        pnet_event_free(ev);
        run_done(&a);
        assert_int_equal(d.status, 0);
        assert_memory_equal(d.data, "olleh", 5);
    }

    /* An empty request, no deadline; then many at once (more than the slots gRPC is offered). */
    memset(&d, 0, sizeof(d));
    assert_int_equal(pnet_client_call(a.t, 0, b.addr, NULL, "/test.v1.Echo/Echo", NULL, 0,
                                      INT64_MAX, on_done, &d),
                     0);
    pnet_event *ev = next_event(&b, PNET_EV_CALL, WAIT_MS);
    assert_non_null(ev);
    assert_int_equal(ev->len, 0);
    assert_int_equal(ev->deadline_ms, INT64_MAX);
    assert_int_equal(pnet_call_fail(ev->call, 9, "not now"), 0);
    pnet_event_free(ev);
    run_done(&a);
    assert_int_equal(d.status, 9);
    assert_string_equal(d.message, "not now");

    enum { N = 50 };
    static struct done many[N];
    memset(many, 0, sizeof(many));
    for (int i = 0; i < N; i++) {
        assert_int_equal(pnet_client_call(a.t, 0, b.addr, NULL, "/test.v1.Echo/Echo", "m", 1,
                                          pnet_now_ms() + WAIT_MS, on_done, &many[i]),
                         0);
    }
    for (int i = 0; i < N; i++) {
        ev = next_event(&b, PNET_EV_CALL, WAIT_MS);
        assert_non_null(ev);
        assert_int_equal(pnet_call_reply(ev->call, "k", 1), 0);
        pnet_event_free(ev);
    }
    for (int i = 0; i < N; i++) {
        run_done(&a);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(many[i].status, 0);
    }
    node_stop(&a);
    node_stop(&b);
}

/* The client's deadline passes while the node holds the call: the client gets
 * DEADLINE_EXCEEDED, the node is told, and its late answer is refused harmlessly. */
static void test_unary_deadline_and_cancel(void **state)
{
    (void)state;
    struct node a, b;
    node_start(&a, 1);
    node_start(&b, 2);
    assert_int_equal(pnet_transport_register_method(b.t, "/test.v1.Echo/Slow", NULL), 0);
    struct done d = {0};
    assert_int_equal(pnet_client_call(a.t, 0, b.addr, NULL, "/test.v1.Echo/Slow", "x", 1,
                                      pnet_now_ms() + 500, on_done, &d),
                     0);
    pnet_event *call = next_event(&b, PNET_EV_CALL, WAIT_MS);
    assert_non_null(call);
    run_done(&a);
    assert_int_equal(d.status, 4); /* DEADLINE_EXCEEDED */
    pnet_event *cancelled = next_event(&b, PNET_EV_CALL_CANCELLED, WAIT_MS);
    assert_non_null(cancelled);
    assert_ptr_equal(cancelled->call, call->call);
    pnet_event_free(cancelled);
    assert_int_equal(pnet_call_reply(call->call, "late", 4), PT_ECANCELED);
    pnet_event_free(call);
    node_stop(&a);
    node_stop(&b);
}

/* Garbage and valid batches sent straight to a lane method: the garbage is counted as
 * malformed and dropped, the stream still ends cleanly, valid messages are delivered. */
static void test_peer_stream_rejects_garbage(void **state)
{
    (void)state;
    struct node a, b;
    node_start(&a, 1);
    node_start(&b, 2);
    struct done d = {0};
    const char *method = pnet__lane_method(PNET_LANE_VOTE);
    assert_int_equal(
        pnet_client_call(a.t, 0, b.addr, NULL, method, "\xff\xff\xff", 3, INT64_MAX, on_done, &d),
        0);
    run_done(&a);
    assert_int_equal(d.status, 0);
    /* The summary says nothing was accepted. */
    Platoon__Raft__V1__StreamSummary *sum =
        platoon__raft__v1__stream_summary__unpack(NULL, d.len, d.data);
    assert_non_null(sum);
    assert_int_equal(sum->messages, 0);
    platoon__raft__v1__stream_summary__free_unpacked(sum, NULL);

    /* A vote (right lane) and an append (wrong lane) in one batch. */
    praft_msg v = vote(3);
    praft_msg ap = {.type = PRAFT_MSG_APPEND, .from = 1, .to = 2, .term = 3};
    uint8_t *i1, *i2;
    size_t l1, l2;
    assert_int_equal(pnet__msg_encode_batch_item(&v, &i1, &l1), 0);
    assert_int_equal(pnet__msg_encode_batch_item(&ap, &i2, &l2), 0);
    uint8_t both[256];
    assert_true(l1 + l2 <= sizeof(both));
    memcpy(both, i1, l1);
    memcpy(both + l1, i2, l2);
    free(i1);
    free(i2);
    memset(&d, 0, sizeof(d));
    assert_int_equal(
        pnet_client_call(a.t, 0, b.addr, NULL, method, both, l1 + l2, INT64_MAX, on_done, &d), 0);
    run_done(&a);
    assert_int_equal(d.status, 0);
    praft_msg *got = next_msg(&b, WAIT_MS);
    assert_non_null(got);
    assert_int_equal(got->type, PRAFT_MSG_VOTE);
    pnet_msg_free(got);
    pnet_transport_stats st;
    pnet_transport_stats_get(b.t, &st);
    assert_int_equal(st.msgs_received, 1);
    assert_int_equal(st.msgs_malformed, 2); /* the garbage batch, the append on the vote lane */
    node_stop(&a);
    node_stop(&b);
}

/* Sends made between pnet_transport_hold and pnet_transport_flush (a turn of the node's loop)
 * wait for the flush: lane messages then go in order; an answer held past its caller's deadline
 * is dropped cleanly when it is finally started on the cancelled call; answers still held when
 * the transport is freed go or are dropped without a leak. */
static void *reply_w(void *call)
{
    assert_int_equal(pnet_call_reply(call, "w", 1), 0);
    return NULL;
}

static void test_held_sends_go_at_flush(void **state)
{
    (void)state;
    struct node a, b;
    node_start(&a, 1);
    node_start(&b, 2);
    assert_int_equal(pnet_transport_set_peer(a.t, 2, b.addr), 0);
    assert_int_equal(pnet_transport_register_method(b.t, "/test.v1.Echo/Echo", NULL), 0);

    /* Lane messages. */
    const uint64_t count = 200;
    pnet_transport_hold(a.t);
    for (uint64_t i = 1; i <= count; i++) {
        praft_msg m = {.type = PRAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 2, .commit = i};
        assert_int_equal(pnet_transport_send(a.t, &m), 0);
    }
    pnet_transport_flush(a.t, false); /* to the sender */
    for (uint64_t i = 1; i <= count; i++) {
        praft_msg *m = next_msg(&b, WAIT_MS);
        assert_non_null(m);
        assert_int_equal(m->commit, i);
        pnet_msg_free(m);
    }

    /* An answer held until after its caller gave up. */
    struct done d = {0};
    assert_int_equal(pnet_client_call(a.t, 0, b.addr, NULL, "/test.v1.Echo/Echo", "x", 1,
                                      pnet_now_ms() + 500, on_done, &d),
                     0);
    pnet_event *ev = next_event(&b, PNET_EV_CALL, WAIT_MS);
    assert_non_null(ev);
    pnet_transport_hold(b.t);
    assert_int_equal(pnet_call_reply(ev->call, "late", 4), 0);
    pnet_event_free(ev);
    /* Meanwhile another thread answers another call: the hold is not its own, its answer goes. */
    struct done dw = {0};
    assert_int_equal(pnet_client_call(a.t, 0, b.addr, NULL, "/test.v1.Echo/Echo", "w", 1,
                                      pnet_now_ms() + WAIT_MS, on_done, &dw),
                     0);
    ev = next_event(&b, PNET_EV_CALL, WAIT_MS);
    assert_non_null(ev);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reply_w, ev->call), 0);
    pthread_join(th, NULL);
    pnet_event_free(ev);
    run_done(&a);
    run_done(&a);
    assert_int_equal(d.status, 4); /* DEADLINE_EXCEEDED: the held answer never left */
    assert_int_equal(dw.status, 0);
    assert_int_equal(dw.len, 1);
    assert_memory_equal(dw.data, "w", 1);
    pnet_transport_flush(b.t, true); /* idle: started here */

    /* Without a hold, an answer goes at once. */
    memset(&d, 0, sizeof(d));
    assert_int_equal(pnet_client_call(a.t, 0, b.addr, NULL, "/test.v1.Echo/Echo", "y", 1,
                                      pnet_now_ms() + WAIT_MS, on_done, &d),
                     0);
    ev = next_event(&b, PNET_EV_CALL, WAIT_MS);
    assert_non_null(ev);
    assert_int_equal(pnet_call_reply(ev->call, "ok", 2), 0);
    pnet_event_free(ev);
    run_done(&a);
    assert_int_equal(d.status, 0);
    assert_int_equal(d.len, 2);
    assert_memory_equal(d.data, "ok", 2);

    /* Held when the transport is freed. */
    memset(&d, 0, sizeof(d));
    assert_int_equal(pnet_client_call(a.t, 0, b.addr, NULL, "/test.v1.Echo/Echo", "z", 1,
                                      pnet_now_ms() + WAIT_MS, on_done, &d),
                     0);
    ev = next_event(&b, PNET_EV_CALL, WAIT_MS);
    assert_non_null(ev);
    pnet_transport_hold(b.t);
    assert_int_equal(pnet_call_fail(ev->call, 9, "held"), 0);
    pnet_event_free(ev);
    node_stop(&b);
    run_done(&a);
    assert_int_equal(d.calls, 1);
    node_stop(&a);
}

/* A turn that answers many calls deals them to several sender threads: none leaves before the
 * flush, and after it every one reaches its caller with its own answer. */
static void test_many_held_answers_over_senders(void **state)
{
    (void)state;
    enum { CALLS = 40 };
    assert_int_equal(pnet__outbox_senders(1), 1);
    assert_int_equal(pnet__outbox_senders(2), 1);
    assert_int_equal(pnet__outbox_senders(3), 2);
    assert_int_equal(pnet__outbox_senders(8), 4);
    assert_int_equal(pnet__outbox_senders(PNET_MAX_IO_THREADS), PNET_MAX_SENDERS);

    struct node a, b;
    node_start(&a, 1);
    node_start_threads(&b, 2, 6); /* three senders */
    assert_int_equal(pnet_transport_register_method(b.t, "/test.v1.Echo/Echo", NULL), 0);
    static struct done d[CALLS];
    memset(d, 0, sizeof(d));
    char req[CALLS][8];
    for (int i = 0; i < CALLS; i++) {
        int len = snprintf(req[i], sizeof(req[i]), "r%d", i);
        assert_int_equal(pnet_client_call(a.t, 0, b.addr, NULL, "/test.v1.Echo/Echo", req[i],
                                          (size_t)len, pnet_now_ms() + WAIT_MS, on_done, &d[i]),
                         0);
    }
    pnet_event *calls[CALLS];
    for (int i = 0; i < CALLS; i++) {
        calls[i] = next_event(&b, PNET_EV_CALL, WAIT_MS);
        assert_non_null(calls[i]);
    }
    pnet_transport_hold(b.t);
    for (int i = 0; i < CALLS; i++) { /* echo each request */
        assert_int_equal(pnet_call_reply(calls[i]->call, calls[i]->data, calls[i]->len), 0);
        pnet_event_free(calls[i]);
    }
    assert_null(next_event(&a, PNET_EV_CLIENT_DONE, 300)); /* held: nothing has left */
    pnet_transport_flush(b.t, true);
    for (int i = 0; i < CALLS; i++) {
        run_done(&a);
    }
    for (int i = 0; i < CALLS; i++) {
        assert_int_equal(d[i].calls, 1);
        assert_int_equal(d[i].status, 0);
        assert_int_equal(d[i].len, strlen(req[i]));
        assert_memory_equal(d[i].data, req[i], d[i].len);
    }
    node_stop(&b);
    node_stop(&a);
}

/* A server-streaming call made with gRPC directly: the request, then every message until the
 * status. */
struct stream_reader {
    grpc_completion_queue *cq;
    grpc_channel *ch;
    grpc_call *call;
    atomic_int messages;
    bool in_order;
    grpc_status_code status;
    char details[64];
};

static void reader_batch(struct stream_reader *r, grpc_op *ops, size_t n)
{
    assert_int_equal(grpc_call_start_batch(r->call, ops, n, r, NULL), GRPC_CALL_OK);
    grpc_event ev = grpc_completion_queue_next(
        r->cq,
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(WAIT_MS, GPR_TIMESPAN)),
        NULL);
    assert_int_equal(ev.type, GRPC_OP_COMPLETE);
}

static void reader_open(struct stream_reader *r, const char *addr, const char *method)
{
    memset(r, 0, sizeof(*r));
    r->in_order = true;
    r->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    r->ch = grpc_channel_create(addr, creds, NULL);
    grpc_channel_credentials_release(creds);
    r->call = grpc_channel_create_call(
        r->ch, NULL, GRPC_PROPAGATE_DEFAULTS, r->cq, grpc_slice_from_static_string(method), NULL,
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(WAIT_MS, GPR_TIMESPAN)),
        NULL);
    assert_non_null(r->call);
    grpc_slice body = grpc_slice_from_static_string("go");
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&body, 1);
    grpc_op ops[3];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    reader_batch(r, ops, 3);
    grpc_byte_buffer_destroy(bb);
}

/* Reads messages until the stream's end ("m1", "m2", ... expected) and then its status. */
static void reader_drain(struct stream_reader *r)
{
    grpc_metadata_array md;
    grpc_metadata_array_init(&md);
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_INITIAL_METADATA;
    op.data.recv_initial_metadata.recv_initial_metadata = &md;
    reader_batch(r, &op, 1);
    for (;;) {
        grpc_byte_buffer *got = NULL;
        memset(&op, 0, sizeof(op));
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &got;
        reader_batch(r, &op, 1);
        if (got == NULL) {
            break; /* the stream's messages are over */
        }
        grpc_byte_buffer_reader br;
        assert_true(grpc_byte_buffer_reader_init(&br, got));
        grpc_slice all = grpc_byte_buffer_reader_readall(&br);
        grpc_byte_buffer_reader_destroy(&br);
        char want[16];
        snprintf(want, sizeof(want), "m%d", atomic_load(&r->messages) + 1);
        if (GRPC_SLICE_LENGTH(all) != strlen(want) ||
            memcmp(GRPC_SLICE_START_PTR(all), want, strlen(want)) != 0) {
            r->in_order = false;
        }
        atomic_fetch_add(&r->messages, 1);
        grpc_slice_unref(all);
        grpc_byte_buffer_destroy(got);
    }
    grpc_metadata_array trailers;
    grpc_metadata_array_init(&trailers);
    grpc_slice details;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.trailing_metadata = &trailers;
    op.data.recv_status_on_client.status = &r->status;
    op.data.recv_status_on_client.status_details = &details;
    reader_batch(r, &op, 1);
    snprintf(r->details, sizeof(r->details), "%.*s", (int)GRPC_SLICE_LENGTH(details),
             (const char *)GRPC_SLICE_START_PTR(details));
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&trailers);
    grpc_metadata_array_destroy(&md);
}

static void reader_close(struct stream_reader *r)
{
    grpc_call_unref(r->call);
    grpc_channel_destroy(r->ch);
    grpc_completion_queue_shutdown(r->cq);
    while (grpc_completion_queue_next(r->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(r->cq);
}

static void *reader_main(void *arg)
{
    reader_drain(arg);
    return NULL;
}

/* A server stream's messages handed over by the loop (the thread holding the transport) leave
 * only at its flush, from a sender thread, then all of them in order, the status after the
 * last one; the stream's owner is told once it is over. */
static void test_server_stream_sends_after_the_flush(void **state)
{
    (void)state;
    enum { MESSAGES = 300 };
    struct node b;
    node_start(&b, 2);
    assert_int_equal(pnet_transport_register_method(b.t, "/test.v1.Watch/Watch", NULL), 0);
    struct stream_reader r;
    reader_open(&r, b.addr, "/test.v1.Watch/Watch");
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader_main, &r), 0);
    pnet_event *ev = next_event(&b, PNET_EV_CALL, WAIT_MS);
    assert_non_null(ev);
    assert_int_equal(ev->len, 2);
    pnet_call *call = ev->call;
    int owner;
    pnet_call_stream_open(call);
    pnet_call_stream_set_owner(call, &owner);
    pnet_event_free(ev);

    pnet_transport_hold(b.t);
    char msg[16];
    for (int i = 1; i <= MESSAGES; i++) {
        int len = snprintf(msg, sizeof(msg), "m%d", i);
        assert_int_equal(pnet_call_stream_send(call, msg, (size_t)len), 0);
    }
    /* The status waits for the messages; the loop's reference goes with it. */
    assert_int_equal(pnet_call_fail(call, 9, "the watch is over"), 0);
    /* Held: the first message waits in the outbox, the others behind it in the stream. */
    usleep(300 * 1000);
    assert_int_equal(atomic_load(&r.messages), 0);
    pnet_transport_flush(b.t, false);

    /* The owner is told, once, that the stream is over (the event holds the call). */
    ev = next_event(&b, PNET_EV_STREAM_READY, WAIT_MS);
    assert_non_null(ev);
    assert_ptr_equal(ev->call, call);
    assert_ptr_equal(pnet_call_stream_owner(call), &owner);
    assert_true(pnet_call_stream_ended(call));
    pthread_join(th, NULL);
    assert_int_equal(pnet_call_stream_queued(call), 0);
    assert_null(next_event(&b, PNET_EV_STREAM_READY, 100));
    pnet_event_free(ev);
    assert_int_equal(r.messages, MESSAGES);
    assert_true(r.in_order);
    assert_int_equal(r.status, GRPC_STATUS_FAILED_PRECONDITION);
    assert_string_equal(r.details, "the watch is over");
    reader_close(&r);
    node_stop(&b);
}

/* Shutdown at a bad moment: streams busy, a served call held by the loop, a client call in
 * flight. Everything is released (ASan checks for leaks), the held call is refused afterwards,
 * and the pending client call still completes. */
static void test_shutdown_with_calls_in_flight(void **state)
{
    (void)state;
    struct node a, b;
    node_start(&a, 1);
    node_start(&b, 2);
    assert_int_equal(pnet_transport_register_method(b.t, "/test.v1.Echo/Hold", NULL), 0);
    assert_int_equal(pnet_transport_set_peer(a.t, 2, b.addr), 0);
    assert_int_equal(pnet_transport_set_peer(b.t, 1, a.addr), 0);

    struct done d1 = {0}, d2 = {0};
    assert_int_equal(pnet_client_call(a.t, 0, b.addr, NULL, "/test.v1.Echo/Hold", "1", 1, INT64_MAX,
                                      on_done, &d1),
                     0);
    pnet_event *held = next_event(&b, PNET_EV_CALL, WAIT_MS);
    assert_non_null(held);
    assert_int_equal(pnet_client_call(a.t, 0, b.addr, NULL, "/test.v1.Echo/Hold", "2", 1, INT64_MAX,
                                      on_done, &d2),
                     0);
    uint8_t data[1024] = {0};
    for (uint64_t i = 1; i <= 2000; i++) {
        praft_entry e = {.term = 1, .index = i, .len = sizeof(data), .data = data};
        praft_msg m = {.type = PRAFT_MSG_APPEND,
                       .from = 1,
                       .to = 2,
                       .term = 1,
                       .prev_index = i - 1,
                       .prev_term = i > 1 ? 1 : 0,
                       .entries = &e,
                       .n_entries = 1};
        assert_int_equal(pnet_transport_send(a.t, &m), 0);
        praft_msg r = {.type = PRAFT_MSG_APPEND_RESP, .from = 2, .to = 1, .term = 1, .index = i};
        assert_int_equal(pnet_transport_send(b.t, &r), 0);
    }

    pnet_transport_free(b.t);
    b.t = NULL;
    assert_int_equal(pnet_call_reply(held->call, "late", 4), PT_ECANCELED);
    pnet_event_free(held);
    /* Both of a's calls end: the held one and the one b may or may not have received. */
    run_done(&a);
    run_done(&a);
    assert_int_equal(d1.calls, 1);
    assert_int_equal(d2.calls, 1);
    assert_int_not_equal(d1.status, 0);
    assert_int_not_equal(d2.status, 0);

    /* A client call still in flight when its own transport stops completes too. */
    struct done d3 = {0};
    struct node c;
    node_start(&c, 3);
    assert_int_equal(pnet_transport_register_method(c.t, "/test.v1.Echo/Hold", NULL), 0);
    assert_int_equal(pnet_client_call(a.t, 0, c.addr, NULL, "/test.v1.Echo/Hold", "3", 1, INT64_MAX,
                                      on_done, &d3),
                     0);
    pnet_event *held3 = next_event(&c, PNET_EV_CALL, WAIT_MS);
    assert_non_null(held3);
    pnet_transport_free(a.t);
    a.t = NULL;
    run_done(&a);
    assert_int_equal(d3.calls, 1);
    assert_int_equal(d3.status, 1); /* CANCELLED */
    /* c learns that its client went away: the call is cancelled there too. */
    pnet_event *gone = next_event(&c, PNET_EV_CALL_CANCELLED, WAIT_MS);
    assert_non_null(gone);
    assert_ptr_equal(gone->call, held3->call);
    pnet_event_free(gone);
    assert_int_equal(pnet_call_fail(held3->call, 13, "x"), PT_ECANCELED);
    pnet_event_free(held3);
    node_stop(&c);
    node_stop(&b);
    node_stop(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type_both_ways),
        cmocka_unit_test(test_ten_thousand_appends_in_order),
        cmocka_unit_test(test_large_messages),
        cmocka_unit_test(test_peer_down_then_up_then_restarted),
        cmocka_unit_test(test_bounded_queue_drops_oldest),
        cmocka_unit_test(test_send_errors),
        cmocka_unit_test(test_unary_reply_fail_unknown),
        cmocka_unit_test(test_unary_deadline_and_cancel),
        cmocka_unit_test(test_prepare_on_network_threads),
        cmocka_unit_test(test_prepare_on_network_threads_registered_early),
        cmocka_unit_test(test_methods_registered_early),
        cmocka_unit_test(test_peer_stream_rejects_garbage),
        cmocka_unit_test(test_shutdown_with_calls_in_flight),
        cmocka_unit_test(test_held_sends_go_at_flush),
        cmocka_unit_test(test_many_held_answers_over_senders),
        cmocka_unit_test(test_server_stream_sends_after_the_flush),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
