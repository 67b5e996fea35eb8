/*
 * Metrics in the Prometheus text exposition format (version 0.0.4): fixed-bucket histograms
 * that any thread may update without a lock, and a small writer that renders families of
 * samples (HELP and TYPE lines, escaped label values, cumulative histogram buckets).
 *
 * Why no general registry of metric objects: every value the node exposes already lives
 * somewhere (a status the loop publishes, a counter of the transport); what a scrape needs is
 * a way to write them out correctly. So a part that has something to expose writes a collect
 * function over this writer (see pnode__metrics_register in src/node/metrics.h), and keeps
 * its values in C11 atomics or in a snapshot it already publishes.
 */
#ifndef PLATOON_COMMON_METRICS_H
#define PLATOON_COMMON_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most finite bucket bounds of one histogram. */
#define PT_HIST_MAX_BOUNDS 24

/*
 * A histogram over non-negative integer observations in a raw unit (nanoseconds, entries,
 * bytes), rendered in the exposed unit raw / @divisor (1e9: nanoseconds as seconds; a division, so
 * that round numbers stay round). Updates
 * are relaxed atomic increments: a scrape that races an observation may see it in the count
 * and not yet in the sum, which Prometheus tolerates; the rendered _count is always the
 * +Inf bucket (both are computed from the same reads).
 */
typedef struct pt_histogram {
    const uint64_t *bounds; /* ascending upper bounds (inclusive), raw unit; static storage */
    size_t n_bounds;        /* <= PT_HIST_MAX_BOUNDS */
    double divisor;
    atomic_uint_fast64_t buckets[PT_HIST_MAX_BOUNDS + 1]; /* per bucket, not cumulative;
                                                            [n_bounds]: above every bound */
    atomic_uint_fast64_t sum;                             /* raw unit */
} pt_histogram;

/* Sets up @h (zeroed) with @n (<= PT_HIST_MAX_BOUNDS, else clipped) ascending @bounds. */
void pt__hist_init(pt_histogram *h, const uint64_t *bounds, size_t n, double divisor);
/* Counts one observation @v. Any thread, lock-free. */
void pt__hist_observe(pt_histogram *h, uint64_t v);

/* A text being rendered: a growing buffer. On allocation failure @nomem is set and the rest
 * of the rendering is skipped; the caller then answers an error instead of a partial text. */
typedef struct pt_prom {
    char *buf; /* malloc'd, NUL-terminated; owned by the caller once rendering is done */
    size_t len;
    size_t cap;
    bool nomem;
} pt_prom;

enum pt_prom_type {
    PT_PROM_COUNTER,
    PT_PROM_GAUGE,
    PT_PROM_HISTOGRAM,
};

/* The HELP and TYPE lines of family @name. @help is escaped (backslash, newline). */
void pt__prom_family(pt_prom *p, const char *name, enum pt_prom_type type, const char *help);

/*
 * One sample line: @name, the @n_labels label pairs of @labels (name, value, name, value...;
 * the values are escaped: backslash, double quote, newline), and @value. The _u64 form writes
 * an integer exactly; the double form writes NaN, +Inf and -Inf as the format spells them.
 */
void pt__prom_sample(pt_prom *p, const char *name, const char *const *labels, size_t n_labels,
                     double value);
void pt__prom_sample_u64(pt_prom *p, const char *name, const char *const *labels, size_t n_labels,
                         uint64_t value);

/* The samples of histogram family @name (its HELP and TYPE written before): one cumulative
 * _bucket per bound and +Inf (label le after @labels), _sum and _count. */
void pt__prom_histogram(pt_prom *p, const char *name, const char *const *labels, size_t n_labels,
                        const pt_histogram *h);

/* Appends printf-style text as it is (no escaping). */
void pt__prom_printf(pt_prom *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
