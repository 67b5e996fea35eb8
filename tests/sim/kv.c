/*
 * The simulated application: a small key-value store with exactly-once writes. A put carries
 * (client, seq); the store remembers the highest seq applied per client and skips a command it
 * has already applied, so a client may retry a put through any node without applying it twice
 * (raft-pitfalls: "retries after a leader change can apply a command twice"). The dedup table
 * is part of the state and of the snapshot.
 */
#include <string.h>

#include "platoon/error.h"
#include "sim/rng.h"
#include "sim/sim.h"

#define PUT_BYTES 25

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

void psim_kv_reset(psim_kv *kv)
{
    memset(kv, 0, sizeof(*kv));
}

int psim_kv_encode_put(uint32_t client, uint64_t seq, uint32_t key, uint64_t value, uint8_t *buf,
                       size_t cap, size_t *len)
{
    if (cap < PUT_BYTES) {
        return PT_EINVAL;
    }
    buf[0] = 'P';
    put64(buf + 1, client);
    put64(buf + 9, seq);
    put64(buf + 17, ((uint64_t)key << 56) | (value & 0x00ffffffffffffffULL));
    *len = PUT_BYTES;
    return 0;
}

int psim_kv_apply(psim_kv *kv, const uint8_t *data, size_t len)
{
    if (len != PUT_BYTES || data[0] != 'P') {
        return PT_ECORRUPT;
    }
    uint64_t client = get64(data + 1), seq = get64(data + 9), kv_word = get64(data + 17);
    uint64_t key = kv_word >> 56, value = kv_word & 0x00ffffffffffffffULL;
    if (client >= PSIM_MAX_CLIENTS || key >= PSIM_MAX_KEYS) {
        return PT_ECORRUPT;
    }
    if (seq <= kv->last_seq[client]) {
        return 0; /* a retry of a command already applied */
    }
    kv->last_seq[client] = seq;
    kv->values[key] = value;
    return 0;
}

uint64_t psim_kv_hash(const psim_kv *kv)
{
    uint64_t h = 0x5157;
    for (int i = 0; i < PSIM_MAX_KEYS; i++) {
        h = psim_mix(h, kv->values[i]);
    }
    for (int i = 0; i < PSIM_MAX_CLIENTS; i++) {
        h = psim_mix(h, kv->last_seq[i]);
    }
    return h;
}

void psim_kv_save(const psim_kv *kv, uint8_t *buf)
{
    put64(buf, kv->applied);
    for (size_t i = 0; i < PSIM_MAX_KEYS; i++) {
        put64(buf + 8 * (1 + i), kv->values[i]);
    }
    for (size_t i = 0; i < PSIM_MAX_CLIENTS; i++) {
        put64(buf + 8 * (1 + PSIM_MAX_KEYS + i), kv->last_seq[i]);
    }
}

int psim_kv_load(psim_kv *kv, const uint8_t *buf, size_t len)
{
    if (len != PSIM_KV_SNAPSHOT_BYTES) {
        return PT_ECORRUPT;
    }
    kv->applied = get64(buf);
    for (size_t i = 0; i < PSIM_MAX_KEYS; i++) {
        kv->values[i] = get64(buf + 8 * (1 + i));
    }
    for (size_t i = 0; i < PSIM_MAX_CLIENTS; i++) {
        kv->last_seq[i] = get64(buf + 8 * (1 + PSIM_MAX_KEYS + i));
    }
    return 0;
}
