/* The Prometheus text rendering: HELP and TYPE lines, escaping, number spellings, histograms
 * whose buckets are cumulative and end with +Inf equal to _count, and _sum in the exposed
 * unit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "common/metrics.h"

static void family_lines_and_escaped_help(void **state)
{
    (void)state;
    pt_prom p = {0};
    pt__prom_family(&p, "platoon_x_total", PT_PROM_COUNTER, "a \\ b\nc \"q\"");
    assert_false(p.nomem);
    /* HELP escapes backslash and newline, but not the double quote. */
    assert_string_equal(p.buf, "# HELP platoon_x_total a \\\\ b\\nc \"q\"\n"
                               "# TYPE platoon_x_total counter\n");
    free(p.buf);
}

static void label_values_are_escaped(void **state)
{
    (void)state;
    pt_prom p = {0};
    const char *labels[] = {"method", "/a\"b\\c\nd", "code", "OK"};
    pt__prom_sample_u64(&p, "m_total", labels, 2, 7);
    assert_string_equal(p.buf, "m_total{method=\"/a\\\"b\\\\c\\nd\",code=\"OK\"} 7\n");
    free(p.buf);
}

static void samples_without_labels_and_special_values(void **state)
{
    (void)state;
    pt_prom p = {0};
    pt__prom_sample_u64(&p, "a", NULL, 0, UINT64_MAX);
    pt__prom_sample(&p, "b", NULL, 0, 0.1);
    pt__prom_sample(&p, "c", NULL, 0, INFINITY);
    pt__prom_sample(&p, "d", NULL, 0, -INFINITY);
    pt__prom_sample(&p, "e", NULL, 0, NAN);
    pt__prom_sample(&p, "f", NULL, 0, 1.5e-4);
    assert_string_equal(p.buf, "a 18446744073709551615\n"
                               "b 0.1\n"
                               "c +Inf\n"
                               "d -Inf\n"
                               "e NaN\n"
                               "f 0.00015\n");
    free(p.buf);
}

static const uint64_t bounds_ns[] = {100000, 500000, 1000000};

static void histogram_buckets_are_cumulative(void **state)
{
    (void)state;
    pt_histogram h;
    pt__hist_init(&h, bounds_ns, 3, 1e9);
    pt__hist_observe(&h, 50000);   /* <= 0.0001 */
    pt__hist_observe(&h, 100000);  /* on the bound: le is inclusive */
    pt__hist_observe(&h, 700000);  /* <= 0.001 */
    pt__hist_observe(&h, 5000000); /* only +Inf */
    pt_prom p = {0};
    const char *labels[] = {"kind", "x"};
    pt__prom_histogram(&p, "lat_seconds", labels, 1, &h);
    assert_false(p.nomem);
    assert_string_equal(p.buf, "lat_seconds_bucket{kind=\"x\",le=\"0.0001\"} 2\n"
                               "lat_seconds_bucket{kind=\"x\",le=\"0.0005\"} 2\n"
                               "lat_seconds_bucket{kind=\"x\",le=\"0.001\"} 3\n"
                               "lat_seconds_bucket{kind=\"x\",le=\"+Inf\"} 4\n"
                               "lat_seconds_sum{kind=\"x\"} 0.00585\n"
                               "lat_seconds_count{kind=\"x\"} 4\n");
    free(p.buf);
}

static void empty_histogram_without_labels(void **state)
{
    (void)state;
    static const uint64_t counts[] = {1, 8};
    pt_histogram h;
    pt__hist_init(&h, counts, 2, 1.0);
    pt_prom p = {0};
    pt__prom_histogram(&p, "n", NULL, 0, &h);
    assert_string_equal(p.buf, "n_bucket{le=\"1\"} 0\n"
                               "n_bucket{le=\"8\"} 0\n"
                               "n_bucket{le=\"+Inf\"} 0\n"
                               "n_sum 0\n"
                               "n_count 0\n");
    free(p.buf);
}

static void long_texts_grow_the_buffer(void **state)
{
    (void)state;
    pt_prom p = {0};
    for (int i = 0; i < 2000; i++) {
        pt__prom_printf(&p, "line_%d 1\n", i);
    }
    assert_false(p.nomem);
    assert_non_null(strstr(p.buf, "line_0 1\n"));
    assert_non_null(strstr(p.buf, "line_1999 1\n"));
    assert_int_equal(strlen(p.buf), p.len);
    free(p.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(family_lines_and_escaped_help),
        cmocka_unit_test(label_values_are_escaped),
        cmocka_unit_test(samples_without_labels_and_special_values),
        cmocka_unit_test(histogram_buckets_are_cumulative),
        cmocka_unit_test(empty_histogram_without_labels),
        cmocka_unit_test(long_texts_grow_the_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
