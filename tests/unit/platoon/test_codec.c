/* The encodings of commands, results, queries and query results: exact round trips, and
 * decoders that refuse every malformed input (wrong length, version, kind, value) without
 * crashing, including on random and mutated bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "helpers.h"
#include "platoon/vehicle.h"

/* xorshift64*: a fixed-seed generator, so a failure replays identically. */
static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

static void put_f64(uint8_t *p, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(bits >> (8 * i));
    }
}

static void update_round_trip(void **state)
{
    (void)state;
    pveh_vehicle v = veh(UINT64_MAX, -90.0, 180.0, 150.0, 359.5);
    v.revision = 12345; /* ignored on input */
    uint8_t *cmd = NULL;
    size_t len = 0;
    assert_int_equal(pveh_command_update(&v, 77, UINT64_MAX, 1700000000123, &cmd, &len), 0);
    assert_int_equal(len, 82);
    pveh_command c;
    assert_int_equal(pveh_command_decode(cmd, len, &c), 0);
    assert_int_equal(c.op, PVEH_OP_UPDATE);
    assert_int_equal(c.client_id, 77);
    assert_true(c.sequence == UINT64_MAX);
    assert_int_equal(c.timestamp_ms, 1700000000123);
    assert_true(c.vehicle.id == UINT64_MAX && c.id == UINT64_MAX);
    assert_true(c.vehicle.latitude == -90.0 && c.vehicle.longitude == 180.0);
    assert_true(c.vehicle.speed == 150.0 && c.vehicle.heading == 359.5);
    assert_int_equal(c.vehicle.revision, 0);
    free(cmd);
}

static void delete_round_trip(void **state)
{
    (void)state;
    uint8_t *cmd = NULL;
    size_t len = 0;
    assert_int_equal(pveh_command_delete(42, 0, 9, 5, &cmd, &len), 0);
    assert_int_equal(len, 50);
    pveh_command c;
    assert_int_equal(pveh_command_decode(cmd, len, &c), 0);
    assert_int_equal(c.op, PVEH_OP_DELETE);
    assert_int_equal(c.id, 42);
    assert_int_equal(c.client_id, 0);
    assert_int_equal(c.sequence, 9);
    assert_int_equal(c.timestamp_ms, 5);
    free(cmd);
}

/* Every length but the right one is refused, for both kinds. */
static void commands_of_wrong_length_are_corrupt(void **state)
{
    (void)state;
    pveh_vehicle v = veh(1, 1, 1, 1, 1);
    uint8_t *cmds[2];
    size_t lens[2];
    assert_int_equal(pveh_command_update(&v, 1, 1, 1, &cmds[0], &lens[0]), 0);
    assert_int_equal(pveh_command_delete(1, 1, 1, 1, &cmds[1], &lens[1]), 0);
    for (int k = 0; k < 2; k++) {
        uint8_t buf[128] = {0};
        memcpy(buf, cmds[k], lens[k]);
        for (size_t len = 0; len < sizeof(buf); len++) {
            pveh_command c;
            int rv = pveh_command_decode(buf, len, &c);
            assert_int_equal(rv, len == lens[k] ? 0 : PT_ECORRUPT);
        }
        free(cmds[k]);
    }
    pveh_command c;
    assert_int_equal(pveh_command_decode(NULL, 0, &c), PT_ECORRUPT);
}

static void unknown_version_and_kind(void **state)
{
    (void)state;
    uint8_t *cmd = NULL;
    size_t len = 0;
    pveh_command c;
    assert_int_equal(pveh_command_delete(3, 1, 1, 1, &cmd, &len), 0);
    const uint8_t versions[] = {0, 3, 255};
    for (size_t i = 0; i < sizeof(versions); i++) {
        cmd[0] = versions[i];
        assert_int_equal(pveh_command_decode(cmd, len, &c), PT_EVERSION);
    }
    cmd[0] = 2;
    const uint8_t ops[] = {0, 5, 255};
    for (size_t i = 0; i < sizeof(ops); i++) {
        cmd[1] = ops[i];
        assert_int_equal(pveh_command_decode(cmd, len, &c), PT_ECORRUPT);
    }
    free(cmd);
}

/* A command whose framing is fine but whose values are out of bounds is corrupt: the log
 * only ever holds commands built from validated vehicles. */
static void out_of_bounds_values_in_a_command_are_corrupt(void **state)
{
    (void)state;
    pveh_vehicle v = veh(5, 10, 20, 30, 40);
    uint8_t *cmd = NULL;
    size_t len = 0;
    assert_int_equal(pveh_command_update(&v, 1, 1, 1, &cmd, &len), 0);
    struct {
        size_t offset; /* of the field in the command */
        double bad;
    } cases[] = {
        {50, NAN},    {50, 90.5}, {58, -INFINITY}, {58, 181},  {66, -1},
        {66, 150.01}, {74, 360},  {74, NAN},       {74, -0.5},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t copy[82];
        memcpy(copy, cmd, len);
        put_f64(copy + cases[i].offset, cases[i].bad);
        pveh_command c;
        assert_int_equal(pveh_command_decode(copy, len, &c), PT_ECORRUPT);
    }
    uint8_t copy[82];
    memcpy(copy, cmd, len);
    memset(copy + 42, 0, 8); /* id 0 */
    pveh_command c;
    assert_int_equal(pveh_command_decode(copy, len, &c), PT_ECORRUPT);
    free(cmd);

    assert_int_equal(pveh_command_delete(5, 1, 1, 1, &cmd, &len), 0);
    memset(cmd + 42, 0, 8);
    assert_int_equal(pveh_command_decode(cmd, len, &c), PT_ECORRUPT);
    free(cmd);
}

static void results_round_trip(void **state)
{
    (void)state;
    pveh_result in[3];
    memset(in, 0, sizeof(in));
    in[0].op = PVEH_OP_UPDATE;
    in[0].status = PVEH_STATUS_OK;
    in[0].vehicle = veh(9, 1.5, -2.5, 3.5, 4.5);
    in[0].vehicle.revision = in[0].revision = 17;
    in[1].op = PVEH_OP_DELETE;
    in[1].existed = true;
    in[1].revision = 18;
    in[2].op = PVEH_OP_DELETE;
    in[2].status = PVEH_STATUS_STALE_SEQUENCE;
    in[2].last_sequence = 99;
    for (int i = 0; i < 3; i++) {
        uint8_t *buf = NULL;
        size_t len = 0;
        assert_int_equal(pveh_result_encode(&in[i], &buf, &len), 0);
        pveh_result out;
        assert_int_equal(pveh_result_decode(buf, len, &out), 0);
        assert_memory_equal(&in[i], &out, sizeof(out));
        /* Any other length is malformed. */
        for (size_t l = 0; l < len + 4; l++) {
            if (l != len) {
                uint8_t tmp[64] = {0};
                memcpy(tmp, buf, len < l ? len : l);
                assert_int_not_equal(pveh_result_decode(tmp, l, &out), 0);
            }
        }
        free(buf);
    }
    pveh_result bad = {.op = 7};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(pveh_result_encode(&bad, &buf, &len), PT_EINVAL);
    bad.op = PVEH_OP_DELETE;
    bad.status = 9;
    assert_int_equal(pveh_result_encode(&bad, &buf, &len), PT_EINVAL);
}

static void malformed_results(void **state)
{
    (void)state;
    pveh_result out;
    /* existed must be 0 or 1; a delete's revision is never 0; unknown status and op. */
    const uint8_t existed2[] = {1, 2, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t rev0[] = {1, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t status9[] = {1, 2, 9, 1, 1, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t op0[] = {1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t v2[] = {2, 2, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t ok[] = {1, 2, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(pveh_result_decode(existed2, 12, &out), PT_EMALFORMED);
    assert_int_equal(pveh_result_decode(rev0, 12, &out), PT_EMALFORMED);
    assert_int_equal(pveh_result_decode(status9, 12, &out), PT_EMALFORMED);
    assert_int_equal(pveh_result_decode(op0, 12, &out), PT_EMALFORMED);
    assert_int_equal(pveh_result_decode(v2, 12, &out), PT_EVERSION);
    assert_int_equal(pveh_result_decode(ok, 12, &out), 0);
    assert_true(out.existed && out.revision == 1);
}

static void queries_round_trip_and_refuse_garbage(void **state)
{
    (void)state;
    uint8_t *q = NULL;
    size_t len = 0;
    pveh_query out;
    assert_int_equal(pveh_query_get(123, &q, &len), 0);
    assert_int_equal(pveh_query_decode(q, len, &out), 0);
    assert_int_equal(out.op, PVEH_QUERY_GET);
    assert_int_equal(out.id, 123);
    assert_int_equal(pveh_query_decode(q, len - 1, &out), PT_EMALFORMED);
    memset(q + 2, 0, 8);
    assert_int_equal(pveh_query_decode(q, len, &out), PT_EMALFORMED); /* id 0 */
    free(q);
    assert_int_equal(pveh_query_list(&q, &len), 0);
    assert_int_equal(pveh_query_decode(q, len, &out), 0);
    assert_int_equal(out.op, PVEH_QUERY_LIST);
    q[1] = 3;
    assert_int_equal(pveh_query_decode(q, len, &out), PT_EMALFORMED);
    q[0] = 0;
    assert_int_equal(pveh_query_decode(q, len, &out), PT_EVERSION);
    free(q);
    assert_int_equal(pveh_query_decode(NULL, 0, &out), PT_EMALFORMED);
}

/* A LIST result header followed by @n records, built by hand. */
static size_t list_result(uint8_t *buf, uint64_t applied, uint32_t count, const pveh_vehicle *vs,
                          size_t n)
{
    buf[0] = 1;
    buf[1] = PVEH_QUERY_LIST;
    buf[2] = PVEH_STATUS_OK;
    for (int i = 0; i < 8; i++) {
        buf[3 + i] = (uint8_t)(applied >> (8 * i));
    }
    for (int i = 0; i < 4; i++) {
        buf[11 + i] = (uint8_t)(count >> (8 * i));
    }
    size_t off = 15;
    for (size_t k = 0; k < n; k++, off += 48) {
        const pveh_vehicle *v = &vs[k];
        for (int i = 0; i < 8; i++) {
            buf[off + i] = (uint8_t)(v->id >> (8 * i));
            buf[off + 40 + i] = (uint8_t)(v->revision >> (8 * i));
        }
        put_f64(buf + off + 8, v->latitude);
        put_f64(buf + off + 16, v->longitude);
        put_f64(buf + off + 24, v->speed);
        put_f64(buf + off + 32, v->heading);
    }
    return off;
}

static void list_results_are_checked(void **state)
{
    (void)state;
    pveh_vehicle vs[3] = {veh(1, 0, 0, 0, 0), veh(2, 0, 0, 0, 0), veh(5, 0, 0, 0, 0)};
    vs[0].revision = 3;
    vs[1].revision = 4;
    vs[2].revision = 9;
    uint8_t buf[15 + 3 * 48];
    pveh_query_result r;

    size_t len = list_result(buf, 10, 3, vs, 3);
    assert_int_equal(pveh_query_result_decode(buf, len, &r), 0);
    assert_int_equal(r.n_vehicles, 3);
    assert_int_equal(r.applied_index, 10);
    assert_int_equal(r.vehicles[2].id, 5);
    pveh_query_result_free(&r);

    /* A count that disagrees with the length, even a huge one, is refused before any
     * allocation is sized from it. */
    len = list_result(buf, 10, UINT32_MAX, vs, 3);
    assert_int_equal(pveh_query_result_decode(buf, len, &r), PT_EMALFORMED);
    len = list_result(buf, 10, 2, vs, 3);
    assert_int_equal(pveh_query_result_decode(buf, len, &r), PT_EMALFORMED);
    /* A revision beyond the applied index the answer claims to reflect. */
    len = list_result(buf, 8, 3, vs, 3);
    assert_int_equal(pveh_query_result_decode(buf, len, &r), PT_EMALFORMED);
    /* Ids out of order, or repeated. */
    vs[1].id = 1;
    len = list_result(buf, 10, 3, vs, 3);
    assert_int_equal(pveh_query_result_decode(buf, len, &r), PT_EMALFORMED);
    vs[1].id = 7;
    len = list_result(buf, 10, 3, vs, 3);
    assert_int_equal(pveh_query_result_decode(buf, len, &r), PT_EMALFORMED);
    /* An empty list. */
    len = list_result(buf, 0, 0, vs, 0);
    assert_int_equal(pveh_query_result_decode(buf, len, &r), 0);
    assert_int_equal(r.n_vehicles, 0);
    assert_null(r.vehicles);
    pveh_query_result_free(&r);
}

/* Random bytes, and valid encodings with random bytes changed, through every decoder: never a
 * crash (ASan and UBSan watch), and whatever decodes is canonical: re-encoding it gives back
 * exactly the input. */
static void random_and_mutated_bytes_never_crash(void **state)
{
    (void)state;
    rng_state = UINT64_C(0x5eed0f0e1234abcd);
    pveh_vehicle v = veh(3, 45, 90, 30, 180);
    v.revision = 4;
    uint8_t *seeds[6];
    size_t seed_len[6];
    assert_int_equal(pveh_command_update(&v, 8, 9, 10, &seeds[0], &seed_len[0]), 0);
    assert_int_equal(pveh_command_delete(3, 8, 9, 10, &seeds[1], &seed_len[1]), 0);
    pveh_result r = {.op = PVEH_OP_UPDATE, .vehicle = v, .revision = 4};
    assert_int_equal(pveh_result_encode(&r, &seeds[2], &seed_len[2]), 0);
    assert_int_equal(pveh_query_get(3, &seeds[3], &seed_len[3]), 0);
    assert_int_equal(pveh_query_list(&seeds[4], &seed_len[4]), 0);
    seeds[5] = malloc(15 + 48);
    seed_len[5] = list_result(seeds[5], 4, 1, &v, 1);

    size_t decoded = 0;
    for (int iter = 0; iter < 200000; iter++) {
        uint8_t buf[96];
        size_t len;
        if (iter % 2 == 0) {
            len = rnd() % sizeof(buf);
            for (size_t i = 0; i < len; i++) {
                buf[i] = (uint8_t)rnd();
            }
            buf[0] = (uint8_t)(rnd() % 3); /* mostly the right version, to get past it */
        } else {
            int s = (int)(rnd() % 6);
            len = seed_len[s];
            memcpy(buf, seeds[s], len);
            int flips = 1 + (int)(rnd() % 3);
            for (int f = 0; f < flips; f++) {
                buf[rnd() % len] ^= (uint8_t)(1u << (rnd() % 8));
            }
        }
        pveh_command c;
        if (pveh_command_decode(buf, len, &c) == 0) {
            uint8_t *re = NULL;
            size_t re_len = 0;
            assert_int_equal(pveh_command_encode(&c, &re, &re_len), 0);
            if (c.version == 1) {
                to_v1(&re, &re_len);
            }
            assert_int_equal(re_len, len);
            assert_memory_equal(re, buf, len);
            free(re);
            decoded++;
        }
        pveh_result res;
        if (pveh_result_decode(buf, len, &res) == 0) {
            uint8_t *re = NULL;
            size_t re_len = 0;
            assert_int_equal(pveh_result_encode(&res, &re, &re_len), 0);
            assert_int_equal(re_len, len);
            assert_memory_equal(re, buf, len);
            free(re);
            decoded++;
        }
        pveh_query q;
        if (pveh_query_decode(buf, len, &q) == 0) {
            assert_true(q.op == PVEH_QUERY_LIST || q.id != 0);
            decoded++;
        }
        pveh_query_result qr;
        if (pveh_query_result_decode(buf, len, &qr) == 0) {
            for (size_t i = 0; i < qr.n_vehicles; i++) {
                assert_int_equal(pveh_validate_vehicle(&qr.vehicles[i], NULL, 0), 0);
            }
            pveh_query_result_free(&qr);
            decoded++;
        }
    }
    /* The mutations must sometimes land on harmless bits, or this test would prove little. */
    assert_true(decoded > 1000);
    for (int s = 0; s < 6; s++) {
        free(seeds[s]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(update_round_trip),
        cmocka_unit_test(delete_round_trip),
        cmocka_unit_test(commands_of_wrong_length_are_corrupt),
        cmocka_unit_test(unknown_version_and_kind),
        cmocka_unit_test(out_of_bounds_values_in_a_command_are_corrupt),
        cmocka_unit_test(results_round_trip),
        cmocka_unit_test(malformed_results),
        cmocka_unit_test(queries_round_trip_and_refuse_garbage),
        cmocka_unit_test(list_results_are_checked),
        cmocka_unit_test(random_and_mutated_bytes_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
