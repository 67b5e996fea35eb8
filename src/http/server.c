/*
 * The node's HTTP endpoint (http.h): a libmicrohttpd daemon with a thread per connection (at
 * most 64) on a socket this file binds itself (so that a port in use is reported in our words, and
 * so that a TLS reload can restart the daemon on the same socket without a moment in which
 * nothing listens).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "common/hostport.h"
#include "common/log.h"
#include "http/http.h"
#include "http/live.h"
#include "platoon/monitor.h"

/* The live view's page (live.html, embedded by the build: live_page.c). */
extern const unsigned char phttp__live_page[];
extern const size_t phttp__live_page_len;

/* TLS 1.2 and 1.3 only, as gRPC's side of the node. */
#define PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct phttp {
    pnode *node;
    int fd; /* the listening socket; each daemon gets a duplicate of it */
    int port;
    pthread_mutex_t mu; /* guards daemon and tls */
    struct MHD_Daemon *daemon;
    pnet_tls *tls;    /* NULL: plain HTTP (the node runs --insecure) */
    phttp_live *live; /* the live view's feed */
};

/* "HOST:PORT" or "[HOST]:PORT" into @host (may be "", any address) and @port, a number in
 * [0, 65535]. */
static bool split(const char *address, char *host, size_t host_cap, char *port, size_t port_cap)
{
    if (!pt__split_host_port(address, host, host_cap, port, port_cap)) {
        return false;
    }
    for (const char *d = port; *d != '\0'; d++) {
        if (*d < '0' || *d > '9') {
            return false;
        }
    }
    return atoi(port) <= 65535;
}

static int listen_on(const char *address, int *fd_out, int *port_out, char *err, size_t cap)
{
    char host[256], port[8];
    if (!split(address, host, sizeof(host), port, sizeof(port))) {
        snprintf(err, cap, "cannot serve HTTP on %s: not HOST:PORT with a port in [0, 65535]",
                 address);
        return PT_EINVAL;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int g = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, &res);
    if (g != 0) {
        snprintf(err, cap, "cannot serve HTTP on %s: %s", address, gai_strerror(g));
        return PT_EIO;
    }
    int rc = PT_EIO;
    int e = EADDRNOTAVAIL;
    for (const struct addrinfo *a = res; a != NULL && rc != 0; a = a->ai_next) {
        int fd =
            socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 64) != 0) {
            e = errno;
            close(fd);
            continue;
        }
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        socklen_t sl = sizeof(ss);
        int p = 0;
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
            p = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
        *fd_out = fd;
        *port_out = p;
        rc = 0;
    }
    freeaddrinfo(res);
    if (rc != 0) {
        snprintf(err, cap, "cannot serve HTTP on %s: %s", address,
                 e == EADDRINUSE      ? "the address is already in use"
                 : e == EADDRNOTAVAIL ? "not an address of this machine"
                                      : strerror(e));
    }
    return rc;
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned int status, char *body,
                               size_t len, bool owned, const char *type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        if (owned) {
            free(body);
        }
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned int status, const char *fmt,
                                    ...) __attribute__((format(printf, 3, 4)));

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned int status, const char *fmt,
                                    ...)
{
    char body[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(body, sizeof(body) - 1, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(body) - 1 ? (size_t)n : sizeof(body) - 2;
    body[len++] = '\n';
    return respond(c, status, body, len, false, "text/plain; charset=utf-8");
}

/* With TLS: whether the client presented a certificate that may read metrics and the live
 * view (reader role or above, as Cluster/Status and WatchPlatoon over gRPC). On refusal the
 * answer is queued and false returned. */
static bool authorized(phttp *h, struct MHD_Connection *c, enum MHD_Result *answer)
{
    pthread_mutex_lock(&h->mu);
    pnet_tls *tls = h->tls;
    if (tls != NULL) {
        pnet__tls_ref(tls);
    }
    pthread_mutex_unlock(&h->mu);
    if (tls == NULL) {
        return true; /* --insecure: nobody is anybody, as on the gRPC port */
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    const gnutls_datum_t *peers = NULL;
    unsigned int n = 0;
    if (ci != NULL && ci->tls_session != NULL) {
        peers = gnutls_certificate_get_peers((gnutls_session_t)ci->tls_session, &n);
    }
    if (peers == NULL) {
        n = 0;
    }
    enum { MAX_CHAIN = 8 };
    const unsigned char *der[MAX_CHAIN];
    size_t der_len[MAX_CHAIN];
    for (unsigned int i = 0; i < n && i < MAX_CHAIN; i++) {
        der[i] = peers[i].data;
        der_len[i] = peers[i].size;
    }
    pnet_identity who;
    char why[300];
    int rc =
        phttp__check_peer(tls, der, der_len, n < MAX_CHAIN ? n : MAX_CHAIN, &who, why, sizeof(why));
    pnet__tls_unref(tls);
    if (rc != 0) {
        *answer = respond_text(c, MHD_HTTP_UNAUTHORIZED, "%s", why);
        return false;
    }
    if (who.role < PNET_ROLE_READER) {
        *answer = respond_text(c, MHD_HTTP_FORBIDDEN,
                               "'%s' may not read the platoon or its "
                               "metrics: the reader role or above is needed",
                               who.name);
        return false;
    }
    return true;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    phttp *h = cls;
    (void)version;
    (void)upload_data;
    (void)req_cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD are served");
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* a GET with a body: ignored */
    }
    if (strcmp(url, "/healthz") == 0) {
        return respond_text(c, MHD_HTTP_OK, "ok");
    }
    if (strcmp(url, "/readyz") == 0) {
        char why[256];
        if (pnode_ready(h->node, why, sizeof(why))) {
            return respond_text(c, MHD_HTTP_OK, "ok");
        }
        return respond_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "%s", why);
    }
    if (strcmp(url, "/metrics") == 0) {
        enum MHD_Result answer = MHD_NO;
        if (!authorized(h, c, &answer)) {
            return answer;
        }
        char *text = NULL;
        size_t len = 0;
        if (pnode_metrics_text(h->node, &text, &len) != 0) {
            return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        }
        return respond(c, MHD_HTTP_OK, text, len, true, "text/plain; version=0.0.4; charset=utf-8");
    }
    /* The live view: its page and its feed, readers only (they show the whole platoon). */
    bool page = strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0;
    bool events = strcmp(url, "/api/events") == 0;
    bool cluster = strcmp(url, "/api/cluster") == 0;
    if (page || events || cluster) {
        enum MHD_Result answer = MHD_NO;
        if (!authorized(h, c, &answer)) {
            return answer;
        }
        if (page) {
            return respond(c, MHD_HTTP_OK, (char *)phttp__live_page, phttp__live_page_len, false,
                           "text/html; charset=utf-8");
        }
        if (cluster) {
            size_t len = 0;
            char *json = phttp__live_cluster_json(h->node, &len);
            if (json == NULL) {
                return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
            }
            return respond(c, MHD_HTTP_OK, json, len, true, "application/json");
        }
        unsigned int status = MHD_HTTP_SERVICE_UNAVAILABLE;
        struct MHD_Response *r =
            h->live != NULL
                ? phttp__live_events(
                      h->live, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID"),
                      &status)
                : NULL;
        if (r == NULL) {
            return respond_text(c, status, "%s",
                                status == MHD_HTTP_SERVICE_UNAVAILABLE
                                    ? "too many live views open on this node: try later"
                                    : "out of memory");
        }
        enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return ok;
    }
    return respond_text(c, MHD_HTTP_NOT_FOUND,
                        "not found: try / (the live view), /healthz, /readyz or /metrics");
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (pt__log_enabled(PT_LOG_DEBUG)) {
        char line[512];
        vsnprintf(line, sizeof(line), fmt, ap);
        line[strcspn(line, "\n")] = '\0';
        pt__log(PT_LOG_DEBUG, "http: %s", line);
    }
}

/* A daemon with @tls's certificate (NULL: plain HTTP) on a duplicate of h->fd: each daemon
 * closes its own descriptor when it stops, and h->fd stays open throughout, so a reload can
 * run two daemons on the one socket for a moment and nothing is ever refused.
 *
 * poll(), not epoll: libmicrohttpd 0.9.75 can abort the process when a daemon that polls with
 * epoll on threads of its own is quiesced (MHD_quiesce_daemon and the daemon's threads race to
 * remove the listening socket from the epoll set, and the loser panics), which a reload does. */
static struct MHD_Daemon *daemon_start(phttp *h, const pnet_tls *tls)
{
    /* A thread per connection: a live view is one long response whose reader waits for the
     * next change, which would hold a pooled thread; the connection limit bounds the threads. */
    unsigned int flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                         MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    int fd = fcntl(h->fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        return NULL;
    }
    /* On a failed start the duplicate may be left open: libmicrohttpd may or may not have
     * closed it, and closing a descriptor twice could close another thread's. */
    /* The logger first: options before it would log to stderr, which a library must not. */
    if (tls == NULL) {
        return MHD_start_daemon(flags, 0, NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER,
                                mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
                                MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_CONNECTION_LIMIT,
                                64u, MHD_OPTION_END);
    }
    /* MHD_OPTION_HTTPS_MEM_TRUST makes GnuTLS ask for a client certificate without requiring
     * one (GNUTLS_CERT_REQUEST): the chain is checked per request (peer.c). */
    return MHD_start_daemon(flags | MHD_USE_TLS, 0, NULL, NULL, handle, h,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
                            MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_CONNECTION_LIMIT, 64u,
                            MHD_OPTION_HTTPS_MEM_KEY, tls->key_pem, MHD_OPTION_HTTPS_MEM_CERT,
                            tls->cert_pem, MHD_OPTION_HTTPS_MEM_TRUST, tls->ca_pem,
                            MHD_OPTION_HTTPS_PRIORITIES, PRIORITIES, MHD_OPTION_END);
}

int phttp__start(pnode *node, const char *address, pnet_tls *tls, pnet_transport *net, uint64_t id,
                 const char *grpc_address, phttp **out, char *err, size_t cap)
{
    phttp *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        snprintf(err, cap, "out of memory");
        return PT_ENOMEM;
    }
    h->node = node;
    h->fd = -1;
    pthread_mutex_init(&h->mu, NULL);
    int rc = listen_on(address, &h->fd, &h->port, err, cap);
    if (rc != 0) {
        goto fail;
    }
    rc = phttp__live_start(node, net, id, grpc_address, &h->live, err, cap);
    if (rc != 0) {
        goto fail;
    }
    h->daemon = daemon_start(h, tls);
    if (h->daemon == NULL) {
        snprintf(err, cap, "cannot serve HTTP on %s: the HTTP server did not start%s", address,
                 tls != NULL ? " (is the TLS key usable by GnuTLS?)" : "");
        rc = PT_EIO;
        goto fail;
    }
    if (tls != NULL) {
        pnet__tls_ref(tls);
        h->tls = tls;
    }
    PT_INFO("HTTP endpoint on %s (port %d, %s): / (the live view) /healthz /readyz /metrics",
            address, h->port,
            tls != NULL ? "HTTPS; the live view and /metrics need a client certificate"
                        : "plain HTTP");
    *out = h;
    return 0;
fail:
    phttp__live_stop(h->live);
    if (h->fd >= 0) {
        close(h->fd);
    }
    pthread_mutex_destroy(&h->mu);
    free(h);
    return rc;
}

void phttp__set_tls(phttp *h, pnet_tls *tls)
{
    if (h == NULL || tls == NULL) {
        return;
    }
    /* A daemon's certificate is fixed when it starts: start a new one on the same socket, then
     * retire the old one. */
    pthread_mutex_lock(&h->mu);
    struct MHD_Daemon *fresh = daemon_start(h, tls);
    if (fresh == NULL) {
        pthread_mutex_unlock(&h->mu);
        /* Cannot happen with material that pnet__tls_load accepted; keep serving. */
        PT_WARN("HTTP endpoint: the new certificate could not be used; keeping the old one");
        return;
    }
    pnet__tls_ref(tls);
    struct MHD_Daemon *old = h->daemon;
    pnet_tls *old_tls = h->tls;
    h->daemon = fresh;
    h->tls = tls;
    pthread_mutex_unlock(&h->mu);
    if (old != NULL) {
        /* The old daemon stops accepting; the requests it took may finish, for a moment:
         * stopping it closes whatever connections it still has. */
        MHD_socket old_fd = MHD_quiesce_daemon(old);
        for (int i = 0; i < 200; i++) {
            const union MHD_DaemonInfo *di =
                MHD_get_daemon_info(old, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
            if (di == NULL || di->num_connections == 0) {
                break;
            }
            struct timespec ts = {0, 10000000};
            nanosleep(&ts, NULL);
        }
        MHD_stop_daemon(old);
        if (old_fd != MHD_INVALID_SOCKET) {
            close(old_fd); /* a quiesced daemon leaves its socket to the caller */
        }
    }
    pnet__tls_unref(old_tls); /* the old daemon, which used it, is gone */
}

int phttp__port(const phttp *h)
{
    return h != NULL ? h->port : 0;
}

void phttp__stop(phttp *h)
{
    if (h == NULL) {
        return;
    }
    /* Live views end at their next wake-up (at most half a second) once the feed stops; the
     * daemon waits for their threads, so none outlives the feed. */
    phttp__live_quit(h->live);
    if (h->daemon != NULL) {
        MHD_stop_daemon(h->daemon); /* closes its duplicate of the socket */
    }
    if (h->fd >= 0) {
        close(h->fd);
    }
    phttp__live_stop(h->live);
    pnet__tls_unref(h->tls);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
