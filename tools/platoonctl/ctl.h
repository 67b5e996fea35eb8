/*
 * What every platoonctl command shares: the global options, the exit codes, and the signature
 * of a command. Each command lives in the file of its concern (vehicle_cmd.c, cluster_cmd.c,
 * simulate.c); main.c only parses the global options and dispatches.
 */
#ifndef PCTL_CTL_H
#define PCTL_CTL_H

#include <stdbool.h>
#include <stdint.h>

/* Exit codes, documented in `platoonctl --help`. */
enum pctl_exit {
    PCTL_EXIT_OK = 0,
    PCTL_EXIT_SERVER = 1,      /* the cluster refused or failed the request */
    PCTL_EXIT_USAGE = 2,       /* bad command line, or a value the server found invalid */
    PCTL_EXIT_NOT_FOUND = 3,   /* the vehicle or member does not exist */
    PCTL_EXIT_UNREACHABLE = 4, /* no endpoint answered in time, or the cluster has no leader */
};

#define PCTL_ENDPOINTS_ENV     "PLATOON_ENDPOINTS"
#define PCTL_CACERT_ENV        "PLATOON_CACERT"
#define PCTL_CERT_ENV          "PLATOON_CERT"
#define PCTL_KEY_ENV           "PLATOON_KEY"
#define PCTL_DEFAULT_ENDPOINTS "127.0.0.1:7001"

typedef struct pctl_client pctl_client;

typedef struct pctl_opts {
    const char *endpoints; /* comma-separated host:port list */
    int64_t timeout_ms;    /* whole-command deadline for one request (with its retries) */
    int64_t dial_ms;       /* how long to wait for a connection to one endpoint */
    bool json;
    /* TLS (etcdctl's names): the CA that signs the nodes, and this client's certificate and key.
     * All NULL: plaintext, for a cluster run with --insecure. */
    const char *cacert;
    const char *cert;
    const char *key;
} pctl_opts;

/* A command: @argc/@argv start at the command's own arguments (after "vehicle get"). Returns
 * the process's exit code. */
typedef int (*pctl_command_fn)(const pctl_opts *o, pctl_client *c, int argc, char **argv);

int pctl_vehicle_update(const pctl_opts *o, pctl_client *c, int argc, char **argv);
int pctl_vehicle_get(const pctl_opts *o, pctl_client *c, int argc, char **argv);
int pctl_vehicle_delete(const pctl_opts *o, pctl_client *c, int argc, char **argv);
int pctl_vehicle_list(const pctl_opts *o, pctl_client *c, int argc, char **argv);
int pctl_vehicle_watch(const pctl_opts *o, pctl_client *c, int argc, char **argv);

int pctl_cluster_status(const pctl_opts *o, pctl_client *c, int argc, char **argv);
int pctl_cluster_add(const pctl_opts *o, pctl_client *c, int argc, char **argv);
int pctl_cluster_promote(const pctl_opts *o, pctl_client *c, int argc, char **argv);
int pctl_cluster_remove(const pctl_opts *o, pctl_client *c, int argc, char **argv);
int pctl_cluster_transfer(const pctl_opts *o, pctl_client *c, int argc, char **argv);
int pctl_cluster_snapshot(const pctl_opts *o, pctl_client *c, int argc, char **argv);

int pctl_simulate(const pctl_opts *o, pctl_client *c, int argc, char **argv);

/* certs (certs.c): needs no cluster; called with @c NULL. */
int pctl_certs(const pctl_opts *o, pctl_client *c, int argc, char **argv);

/* Set by SIGINT/SIGTERM: long-running commands (watch, simulate) stop and report. */
extern volatile int pctl_interrupted;

#endif
