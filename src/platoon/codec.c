/* Encoding and validating decoding of commands, results, queries and query results. */
#include "platoon/codec.h"

#include <stdlib.h>
#include <string.h>

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

static void put_cmd_header(uint8_t *p, uint8_t op, uint64_t client_id, uint64_t sequence,
                           uint64_t timestamp_ms)
{
    p[0] = PVEH_FORMAT_VERSION;
    p[1] = op;
    pveh__put_u64(p + 2, client_id);
    pveh__put_u64(p + 10, sequence);
    pveh__put_u64(p + 18, timestamp_ms);
}

int pveh_command_update(const pveh_vehicle *v, uint64_t client_id, uint64_t sequence,
                        uint64_t timestamp_ms, uint8_t **out, size_t *out_len)
{
    if (v == NULL || !pveh__vehicle_valid(v) || out == NULL || out_len == NULL) {
        return PT_EINVAL;
    }
    int rv = alloc_out(PVEH_CMD_UPDATE_LEN, out, out_len);
    if (rv != 0) {
        return rv;
    }
    put_cmd_header(*out, PVEH_OP_UPDATE, client_id, sequence, timestamp_ms);
    pveh__vehicle_put(*out + PVEH_CMD_HEADER_LEN, v, false);
    return 0;
}

int pveh_command_delete(uint64_t id, uint64_t client_id, uint64_t sequence, uint64_t timestamp_ms,
                        uint8_t **out, size_t *out_len)
{
    if (id == 0 || out == NULL || out_len == NULL) {
        return PT_EINVAL;
    }
    int rv = alloc_out(PVEH_CMD_DELETE_LEN, out, out_len);
    if (rv != 0) {
        return rv;
    }
    put_cmd_header(*out, PVEH_OP_DELETE, client_id, sequence, timestamp_ms);
    pveh__put_u64(*out + PVEH_CMD_HEADER_LEN, id);
    return 0;
}

int pveh_command_decode(const uint8_t *data, size_t len, pveh_command *out)
{
    if (data == NULL || len < 2) {
        return PT_ECORRUPT;
    }
    if (data[0] != PVEH_FORMAT_VERSION) {
        return PT_EVERSION;
    }
    pveh_command c;
    memset(&c, 0, sizeof(c));
    c.op = data[1];
    switch (c.op) {
    case PVEH_OP_UPDATE:
        if (len != PVEH_CMD_UPDATE_LEN ||
            !pveh__vehicle_get(data + PVEH_CMD_HEADER_LEN, false, &c.vehicle)) {
            return PT_ECORRUPT;
        }
        c.id = c.vehicle.id;
        break;
    case PVEH_OP_DELETE:
        if (len != PVEH_CMD_DELETE_LEN) {
            return PT_ECORRUPT;
        }
        c.id = pveh__get_u64(data + PVEH_CMD_HEADER_LEN);
        if (c.id == 0) {
            return PT_ECORRUPT;
        }
        break;
    default:
        return PT_ECORRUPT;
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
    uint8_t buf[1 + PVEH_CMD_UPDATE_LEN];
    size_t body = len > PVEH_CMD_HEADER_LEN ? len - PVEH_CMD_HEADER_LEN : 0;
    if (body > sizeof(buf) - 1) {
        body = sizeof(buf) - 1;
    }
    buf[0] = cmd[1];
    memcpy(buf + 1, cmd + PVEH_CMD_HEADER_LEN, body);
    uint64_t h = pt__checksum(buf, 1 + body);
    return h != 0 ? h : 1;
}

int pveh__result_put(uint8_t *buf, const pveh_result *r, size_t *len)
{
    buf[0] = PVEH_FORMAT_VERSION;
    buf[1] = (uint8_t)r->op;
    buf[2] = (uint8_t)r->status;
    if (r->op != PVEH_OP_UPDATE && r->op != PVEH_OP_DELETE) {
        return PT_EINVAL;
    }
    switch (r->status) {
    case PVEH_STATUS_OK:
        if (r->op == PVEH_OP_UPDATE) {
            pveh__vehicle_put(buf + 3, &r->vehicle, true);
            *len = PVEH_RESULT_HEADER_LEN + PVEH_VEHICLE_RECORD_LEN;
        } else {
            buf[3] = r->existed ? 1 : 0;
            pveh__put_u64(buf + 4, r->revision);
            *len = PVEH_RESULT_HEADER_LEN + 9;
        }
        return 0;
    case PVEH_STATUS_STALE_SEQUENCE:
    case PVEH_STATUS_SEQUENCE_CONFLICT:
        pveh__put_u64(buf + 3, r->last_sequence);
        *len = PVEH_RESULT_HEADER_LEN + 8;
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
    if (rv != 0) {
        return rv;
    }
    rv = alloc_out(len, out, out_len);
    if (rv != 0) {
        return rv;
    }
    memcpy(*out, buf, len);
    return 0;
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
    if (r.op != PVEH_OP_UPDATE && r.op != PVEH_OP_DELETE) {
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
    default:
        return PT_EMALFORMED;
    }
    *out = r;
    return 0;
}

int pveh_query_get(uint64_t id, uint8_t **out, size_t *out_len)
{
    if (id == 0 || out == NULL || out_len == NULL) {
        return PT_EINVAL;
    }
    int rv = alloc_out(10, out, out_len);
    if (rv != 0) {
        return rv;
    }
    (*out)[0] = PVEH_FORMAT_VERSION;
    (*out)[1] = PVEH_QUERY_GET;
    pveh__put_u64(*out + 2, id);
    return 0;
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
