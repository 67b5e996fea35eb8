/*
 * The kv.v1.KV gRPC service (kv.proto), served by the node runtime: each handler runs on the
 * runtime's loop thread, checks its request, and hands it on:
 *   Put, Append  on the leader: pnode_submit (replicate the command, answer once applied here);
 *                elsewhere: pnode_forward (the leader runs this same handler and answers);
 *   Get          pnode_query, linearizable (a ReadIndex round, thesis §6.4, also on a
 *                follower) or, when asked, stale (this node's state as it is).
 * A request is checked before it is forwarded or proposed, so a bad one is refused by
 * whichever node got it, and nothing undecodable ever reaches the log.
 */
#include "kv_service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.pb-c.h"
#include "kv_codec.h"

/* ----- Put and Append ----- */

static void write_done(pnode *node, void *ctx, pnode_request *req, int code, const char *message,
                       const uint8_t *data, size_t len)
{
    (void)node;
    (void)ctx;
    kv_result r;
    if (code != PNODE_OK) {
        /* UNAVAILABLE here may mean "applied, but the answer was lost with the leadership":
         * the clerk's retry with the same sequence finds out without applying twice. */
        pnode_fail(req, code, message);
        return;
    }
    if (kv_result_decode(data, len, &r) != 0) {
        pnode_fail(req, PNODE_INTERNAL, "undecodable result from the state machine");
        return;
    }
    char why[160];
    switch (r.status) {
    case KV_STATUS_OK: {
        Kv__V1__WriteResponse resp = KV__V1__WRITE_RESPONSE__INIT;
        resp.index = r.index;
        pnode_reply_message(req, &resp.base);
        return;
    }
    case KV_STATUS_STALE:
        snprintf(why, sizeof(why), "sequence is below this client's last one (%llu)",
                 (unsigned long long)r.last_sequence);
        pnode_fail(req, PNODE_FAILED_PRECONDITION, why);
        return;
    default:
        snprintf(why, sizeof(why), "the value would exceed %u bytes", KV_VALUE_MAX);
        pnode_fail(req, PNODE_FAILED_PRECONDITION, why);
        return;
    }
}

/* Checks a write's fields; answers @req and returns false when one is wrong. */
static bool write_valid(pnode_request *req, const char *key, const char *value, uint64_t client_id,
                        uint64_t sequence)
{
    const char *why = NULL;
    if (!kv_key_valid(key, strlen(key))) {
        why = "key must be 1 to 1024 bytes";
    } else if (strlen(value) > KV_VALUE_MAX) {
        why = "value must be at most 1 MiB";
    } else if (client_id == 0 || sequence == 0) {
        why = "client_id and sequence must be non-zero (see kv.proto: exactly-once clerks)";
    }
    if (why != NULL) {
        pnode_fail(req, PNODE_INVALID_ARGUMENT, why);
        return false;
    }
    return true;
}

static void submit_write(pnode *node, pnode_request *req, const kv_command *c)
{
    if (!pnode_is_leader(node)) {
        pnode_forward(node, req);
        return;
    }
    uint8_t *cmd;
    size_t len;
    if (kv_command_encode(c, &cmd, &len) != 0) {
        pnode_fail(req, PNODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    pnode_submit(node, req, cmd, len, write_done, NULL);
    free(cmd); /* pnode_submit copied it */
}

static void handle_put(pnode *node, void *app, pnode_request *req)
{
    (void)app;
    size_t len;
    const uint8_t *data = pnode_request_data(req, &len);
    Kv__V1__PutRequest *in = kv__v1__put_request__unpack(NULL, len, data);
    if (in == NULL) {
        pnode_fail(req, PNODE_INVALID_ARGUMENT, "malformed PutRequest");
        return;
    }
    if (write_valid(req, in->key, in->value, in->client_id, in->sequence)) {
        kv_command c = {.op = KV_OP_PUT,
                        .client_id = in->client_id,
                        .sequence = in->sequence,
                        .key = in->key,
                        .key_len = strlen(in->key),
                        .value = in->value,
                        .value_len = strlen(in->value)};
        submit_write(node, req, &c);
    }
    kv__v1__put_request__free_unpacked(in, NULL);
}

static void handle_append(pnode *node, void *app, pnode_request *req)
{
    (void)app;
    size_t len;
    const uint8_t *data = pnode_request_data(req, &len);
    Kv__V1__AppendRequest *in = kv__v1__append_request__unpack(NULL, len, data);
    if (in == NULL) {
        pnode_fail(req, PNODE_INVALID_ARGUMENT, "malformed AppendRequest");
        return;
    }
    if (write_valid(req, in->key, in->value, in->client_id, in->sequence)) {
        kv_command c = {.op = KV_OP_APPEND,
                        .client_id = in->client_id,
                        .sequence = in->sequence,
                        .key = in->key,
                        .key_len = strlen(in->key),
                        .value = in->value,
                        .value_len = strlen(in->value)};
        submit_write(node, req, &c);
    }
    kv__v1__append_request__free_unpacked(in, NULL);
}

/* ----- Get ----- */

static void get_done(pnode *node, void *ctx, pnode_request *req, int code, const char *message,
                     const uint8_t *data, size_t len)
{
    (void)node;
    (void)ctx;
    kv_answer a;
    if (code != PNODE_OK) {
        pnode_fail(req, code, message);
        return;
    }
    if (kv_answer_decode(data, len, &a) != 0) {
        pnode_fail(req, PNODE_INTERNAL, "undecodable answer from the state machine");
        return;
    }
    /* protobuf-c wants a NUL-terminated string; the answer's bytes are not. */
    char *value = malloc(a.value_len + 1);
    if (value == NULL) {
        pnode_fail(req, PNODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    memcpy(value, a.value, a.value_len);
    value[a.value_len] = '\0';
    Kv__V1__GetResponse resp = KV__V1__GET_RESPONSE__INIT;
    resp.found = a.found;
    resp.value = value;
    resp.applied_index = a.applied_index;
    pnode_reply_message(req, &resp.base);
    free(value);
}

static void handle_get(pnode *node, void *app, pnode_request *req)
{
    (void)app;
    size_t len;
    const uint8_t *data = pnode_request_data(req, &len);
    Kv__V1__GetRequest *in = kv__v1__get_request__unpack(NULL, len, data);
    if (in == NULL) {
        pnode_fail(req, PNODE_INVALID_ARGUMENT, "malformed GetRequest");
        return;
    }
    size_t key_len = strlen(in->key);
    if (!kv_key_valid(in->key, key_len)) {
        pnode_fail(req, PNODE_INVALID_ARGUMENT, "key must be 1 to 1024 bytes");
    } else {
        /* The query is the key itself; pnode_query copies it. */
        pnode_query(node, req, !in->stale, in->key, key_len, get_done, NULL);
    }
    kv__v1__get_request__free_unpacked(in, NULL);
}

size_t kv_service_methods(pnode_method *out, size_t cap)
{
    const pnode_method methods[] = {
        {.name = "/kv.v1.KV/Get", .handler = handle_get, .role = PNODE_ROLE_READER},
        {.name = "/kv.v1.KV/Put", .handler = handle_put, .role = PNODE_ROLE_WRITER},
        {.name = "/kv.v1.KV/Append", .handler = handle_append, .role = PNODE_ROLE_WRITER},
    };
    size_t n = sizeof(methods) / sizeof(methods[0]);
    if (cap < n) {
        return 0;
    }
    memcpy(out, methods, sizeof(methods));
    return n;
}
