/*
 * platoonctl: the command-line client of a Platoon cluster. main() parses the global options
 * and hands the rest of the command line to the command (vehicle_cmd.c, cluster_cmd.c,
 * simulate.c).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "args.h"
#include "ctl.h"
#include "output.h"
#include "rpc.h"

volatile int pctl_interrupted;

static const char usage[] =
    "usage: platoonctl [global options] COMMAND [arguments]\n"
    "\n"
    "Vehicles:\n"
    "  vehicle update ID --lat DEG --lon DEG --speed M/S --heading DEG\n"
    "                                  create or replace a vehicle's state\n"
    "  vehicle get ID [--stale]        one vehicle (--stale: this node's copy, no leader check)\n"
    "  vehicle delete ID               delete a vehicle\n"
    "  vehicle list [--stale] [--page-size N] [--watch [--interval S] [--count N]]\n"
    "                                  the whole platoon, at one revision (read in pages of\n"
    "                                  N vehicles, default and most 10000, from the node\n"
    "                                  that answers first); --watch refreshes it in place\n"
    "  vehicle watch [--from REV] [--id ID]... [--stale]\n"
    "                                  print every change as it happens: the state first,\n"
    "                                  then each PUT and DELETE (--from: only the changes\n"
    "                                  after REV; --id: only those vehicles) until Ctrl-C\n"
    "Cluster:\n"
    "  cluster status                  every member's role, term, indices, lag and health,\n"
    "                                  as each member itself reports it\n"
    "  cluster add ID HOST:PORT [--learner]\n"
    "                                  add a member (started with platoond --join)\n"
    "  cluster promote ID              make a caught-up learner a voter\n"
    "  cluster remove ID               remove a member (the leader too)\n"
    "  cluster transfer [ID]           hand leadership to ID (default: the best-placed voter)\n"
    "  cluster snapshot [ID]           snapshot every member's state now (or only ID's)\n"
    "Load:\n"
    "  simulate [--vehicles N] [--rate HZ] [--duration S] [--gap M] [--speed M/S]\n"
    "           [--first-id ID] [--cleanup]\n"
    "                                  drive N vehicles (default 5) round a route as a platoon,\n"
    "                                  each reporting its position HZ times a second (default\n"
    "                                  10) for S seconds (default 10), followers GAP metres\n"
    "                                  (default 20) behind; reports writes/s, errors, latency.\n"
    "                                  Writes ids FIRST-ID.. (default 1), replacing vehicles\n"
    "                                  with those ids; --cleanup deletes them at the end\n"
    "Security:\n"
    "  certs ca|node|client|revoke --dir DIR ...\n"
    "                                  make a CA and node and client certificates, revoke one\n"
    "                                  (platoonctl certs --help; docs/security.md)\n"
    "\n"
    "Help on one command or group: platoonctl vehicle --help, platoonctl cluster add -h\n"
    "\n"
    "Global options (anywhere on the line):\n"
    "  --endpoints HOST:PORT,...  nodes to talk to, tried in turn until one answers\n"
    "                             (default: $" PCTL_ENDPOINTS_ENV ", else " PCTL_DEFAULT_ENDPOINTS
    ")\n"
    "  --timeout S                give up on a request after S seconds, retries and\n"
    "                             failover included (default 5)\n"
    "  --dial-timeout S           skip an endpoint that does not connect within S seconds\n"
    "                             (default 1); when no endpoint connects (refused, unknown\n"
    "                             host, or this timeout), the command fails at once, with\n"
    "                             each endpoint's cause\n"
    "  --json                     print one JSON object per result, for scripts\n"
    "  --cacert FILE              the CA of the cluster's certificates (PEM; default:\n"
    "                             $" PCTL_CACERT_ENV ")\n"
    "  --cert FILE, --key FILE    this client's certificate and key (default: $" PCTL_CERT_ENV "\n"
    "                             and $" PCTL_KEY_ENV "); all three, or none for a cluster\n"
    "                             run with --insecure\n"
    "  --help, -h, --version\n"
    "\n"
    "Exit codes:\n"
    "  0  success\n"
    "  1  the cluster refused or failed the request (e.g. a membership change in progress)\n"
    "  2  usage error, or a value the cluster rejected as invalid (its message is shown)\n"
    "  3  not found (no such vehicle or member)\n"
    "  4  cluster unreachable: no endpoint answered in time, or no leader could be reached\n";

typedef struct command {
    const char *group, *name;
    pctl_command_fn fn;
    const char *help; /* its usage lines, printed by `platoonctl GROUP [NAME] --help` */
} command;

static const command commands[] = {
    {"vehicle", "update", pctl_vehicle_update,
     "  vehicle update ID --lat DEG --lon DEG --speed M/S --heading DEG\n"
     "                                  create or replace a vehicle's state\n"},
    {"vehicle", "get", pctl_vehicle_get,
     "  vehicle get ID [--stale]        one vehicle (--stale: this node's copy, no leader "
     "check)\n"},
    {"vehicle", "delete", pctl_vehicle_delete,
     "  vehicle delete ID               delete a vehicle\n"},
    {"vehicle", "list", pctl_vehicle_list,
     "  vehicle list [--stale] [--page-size N] [--watch [--interval S] [--count N]]\n"
     "                                  the whole platoon, at one revision (read in pages of\n"
     "                                  N vehicles, default and most 10000, from the node\n"
     "                                  that answers first); --watch refreshes it in place\n"},
    {"vehicle", "watch", pctl_vehicle_watch,
     "  vehicle watch [--from REV] [--id ID]... [--stale]\n"
     "                                  print every change as it happens: the state first,\n"
     "                                  then each PUT and DELETE (--from: only the changes\n"
     "                                  after REV; --id: only those vehicles) until Ctrl-C\n"},
    {"cluster", "status", pctl_cluster_status,
     "  cluster status                  every member's role, term, indices, lag and health\n"},
    {"cluster", "add", pctl_cluster_add,
     "  cluster add ID HOST:PORT [--learner]\n"
     "                                  add a member (started with platoond --join)\n"},
    {"cluster", "promote", pctl_cluster_promote,
     "  cluster promote ID              make a caught-up learner a voter\n"},
    {"cluster", "remove", pctl_cluster_remove,
     "  cluster remove ID               remove a member (the leader too)\n"},
    {"cluster", "transfer", pctl_cluster_transfer,
     "  cluster transfer [ID]           hand leadership to ID (default: the best-placed voter)\n"},
    {"cluster", "snapshot", pctl_cluster_snapshot,
     "  cluster snapshot [ID]           snapshot every member's state now (or only ID's)\n"},
    {"simulate", NULL, pctl_simulate,
     "  simulate [--vehicles N] [--rate HZ] [--duration S] [--gap M] [--speed M/S]\n"
     "           [--first-id ID] [--cleanup]\n"
     "                                  drive N vehicles (default 5) round a route as a platoon,\n"
     "                                  each reporting its position HZ times a second (default\n"
     "                                  10) for S seconds (default 10), followers GAP metres\n"
     "                                  (default 20) behind; reports writes/s, errors, latency.\n"
     "                                  It writes vehicles FIRST-ID..FIRST-ID+N-1 (--first-id\n"
     "                                  defaults to 1), replacing any vehicle with those ids;\n"
     "                                  --cleanup deletes them at the end\n"},
    {"certs", NULL, pctl_certs,
     "  certs ca|node|client|revoke --dir DIR ...\n"
     "                                  make a CA and node and client certificates, revoke one\n"
     "                                  (its own options: platoonctl certs --help)\n"},
};

/* ----- global options: one line each in the table below ----- */

static int set_endpoints(pctl_opts *o, const char *v)
{
    o->endpoints = v;
    return 0;
}

static int set_timeout(pctl_opts *o, const char *v)
{
    return pctl_parse_seconds(v, 10, 3600000, &o->timeout_ms) ? 0 : -1;
}

static int set_dial_timeout(pctl_opts *o, const char *v)
{
    return pctl_parse_seconds(v, 10, 3600000, &o->dial_ms) ? 0 : -1;
}

static int set_cacert(pctl_opts *o, const char *v)
{
    o->cacert = v;
    return 0;
}

static int set_cert(pctl_opts *o, const char *v)
{
    o->cert = v;
    return 0;
}

static int set_key(pctl_opts *o, const char *v)
{
    o->key = v;
    return 0;
}

static int set_json(pctl_opts *o, const char *v)
{
    (void)v;
    o->json = true;
    return 0;
}

typedef struct global_opt {
    const char *name;
    bool is_switch;
    const char *env; /* the environment variable giving its default, or NULL */
    int (*set)(pctl_opts *o, const char *value);
    const char *what; /* what a bad value must be, for the message */
} global_opt;

/* Global options are accepted anywhere on the line, before or after the command (as with
 * etcdctl and kubectl). */
static const global_opt global_opts[] = {
    {"--endpoints", false, PCTL_ENDPOINTS_ENV, set_endpoints, "HOST:PORT,..."},
    {"--timeout", false, NULL, set_timeout, "seconds in [0.01, 3600]"},
    {"--dial-timeout", false, NULL, set_dial_timeout, "seconds in [0.01, 3600]"},
    {"--json", true, NULL, set_json, NULL},
    {"--cacert", false, PCTL_CACERT_ENV, set_cacert, "a PEM file"},
    {"--cert", false, PCTL_CERT_ENV, set_cert, "a PEM file"},
    {"--key", false, PCTL_KEY_ENV, set_key, "a PEM file"},
};

static const global_opt *find_global(const char *arg, size_t len)
{
    for (size_t i = 0; i < sizeof(global_opts) / sizeof(global_opts[0]); i++) {
        if (strlen(global_opts[i].name) == len && strncmp(global_opts[i].name, arg, len) == 0) {
            return &global_opts[i];
        }
    }
    return NULL;
}

static void on_signal(int sig)
{
    (void)sig;
    pctl_interrupted = 1;
}

static bool is_group(const char *s)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(s, commands[i].group) == 0) {
            return true;
        }
    }
    return false;
}

static const command *find_command(int argc, char **argv, int *consumed)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        const command *c = &commands[i];
        if (strcmp(argv[0], c->group) != 0) {
            continue;
        }
        if (c->name == NULL) {
            *consumed = 1;
            return c;
        }
        if (argc > 1 && strcmp(argv[1], c->name) == 0) {
            *consumed = 2;
            return c;
        }
    }
    return NULL;
}

/* The help of one command, or of every command of @group. */
static void group_help(const char *group, const command *only, FILE *out)
{
    fprintf(out, "usage: platoonctl [global options] %s%s%s ...\n\n", group,
            only != NULL && only->name != NULL ? " " : "",
            only != NULL && only->name != NULL ? only->name : "");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].group, group) == 0 && (only == NULL || only == &commands[i])) {
            fputs(commands[i].help, out);
        }
    }
    fputs("\nGlobal options (anywhere on the line): see platoonctl --help\n", out);
}

int main(int argc, char **argv)
{
    /* gRPC's threads may still be reconnecting (and so making TLS handshakes) when main()
     * returns: OpenSSL must not free itself at exit under them (a crash on the way out). Its
     * state stays reachable from globals, so leak checkers do not count it. */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
    pctl_opts o = {.timeout_ms = 5000, .dial_ms = 1000};
    o.endpoints = PCTL_DEFAULT_ENDPOINTS;
    for (size_t g = 0; g < sizeof(global_opts) / sizeof(global_opts[0]); g++) {
        const char *env = global_opts[g].env != NULL ? getenv(global_opts[g].env) : NULL;
        if (env != NULL && env[0] != '\0' && global_opts[g].set(&o, env) != 0) {
            return pctl_usage_error(&o, "$%s must be %s", global_opts[g].env, global_opts[g].what);
        }
    }
    /* First pass: take the global options (and --help, -h, --version) out of the line, from
     * wherever they are; what is left is the command and its own arguments. "--" ends the
     * options: everything after it is left to the command. */
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    if (rest == NULL) {
        return pctl_fail(&o, PCTL_EXIT_SERVER, "out of memory");
    }
    int n_rest = 0;
    bool help = false, version = false, dashdash = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (dashdash) {
            rest[n_rest++] = argv[i];
            continue;
        }
        if (n_rest == 0 && strcmp(a, "certs") == 0) {
            /* certs makes files and has options of its own (--cert among them): the rest of
             * the line is its own, untouched. */
            rest[n_rest++] = argv[i];
            dashdash = true;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            dashdash = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help = true;
            continue;
        }
        if (strcmp(a, "--version") == 0) {
            version = true;
            continue;
        }
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        const global_opt *g = strncmp(a, "--", 2) == 0
                                  ? find_global(a, eq != NULL ? (size_t)(eq - a) : strlen(a))
                                  : NULL;
        if (g == NULL) {
            rest[n_rest++] = argv[i];
            continue;
        }
        const char *v = NULL;
        if (g->is_switch && eq != NULL) {
            free(rest);
            return pctl_usage_error(&o, "%s takes no value", g->name);
        }
        if (!g->is_switch) {
            v = eq != NULL ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (v == NULL) {
                free(rest);
                return pctl_usage_error(&o, "%s needs a value (%s)", g->name, g->what);
            }
        }
        if (g->set(&o, v) != 0) {
            free(rest);
            return pctl_usage_error(&o, "%s must be %s", g->name, g->what);
        }
    }
    if (version) {
        free(rest);
        puts("platoonctl 0.2.0");
        return PCTL_EXIT_OK;
    }
    if (n_rest == 0 || (help && !is_group(rest[0]))) {
        free(rest);
        fputs(usage, help ? stdout : stderr);
        return help ? PCTL_EXIT_OK : PCTL_EXIT_USAGE;
    }
    if (n_rest > 0 && rest[0][0] == '-') {
        int rc = pctl_usage_error(&o, "unknown option '%s'", rest[0]);
        free(rest);
        return rc;
    }
    int consumed = 0;
    const command *cmd = find_command(n_rest, rest, &consumed);
    if (cmd != NULL && cmd->fn == pctl_certs && !help) {
        /* Makes files only: no cluster, no client. */
        int rc = pctl_certs(&o, NULL, n_rest - consumed, rest + consumed);
        free(rest);
        return rc;
    }
    if (help) {
        group_help(rest[0], cmd, stdout);
        free(rest);
        return PCTL_EXIT_OK;
    }
    if (cmd == NULL) {
        int rc;
        if (is_group(rest[0])) {
            if (n_rest > 1) {
                fprintf(stderr, "platoonctl: unknown command '%s %s'\n\n", rest[0], rest[1]);
            }
            group_help(rest[0], NULL, stderr);
            rc = PCTL_EXIT_USAGE;
        } else {
            rc = pctl_usage_error(&o, "unknown command '%s'", rest[0]);
        }
        free(rest);
        return rc;
    }

    char err[256];
    pctl_client *client = NULL;
    if (pctl_client_new(&o, &client, err, sizeof(err)) != 0) {
        free(rest);
        return pctl_usage_error(&o, "%s", err);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = cmd->fn(&o, client, n_rest - consumed, rest + consumed);
    pctl_client_free(client);
    free(rest);
    return rc;
}
