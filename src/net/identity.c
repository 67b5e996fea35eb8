/*
 * Identities from certificates, forwarded identities, revocation lists (identity.h).
 * Everything here reads input that came from the network or from files an operator wrote, so
 * every field is checked and nothing is trusted to be terminated or bounded.
 */
#include "net/identity.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "platoon/error.h"

#define VEHICLE_URI "urn:platoon:vehicle:"

struct pnet_crl {
    X509_CRL *crl;
};

/* Decimal 1..2^64-1 with no sign, no leading zero and nothing after it. */
static bool parse_id(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20 || s[0] == '0') {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '@' || c == '-';
}

/* The one value of attribute @nid in @name, as UTF-8 in @out. Returns 1 (found), 0 (absent),
 * -1 (more than one, or unreadable). */
static int subject_field(X509_NAME *name, int nid, char *out, size_t cap)
{
    int at = X509_NAME_get_index_by_NID(name, nid, -1);
    if (at < 0) {
        return 0;
    }
    if (X509_NAME_get_index_by_NID(name, nid, at) >= 0) {
        return -1;
    }
    ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, at));
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, v);
    if (n < 0) {
        return -1;
    }
    int rc = 1;
    if ((size_t)n >= cap || memchr(utf8, '\0', (size_t)n) != NULL) {
        rc = -1;
    } else {
        memcpy(out, utf8, (size_t)n);
        out[n] = '\0';
    }
    OPENSSL_free(utf8);
    return rc;
}

/* The vehicle scope from the SAN URIs: 0 (none), 1 (one, in *vehicle), -1 (malformed). */
static int vehicle_scope(X509 *x, uint64_t *vehicle)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    if (names == NULL) {
        return 0;
    }
    int found = 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type != GEN_URI) {
            continue;
        }
        const char *u = (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
        size_t ulen = (size_t)ASN1_STRING_length(g->d.uniformResourceIdentifier);
        size_t plen = strlen(VEHICLE_URI);
        if (ulen < plen || memcmp(u, VEHICLE_URI, plen) != 0) {
            continue;
        }
        if (found != 0 || !parse_id(u + plen, ulen - plen, vehicle)) {
            found = -1;
            break;
        }
        found = 1;
    }
    GENERAL_NAMES_free(names);
    return found;
}

static X509 *first_cert(const char *pem, size_t len)
{
    if (len > INT32_MAX) {
        return NULL;
    }
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL) {
        return NULL;
    }
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    ERR_clear_error();
    return x;
}

int pnet__identity_from_pem(const char *pem, size_t len, pnet_identity *out, char *err,
                            size_t errlen)
{
    char cn[PNET_NAME_MAX], ou[32], subject[256] = "";
    int rc = PT_EMALFORMED;
    memset(out, 0, sizeof(*out));
    X509 *x = first_cert(pem, len);
    if (x == NULL) {
        snprintf(err, errlen, "not a PEM certificate");
        return PT_EMALFORMED;
    }
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_oneline(name, subject, sizeof(subject));
    int has_cn = subject_field(name, NID_commonName, cn, sizeof(cn));
    int has_ou = subject_field(name, NID_organizationalUnitName, ou, sizeof(ou));
    if (has_cn != 1) {
        snprintf(err, errlen, "%s: %s common name (CN)", subject,
                 has_cn == 0 ? "no" : "more than one or an unreadable");
        goto out;
    }
    if (has_ou != 1) {
        snprintf(err, errlen, "%s: %s organizational unit (OU: node, reader, writer or admin)",
                 subject, has_ou == 0 ? "no" : "more than one or an unreadable");
        goto out;
    }
    uint64_t vehicle = 0;
    int scope = vehicle_scope(x, &vehicle);
    if (scope < 0) {
        snprintf(err, errlen, "%s: more than one or a malformed %s<id> URI", subject, VEHICLE_URI);
        goto out;
    }
    if (strcmp(ou, "node") == 0) {
        if (strncmp(cn, "node-", 5) != 0 || !parse_id(cn + 5, strlen(cn) - 5, &out->node_id)) {
            snprintf(err, errlen, "%s: a node certificate's CN must be node-<id> (1..2^64-1)",
                     subject);
            goto out;
        }
        if (scope != 0) {
            snprintf(err, errlen, "%s: a node certificate cannot be bound to a vehicle", subject);
            goto out;
        }
        out->kind = PNET_ID_NODE;
        out->role = PNET_ROLE_ADMIN;
    } else {
        if (pnet__role_parse(ou, &out->role) != 0) {
            snprintf(err, errlen, "%s: unknown role OU=%s (node, reader, writer or admin)", subject,
                     ou);
            goto out;
        }
        size_t n = strlen(cn);
        bool ok = n >= 1 && n <= 64 && strncmp(cn, "node-", 5) != 0;
        for (size_t i = 0; ok && i < n; i++) {
            ok = name_char_ok(cn[i]);
        }
        if (!ok) {
            snprintf(err, errlen,
                     "%s: a client's CN must be 1 to 64 of A-Z a-z 0-9 . _ @ - and not node-*",
                     subject);
            goto out;
        }
        out->kind = PNET_ID_CLIENT;
        out->has_vehicle = scope == 1;
        out->vehicle_id = scope == 1 ? vehicle : 0;
    }
    snprintf(out->name, sizeof(out->name), "%s", cn);
    rc = 0;
out:
    if (rc != 0) {
        memset(out, 0, sizeof(*out));
    }
    X509_free(x);
    return rc;
}

const char *pnet__role_name(int role)
{
    switch (role) {
    case PNET_ROLE_READER:
        return "reader";
    case PNET_ROLE_WRITER:
        return "writer";
    case PNET_ROLE_ADMIN:
        return "admin";
    default:
        return "?";
    }
}

int pnet__role_parse(const char *name, int *role)
{
    static const int roles[] = {PNET_ROLE_READER, PNET_ROLE_WRITER, PNET_ROLE_ADMIN};
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        if (strcmp(name, pnet__role_name(roles[i])) == 0) {
            *role = roles[i];
            return 0;
        }
    }
    return -1;
}

/* ============================================================================================
 * Forwarded identities
 * ========================================================================================== */

int pnet__identity_encode(const pnet_identity *id, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    char name[3 * PNET_NAME_MAX + 1];
    size_t k = 0;
    for (size_t i = 0; id->name[i] != '\0' && i < PNET_NAME_MAX; i++) {
        unsigned char c = (unsigned char)id->name[i];
        if (name_char_ok((char)c)) {
            name[k++] = (char)c;
        } else {
            name[k++] = '%';
            name[k++] = hex[c >> 4];
            name[k++] = hex[c & 15];
        }
    }
    name[k] = '\0';
    char vehicle[24] = "-";
    if (id->has_vehicle) {
        snprintf(vehicle, sizeof(vehicle), "%llu", (unsigned long long)id->vehicle_id);
    }
    int n = snprintf(out, cap, "v1;k=%d;n=%llu;r=%d;v=%s;c=%s", id->kind,
                     (unsigned long long)id->node_id, id->role, vehicle, name);
    return n < 0 || (size_t)n >= cap ? PT_ETOOBIG : 0;
}

/* Reads "<key>=<value>;" at *s; the value is [*v, *v + *vlen). */
static bool field(const char **s, const char *end, char key, const char **v, size_t *vlen,
                  bool last)
{
    const char *p = *s;
    if (end - p < 2 || p[0] != key || p[1] != '=') {
        return false;
    }
    p += 2;
    const char *stop = last ? end : memchr(p, ';', (size_t)(end - p));
    if (stop == NULL) {
        return false;
    }
    *v = p;
    *vlen = (size_t)(stop - p);
    *s = last ? end : stop + 1;
    return true;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int pnet__identity_decode(const char *s, size_t len, pnet_identity *out)
{
    const char *end = s + len, *v;
    size_t vlen;
    uint64_t kind, node, role;
    memset(out, 0, sizeof(*out));
    if (len < 3 || memcmp(s, "v1;", 3) != 0) {
        return PT_EMALFORMED;
    }
    s += 3;
    if (!field(&s, end, 'k', &v, &vlen, false) || !parse_id(v, vlen, &kind) ||
        (kind != PNET_ID_NODE && kind != PNET_ID_CLIENT)) {
        goto bad;
    }
    if (!field(&s, end, 'n', &v, &vlen, false)) {
        goto bad;
    }
    if (vlen == 1 && v[0] == '0') {
        node = 0;
    } else if (!parse_id(v, vlen, &node)) {
        goto bad;
    }
    if (!field(&s, end, 'r', &v, &vlen, false) || !parse_id(v, vlen, &role) ||
        role < PNET_ROLE_READER || role > PNET_ROLE_ADMIN) {
        goto bad;
    }
    if (!field(&s, end, 'v', &v, &vlen, false)) {
        goto bad;
    }
    if (!(vlen == 1 && v[0] == '-')) {
        if (!parse_id(v, vlen, &out->vehicle_id)) {
            goto bad;
        }
        out->has_vehicle = true;
    }
    if (!field(&s, end, 'c', &v, &vlen, true)) {
        goto bad;
    }
    size_t k = 0;
    for (size_t i = 0; i < vlen; i++) {
        char c = v[i];
        if (c == '%') {
            int hi = i + 2 < vlen ? hexval(v[i + 1]) : -1;
            int lo = i + 2 < vlen ? hexval(v[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                goto bad;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (!name_char_ok(c)) {
            goto bad;
        }
        if (k + 1 >= sizeof(out->name)) {
            goto bad;
        }
        out->name[k++] = c;
    }
    out->name[k] = '\0';
    if (k == 0 || (kind == PNET_ID_NODE) != (node != 0) ||
        (kind == PNET_ID_NODE && (role != PNET_ROLE_ADMIN || out->has_vehicle))) {
        goto bad;
    }
    out->kind = (int)kind;
    out->node_id = node;
    out->role = (int)role;
    return 0;
bad:
    memset(out, 0, sizeof(*out));
    return PT_EMALFORMED;
}

/* ============================================================================================
 * Revocation lists
 * ========================================================================================== */

int pnet__crl_load(const char *path, const char *ca_path, pnet_crl **out, char *err, size_t errlen)
{
    int rc = PT_EMALFORMED;
    X509_CRL *crl = NULL;
    BIO *cas = NULL;
    BIO *bio = BIO_new_file(path, "r");
    if (bio == NULL) {
        snprintf(err, errlen, "cannot read it: %s", strerror(errno));
        ERR_clear_error();
        return PT_EIO;
    }
    crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (crl == NULL) {
        snprintf(err, errlen, "not a PEM X.509 revocation list");
        goto out;
    }
    cas = BIO_new_file(ca_path, "r");
    if (cas == NULL) {
        snprintf(err, errlen, "cannot read the CA file %s", ca_path);
        rc = PT_EIO;
        goto out;
    }
    bool signed_by_ca = false;
    X509 *ca;
    while (!signed_by_ca && (ca = PEM_read_bio_X509(cas, NULL, NULL, NULL)) != NULL) {
        EVP_PKEY *key = X509_get0_pubkey(ca);
        signed_by_ca = X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl)) == 0 &&
                       key != NULL && X509_CRL_verify(crl, key) == 1;
        X509_free(ca);
    }
    if (!signed_by_ca) {
        snprintf(err, errlen, "not signed by a CA of %s", ca_path);
        goto out;
    }
    *out = calloc(1, sizeof(**out));
    if (*out == NULL) {
        rc = PT_ENOMEM;
        goto out;
    }
    (*out)->crl = crl;
    crl = NULL;
    rc = 0;
out:
    BIO_free(cas);
    X509_CRL_free(crl);
    ERR_clear_error();
    return rc;
}

bool pnet__crl_revoked(const pnet_crl *crl, const char *pem, size_t len)
{
    X509 *x = first_cert(pem, len);
    if (x == NULL) {
        return true;
    }
    bool revoked = false;
    if (X509_NAME_cmp(X509_get_issuer_name(x), X509_CRL_get_issuer(crl->crl)) == 0) {
        X509_REVOKED *r = NULL;
        revoked = X509_CRL_get0_by_serial(crl->crl, &r, X509_get0_serialNumber(x)) == 1;
    }
    X509_free(x);
    return revoked;
}

void pnet__crl_free(pnet_crl *crl)
{
    if (crl != NULL) {
        X509_CRL_free(crl->crl);
        free(crl);
    }
}
