/*
 * platoonctl certs: a small PKI for Platoon's mutual TLS, made with libcrypto (no shell-out).
 *
 * It makes what docs/security.md describes: one CA, node certificates named node-<id> (OU
 * node, SAN DNS:node-<id> plus the hosts clients dial), client certificates with a role (OU
 * reader, writer or admin) and an optional vehicle scope (SAN URI urn:platoon:vehicle:<id>),
 * and a revocation list. Keys are EC P-256, signatures SHA-256, serials 128 random bits; key
 * files are created with mode 0600 and never exist with a wider mode, even for a moment.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "args.h"
#include "ctl.h"

#define CA_DAYS_DEFAULT   3650
#define LEAF_DAYS_DEFAULT 365
#define CRL_DAYS          365
#define PATH_MAX_LEN      4096

static const char certs_usage[] =
    "usage: platoonctl certs COMMAND --dir DIR [options]\n"
    "\n"
    "  ca     [--name NAME] [--days N] [--force]\n"
    "         a CA: DIR/ca.pem, DIR/ca.key (0600) and an empty DIR/crl.pem (default name\n"
    "         \"Platoon CA\", 3650 days); refuses to replace an existing CA without --force\n"
    "  node   --id N --host H[,H...] [--days N] [--force]\n"
    "         node N's certificate: DIR/node-N.pem, DIR/node-N.key, valid for the hosts\n"
    "         (IP addresses or DNS names) clients dial it at (default 365 days)\n"
    "  client --name NAME --role reader|writer|admin [--vehicle ID] [--days N] [--force]\n"
    "         a client's certificate: DIR/NAME.pem, DIR/NAME.key; with --vehicle it may\n"
    "         write that vehicle only\n"
    "  revoke --cert FILE\n"
    "         adds the certificate to DIR/crl.pem (give it to the nodes, then SIGHUP them)\n"
    "\n"
    "See docs/security.md for the names and what each role may do.\n";

/* One line on stderr and the usage exit code, or the server exit code for a failure of
 * the files themselves. */
static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("platoonctl certs: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    ERR_clear_error();
    return code;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- keys and files ----------------------------------------------------------------------- */

static EVP_PKEY *new_key(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* Writes @key to @path, created with mode 0600 (replacing an existing file only if @force). */
static int write_key(const char *path, EVP_PKEY *key, bool force)
{
    char tmp[PATH_MAX_LEN + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        return fail(PCTL_EXIT_SERVER, "%s: %s", tmp, strerror(errno));
    }
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        unlink(tmp);
        return fail(PCTL_EXIT_SERVER, "%s: %s", tmp, strerror(errno));
    }
    int ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok == 1;
    fclose(f);
    if (!ok || (!force && exists(path)) || rename(tmp, path) != 0) {
        unlink(tmp);
        return fail(PCTL_EXIT_SERVER, "%s: cannot write the key%s", path,
                    !force && exists(path) ? " (it exists; --force replaces it)" : "");
    }
    return 0;
}

static int write_pem(const char *path, X509 *cert, X509_CRL *crl)
{
    char tmp[PATH_MAX_LEN + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return fail(PCTL_EXIT_SERVER, "%s: %s", tmp, strerror(errno));
    }
    int ok = cert != NULL ? PEM_write_X509(f, cert) : PEM_write_X509_CRL(f, crl);
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok == 1;
    fclose(f);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return fail(PCTL_EXIT_SERVER, "%s: cannot write it", path);
    }
    return 0;
}

static X509 *read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return NULL;
    }
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

static EVP_PKEY *read_key(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return NULL;
    }
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

/* ---- certificates ------------------------------------------------------------------------- */

static bool add_name(X509_NAME *n, const char *field, const char *value)
{
    return X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8, (const unsigned char *)value, -1, -1,
                                      0) == 1;
}

static bool add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    if (e == NULL) {
        return false;
    }
    bool ok = X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    return ok;
}

static bool random_serial(X509 *x)
{
    BIGNUM *bn = BN_new();
    bool ok = bn != NULL && BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
              BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

/*
 * A certificate for @key named @subject (CN, OU; OU may be NULL), signed by @ca_key as @ca
 * (NULL: self-signed), valid @days from five minutes ago (clocks of a cluster differ), with
 * the extensions given as (nid, value) pairs ending with 0.
 */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *ou, X509 *ca, EVP_PKEY *ca_key,
                       long days, const int *nids, const char *const *values)
{
    X509 *x = X509_new();
    if (x == NULL || X509_set_version(x, 2) != 1 || !random_serial(x) ||
        X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), days * 86400L) == NULL ||
        X509_set_pubkey(x, key) != 1) {
        goto fail;
    }
    X509_NAME *name = X509_get_subject_name(x);
    if (!add_name(name, "O", "platoon") || (ou != NULL && !add_name(name, "OU", ou)) ||
        !add_name(name, "CN", cn)) {
        goto fail;
    }
    if (X509_set_issuer_name(x, ca != NULL ? X509_get_subject_name(ca) : name) != 1) {
        goto fail;
    }
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, ca != NULL ? ca : x, x, NULL, NULL, 0);
    for (size_t i = 0; nids[i] != 0; i++) {
        if (!add_ext(x, &ctx, nids[i], values[i])) {
            goto fail;
        }
    }
    if (X509_sign(x, ca_key, EVP_sha256()) <= 0) {
        goto fail;
    }
    return x;
fail:
    X509_free(x);
    return NULL;
}

/* ---- the commands ------------------------------------------------------------------------- */

struct pki {
    char dir[PATH_MAX_LEN];
    X509 *ca;
    EVP_PKEY *ca_key;
};

static void path_of(char *out, size_t cap, const char *dir, const char *name, const char *ext)
{
    snprintf(out, cap, "%s/%s%s", dir, name, ext);
}

static int load_ca(struct pki *p)
{
    char cert[PATH_MAX_LEN + 16], key[PATH_MAX_LEN + 16];
    path_of(cert, sizeof(cert), p->dir, "ca", ".pem");
    path_of(key, sizeof(key), p->dir, "ca", ".key");
    p->ca = read_cert(cert);
    p->ca_key = read_key(key);
    if (p->ca == NULL || p->ca_key == NULL) {
        return fail(PCTL_EXIT_USAGE, "no CA in %s (make one with `platoonctl certs ca --dir %s`)",
                    p->dir, p->dir);
    }
    if (X509_check_private_key(p->ca, p->ca_key) != 1) {
        return fail(PCTL_EXIT_USAGE, "%s: ca.key is not the key of ca.pem", p->dir);
    }
    return 0;
}

/* Signs and writes @crl (a new one if NULL) with the revoked entries it has. */
static int write_crl(struct pki *p, X509_CRL *crl)
{
    char path[PATH_MAX_LEN + 16];
    path_of(path, sizeof(path), p->dir, "crl", ".pem");
    bool own = crl == NULL;
    if (own && (crl = X509_CRL_new()) == NULL) {
        return fail(PCTL_EXIT_SERVER, "out of memory");
    }
    ASN1_TIME *now = X509_gmtime_adj(NULL, 0);
    ASN1_TIME *next = X509_gmtime_adj(NULL, CRL_DAYS * 86400L);
    int rc = 0;
    if (now == NULL || next == NULL || X509_CRL_set_version(crl, 1) != 1 ||
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(p->ca)) != 1 ||
        X509_CRL_set1_lastUpdate(crl, now) != 1 || X509_CRL_set1_nextUpdate(crl, next) != 1 ||
        X509_CRL_sort(crl) != 1 || X509_CRL_sign(crl, p->ca_key, EVP_sha256()) <= 0) {
        rc = fail(PCTL_EXIT_SERVER, "%s: cannot sign the revocation list", path);
    } else {
        rc = write_pem(path, NULL, crl);
    }
    ASN1_TIME_free(now);
    ASN1_TIME_free(next);
    if (own) {
        X509_CRL_free(crl);
    }
    return rc;
}

static int cmd_ca(struct pki *p, const char *name, long days, bool force)
{
    char cert[PATH_MAX_LEN + 16], key[PATH_MAX_LEN + 16];
    path_of(cert, sizeof(cert), p->dir, "ca", ".pem");
    path_of(key, sizeof(key), p->dir, "ca", ".key");
    if (!force && (exists(cert) || exists(key))) {
        return fail(PCTL_EXIT_USAGE,
                    "%s already holds a CA; --force replaces it (every certificate it signed "
                    "stops being trusted)",
                    p->dir);
    }
    p->ca_key = new_key();
    static const int nids[] = {NID_basic_constraints, NID_key_usage, NID_subject_key_identifier, 0};
    static const char *const values[] = {"critical,CA:TRUE", "critical,keyCertSign,cRLSign",
                                         "hash"};
    p->ca = p->ca_key != NULL
                ? make_cert(p->ca_key, name, NULL, NULL, p->ca_key, days, nids, values)
                : NULL;
    if (p->ca == NULL) {
        return fail(PCTL_EXIT_SERVER, "cannot make the CA certificate");
    }
    int rc = write_key(key, p->ca_key, force);
    if (rc == 0) {
        rc = write_pem(cert, p->ca, NULL);
    }
    if (rc == 0) {
        rc = write_crl(p, NULL);
    }
    if (rc == 0) {
        printf("%s\n%s\n%s/crl.pem\n", cert, key, p->dir);
    }
    return rc;
}

/* "IP:a,DNS:b,..." from "a,b" (each host an address or a DNS name). */
static int san_of_hosts(const char *hosts, char *out, size_t cap)
{
    out[0] = '\0';
    char *copy = strdup(hosts);
    if (copy == NULL) {
        return fail(PCTL_EXIT_SERVER, "out of memory");
    }
    int rc = 0;
    char *save = NULL;
    size_t used = strlen(out);
    for (char *h = strtok_r(copy, ",", &save); h != NULL; h = strtok_r(NULL, ",", &save)) {
        unsigned char buf[16];
        bool ip = inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
        bool ok = true;
        for (const char *c = h; !ip && ok && *c != '\0'; c++) {
            ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                 *c == '-' || *c == '.';
        }
        if (!ok || h[0] == '\0' || strlen(h) > 253) {
            rc = fail(PCTL_EXIT_USAGE, "--host: '%s' is neither an IP address nor a DNS name", h);
            break;
        }
        int n = snprintf(out + used, cap - used, ",%s:%s", ip ? "IP" : "DNS", h);
        if (n < 0 || (size_t)n >= cap - used) {
            rc = fail(PCTL_EXIT_USAGE, "--host: too many hosts");
            break;
        }
        used += (size_t)n;
    }
    free(copy);
    return rc;
}

static int issue(struct pki *p, const char *file, const char *cn, const char *ou, long days,
                 bool force, bool node, const char *san)
{
    char cert[PATH_MAX_LEN + 16], key[PATH_MAX_LEN + 16];
    path_of(cert, sizeof(cert), p->dir, file, ".pem");
    path_of(key, sizeof(key), p->dir, file, ".key");
    if (!force && (exists(cert) || exists(key))) {
        return fail(PCTL_EXIT_USAGE, "%s already exists; --force replaces it", cert);
    }
    EVP_PKEY *k = new_key();
    int nids[] = {NID_basic_constraints,
                  NID_key_usage,
                  NID_ext_key_usage,
                  NID_subject_key_identifier,
                  NID_authority_key_identifier,
                  san != NULL ? NID_subject_alt_name : 0,
                  0};
    const char *values[] = {"critical,CA:FALSE",
                            "critical,digitalSignature,keyEncipherment",
                            node ? "serverAuth,clientAuth" : "clientAuth",
                            "hash",
                            "keyid:always",
                            san};
    X509 *x = k != NULL ? make_cert(k, cn, ou, p->ca, p->ca_key, days, nids, values) : NULL;
    int rc = 0;
    if (x == NULL) {
        rc = fail(PCTL_EXIT_SERVER, "cannot make the certificate of %s", cn);
    } else if ((rc = write_key(key, k, force)) == 0 && (rc = write_pem(cert, x, NULL)) == 0) {
        printf("%s\n%s\n", cert, key);
    }
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

static int cmd_revoke(struct pki *p, const char *cert_path)
{
    X509 *x = read_cert(cert_path);
    if (x == NULL) {
        return fail(PCTL_EXIT_USAGE, "--cert %s: not a PEM certificate", cert_path);
    }
    int rc = 0;
    X509_CRL *crl = NULL;
    X509_REVOKED *r = NULL;
    ASN1_TIME *now = NULL;
    /* Names are not proof: two CAs may well be called alike. The signature is. */
    if (X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(p->ca)) != 0 ||
        X509_verify(x, X509_get0_pubkey(p->ca)) != 1) {
        rc = fail(PCTL_EXIT_USAGE, "--cert %s: not issued by the CA of %s", cert_path, p->dir);
        goto out;
    }
    char path[PATH_MAX_LEN + 16];
    path_of(path, sizeof(path), p->dir, "crl", ".pem");
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        crl = PEM_read_X509_CRL(f, NULL, NULL, NULL);
        fclose(f);
        if (crl == NULL || X509_CRL_verify(crl, p->ca_key) != 1) {
            rc = fail(PCTL_EXIT_USAGE, "%s: not a revocation list of this CA", path);
            goto out;
        }
    } else if ((crl = X509_CRL_new()) == NULL) {
        rc = fail(PCTL_EXIT_SERVER, "out of memory");
        goto out;
    }
    X509_REVOKED *already = NULL;
    if (X509_CRL_get0_by_serial(crl, &already, X509_get0_serialNumber(x)) == 1) {
        printf("%s\n", path); /* revoked already: nothing to change */
        goto out;
    }
    r = X509_REVOKED_new();
    now = X509_gmtime_adj(NULL, 0);
    if (r == NULL || now == NULL ||
        X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(x)) != 1 ||
        X509_REVOKED_set_revocationDate(r, now) != 1 || X509_CRL_add0_revoked(crl, r) != 1) {
        X509_REVOKED_free(r);
        rc = fail(PCTL_EXIT_SERVER, "cannot add the certificate to the revocation list");
        goto out;
    }
    rc = write_crl(p, crl);
    if (rc == 0) {
        printf("%s\n", path);
    }
out:
    ASN1_TIME_free(now);
    X509_CRL_free(crl);
    X509_free(x);
    return rc;
}

int pctl_certs(const pctl_opts *o, pctl_client *c, int argc, char **argv)
{
    (void)o;
    (void)c;
    enum { F_DIR, F_DAYS, F_FORCE, F_NAME, F_ID, F_HOST, F_ROLE, F_VEHICLE, F_CERT, F_HELP };
    pctl_flag flags[] = {{"--dir", false, false, NULL},  {"--days", false, false, NULL},
                         {"--force", true, false, NULL}, {"--name", false, false, NULL},
                         {"--id", false, false, NULL},   {"--host", false, false, NULL},
                         {"--role", false, false, NULL}, {"--vehicle", false, false, NULL},
                         {"--cert", false, false, NULL}, {"--help", true, false, NULL}};
    const char *pos[1];
    size_t n_pos = 0;
    char err[256];
    if (pctl_parse_args(argc, argv, flags, sizeof(flags) / sizeof(flags[0]), pos, 1, &n_pos, err,
                        sizeof(err)) != 0) {
        return fail(PCTL_EXIT_USAGE, "%s (see platoonctl certs --help)", err);
    }
    if (flags[F_HELP].seen || n_pos == 0) {
        fputs(certs_usage, flags[F_HELP].seen ? stdout : stderr);
        return flags[F_HELP].seen ? PCTL_EXIT_OK : PCTL_EXIT_USAGE;
    }
    const char *sub = pos[0];
    bool is_ca = strcmp(sub, "ca") == 0, is_node = strcmp(sub, "node") == 0;
    bool is_client = strcmp(sub, "client") == 0, is_revoke = strcmp(sub, "revoke") == 0;
    if (!is_ca && !is_node && !is_client && !is_revoke) {
        return fail(PCTL_EXIT_USAGE, "unknown command '%s' (ca, node, client or revoke)", sub);
    }
    /* Each command takes its own flags only: a flag of another is a mistake worth a word. */
    static const char *const allowed[] = {
        /* ca */ "--dir --days --force --name",
        /* node */ "--dir --days --force --id --host",
        /* client */ "--dir --days --force --name --role --vehicle",
        /* revoke */ "--dir --cert",
    };
    const char *ok_flags = allowed[is_ca ? 0 : is_node ? 1 : is_client ? 2 : 3];
    for (size_t i = 0; i < F_HELP; i++) {
        if (flags[i].seen && strstr(ok_flags, flags[i].name) == NULL) {
            return fail(PCTL_EXIT_USAGE, "certs %s does not take %s", sub, flags[i].name);
        }
    }
    if (!flags[F_DIR].seen || flags[F_DIR].value[0] == '\0' ||
        strlen(flags[F_DIR].value) >= PATH_MAX_LEN) {
        return fail(PCTL_EXIT_USAGE, "%s: --dir DIR is required", sub);
    }
    uint64_t days = is_ca ? CA_DAYS_DEFAULT : LEAF_DAYS_DEFAULT;
    if (flags[F_DAYS].seen && !pctl_parse_u64(flags[F_DAYS].value, 1, 36500, &days)) {
        return fail(PCTL_EXIT_USAGE, "--days must be a whole number of days in [1, 36500]");
    }
    struct pki p = {0};
    snprintf(p.dir, sizeof(p.dir), "%s", flags[F_DIR].value);
    if (mkdir(p.dir, 0700) != 0 && errno != EEXIST) {
        return fail(PCTL_EXIT_SERVER, "--dir %s: %s", p.dir, strerror(errno));
    }
    bool force = flags[F_FORCE].seen;
    int rc;
    if (is_ca) {
        const char *name = flags[F_NAME].seen ? flags[F_NAME].value : "Platoon CA";
        if (name[0] == '\0' || strlen(name) > 64) {
            rc = fail(PCTL_EXIT_USAGE, "--name must be 1 to 64 characters");
        } else {
            rc = cmd_ca(&p, name, (long)days, force);
        }
        goto out;
    }
    if ((rc = load_ca(&p)) != 0) {
        goto out;
    }
    if (is_revoke) {
        rc = flags[F_CERT].seen ? cmd_revoke(&p, flags[F_CERT].value)
                                : fail(PCTL_EXIT_USAGE, "revoke: --cert FILE is required");
        goto out;
    }
    if (is_node) {
        uint64_t id;
        char file[32], san[2048];
        if (!flags[F_ID].seen || !pctl_parse_u64(flags[F_ID].value, 1, UINT64_MAX, &id)) {
            rc = fail(PCTL_EXIT_USAGE, "--id must be a node id in [1, 2^64-1]");
            goto out;
        }
        if (!flags[F_HOST].seen) {
            rc =
                fail(PCTL_EXIT_USAGE, "--host H[,H...] is required: the addresses or names clients "
                                      "dial this node at");
            goto out;
        }
        snprintf(file, sizeof(file), "node-%llu", (unsigned long long)id);
        int n = snprintf(san, sizeof(san), "DNS:%s", file);
        if ((rc = san_of_hosts(flags[F_HOST].value, san + n, sizeof(san) - (size_t)n)) == 0) {
            rc = issue(&p, file, file, "node", (long)days, force, true, san);
        }
        goto out;
    }
    /* client */
    const char *name = flags[F_NAME].seen ? flags[F_NAME].value : NULL;
    const char *role = flags[F_ROLE].seen ? flags[F_ROLE].value : NULL;
    bool name_ok =
        name != NULL && strlen(name) >= 1 && strlen(name) <= 64 && strncmp(name, "node-", 5) != 0;
    for (const char *ch = name; name_ok && *ch != '\0'; ch++) {
        name_ok = (*ch >= 'a' && *ch <= 'z') || (*ch >= 'A' && *ch <= 'Z') ||
                  (*ch >= '0' && *ch <= '9') || *ch == '.' || *ch == '_' || *ch == '@' ||
                  *ch == '-';
    }
    if (!name_ok) {
        rc = fail(PCTL_EXIT_USAGE, "--name must be 1 to 64 of A-Z a-z 0-9 . _ @ - "
                                   "and must not start with node-");
        goto out;
    }
    if (role == NULL || (strcmp(role, "reader") != 0 && strcmp(role, "writer") != 0 &&
                         strcmp(role, "admin") != 0)) {
        rc = fail(PCTL_EXIT_USAGE, "--role must be reader, writer or admin");
        goto out;
    }
    char san[64];
    uint64_t vehicle = 0;
    if (flags[F_VEHICLE].seen) {
        if (!pctl_parse_u64(flags[F_VEHICLE].value, 1, UINT64_MAX, &vehicle)) {
            rc = fail(PCTL_EXIT_USAGE, "--vehicle must be a vehicle id");
            goto out;
        }
        snprintf(san, sizeof(san), "URI:urn:platoon:vehicle:%llu", (unsigned long long)vehicle);
    }
    rc = issue(&p, name, name, role, (long)days, force, false, flags[F_VEHICLE].seen ? san : NULL);
out:
    X509_free(p.ca);
    EVP_PKEY_free(p.ca_key);
    return rc;
}
