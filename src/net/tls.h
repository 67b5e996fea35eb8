/*
 * A node's TLS material: the CA it trusts, its own certificate and key, and an optional
 * revocation list, read from files and checked together (see docs/security.md).
 *
 * Why an immutable, reference-counted object: the material is used from several threads at
 * once (gRPC's handshakes ask the server for its configuration, each outbound channel checks
 * its peer's certificate, the completion-queue thread checks callers against the revocation
 * list), and a reload (SIGHUP) must replace all of it at one moment without stopping any of
 * them. So a reload builds a whole new object, checks it, and swaps the transport's pointer;
 * whoever still holds the old one keeps a consistent view until it lets go.
 */
#ifndef PLATOON_NET_TLS_H
#define PLATOON_NET_TLS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "net/identity.h"

typedef struct pnet_tls {
    atomic_int refs;
    uint64_t generation; /* increases with every reload: caches keyed on it are invalidated */
    char *ca_pem;        /* the CA bundle (one or more certificates, e.g. old and new CA) */
    char *cert_pem;      /* this node's certificate (and any intermediate certificates) */
    char *key_pem;       /* its private key */
    pnet_crl *crl;       /* NULL without a revocation list */
    pnet_identity self;  /* who the certificate names */
    char subject[256];   /* its subject, for messages */
} pnet_tls;

/* Where the material comes from. ca, cert and key are required; crl may be NULL. */
typedef struct pnet_tls_files {
    const char *ca;
    const char *cert;
    const char *key;
    const char *crl;
} pnet_tls_files;

/*
 * Reads and checks the files: the certificate must chain to the CA and be valid now, the key
 * must match it, the certificate must name node @node_id (0: any identity, for clients), and
 * the revocation list must be signed by the CA and must not list the certificate itself.
 * On success *out holds one reference. On failure @err receives one line naming the file and
 * the reason. Errors: PT_EIO (a file cannot be read), PT_EINVAL (the material does not fit
 * together), PT_ENOMEM.
 */
int pnet__tls_load(const pnet_tls_files *files, uint64_t node_id, uint64_t generation,
                   pnet_tls **out, char *err, size_t cap);

void pnet__tls_ref(pnet_tls *tls);
void pnet__tls_unref(pnet_tls *tls); /* NULL is ok */

#endif
