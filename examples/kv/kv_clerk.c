/*
 * kv-clerk: the command-line client of a kv cluster, and the reference clerk of kv.proto's
 * exactly-once rules.
 *
 *   kv-clerk --endpoints HOST:PORT,... [--timeout MS] COMMAND...
 *   COMMAND: get KEY | get-stale KEY | put KEY VALUE | append KEY VALUE
 *
 * The commands run in order, as one clerk: one random client id, sequences 1, 2, 3... for its
 * writes. A write whose outcome is unknown (UNAVAILABLE: no leader, the node went away, the
 * leadership changed under it; DEADLINE_EXCEEDED) is sent again, unchanged, to the next
 * endpoint, until a definite answer or the timeout: the state machine applies it once and
 * answers a retry as it answered the first time. With TLS (--cacert, --cert, --key, or the
 * environment variables PLATOON_CACERT, PLATOON_CERT, PLATOON_KEY, as for platoonctl) every
 * connection is mutual TLS.
 *
 * This program is a plain gRPC client: it needs the gRPC C core and protobuf-c, not libplatoon.
 */
#ifndef _GNU_SOURCE /* getrandom, nanosleep with -std=c11 */
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "kv.pb-c.h"

#define MAX_ENDPOINTS 16
#define ATTEMPT_MS    2000 /* one try at one node; a dead or cut-off node costs no more */

typedef struct clerk {
    char *endpoints[MAX_ENDPOINTS];
    grpc_channel *channels[MAX_ENDPOINTS]; /* made on first use */
    size_t n_endpoints;
    size_t next; /* the endpoint that answered last: likely the leader, or close to it */
    grpc_completion_queue *cq;
    char *ca, *cert, *key; /* PEM text, NULL without TLS */
    int64_t timeout_ms;
    uint64_t client_id;
    uint64_t sequence; /* of the last write */
} clerk;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "kv-clerk: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 20;
    char *buf = malloc(cap + 1);
    size_t n = buf != NULL ? fread(buf, 1, cap, f) : 0;
    fclose(f);
    if (buf != NULL) {
        buf[n] = '\0';
    }
    return buf;
}

static grpc_channel *channel(clerk *k, size_t i)
{
    if (k->channels[i] != NULL) {
        return k->channels[i];
    }
    /* A restarted node is reachable again within a fraction of a second, not after gRPC's
     * default back-off of up to two minutes. (Not GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: despite
     * its name, gRPC's core takes it as the time one connection attempt, TCP and TLS
     * handshakes included, may last; a small one fails every handshake of a busy node.) */
    grpc_arg args[] = {
        {GRPC_ARG_INTEGER, GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, {.integer = 100}},
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, {.integer = 500}},
    };
    grpc_channel_args list = {sizeof(args) / sizeof(args[0]), args};
    grpc_channel_credentials *creds;
    if (k->ca != NULL) {
        grpc_ssl_pem_key_cert_pair pair = {.private_key = k->key, .cert_chain = k->cert};
        creds = grpc_ssl_credentials_create_ex(k->ca, &pair, NULL, NULL);
    } else {
        creds = grpc_insecure_credentials_create();
    }
    k->channels[i] = grpc_channel_create(k->endpoints[i], creds, &list);
    grpc_channel_credentials_release(creds);
    return k->channels[i];
}

/*
 * One call to one node, until @deadline_ms. Returns the gRPC status; on GRPC_STATUS_OK
 * *@resp is the decoded answer (free it with protobuf_c_message_free_unpacked). @why
 * receives the server's message otherwise.
 */
static grpc_status_code call_once(clerk *k, size_t ep, const char *method,
                                  const ProtobufCMessage *req,
                                  const ProtobufCMessageDescriptor *resp_desc, int64_t deadline_ms,
                                  ProtobufCMessage **resp, char *why, size_t why_cap)
{
    size_t len = protobuf_c_message_get_packed_size(req);
    grpc_slice slice = grpc_slice_malloc(len);
    protobuf_c_message_pack(req, GRPC_SLICE_START_PTR(slice));
    grpc_byte_buffer *request = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);

    gpr_timespec deadline = gpr_time_add(
        gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(deadline_ms - now_ms(), GPR_TIMESPAN));
    grpc_slice method_slice = grpc_slice_from_static_string(method);
    grpc_call *call = grpc_channel_create_call(channel(k, ep), NULL, GRPC_PROPAGATE_DEFAULTS, k->cq,
                                               method_slice, NULL, deadline, NULL);
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_byte_buffer *response = NULL;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();

    /* The six operations of a unary call, as one batch. */
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = request;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &response;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    if (grpc_call_start_batch(call, ops, 6, call, NULL) == GRPC_CALL_OK) {
        grpc_completion_queue_pluck(k->cq, call, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    }
    snprintf(why, why_cap, "%.*s", (int)GRPC_SLICE_LENGTH(details),
             (const char *)GRPC_SLICE_START_PTR(details));
    if (status == GRPC_STATUS_OK) {
        grpc_byte_buffer_reader reader;
        *resp = NULL;
        if (response != NULL && grpc_byte_buffer_reader_init(&reader, response)) {
            grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
            grpc_byte_buffer_reader_destroy(&reader);
            *resp = protobuf_c_message_unpack(resp_desc, NULL, GRPC_SLICE_LENGTH(all),
                                              GRPC_SLICE_START_PTR(all));
            grpc_slice_unref(all);
        }
        if (*resp == NULL) {
            status = GRPC_STATUS_INTERNAL;
            snprintf(why, why_cap, "undecodable answer");
        }
    }
    grpc_call_unref(call);
    grpc_byte_buffer_destroy(request);
    if (response != NULL) {
        grpc_byte_buffer_destroy(response);
    }
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    return status;
}

/*
 * Calls @method until a node gives a definite answer or the clerk's timeout passes, trying
 * the endpoints in turn. The request is sent unchanged every time: for a write, that is what
 * makes the retry safe (same client id, same sequence). Returns 0 with *@resp, or -1 after
 * printing why.
 */
static int call(clerk *k, const char *what, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp)
{
    int64_t deadline = now_ms() + k->timeout_ms;
    char why[512] = "";
    grpc_status_code status = GRPC_STATUS_DEADLINE_EXCEEDED;
    for (size_t attempt = 0; now_ms() < deadline; attempt++) {
        size_t ep = (k->next + attempt) % k->n_endpoints;
        int64_t until = now_ms() + ATTEMPT_MS < deadline ? now_ms() + ATTEMPT_MS : deadline;
        status = call_once(k, ep, method, req, resp_desc, until, resp, why, sizeof(why));
        if (status == GRPC_STATUS_OK) {
            k->next = ep;
            return 0;
        }
        if (status != GRPC_STATUS_UNAVAILABLE && status != GRPC_STATUS_DEADLINE_EXCEEDED) {
            fprintf(stderr, "kv-clerk: %s: %s (gRPC status %d)\n", what, why, (int)status);
            return -1;
        }
        if (ep + 1 == k->n_endpoints) {
            sleep_ms(100); /* a whole round failed: give an election time to finish */
        }
    }
    fprintf(stderr, "kv-clerk: %s: no definite answer within %lld ms (last: %s)%s\n", what,
            (long long)k->timeout_ms, why[0] != '\0' ? why : "no answer",
            strcmp(method, "/kv.v1.KV/Get") != 0 ? "; the write may or may not have happened" : "");
    return -1;
}

/* Runs one command; returns the number of arguments it used, or -1. */
static int run(clerk *k, char **argv, int argc, bool *missing)
{
    const char *cmd = argv[0];
    ProtobufCMessage *resp = NULL;
    bool get = strcmp(cmd, "get") == 0, stale = strcmp(cmd, "get-stale") == 0;
    if ((get || stale) && argc >= 2) {
        Kv__V1__GetRequest req = KV__V1__GET_REQUEST__INIT;
        req.key = argv[1];
        req.stale = stale;
        if (call(k, cmd, "/kv.v1.KV/Get", &req.base, &kv__v1__get_response__descriptor, &resp) !=
            0) {
            return -1;
        }
        const Kv__V1__GetResponse *r = (const Kv__V1__GetResponse *)resp;
        if (r->found) {
            printf("%s\n", r->value);
        } else {
            fprintf(stderr, "kv-clerk: %s: not found\n", argv[1]);
            *missing = true;
        }
        protobuf_c_message_free_unpacked(resp, NULL);
        return 2;
    }
    bool put = strcmp(cmd, "put") == 0, append = strcmp(cmd, "append") == 0;
    if ((put || append) && argc >= 3) {
        /* A new sequence per write, never per attempt. */
        k->sequence++;
        Kv__V1__PutRequest p = KV__V1__PUT_REQUEST__INIT;
        Kv__V1__AppendRequest a = KV__V1__APPEND_REQUEST__INIT;
        p.key = a.key = argv[1];
        p.value = a.value = argv[2];
        p.client_id = a.client_id = k->client_id;
        p.sequence = a.sequence = k->sequence;
        if (call(k, cmd, put ? "/kv.v1.KV/Put" : "/kv.v1.KV/Append", put ? &p.base : &a.base,
                 &kv__v1__write_response__descriptor, &resp) != 0) {
            return -1;
        }
        printf("ok %llu\n", (unsigned long long)((const Kv__V1__WriteResponse *)resp)->index);
        protobuf_c_message_free_unpacked(resp, NULL);
        return 3;
    }
    fprintf(stderr,
            "kv-clerk: '%s': expected get KEY, get-stale KEY, put KEY VALUE or append "
            "KEY VALUE\n",
            cmd);
    return -1;
}

static const char usage[] =
    "usage: kv-clerk --endpoints HOST:PORT,... [--timeout MS] [--cacert F --cert F --key F]\n"
    "                COMMAND...\n"
    "  get KEY            linearizable read (prints the value)\n"
    "  get-stale KEY      the answering node's value, possibly out of date\n"
    "  put KEY VALUE      sets KEY (prints the log index it took effect at)\n"
    "  append KEY VALUE   appends VALUE to KEY's value (an absent key counts as empty)\n"
    "Commands run in order, as one clerk (one client id). Exit status: 0, 1 on an error\n"
    "or an unknown command, 2 on bad usage, 3 when a get found no value.\n";

int main(int argc, char **argv)
{
    clerk k = {.timeout_ms = 10000};
    char *endpoints = NULL;
    const char *ca = getenv("PLATOON_CACERT"), *cert = getenv("PLATOON_CERT"),
               *key = getenv("PLATOON_KEY");
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        const char *flag = argv[i], *v = argv[i + 1];
        if (strcmp(flag, "--endpoints") == 0) {
            free(endpoints); /* the last one given counts */
            endpoints = strdup(v);
        } else if (strcmp(flag, "--timeout") == 0) {
            k.timeout_ms = atoll(v);
        } else if (strcmp(flag, "--cacert") == 0) {
            ca = v;
        } else if (strcmp(flag, "--cert") == 0) {
            cert = v;
        } else if (strcmp(flag, "--key") == 0) {
            key = v;
        } else {
            break;
        }
    }
    for (char *save = NULL, *ep = endpoints != NULL ? strtok_r(endpoints, ",", &save) : NULL;
         ep != NULL && k.n_endpoints < MAX_ENDPOINTS; ep = strtok_r(NULL, ",", &save)) {
        k.endpoints[k.n_endpoints++] = ep;
    }
    if (k.n_endpoints == 0 || k.timeout_ms <= 0 || i >= argc) {
        fputs(usage, stderr);
        free(endpoints);
        return 2;
    }
    if (ca != NULL && *ca != '\0') {
        k.ca = read_file(ca);
        k.cert = cert != NULL ? read_file(cert) : NULL;
        k.key = key != NULL ? read_file(key) : NULL;
        if (k.ca == NULL || k.cert == NULL || k.key == NULL) {
            fprintf(stderr, "kv-clerk: TLS needs the CA, a certificate and its key\n");
            free(k.ca);
            free(k.cert);
            free(k.key);
            free(endpoints);
            return 2;
        }
    }
    /* The clerk's session: a random id, so that two clerks never share one. */
    while (k.client_id == 0) {
        if (getrandom(&k.client_id, sizeof(k.client_id), 0) != sizeof(k.client_id)) {
            k.client_id = (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid();
        }
    }

    grpc_init();
    k.cq = grpc_completion_queue_create_for_pluck(NULL);
    int status = 0;
    bool missing = false;
    while (i < argc && status == 0) {
        int used = run(&k, argv + i, argc - i, &missing);
        if (used < 0) {
            status = 1;
        } else {
            i += used;
        }
    }
    fflush(stdout);
    for (size_t e = 0; e < k.n_endpoints; e++) {
        if (k.channels[e] != NULL) {
            grpc_channel_destroy(k.channels[e]);
        }
    }
    grpc_completion_queue_shutdown(k.cq);
    grpc_completion_queue_pluck(k.cq, NULL, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
    grpc_completion_queue_destroy(k.cq);
    grpc_shutdown_blocking();
    free(k.ca);
    free(k.cert);
    free(k.key);
    free(endpoints);
    return status != 0 ? status : missing ? 3 : 0;
}
