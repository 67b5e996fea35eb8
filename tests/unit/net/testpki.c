/* Certificates for tests (testpki.h). */
#include "testpki.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

static char *bio_text(BIO *bio)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *out = malloc((size_t)n + 1);
    assert_non_null(out);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    return out;
}

static void add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

tp_cert tp_make(const char *subject, const char *san, long from_days, long to_days,
                const tp_cert *ca)
{
    tp_cert c = {0};
    c.key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(c.key);
    c.x = X509_new();
    assert_non_null(c.x);
    X509_set_version(c.x, 2);
    BIGNUM *bn = BN_new();
    BN_rand(bn, 120, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c.x));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(c.x), from_days * 86400L);
    X509_gmtime_adj(X509_getm_notAfter(c.x), to_days * 86400L);
    X509_set_pubkey(c.x, c.key);
    X509_NAME *name = X509_get_subject_name(c.x);
    char *copy = strdup(subject), *save = NULL;
    for (char *f = strtok_r(copy, "/", &save); f != NULL; f = strtok_r(NULL, "/", &save)) {
        char *eq = strchr(f, '=');
        assert_non_null(eq);
        *eq = '\0';
        assert_int_equal(
            X509_NAME_add_entry_by_txt(name, f, MBSTRING_UTF8, (unsigned char *)eq + 1, -1, -1, 0),
            1);
    }
    free(copy);
    X509_set_issuer_name(c.x, ca != NULL ? X509_get_subject_name(ca->x) : name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, ca != NULL ? ca->x : c.x, c.x, NULL, NULL, 0);
    add_ext(c.x, &ctx, NID_basic_constraints, ca == NULL ? "critical,CA:TRUE" : "CA:FALSE");
    if (ca == NULL) {
        add_ext(c.x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(c.x, &ctx, NID_ext_key_usage, "serverAuth,clientAuth");
    }
    if (san != NULL) {
        add_ext(c.x, &ctx, NID_subject_alt_name, san);
    }
    assert_true(X509_sign(c.x, ca != NULL ? ca->key : c.key, EVP_sha256()) > 0);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, c.x);
    c.pem = bio_text(b);
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, c.key, NULL, NULL, 0, NULL, NULL);
    c.key_pem = bio_text(b);
    BIO_free(b);
    return c;
}

void tp_free(tp_cert *c)
{
    EVP_PKEY_free(c->key);
    X509_free(c->x);
    free(c->pem);
    free(c->key_pem);
    memset(c, 0, sizeof(*c));
}

const char *tp_write(const char *dir, const char *name, const char *text)
{
    static char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    fclose(f);
    return path;
}

char *tp_crl(const tp_cert *ca, const tp_cert *revoked)
{
    X509_CRL *crl = X509_CRL_new();
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->x));
    ASN1_TIME *now = X509_gmtime_adj(NULL, 0), *next = X509_gmtime_adj(NULL, 86400L);
    X509_CRL_set1_lastUpdate(crl, now);
    X509_CRL_set1_nextUpdate(crl, next);
    if (revoked != NULL) {
        X509_REVOKED *r = X509_REVOKED_new();
        X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(revoked->x));
        X509_REVOKED_set_revocationDate(r, now);
        X509_CRL_add0_revoked(crl, r);
    }
    X509_CRL_sort(crl);
    assert_true(X509_CRL_sign(crl, ca->key, EVP_sha256()) > 0);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509_CRL(b, crl);
    char *out = bio_text(b);
    BIO_free(b);
    ASN1_TIME_free(now);
    ASN1_TIME_free(next);
    X509_CRL_free(crl);
    return out;
}
