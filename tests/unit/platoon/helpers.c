#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "helpers.h"

void tsm_new(tsm *t, const pveh_options *opts)
{
    assert_int_equal(pveh_sm_new(opts, &t->sm), 0);
    pveh_sm_interface(t->sm, &t->iface);
}

void tsm_free(tsm *t)
{
    pveh_sm_free(t->sm);
    t->sm = NULL;
}

pveh_vehicle veh(uint64_t id, double lat, double lon, double speed, double heading)
{
    pveh_vehicle v = {.id = id,
                      .latitude = lat,
                      .longitude = lon,
                      .speed = speed,
                      .heading = heading,
                      .revision = 0};
    return v;
}

static pveh_result apply_cmd(tsm *t, uint64_t index, uint8_t *cmd, size_t len)
{
    uint8_t *res = NULL;
    size_t res_len = 0;
    assert_int_equal(t->iface.ops->apply(t->iface.ctx, index, 1, cmd, len, &res, &res_len), 0);
    free(cmd);
    pveh_result r;
    assert_int_equal(pveh_result_decode(res, res_len, &r), 0);
    free(res);
    assert_int_equal(t->iface.ops->applied_index(t->iface.ctx), index);
    return r;
}

void to_v1(uint8_t **cmd, size_t *len)
{
    /* Version 1 is the version 2 layout without principal and limit (bytes 26..41). */
    assert_true(*len >= 42);
    uint8_t *v1 = malloc(*len - 16);
    assert_non_null(v1);
    memcpy(v1, *cmd, 26);
    memcpy(v1 + 26, *cmd + 42, *len - 42);
    v1[0] = 1;
    free(*cmd);
    *cmd = v1;
    *len -= 16;
}

pveh_result tsm_update(tsm *t, uint64_t index, const pveh_vehicle *v, uint64_t client, uint64_t seq,
                       uint64_t ts)
{
    uint8_t *cmd = NULL;
    size_t len = 0;
    assert_int_equal(pveh_command_update(v, client, seq, ts, &cmd, &len), 0);
    to_v1(&cmd, &len);
    return apply_cmd(t, index, cmd, len);
}

pveh_result tsm_delete(tsm *t, uint64_t index, uint64_t id, uint64_t client, uint64_t seq,
                       uint64_t ts)
{
    uint8_t *cmd = NULL;
    size_t len = 0;
    assert_int_equal(pveh_command_delete(id, client, seq, ts, &cmd, &len), 0);
    to_v1(&cmd, &len);
    return apply_cmd(t, index, cmd, len);
}

pveh_result tsm_apply(tsm *t, uint64_t index, const pveh_command *c)
{
    uint8_t *cmd = NULL;
    size_t len = 0;
    assert_int_equal(pveh_command_encode(c, &cmd, &len), 0);
    return apply_cmd(t, index, cmd, len);
}

pveh_result tsm_open(tsm *t, uint64_t index, const char *who, uint64_t quota, uint64_t ts)
{
    pveh_command c = {.op = PVEH_OP_OPEN_SESSION,
                      .principal = pveh_principal_key(who),
                      .limit = quota,
                      .timestamp_ms = ts};
    return tsm_apply(t, index, &c);
}

pveh_result tsm_put(tsm *t, uint64_t index, const char *who, const pveh_vehicle *v, uint64_t client,
                    uint64_t seq, uint64_t ts, uint64_t max_vehicles)
{
    pveh_command c = {.op = PVEH_OP_UPDATE,
                      .client_id = client,
                      .sequence = seq,
                      .timestamp_ms = ts,
                      .principal = pveh_principal_key(who),
                      .limit = max_vehicles,
                      .vehicle = *v,
                      .id = v->id};
    return tsm_apply(t, index, &c);
}

pveh_result tsm_del(tsm *t, uint64_t index, const char *who, uint64_t id, uint64_t client,
                    uint64_t seq, uint64_t ts)
{
    pveh_command c = {.op = PVEH_OP_DELETE,
                      .client_id = client,
                      .sequence = seq,
                      .timestamp_ms = ts,
                      .principal = pveh_principal_key(who),
                      .id = id};
    return tsm_apply(t, index, &c);
}

pveh_result tsm_close(tsm *t, uint64_t index, const char *who, uint64_t client, uint64_t ts)
{
    pveh_command c = {.op = PVEH_OP_CLOSE_SESSION,
                      .client_id = client,
                      .timestamp_ms = ts,
                      .principal = pveh_principal_key(who)};
    return tsm_apply(t, index, &c);
}

int membuf_write(void *ctx, const void *data, size_t len)
{
    membuf *b = ctx;
    assert_true(len > 0);
    if (b->fail_after != 0 && b->len + len > b->fail_after) {
        return PT_EIO;
    }
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len) {
            cap *= 2;
        }
        b->data = realloc(b->data, cap);
        assert_non_null(b->data);
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

int memreader_read(void *ctx, void *buf, size_t cap, size_t *n)
{
    memreader *r = ctx;
    size_t take = r->len - r->pos;
    if (take > cap) {
        take = cap;
    }
    if (r->chunk != 0 && take > r->chunk) {
        take = r->chunk;
    }
    if (take > 0) {
        memcpy(buf, r->data + r->pos, take);
    }
    r->pos += take;
    *n = take;
    return 0;
}

membuf tsm_snapshot(tsm *t)
{
    membuf b = {0};
    void *frozen = NULL;
    uint64_t index = 0, term = 0;
    assert_int_equal(t->iface.ops->snapshot_begin(t->iface.ctx, &frozen, &index, &term), 0);
    assert_int_equal(index, t->iface.ops->applied_index(t->iface.ctx));
    assert_int_equal(t->iface.ops->snapshot_write(frozen, membuf_write, &b), 0);
    t->iface.ops->snapshot_end(frozen);
    return b;
}

int tsm_restore(tsm *t, const uint8_t *data, size_t len, size_t chunk)
{
    memreader r = {.data = data, .len = len, .pos = 0, .chunk = chunk};
    return t->iface.ops->restore(t->iface.ctx, memreader_read, &r);
}
