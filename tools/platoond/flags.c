#include "flags.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/checksum.h"
#include "platoon/storage.h"

const char platoond_usage[] =
    "usage: platoond --id N --listen HOST:PORT --data-dir DIR\n"
    "                (--initial-cluster ID=HOST:PORT,... | --join) [options]\n"
    "\n"
    "  --id N                  this node's id (a positive integer, unique in the cluster)\n"
    "  --listen HOST:PORT      address for peers and clients (the one in --initial-cluster)\n"
    "  --data-dir DIR          where the log, the vote and snapshots are kept\n"
    "  --initial-cluster LIST  the founding members, e.g. 1=10.0.0.1:7001,2=10.0.0.2:7001;\n"
    "                          used only by the first start on an empty data dir\n"
    "  --join                  start empty and wait to be added with `platoonctl cluster add`\n"
    "  --cluster-name NAME     cluster identity recorded in the data dir (default platoon)\n"
    "  --log-level LEVEL       debug, info, warn or error (default info)\n"
    "  --tick-ms MS            Raft tick (default 50)\n"
    "  --election-ticks N      election timeout in ticks, randomized in [N, 2N) (default 10)\n"
    "  --heartbeat-ticks N     heartbeat interval in ticks (default 1)\n"
    "  --snapshot-every N      snapshot after N applied entries, 0 = never (default 10000)\n"
    "  --snapshot-keep N       log entries kept behind a snapshot (default 1000)\n"
    "  --sync MODE             full (default), normal, or none (unsafe: tests only)\n"
    "  --storage-engine E      wal (default) or lmdb: the engine of a NEW data dir; an\n"
    "                          existing one keeps the engine it was created with\n"
    "  --lease-reads           linearizable reads from the leader's lease, without a\n"
    "                          heartbeat round; needs clocks whose rates differ by less\n"
    "                          than an eighth, and the flag on every node (default off)\n"
    "  --http HOST:PORT        serve the live view of the platoon (/), /healthz, /readyz\n"
    "                          and /metrics (Prometheus) there; HTTPS with the node's\n"
    "                          certificate when TLS is on, and the live view and\n"
    "                          /metrics then need a reader's client certificate\n"
    "                          (default: off; see docs/operations.md)\n"
    "\n"
    "Limits (docs/operations.md):\n"
    "  --max-vehicles N        most vehicles in the platoon; a new one beyond is refused\n"
    "                          with RESOURCE_EXHAUSTED; 0 = no limit (default 1000000)\n"
    "  --max-sessions-per-client N\n"
    "                          exactly-once sessions one client (certificate name) may\n"
    "                          hold; opening one more closes its oldest (default 10000)\n"
    "  --io-threads N          threads doing the network's I/O and TLS (default: the cores,\n"
    "                          2 to 8)\n"
    "  --max-request-bytes N   largest client request (default 65536)\n"
    "  --max-streams-per-connection N\n"
    "                          concurrent calls per connection (default 256)\n"
    "  --max-unread-bytes-per-connection N\n"
    "                          answers a connection has not read, in bytes; beyond it\n"
    "                          RESOURCE_EXHAUSTED (default 16777216)\n"
    "  --max-unread-bytes N    the same for all connections (default 268435456)\n"
    "  --send-timeout-ms MS    an answer not read within MS is cancelled (default 30000)\n"
    "  --handshake-timeout-ms MS\n"
    "                          TLS handshake and HTTP/2 preface deadline (default 10000)\n"
    "  --max-idle-ms MS        a connection without calls is closed after MS (default\n"
    "                          300000)\n"
    "  --transport-memory-bytes N\n"
    "                          memory gRPC may use in all (default 2147483648)\n"
    "\n"
    "Watching (WatchPlatoon; docs/operations.md, \"Watching\"):\n"
    "  --watch-history N       recent changes kept so that a watch can resume; 0-10000000\n"
    "                          (default 100000)\n"
    "  --watch-max-lag N       changes a watcher may be behind before its stream ends\n"
    "                          with RESOURCE_EXHAUSTED (default 10000)\n"
    "  --watch-buffer-bytes N  messages a watcher may leave unread, in bytes; the node\n"
    "                          sends no more to it beyond them (default 1048576)\n"
    "  --watch-max-watchers N  watches open at once on this node (default 1024)\n"
    "\n"
    "Security (required: TLS files, or --insecure; see docs/security.md):\n"
    "  --tls-ca FILE           the CA that signs every node and client certificate (PEM)\n"
    "  --tls-cert FILE         this node's certificate (Subject CN node-<id>, OU node)\n"
    "  --tls-key FILE          its private key\n"
    "  --tls-crl FILE          a revocation list signed by the CA (optional)\n"
    "                          SIGHUP reads all four files again (rotation, revocation)\n"
    "  --insecure              no TLS and no authentication: anyone who reaches the port\n"
    "                          can read and change everything (tests and experiments only)\n"
    "  --help, --version\n";

static int fail(char *err, size_t cap, const char *flag, const char *what)
{
    snprintf(err, cap, "%s: %s", flag, what);
    return -1;
}

static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (s == NULL || *s == '\0' || *s == '-') {
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

/* "host:port" with a non-empty host and a port in [1, 65535] (0 allowed for --listen). */
static bool valid_address(const char *s, bool allow_port_0)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s || strlen(s) >= PRAFT_ADDRESS_MAX) {
        return false;
    }
    uint64_t port;
    return parse_u64(colon + 1, allow_port_0 ? 0 : 1, 65535, &port);
}

static int parse_members(const char *list, pnode_options *o, char *err, size_t cap)
{
    const char *flag = "--initial-cluster";
    char *copy = strdup(list);
    if (copy == NULL) {
        return fail(err, cap, flag, "out of memory");
    }
    int rc = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        uint64_t id;
        if (eq == NULL) {
            rc = fail(err, cap, flag, "each member must be ID=HOST:PORT");
            break;
        }
        *eq = '\0';
        if (!parse_u64(item, 1, UINT64_MAX, &id)) {
            rc = fail(err, cap, flag, "member ids must be positive integers");
            break;
        }
        if (!valid_address(eq + 1, false)) {
            snprintf(err, cap,
                     "%s: member %llu: address must be HOST:PORT with a port in [1, 65535]", flag,
                     (unsigned long long)id);
            rc = -1;
            break;
        }
        for (size_t i = 0; i < o->n_initial; i++) {
            if (o->initial[i].id == id) {
                snprintf(err, cap, "%s: member %llu is listed twice", flag, (unsigned long long)id);
                rc = -1;
                break;
            }
        }
        if (rc != 0) {
            break;
        }
        if (o->n_initial == PRAFT_MAX_MEMBERS) {
            rc = fail(err, cap, flag, "too many members");
            break;
        }
        praft_member *m = &o->initial[o->n_initial++];
        memset(m, 0, sizeof(*m));
        m->id = id;
        snprintf(m->address, sizeof(m->address), "%s", eq + 1);
    }
    if (rc == 0 && o->n_initial == 0) {
        rc = fail(err, cap, flag, "no members");
    }
    free(copy);
    return rc;
}

/* The transport's resource bounds: each a positive integer within its range. Returns whether
 * @a is one of them; *@rc is -1 (with @err set) when its value is not acceptable. */
/* The --watch-* flags: true when @a is one (*rc then 0, or -1 with @err set). */
static bool watch_flag(platoond_flags *f, const char *a, const char *v, int *rc, char *err,
                       size_t cap)
{
    uint64_t n;
    uint64_t min = 1, max = UINT32_MAX;
    if (strcmp(a, "--watch-history") == 0) {
        min = 0;
        max = PVEH_WATCH_HISTORY_MAX;
    } else if (strcmp(a, "--watch-buffer-bytes") == 0) {
        min = PVEH_WATCH_BUFFER_BYTES_MIN;
        max = (uint64_t)1 << 40;
    } else if (strcmp(a, "--watch-max-lag") != 0 && strcmp(a, "--watch-max-watchers") != 0) {
        return false;
    }
    *rc = 0;
    if (!parse_u64(v, min, max, &n)) {
        char why[96];
        snprintf(why, sizeof(why), "must be within [%llu, %llu]", (unsigned long long)min,
                 (unsigned long long)max);
        *rc = fail(err, cap, a, why);
    } else if (strcmp(a, "--watch-history") == 0) {
        f->watch.history = (uint32_t)n;
    } else if (strcmp(a, "--watch-buffer-bytes") == 0) {
        f->watch.buffer_bytes = (size_t)n;
    } else if (strcmp(a, "--watch-max-lag") == 0) {
        f->watch.max_lag = (uint32_t)n;
    } else {
        f->watch.max_watchers = (uint32_t)n;
    }
    return true;
}

static bool limit_flag(platoond_flags *f, const char *a, const char *v, int *rc, char *err,
                       size_t cap)
{
    static const struct {
        const char *name;
        uint64_t min, max;
        size_t offset;
        bool wide; /* size_t (else uint32_t) */
    } limits[] = {
        {"--io-threads", 1, 64, offsetof(pnode_options, io_threads), false},
        {"--max-request-bytes", 256, 16u << 20, offsetof(pnode_options, max_request_bytes), true},
        {"--max-streams-per-connection", 1, 100000,
         offsetof(pnode_options, max_streams_per_connection), false},
        {"--max-unread-bytes-per-connection", 65536, (uint64_t)1 << 40,
         offsetof(pnode_options, max_unread_bytes_per_connection), true},
        {"--max-unread-bytes", 65536, (uint64_t)1 << 40, offsetof(pnode_options, max_unread_bytes),
         true},
        {"--send-timeout-ms", 100, 3600000, offsetof(pnode_options, send_timeout_ms), false},
        {"--handshake-timeout-ms", 100, 3600000, offsetof(pnode_options, handshake_timeout_ms),
         false},
        {"--max-idle-ms", 1000, 86400000, offsetof(pnode_options, max_idle_ms), false},
        {"--transport-memory-bytes", 16u << 20, (uint64_t)1 << 40,
         offsetof(pnode_options, transport_memory_bytes), true},
    };
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        if (strcmp(a, limits[i].name) != 0) {
            continue;
        }
        uint64_t n;
        *rc = 0;
        if (!parse_u64(v, limits[i].min, limits[i].max, &n)) {
            char why[96];
            snprintf(why, sizeof(why), "must be within [%llu, %llu]",
                     (unsigned long long)limits[i].min, (unsigned long long)limits[i].max);
            *rc = fail(err, cap, a, why);
        } else if (limits[i].wide) {
            *(size_t *)(void *)((char *)&f->node + limits[i].offset) = (size_t)n;
        } else {
            *(uint32_t *)(void *)((char *)&f->node + limits[i].offset) = (uint32_t)n;
        }
        return true;
    }
    return false;
}

/* The flags that take a value, for the message about a flag that ends the line: an unknown
 * one is called unknown, not told that it "needs a value". (With a value after it, the chain
 * below names an unknown flag anyway.) */
static const char *const value_flags[] = {
    "--id",
    "--listen",
    "--data-dir",
    "--initial-cluster",
    "--cluster-name",
    "--log-level",
    "--tick-ms",
    "--election-ticks",
    "--heartbeat-ticks",
    "--snapshot-every",
    "--snapshot-keep",
    "--sync",
    "--http",
    "--storage-engine",
    "--max-vehicles",
    "--max-sessions-per-client",
    "--io-threads",
    "--max-request-bytes",
    "--max-streams-per-connection",
    "--max-unread-bytes-per-connection",
    "--max-unread-bytes",
    "--send-timeout-ms",
    "--handshake-timeout-ms",
    "--max-idle-ms",
    "--transport-memory-bytes",
    "--watch-history",
    "--watch-max-lag",
    "--watch-buffer-bytes",
    "--watch-max-watchers",
    "--tls-ca",
    "--tls-cert",
    "--tls-key",
    "--tls-crl",
};

static bool known_value_flag(const char *a)
{
    for (size_t i = 0; i < sizeof(value_flags) / sizeof(value_flags[0]); i++) {
        if (strcmp(a, value_flags[i]) == 0) {
            return true;
        }
    }
    return false;
}

int platoond_parse(int argc, char **argv, platoond_flags *f, char *err, size_t cap)
{
    memset(f, 0, sizeof(*f));
    pnode_options_init(&f->node, 0);
    pveh_options_init(&f->sm);
    pveh_watch_options_init(&f->watch);
    f->log_level = PT_LOG_INFO;
    const char *cluster_name = "platoon";
    bool have_id = false, have_listen = false, have_dir = false, have_initial = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            f->help = true;
            return 0;
        }
        if (strcmp(a, "--version") == 0) {
            f->version = true;
            return 0;
        }
        if (strcmp(a, "--join") == 0) {
            f->node.join = true;
            continue;
        }
        if (strcmp(a, "--insecure") == 0) {
            f->node.insecure = true;
            continue;
        }
        if (strcmp(a, "--lease-reads") == 0) {
            f->node.lease_reads = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            return fail(err, cap, a, "unexpected argument");
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            return fail(err, cap, a,
                        known_value_flag(a) ? "needs a value" : "unknown flag (see --help)");
        }
        i++;
        uint64_t n;
        int limit_rc = 0;
        if (strcmp(a, "--id") == 0) {
            if (!parse_u64(v, 1, UINT64_MAX, &n)) {
                return fail(err, cap, a, "must be a positive integer");
            }
            f->node.id = n;
            have_id = true;
        } else if (strcmp(a, "--listen") == 0) {
            if (!valid_address(v, true)) {
                return fail(err, cap, a, "must be HOST:PORT");
            }
            snprintf(f->node.listen, sizeof(f->node.listen), "%s", v);
            have_listen = true;
        } else if (strcmp(a, "--http") == 0) {
            if (!valid_address(v, true)) {
                return fail(err, cap, a, "must be HOST:PORT with a port in [0, 65535]");
            }
            f->http = v;
        } else if (strcmp(a, "--data-dir") == 0) {
            if (*v == '\0' || strlen(v) >= sizeof(f->data_dir)) {
                return fail(err, cap, a, "must be a path");
            }
            snprintf(f->data_dir, sizeof(f->data_dir), "%s", v);
            have_dir = true;
        } else if (strcmp(a, "--initial-cluster") == 0) {
            if (parse_members(v, &f->node, err, cap) != 0) {
                return -1;
            }
            have_initial = true;
        } else if (strcmp(a, "--cluster-name") == 0) {
            if (*v == '\0') {
                return fail(err, cap, a, "must not be empty");
            }
            cluster_name = v;
        } else if (strcmp(a, "--log-level") == 0) {
            if (pt_log_level_parse(v, &f->log_level) != 0) {
                return fail(err, cap, a, "must be debug, info, warn or error");
            }
        } else if (strcmp(a, "--tick-ms") == 0) {
            if (!parse_u64(v, 1, 10000, &n)) {
                return fail(err, cap, a, "must be within [1, 10000]");
            }
            f->node.tick_ms = (uint32_t)n;
        } else if (strcmp(a, "--election-ticks") == 0) {
            if (!parse_u64(v, 2, 1000000, &n)) {
                return fail(err, cap, a, "must be within [2, 1000000]");
            }
            f->node.election_ticks = (uint32_t)n;
        } else if (strcmp(a, "--heartbeat-ticks") == 0) {
            if (!parse_u64(v, 1, 1000000, &n)) {
                return fail(err, cap, a, "must be within [1, 1000000]");
            }
            f->node.heartbeat_ticks = (uint32_t)n;
        } else if (strcmp(a, "--snapshot-every") == 0) {
            if (!parse_u64(v, 0, UINT64_MAX, &n)) {
                return fail(err, cap, a, "must be a non-negative integer");
            }
            f->node.snapshot_every = n;
        } else if (strcmp(a, "--snapshot-keep") == 0) {
            if (!parse_u64(v, 0, UINT64_MAX, &n)) {
                return fail(err, cap, a, "must be a non-negative integer");
            }
            f->node.snapshot_keep = n;
        } else if (strcmp(a, "--max-vehicles") == 0) {
            if (!parse_u64(v, 0, UINT64_MAX, &n)) {
                return fail(err, cap, a, "must be a non-negative integer (0: no limit)");
            }
            f->sm.max_vehicles = n;
        } else if (strcmp(a, "--max-sessions-per-client") == 0) {
            if (!parse_u64(v, 1, f->sm.max_sessions, &n)) {
                char why[96];
                snprintf(why, sizeof(why), "must be within [1, %u]", f->sm.max_sessions);
                return fail(err, cap, a, why);
            }
            f->sm.max_sessions_per_principal = (uint32_t)n;
        } else if (limit_flag(f, a, v, &limit_rc, err, cap)) {
            if (limit_rc != 0) {
                return limit_rc;
            }
        } else if (watch_flag(f, a, v, &limit_rc, err, cap)) {
            if (limit_rc != 0) {
                return limit_rc;
            }
        } else if (strcmp(a, "--tls-ca") == 0 || strcmp(a, "--tls-cert") == 0 ||
                   strcmp(a, "--tls-key") == 0 || strcmp(a, "--tls-crl") == 0) {
            if (*v == '\0') {
                return fail(err, cap, a, "must be a file");
            }
            const char **slot = strcmp(a, "--tls-ca") == 0     ? &f->node.tls.ca
                                : strcmp(a, "--tls-cert") == 0 ? &f->node.tls.cert
                                : strcmp(a, "--tls-key") == 0  ? &f->node.tls.key
                                                               : &f->node.tls.crl;
            *slot = v;
        } else if (strcmp(a, "--storage-engine") == 0) {
            if (strcmp(v, "wal") == 0) {
                f->node.storage_engine = PSTORE_ENGINE_WAL;
            } else if (strcmp(v, "lmdb") == 0) {
                f->node.storage_engine = PSTORE_ENGINE_LMDB;
            } else {
                return fail(err, cap, a, "must be wal or lmdb");
            }
        } else if (strcmp(a, "--sync") == 0) {
            if (strcmp(v, "full") == 0) {
                f->node.sync = PSTORE_SYNC_FULL;
            } else if (strcmp(v, "normal") == 0) {
                f->node.sync = PSTORE_SYNC_NORMAL;
            } else if (strcmp(v, "none") == 0) {
                f->node.sync = PSTORE_SYNC_NONE;
            } else {
                return fail(err, cap, a, "must be full, normal or none");
            }
        } else {
            return fail(err, cap, a, "unknown flag (see --help)");
        }
    }
    if (!have_id) {
        return fail(err, cap, "--id", "is required");
    }
    if (!have_listen) {
        return fail(err, cap, "--listen", "is required");
    }
    if (!have_dir) {
        return fail(err, cap, "--data-dir", "is required");
    }
    if (have_initial && f->node.join) {
        return fail(err, cap, "--join", "cannot be combined with --initial-cluster");
    }
    if (f->node.election_ticks <= f->node.heartbeat_ticks) {
        return fail(err, cap, "--election-ticks", "must exceed --heartbeat-ticks");
    }
    const pnode_tls *tls = &f->node.tls;
    bool any_tls = tls->ca != NULL || tls->cert != NULL || tls->key != NULL || tls->crl != NULL;
    if (any_tls && f->node.insecure) {
        return fail(err, cap, "--insecure", "cannot be combined with --tls-* flags");
    }
    if (any_tls && (tls->ca == NULL || tls->cert == NULL || tls->key == NULL)) {
        return fail(err, cap,
                    tls->ca == NULL     ? "--tls-ca"
                    : tls->cert == NULL ? "--tls-cert"
                                        : "--tls-key",
                    "is required with TLS (--tls-ca, --tls-cert and --tls-key go together)");
    }
    if (!any_tls && !f->node.insecure) {
        return fail(err, cap, "--tls-ca",
                    "is required: give --tls-ca, --tls-cert and --tls-key (see docs/security.md), "
                    "or --insecure to run without TLS and authentication");
    }
    f->node.data_dir = f->data_dir;
    uint64_t cid = pt__checksum(cluster_name, strlen(cluster_name));
    f->node.cluster_id = cid != 0 ? cid : 1;
    return 0;
}
