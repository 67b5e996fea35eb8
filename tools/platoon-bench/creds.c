/* Channel credentials of the load generator (creds.h). */
#include "creds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platoon/error.h"

static char *ca_pem, *cert_pem, *key_pem;

static int read_pem(const char *flag, const char *path, char **out, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, cap, "%s %s: %s", flag, path, strerror(errno));
        return PT_EINVAL;
    }
    const size_t max = 1u << 20;
    char *buf = malloc(max + 1);
    size_t n = buf != NULL ? fread(buf, 1, max + 1, f) : 0;
    fclose(f);
    if (buf == NULL) {
        return PT_ENOMEM;
    }
    if (n == 0 || n > max) {
        snprintf(err, cap, "%s %s: not a PEM file", flag, path);
        free(buf);
        return PT_EINVAL;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

int pbench_creds_init(const char *cacert, const char *cert, const char *key, char *err,
                      size_t err_cap)
{
    if (cacert == NULL && cert == NULL && key == NULL) {
        return 0;
    }
    if (cacert == NULL || cert == NULL || key == NULL) {
        snprintf(err, err_cap, "TLS needs all of --cacert, --cert and --key");
        return PT_EINVAL;
    }
    int rc = read_pem("--cacert", cacert, &ca_pem, err, err_cap);
    if (rc == 0) {
        rc = read_pem("--cert", cert, &cert_pem, err, err_cap);
    }
    if (rc == 0) {
        rc = read_pem("--key", key, &key_pem, err, err_cap);
    }
    if (rc != 0) {
        pbench_creds_free();
    }
    return rc;
}

grpc_channel_credentials *pbench_creds(void)
{
    if (ca_pem == NULL) {
        return grpc_insecure_credentials_create();
    }
    grpc_ssl_pem_key_cert_pair pair = {.private_key = key_pem, .cert_chain = cert_pem};
    return grpc_ssl_credentials_create_ex(ca_pem, &pair, NULL, NULL);
}

void pbench_creds_free(void)
{
    free(ca_pem);
    free(cert_pem);
    free(key_pem);
    ca_pem = cert_pem = key_pem = NULL;
}
