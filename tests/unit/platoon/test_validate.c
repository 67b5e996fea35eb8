/* Validation of client input: every bound of every field, at and just past its edges, and
 * the message naming the field as platoon.proto does. */
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

enum field { ID, LAT, LON, SPEED, HEADING };

struct vcase {
    enum field field;
    double value; /* for ID: 0 or 1 */
    int expect;   /* 0 or PT_EINVAL */
    const char *why;
};

#define LAT_MSG     "vehicle.latitude must be within [-90, 90]"
#define LON_MSG     "vehicle.longitude must be within [-180, 180]"
#define SPEED_MSG   "vehicle.speed must be within [0, 150]"
#define HEADING_MSG "vehicle.heading must be within [0, 360)"

static const struct vcase cases[] = {
    {ID, 0, PT_EINVAL, "vehicle.id must not be 0"},
    {ID, 1, 0, NULL},
    {LAT, -90.0, 0, NULL},
    {LAT, 90.0, 0, NULL},
    {LAT, 0.0, 0, NULL},
    {LAT, 90.0000001, PT_EINVAL, LAT_MSG},
    {LAT, -90.0000001, PT_EINVAL, LAT_MSG},
    {LAT, NAN, PT_EINVAL, LAT_MSG},
    {LAT, INFINITY, PT_EINVAL, LAT_MSG},
    {LAT, -INFINITY, PT_EINVAL, LAT_MSG},
    {LON, -180.0, 0, NULL},
    {LON, 180.0, 0, NULL},
    {LON, 180.0000001, PT_EINVAL, LON_MSG},
    {LON, -180.0000001, PT_EINVAL, LON_MSG},
    {LON, NAN, PT_EINVAL, LON_MSG},
    {LON, INFINITY, PT_EINVAL, LON_MSG},
    {LON, -INFINITY, PT_EINVAL, LON_MSG},
    {SPEED, 0.0, 0, NULL},
    {SPEED, 150.0, 0, NULL},
    {SPEED, 150.01, PT_EINVAL, SPEED_MSG},
    {SPEED, -0.0001, PT_EINVAL, SPEED_MSG},
    {SPEED, NAN, PT_EINVAL, SPEED_MSG},
    {SPEED, INFINITY, PT_EINVAL, SPEED_MSG},
    {HEADING, 0.0, 0, NULL},
    {HEADING, 359.999999, 0, NULL},
    {HEADING, 360.0, PT_EINVAL, HEADING_MSG},
    {HEADING, -0.0001, PT_EINVAL, HEADING_MSG},
    {HEADING, NAN, PT_EINVAL, HEADING_MSG},
    {HEADING, -INFINITY, PT_EINVAL, HEADING_MSG},
};

static pveh_vehicle with(const struct vcase *c)
{
    pveh_vehicle v = veh(7, 48.85, 2.35, 20.0, 90.0);
    switch (c->field) {
    case ID:
        v.id = (uint64_t)c->value;
        break;
    case LAT:
        v.latitude = c->value;
        break;
    case LON:
        v.longitude = c->value;
        break;
    case SPEED:
        v.speed = c->value;
        break;
    case HEADING:
        v.heading = c->value;
        break;
    }
    return v;
}

static void every_bound_of_every_field(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct vcase *c = &cases[i];
        pveh_vehicle v = with(c);
        char why[PVEH_WHY_MAX] = "untouched";
        int rv = pveh_validate_vehicle(&v, why, sizeof(why));
        if (rv != c->expect) {
            fail_msg("case %zu: field %d value %g: got %d, expected %d", i, c->field, c->value, rv,
                     c->expect);
        }
        assert_string_equal(why, c->expect == 0 ? "untouched" : c->why);

        /* The command builder refuses exactly what validation refuses, and the decoder of a
         * hand-made command with the bad value refuses it too. */
        uint8_t *cmd = NULL;
        size_t len = 0;
        assert_int_equal(pveh_command_update(&v, 1, 1, 1, &cmd, &len), c->expect);
        if (c->expect == 0) {
            pveh_command dec;
            assert_int_equal(pveh_command_decode(cmd, len, &dec), 0);
            assert_memory_equal(&dec.vehicle.latitude, &v.latitude, sizeof(double));
            free(cmd);
        }
    }
}

static void the_first_bad_field_is_named(void **state)
{
    (void)state;
    pveh_vehicle v = veh(0, 100, 200, 200, 400);
    char why[PVEH_WHY_MAX];
    assert_int_equal(pveh_validate_vehicle(&v, why, sizeof(why)), PT_EINVAL);
    assert_string_equal(why, "vehicle.id must not be 0");
    v.id = 3;
    assert_int_equal(pveh_validate_vehicle(&v, why, sizeof(why)), PT_EINVAL);
    assert_string_equal(why, LAT_MSG);
}

static void missing_vehicle_and_ids(void **state)
{
    (void)state;
    char why[PVEH_WHY_MAX];
    assert_int_equal(pveh_validate_vehicle(NULL, why, sizeof(why)), PT_EINVAL);
    assert_string_equal(why, "vehicle must be set");
    assert_int_equal(pveh_validate_id(0, why, sizeof(why)), PT_EINVAL);
    assert_string_equal(why, "id must not be 0");
    assert_int_equal(pveh_validate_id(UINT64_MAX, why, sizeof(why)), 0);
    uint8_t *out = NULL;
    size_t len = 0;
    assert_int_equal(pveh_command_delete(0, 1, 1, 1, &out, &len), PT_EINVAL);
    assert_int_equal(pveh_query_get(0, &out, &len), PT_EINVAL);
    assert_null(out);
}

static void messages_truncate_safely(void **state)
{
    (void)state;
    pveh_vehicle v = veh(1, 0, 0, 151, 0);
    char why[8];
    memset(why, 'x', sizeof(why));
    assert_int_equal(pveh_validate_vehicle(&v, why, sizeof(why)), PT_EINVAL);
    assert_string_equal(why, "vehicle");
    /* No buffer at all is allowed. */
    assert_int_equal(pveh_validate_vehicle(&v, NULL, 0), PT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_bound_of_every_field),
        cmocka_unit_test(the_first_bad_field_is_named),
        cmocka_unit_test(missing_vehicle_and_ids),
        cmocka_unit_test(messages_truncate_safely),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
