/*
 * Loading and checking a node's TLS material (tls.h). Everything is checked here, at start and
 * at every reload, so that a mistake (a key of another certificate, a certificate of another
 * node or CA, an expired one) is one clear line naming the file, instead of handshakes that
 * fail later with a message from deep inside the TLS library.
 */
#include "net/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "platoon/error.h"

/* Certificates, keys and revocation lists are small; anything bigger is not one of them. */
#define TLS_FILE_MAX (1u << 20)

static int read_file(const char *what, const char *path, char **out, char *err, size_t cap)
{
    int rc = 0;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, cap, "%s %s: %s", what, path, strerror(errno));
        return PT_EIO;
    }
    buf = malloc(TLS_FILE_MAX + 1);
    if (buf == NULL) {
        rc = PT_ENOMEM;
        goto out;
    }
    size_t n = fread(buf, 1, TLS_FILE_MAX + 1, f);
    if (ferror(f)) {
        snprintf(err, cap, "%s %s: cannot read it", what, path);
        rc = PT_EIO;
        goto out;
    }
    if (n > TLS_FILE_MAX || n == 0) {
        snprintf(err, cap, "%s %s: %s", what, path,
                 n == 0 ? "the file is empty" : "larger than 1 MiB, not a PEM file");
        rc = PT_EINVAL;
        goto out;
    }
    buf[n] = '\0';
    if (strlen(buf) != n) {
        snprintf(err, cap, "%s %s: not a PEM file (binary data)", what, path);
        rc = PT_EINVAL;
        goto out;
    }
    *out = buf;
    buf = NULL;
out:
    free(buf);
    fclose(f);
    return rc;
}

/* The certificates of a PEM text, in order. NULL if there is none. */
static STACK_OF(X509) * pem_certs(const char *pem)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (sk == NULL || bio == NULL) {
        goto fail;
    }
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (sk_X509_push(sk, x) <= 0) {
            X509_free(x);
            goto fail;
        }
    }
    ERR_clear_error(); /* the end of the text reads as an error */
    BIO_free(bio);
    if (sk_X509_num(sk) == 0) {
        sk_X509_free(sk);
        return NULL;
    }
    return sk;
fail:
    BIO_free(bio);
    sk_X509_pop_free(sk, X509_free);
    return NULL;
}

static void subject_of(X509 *x, char *out, size_t cap)
{
    out[0] = '\0';
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        return;
    }
    if (X509_NAME_print_ex(bio, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
        int n = BIO_read(bio, out, (int)cap - 1);
        out[n > 0 ? n : 0] = '\0';
    }
    BIO_free(bio);
}

/* Checks that @chain[0] chains to a CA of @cas and is valid now. */
static int verify_chain(STACK_OF(X509) * cas, STACK_OF(X509) * chain, const pnet_tls_files *f,
                        char *err, size_t cap)
{
    int rc = PT_ENOMEM;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    if (store == NULL || ctx == NULL || untrusted == NULL) {
        goto out;
    }
    for (int i = 0; i < sk_X509_num(cas); i++) {
        if (X509_STORE_add_cert(store, sk_X509_value(cas, i)) != 1) {
            goto out;
        }
    }
    for (int i = 1; i < sk_X509_num(chain); i++) {
        if (sk_X509_push(untrusted, sk_X509_value(chain, i)) <= 0) {
            goto out;
        }
    }
    if (X509_STORE_CTX_init(ctx, store, sk_X509_value(chain, 0), untrusted) != 1) {
        goto out;
    }
    if (X509_verify_cert(ctx) != 1) {
        int e = X509_STORE_CTX_get_error(ctx);
        snprintf(err, cap, "--tls-cert %s: not valid with the CA of --tls-ca %s: %s", f->cert,
                 f->ca, X509_verify_cert_error_string(e));
        rc = PT_EINVAL;
        goto out;
    }
    rc = 0;
out:
    sk_X509_free(untrusted); /* the certificates belong to @chain */
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
    return rc;
}

static int check_key(X509 *leaf, const char *key_pem, const pnet_tls_files *f, char *err,
                     size_t cap)
{
    BIO *bio = BIO_new_mem_buf(key_pem, -1);
    if (bio == NULL) {
        return PT_ENOMEM;
    }
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    int rc = 0;
    if (key == NULL) {
        snprintf(err, cap, "--tls-key %s: no private key in it (or it is encrypted)", f->key);
        rc = PT_EINVAL;
    } else if (X509_check_private_key(leaf, key) != 1) {
        snprintf(err, cap, "--tls-key %s: not the key of the certificate in --tls-cert %s", f->key,
                 f->cert);
        rc = PT_EINVAL;
    }
    EVP_PKEY_free(key);
    ERR_clear_error();
    return rc;
}

int pnet__tls_load(const pnet_tls_files *f, uint64_t node_id, uint64_t generation, pnet_tls **out,
                   char *err, size_t cap)
{
    int rc;
    STACK_OF(X509) *cas = NULL, *chain = NULL;
    pnet_tls *tls = NULL;

    if (f == NULL || f->ca == NULL || f->cert == NULL || f->key == NULL || out == NULL) {
        snprintf(err, cap, "TLS needs a CA, a certificate and a key");
        return PT_EINVAL;
    }
    tls = calloc(1, sizeof(*tls));
    if (tls == NULL) {
        return PT_ENOMEM;
    }
    atomic_init(&tls->refs, 1);
    tls->generation = generation;
    if ((rc = read_file("--tls-ca", f->ca, &tls->ca_pem, err, cap)) != 0 ||
        (rc = read_file("--tls-cert", f->cert, &tls->cert_pem, err, cap)) != 0 ||
        (rc = read_file("--tls-key", f->key, &tls->key_pem, err, cap)) != 0) {
        goto fail;
    }
    rc = PT_EINVAL;
    if ((cas = pem_certs(tls->ca_pem)) == NULL) {
        snprintf(err, cap, "--tls-ca %s: no certificate in it", f->ca);
        goto fail;
    }
    if ((chain = pem_certs(tls->cert_pem)) == NULL) {
        snprintf(err, cap, "--tls-cert %s: no certificate in it", f->cert);
        goto fail;
    }
    subject_of(sk_X509_value(chain, 0), tls->subject, sizeof(tls->subject));
    if ((rc = verify_chain(cas, chain, f, err, cap)) != 0 ||
        (rc = check_key(sk_X509_value(chain, 0), tls->key_pem, f, err, cap)) != 0) {
        goto fail;
    }
    char why[256];
    rc =
        pnet__identity_from_pem(tls->cert_pem, strlen(tls->cert_pem), &tls->self, why, sizeof(why));
    if (rc != 0) {
        snprintf(err, cap, "--tls-cert %s: %s", f->cert, why);
        goto fail;
    }
    if (node_id != 0 && (tls->self.kind != PNET_ID_NODE || tls->self.node_id != node_id)) {
        snprintf(err, cap, "--tls-cert %s: the certificate is %s's, not node %llu's (%s)", f->cert,
                 tls->self.name, (unsigned long long)node_id, tls->subject);
        rc = PT_EINVAL;
        goto fail;
    }
    if (f->crl != NULL) {
        rc = pnet__crl_load(f->crl, f->ca, &tls->crl, why, sizeof(why));
        if (rc != 0) {
            snprintf(err, cap, "--tls-crl %s: %s", f->crl, why);
            goto fail;
        }
        if (pnet__crl_revoked(tls->crl, tls->cert_pem, strlen(tls->cert_pem))) {
            snprintf(err, cap, "--tls-cert %s: the certificate is revoked by --tls-crl %s", f->cert,
                     f->crl);
            rc = PT_EINVAL;
            goto fail;
        }
    }
    sk_X509_pop_free(cas, X509_free);
    sk_X509_pop_free(chain, X509_free);
    *out = tls;
    return 0;

fail:
    sk_X509_pop_free(cas, X509_free);
    sk_X509_pop_free(chain, X509_free);
    pnet__tls_unref(tls);
    ERR_clear_error();
    return rc == PT_ENOMEM ? PT_ENOMEM : rc;
}

void pnet__tls_ref(pnet_tls *tls)
{
    atomic_fetch_add(&tls->refs, 1);
}

void pnet__tls_unref(pnet_tls *tls)
{
    if (tls == NULL || atomic_fetch_sub(&tls->refs, 1) != 1) {
        return;
    }
    free(tls->ca_pem);
    free(tls->cert_pem);
    if (tls->key_pem != NULL) {
        /* Do not leave the private key in freed memory. */
        OPENSSL_cleanse(tls->key_pem, strlen(tls->key_pem));
        free(tls->key_pem);
    }
    pnet__crl_free(tls->crl);
    free(tls);
}
