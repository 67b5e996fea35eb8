/*
 * Transports in one test process (tests of the transport, plain and with TLS): a node is a
 * transport with its mailbox, and the events taken from it that a test has not consumed yet.
 */
#ifndef PLATOON_TESTS_NET_TNODE_H
#define PLATOON_TESTS_NET_TNODE_H

#include <stdint.h>

#include "net/mailbox.h"
#include "net/tls.h"
#include "net/transport.h"

/* Generous bound for anything to arrive on loopback (a slow, loaded CI machine under ASan). */
#define WAIT_MS 30000

struct node {
    uint64_t id;
    pnet_mailbox *mb;
    pnet_transport *t;
    char addr[64];
    pnet_event *head, *tail; /* events taken from the mailbox, not yet consumed */
};

/* Starts node @id listening at @listen ("127.0.0.1:0": any port), with TLS material @tls
 * (NULL: plaintext). */
void node_start_tls(struct node *n, uint64_t id, const char *listen, pnet_tls *tls);
void node_start_at(struct node *n, uint64_t id, const char *listen);
void node_start(struct node *n, uint64_t id);
/* Starts node @id on any port with @io_threads I/O threads (and half as many senders). */
void node_start_threads(struct node *n, uint64_t id, int io_threads);
/* Starts node @id on any port with @methods registered with gRPC before its server starts
 * (pnet_transport_options.methods). */
void node_start_methods(struct node *n, uint64_t id, const char *const *methods, size_t count);
void node_drop_events(struct node *n);
void node_stop(struct node *n);
/* The next event of @type (others of other types are kept), or NULL after @wait_ms. */
pnet_event *next_event(struct node *n, uint32_t type, int64_t wait_ms);
praft_msg *next_msg(struct node *n, int64_t wait_ms);

/* A client call's completion, recorded. */
struct done {
    int calls;
    int status;
    char message[128];
    uint8_t data[128];
    size_t len;
};
void on_done(void *ctx, int status, const char *message, const uint8_t *data, size_t len);
/* Waits for @n's next client completion and runs it. */
void run_done(struct node *n);

#endif
