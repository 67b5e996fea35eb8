#include "common/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Set once at start-up, read by every thread: atomics keep the reads well defined. */
static _Atomic(pt_log_sink) log_sink;
static void *_Atomic log_ctx;
static atomic_int log_level = PT_LOG_OFF;

void pt_log_set_sink(pt_log_sink sink, void *ctx, enum pt_log_level min_level)
{
    atomic_store(&log_ctx, ctx);
    atomic_store(&log_sink, sink);
    atomic_store(&log_level, sink ? (int)min_level : PT_LOG_OFF);
}

int pt__log_enabled(enum pt_log_level level)
{
    return (int)level >= atomic_load(&log_level);
}

void pt__log(enum pt_log_level level, const char *fmt, ...)
{
    pt_log_sink sink = atomic_load(&log_sink);
    if (sink == NULL || !pt__log_enabled(level)) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sink(atomic_load(&log_ctx), level, msg);
}

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

const char *pt_log_level_name(enum pt_log_level level)
{
    if ((int)level < 0 || (int)level > PT_LOG_OFF) {
        return "?";
    }
    return level_names[level];
}

int pt_log_level_parse(const char *text, enum pt_log_level *out)
{
    for (int i = 0; i <= PT_LOG_OFF; i++) {
        if (text != NULL && strcmp(text, level_names[i]) == 0) {
            *out = (enum pt_log_level)i;
            return 0;
        }
    }
    return PT_EINVAL;
}

void pt_log_stderr_sink(void *ctx, enum pt_log_level level, const char *msg)
{
    (void)ctx;
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    /* One fprintf per line: stdio locks the stream, so lines from threads do not interleave. */
    fprintf(stderr, "%s.%03ldZ %-5s %s\n", when, ts.tv_nsec / 1000000L, pt_log_level_name(level),
            msg);
}
