#include "storage/codec.h"

#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "common/checksum.h"
#include "platoon/error.h"
#include "platoon/storage.h"

static const uint8_t snap_magic[8] = {'P', 'L', 'T', 'S', 'N', 'A', 'P', '1'};
static const uint8_t snap_end_magic[8] = {'P', 'L', 'T', 'S', 'E', 'N', 'D', '1'};

size_t pstore__entry_size(const praft_entry *e)
{
    return PSTORE_ENTRY_HDR + e->len;
}

void pstore__entry_encode(const praft_entry *e, uint8_t *buf)
{
    pstore__put64(buf + 8, e->term);
    pstore__put32(buf + 16, e->type);
    pstore__put32(buf + 20, e->len);
    if (e->len > 0) {
        memcpy(buf + PSTORE_ENTRY_HDR, e->data, e->len);
    }
    uint64_t sum = XXH3_64bits_withSeed(buf + 8, PSTORE_ENTRY_HDR - 8 + e->len, e->index);
    pstore__put64(buf, sum);
}

int pstore__entry_decode(uint64_t index, const uint8_t *buf, size_t len, praft_entry *e,
                         const char **why)
{
    if (len < PSTORE_ENTRY_HDR) {
        *why = "value shorter than an entry header";
        return PT_ECORRUPT;
    }
    uint32_t dlen = pstore__get32(buf + 20);
    if ((size_t)dlen != len - PSTORE_ENTRY_HDR) {
        *why = "entry length does not match the stored value";
        return PT_ECORRUPT;
    }
    uint64_t sum = XXH3_64bits_withSeed(buf + 8, len - 8, index);
    if (sum != pstore__get64(buf)) {
        *why = "entry checksum mismatch";
        return PT_ECORRUPT;
    }
    e->index = index;
    e->term = pstore__get64(buf + 8);
    e->type = pstore__get32(buf + 16);
    e->len = dlen;
    e->data = dlen ? (uint8_t *)buf + PSTORE_ENTRY_HDR : NULL;
    return 0;
}

void pstore__rec_seal(uint8_t *buf, size_t payload_len)
{
    pstore__put64(buf + payload_len, pt__checksum(buf, payload_len));
}

bool pstore__rec_ok(const uint8_t *buf, size_t len)
{
    return len >= PSTORE_REC_SUM &&
           pt__checksum(buf, len - PSTORE_REC_SUM) == pstore__get64(buf + len - PSTORE_REC_SUM);
}

size_t pstore__config_encode(const praft_config *c, uint8_t *buf)
{
    size_t o = 0;
    buf[o++] = c->joint ? 1 : 0;
    pstore__put32(buf + o, c->n_members);
    o += 4;
    for (uint32_t i = 0; i < c->n_members && i < PRAFT_MAX_MEMBERS; i++) {
        const praft_member *m = &c->members[i];
        size_t alen = strnlen(m->address, PRAFT_ADDRESS_MAX - 1);
        pstore__put64(buf + o, m->id);
        buf[o + 8] = m->role;
        buf[o + 9] = m->old_role;
        buf[o + 10] = (uint8_t)(alen & 0xff);
        buf[o + 11] = (uint8_t)(alen >> 8);
        memcpy(buf + o + 12, m->address, alen);
        o += 12 + alen;
    }
    return o;
}

int pstore__config_decode(const uint8_t *buf, size_t len, praft_config *c, size_t *used)
{
    if (len < 5 || buf[0] > 1) {
        return PT_ECORRUPT;
    }
    memset(c, 0, sizeof(*c));
    c->joint = buf[0] == 1;
    uint32_t n = pstore__get32(buf + 1);
    if (n > PRAFT_MAX_MEMBERS) {
        return PT_ECORRUPT;
    }
    size_t o = 5;
    for (uint32_t i = 0; i < n; i++) {
        if (len - o < 12) {
            return PT_ECORRUPT;
        }
        praft_member *m = &c->members[i];
        size_t alen = (size_t)buf[o + 10] | (size_t)buf[o + 11] << 8;
        if (alen >= PRAFT_ADDRESS_MAX || len - o - 12 < alen || buf[o + 8] > 2 || buf[o + 9] > 2) {
            return PT_ECORRUPT;
        }
        m->id = pstore__get64(buf + o);
        m->role = buf[o + 8];
        m->old_role = buf[o + 9];
        memcpy(m->address, buf + o + 12, alen);
        m->address[alen] = '\0';
        o += 12 + alen;
    }
    c->n_members = n;
    *used = o;
    return 0;
}

size_t pstore__snap_hdr_encode(const pstore_snap_hdr *h, uint8_t *buf)
{
    memcpy(buf, snap_magic, 8);
    pstore__put32(buf + 8, PSTORE_SNAP_VERSION);
    pstore__put32(buf + 12, h->compression);
    pstore__put64(buf + 16, h->index);
    pstore__put64(buf + 24, h->term);
    return 32 + pstore__config_encode(&h->config, buf + 32);
}

static uint64_t meta_sum(const uint8_t *hdr, size_t hdr_len, const uint8_t *trailer)
{
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, hdr, hdr_len);
    XXH3_64bits_update(&st, trailer, 32);
    return (uint64_t)XXH3_64bits_digest(&st);
}

void pstore__snap_trailer_encode(const pstore_snap_hdr *h, const uint8_t *hdr, size_t hdr_len,
                                 uint8_t trailer[PSTORE_SNAP_TRAILER])
{
    pstore__put64(trailer, h->raw_size);
    pstore__put64(trailer + 8, h->payload_size);
    pstore__put64(trailer + 16, h->payload_sum);
    pstore__put64(trailer + 24, hdr_len);
    pstore__put64(trailer + 32, meta_sum(hdr, hdr_len, trailer));
    memcpy(trailer + 40, snap_end_magic, 8);
}

int pstore__snap_trailer_decode(const uint8_t trailer[PSTORE_SNAP_TRAILER], uint64_t file_size,
                                pstore_snap_hdr *h, const char **why)
{
    if (memcmp(trailer + 40, snap_end_magic, 8) != 0) {
        *why = "bad trailer magic (truncated or damaged file)";
        return PT_ECORRUPT;
    }
    h->raw_size = pstore__get64(trailer);
    h->payload_size = pstore__get64(trailer + 8);
    h->payload_sum = pstore__get64(trailer + 16);
    h->header_len = pstore__get64(trailer + 24);
    if (h->header_len < 37 || h->header_len > PSTORE_SNAP_HDR_MAX || h->payload_size > file_size ||
        h->header_len + h->payload_size + PSTORE_SNAP_TRAILER != file_size) {
        *why = "trailer sizes do not add up to the file size";
        return PT_ECORRUPT;
    }
    return 0;
}

int pstore__snap_hdr_decode(const uint8_t *hdr, const uint8_t trailer[PSTORE_SNAP_TRAILER],
                            pstore_snap_hdr *h, const char **why)
{
    if (meta_sum(hdr, h->header_len, trailer) != pstore__get64(trailer + 32)) {
        *why = "header checksum mismatch";
        return PT_ECORRUPT;
    }
    if (memcmp(hdr, snap_magic, 8) != 0) {
        *why = "bad header magic";
        return PT_ECORRUPT;
    }
    if (pstore__get32(hdr + 8) != PSTORE_SNAP_VERSION) {
        *why = "unsupported snapshot format version";
        return PT_EVERSION;
    }
    h->compression = pstore__get32(hdr + 12);
    h->index = pstore__get64(hdr + 16);
    h->term = pstore__get64(hdr + 24);
    size_t used = 0;
    if (h->compression > PSTORE_COMP_ZSTD ||
        pstore__config_decode(hdr + 32, h->header_len - 32, &h->config, &used) != 0 ||
        used != h->header_len - 32) {
        *why = "malformed header";
        return PT_ECORRUPT;
    }
    return 0;
}
