/* platoonctl's argument parsing: strict numbers, flags in both forms, clear refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "args.h"

static void numbers_are_parsed_strictly(void **state)
{
    (void)state;
    uint64_t u;
    double d;
    int64_t ms;
    assert_true(pctl_parse_u64("42", 1, 100, &u) && u == 42);
    const char *bad_u[] = {"", "-1", "+1", "0", "101", "4x", " 4", "1e2", "18446744073709551616"};
    for (size_t i = 0; i < sizeof(bad_u) / sizeof(bad_u[0]); i++) {
        assert_false(pctl_parse_u64(bad_u[i], 1, 100, &u));
    }
    assert_true(pctl_parse_double("-33.865", &d) && d == -33.865);
    assert_true(pctl_parse_double("1e2", &d) && d == 100.0);
    const char *bad_d[] = {"", "abc", "1.5.2", "nan", "inf", "1e999", "12abc"};
    for (size_t i = 0; i < sizeof(bad_d) / sizeof(bad_d[0]); i++) {
        assert_false(pctl_parse_double(bad_d[i], &d));
    }
    assert_true(pctl_parse_seconds("0.25", 10, 1000, &ms) && ms == 250);
    assert_false(pctl_parse_seconds("0.001", 10, 1000, &ms));
    assert_false(pctl_parse_seconds("2", 10, 1000, &ms));
    assert_false(pctl_parse_seconds("-1", 0, 1000, &ms));
}

static void flags_and_positionals(void **state)
{
    (void)state;
    pctl_flag flags[] = {{.name = "--lat"}, {.name = "--stale", .is_switch = true}};
    char *argv[] = {"7", "--lat", "-12.5", "--stale"};
    const char *pos[2];
    size_t n_pos;
    char err[128];
    assert_int_equal(pctl_parse_args(4, argv, flags, 2, pos, 2, &n_pos, err, sizeof(err)), 0);
    assert_int_equal(n_pos, 1);
    assert_string_equal(pos[0], "7");
    assert_true(flags[0].seen && strcmp(flags[0].value, "-12.5") == 0);
    assert_true(flags[1].seen);

    pctl_flag f2[] = {{.name = "--lat"}};
    char *eq[] = {"--lat=3"};
    assert_int_equal(pctl_parse_args(1, eq, f2, 1, pos, 0, &n_pos, err, sizeof(err)), 0);
    assert_string_equal(f2[0].value, "3");

    char *unknown[] = {"--lon", "3"};
    assert_int_equal(pctl_parse_args(2, unknown, f2, 1, pos, 2, &n_pos, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--lon"));
    char *missing[] = {"--lat"};
    assert_int_equal(pctl_parse_args(1, missing, f2, 1, pos, 2, &n_pos, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "needs a value"));
    char *extra[] = {"1", "2"};
    assert_int_equal(pctl_parse_args(2, extra, f2, 1, pos, 1, &n_pos, err, sizeof(err)), -1);
    pctl_flag sw[] = {{.name = "--stale", .is_switch = true}};
    char *swv[] = {"--stale=1"};
    assert_int_equal(pctl_parse_args(1, swv, sw, 1, pos, 0, &n_pos, err, sizeof(err)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(numbers_are_parsed_strictly),
        cmocka_unit_test(flags_and_positionals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
