#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pctl_flag *find_flag(pctl_flag *flags, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0) {
            return &flags[i];
        }
    }
    return NULL;
}

int pctl_parse_args(int argc, char **argv, pctl_flag *flags, size_t n_flags, const char **pos,
                    size_t max_pos, size_t *n_pos, char *err, size_t cap)
{
    *n_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (*n_pos == max_pos) {
                snprintf(err, cap, "unexpected argument '%s'", a);
                return -1;
            }
            pos[(*n_pos)++] = a;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq != NULL ? (size_t)(eq - a) : strlen(a);
        pctl_flag *f = find_flag(flags, n_flags, a, len);
        if (f == NULL) {
            snprintf(err, cap, "unknown flag '%.*s'", (int)len, a);
            return -1;
        }
        if (f->is_switch) {
            if (eq != NULL) {
                snprintf(err, cap, "%s takes no value", f->name);
                return -1;
            }
            f->seen = true;
            continue;
        }
        if (eq != NULL) {
            f->value = eq + 1;
        } else if (i + 1 < argc) {
            f->value = argv[++i];
        } else {
            snprintf(err, cap, "%s needs a value", f->name);
            return -1;
        }
        f->seen = true;
    }
    return 0;
}

bool pctl_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (s == NULL || *s < '0' || *s > '9') {
        return false;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

bool pctl_parse_double(const char *s, double *out)
{
    if (s == NULL || *s == '\0') {
        return false;
    }
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v)) {
        return false;
    }
    *out = v;
    return true;
}

bool pctl_parse_seconds(const char *s, int64_t min_ms, int64_t max_ms, int64_t *out_ms)
{
    double v;
    if (!pctl_parse_double(s, &v) || v < 0 || v * 1000.0 > (double)max_ms) {
        return false;
    }
    int64_t ms = (int64_t)llround(v * 1000.0);
    if (ms < min_ms) {
        return false;
    }
    *out_ms = ms;
    return true;
}
