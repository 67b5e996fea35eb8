/* Encodings of the kv service's commands, results and answers: see kv_codec.h. */
#include "kv_codec.h"

#include <stdlib.h>
#include <string.h>

#include <platoon/error.h>

/* version, op, client id, sequence, key length, value length */
#define COMMAND_HEADER_LEN (1 + 1 + 8 + 8 + 4 + 4)
#define ANSWER_HEADER_LEN  (1 + 8)

bool kv_key_valid(const char *key, size_t len)
{
    return len > 0 && len <= KV_KEY_MAX && memchr(key, '\0', len) == NULL;
}

int kv_command_encode(const kv_command *c, uint8_t **out, size_t *out_len)
{
    size_t len = COMMAND_HEADER_LEN + c->key_len + c->value_len;
    uint8_t *p = malloc(len);
    if (p == NULL) {
        return PT_ENOMEM;
    }
    p[0] = KV_COMMAND_VERSION;
    p[1] = c->op;
    kv_put_u64(p + 2, c->client_id);
    kv_put_u64(p + 10, c->sequence);
    kv_put_u32(p + 18, (uint32_t)c->key_len);
    kv_put_u32(p + 22, (uint32_t)c->value_len);
    memcpy(p + COMMAND_HEADER_LEN, c->key, c->key_len);
    if (c->value_len > 0) {
        memcpy(p + COMMAND_HEADER_LEN + c->key_len, c->value, c->value_len);
    }
    *out = p;
    *out_len = len;
    return 0;
}

int kv_command_decode(const uint8_t *buf, size_t len, kv_command *c)
{
    if (len < COMMAND_HEADER_LEN) {
        return PT_ECORRUPT;
    }
    if (buf[0] != KV_COMMAND_VERSION) {
        return PT_EVERSION;
    }
    c->op = buf[1];
    c->client_id = kv_get_u64(buf + 2);
    c->sequence = kv_get_u64(buf + 10);
    c->key_len = kv_get_u32(buf + 18);
    c->value_len = kv_get_u32(buf + 22);
    /* Lengths are checked one at a time so that their sum cannot overflow. */
    if ((c->op != KV_OP_PUT && c->op != KV_OP_APPEND) || c->client_id == 0 || c->sequence == 0 ||
        c->key_len > KV_KEY_MAX || c->value_len > KV_VALUE_MAX ||
        len != COMMAND_HEADER_LEN + c->key_len + c->value_len) {
        return PT_ECORRUPT;
    }
    c->key = (const char *)buf + COMMAND_HEADER_LEN;
    c->value = c->key + c->key_len;
    if (!kv_key_valid(c->key, c->key_len)) {
        return PT_ECORRUPT;
    }
    return 0;
}

void kv_result_encode(const kv_result *r, uint8_t out[KV_RESULT_LEN])
{
    out[0] = r->status;
    kv_put_u64(out + 1, r->index);
    kv_put_u64(out + 9, r->last_sequence);
}

int kv_result_decode(const uint8_t *buf, size_t len, kv_result *r)
{
    if (len != KV_RESULT_LEN || buf[0] > KV_STATUS_TOO_BIG) {
        return PT_ECORRUPT;
    }
    r->status = buf[0];
    r->index = kv_get_u64(buf + 1);
    r->last_sequence = kv_get_u64(buf + 9);
    return 0;
}

int kv_answer_encode(const kv_answer *a, uint8_t **out, size_t *out_len)
{
    size_t len = ANSWER_HEADER_LEN + a->value_len;
    uint8_t *p = malloc(len);
    if (p == NULL) {
        return PT_ENOMEM;
    }
    p[0] = a->found ? 1 : 0;
    kv_put_u64(p + 1, a->applied_index);
    if (a->value_len > 0) {
        memcpy(p + ANSWER_HEADER_LEN, a->value, a->value_len);
    }
    *out = p;
    *out_len = len;
    return 0;
}

int kv_answer_decode(const uint8_t *buf, size_t len, kv_answer *a)
{
    if (len < ANSWER_HEADER_LEN || buf[0] > 1) {
        return PT_ECORRUPT;
    }
    a->found = buf[0] == 1;
    a->applied_index = kv_get_u64(buf + 1);
    a->value = (const char *)buf + ANSWER_HEADER_LEN;
    a->value_len = len - ANSWER_HEADER_LEN;
    return 0;
}
