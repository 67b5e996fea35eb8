/*
 * The requests of each workload for each target. Both targets get the same choices from the
 * same generator: which vehicle (uniform over the pool), read or write (mixed: 1 in 10 writes),
 * so the two clusters see the same shape of load.
 */
#include "workload.h"

#include <stdio.h>
#include <string.h>

#include "etcd_kv.pb-c.h"
#include "platoon/error.h"
#include "platoon/v1/platoon.pb-c.h"

#define M_UPDATE     "/platoon.v1.Platoon/UpdateVehicle"
#define M_GET        "/platoon.v1.Platoon/GetVehicle"
#define M_GETPLATOON "/platoon.v1.Platoon/GetPlatoon"
#define M_PUT        "/etcdserverpb.KV/Put"
#define M_RANGE      "/etcdserverpb.KV/Range"

/* etcd keys: the vehicle's id, fixed width so that all of them fall in one prefix range. */
#define KEY_PREFIX     "vehicle/"
#define KEY_PREFIX_END "vehicle0" /* '/' + 1: the end of the prefix range */

uint64_t pbench_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * UINT64_C(2685821657736338717);
}

static double uniform(uint64_t *rng, double lo, double hi)
{
    return lo + (hi - lo) * ((double)(pbench_rand(rng) >> 11) / (double)(UINT64_C(1) << 53));
}

static int pack(const ProtobufCMessage *msg, pbench_request *out)
{
    size_t need = protobuf_c_message_get_packed_size(msg);
    if (need > sizeof(out->buf)) {
        return PT_EINVAL;
    }
    out->len = protobuf_c_message_pack(msg, out->buf);
    return 0;
}

static int platoon_update(const pbench_workload_cfg *cfg, pbench_slot_state *slot, uint64_t *rng,
                          uint64_t id, pbench_request *out)
{
    Platoon__V1__Vehicle v = PLATOON__V1__VEHICLE__INIT;
    v.id = id;
    v.latitude = uniform(rng, 48.0, 49.0);
    v.longitude = uniform(rng, 2.0, 3.0);
    v.speed = uniform(rng, 20.0, 35.0);
    v.heading = uniform(rng, 0.0, 359.9);
    Platoon__V1__UpdateVehicleRequest r = PLATOON__V1__UPDATE_VEHICLE_REQUEST__INIT;
    r.vehicle = &v;
    if (cfg->sessions) {
        /* One request outstanding per session, sequences increasing: what a real client does
         * (vehicle.h, "client sessions"). */
        r.client_id = slot->client_id;
        r.sequence = ++slot->sequence;
    }
    out->method = M_UPDATE;
    out->kind = PBENCH_KIND_WRITE;
    return pack(&r.base, out);
}

static int platoon_read(const pbench_workload_cfg *cfg, uint64_t id, pbench_request *out)
{
    int consistency = cfg->linearizable
                          ? PLATOON__V1__READ_CONSISTENCY__READ_CONSISTENCY_LINEARIZABLE
                          : PLATOON__V1__READ_CONSISTENCY__READ_CONSISTENCY_STALE;
    out->kind = PBENCH_KIND_READ;
    if (cfg->read_all) {
        Platoon__V1__GetPlatoonRequest r = PLATOON__V1__GET_PLATOON_REQUEST__INIT;
        r.consistency = consistency;
        out->method = M_GETPLATOON;
        return pack(&r.base, out);
    }
    Platoon__V1__GetVehicleRequest r = PLATOON__V1__GET_VEHICLE_REQUEST__INIT;
    r.id = id;
    r.consistency = consistency;
    out->method = M_GET;
    return pack(&r.base, out);
}

static int etcd_put(const pbench_workload_cfg *cfg, uint64_t *rng, uint64_t id, pbench_request *out)
{
    char key[32];
    int klen = snprintf(key, sizeof(key), KEY_PREFIX "%010llu", (unsigned long long)id);
    uint8_t value[256];
    size_t vlen = cfg->value_size < sizeof(value) ? cfg->value_size : sizeof(value);
    /* Printable random bytes, so that etcdctl shows them; 8 at a time from the generator. */
    for (size_t i = 0; i < vlen; i += 8) {
        uint64_t r = pbench_rand(rng);
        for (size_t j = i; j < i + 8 && j < vlen; j++, r >>= 8) {
            value[j] = (uint8_t)('a' + (r & 0xff) % 26);
        }
    }
    Etcdserverpb__PutRequest r = ETCDSERVERPB__PUT_REQUEST__INIT;
    r.key.data = (uint8_t *)key;
    r.key.len = (size_t)klen;
    r.value.data = value;
    r.value.len = vlen;
    out->method = M_PUT;
    out->kind = PBENCH_KIND_WRITE;
    return pack(&r.base, out);
}

static int etcd_range(const pbench_workload_cfg *cfg, uint64_t id, pbench_request *out)
{
    char key[32];
    int klen;
    Etcdserverpb__RangeRequest r = ETCDSERVERPB__RANGE_REQUEST__INIT;
    if (cfg->read_all) {
        klen = snprintf(key, sizeof(key), KEY_PREFIX);
        r.range_end.data = (uint8_t *)KEY_PREFIX_END;
        r.range_end.len = strlen(KEY_PREFIX_END);
    } else {
        klen = snprintf(key, sizeof(key), KEY_PREFIX "%010llu", (unsigned long long)id);
    }
    r.key.data = (uint8_t *)key;
    r.key.len = (size_t)klen;
    r.serializable = !cfg->linearizable;
    out->method = M_RANGE;
    out->kind = PBENCH_KIND_READ;
    return pack(&r.base, out);
}

int pbench_request_next(const pbench_workload_cfg *cfg, pbench_slot_state *slot, uint64_t *rng,
                        uint32_t *fill_next, pbench_request *out)
{
    uint64_t id;
    bool write;
    switch (cfg->workload) {
    case PBENCH_WL_FILL:
        if (*fill_next > cfg->pool) {
            return 1;
        }
        id = (*fill_next)++;
        write = true;
        break;
    case PBENCH_WL_UPDATE:
        id = pbench_rand(rng) % cfg->pool + 1;
        write = true;
        break;
    case PBENCH_WL_MIXED:
        id = pbench_rand(rng) % cfg->pool + 1;
        write = pbench_rand(rng) % 10 == 0;
        break;
    default:
        id = pbench_rand(rng) % cfg->pool + 1;
        write = false;
        break;
    }
    if (cfg->target == PBENCH_TARGET_ETCD) {
        return write ? etcd_put(cfg, rng, id, out) : etcd_range(cfg, id, out);
    }
    return write ? platoon_update(cfg, slot, rng, id, out) : platoon_read(cfg, id, out);
}

int pbench_response_check(const pbench_workload_cfg *cfg, const pbench_request *req,
                          const uint8_t *data, size_t len, uint64_t *revision)
{
    *revision = 0;
    const ProtobufCMessageDescriptor *d;
    if (cfg->target == PBENCH_TARGET_ETCD) {
        d = req->kind == PBENCH_KIND_WRITE ? &etcdserverpb__put_response__descriptor
                                           : &etcdserverpb__range_response__descriptor;
    } else if (req->kind == PBENCH_KIND_WRITE) {
        d = &platoon__v1__update_vehicle_response__descriptor;
    } else {
        d = cfg->read_all ? &platoon__v1__get_platoon_response__descriptor
                          : &platoon__v1__get_vehicle_response__descriptor;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, data);
    if (m == NULL) {
        return PT_EMALFORMED;
    }
    if (d == &platoon__v1__update_vehicle_response__descriptor) {
        const Platoon__V1__UpdateVehicleResponse *u = (const Platoon__V1__UpdateVehicleResponse *)m;
        *revision = u->vehicle != NULL ? u->vehicle->revision : 0;
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}
