/*
 * Command-line parsing shared by every command: flags (--name value, --name=value, or
 * switches) and positional arguments, with strict number parsing so that "12abc" or "1e999"
 * is refused here with a clear message rather than sent to the cluster.
 */
#ifndef PCTL_ARGS_H
#define PCTL_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pctl_flag {
    const char *name; /* "--lat" */
    bool is_switch;   /* takes no value */
    bool seen;
    const char *value; /* set when seen (NULL for a switch) */
} pctl_flag;

/*
 * Splits @argv into the flags of @flags and up to @max_pos positional arguments (stored in
 * @pos, their number in *@n_pos). Returns 0, or -1 with a message in @err (unknown flag,
 * missing value, too many arguments).
 */
int pctl_parse_args(int argc, char **argv, pctl_flag *flags, size_t n_flags, const char **pos,
                    size_t max_pos, size_t *n_pos, char *err, size_t cap);

/* Parses a decimal integer in [@min, @max] taking the whole string. */
bool pctl_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Parses a finite number taking the whole string (range checks are the server's). */
bool pctl_parse_double(const char *s, double *out);

/* Parses a duration in seconds ("2", "0.5") into milliseconds, within [@min_ms, @max_ms]. */
bool pctl_parse_seconds(const char *s, int64_t min_ms, int64_t max_ms, int64_t *out_ms);

#endif
