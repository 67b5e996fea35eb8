/*
 * kv-server: one node of a replicated key-value store, built on Platoon's public API only.
 *
 * The node runtime (<platoon/node.h>) does the distributed part: the Raft core, the durable
 * log and snapshots in the storage engine, the gRPC transport between nodes, TLS, leader
 * forwarding, linearizable reads. This program brings the application: a state machine
 * (kv_sm.c, through <platoon/state_machine.h>) and a gRPC service (kv_service.c, kv.proto)
 * whose methods the runtime serves on the node's listen address.
 *
 * It stops gracefully on SIGTERM or SIGINT (exit 0) and rereads its TLS files on SIGHUP.
 */
#ifndef _GNU_SOURCE /* the declaration of sigtimedwait with -std=c11 */
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>

#include <openssl/crypto.h>

#include "kv_flags.h"
#include "kv_service.h"
#include "kv_sm.h"

int main(int argc, char **argv)
{
    /* gRPC's threads may still be reconnecting (making TLS handshakes) while the process
     * exits: OpenSSL must not tear itself down at exit under them. */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
    kv_flags f;
    char err[512] = "";
    if (kv_flags_parse(argc, argv, &f, err, sizeof(err)) != 0) {
        fprintf(stderr, "kv-server: %s\n", err);
        return 2;
    }
    if (f.help) {
        fputs(kv_server_usage, stdout);
        return 0;
    }
    pt_log_set_sink(pt_log_stderr_sink, NULL, f.log_level);

    /* Signals are taken synchronously by this thread; the runtime's threads, started below,
     * inherit the mask and never see them. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* The application: a state machine the runtime applies committed commands to, and the
     * gRPC methods it serves. The state machine must outlive the node. */
    kv_sm *sm = NULL;
    if (kv_sm_new(&sm) != 0) {
        fprintf(stderr, "kv-server: out of memory\n");
        return 1;
    }
    kv_sm_interface(sm, &f.node.sm);
    f.node.n_methods = kv_service_methods(f.node.methods, PNODE_MAX_METHODS);

    /* Opens (or creates and bootstraps) the data directory, restores the newest snapshot,
     * replays the log after it, and starts serving. */
    pnode *node = NULL;
    int rc = pnode_start(&f.node, &node, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "kv-server: %s\n", err[0] != '\0' ? err : pt_strerror(rc));
        kv_sm_free(sm);
        return 1;
    }

    int status = 0;
    for (;;) {
        struct timespec wait = {1, 0};
        int sig = sigtimedwait(&sigs, NULL, &wait);
        if (sig == SIGTERM || sig == SIGINT) {
            break;
        }
        if (sig == SIGHUP && pnode_reload_tls(node, err, sizeof(err)) != 0) {
            fprintf(stderr, "kv-server: SIGHUP: TLS files not reloaded: %s\n", err);
        }
        pnode_status st;
        pnode_status_get(node, &st);
        if (st.failed) {
            /* The state machine refused a committed command: this node can no longer follow
             * the log like the others, so it stops rather than serve a diverging state. */
            fprintf(stderr, "kv-server: the state machine failed; stopping (see the log)\n");
            status = 1;
            break;
        }
    }
    pnode_stop(node);
    kv_sm_free(sm);
    return status;
}
