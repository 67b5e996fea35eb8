/*
 * Logging for the parts of Platoon that are allowed to log (node/, programs).
 *
 * The library never writes to stdout/stderr by itself: messages go to a sink the program
 * installs with pt_log_set_sink() (include/platoon/log.h). The Raft core does not log at all.
 */
#ifndef PLATOON_COMMON_LOG_H
#define PLATOON_COMMON_LOG_H

#include "platoon/log.h"

void pt__log(enum pt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int pt__log_enabled(enum pt_log_level level);

#define PT_LOG(level, ...)               \
    do {                                 \
        if (pt__log_enabled(level)) {    \
            pt__log(level, __VA_ARGS__); \
        }                                \
    } while (0)
#define PT_DEBUG(...) PT_LOG(PT_LOG_DEBUG, __VA_ARGS__)
#define PT_INFO(...)  PT_LOG(PT_LOG_INFO, __VA_ARGS__)
#define PT_WARN(...)  PT_LOG(PT_LOG_WARN, __VA_ARGS__)
#define PT_ERROR(...) PT_LOG(PT_LOG_ERROR, __VA_ARGS__)

#endif
