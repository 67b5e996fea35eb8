/*
 * Who is calling, and who is answering: the transport's use of TLS (docs/security.md).
 *
 *  - Serving: the server asks for and verifies a client certificate on every connection
 *    (mutual TLS), with the CA, certificate and key of the current pnet_tls; a reload makes the
 *    next handshake use the new ones (gRPC's certificate-config fetcher). Each call's identity
 *    comes from its connection's certificate (identity.h), is checked against the revocation
 *    list, and decides what the call may do: only node certificates may open peer lanes, and
 *    only as themselves; only node certificates may forward a client's identity.
 *  - Dialing: a channel to node N presents this node's certificate and accepts only node N's:
 *    the TLS target name is "node-N" (a name every node certificate carries), and the
 *    certificate's identity is checked once more against N and the revocation list.
 *
 * Parsing a certificate costs tens of microseconds; calls arrive many thousand times a second
 * on a few connections, so each distinct certificate is parsed once and its verdict cached
 * (keyed by the certificate's bytes, dropped when the material is reloaded).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>
#include <xxhash.h>

#include "common/log.h"
#include "net/transport_internal.h"

/* ============================================================================================
 * The material in use
 * ========================================================================================== */

pnet_tls *pnet__tls_get(pnet_transport *t)
{
    pthread_mutex_lock(&t->tls_mu);
    pnet_tls *tls = t->tls;
    if (tls != NULL) {
        pnet__tls_ref(tls);
    }
    pthread_mutex_unlock(&t->tls_mu);
    return tls;
}

/* Called by gRPC before each TLS handshake it serves: hands it new material after a reload. */
static grpc_ssl_certificate_config_reload_status
server_config_fetch(void *ud, grpc_ssl_server_certificate_config **config)
{
    pnet_transport *t = ud;
    grpc_ssl_certificate_config_reload_status st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
    pthread_mutex_lock(&t->tls_mu);
    pnet_tls *tls = t->tls;
    if (tls != NULL && (!t->tls_served || tls->generation != t->tls_served_generation)) {
        grpc_ssl_pem_key_cert_pair pair = {.private_key = tls->key_pem,
                                           .cert_chain = tls->cert_pem};
        *config = grpc_ssl_server_certificate_config_create(tls->ca_pem, &pair, 1);
        if (*config != NULL) {
            t->tls_served = true;
            t->tls_served_generation = tls->generation;
            st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
        } else {
            st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
        }
    }
    pthread_mutex_unlock(&t->tls_mu);
    return st;
}

grpc_server_credentials *pnet__server_creds(pnet_transport *t)
{
    if (!t->secure) {
        return grpc_insecure_server_credentials_create();
    }
    grpc_ssl_server_credentials_options *o =
        grpc_ssl_server_credentials_create_options_using_config_fetcher(
            GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, server_config_fetch, t);
    if (o == NULL) {
        return NULL;
    }
    /* Takes ownership of the options. */
    return grpc_ssl_server_credentials_create_with_options(o);
}

/* ============================================================================================
 * Refusals, said once per certificate
 * ========================================================================================== */

/* Logs @line unless a refusal of the same certificate was logged already (at most
 * PNET_REFUSALS_LOGGED different ones are remembered; after that, one line in 1024). */
static void log_refusal_once(pnet_transport *t, const char *who, const char *line)
{
    uint64_t h = XXH3_64bits(who, strlen(who));
    bool log = true;
    pthread_mutex_lock(&t->tls_mu);
    for (size_t i = 0; i < t->n_refusals_logged; i++) {
        if (t->refusals_logged[i] == h) {
            log = false;
            break;
        }
    }
    if (log) {
        if (t->n_refusals_logged < PNET_REFUSALS_LOGGED) {
            t->refusals_logged[t->n_refusals_logged++] = h;
        } else {
            log = (t->refusals_overflow++ % 1024) == 0;
        }
    }
    pthread_mutex_unlock(&t->tls_mu);
    atomic_fetch_add(&t->calls_refused, 1);
    if (log) {
        PT_WARN("%s", line);
    }
}

/* ============================================================================================
 * Serving: the identity of a call
 * ========================================================================================== */

/* The verdict on one certificate, under the material of one generation. */
struct pnet_idcache_entry {
    uint64_t hash;
    uint64_t generation;
    size_t len;
    char *pem;
    int code; /* 0, or the gRPC status that refuses every call made with it */
    pnet_identity who;
    char why[400];
};

/* With tls_mu held: the cached verdict on @pem, or a new one. */
static const struct pnet_idcache_entry *verdict(pnet_transport *t, const pnet_tls *tls,
                                                const char *pem, size_t len)
{
    uint64_t h = XXH3_64bits(pem, len);
    struct pnet_idcache_entry *e = &t->idcache[h % PNET_IDCACHE_SIZE];
    if (e->pem != NULL && e->hash == h && e->len == len && e->generation == tls->generation &&
        memcmp(e->pem, pem, len) == 0) {
        return e;
    }
    free(e->pem);
    memset(e, 0, sizeof(*e));
    e->pem = malloc(len);
    if (e->pem == NULL) {
        return NULL;
    }
    memcpy(e->pem, pem, len);
    e->hash = h;
    e->len = len;
    e->generation = tls->generation;
    char why[320];
    if (pnet__identity_from_pem(pem, len, &e->who, why, sizeof(why)) != 0) {
        e->code = GRPC_STATUS_PERMISSION_DENIED;
        snprintf(e->why, sizeof(e->why), "the certificate names no Platoon identity: %s", why);
    } else if (tls->crl != NULL && pnet__crl_revoked(tls->crl, pem, len)) {
        e->code = GRPC_STATUS_UNAUTHENTICATED;
        snprintf(e->why, sizeof(e->why), "the certificate of '%s' is revoked", e->who.name);
    }
    return e;
}

/* The caller's certificate identity (TLS on). Returns a gRPC status, 0 when it may proceed. */
static int cert_identity(pnet_transport *t, grpc_call *call, pnet_identity *who, char *why,
                         size_t cap)
{
    int code = GRPC_STATUS_UNAUTHENTICATED;
    snprintf(why, cap, "no client certificate");
    grpc_auth_context *ctx = grpc_call_auth_context(call);
    if (ctx == NULL) {
        return code;
    }
    grpc_auth_property_iterator it =
        grpc_auth_context_find_properties_by_name(ctx, GRPC_X509_PEM_CERT_PROPERTY_NAME);
    const grpc_auth_property *p = grpc_auth_property_iterator_next(&it);
    if (p != NULL && p->value != NULL && p->value_length > 0) {
        pnet_tls *tls = NULL;
        pthread_mutex_lock(&t->tls_mu);
        tls = t->tls;
        const struct pnet_idcache_entry *e =
            tls != NULL ? verdict(t, tls, p->value, p->value_length) : NULL;
        if (e == NULL) {
            code = GRPC_STATUS_RESOURCE_EXHAUSTED;
            snprintf(why, cap, "out of memory");
        } else {
            code = e->code;
            *who = e->who;
            snprintf(why, cap, "%s", e->why);
        }
        pthread_mutex_unlock(&t->tls_mu);
    }
    grpc_auth_context_release(ctx);
    return code;
}

int pnet__auth_call(pnet_transport *t, grpc_call *call, const grpc_metadata_array *md, int lane,
                    pnet_identity *who, uint64_t *via, char *why, size_t cap)
{
    char line[400];
    char announced[64];
    memset(who, 0, sizeof(*who));
    who->kind = PNET_ID_NONE;
    *via = 0;
    why[0] = '\0';
    if (!t->secure) {
        return 0; /* --insecure: nobody is anyone, everything is allowed */
    }
    int code = cert_identity(t, call, who, why, cap);
    if (code != 0) {
        snprintf(line, sizeof(line), "refused a caller: %s", why);
        log_refusal_once(t, why, line);
        return code;
    }
    if (lane >= 0) {
        /* The peer protocol: node certificates only, each speaking as itself. */
        if (who->kind != PNET_ID_NODE) {
            snprintf(why, cap,
                     "only node certificates may use the peer protocol, not client '%s' (%s)",
                     who->name, pnet__role_name(who->role));
            snprintf(line, sizeof(line), "refused a peer lane: %s", why);
            log_refusal_once(t, who->name, line);
            return GRPC_STATUS_PERMISSION_DENIED;
        }
        pnet__metadata_value(md, PNET_SENDER_ID_METADATA, announced, sizeof(announced));
        char mine[32];
        snprintf(mine, sizeof(mine), "%" PRIu64, who->node_id);
        if (strcmp(announced, mine) != 0) {
            snprintf(why, cap, "the lane announces node %s but the certificate is %s's",
                     announced[0] != '\0' ? announced : "(none)", who->name);
            snprintf(line, sizeof(line), "refused a peer lane: %s", why);
            log_refusal_once(t, who->name, line);
            return GRPC_STATUS_PERMISSION_DENIED;
        }
        return 0;
    }
    /* A request forwarded by a node keeps its original caller; only a node may say so. */
    char fwd[PNET_PRINCIPAL_MAX];
    pnet__metadata_value(md, PNET_PRINCIPAL_METADATA, fwd, sizeof(fwd));
    if (fwd[0] != '\0') {
        if (who->kind != PNET_ID_NODE) {
            snprintf(why, cap, "'%s' may not act for another caller (only nodes forward requests)",
                     who->name);
            snprintf(line, sizeof(line), "refused a call: %s", why);
            log_refusal_once(t, who->name, line);
            return GRPC_STATUS_PERMISSION_DENIED;
        }
        *via = who->node_id;
        if (pnet__identity_decode(fwd, strlen(fwd), who) != 0) {
            snprintf(why, cap, "node %" PRIu64 " forwarded a malformed caller identity", *via);
            return GRPC_STATUS_INVALID_ARGUMENT;
        }
    }
    return 0;
}

/* ============================================================================================
 * Dialing: channels that accept only the node they are meant for
 * ========================================================================================== */

struct verify_ctx {
    pnet_tls *tls;
    uint64_t node_id; /* the node expected at the other end */
    atomic_bool logged;
};

static int verify_node(const char *target, const char *peer_pem, void *ud)
{
    struct verify_ctx *v = ud;
    pnet_identity who;
    char why[320];
    int bad = 0;
    size_t len = peer_pem != NULL ? strlen(peer_pem) : 0;
    if (len == 0) {
        snprintf(why, sizeof(why), "no certificate");
        bad = 1;
    } else if (pnet__identity_from_pem(peer_pem, len, &who, why, sizeof(why)) != 0) {
        bad = 1;
    } else if (who.kind != PNET_ID_NODE || who.node_id != v->node_id) {
        snprintf(why, sizeof(why), "the certificate is '%s''s", who.name);
        bad = 1;
    } else if (v->tls->crl != NULL && pnet__crl_revoked(v->tls->crl, peer_pem, len)) {
        snprintf(why, sizeof(why), "the certificate of '%s' is revoked", who.name);
        bad = 1;
    }
    if (bad && !atomic_exchange(&v->logged, true)) {
        PT_WARN("refused to talk to node %" PRIu64 " (%s): %s", v->node_id,
                target != NULL ? target : "?", why);
    }
    return bad;
}

static void verify_free(void *ud)
{
    struct verify_ctx *v = ud;
    pnet__tls_unref(v->tls);
    free(v);
}

grpc_channel *pnet__channel_new(pnet_transport *t, const char *address, uint64_t node_id)
{
    pnet_tls *tls = pnet__tls_get(t);
    if (tls == NULL) {
        grpc_channel_credentials *creds = grpc_insecure_credentials_create();
        grpc_channel *ch = grpc_channel_create(address, creds, &t->client_args);
        grpc_channel_credentials_release(creds);
        return ch;
    }
    struct verify_ctx *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        pnet__tls_unref(tls);
        return NULL;
    }
    v->tls = tls; /* the reference is the context's now */
    v->node_id = node_id;
    atomic_init(&v->logged, false);
    grpc_ssl_pem_key_cert_pair pair = {.private_key = tls->key_pem, .cert_chain = tls->cert_pem};
    grpc_ssl_verify_peer_options vo = {
        .verify_peer_callback = verify_node,
        .verify_peer_callback_userdata = v,
        .verify_peer_destruct = verify_free,
    };
    grpc_channel_credentials *creds = grpc_ssl_credentials_create_ex(tls->ca_pem, &pair, &vo, NULL);
    if (creds == NULL) {
        verify_free(v);
        return NULL;
    }
    /* Verify the node's identity, not its address: addresses move, and one certificate can be
     * checked against a name every node certificate carries (identity.h). */
    char target[32];
    snprintf(target, sizeof(target), "node-%" PRIu64, node_id);
    grpc_arg args[PNET_CLIENT_ARGS_MAX + 1];
    size_t n = t->client_args.num_args;
    memcpy(args, t->client_args.args, n * sizeof(grpc_arg));
    args[n].type = GRPC_ARG_STRING;
    args[n].key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
    args[n].value.string = target;
    grpc_channel_args cargs = {.num_args = n + 1, .args = args};
    grpc_channel *ch = grpc_channel_create(address, creds, &cargs);
    grpc_channel_credentials_release(creds);
    return ch;
}

/* ============================================================================================
 * Reload
 * ========================================================================================== */

int pnet_transport_set_tls(pnet_transport *t, pnet_tls *tls)
{
    if (t == NULL || tls == NULL) {
        return PT_EINVAL;
    }
    pthread_mutex_lock(&t->mu);
    pthread_mutex_lock(&t->tls_mu);
    if (!t->secure) {
        /* A plaintext transport cannot become a TLS one: its listener has no TLS. */
        pthread_mutex_unlock(&t->tls_mu);
        pthread_mutex_unlock(&t->mu);
        return PT_EINVAL;
    }
    pnet__tls_ref(tls);
    pnet_tls *old = t->tls;
    t->tls = tls;
    for (size_t i = 0; i < PNET_IDCACHE_SIZE; i++) {
        free(t->idcache[i].pem);
        memset(&t->idcache[i], 0, sizeof(t->idcache[i]));
    }
    t->n_refusals_logged = 0;
    pthread_mutex_unlock(&t->tls_mu);
    /* Outbound channels present the certificate they were made with on every reconnection:
     * make them anew, so that an old certificate can be revoked or expire after a reload. */
    pnet__peers_redial(t);
    pnet__chans_retire(t);
    pthread_mutex_unlock(&t->mu);
    pnet__tls_unref(old);
    return 0;
}

int pnet__auth_init(pnet_transport *t)
{
    t->idcache = calloc(PNET_IDCACHE_SIZE, sizeof(*t->idcache));
    return t->idcache != NULL ? 0 : PT_ENOMEM;
}

void pnet__auth_free(pnet_transport *t)
{
    if (t->idcache != NULL) {
        for (size_t i = 0; i < PNET_IDCACHE_SIZE; i++) {
            free(t->idcache[i].pem);
        }
        free(t->idcache);
        t->idcache = NULL;
    }
    pnet__tls_unref(t->tls);
    t->tls = NULL;
}
