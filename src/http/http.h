/*
 * The node's HTTP endpoint (platoon/monitor.h, pnode_http_start): the live view (/, live.h),
 * /healthz, /readyz and /metrics, served by libmicrohttpd on threads of its own. It reads the node
 * only through thread-safe public functions (pnode_ready, pnode_metrics_text), so it never holds up
 * the node's loop.
 *
 *   server.c  the listening socket, the daemon, the routes, reloads
 *   live.c    the live view's feed: a watch of this node, one event stream per browser
 *   peer.c    who a TLS client is: its certificate chain checked with OpenSSL against the
 *             node's current CA and revocation list, and its role (net/identity.h)
 */
#ifndef PLATOON_HTTP_HTTP_H
#define PLATOON_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <stdint.h>

#include "net/identity.h"
#include "net/tls.h"
#include "net/transport.h"
#include "platoon/node.h"

typedef struct phttp phttp;

/*
 * Listens on @address ("HOST:PORT", "[v6]:PORT"; port 0 picks one) and serves @node. With @tls
 * (a reference is taken) the endpoint speaks HTTPS with @tls's certificate, and /metrics and
 * the live view need a client certificate that phttp__check_peer accepts. The live view
 * watches @node through its gRPC service on @grpc_address, dialled through @net as member
 * @id (live.h). Returns 0, or PT_EINVAL / PT_EIO / PT_ENOMEM with one line in @err naming the
 * address.
 */
int phttp__start(pnode *node, const char *address, pnet_tls *tls, pnet_transport *net, uint64_t id,
                 const char *grpc_address, phttp **out, char *err, size_t cap);

/* Stops serving (waits for the threads) and frees @h. NULL is ok. */
void phttp__stop(phttp *h);

/* Uses @tls from now on (a reference is taken): the CA and revocation list for the next
 * request, the certificate for the next connection (the daemon is restarted on the same
 * socket; requests in flight on the old one may be cut). Errors are logged; the endpoint keeps
 * serving. */
void phttp__set_tls(phttp *h, pnet_tls *tls);

/* The port listened on. */
int phttp__port(const phttp *h);

/*
 * Checks a client's certificate chain (@der: @n DER certificates, the client's own first)
 * against @tls: it must chain to the CA, be valid now, fit for client authentication, not be
 * revoked and name an identity (net/identity.h) into @who. Returns 0, or PT_EINVAL (refused) or
 * PT_ENOMEM with one line in @why.
 */
int phttp__check_peer(const pnet_tls *tls, const unsigned char *const *der, const size_t *der_len,
                      size_t n, pnet_identity *who, char *why, size_t cap);

#endif
