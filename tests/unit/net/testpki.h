/*
 * Certificates made in the test process with libcrypto, for the tests of identity.c, tls.c
 * and the transport's TLS: any subject, any alternative names, any validity, any issuer, so
 * that the malformed and hostile ones can be made as easily as the good ones.
 */
#ifndef PLATOON_TESTS_NET_TESTPKI_H
#define PLATOON_TESTS_NET_TESTPKI_H

#include <openssl/evp.h>
#include <openssl/x509.h>

typedef struct tp_cert {
    EVP_PKEY *key;
    X509 *x;
    char *pem;     /* the certificate, PEM (malloc'd) */
    char *key_pem; /* its key, PEM (malloc'd) */
} tp_cert;

/*
 * A certificate with subject @subject ("CN=node-1/OU=node/O=platoon": fields separated by
 * '/'), subject alternative names @san (OpenSSL's syntax, "DNS:node-1,IP:127.0.0.1", or
 * NULL), valid from @from_days to @to_days days from now, signed by @ca (NULL: self-signed,
 * and a CA). Aborts the test on failure.
 */
tp_cert tp_make(const char *subject, const char *san, long from_days, long to_days,
                const tp_cert *ca);
void tp_free(tp_cert *c);

/* Writes @text to @dir/@name; returns the path (static buffer, overwritten by the next call). */
const char *tp_write(const char *dir, const char *name, const char *text);

/* A CRL of @ca listing @revoked (may be NULL), PEM, malloc'd. */
char *tp_crl(const tp_cert *ca, const tp_cert *revoked);

#endif
