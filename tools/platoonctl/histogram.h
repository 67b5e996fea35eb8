/*
 * A latency histogram with log-linear buckets, in the style of HdrHistogram: values below 64
 * are counted exactly, and every power-of-two range above is split into 32 equal buckets, so
 * a percentile is reported within about 3% of the truth whatever its magnitude, in a fixed
 * 15 KiB, and recording is O(1) without keeping samples.
 */
#ifndef PCTL_HISTOGRAM_H
#define PCTL_HISTOGRAM_H

#include <stdint.h>

#define PCTL_HIST_SUB     32 /* buckets per power of two, above the exact range */
#define PCTL_HIST_EXACT   64 /* values below this have a bucket each */
#define PCTL_HIST_BUCKETS (PCTL_HIST_EXACT + (64 - 6) * PCTL_HIST_SUB)

typedef struct pctl_hist {
    uint64_t counts[PCTL_HIST_BUCKETS];
    uint64_t total;
    uint64_t min, max;
    double sum;
} pctl_hist;

void pctl_hist_init(pctl_hist *h);
void pctl_hist_record(pctl_hist *h, uint64_t value);

/* The bucket of @value, and the largest value that bucket holds (for tests and reports). */
unsigned pctl_hist_bucket(uint64_t value);
uint64_t pctl_hist_bucket_high(unsigned bucket);

/*
 * The value at percentile @p (0 < p <= 100): the upper bound of the bucket holding the
 * ceil(p% * total)-th smallest value, never above the largest value recorded. 0 when empty.
 */
uint64_t pctl_hist_percentile(const pctl_hist *h, double p);

double pctl_hist_mean(const pctl_hist *h);

#endif
