/*
 * A latency histogram in the style of HdrHistogram: buckets whose width grows with the value,
 * so that every recorded value is known to within 1/128 of itself (0.8%) from one nanosecond
 * to about twenty minutes, in a fixed 36 KiB array. Recording is one index computation and an
 * increment; percentiles walk the buckets. Two histograms merge by adding their buckets, which
 * is how the per-second progress lines and the whole run share one recording.
 */
#ifndef PBENCH_HIST_H
#define PBENCH_HIST_H

#include <stdint.h>

/* Values below 2^PBENCH_HIST_SUB_BITS ns get a bucket each; above, each power of two is cut
 * into 2^(PBENCH_HIST_SUB_BITS-1) buckets. */
#define PBENCH_HIST_SUB_BITS 8
#define PBENCH_HIST_MAX_EXP  33 /* values up to 2^(SUB_BITS + MAX_EXP) ns, about 36 minutes */
#define PBENCH_HIST_BUCKETS \
    ((1u << PBENCH_HIST_SUB_BITS) + PBENCH_HIST_MAX_EXP * (1u << (PBENCH_HIST_SUB_BITS - 1)))

typedef struct pbench_hist {
    uint64_t count;
    uint64_t min_ns, max_ns; /* exact */
    double sum_ns;
    uint64_t buckets[PBENCH_HIST_BUCKETS];
} pbench_hist;

void pbench_hist_reset(pbench_hist *h);
void pbench_hist_record(pbench_hist *h, uint64_t ns);
/* Adds every value of @from to @into. */
void pbench_hist_merge(pbench_hist *into, const pbench_hist *from);
/* The value below which @q (in [0, 1]) of the recorded values lie: the upper bound of its
 * bucket, clamped to the exact maximum. 0 for an empty histogram. */
uint64_t pbench_hist_quantile(const pbench_hist *h, double q);

#endif
