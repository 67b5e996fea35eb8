/*
 * kv-server's command line. The flags are platoond's (same names, same meaning), so that
 * whatever starts platoond nodes (an operator's scripts, the project's test harness) can start
 * kv nodes too: every one of them fills a field of pnode_options.
 */
#include "kv_flags.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <platoon/storage.h>

const char kv_server_usage[] =
    "usage: kv-server --id N --listen HOST:PORT --data-dir DIR\n"
    "                 (--initial-cluster ID=HOST:PORT,... | --join) (TLS flags | --insecure)\n"
    "\n"
    "A replicated key-value store (Get, Put, Append) on Platoon's node runtime.\n"
    "\n"
    "  --id N                  this node's id (a positive integer, unique in the cluster)\n"
    "  --listen HOST:PORT      address for peers and clients (the one in --initial-cluster)\n"
    "  --data-dir DIR          where the log, the vote and snapshots are kept\n"
    "  --initial-cluster LIST  the founding members, e.g. 1=127.0.0.1:7001,2=127.0.0.1:7002;\n"
    "                          used only by the first start on an empty data dir\n"
    "  --join                  start empty and wait to be added (platoonctl cluster add)\n"
    "  --cluster-name NAME     cluster identity recorded in the data dir (default kv)\n"
    "  --log-level LEVEL       debug, info, warn or error (default info)\n"
    "  --tick-ms MS            Raft tick (default 50)\n"
    "  --election-ticks N      election timeout in ticks, randomized in [N, 2N) (default 10)\n"
    "  --heartbeat-ticks N     heartbeat interval in ticks (default 1)\n"
    "  --snapshot-every N      snapshot after N applied entries, 0 = never (default 10000)\n"
    "  --snapshot-keep N       log entries kept behind a snapshot (default 1000)\n"
    "  --sync MODE             full (default), normal, or none (unsafe: tests only)\n"
    "  --tls-ca FILE           the CA of every node and client certificate (PEM)\n"
    "  --tls-cert FILE         this node's certificate (platoonctl certs node --id N)\n"
    "  --tls-key FILE          its private key\n"
    "  --tls-crl FILE          a revocation list signed by the CA (optional; SIGHUP rereads)\n"
    "  --insecure              no TLS and no authentication (tests and experiments only)\n"
    "  --help\n";

static int fail(char *err, size_t cap, const char *flag, const char *what)
{
    snprintf(err, cap, "%s: %s", flag, what);
    return -1;
}

static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (s == NULL || *s < '0' || *s > '9') {
        return false;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

static bool parse_address(const char *s, char *out)
{
    const char *colon = strrchr(s, ':');
    uint64_t port;
    if (colon == NULL || colon == s || strlen(s) >= PRAFT_ADDRESS_MAX ||
        !parse_u64(colon + 1, 0, 65535, &port)) {
        return false;
    }
    snprintf(out, PRAFT_ADDRESS_MAX, "%s", s);
    return true;
}

/* "1=host:port,2=host:port" into o->initial. */
static bool parse_members(const char *list, pnode_options *o)
{
    const char *p = list;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        char item[PRAFT_ADDRESS_MAX + 32];
        if (len >= sizeof(item) || o->n_initial == PRAFT_MAX_MEMBERS) {
            return false;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        char *eq = strchr(item, '=');
        praft_member *m = &o->initial[o->n_initial];
        memset(m, 0, sizeof(*m));
        if (eq == NULL) {
            return false;
        }
        *eq = '\0';
        if (!parse_u64(item, 1, UINT64_MAX, &m->id) || !parse_address(eq + 1, m->address)) {
            return false;
        }
        for (size_t i = 0; i < o->n_initial; i++) {
            if (o->initial[i].id == m->id) {
                return false;
            }
        }
        o->n_initial++;
        p += len + (end != NULL ? 1 : 0);
    }
    return o->n_initial > 0;
}

/* The cluster's identity from its name (FNV-1a): a data directory of another cluster is
 * refused at start. */
static uint64_t cluster_id_of(const char *name)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (const char *p = name; *p != '\0'; p++) {
        h = (h ^ (uint8_t)*p) * UINT64_C(1099511628211);
    }
    return h != 0 ? h : 1;
}

/* One flag that takes a value. Returns 0, or -1 with @err set. */
static int parse_value(kv_flags *f, const char *a, const char *v, char *err, size_t cap)
{
    pnode_options *o = &f->node;
    uint64_t n;
    if (strcmp(a, "--id") == 0) {
        return parse_u64(v, 1, UINT64_MAX, &o->id) ? 0 : fail(err, cap, a, "must be positive");
    }
    if (strcmp(a, "--listen") == 0) {
        return parse_address(v, o->listen) ? 0 : fail(err, cap, a, "must be HOST:PORT");
    }
    if (strcmp(a, "--data-dir") == 0) {
        o->data_dir = v;
        return *v != '\0' ? 0 : fail(err, cap, a, "must be a path");
    }
    if (strcmp(a, "--initial-cluster") == 0) {
        return parse_members(v, o) ? 0 : fail(err, cap, a, "must be ID=HOST:PORT,... (ids unique)");
    }
    if (strcmp(a, "--cluster-name") == 0) {
        o->cluster_id = cluster_id_of(v);
        return *v != '\0' ? 0 : fail(err, cap, a, "must not be empty");
    }
    if (strcmp(a, "--log-level") == 0) {
        return pt_log_level_parse(v, &f->log_level) == 0
                   ? 0
                   : fail(err, cap, a, "must be debug, info, warn or error");
    }
    if (strcmp(a, "--tick-ms") == 0 || strcmp(a, "--election-ticks") == 0 ||
        strcmp(a, "--heartbeat-ticks") == 0) {
        if (!parse_u64(v, 1, 1000000, &n)) {
            return fail(err, cap, a, "must be within [1, 1000000]");
        }
        uint32_t *slot = a[2] == 't'   ? &o->tick_ms
                         : a[2] == 'e' ? &o->election_ticks
                                       : &o->heartbeat_ticks;
        *slot = (uint32_t)n;
        return 0;
    }
    if (strcmp(a, "--snapshot-every") == 0 || strcmp(a, "--snapshot-keep") == 0) {
        if (!parse_u64(v, 0, UINT64_MAX, &n)) {
            return fail(err, cap, a, "must be a non-negative integer");
        }
        *(strcmp(a, "--snapshot-every") == 0 ? &o->snapshot_every : &o->snapshot_keep) = n;
        return 0;
    }
    if (strcmp(a, "--sync") == 0) {
        static const struct {
            const char *name;
            uint32_t mode;
        } modes[] = {
            {"full", PSTORE_SYNC_FULL}, {"normal", PSTORE_SYNC_NORMAL}, {"none", PSTORE_SYNC_NONE}};
        for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
            if (strcmp(v, modes[i].name) == 0) {
                o->sync = modes[i].mode;
                return 0;
            }
        }
        return fail(err, cap, a, "must be full, normal or none");
    }
    const char **tls = strcmp(a, "--tls-ca") == 0     ? &o->tls.ca
                       : strcmp(a, "--tls-cert") == 0 ? &o->tls.cert
                       : strcmp(a, "--tls-key") == 0  ? &o->tls.key
                       : strcmp(a, "--tls-crl") == 0  ? &o->tls.crl
                                                      : NULL;
    if (tls != NULL) {
        *tls = v;
        return *v != '\0' ? 0 : fail(err, cap, a, "must be a file");
    }
    return fail(err, cap, a, "unknown flag (see --help)");
}

int kv_flags_parse(int argc, char **argv, kv_flags *f, char *err, size_t cap)
{
    memset(f, 0, sizeof(*f));
    pnode_options_init(&f->node, 0);
    f->node.cluster_id = cluster_id_of("kv");
    f->log_level = PT_LOG_INFO;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            f->help = true;
            return 0;
        } else if (strcmp(a, "--join") == 0) {
            f->node.join = true;
        } else if (strcmp(a, "--insecure") == 0) {
            f->node.insecure = true;
        } else if (strncmp(a, "--", 2) != 0) {
            return fail(err, cap, a, "unexpected argument");
        } else if (i + 1 == argc) {
            return fail(err, cap, a, "needs a value (or is unknown: see --help)");
        } else if (parse_value(f, a, argv[++i], err, cap) != 0) {
            return -1;
        }
    }
    const pnode_options *o = &f->node;
    if (o->id == 0 || o->listen[0] == '\0' || o->data_dir == NULL) {
        return fail(err, cap,
                    o->id == 0             ? "--id"
                    : o->listen[0] == '\0' ? "--listen"
                                           : "--data-dir",
                    "is required");
    }
    if (o->join && o->n_initial > 0) {
        return fail(err, cap, "--join", "cannot be combined with --initial-cluster");
    }
    if (o->election_ticks <= o->heartbeat_ticks) {
        return fail(err, cap, "--election-ticks", "must exceed --heartbeat-ticks");
    }
    /* The runtime itself refuses a node without TLS that was not asked to be --insecure, and
     * TLS files that do not go together; it says which. */
    return 0;
}
