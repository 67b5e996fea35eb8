/*
 * Member addresses: their form, whether two of them name the same endpoint, and whether this
 * machine can listen on one. Every check runs before anything is written, so that a refused
 * start or membership change leaves no trace.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/hostport.h"
#include "node/node_internal.h"

static bool parse_port(const char *s, unsigned *out)
{
    if (*s == '\0' || strlen(s) > 5) {
        return false;
    }
    unsigned v = 0;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return false;
        }
        v = v * 10 + (unsigned)(*s - '0');
    }
    *out = v;
    return v <= 65535;
}

/* Whether @host is a form a resolver accepts: an IPv4 literal, an IPv6 literal (given in
 * brackets, which pt__split_host_port() removed: @bracketed), or a DNS name of letters, digits, '-'
 * and '_' in dot-separated labels of 1 to 63 characters (RFC 1123, with the underscore that service
 * names use). Anything else (spaces, '%', control characters) can only be a mistake, and once
 * in the configuration it would be dialled forever. */
static bool host_form_ok(const char *host, bool bracketed)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (bracketed) {
        return inet_pton(AF_INET6, host, buf) == 1;
    }
    size_t len = strlen(host);
    if (len == 0 || len > 253) {
        return false;
    }
    size_t label = 0;
    for (const char *c = host; *c != '\0'; c++) {
        if (*c == '.') {
            if (label == 0) {
                return false;
            }
            label = 0;
            continue;
        }
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '-' || *c == '_';
        if (!ok || ++label > 63) {
            return false;
        }
    }
    return true;
}

int pnode__address_check(const char *addr, bool allow_port_0, char *why, size_t cap)
{
    char host[PRAFT_ADDRESS_MAX], port[8];
    unsigned p = 0;
    if (strlen(addr) >= PRAFT_ADDRESS_MAX) {
        snprintf(why, cap, "address %.40s... is longer than %d bytes", addr, PRAFT_ADDRESS_MAX - 1);
        return PT_EINVAL;
    }
    for (const char *c = addr; *c != '\0'; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            snprintf(why, cap, "address contains a control character (byte 0x%02x at %zu)",
                     (unsigned)(unsigned char)*c, (size_t)(c - addr));
            return PT_EINVAL;
        }
    }
    if (strstr(addr, "://") != NULL) {
        snprintf(why, cap, "address %s must be HOST:PORT, without a scheme", addr);
        return PT_EINVAL;
    }
    if (!pt__split_host_port(addr, host, sizeof(host), port, sizeof(port)) || host[0] == '\0' ||
        !parse_port(port, &p)) {
        snprintf(why, cap, "address %s must be HOST:PORT with a port in [1, 65535]", addr);
        return PT_EINVAL;
    }
    if (!host_form_ok(host, addr[0] == '[')) {
        snprintf(why, cap,
                 "address %s: the host must be an IPv4 address, [IPv6] or a DNS name "
                 "(letters, digits, '-', '_' and dots)",
                 addr);
        return PT_EINVAL;
    }
    if (p == 0 && !allow_port_0) {
        snprintf(why, cap, "address %s has port 0, which nobody can dial: give the real port",
                 addr);
        return PT_EINVAL;
    }
    return 0;
}

static bool is_wildcard(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 || host[0] == '\0';
}

/* True when some address of @a_host equals some address of @b_host (both resolved). */
static bool same_host(const char *a_host, const char *b_host)
{
    if (strcmp(a_host, b_host) == 0) {
        return true;
    }
    struct addrinfo hints, *a = NULL, *b = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    bool same = false;
    if (getaddrinfo(a_host, NULL, &hints, &a) == 0 && getaddrinfo(b_host, NULL, &hints, &b) == 0) {
        for (const struct addrinfo *x = a; x != NULL && !same; x = x->ai_next) {
            for (const struct addrinfo *y = b; y != NULL && !same; y = y->ai_next) {
                if (x->ai_family != y->ai_family || x->ai_addrlen != y->ai_addrlen) {
                    continue;
                }
                if (x->ai_family == AF_INET) {
                    same = memcmp(&((const struct sockaddr_in *)(const void *)x->ai_addr)->sin_addr,
                                  &((const struct sockaddr_in *)(const void *)y->ai_addr)->sin_addr,
                                  sizeof(struct in_addr)) == 0;
                } else if (x->ai_family == AF_INET6) {
                    same =
                        memcmp(&((const struct sockaddr_in6 *)(const void *)x->ai_addr)->sin6_addr,
                               &((const struct sockaddr_in6 *)(const void *)y->ai_addr)->sin6_addr,
                               sizeof(struct in6_addr)) == 0;
                }
            }
        }
    }
    if (a != NULL) {
        freeaddrinfo(a);
    }
    if (b != NULL) {
        freeaddrinfo(b);
    }
    return same;
}

bool pnode__same_endpoint(const char *a, const char *b)
{
    char ah[PRAFT_ADDRESS_MAX], ap[8], bh[PRAFT_ADDRESS_MAX], bp[8];
    if (strcmp(a, b) == 0) {
        return true;
    }
    if (!pt__split_host_port(a, ah, sizeof(ah), ap, sizeof(ap)) ||
        !pt__split_host_port(b, bh, sizeof(bh), bp, sizeof(bp))) {
        return false;
    }
    unsigned pa, pb;
    if (!parse_port(ap, &pa) || !parse_port(bp, &pb) || pa != pb) {
        return false;
    }
    return same_host(ah, bh);
}

bool pnode__listen_serves(const char *listen, const char *advertised)
{
    char lh[PRAFT_ADDRESS_MAX], lp[8], ah[PRAFT_ADDRESS_MAX], ap[8];
    if (pnode__same_endpoint(listen, advertised)) {
        return true;
    }
    if (!pt__split_host_port(listen, lh, sizeof(lh), lp, sizeof(lp)) ||
        !pt__split_host_port(advertised, ah, sizeof(ah), ap, sizeof(ap))) {
        return false;
    }
    unsigned pl, pa;
    /* Listening on every interface serves any address of this machine on that port. */
    return is_wildcard(lh) && parse_port(lp, &pl) && parse_port(ap, &pa) && pl == pa;
}

int pnode__bind_probe(const char *listen, char *why, size_t cap)
{
    char host[PRAFT_ADDRESS_MAX], port[8];
    if (!pt__split_host_port(listen, host, sizeof(host), port, sizeof(port))) {
        snprintf(why, cap, "cannot listen on %s: not HOST:PORT", listen);
        return PT_EINVAL;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int g = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, &res);
    if (g != 0) {
        snprintf(why, cap, "cannot listen on %s: %s", listen, gai_strerror(g));
        return PT_EIO;
    }
    int rc = 0;
    for (const struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, a->ai_addr, a->ai_addrlen) != 0) {
            int e = errno;
            snprintf(why, cap, "cannot listen on %s: %s", listen,
                     e == EADDRINUSE      ? "the address is already in use"
                     : e == EADDRNOTAVAIL ? "not an address of this machine"
                                          : strerror(e));
            rc = PT_EIO;
        }
        close(fd);
        if (rc != 0) {
            break;
        }
    }
    freeaddrinfo(res);
    return rc;
}
