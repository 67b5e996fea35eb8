/*
 * The bytes the kv service puts into the Raft log and passes to its state machine: commands
 * (Put, Append), their results, queries (Get) and their answers.
 *
 * The log outlives any one build of the program, so every command starts with a format
 * version, and decoding checks every length against the buffer: a command that does not
 * decode is refused (PT_ECORRUPT), never read past its end. Integers are little-endian.
 */
#ifndef KV_CODEC_H
#define KV_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KV_KEY_MAX         1024u
#define KV_VALUE_MAX       (1u << 20)
#define KV_COMMAND_VERSION 1

enum kv_op {
    KV_OP_PUT = 1,
    KV_OP_APPEND = 2,
};

/* The outcome of a write, decided by the state machine (the same on every node). */
enum kv_status {
    KV_STATUS_OK = 0,
    KV_STATUS_STALE = 1,   /* the sequence is below the client's last one: not applied */
    KV_STATUS_TOO_BIG = 2, /* the value would exceed KV_VALUE_MAX: not applied */
};

/* A write as it travels in the log. key/value point into the buffer it was decoded from. */
typedef struct kv_command {
    uint8_t op; /* enum kv_op */
    uint64_t client_id;
    uint64_t sequence;
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
} kv_command;

/* The answer to a write. A retry of the client's last write gets the very same one. */
typedef struct kv_result {
    uint8_t status;         /* enum kv_status */
    uint64_t index;         /* KV_STATUS_OK: the log index the write took effect at */
    uint64_t last_sequence; /* KV_STATUS_STALE: the client's last sequence */
} kv_result;

#define KV_RESULT_LEN 17

/* The answer to a Get. value points into the buffer it was decoded from. */
typedef struct kv_answer {
    bool found;
    uint64_t applied_index;
    const char *value;
    size_t value_len;
} kv_answer;

/* A key is 1..KV_KEY_MAX bytes without a NUL (it is a C string inside the state machine). */
bool kv_key_valid(const char *key, size_t len);

/* Encodes @c into a malloc'd buffer. Returns 0 or PT_ENOMEM. */
int kv_command_encode(const kv_command *c, uint8_t **out, size_t *out_len);
/* Decodes a command; @c points into @buf. Returns 0, PT_EVERSION or PT_ECORRUPT. */
int kv_command_decode(const uint8_t *buf, size_t len, kv_command *c);

void kv_result_encode(const kv_result *r, uint8_t out[KV_RESULT_LEN]);
int kv_result_decode(const uint8_t *buf, size_t len, kv_result *r);

/* A Get's query is the key's bytes, as they are. Its answer: found (1 byte), the applied
 * index, then the value. */
int kv_answer_encode(const kv_answer *a, uint8_t **out, size_t *out_len);
int kv_answer_decode(const uint8_t *buf, size_t len, kv_answer *a);

static inline void kv_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline void kv_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline uint32_t kv_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

static inline uint64_t kv_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

#endif
