/*
 * platoon/log.h — where the library's log messages go.
 *
 * By default the library is silent. A program that wants messages installs a sink; the sink is
 * called from whichever thread logs, so it must be thread-safe. The level and sink are process
 * wide; set them before starting nodes.
 */
#ifndef PLATOON_LOG_H
#define PLATOON_LOG_H

#include "platoon/error.h"

#ifdef __cplusplus
extern "C" {
#endif

enum pt_log_level {
    PT_LOG_DEBUG = 0,
    PT_LOG_INFO = 1,
    PT_LOG_WARN = 2,
    PT_LOG_ERROR = 3,
    PT_LOG_OFF = 4,
};

/* Receives one formatted message, without a trailing newline. @msg is valid during the call. */
typedef void (*pt_log_sink)(void *ctx, enum pt_log_level level, const char *msg);

/* Installs @sink (NULL: silence) and the lowest level passed to it. */
PT_API void pt_log_set_sink(pt_log_sink sink, void *ctx, enum pt_log_level min_level);

/* A ready-made sink: one line per message on stderr with a UTC timestamp and the level. */
PT_API void pt_log_stderr_sink(void *ctx, enum pt_log_level level, const char *msg);

/* Parses "debug", "info", "warn" or "error" (and "off"). Returns 0 or PT_EINVAL. */
PT_API int pt_log_level_parse(const char *text, enum pt_log_level *out);

/* "debug", "info", "warn", "error", "off". */
PT_API const char *pt_log_level_name(enum pt_log_level level);

#ifdef __cplusplus
}
#endif
#endif
