/*
 * Who a certificate names (docs/security.md): the identities of Platoon's mutual TLS, parsed
 * from X.509 certificates with OpenSSL's libcrypto, and the revocation list that can take them
 * back. Pure functions, no gRPC: the transport (auth.c) calls them.
 *
 * THE CONVENTION (what `platoonctl certs` makes; any CA may issue the same):
 *  - Node certificate: Subject CN=node-<id> (decimal, 1..2^64-1, no sign, no leading zero),
 *    O=platoon, OU=node; SAN DNS:node-<id> (peers dial each other with that TLS name, so the
 *    identity is verified whatever the address), plus the hosts clients reach it at. A
 *    certificate with OU=node whose CN is not a valid node-<id> names nobody.
 *  - Client certificate: Subject CN=<name> (1..64 of [A-Za-z0-9._@-], not starting with
 *    "node-"), O=platoon, OU=reader|writer|admin. Optional write scope: exactly one SAN
 *    URI:urn:platoon:vehicle:<id>. Missing or unknown OU names nobody.
 */
#ifndef PLATOON_NET_IDENTITY_H
#define PLATOON_NET_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pnet_id_kind {
    PNET_ID_NONE = 0, /* no TLS: anonymous, and allowed everything */
    PNET_ID_NODE = 1,
    PNET_ID_CLIENT = 2,
};

enum pnet_role {
    PNET_ROLE_READER = 1,
    PNET_ROLE_WRITER = 2,
    PNET_ROLE_ADMIN = 3, /* nodes count as admins */
};

#define PNET_NAME_MAX 128

typedef struct pnet_identity {
    int kind;                 /* enum pnet_id_kind */
    uint64_t node_id;         /* PNET_ID_NODE */
    char name[PNET_NAME_MAX]; /* "node-3", "alice" */
    int role;                 /* enum pnet_role */
    bool has_vehicle;         /* a client bound to one vehicle */
    uint64_t vehicle_id;
} pnet_identity;

/*
 * Parses the first certificate of @pem (@len bytes, need not be NUL-terminated) by the
 * convention above into @out. Returns 0, or PT_EMALFORMED with one line in @err saying why
 * (naming the certificate's subject when there is one), or PT_ENOMEM.
 */
int pnet__identity_from_pem(const char *pem, size_t len, pnet_identity *out, char *err,
                            size_t errlen);

/* "reader", "writer", "admin", or "?" ; and back (0, or -1 for an unknown name). */
const char *pnet__role_name(int role);
int pnet__role_parse(const char *name, int *role);

/*
 * A forwarded identity as one metadata value (printable ASCII, at most @cap - 1 bytes):
 * "v1;k=<kind>;n=<node id>;r=<role>;v=<vehicle or ->;c=<name, percent-encoded>".
 * encode returns 0 or PT_ETOOBIG; decode returns 0 or PT_EMALFORMED for anything that
 * encode could not have produced (it is given bytes from the network).
 */
int pnet__identity_encode(const pnet_identity *id, char *out, size_t cap);
int pnet__identity_decode(const char *s, size_t len, pnet_identity *out);

/* A revocation list, immutable once loaded (safe to share between threads). */
typedef struct pnet_crl pnet_crl;

/*
 * Loads the PEM X.509 CRL at @path and checks that it is signed by a CA certificate of the
 * PEM bundle at @ca_path. Returns 0, or PT_EIO (a file cannot be read), PT_EMALFORMED (not a
 * CRL, or not signed by that CA), PT_ENOMEM, with one line in @err.
 */
int pnet__crl_load(const char *path, const char *ca_path, pnet_crl **out, char *err, size_t errlen);

/* Whether the first certificate of @pem is on the list (its serial, from the list's issuer).
 * A certificate that cannot be parsed counts as revoked. */
bool pnet__crl_revoked(const pnet_crl *crl, const char *pem, size_t len);

void pnet__crl_free(pnet_crl *crl); /* NULL is ok */

#endif
