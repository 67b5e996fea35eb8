#include "common/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pt__hist_init(pt_histogram *h, const uint64_t *bounds, size_t n, double divisor)
{
    memset(h, 0, sizeof(*h));
    h->bounds = bounds;
    h->n_bounds = n <= PT_HIST_MAX_BOUNDS ? n : PT_HIST_MAX_BOUNDS;
    h->divisor = divisor > 0 ? divisor : 1.0;
}

void pt__hist_observe(pt_histogram *h, uint64_t v)
{
    /* A linear scan: at most PT_HIST_MAX_BOUNDS comparisons, cheaper than the atomics. */
    size_t i = 0;
    while (i < h->n_bounds && v > h->bounds[i]) {
        i++;
    }
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
}

static bool reserve(pt_prom *p, size_t more)
{
    if (p->nomem) {
        return false;
    }
    if (p->len + more + 1 <= p->cap) {
        return true;
    }
    size_t cap = p->cap != 0 ? p->cap : 4096;
    while (cap < p->len + more + 1) {
        cap *= 2;
    }
    char *b = realloc(p->buf, cap);
    if (b == NULL) {
        p->nomem = true;
        return false;
    }
    p->buf = b;
    p->cap = cap;
    return true;
}

static void put(pt_prom *p, const char *s, size_t n)
{
    if (reserve(p, n)) {
        memcpy(p->buf + p->len, s, n);
        p->len += n;
        p->buf[p->len] = '\0';
    }
}

static void puts_(pt_prom *p, const char *s)
{
    put(p, s, strlen(s));
}

void pt__prom_printf(pt_prom *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(p, (size_t)n)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(p->buf + p->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    p->len += (size_t)n;
}

/* The format's escapes: in HELP text backslash and newline; in label values also the double
 * quote. */
static void put_escaped(pt_prom *p, const char *s, bool quote)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\') {
            put(p, "\\\\", 2);
        } else if (*s == '\n') {
            put(p, "\\n", 2);
        } else if (*s == '"' && quote) {
            put(p, "\\\"", 2);
        } else {
            put(p, s, 1);
        }
    }
}

void pt__prom_family(pt_prom *p, const char *name, enum pt_prom_type type, const char *help)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    puts_(p, "# HELP ");
    puts_(p, name);
    puts_(p, " ");
    put_escaped(p, help, false);
    puts_(p, "\n# TYPE ");
    puts_(p, name);
    puts_(p, " ");
    puts_(p, types[type]);
    puts_(p, "\n");
}

static void put_labels(pt_prom *p, const char *const *labels, size_t n_labels, const char *le)
{
    if (n_labels == 0 && le == NULL) {
        return;
    }
    puts_(p, "{");
    for (size_t i = 0; i < n_labels; i++) {
        if (i > 0) {
            puts_(p, ",");
        }
        puts_(p, labels[2 * i]);
        puts_(p, "=\"");
        put_escaped(p, labels[2 * i + 1] != NULL ? labels[2 * i + 1] : "", true);
        puts_(p, "\"");
    }
    if (le != NULL) {
        puts_(p, n_labels > 0 ? ",le=\"" : "le=\"");
        puts_(p, le);
        puts_(p, "\"");
    }
    puts_(p, "}");
}

/* The shortest of %.15g..%.17g that reads back as @v; the format's spellings of the
 * special values. */
static void format_double(double v, char *out, size_t cap)
{
    if (isnan(v)) {
        snprintf(out, cap, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, cap, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, v);
        if (strtod(out, NULL) == v) {
            return;
        }
    }
}

void pt__prom_sample(pt_prom *p, const char *name, const char *const *labels, size_t n_labels,
                     double value)
{
    char num[40];
    format_double(value, num, sizeof(num));
    puts_(p, name);
    put_labels(p, labels, n_labels, NULL);
    puts_(p, " ");
    puts_(p, num);
    puts_(p, "\n");
}

void pt__prom_sample_u64(pt_prom *p, const char *name, const char *const *labels, size_t n_labels,
                         uint64_t value)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRIu64, value);
    puts_(p, name);
    put_labels(p, labels, n_labels, NULL);
    puts_(p, " ");
    puts_(p, num);
    puts_(p, "\n");
}

void pt__prom_histogram(pt_prom *p, const char *name, const char *const *labels, size_t n_labels,
                        const pt_histogram *h)
{
    char series[160];
    char le[40];
    char num[24];
    uint64_t cumulative = 0;
    snprintf(series, sizeof(series), "%s_bucket", name);
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cumulative += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < h->n_bounds) {
            format_double((double)h->bounds[i] / h->divisor, le, sizeof(le));
        } else {
            snprintf(le, sizeof(le), "+Inf");
        }
        snprintf(num, sizeof(num), "%" PRIu64, cumulative);
        puts_(p, series);
        put_labels(p, labels, n_labels, le);
        puts_(p, " ");
        puts_(p, num);
        puts_(p, "\n");
    }
    snprintf(series, sizeof(series), "%s_sum", name);
    pt__prom_sample(p, series, labels, n_labels,
                    (double)atomic_load_explicit(&h->sum, memory_order_relaxed) / h->divisor);
    snprintf(series, sizeof(series), "%s_count", name);
    pt__prom_sample_u64(p, series, labels, n_labels, cumulative);
}
