/*
 * Reports (report.h). The whole run's figure merges both kinds of call; a mixed run also
 * reports reads and writes apart, since they cost very differently.
 */
#include "report.h"

#include <stdlib.h>

#include <jansson.h>

#include "platoon/error.h"

static const char *const kind_names[PBENCH_KINDS] = {"writes", "reads"};

static const char *workload_name(int w)
{
    switch (w) {
    case PBENCH_WL_UPDATE:
        return "update";
    case PBENCH_WL_MIXED:
        return "mixed";
    case PBENCH_WL_READ:
        return "read";
    default:
        return "fill";
    }
}

static void merged(const pbench_result *res, pbench_hist *all)
{
    pbench_hist_reset(all);
    for (int k = 0; k < PBENCH_KINDS; k++) {
        pbench_hist_merge(all, &res->lat[k]);
    }
}

static void text_line(FILE *out, const char *what, const pbench_hist *h, double secs)
{
    fprintf(out,
            "%-7s %10.0f ops/s  latency ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  "
            "max %.3f  (%llu calls)\n",
            what, secs > 0 ? (double)h->count / secs : 0.0,
            (double)pbench_hist_quantile(h, 0.5) / 1e6, (double)pbench_hist_quantile(h, 0.9) / 1e6,
            (double)pbench_hist_quantile(h, 0.99) / 1e6,
            (double)pbench_hist_quantile(h, 0.999) / 1e6, (double)h->max_ns / 1e6,
            (unsigned long long)h->count);
}

/* The quantile @q of the delivery delays, signed: the early events (received before the write's
 * answer, their lead in @w->early) are the negative values, below all the others. */
static double delay_ms(const pbench_watch_result *w, double q)
{
    uint64_t n_early = w->early.count, n = n_early + w->late.count;
    if (n == 0) {
        return 0;
    }
    double rank = q * (double)n;
    if (rank < (double)n_early) {
        /* the rank-th smallest signed value is the (n_early - rank)-th largest lead */
        return -(double)pbench_hist_quantile(&w->early, 1.0 - rank / (double)n_early) / 1e6;
    }
    double lq = w->late.count ? (rank - (double)n_early) / (double)w->late.count : 0;
    return (double)pbench_hist_quantile(&w->late, lq > 1 ? 1 : lq) / 1e6;
}

static double delay_max_ms(const pbench_watch_result *w)
{
    if (w->late.count > 0) {
        return (double)w->late.max_ns / 1e6;
    }
    return w->early.count > 0 ? -(double)w->early.min_ns / 1e6 : 0;
}

static void watch_text(const pbench_engine_cfg *cfg, const pbench_watch_result *w, double secs,
                       FILE *out)
{
    fprintf(out,
            "watch   %u stream(s)%s on %s over %u connection(s): %.0f events/s in %.0f messages/s, "
            "%llu ended early%s%s\n"
            "        watchers' thread: %.2f s of CPU, %.0f events decoded per CPU second\n",
            w->watchers,
            w->filter_offset ? " of one unwritten vehicle each"
            : w->filter_pool ? " of one vehicle each"
                             : "",
            cfg->watch_target, w->channels, secs > 0 ? (double)w->events / secs : 0,
            secs > 0 ? (double)w->messages / secs : 0, (unsigned long long)w->ended_early,
            w->ended_early ? "  first: " : "", w->ended_early ? w->first_error : "",
            w->thread_cpu_s, w->thread_cpu_s > 0 ? (double)w->events / w->thread_cpu_s : 0);
    fprintf(out,
            "delay   ms (answer -> event): p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  (%llu timed, "
            "%llu before the answer, %llu untimed)\n",
            delay_ms(w, 0.5), delay_ms(w, 0.9), delay_ms(w, 0.99), delay_max_ms(w),
            (unsigned long long)w->matched, (unsigned long long)w->early.count,
            (unsigned long long)w->unmatched);
}

void pbench_report_text(const pbench_engine_cfg *cfg, const pbench_result *res, FILE *out)
{
    pbench_hist *all = malloc(sizeof(*all));
    if (all == NULL) {
        return;
    }
    merged(res, all);
    fprintf(out, "%s %s, concurrency %u over %u channel(s) to %s%s, %.1f s recorded\n",
            cfg->wl.target == PBENCH_TARGET_ETCD ? "etcd" : "platoon",
            workload_name(cfg->wl.workload), cfg->concurrency, cfg->channels,
            cfg->n_endpoints == 1 ? cfg->endpoints[0] : "all endpoints",
            res->interrupted ? " (interrupted)" : "", res->elapsed_s);
    text_line(out, "all", all, res->elapsed_s);
    if (res->lat[0].count > 0 && res->lat[1].count > 0) {
        for (int k = 0; k < PBENCH_KINDS; k++) {
            text_line(out, kind_names[k], &res->lat[k], res->elapsed_s);
        }
    }
    if (cfg->watchers > 0) {
        watch_text(cfg, &res->watch, res->elapsed_s, out);
    }
    fprintf(out, "errors  %llu%s%s\n", (unsigned long long)res->errors,
            res->errors ? "  first: " : "", res->errors ? res->first_error : "");
    free(all);
}

static json_t *hist_json(const pbench_hist *h, double secs)
{
    return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "ops", (json_int_t)h->count,
                     "ops_per_s", secs > 0 ? (double)h->count / secs : 0.0, "p50_us",
                     (double)pbench_hist_quantile(h, 0.5) / 1e3, "p90_us",
                     (double)pbench_hist_quantile(h, 0.9) / 1e3, "p99_us",
                     (double)pbench_hist_quantile(h, 0.99) / 1e3, "p999_us",
                     (double)pbench_hist_quantile(h, 0.999) / 1e3, "max_us",
                     (double)h->max_ns / 1e3, "min_us", (double)h->min_ns / 1e3, "mean_us",
                     h->count ? h->sum_ns / (double)h->count / 1e3 : 0.0);
}

int pbench_report_json(const pbench_engine_cfg *cfg, const pbench_result *res, FILE *out)
{
    int rc = PT_ENOMEM;
    pbench_hist *all = malloc(sizeof(*all));
    json_t *root = NULL;
    if (all == NULL) {
        goto cleanup;
    }
    merged(res, all);
    json_t *codes = json_object();
    json_t *endpoints = json_array();
    if (codes == NULL || endpoints == NULL) {
        json_decref(codes);
        json_decref(endpoints);
        goto cleanup;
    }
    for (int c = 0; c < PBENCH_MAX_CODES; c++) {
        if (res->codes[c] > 0) {
            char name[8];
            snprintf(name, sizeof(name), "%d", c);
            json_object_set_new(codes, name, json_integer((json_int_t)res->codes[c]));
        }
    }
    for (uint32_t i = 0; i < cfg->n_endpoints; i++) {
        json_array_append_new(endpoints, json_string(cfg->endpoints[i]));
    }
    root = json_pack(
        "{s:s, s:s, s:s, s:s, s:b, s:I, s:I, s:o, s:I, s:I, s:f, s:f, s:o, s:o, s:o, s:I, s:o, "
        "s:s, s:b}",
        "target", cfg->wl.target == PBENCH_TARGET_ETCD ? "etcd" : "platoon", "workload",
        workload_name(cfg->wl.workload), "read", cfg->wl.read_all ? "platoon" : "vehicle",
        "consistency", cfg->wl.linearizable ? "linearizable" : "stale", "sessions",
        cfg->wl.sessions && cfg->wl.target == PBENCH_TARGET_PLATOON, "concurrency",
        (json_int_t)cfg->concurrency, "channels", (json_int_t)cfg->channels, "endpoints", endpoints,
        "pool", (json_int_t)cfg->wl.pool, "value_size", (json_int_t)cfg->wl.value_size,
        "duration_s", res->elapsed_s, "warmup_s", cfg->warmup_s, "all",
        hist_json(all, res->elapsed_s), "writes",
        hist_json(&res->lat[PBENCH_KIND_WRITE], res->elapsed_s), "reads",
        hist_json(&res->lat[PBENCH_KIND_READ], res->elapsed_s), "errors", (json_int_t)res->errors,
        "error_codes", codes, "first_error", res->first_error, "interrupted", res->interrupted);
    if (root == NULL) {
        goto cleanup;
    }
    if (cfg->watchers > 0) {
        const pbench_watch_result *w = &res->watch;
        json_t *wcodes = json_object();
        for (int c = 0; wcodes != NULL && c < PBENCH_WATCH_CODES; c++) {
            if (w->codes[c] > 0) {
                char name[8];
                snprintf(name, sizeof(name), "%d", c);
                json_object_set_new(wcodes, name, json_integer((json_int_t)w->codes[c]));
            }
        }
        double secs = res->elapsed_s;
        json_t *wj = json_pack(
            "{s:I, s:b, s:s, s:I, s:s, s:I, s:I, s:f, s:f, s:I, s:I, s:I, s:I, s:f, s:f, s:f, "
            "s:f, s:f, s:I, s:o, s:s, s:f, s:f}",
            "watchers", (json_int_t)w->watchers, "one_vehicle_each", w->filter_pool > 0, "node",
            cfg->watch_target, "channels", (json_int_t)w->channels, "consistency", "stale",
            "events", (json_int_t)w->events, "messages", (json_int_t)w->messages, "events_per_s",
            secs > 0 ? (double)w->events / secs : 0.0, "messages_per_s",
            secs > 0 ? (double)w->messages / secs : 0.0, "timed", (json_int_t)w->matched,
            "before_answer", (json_int_t)w->early.count, "untimed", (json_int_t)w->unmatched,
            "initial_events", (json_int_t)w->initial, "delay_p50_us", delay_ms(w, 0.5) * 1e3,
            "delay_p90_us", delay_ms(w, 0.9) * 1e3, "delay_p99_us", delay_ms(w, 0.99) * 1e3,
            "delay_max_us", delay_max_ms(w) * 1e3, "delay_mean_us",
            w->matched ? (w->late.sum_ns - w->early.sum_ns) / (double)w->matched / 1e3 : 0.0,
            "ended_early", (json_int_t)w->ended_early, "ended_codes",
            wcodes != NULL ? wcodes : json_object(), "first_error", w->first_error, "thread_cpu_s",
            w->thread_cpu_s, "events_per_cpu_s",
            w->thread_cpu_s > 0 ? (double)w->events / w->thread_cpu_s : 0.0);
        if (wj == NULL || json_object_set_new(root, "watch", wj) != 0) {
            goto cleanup;
        }
    }
    rc =
        json_dumpf(root, out, JSON_COMPACT | JSON_REAL_PRECISION(8)) == 0 && fputc('\n', out) != EOF
            ? 0
            : PT_EIO;
    fflush(out);
cleanup:
    json_decref(root);
    free(all);
    return rc;
}
