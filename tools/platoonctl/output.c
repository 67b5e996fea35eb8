#include "output.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/status.h>

#include "platoon/error.h"

void pctl_table_init(pctl_table *t, const char *spec)
{
    memset(t, 0, sizeof(*t));
    t->spec = strdup(spec);
    if (t->spec == NULL) {
        return;
    }
    char *save = NULL;
    for (char *h = strtok_r(t->spec, "|", &save); h != NULL && t->n_cols < PCTL_TABLE_MAX_COLS;
         h = strtok_r(NULL, "|", &save)) {
        t->right[t->n_cols] = h[0] == '>';
        t->header[t->n_cols++] = h[0] == '>' ? h + 1 : h;
    }
}

void pctl_table_cell(pctl_table *t, const char *fmt, ...)
{
    if (t->n_cells == t->cap_cells) {
        size_t cap = t->cap_cells ? 2 * t->cap_cells : 64;
        char **cells = realloc(t->cells, cap * sizeof(char *));
        if (cells == NULL) {
            return;
        }
        t->cells = cells;
        t->cap_cells = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *cell = NULL;
    if (vasprintf(&cell, fmt, ap) < 0) {
        cell = NULL;
    }
    va_end(ap);
    t->cells[t->n_cells++] = cell;
}

void pctl_table_print(const pctl_table *t, FILE *out)
{
    if (t->n_cols == 0) {
        return;
    }
    size_t width[PCTL_TABLE_MAX_COLS];
    size_t n_rows = (t->n_cells + t->n_cols - 1) / t->n_cols;
    for (size_t c = 0; c < t->n_cols; c++) {
        width[c] = strlen(t->header[c]);
    }
    for (size_t i = 0; i < t->n_cells; i++) {
        size_t len = t->cells[i] != NULL ? strlen(t->cells[i]) : 1;
        size_t c = i % t->n_cols;
        width[c] = len > width[c] ? len : width[c];
    }
    for (size_t r = 0; r <= n_rows; r++) {
        for (size_t c = 0; c < t->n_cols; c++) {
            size_t i = (r - 1) * t->n_cols + c;
            const char *cell = r == 0 ? t->header[c] : i < t->n_cells ? t->cells[i] : "";
            cell = cell != NULL ? cell : "?";
            bool last = c + 1 == t->n_cols;
            if (t->right[c]) {
                fprintf(out, "%*s%s", (int)width[c], cell, last ? "" : "  ");
            } else if (last) {
                fputs(cell, out);
            } else {
                fprintf(out, "%-*s  ", (int)width[c], cell);
            }
        }
        fputc('\n', out);
    }
}

void pctl_table_free(pctl_table *t)
{
    for (size_t i = 0; i < t->n_cells; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    free(t->spec);
    memset(t, 0, sizeof(*t));
}

void pctl_format_double(double v, char *buf, size_t cap)
{
    /* The fewest significant digits that read back as the same double: 2.3522 stays 2.3522
     * (17 digits would print 2.3521999999999998) and 359.9999 never rounds up to 360. Printing
     * is correctly rounded, so if p digits read back, so do p + 1: a bisection of [1, 17]
     * finds the fewest in four or five tries rather than up to seventeen (a listing of a
     * million vehicles prints four million numbers). */
    int lo = 1, hi = 17;
    if (v != v || v - v != 0) {
        lo = 17; /* NaN and infinities read back as themselves at any precision; keep them */
    }
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        snprintf(buf, cap, "%.*g", mid, v);
        if (strtod(buf, NULL) == v) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    snprintf(buf, cap, "%.*g", lo, v);
    if (strchr(buf, 'e') != NULL && (v >= 1 || v <= -1) && v < 1e17 && v > -1e17) {
        /* Few digits of a large number come out as "-9e+01": the value is then a whole
         * number (it read back), which reads better in full. */
        snprintf(buf, cap, "%.0f", v);
    }
    /* Keep a real looking like one ("4.0", not "4"), as Python and jq users expect. */
    if (strspn(buf, "-0123456789") == strlen(buf) && strlen(buf) + 3 <= cap) {
        strcat(buf, ".0");
    }
}

static void json_emit(const json_t *j, FILE *out)
{
    char buf[64];
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *value;
        bool first = true;
        fputc('{', out);
        json_object_foreach((json_t *)j, key, value)
        {
            json_t *k = json_string(key);
            if (!first) {
                fputc(',', out);
            }
            first = false;
            json_dumpf(k, out, JSON_ENCODE_ANY | JSON_COMPACT);
            json_decref(k);
            fputc(':', out);
            json_emit(value, out);
        }
        fputc('}', out);
        break;
    }
    case JSON_ARRAY:
        fputc('[', out);
        for (size_t i = 0; i < json_array_size(j); i++) {
            if (i > 0) {
                fputc(',', out);
            }
            json_emit(json_array_get(j, i), out);
        }
        fputc(']', out);
        break;
    case JSON_INTEGER:
        /* Every integer platoonctl prints is an unsigned quantity (ids, indexes, counts): one
         * above INT64_MAX travels through jansson's signed type by its bit pattern and is
         * printed exactly here (18446744073709551615, never -1). */
        fprintf(out, "%llu", (unsigned long long)(uint64_t)json_integer_value(j));
        break;
    case JSON_REAL:
        pctl_format_double(json_real_value(j), buf, sizeof(buf));
        fputs(buf, out);
        break;
    default:
        json_dumpf(j, out, JSON_ENCODE_ANY | JSON_COMPACT);
        break;
    }
}

void pctl_json_emit(const json_t *obj, FILE *out)
{
    json_emit(obj, out);
}

void pctl_json_print(json_t *obj)
{
    if (obj == NULL) {
        return;
    }
    json_emit(obj, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    json_decref(obj);
}

json_t *pctl_json_vehicle(const Platoon__V1__Vehicle *v)
{
    return json_pack("{s:I, s:f, s:f, s:f, s:f, s:I}", "id", (json_int_t)v->id, "latitude",
                     v->latitude, "longitude", v->longitude, "speed", v->speed, "heading",
                     v->heading, "revision", (json_int_t)v->revision);
}

json_t *pctl_json_members(Platoon__V1__Member **members, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n && arr != NULL; i++) {
        json_array_append_new(arr, json_pack("{s:I, s:s, s:b}", "id", (json_int_t)members[i]->id,
                                             "address", members[i]->address, "voter",
                                             members[i]->voter));
    }
    return arr;
}

const char *pctl_role_name(Platoon__V1__Role role)
{
    switch (role) {
    case PLATOON__V1__ROLE__ROLE_FOLLOWER:
        return "follower";
    case PLATOON__V1__ROLE__ROLE_CANDIDATE:
        return "candidate";
    case PLATOON__V1__ROLE__ROLE_LEADER:
        return "leader";
    case PLATOON__V1__ROLE__ROLE_LEARNER:
        return "learner";
    default:
        return "unknown";
    }
}

const char *pctl_grpc_code_name(int code)
{
    static const char *const names[] = {"OK",
                                        "CANCELLED",
                                        "UNKNOWN",
                                        "INVALID_ARGUMENT",
                                        "DEADLINE_EXCEEDED",
                                        "NOT_FOUND",
                                        "ALREADY_EXISTS",
                                        "PERMISSION_DENIED",
                                        "RESOURCE_EXHAUSTED",
                                        "FAILED_PRECONDITION",
                                        "ABORTED",
                                        "OUT_OF_RANGE",
                                        "UNIMPLEMENTED",
                                        "INTERNAL",
                                        "UNAVAILABLE",
                                        "DATA_LOSS",
                                        "UNAUTHENTICATED"};
    if (code < 0 || (size_t)code >= sizeof(names) / sizeof(names[0])) {
        return "UNKNOWN";
    }
    return names[code];
}

void pctl_vehicle_table(pctl_table *t, Platoon__V1__Vehicle **vehicles, size_t n)
{
    pctl_table_init(t, ">ID|>LATITUDE|>LONGITUDE|>SPEED m/s|>HEADING|>REVISION");
    for (size_t i = 0; i < n; i++) {
        const Platoon__V1__Vehicle *v = vehicles[i];
        pctl_table_cell(t, "%llu", (unsigned long long)v->id);
        char lat[64], lon[64], speed[64], heading[64];
        pctl_format_double(v->latitude, lat, sizeof(lat));
        pctl_format_double(v->longitude, lon, sizeof(lon));
        pctl_format_double(v->speed, speed, sizeof(speed));
        pctl_format_double(v->heading, heading, sizeof(heading));
        pctl_table_cell(t, "%s", lat);
        pctl_table_cell(t, "%s", lon);
        pctl_table_cell(t, "%s", speed);
        pctl_table_cell(t, "%s", heading);
        pctl_table_cell(t, "%llu", (unsigned long long)v->revision);
    }
}

void pctl_print_members(Platoon__V1__Member **members, size_t n, FILE *out)
{
    pctl_table t;
    pctl_table_init(&t, ">ID|ADDRESS|KIND");
    for (size_t i = 0; i < n; i++) {
        pctl_table_cell(&t, "%llu", (unsigned long long)members[i]->id);
        pctl_table_cell(&t, "%s", members[i]->address);
        pctl_table_cell(&t, "%s", members[i]->voter ? "voter" : "learner");
    }
    pctl_table_print(&t, out);
    pctl_table_free(&t);
}

static int exit_code_of(const pctl_status *st)
{
    if (!st->connected) {
        return PCTL_EXIT_UNREACHABLE;
    }
    switch (st->code) {
    case GRPC_STATUS_INVALID_ARGUMENT:
        return PCTL_EXIT_USAGE;
    case GRPC_STATUS_NOT_FOUND:
        return PCTL_EXIT_NOT_FOUND;
    case GRPC_STATUS_UNAVAILABLE:
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        return PCTL_EXIT_UNREACHABLE;
    default:
        return PCTL_EXIT_SERVER;
    }
}

static void emit(const pctl_opts *o, int code, const char *kind, const char *message)
{
    fprintf(stderr, "platoonctl: %s\n", message);
    if (o != NULL && o->json) {
        pctl_json_print(json_pack("{s:{s:s, s:s, s:i}}", "error", "kind", kind, "message", message,
                                  "exit_code", code));
    }
}

int pctl_report(const pctl_opts *o, const char *what, const pctl_status *st)
{
    int code = exit_code_of(st);
    char line[1024];
    if (!st->connected) {
        /* A TLS mismatch looks like a dead endpoint from here: the handshake just fails. */
        bool tls = o->cacert != NULL && o->cacert[0] != '\0';
        const char *hint = tls ? " (or its TLS handshake failed: check --cacert, --cert and --key)"
                               : " (a cluster with TLS needs --cacert, --cert and --key)";
        if (st->message[0] != '\0' && st->code == GRPC_STATUS_UNAVAILABLE) {
            /* Each endpoint's cause; the TLS hint only where TCP got through. */
            snprintf(line, sizeof(line), "%s: cluster unreachable: %s%s", what, st->message,
                     strstr(st->message, "accepts TCP") != NULL ? hint : "");
        } else {
            snprintf(line, sizeof(line),
                     "%s: cluster unreachable: no endpoint of %s answered within %.1fs%s", what,
                     o->endpoints, (double)o->timeout_ms / 1000.0, hint);
        }
    } else if (code == PCTL_EXIT_USAGE) {
        snprintf(line, sizeof(line), "%s: invalid value: %s", what, st->message);
    } else if (code == PCTL_EXIT_NOT_FOUND) {
        snprintf(line, sizeof(line), "%s: not found: %s", what, st->message);
    } else {
        snprintf(line, sizeof(line), "%s: %s from %s: %s", what, pctl_grpc_code_name(st->code),
                 st->endpoint, st->message[0] ? st->message : "(no message)");
    }
    const char *kind = code == PCTL_EXIT_USAGE         ? "invalid"
                       : code == PCTL_EXIT_NOT_FOUND   ? "not_found"
                       : code == PCTL_EXIT_UNREACHABLE ? "unreachable"
                                                       : "server";
    emit(o, code, kind, line);
    return code;
}

int pctl_usage_error(const pctl_opts *o, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    size_t len = strlen(line);
    snprintf(line + len, sizeof(line) - len, " (see platoonctl --help)");
    emit(o, PCTL_EXIT_USAGE, "usage", line);
    return PCTL_EXIT_USAGE;
}

int pctl_fail(const pctl_opts *o, int code, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    emit(o, code, code == PCTL_EXIT_NOT_FOUND ? "not_found" : "server", line);
    return code;
}
