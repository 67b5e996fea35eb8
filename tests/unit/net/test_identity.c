/*
 * Identities from certificates (identity.c), forwarded identities, revocation lists, and the
 * checks of a node's TLS material (tls.c): each rule of docs/security.md, table-driven, with
 * the hostile cases next to the good ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/identity.h"
#include "net/tls.h"
#include "platoon/error.h"
#include "testpki.h"

static tp_cert ca;

static int setup(void **state)
{
    (void)state;
    ca = tp_make("CN=Test CA/O=platoon", NULL, -1, 30, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tp_free(&ca);
    return 0;
}

/* The tables below leave out the fields a case does not need (zero). */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

struct want {
    const char *subject;
    const char *san;
    int rc; /* 0 or PT_EMALFORMED */
    int kind;
    uint64_t node_id;
    int role;
    bool has_vehicle;
    uint64_t vehicle;
};

static void certificates_name_identities(void **state)
{
    (void)state;
    const struct want cases[] = {
        {"CN=node-3/OU=node/O=platoon", "DNS:node-3", 0, PNET_ID_NODE, 3, PNET_ROLE_ADMIN},
        {"CN=node-18446744073709551615/OU=node", NULL, 0, PNET_ID_NODE, UINT64_MAX,
         PNET_ROLE_ADMIN},
        {"CN=rita/OU=reader/O=platoon", NULL, 0, PNET_ID_CLIENT, 0, PNET_ROLE_READER},
        {"CN=walt/OU=writer", NULL, 0, PNET_ID_CLIENT, 0, PNET_ROLE_WRITER},
        {"CN=ops@example.org/OU=admin", NULL, 0, PNET_ID_CLIENT, 0, PNET_ROLE_ADMIN},
        {"CN=truck-7/OU=writer", "URI:urn:platoon:vehicle:7,DNS:truck", 0, PNET_ID_CLIENT, 0,
         PNET_ROLE_WRITER, true, 7},
        {"CN=elsewhere/OU=writer", "URI:https://example.org/x", 0, PNET_ID_CLIENT, 0,
         PNET_ROLE_WRITER},
        /* Refused: no role, unknown role, two roles. */
        {"CN=nobody/O=platoon", NULL, PT_EMALFORMED},
        {"CN=root/OU=root", NULL, PT_EMALFORMED},
        {"CN=two/OU=reader/OU=admin", NULL, PT_EMALFORMED},
        {"OU=admin", NULL, PT_EMALFORMED},
        /* Refused: node names that name no node. */
        {"CN=node-0/OU=node", NULL, PT_EMALFORMED},
        {"CN=node-abc/OU=node", NULL, PT_EMALFORMED},
        {"CN=node-01/OU=node", NULL, PT_EMALFORMED},
        {"CN=node-18446744073709551616/OU=node", NULL, PT_EMALFORMED},
        {"CN=node--1/OU=node", NULL, PT_EMALFORMED},
        {"CN=node-/OU=node", NULL, PT_EMALFORMED},
        {"CN=alice/OU=node", NULL, PT_EMALFORMED},
        {"CN=node-2/OU=node", "URI:urn:platoon:vehicle:2", PT_EMALFORMED},
        /* Refused: a client posing as a node, or with a name that is not a name. */
        {"CN=node-3/OU=admin", NULL, PT_EMALFORMED},
        {"CN=two words/OU=admin", NULL, PT_EMALFORMED},
        {"CN=a;b=c/OU=admin", NULL, PT_EMALFORMED},
        {"CN=caf\xc3\xa9/OU=admin", NULL, PT_EMALFORMED}, /* not ASCII */
        /* Refused: two vehicles, or a vehicle that is no id. */
        {"CN=bus/OU=writer", "URI:urn:platoon:vehicle:1,URI:urn:platoon:vehicle:2", PT_EMALFORMED},
        {"CN=bus/OU=writer", "URI:urn:platoon:vehicle:x", PT_EMALFORMED},
        {"CN=bus/OU=writer", "URI:urn:platoon:vehicle:0", PT_EMALFORMED},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct want *w = &cases[i];
        tp_cert c = tp_make(w->subject, w->san, -1, 30, &ca);
        pnet_identity id;
        char err[320] = "";
        int rc = pnet__identity_from_pem(c.pem, strlen(c.pem), &id, err, sizeof(err));
        if (rc != w->rc) {
            fail_msg("%s: rc %d (%s), want %d", w->subject, rc, err, w->rc);
        }
        if (rc == 0) {
            assert_int_equal(id.kind, w->kind);
            assert_int_equal(id.node_id, w->node_id);
            assert_int_equal(id.role, w->role);
            assert_int_equal(id.has_vehicle, w->has_vehicle);
            assert_int_equal(id.vehicle_id, w->vehicle);
            const char *cn = strstr(w->subject, "CN=") + 3;
            assert_int_equal(strncmp(id.name, cn, strcspn(cn, "/")), 0);
        } else {
            assert_true(err[0] != '\0');
            assert_int_equal(id.kind, PNET_ID_NONE);
        }
        tp_free(&c);
    }
    pnet_identity id;
    char err[320];
    assert_int_equal(pnet__identity_from_pem("junk", 4, &id, err, sizeof(err)), PT_EMALFORMED);
    assert_int_equal(pnet__identity_from_pem("", 0, &id, err, sizeof(err)), PT_EMALFORMED);
}

static void forwarded_identities_round_trip(void **state)
{
    (void)state;
    static const pnet_identity ids[] = {
        /* static: zeroed padding, compared whole below */
        {.kind = PNET_ID_NODE, .node_id = 7, .name = "node-7", .role = PNET_ROLE_ADMIN},
        {.kind = PNET_ID_CLIENT, .name = "ops@example.org", .role = PNET_ROLE_ADMIN},
        {.kind = PNET_ID_CLIENT,
         .name = "truck-7",
         .role = PNET_ROLE_WRITER,
         .has_vehicle = true,
         .vehicle_id = UINT64_MAX},
        {.kind = PNET_ID_CLIENT, .name = "r", .role = PNET_ROLE_READER},
    };
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        char buf[512];
        pnet_identity back;
        assert_int_equal(pnet__identity_encode(&ids[i], buf, sizeof(buf)), 0);
        assert_int_equal(pnet__identity_decode(buf, strlen(buf), &back), 0);
        assert_memory_equal(&back, &ids[i], sizeof(back));
    }
    char small[8];
    assert_int_equal(pnet__identity_encode(&ids[1], small, sizeof(small)), PT_ETOOBIG);

    /* Anything encode could not have written is refused, whoever sent it. */
    const char *bad[] = {
        "",
        "v1",
        "v2;k=2;n=0;r=1;v=-;c=x",
        "v1;k=3;n=0;r=1;v=-;c=x",      /* no such kind */
        "v1;k=2;n=0;r=4;v=-;c=x",      /* no such role */
        "v1;k=2;n=0;r=0;v=-;c=x",      /* no role */
        "v1;k=1;n=0;r=3;v=-;c=node-0", /* a node without an id */
        "v1;k=2;n=5;r=3;v=-;c=x",      /* a client with a node id */
        "v1;k=1;n=5;r=1;v=-;c=node-5", /* a node that is no admin */
        "v1;k=1;n=5;r=3;v=9;c=node-5", /* a node bound to a vehicle */
        "v1;k=2;n=0;r=2;v=0;c=x",      /* vehicle 0 */
        "v1;k=2;n=0;r=2;v=-;c=",       /* no name */
        "v1;k=2;n=0;r=2;v=-;c=a%00b",  /* an embedded NUL */
        "v1;k=2;n=0;r=2;v=-;c=a%4",    /* a cut escape */
        "v1;k=2;n=0;r=2;v=-;c=a b",    /* a raw space */
        "v1;k=2;n=0;r=2;v=-;c=x;k=1",  /* a second kind smuggled into the name */
        "v1;k=2;n=0;r=2;v=-",          /* no name field */
        "v1;n=0;k=2;r=2;v=-;c=x",      /* fields out of order */
        "v1;k=02;n=0;r=2;v=-;c=x",     /* leading zero */
        "v1;k=2;n=00;r=2;v=-;c=x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pnet_identity id;
        if (pnet__identity_decode(bad[i], strlen(bad[i]), &id) != PT_EMALFORMED) {
            fail_msg("accepted '%s'", bad[i]);
        }
        assert_int_equal(id.kind, PNET_ID_NONE);
    }
    /* A name longer than any certificate's is refused, not cut. */
    char longname[600] = "v1;k=2;n=0;r=2;v=-;c=";
    memset(longname + strlen(longname), 'a', 300);
    pnet_identity id;
    assert_int_equal(pnet__identity_decode(longname, strlen(longname), &id), PT_EMALFORMED);
}

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/platoon-identity-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    assert_int_equal(system(cmd), 0);
}

static void revocation_lists(void **state)
{
    (void)state;
    make_tmpdir();
    tp_cert gone = tp_make("CN=gone/OU=writer", NULL, -1, 30, &ca);
    tp_cert kept = tp_make("CN=kept/OU=writer", NULL, -1, 30, &ca);
    tp_cert other_ca = tp_make("CN=Other CA/O=platoon", NULL, -1, 30, NULL);
    char capath[4096], crlpath[4096], forged[4096];
    snprintf(capath, sizeof(capath), "%s", tp_write(tmpdir, "ca.pem", ca.pem));
    char *crl_text = tp_crl(&ca, &gone);
    snprintf(crlpath, sizeof(crlpath), "%s", tp_write(tmpdir, "crl.pem", crl_text));
    char *forged_text = tp_crl(&other_ca, &kept);
    snprintf(forged, sizeof(forged), "%s", tp_write(tmpdir, "forged.pem", forged_text));

    pnet_crl *crl = NULL;
    char err[320];
    assert_int_equal(pnet__crl_load(crlpath, capath, &crl, err, sizeof(err)), 0);
    assert_true(pnet__crl_revoked(crl, gone.pem, strlen(gone.pem)));
    assert_false(pnet__crl_revoked(crl, kept.pem, strlen(kept.pem)));
    assert_true(pnet__crl_revoked(crl, "junk", 4)); /* unparsable counts as revoked */
    pnet__crl_free(crl);

    /* A list another CA signed is no list of ours, and neither is a certificate. */
    crl = NULL;
    assert_int_equal(pnet__crl_load(forged, capath, &crl, err, sizeof(err)), PT_EMALFORMED);
    assert_null(crl);
    assert_int_equal(pnet__crl_load(capath, capath, &crl, err, sizeof(err)), PT_EMALFORMED);
    assert_int_equal(pnet__crl_load("/nonexistent/crl.pem", capath, &crl, err, sizeof(err)),
                     PT_EIO);
    pnet__crl_free(NULL);

    free(crl_text);
    free(forged_text);
    tp_free(&gone);
    tp_free(&kept);
    tp_free(&other_ca);
    remove_tmpdir();
}

/* pnet__tls_load refuses every mistake an operator can make with the files, naming the file. */
static void tls_material_is_checked_before_use(void **state)
{
    (void)state;
    make_tmpdir();
    tp_cert n1 = tp_make("CN=node-1/OU=node/O=platoon", "DNS:node-1,IP:127.0.0.1", -1, 30, &ca);
    tp_cert n2 = tp_make("CN=node-2/OU=node/O=platoon", "DNS:node-2", -1, 30, &ca);
    tp_cert expired = tp_make("CN=node-1/OU=node/O=platoon", "DNS:node-1", -30, -1, &ca);
    tp_cert other_ca = tp_make("CN=Other CA/O=platoon", NULL, -1, 30, NULL);
    tp_cert foreign = tp_make("CN=node-1/OU=node/O=platoon", "DNS:node-1", -1, 30, &other_ca);
    char p[9][4096];
    snprintf(p[0], sizeof(p[0]), "%s", tp_write(tmpdir, "ca.pem", ca.pem));
    snprintf(p[1], sizeof(p[1]), "%s", tp_write(tmpdir, "n1.pem", n1.pem));
    snprintf(p[2], sizeof(p[2]), "%s", tp_write(tmpdir, "n1.key", n1.key_pem));
    snprintf(p[3], sizeof(p[3]), "%s", tp_write(tmpdir, "n2.pem", n2.pem));
    snprintf(p[4], sizeof(p[4]), "%s", tp_write(tmpdir, "n2.key", n2.key_pem));
    snprintf(p[5], sizeof(p[5]), "%s", tp_write(tmpdir, "expired.pem", expired.pem));
    snprintf(p[6], sizeof(p[6]), "%s", tp_write(tmpdir, "expired.key", expired.key_pem));
    snprintf(p[7], sizeof(p[7]), "%s", tp_write(tmpdir, "foreign.pem", foreign.pem));
    snprintf(p[8], sizeof(p[8]), "%s", tp_write(tmpdir, "foreign.key", foreign.key_pem));
    char *revoking = tp_crl(&ca, &n1);
    char crlpath[4096], emptycrl[4096];
    snprintf(crlpath, sizeof(crlpath), "%s", tp_write(tmpdir, "revoking.pem", revoking));
    char *empty = tp_crl(&ca, NULL);
    snprintf(emptycrl, sizeof(emptycrl), "%s", tp_write(tmpdir, "empty.pem", empty));

    pnet_tls *tls = NULL;
    char err[512];
    pnet_tls_files good = {.ca = p[0], .cert = p[1], .key = p[2], .crl = emptycrl};
    assert_int_equal(pnet__tls_load(&good, 1, 7, &tls, err, sizeof(err)), 0);
    assert_int_equal(tls->self.kind, PNET_ID_NODE);
    assert_int_equal(tls->self.node_id, 1);
    assert_int_equal(tls->generation, 7);
    assert_non_null(tls->crl);
    pnet__tls_ref(tls);
    pnet__tls_unref(tls);
    pnet__tls_unref(tls);

    struct {
        pnet_tls_files f;
        uint64_t node;
        const char *says;
    } bad[] = {
        {{p[0], p[3], p[4], NULL}, 1, "node-2"},      /* another node's certificate */
        {{p[0], p[1], p[4], NULL}, 1, "not the key"}, /* a key of another certificate */
        {{p[0], p[5], p[6], NULL}, 1, "expired"},     /* expired */
        {{p[0], p[7], p[8], NULL}, 1, "not valid"},   /* of another CA */
        {{p[0], p[1], p[2], crlpath}, 1, "revoked"},  /* revoked itself */
        {{p[0], p[1], p[2], p[1]}, 1, "--tls-crl"},   /* a certificate as CRL */
        {{"/nonexistent/ca", p[1], p[2], NULL}, 1, "/nonexistent/ca"},
        {{p[2], p[1], p[2], NULL}, 1, "--tls-ca"},   /* a key as CA */
        {{p[0], p[2], p[2], NULL}, 1, "--tls-cert"}, /* a key as certificate */
        {{p[0], p[1], p[1], NULL}, 1, "--tls-key"},  /* a certificate as key */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tls = NULL;
        err[0] = '\0';
        int rc = pnet__tls_load(&bad[i].f, bad[i].node, 1, &tls, err, sizeof(err));
        if (rc == 0 || tls != NULL || strstr(err, bad[i].says) == NULL) {
            fail_msg("case %zu: rc %d, error '%s', want one naming '%s'", i, rc, err, bad[i].says);
        }
    }
    free(revoking);
    free(empty);
    tp_free(&n1);
    tp_free(&n2);
    tp_free(&expired);
    tp_free(&other_ca);
    tp_free(&foreign);
    remove_tmpdir();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(certificates_name_identities),
        cmocka_unit_test(forwarded_identities_round_trip),
        cmocka_unit_test(revocation_lists),
        cmocka_unit_test(tls_material_is_checked_before_use),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
