/*
 * The channel credentials of every connection the load generator makes: plaintext by default,
 * or TLS with a client certificate (--cacert, --cert, --key), so that the cost of mutual TLS
 * can be measured side by side for Platoon and etcd with the same certificates.
 */
#ifndef PBENCH_CREDS_H
#define PBENCH_CREDS_H

#include <stddef.h>

#include <grpc/grpc_security.h>

/* Reads the three PEM files (all NULL: plaintext). Returns 0, or PT_EINVAL with @err naming
 * the file. */
int pbench_creds_init(const char *cacert, const char *cert, const char *key, char *err,
                      size_t err_cap);

/* New credentials for one channel (release with grpc_channel_credentials_release). */
grpc_channel_credentials *pbench_creds(void);

void pbench_creds_free(void);

#endif
