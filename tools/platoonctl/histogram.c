#include "histogram.h"

#include <math.h>
#include <string.h>

void pctl_hist_init(pctl_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

unsigned pctl_hist_bucket(uint64_t value)
{
    if (value < PCTL_HIST_EXACT) {
        return (unsigned)value;
    }
    /* e = floor(log2(value)) >= 6; the five bits below the top one pick the sub-bucket. */
    unsigned e = 63u - (unsigned)__builtin_clzll(value);
    unsigned top = (unsigned)(value >> (e - 5)); /* in [32, 63] */
    return PCTL_HIST_EXACT + (e - 6) * PCTL_HIST_SUB + (top - PCTL_HIST_SUB);
}

uint64_t pctl_hist_bucket_high(unsigned bucket)
{
    if (bucket < PCTL_HIST_EXACT) {
        return bucket;
    }
    unsigned e = (bucket - PCTL_HIST_EXACT) / PCTL_HIST_SUB + 6;
    uint64_t top = (bucket - PCTL_HIST_EXACT) % PCTL_HIST_SUB + PCTL_HIST_SUB;
    /* The bucket holds [top << (e-5), ((top + 1) << (e-5)) - 1]; at the very top the shift
     * would overflow, and the bucket then ends at UINT64_MAX. */
    if (e == 63 && top == 63) {
        return UINT64_MAX;
    }
    return ((top + 1) << (e - 5)) - 1;
}

void pctl_hist_record(pctl_hist *h, uint64_t value)
{
    h->counts[pctl_hist_bucket(value)]++;
    h->total++;
    h->sum += (double)value;
    if (value < h->min) {
        h->min = value;
    }
    if (value > h->max) {
        h->max = value;
    }
}

uint64_t pctl_hist_percentile(const pctl_hist *h, double p)
{
    if (h->total == 0) {
        return 0;
    }
    if (p > 100.0) {
        p = 100.0;
    }
    /* 99.9% of 1000 must be rank 999, not 1000: p/100 is inexact in binary, so trim the
     * rounding error before taking the ceiling. */
    double exact = p / 100.0 * (double)h->total;
    uint64_t rank = (uint64_t)ceil(exact - exact * 1e-12);
    if (rank == 0) {
        rank = 1;
    }
    uint64_t seen = 0;
    for (unsigned b = 0; b < PCTL_HIST_BUCKETS; b++) {
        seen += h->counts[b];
        if (seen >= rank) {
            uint64_t high = pctl_hist_bucket_high(b);
            return high < h->max ? high : h->max;
        }
    }
    return h->max;
}

double pctl_hist_mean(const pctl_hist *h)
{
    return h->total ? h->sum / (double)h->total : 0.0;
}
