/*
 * Byte layouts of everything the store writes: log entry values, metadata records,
 * configurations, snapshot headers and trailers. All integers are little-endian except log
 * keys, which are big-endian so that LMDB's byte order is index order.
 */
#ifndef PLATOON_STORAGE_CODEC_H
#define PLATOON_STORAGE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platoon/raft.h"

static inline void pstore__put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline uint64_t pstore__get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static inline void pstore__put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline uint32_t pstore__get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Log keys: big-endian index. */
static inline void pstore__key_put(uint8_t key[8], uint64_t index)
{
    for (int i = 0; i < 8; i++) {
        key[i] = (uint8_t)(index >> (56 - 8 * i));
    }
}

static inline uint64_t pstore__key_get(const uint8_t key[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | key[i];
    }
    return v;
}

/*
 * Entry value: checksum(8) term(8) type(4) len(4) data(len). The checksum is XXH3-64, seeded
 * with the entry's index, of everything after it: a value that is damaged, or that is found
 * under another index than the one it was written for, fails verification.
 */
#define PSTORE_ENTRY_HDR 24u

size_t pstore__entry_size(const praft_entry *e);
/* Writes the value of @e into @buf (room for pstore__entry_size(e) bytes). */
void pstore__entry_encode(const praft_entry *e, uint8_t *buf);
/*
 * Checks and decodes a value stored under @index. Fills @e (data points into @buf, not
 * copied). On failure returns PT_ECORRUPT and a static description in *why.
 */
int pstore__entry_decode(uint64_t index, const uint8_t *buf, size_t len, praft_entry *e,
                         const char **why);

/* Metadata records: payload followed by the XXH3-64 of the payload. */
#define PSTORE_REC_SUM 8u
void pstore__rec_seal(uint8_t *buf, size_t payload_len);
bool pstore__rec_ok(const uint8_t *buf, size_t len);

/* Configurations: joint(1) n(4) then per member id(8) role(1) old_role(1) addr_len(2) addr. */
#define PSTORE_CONFIG_MAX (5u + PRAFT_MAX_MEMBERS * (12u + PRAFT_ADDRESS_MAX))
size_t pstore__config_encode(const praft_config *c, uint8_t *buf);
int pstore__config_decode(const uint8_t *buf, size_t len, praft_config *c, size_t *used);

/*
 * Snapshot file: header, payload, trailer.
 *   header:  magic "PLTSNAP1"(8) version(4) compression(4) index(8) term(8) config
 *   trailer: raw_size(8) payload_size(8) payload_sum(8) header_len(8) meta_sum(8)
 *            magic "PLTSEND1"(8)
 * meta_sum is the XXH3-64 of the header followed by the first 32 trailer bytes.
 */
#define PSTORE_SNAP_TRAILER 48u
/* The snapshot file's own version, whatever the engine of the log beside it. */
#define PSTORE_SNAP_VERSION 1u
#define PSTORE_SNAP_HDR_MAX (32u + PSTORE_CONFIG_MAX)
enum { PSTORE_COMP_NONE = 0, PSTORE_COMP_ZSTD = 1 };

typedef struct pstore_snap_hdr {
    uint32_t compression;
    uint64_t index;
    uint64_t term;
    praft_config config;
    /* from the trailer */
    uint64_t raw_size;
    uint64_t payload_size;
    uint64_t payload_sum;
    uint64_t header_len;
} pstore_snap_hdr;

size_t pstore__snap_hdr_encode(const pstore_snap_hdr *h, uint8_t *buf);
/* Fills the trailer of @h (header bytes @hdr, @hdr_len) into @trailer. */
void pstore__snap_trailer_encode(const pstore_snap_hdr *h, const uint8_t *hdr, size_t hdr_len,
                                 uint8_t trailer[PSTORE_SNAP_TRAILER]);
/* Parses a trailer; PT_ECORRUPT with *why on a bad magic or impossible sizes for @file_size. */
int pstore__snap_trailer_decode(const uint8_t trailer[PSTORE_SNAP_TRAILER], uint64_t file_size,
                                pstore_snap_hdr *h, const char **why);
/* Parses and verifies the header (h->header_len bytes at @hdr) against the trailer. */
int pstore__snap_hdr_decode(const uint8_t *hdr, const uint8_t trailer[PSTORE_SNAP_TRAILER],
                            pstore_snap_hdr *h, const char **why);

#endif
