/*
 * The transport with TLS (auth.c): nodes talk over mutual TLS; a lane must come from a node
 * certificate and speak only for that node; a client call carries the identity it is made
 * for; a plaintext peer or a certificate of another CA gets nowhere; a reload revokes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/codec.h"
#include "net/identity.h"
#include "net/tls.h"
#include "net/transport.h"
#include "platoon/error.h"
#include "testpki.h"
#include "tnode.h"

/* How long to wait for something that must NOT arrive. */
#define QUIET_MS 1500

static char dir[64];
static tp_cert ca, other_ca, certs[4], foreign; /* certs[i]: node i's (1..3) */

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/platoon-tls-XXXXXX");
    assert_non_null(mkdtemp(dir));
    ca = tp_make("CN=Test CA/O=platoon", NULL, -1, 30, NULL);
    other_ca = tp_make("CN=Other CA/O=platoon", NULL, -1, 30, NULL);
    for (int i = 1; i <= 3; i++) {
        char subject[64], san[64];
        snprintf(subject, sizeof(subject), "CN=node-%d/OU=node/O=platoon", i);
        snprintf(san, sizeof(san), "DNS:node-%d,IP:127.0.0.1", i);
        certs[i] = tp_make(subject, san, -1, 30, &ca);
    }
    foreign = tp_make("CN=node-1/OU=node/O=platoon", "DNS:node-1,IP:127.0.0.1", -1, 30, &other_ca);
    tp_write(dir, "ca.pem", ca.pem);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    tp_free(&ca);
    tp_free(&other_ca);
    tp_free(&foreign);
    for (int i = 1; i <= 3; i++) {
        tp_free(&certs[i]);
    }
    return 0;
}

/* TLS material with @c's certificate and key, trusting @trust, checked as node @as (0: any),
 * with an optional revocation list text. */
static pnet_tls *material(const tp_cert *c, const tp_cert *trust, uint64_t as, const char *crl,
                          uint64_t generation)
{
    char cap[4096], certp[4096], keyp[4096], crlp[4096];
    snprintf(cap, sizeof(cap), "%s", tp_write(dir, "trust.pem", trust->pem));
    snprintf(certp, sizeof(certp), "%s", tp_write(dir, "cert.pem", c->pem));
    snprintf(keyp, sizeof(keyp), "%s", tp_write(dir, "key.pem", c->key_pem));
    if (crl != NULL) {
        snprintf(crlp, sizeof(crlp), "%s", tp_write(dir, "crl.pem", crl));
    }
    pnet_tls_files f = {.ca = cap, .cert = certp, .key = keyp, .crl = crl != NULL ? crlp : NULL};
    pnet_tls *tls = NULL;
    char err[512];
    int rc = pnet__tls_load(&f, as, generation, &tls, err, sizeof(err));
    if (rc != 0) {
        fail_msg("tls load: %s", err);
    }
    return tls;
}

static void start(struct node *n, uint64_t id, const tp_cert *c, const tp_cert *trust,
                  const char *crl)
{
    pnet_tls *tls = material(c, trust, 0, crl, 1);
    node_start_tls(n, id, "127.0.0.1:0", tls);
    pnet__tls_unref(tls); /* the transport holds its own */
}

static void send_heartbeat(struct node *from, uint64_t to, uint64_t term)
{
    praft_msg m = {.type = PRAFT_MSG_HEARTBEAT, .from = from->id, .to = to, .term = term};
    assert_int_equal(pnet_transport_send(from->t, &m), 0);
}

/* Nodes with certificates of the CA talk; each message arrives from the node it names. */
static void test_nodes_talk_over_mutual_tls(void **state)
{
    (void)state;
    struct node a, b;
    start(&a, 1, &certs[1], &ca, NULL);
    start(&b, 2, &certs[2], &ca, NULL);
    assert_int_equal(pnet_transport_set_peer(a.t, 2, b.addr), 0);
    assert_int_equal(pnet_transport_set_peer(b.t, 1, a.addr), 0);
    send_heartbeat(&a, 2, 5);
    praft_msg *m = next_msg(&b, WAIT_MS);
    assert_non_null(m);
    assert_int_equal(m->from, 1);
    assert_int_equal(m->term, 5);
    pnet_msg_free(m);
    send_heartbeat(&b, 1, 6);
    m = next_msg(&a, WAIT_MS);
    assert_non_null(m);
    assert_int_equal(m->from, 2);
    pnet_msg_free(m);
    node_stop(&a);
    node_stop(&b);
}

/* A node certificate announcing another node, a plaintext peer and a certificate of another
 * CA deliver nothing. */
static void test_impostors_deliver_nothing(void **state)
{
    (void)state;
    struct node b, impostor, plain, stranger;
    start(&b, 2, &certs[2], &ca, NULL);
    start(&impostor, 3, &certs[1], &ca, NULL); /* node 1's certificate, calling itself 3 */
    node_start(&plain, 1);
    start(&stranger, 1, &foreign, &other_ca, NULL);
    struct node *bad[] = {&impostor, &plain, &stranger};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(pnet_transport_set_peer(bad[i]->t, 2, b.addr), 0);
        send_heartbeat(bad[i], 2, 1000);
    }
    praft_msg *m = next_msg(&b, QUIET_MS);
    if (m != NULL) {
        fail_msg("a message from %llu got through", (unsigned long long)m->from);
    }
    pnet_transport_stats st;
    pnet_transport_stats_get(b.t, &st);
    assert_true(st.calls_refused >= 1); /* the impostor's lane; the others never connect */
    assert_int_equal(st.msgs_received, 0);
    for (size_t i = 0; i < 3; i++) {
        node_stop(bad[i]);
    }
    node_stop(&b);
}

static int method_tag;

/* A client call carries the identity it is made for, and the receiver learns who vouched. A
 * call meant for node 3 that reaches node 2 is refused by the caller itself. */
static void test_client_calls_carry_the_callers_identity(void **state)
{
    (void)state;
    struct node a, b;
    start(&a, 1, &certs[1], &ca, NULL);
    start(&b, 2, &certs[2], &ca, NULL);
    assert_int_equal(pnet_transport_register_method(b.t, "/test.v1.Echo/Echo", &method_tag), 0);
    pnet_identity truck = {.kind = PNET_ID_CLIENT,
                           .name = "truck-7",
                           .role = PNET_ROLE_WRITER,
                           .has_vehicle = true,
                           .vehicle_id = 7};
    struct done d = {0};
    assert_int_equal(pnet_client_call(a.t, 2, b.addr, &truck, "/test.v1.Echo/Echo", "x", 1,
                                      pnet_now_ms() + WAIT_MS, on_done, &d),
                     0);
    pnet_event *ev = next_event(&b, PNET_EV_CALL, WAIT_MS);
    assert_non_null(ev);
    /* Field by field: the padding of @truck is not zero. */
    assert_int_equal(ev->who.kind, truck.kind);
    assert_string_equal(ev->who.name, truck.name);
    assert_int_equal(ev->who.role, truck.role);
    assert_true(ev->who.has_vehicle);
    assert_int_equal(ev->who.vehicle_id, 7);
    assert_int_equal(ev->who.node_id, 0);
    assert_int_equal(ev->via, 1);
    assert_int_equal(pnet_call_reply(ev->call, "y", 1), 0);
    pnet_event_free(ev);
    run_done(&a);
    assert_int_equal(d.status, 0);

    /* Without a caller, the call is the node's own. */
    memset(&d, 0, sizeof(d));
    assert_int_equal(pnet_client_call(a.t, 2, b.addr, NULL, "/test.v1.Echo/Echo", "x", 1,
                                      pnet_now_ms() + WAIT_MS, on_done, &d),
                     0);
    ev = next_event(&b, PNET_EV_CALL, WAIT_MS);
    assert_non_null(ev);
    assert_int_equal(ev->who.kind, PNET_ID_NODE);
    assert_int_equal(ev->who.node_id, 1);
    assert_int_equal(ev->via, 0);
    assert_int_equal(pnet_call_reply(ev->call, "y", 1), 0);
    pnet_event_free(ev);
    run_done(&a);

    /* Node 2 answering where node 3 was expected: the caller refuses the connection. */
    memset(&d, 0, sizeof(d));
    assert_int_equal(pnet_client_call(a.t, 3, b.addr, NULL, "/test.v1.Echo/Echo", "x", 1,
                                      pnet_now_ms() + 3000, on_done, &d),
                     0);
    run_done(&a);
    assert_int_not_equal(d.status, 0);
    assert_null(next_event(&b, PNET_EV_CALL, 200));
    node_stop(&a);
    node_stop(&b);
}

/* After a reload with a revocation list, the revoked node's next lane is refused. */
static void test_reload_revokes(void **state)
{
    (void)state;
    struct node a, b;
    start(&a, 1, &certs[1], &ca, NULL);
    start(&b, 2, &certs[2], &ca, NULL);
    assert_int_equal(pnet_transport_set_peer(a.t, 2, b.addr), 0);
    send_heartbeat(&a, 2, 1);
    praft_msg *m = next_msg(&b, WAIT_MS);
    assert_non_null(m);
    pnet_msg_free(m);

    char *crl = tp_crl(&ca, &certs[1]);
    pnet_tls *fresh = material(&certs[2], &ca, 2, crl, 2);
    assert_int_equal(pnet_transport_set_tls(b.t, fresh), 0);
    pnet__tls_unref(fresh);
    free(crl);
    /* The lane already open may still deliver what was in flight; make node 1 dial anew, as
     * it would after any break, and nothing more arrives. */
    pnet_tls *again = material(&certs[1], &ca, 1, NULL, 2);
    assert_int_equal(pnet_transport_set_tls(a.t, again), 0);
    pnet__tls_unref(again);
    node_drop_events(&b);
    for (int i = 0; i < 5; i++) {
        send_heartbeat(&a, 2, 2);
    }
    m = next_msg(&b, QUIET_MS);
    assert_null(m);
    pnet_transport_stats st;
    pnet_transport_stats_get(b.t, &st);
    assert_true(st.calls_refused >= 1);

    /* A plaintext transport cannot take TLS material later. */
    struct node plain;
    node_start(&plain, 3);
    pnet_tls *t3 = material(&certs[3], &ca, 3, NULL, 1);
    assert_int_equal(pnet_transport_set_tls(plain.t, t3), PT_EINVAL);
    pnet__tls_unref(t3);
    node_stop(&plain);
    node_stop(&a);
    node_stop(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nodes_talk_over_mutual_tls),
        cmocka_unit_test(test_impostors_deliver_nothing),
        cmocka_unit_test(test_client_calls_carry_the_callers_identity),
        cmocka_unit_test(test_reload_revokes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
