/* platoonctl's number formatting: the fewest digits that read back as the same double. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "output.h"

/* The shortest form by trying every precision in turn: what the bisection must match. */
static void shortest_by_scan(double v, char *buf, size_t cap)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) {
            break;
        }
    }
    if (strchr(buf, 'e') != NULL && (v >= 1 || v <= -1) && v < 1e17 && v > -1e17) {
        snprintf(buf, cap, "%.0f", v);
    }
    if (strspn(buf, "-0123456789") == strlen(buf)) {
        strcat(buf, ".0");
    }
}

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void known_values(void **state)
{
    (void)state;
    char buf[64];
    const struct {
        double v;
        const char *want;
    } cases[] = {{2.3522, "2.3522"}, {359.9999, "359.9999"}, {4, "4.0"},
                 {-90, "-90.0"},     {360, "360.0"},         {1200, "1200.0"},
                 {0.1, "0.1"},       {1e-7, "1e-07"},        {48.8566, "48.8566"},
                 {0, "0.0"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pctl_format_double(cases[i].v, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].want);
    }
}

/* Random coordinates, speeds and arbitrary bit patterns: the same text as the scan, and it
 * reads back as the same double. */
static void matches_the_scan_and_reads_back(void **state)
{
    (void)state;
    char a[64], b[64];
    for (int i = 0; i < 200000; i++) {
        double v;
        if (i % 2 == 0) {
            v = -180.0 + 360.0 * (double)(next() >> 11) / (double)(UINT64_C(1) << 53);
        } else {
            uint64_t bits = next();
            memcpy(&v, &bits, sizeof(v));
            if (v != v || v - v != 0) {
                continue; /* not a number a vehicle can hold */
            }
        }
        pctl_format_double(v, a, sizeof(a));
        shortest_by_scan(v, b, sizeof(b));
        assert_string_equal(a, b);
        assert_true(strtod(a, NULL) == v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_values),
        cmocka_unit_test(matches_the_scan_and_reads_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
