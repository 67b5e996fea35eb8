/*
 * Who an HTTPS client is. libmicrohttpd's TLS is GnuTLS, which only asks for the client's
 * certificate here (it is optional, so that load balancers can probe /healthz and /readyz
 * without one); the chain is then checked with OpenSSL against the node's current material,
 * the same CA bundle and revocation list gRPC's mutual TLS uses, and the certificate's
 * identity is read by the same code (net/identity.c). Checking here rather than in the
 * handshake is also what lets a reload of the CA and the revocation list apply to the next
 * request without restarting anything.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "http/http.h"
#include "platoon/error.h"

/* A store of every CA certificate of the PEM bundle @pem. */
static X509_STORE *ca_store(const char *pem)
{
    X509_STORE *store = X509_STORE_new();
    BIO *bio = BIO_new_mem_buf(pem, -1);
    size_t added = 0;
    if (store == NULL || bio == NULL) {
        goto fail;
    }
    X509 *ca;
    while ((ca = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        int ok = X509_STORE_add_cert(store, ca);
        X509_free(ca);
        if (ok != 1) {
            goto fail;
        }
        added++;
    }
    BIO_free(bio);
    if (added == 0) {
        X509_STORE_free(store);
        return NULL;
    }
    return store;
fail:
    BIO_free(bio);
    X509_STORE_free(store);
    return NULL;
}

int phttp__check_peer(const pnet_tls *tls, const unsigned char *const *der, const size_t *der_len,
                      size_t n, pnet_identity *who, char *why, size_t cap)
{
    int rc = PT_ENOMEM;
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509_STORE *store = ca_store(tls->ca_pem);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    BIO *pem = BIO_new(BIO_s_mem());
    snprintf(why, cap, "out of memory checking the client certificate");
    if (chain == NULL || store == NULL || ctx == NULL || pem == NULL) {
        goto out;
    }
    rc = PT_EINVAL;
    if (n == 0) {
        snprintf(why, cap, "a client certificate of the cluster's CA is required");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = der[i];
        X509 *x = d2i_X509(NULL, &p, (long)der_len[i]);
        if (x == NULL) {
            snprintf(why, cap, "the client certificate cannot be parsed");
            goto out;
        }
        if (i == 0) {
            leaf = x;
        } else if (sk_X509_push(chain, x) == 0) {
            X509_free(x);
            rc = PT_ENOMEM;
            goto out;
        }
    }
    if (X509_STORE_CTX_init(ctx, store, leaf, chain) != 1) {
        rc = PT_ENOMEM;
        goto out;
    }
    /* As a TLS server checks its clients: the certificate must allow client authentication. */
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    if (X509_verify_cert(ctx) != 1) {
        snprintf(why, cap, "client certificate refused: %s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto out;
    }
    if (PEM_write_bio_X509(pem, leaf) != 1) {
        rc = PT_ENOMEM;
        goto out;
    }
    char *text = NULL;
    long len = BIO_get_mem_data(pem, &text);
    if (tls->crl != NULL && pnet__crl_revoked(tls->crl, text, (size_t)len)) {
        snprintf(why, cap, "client certificate refused: it is revoked");
        goto out;
    }
    char err[256];
    if (pnet__identity_from_pem(text, (size_t)len, who, err, sizeof(err)) != 0) {
        snprintf(why, cap, "client certificate refused: %s", err);
        goto out;
    }
    rc = 0;
out:
    BIO_free(pem);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    sk_X509_pop_free(chain, X509_free);
    X509_free(leaf);
    return rc;
}
