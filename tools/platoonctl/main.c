/*
 * platoonctl: the command-line client of a Platoon cluster. main() parses the global options
 * and hands the rest of the command line to the command (vehicle_cmd.c, cluster_cmd.c,
 * simulate.c).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    "  vehicle list [--stale] [--watch [--interval S] [--count N]]\n"
    "                                  the whole platoon; --watch refreshes it in place\n"
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
    "  simulate [--vehicles N] [--rate HZ] [--duration S] [--gap M] [--speed M/S] [--first-id ID]\n"
    "                                  drive N vehicles (default 5) round a route as a platoon,\n"
    "                                  each reporting its position HZ times a second (default\n"
    "                                  10) for S seconds (default 10), followers GAP metres\n"
    "                                  (default 20) behind; reports writes/s, errors, latency\n"
    "Security:\n"
    "  certs ca|node|client|revoke --dir DIR ...\n"
    "                                  make a CA and node and client certificates, revoke one\n"
    "                                  (platoonctl certs --help; docs/security.md)\n"
    "\n"
    "Global options (before the command):\n"
    "  --endpoints HOST:PORT,...  nodes to talk to, tried in turn until one answers\n"
    "                             (default: $" PCTL_ENDPOINTS_ENV ", else " PCTL_DEFAULT_ENDPOINTS
    ")\n"
    "  --timeout S                give up on a request after S seconds, retries and\n"
    "                             failover included (default 5)\n"
    "  --dial-timeout S           skip an endpoint that does not connect within S seconds\n"
    "                             (default 1)\n"
    "  --json                     print one JSON object per result, for scripts\n"
    "  --cacert FILE              the CA of the cluster's certificates (PEM; default:\n"
    "                             $" PCTL_CACERT_ENV ")\n"
    "  --cert FILE, --key FILE    this client's certificate and key (default: $" PCTL_CERT_ENV "\n"
    "                             and $" PCTL_KEY_ENV "); all three, or none for a cluster\n"
    "                             run with --insecure\n"
    "  --help, --version\n"
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
} command;

static const command commands[] = {
    {"vehicle", "update", pctl_vehicle_update},
    {"vehicle", "get", pctl_vehicle_get},
    {"vehicle", "delete", pctl_vehicle_delete},
    {"vehicle", "list", pctl_vehicle_list},
    {"cluster", "status", pctl_cluster_status},
    {"cluster", "add", pctl_cluster_add},
    {"cluster", "promote", pctl_cluster_promote},
    {"cluster", "remove", pctl_cluster_remove},
    {"cluster", "transfer", pctl_cluster_transfer},
    {"cluster", "snapshot", pctl_cluster_snapshot},
    {"simulate", NULL, pctl_simulate},
    {"certs", NULL, pctl_certs},
};

static void on_signal(int sig)
{
    (void)sig;
    pctl_interrupted = 1;
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

int main(int argc, char **argv)
{
    pctl_opts o = {.timeout_ms = 5000, .dial_ms = 1000};
    o.endpoints = getenv(PCTL_ENDPOINTS_ENV);
    if (o.endpoints == NULL || o.endpoints[0] == '\0') {
        o.endpoints = PCTL_DEFAULT_ENDPOINTS;
    }
    o.cacert = getenv(PCTL_CACERT_ENV);
    o.cert = getenv(PCTL_CERT_ENV);
    o.key = getenv(PCTL_KEY_ENV);
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return PCTL_EXIT_OK;
        }
        if (strcmp(a, "--version") == 0) {
            puts("platoonctl 0.1.0");
            return PCTL_EXIT_OK;
        }
        if (strcmp(a, "--json") == 0) {
            o.json = true;
            continue;
        }
        if (v == NULL) {
            return pctl_usage_error(&o, "%s needs a value", a);
        }
        i++;
        if (strcmp(a, "--endpoints") == 0) {
            o.endpoints = v;
        } else if (strcmp(a, "--cacert") == 0) {
            o.cacert = v;
        } else if (strcmp(a, "--cert") == 0) {
            o.cert = v;
        } else if (strcmp(a, "--key") == 0) {
            o.key = v;
        } else if (strcmp(a, "--timeout") == 0) {
            if (!pctl_parse_seconds(v, 10, 3600000, &o.timeout_ms)) {
                return pctl_usage_error(&o, "--timeout must be seconds in [0.01, 3600]");
            }
        } else if (strcmp(a, "--dial-timeout") == 0) {
            if (!pctl_parse_seconds(v, 10, 3600000, &o.dial_ms)) {
                return pctl_usage_error(&o, "--dial-timeout must be seconds in [0.01, 3600]");
            }
        } else {
            return pctl_usage_error(&o, "unknown option '%s'", a);
        }
    }
    if (i == argc) {
        fputs(usage, stderr);
        return PCTL_EXIT_USAGE;
    }
    int consumed = 0;
    const command *cmd = find_command(argc - i, argv + i, &consumed);
    if (cmd == NULL) {
        return pctl_usage_error(&o, "unknown command '%s%s%s'", argv[i], i + 1 < argc ? " " : "",
                                i + 1 < argc ? argv[i + 1] : "");
    }
    if (cmd->fn == pctl_certs) {
        /* Makes files only: no cluster, no client, and its own --help. */
        return pctl_certs(&o, NULL, argc - i - consumed, argv + i + consumed);
    }
    for (int k = i + consumed; k < argc; k++) {
        if (strcmp(argv[k], "--help") == 0) {
            fputs(usage, stdout);
            return PCTL_EXIT_OK;
        }
    }

    char err[256];
    pctl_client *client = NULL;
    if (pctl_client_new(&o, &client, err, sizeof(err)) != 0) {
        return pctl_usage_error(&o, "%s", err);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = cmd->fn(&o, client, argc - i - consumed, argv + i + consumed);
    pctl_client_free(client);
    return rc;
}
