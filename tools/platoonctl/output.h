/*
 * How platoonctl shows results: aligned tables for people, one JSON object per line (built
 * with jansson) for scripts, and one clear line on stderr for errors, whose exit code says
 * what kind of failure it was.
 */
#ifndef PCTL_OUTPUT_H
#define PCTL_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "ctl.h"
#include "platoon/v1/platoon.pb-c.h"
#include "rpc.h"

#define PCTL_TABLE_MAX_COLS 16

typedef struct pctl_table {
    size_t n_cols;
    const char *header[PCTL_TABLE_MAX_COLS];
    bool right[PCTL_TABLE_MAX_COLS]; /* right-aligned (numbers) */
    char *spec;                      /* owns the header strings */
    char **cells;                    /* n_cells strings, row after row */
    size_t n_cells, cap_cells;
} pctl_table;

/* @spec: the column headers separated by '|'; a header starting with '>' is right-aligned
 * (the '>' is not shown). Example: ">ID|ADDRESS|>TERM". */
void pctl_table_init(pctl_table *t, const char *spec);
/* Appends one printf-formatted cell; after n_cols cells a new row starts. Out of memory
 * leaves the cell empty ("?" is printed). */
void pctl_table_cell(pctl_table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pctl_table_print(const pctl_table *t, FILE *out);
void pctl_table_free(pctl_table *t);

/* Writes @v into @buf with the fewest significant digits that read back as the same double,
 * with ".0" when it would otherwise look like an integer. */
void pctl_format_double(double v, char *buf, size_t cap);

/* Prints @obj as one compact line and releases it (json_decref). Integers are printed as
 * unsigned 64-bit values (every integer platoonctl prints is one), reals as above. */
void pctl_json_print(json_t *obj);
/* Writes @obj as pctl_json_print does, without a newline, and keeps it (for output too large
 * to build as one tree: its parts are written one after another). */
void pctl_json_emit(const json_t *obj, FILE *out);

/* The JSON object of a vehicle, and the name of a role for people and scripts alike. */
json_t *pctl_json_vehicle(const Platoon__V1__Vehicle *v);
json_t *pctl_json_members(Platoon__V1__Member **members, size_t n);
const char *pctl_role_name(Platoon__V1__Role role);
const char *pctl_grpc_code_name(int code);

/* Adds the vehicle columns to @t (ID..REVISION) and one row per vehicle. */
void pctl_vehicle_table(pctl_table *t, Platoon__V1__Vehicle **vehicles, size_t n);
void pctl_print_members(Platoon__V1__Member **members, size_t n, FILE *out);

/*
 * Reports a failed call: one line on stderr (and, with --json, {"error": {...}} on stdout)
 * saying what was attempted (@what) and why. Returns the exit code that fits the status:
 * INVALID_ARGUMENT 2, NOT_FOUND 3, no endpoint reached / UNAVAILABLE / DEADLINE_EXCEEDED 4,
 * anything else 1.
 */
int pctl_report(const pctl_opts *o, const char *what, const pctl_status *st);

/* Reports a usage error (exit code 2) in the same way. printf-style. */
int pctl_usage_error(const pctl_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reports a plain failure with exit code @code (e.g. not found). printf-style. */
int pctl_fail(const pctl_opts *o, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
