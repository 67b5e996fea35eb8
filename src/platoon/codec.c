/* Encoding and validating decoding of commands, results, queries and query results. */
#include "platoon/codec.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/checksum.h"
#include "platoon/bytes.h"

void pveh__vehicle_put(uint8_t *p, const pveh_vehicle *v, bool with_revision)
{
    pveh__put_u64(p, v->id);
    pveh__put_f64(p + 8, v->latitude);
    pveh__put_f64(p + 16, v->longitude);
    pveh__put_f64(p + 24, v->speed);
    pveh__put_f64(p + 32, v->heading);
    if (with_revision) {
        pveh__put_u64(p + 40, v->revision);
    }
}

bool pveh__vehicle_get(const uint8_t *p, bool with_revision, pveh_vehicle *out)
{
    pveh_vehicle v;
    v.id = pveh__get_u64(p);
    v.latitude = pveh__get_f64(p + 8);
    v.longitude = pveh__get_f64(p + 16);
    v.speed = pveh__get_f64(p + 24);
    v.heading = pveh__get_f64(p + 32);
    v.revision = with_revision ? pveh__get_u64(p + 40) : 0;
    if (!pveh__vehicle_valid(&v) || (with_revision && v.revision == 0)) {
        return false;
    }
    *out = v;
    return true;
}

/* Allocates @len bytes for an encoding; the caller fills them. */
static int alloc_out(size_t len, uint8_t **out, size_t *out_len)
{
    uint8_t *buf = malloc(len);
    if (buf == NULL) {
        return PT_ENOMEM;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

/* A malloc'd copy of the encoding @buf (@len bytes) in *@out. */
static int copy_out(const uint8_t *buf, size_t len, uint8_t **out, size_t *out_len)
{
    int rv = alloc_out(len, out, out_len);
    if (rv == 0) {
        memcpy(*out, buf, len);
    }
    return rv;
}

/* SHA-256, fetched from OpenSSL's providers once: a fetch per call costs more than the hash
 * of a short name (it looks the algorithm up under a lock). NULL if it could not be had then
 * (each call then fetches it). */
static EVP_MD *sha256;
/* The key of "" (no TLS: every caller), computed once; UINT64_MAX if that failed. */
static uint64_t key_of_nobody;
static uint64_t principal_key_compute(const char *name);

static void principal_key_init(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    key_of_nobody = principal_key_compute("");
}

static uint64_t principal_key_compute(const char *name)
{
    /* A domain prefix keeps these keys apart from any other use of SHA-256 of a name. */
    static const char prefix[] = "platoon-principal\n";
    uint8_t digest[EVP_MAX_MD_SIZE];
    unsigned digest_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL &&
              EVP_DigestInit_ex(ctx, sha256 != NULL ? sha256 : EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(ctx, prefix, sizeof(prefix) - 1) == 1 &&
              EVP_DigestUpdate(ctx, name, strlen(name)) == 1 &&
              EVP_DigestFinal_ex(ctx, digest, &digest_len) == 1 && digest_len >= 8;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        /* Only an allocation failure inside OpenSSL gets here; a key that matches nobody's
         * refuses the caller's sessions rather than letting it into another's. */
        return UINT64_MAX;
    }
    uint64_t key = pveh__get_u64(digest);
    return key != 0 ? key : 1;
}

uint64_t pveh_principal_key(const char *name)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, principal_key_init);
    if ((name == NULL || name[0] == '\0') && key_of_nobody != UINT64_MAX) {
        return key_of_nobody;
    }
    return principal_key_compute(name != NULL ? name : "");
}

/* The body length of each kind of version 2 command, or -1 for an unknown kind. */
static long body_len_of(uint32_t op)
{
    switch (op) {
    case PVEH_OP_UPDATE:
        return PVEH_VEHICLE_BODY_LEN;
    case PVEH_OP_DELETE:
        return 8;
    case PVEH_OP_OPEN_SESSION:
    case PVEH_OP_CLOSE_SESSION:
        return 0;
    default:
        return -1;
    }
}

int pveh__command_put(uint8_t *p, const pveh_command *c, size_t *len)
{
    long body = body_len_of(c->op);
    bool ok = body >= 0;
    switch (c->op) {
    case PVEH_OP_UPDATE:
        ok = pveh__vehicle_valid(&c->vehicle);
        break;
    case PVEH_OP_DELETE:
        ok = c->id != 0;
        break;
    case PVEH_OP_OPEN_SESSION:
        ok = c->client_id == 0 && c->sequence == 0 && c->limit != 0;
        break;
    case PVEH_OP_CLOSE_SESSION:
        ok = c->client_id != 0;
        break;
    default:
        break;
    }
    if (!ok) {
        return PT_EINVAL;
    }
    p[0] = PVEH_CMD_VERSION;
    p[1] = (uint8_t)c->op;
    pveh__put_u64(p + 2, c->client_id);
    pveh__put_u64(p + 10, c->sequence);
    pveh__put_u64(p + 18, c->timestamp_ms);
    pveh__put_u64(p + 26, c->principal);
    pveh__put_u64(p + 34, c->limit);
    if (c->op == PVEH_OP_UPDATE) {
        pveh__vehicle_put(p + PVEH_CMD_HEADER_LEN, &c->vehicle, false);
    } else if (c->op == PVEH_OP_DELETE) {
        pveh__put_u64(p + PVEH_CMD_HEADER_LEN, c->id);
    }
    *len = PVEH_CMD_HEADER_LEN + (size_t)body;
    return 0;
}

int pveh_command_encode(const pveh_command *c, uint8_t **out, size_t *out_len)
{
    if (c == NULL || out == NULL || out_len == NULL) {
        return PT_EINVAL;
    }
    uint8_t buf[PVEH_CMD_MAX_LEN];
    size_t len = 0;
    int rv = pveh__command_put(buf, c, &len);
    return rv == 0 ? copy_out(buf, len, out, out_len) : rv;
}

int pveh_command_update(const pveh_vehicle *v, uint64_t client_id, uint64_t sequence,
                        uint64_t timestamp_ms, uint8_t **out, size_t *out_len)
{
    if (v == NULL) {
        return PT_EINVAL;
    }
    pveh_command c;
    memset(&c, 0, sizeof(c));
    c.op = PVEH_OP_UPDATE;
    c.vehicle = *v;
    c.vehicle.revision = 0;
    c.id = v->id;
    c.client_id = client_id;
    c.sequence = sequence;
    c.timestamp_ms = timestamp_ms;
    return pveh_command_encode(&c, out, out_len);
}

int pveh_command_delete(uint64_t id, uint64_t client_id, uint64_t sequence, uint64_t timestamp_ms,
                        uint8_t **out, size_t *out_len)
{
    pveh_command c;
    memset(&c, 0, sizeof(c));
    c.op = PVEH_OP_DELETE;
    c.id = id;
    c.client_id = client_id;
    c.sequence = sequence;
    c.timestamp_ms = timestamp_ms;
    return pveh_command_encode(&c, out, out_len);
}

/* Version 1 (before sessions were opened explicitly and bound to a principal): a 26-byte
 * header without principal and limit, UPDATE and DELETE only. Still read, for logs and
 * snapshots written by earlier releases; applied with the rules of their time. */
static int decode_v1(const uint8_t *data, size_t len, pveh_command *c)
{
    const size_t hdr = PVEH_CMD_V1_HEADER_LEN;
    switch (c->op) {
    case PVEH_OP_UPDATE:
        if (len != hdr + PVEH_VEHICLE_BODY_LEN ||
            !pveh__vehicle_get(data + hdr, false, &c->vehicle)) {
            return PT_ECORRUPT;
        }
        c->id = c->vehicle.id;
        break;
    case PVEH_OP_DELETE:
        if (len != hdr + 8 || (c->id = pveh__get_u64(data + hdr)) == 0) {
            return PT_ECORRUPT;
        }
        break;
    default:
        return PT_ECORRUPT;
    }
    return 0;
}

static int decode_v2(const uint8_t *data, size_t len, pveh_command *c)
{
    long body = body_len_of(c->op);
    if (body < 0 || len != PVEH_CMD_HEADER_LEN + (size_t)body) {
        return PT_ECORRUPT;
    }
    c->principal = pveh__get_u64(data + 26);
    c->limit = pveh__get_u64(data + 34);
    const uint8_t *b = data + PVEH_CMD_HEADER_LEN;
    switch (c->op) {
    case PVEH_OP_UPDATE:
        if (!pveh__vehicle_get(b, false, &c->vehicle)) {
            return PT_ECORRUPT;
        }
        c->id = c->vehicle.id;
        return 0;
    case PVEH_OP_DELETE:
        c->id = pveh__get_u64(b);
        return c->id != 0 ? 0 : PT_ECORRUPT;
    case PVEH_OP_OPEN_SESSION:
        return pveh__get_u64(data + 2) == 0 && pveh__get_u64(data + 10) == 0 && c->limit != 0
                   ? 0
                   : PT_ECORRUPT;
    default: /* CLOSE_SESSION */
        return pveh__get_u64(data + 2) != 0 ? 0 : PT_ECORRUPT;
    }
}

int pveh_command_decode(const uint8_t *data, size_t len, pveh_command *out)
{
    if (data == NULL || len < 2 || out == NULL) {
        return PT_ECORRUPT;
    }
    if (data[0] != 1 && data[0] != PVEH_CMD_VERSION) {
        return PT_EVERSION;
    }
    pveh_command c;
    memset(&c, 0, sizeof(c));
    c.version = data[0];
    c.op = data[1];
    if (len < PVEH_CMD_V1_HEADER_LEN) {
        return PT_ECORRUPT;
    }
    int rv = c.version == 1 ? decode_v1(data, len, &c) : decode_v2(data, len, &c);
    if (rv != 0) {
        return rv;
    }
    c.client_id = pveh__get_u64(data + 2);
    c.sequence = pveh__get_u64(data + 10);
    c.timestamp_ms = pveh__get_u64(data + 18);
    *out = c;
    return 0;
}

uint64_t pveh__command_fingerprint(const uint8_t *cmd, size_t len)
{
    /* The kind byte followed by the body: two requests with the same kind and body are the
     * same request whatever their header says. */
    uint8_t buf[1 + PVEH_VEHICLE_BODY_LEN];
    size_t hdr = cmd[0] == 1 ? PVEH_CMD_V1_HEADER_LEN : PVEH_CMD_HEADER_LEN;
    size_t body = len > hdr ? len - hdr : 0;
    if (body > sizeof(buf) - 1) {
        body = sizeof(buf) - 1;
    }
    buf[0] = cmd[1];
    memcpy(buf + 1, cmd + hdr, body);
    uint64_t h = pt__checksum(buf, 1 + body);
    return h != 0 ? h : 1;
}

int pveh__result_put(uint8_t *buf, const pveh_result *r, size_t *len)
{
    buf[0] = PVEH_FORMAT_VERSION;
    buf[1] = (uint8_t)r->op;
    buf[2] = (uint8_t)r->status;
    if (body_len_of(r->op) < 0) {
        return PT_EINVAL;
    }
    switch (r->status) {
    case PVEH_STATUS_OK:
        switch (r->op) {
        case PVEH_OP_UPDATE:
            pveh__vehicle_put(buf + 3, &r->vehicle, true);
            *len = PVEH_RESULT_HEADER_LEN + PVEH_VEHICLE_RECORD_LEN;
            break;
        case PVEH_OP_DELETE:
            buf[3] = r->existed ? 1 : 0;
            pveh__put_u64(buf + 4, r->revision);
            *len = PVEH_RESULT_HEADER_LEN + 9;
            break;
        case PVEH_OP_OPEN_SESSION:
            pveh__put_u64(buf + 3, r->client_id);
            *len = PVEH_RESULT_HEADER_LEN + 8;
            break;
        default: /* CLOSE_SESSION */
            buf[3] = r->existed ? 1 : 0;
            *len = PVEH_RESULT_HEADER_LEN + 1;
            break;
        }
        return 0;
    case PVEH_STATUS_STALE_SEQUENCE:
    case PVEH_STATUS_SEQUENCE_CONFLICT:
        pveh__put_u64(buf + 3, r->last_sequence);
        *len = PVEH_RESULT_HEADER_LEN + 8;
        return 0;
    case PVEH_STATUS_UNKNOWN_SESSION:
    case PVEH_STATUS_FOREIGN_SESSION:
    case PVEH_STATUS_PLATOON_FULL:
    case PVEH_STATUS_SESSIONS_FULL:
        *len = PVEH_RESULT_HEADER_LEN;
        return 0;
    default:
        return PT_EINVAL;
    }
}

int pveh_result_encode(const pveh_result *r, uint8_t **out, size_t *out_len)
{
    if (r == NULL || out == NULL || out_len == NULL) {
        return PT_EINVAL;
    }
    uint8_t buf[PVEH_RESULT_MAX_LEN];
    size_t len = 0;
    int rv = pveh__result_put(buf, r, &len);
    return rv == 0 ? copy_out(buf, len, out, out_len) : rv;
}

int pveh_result_decode(const uint8_t *data, size_t len, pveh_result *out)
{
    if (data == NULL || len < PVEH_RESULT_HEADER_LEN) {
        return PT_EMALFORMED;
    }
    if (data[0] != PVEH_FORMAT_VERSION) {
        return PT_EVERSION;
    }
    pveh_result r;
    memset(&r, 0, sizeof(r));
    r.op = data[1];
    r.status = data[2];
    if (body_len_of(r.op) < 0) {
        return PT_EMALFORMED;
    }
    const uint8_t *body = data + PVEH_RESULT_HEADER_LEN;
    size_t body_len = len - PVEH_RESULT_HEADER_LEN;
    switch (r.status) {
    case PVEH_STATUS_OK:
        if (r.op == PVEH_OP_UPDATE) {
            if (body_len != PVEH_VEHICLE_RECORD_LEN || !pveh__vehicle_get(body, true, &r.vehicle)) {
                return PT_EMALFORMED;
            }
            r.revision = r.vehicle.revision;
        } else if (r.op == PVEH_OP_OPEN_SESSION) {
            if (body_len != 8 || (r.client_id = pveh__get_u64(body)) == 0) {
                return PT_EMALFORMED;
            }
        } else if (r.op == PVEH_OP_CLOSE_SESSION) {
            if (body_len != 1 || body[0] > 1) {
                return PT_EMALFORMED;
            }
            r.existed = body[0] == 1;
        } else {
            if (body_len != 9 || body[0] > 1) {
                return PT_EMALFORMED;
            }
            r.existed = body[0] == 1;
            r.revision = pveh__get_u64(body + 1);
            if (r.revision == 0) {
                return PT_EMALFORMED;
            }
        }
        break;
    case PVEH_STATUS_STALE_SEQUENCE:
    case PVEH_STATUS_SEQUENCE_CONFLICT:
        if (body_len != 8) {
            return PT_EMALFORMED;
        }
        r.last_sequence = pveh__get_u64(body);
        break;
    case PVEH_STATUS_UNKNOWN_SESSION:
    case PVEH_STATUS_FOREIGN_SESSION:
    case PVEH_STATUS_PLATOON_FULL:
    case PVEH_STATUS_SESSIONS_FULL:
        if (body_len != 0) {
            return PT_EMALFORMED;
        }
        break;
    default:
        return PT_EMALFORMED;
    }
    *out = r;
    return 0;
}

void pveh__query_get_put(uint8_t *buf, uint64_t id)
{
    buf[0] = PVEH_FORMAT_VERSION;
    buf[1] = PVEH_QUERY_GET;
    pveh__put_u64(buf + 2, id);
}

int pveh_query_get(uint64_t id, uint8_t **out, size_t *out_len)
{
    if (id == 0 || out == NULL || out_len == NULL) {
        return PT_EINVAL;
    }
    int rv = alloc_out(PVEH_QUERY_GET_LEN, out, out_len);
    if (rv == 0) {
        pveh__query_get_put(*out, id);
    }
    return rv;
}

int pveh_query_list(uint8_t **out, size_t *out_len)
{
    if (out == NULL || out_len == NULL) {
        return PT_EINVAL;
    }
    int rv = alloc_out(2, out, out_len);
    if (rv != 0) {
        return rv;
    }
    (*out)[0] = PVEH_FORMAT_VERSION;
    (*out)[1] = PVEH_QUERY_LIST;
    return 0;
}

int pveh_query_decode(const uint8_t *data, size_t len, pveh_query *out)
{
    if (data == NULL || len < 2) {
        return PT_EMALFORMED;
    }
    if (data[0] != PVEH_FORMAT_VERSION) {
        return PT_EVERSION;
    }
    pveh_query q = {.op = data[1], .id = 0};
    switch (q.op) {
    case PVEH_QUERY_GET:
        if (len != 10) {
            return PT_EMALFORMED;
        }
        q.id = pveh__get_u64(data + 2);
        if (q.id == 0) {
            return PT_EMALFORMED;
        }
        break;
    case PVEH_QUERY_LIST:
        if (len != 2) {
            return PT_EMALFORMED;
        }
        break;
    default:
        return PT_EMALFORMED;
    }
    *out = q;
    return 0;
}

int pveh_query_result_decode(const uint8_t *data, size_t len, pveh_query_result *out)
{
    if (data == NULL || out == NULL || len < PVEH_QRESULT_HEADER_LEN) {
        return PT_EMALFORMED;
    }
    if (data[0] != PVEH_FORMAT_VERSION) {
        return PT_EVERSION;
    }
    pveh_query_result r;
    memset(&r, 0, sizeof(r));
    r.op = data[1];
    r.status = data[2];
    r.applied_index = pveh__get_u64(data + 3);
    const uint8_t *body = data + PVEH_QRESULT_HEADER_LEN;
    size_t body_len = len - PVEH_QRESULT_HEADER_LEN;
    switch (r.op) {
    case PVEH_QUERY_GET:
        if (r.status == PVEH_STATUS_NOT_FOUND) {
            if (body_len != 0) {
                return PT_EMALFORMED;
            }
        } else if (r.status != PVEH_STATUS_OK || body_len != PVEH_VEHICLE_RECORD_LEN ||
                   !pveh__vehicle_get(body, true, &r.vehicle) ||
                   r.vehicle.revision > r.applied_index) {
            return PT_EMALFORMED;
        }
        break;
    case PVEH_QUERY_LIST: {
        if (r.status != PVEH_STATUS_OK || body_len < 4) {
            return PT_EMALFORMED;
        }
        uint32_t n = pveh__get_u32(body);
        /* The count must match the length exactly before anything is allocated from it. */
        if ((body_len - 4) / PVEH_VEHICLE_RECORD_LEN != n ||
            (body_len - 4) % PVEH_VEHICLE_RECORD_LEN != 0) {
            return PT_EMALFORMED;
        }
        if (n > 0) {
            r.vehicles = malloc((size_t)n * sizeof(*r.vehicles));
            if (r.vehicles == NULL) {
                return PT_ENOMEM;
            }
        }
        for (uint32_t i = 0; i < n; i++) {
            pveh_vehicle *v = &r.vehicles[i];
            if (!pveh__vehicle_get(body + 4 + (size_t)i * PVEH_VEHICLE_RECORD_LEN, true, v) ||
                v->revision > r.applied_index || (i > 0 && v->id <= r.vehicles[i - 1].id)) {
                free(r.vehicles);
                return PT_EMALFORMED;
            }
        }
        r.n_vehicles = n;
        break;
    }
    default:
        return PT_EMALFORMED;
    }
    *out = r;
    return 0;
}

void pveh_query_result_free(pveh_query_result *r)
{
    if (r != NULL) {
        free(r->vehicles);
        r->vehicles = NULL;
        r->n_vehicles = 0;
    }
}
