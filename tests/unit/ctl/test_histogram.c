/* platoonctl's latency histogram: bucket bounds, relative error, and percentiles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "histogram.h"

static void small_values_are_exact(void **state)
{
    (void)state;
    for (uint64_t v = 0; v < PCTL_HIST_EXACT; v++) {
        assert_int_equal(pctl_hist_bucket(v), v);
        assert_int_equal(pctl_hist_bucket_high(pctl_hist_bucket(v)), v);
    }
}

/* Every value lies in its bucket, buckets are contiguous and ordered, and a bucket is never
 * wider than 1/32 of its values: the promised relative error. */
static void buckets_tile_the_range_with_bounded_error(void **state)
{
    (void)state;
    uint64_t prev_high = PCTL_HIST_EXACT - 1;
    for (unsigned b = PCTL_HIST_EXACT; b < PCTL_HIST_BUCKETS; b++) {
        uint64_t high = pctl_hist_bucket_high(b);
        uint64_t low = prev_high + 1;
        assert_true(high >= low);
        assert_int_equal(pctl_hist_bucket(low), b);
        assert_int_equal(pctl_hist_bucket(high), b);
        assert_true((double)(high - low) <= (double)low / 32.0);
        prev_high = high;
    }
    assert_true(prev_high == UINT64_MAX);
    assert_int_equal(pctl_hist_bucket(UINT64_MAX), PCTL_HIST_BUCKETS - 1);
}

static void percentiles_of_a_uniform_sample(void **state)
{
    (void)state;
    pctl_hist *h = malloc(sizeof(*h));
    assert_non_null(h);
    pctl_hist_init(h);
    assert_int_equal(pctl_hist_percentile(h, 50), 0);
    for (uint64_t v = 1; v <= 100000; v++) {
        pctl_hist_record(h, v);
    }
    assert_int_equal(h->total, 100000);
    assert_int_equal(h->min, 1);
    assert_int_equal(h->max, 100000);
    const double ps[] = {1, 50, 90, 99, 99.9};
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        double want = ps[i] * 1000.0;
        double got = (double)pctl_hist_percentile(h, ps[i]);
        /* Never below the true value, and above it by at most one bucket's width. */
        assert_true(got >= want);
        assert_true(got <= want * (1.0 + 1.0 / 32.0) + 1.0);
    }
    assert_int_equal(pctl_hist_percentile(h, 100), 100000);
    assert_true(pctl_hist_mean(h) > 50000.0 && pctl_hist_mean(h) < 50001.0);
    free(h);
}

static void one_slow_outlier_shows_only_at_the_top(void **state)
{
    (void)state;
    pctl_hist *h = malloc(sizeof(*h));
    assert_non_null(h);
    pctl_hist_init(h);
    for (int i = 0; i < 999; i++) {
        pctl_hist_record(h, 2000);
    }
    pctl_hist_record(h, 900000);
    assert_true(pctl_hist_percentile(h, 99.9) <= 2000 * 33 / 32);
    assert_int_equal(pctl_hist_percentile(h, 100), 900000);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(small_values_are_exact),
        cmocka_unit_test(buckets_tile_the_range_with_bounded_error),
        cmocka_unit_test(percentiles_of_a_uniform_sample),
        cmocka_unit_test(one_slow_outlier_shows_only_at_the_top),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
