/*
 * platoonctl vehicle update|get|delete|list. A mutation opens an exactly-once session, sends
 * its request as the session's sequence 1 and closes the session: the request is then safe to
 * retry on another endpoint, since the cluster applies it at most once (a retry of an applied
 * one gets the original answer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "platoon/error.h"

#include "platoon/vehicle.h"

#include "args.h"
#include "ctl.h"
#include "output.h"
#include "rpc.h"

#define NFLAGS(f) (sizeof(f) / sizeof((f)[0]))

/* Vehicles per GetPlatoon page: the server's maximum (fewest round trips; about 0.5 MB). */
#define PCTL_PAGE_SIZE_MAX     10000u
#define PCTL_PAGE_SIZE_DEFAULT PCTL_PAGE_SIZE_MAX

static int parse_id(const pctl_opts *o, size_t n_pos, const char **pos, const char *cmd,
                    uint64_t *id)
{
    /* Defined on every path, so that callers need not rely on the error paths returning
     * non-zero (they do, but that is decided in another file). */
    *id = 0;
    if (n_pos != 1) {
        return pctl_usage_error(o, "%s: expected one vehicle ID", cmd);
    }
    if (!pctl_parse_u64(pos[0], 1, UINT64_MAX, id)) {
        return pctl_usage_error(o, "%s: vehicle ID '%s' must be a positive integer", cmd, pos[0]);
    }
    return 0;
}

static Platoon__V1__ReadConsistency consistency(bool stale)
{
    return stale ? PLATOON__V1__READ_CONSISTENCY__READ_CONSISTENCY_STALE
                 : PLATOON__V1__READ_CONSISTENCY__READ_CONSISTENCY_LINEARIZABLE;
}

static void print_vehicle(const pctl_opts *o, const Platoon__V1__Vehicle *v)
{
    if (o->json) {
        pctl_json_print(pctl_json_vehicle(v));
        return;
    }
    pctl_table t;
    Platoon__V1__Vehicle *one = (Platoon__V1__Vehicle *)v;
    pctl_vehicle_table(&t, &one, 1);
    pctl_table_print(&t, stdout);
    pctl_table_free(&t);
}

int pctl_vehicle_update(const pctl_opts *o, pctl_client *c, int argc, char **argv)
{
    pctl_flag flags[] = {
        {.name = "--lat"}, {.name = "--lon"}, {.name = "--speed"}, {.name = "--heading"}};
    const char *names[] = {"latitude", "longitude", "speed", "heading"};
    const char *pos[1];
    size_t n_pos;
    char err[256];
    if (pctl_parse_args(argc, argv, flags, NFLAGS(flags), pos, 1, &n_pos, err, sizeof(err))) {
        return pctl_usage_error(o, "vehicle update: %s", err);
    }
    uint64_t id;
    int rc = parse_id(o, n_pos, pos, "vehicle update", &id);
    if (rc != 0) {
        return rc;
    }
    double val[4];
    for (size_t i = 0; i < 4; i++) {
        if (!flags[i].seen) {
            return pctl_usage_error(o,
                                    "vehicle update: %s is required (the update replaces the "
                                    "whole state)",
                                    flags[i].name);
        }
        if (!pctl_parse_double(flags[i].value, &val[i])) {
            return pctl_usage_error(o, "vehicle update: %s '%s' is not a number (%s)",
                                    flags[i].name, flags[i].value, names[i]);
        }
    }
    Platoon__V1__Vehicle v = PLATOON__V1__VEHICLE__INIT;
    v.id = id;
    v.latitude = val[0];
    v.longitude = val[1];
    v.speed = val[2];
    v.heading = val[3];
    Platoon__V1__UpdateVehicleRequest req = PLATOON__V1__UPDATE_VEHICLE_REQUEST__INIT;
    req.vehicle = &v;
    req.sequence = 1;
    Platoon__V1__UpdateVehicleResponse *resp = NULL;
    pctl_status st;
    char what[64];
    snprintf(what, sizeof(what), "vehicle update %llu", (unsigned long long)id);
    /* The server checks it too; checked first here, a bad value costs no session. */
    pveh_vehicle check = {.id = id,
                          .latitude = v.latitude,
                          .longitude = v.longitude,
                          .speed = v.speed,
                          .heading = v.heading};
    char why[PVEH_WHY_MAX];
    if (pveh_validate_vehicle(&check, why, sizeof(why)) != 0) {
        return pctl_fail(o, PCTL_EXIT_USAGE, "%s: invalid value: %s", what, why);
    }
    if (pctl_open_session(c, &req.client_id, &st) != 0) {
        return pctl_report(o, what, &st);
    }
    int failed =
        pctl_call(c, PCTL_M_UPDATE, &req.base, &platoon__v1__update_vehicle_response__descriptor,
                  true, (ProtobufCMessage **)&resp, &st);
    pctl_close_session(c, req.client_id);
    if (failed) {
        return pctl_report(o, what, &st);
    }
    if (resp->vehicle != NULL) {
        print_vehicle(o, resp->vehicle);
    }
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return PCTL_EXIT_OK;
}

int pctl_vehicle_get(const pctl_opts *o, pctl_client *c, int argc, char **argv)
{
    pctl_flag flags[] = {{.name = "--stale", .is_switch = true}};
    const char *pos[1];
    size_t n_pos;
    char err[256];
    if (pctl_parse_args(argc, argv, flags, NFLAGS(flags), pos, 1, &n_pos, err, sizeof(err))) {
        return pctl_usage_error(o, "vehicle get: %s", err);
    }
    uint64_t id;
    int rc = parse_id(o, n_pos, pos, "vehicle get", &id);
    if (rc != 0) {
        return rc;
    }
    Platoon__V1__GetVehicleRequest req = PLATOON__V1__GET_VEHICLE_REQUEST__INIT;
    req.id = id;
    req.consistency = consistency(flags[0].seen);
    Platoon__V1__GetVehicleResponse *resp = NULL;
    pctl_status st;
    if (pctl_call(c, PCTL_M_GET, &req.base, &platoon__v1__get_vehicle_response__descriptor, true,
                  (ProtobufCMessage **)&resp, &st) != 0) {
        char what[64];
        snprintf(what, sizeof(what), "vehicle get %llu", (unsigned long long)id);
        return pctl_report(o, what, &st);
    }
    if (resp->vehicle != NULL) {
        print_vehicle(o, resp->vehicle);
    }
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return PCTL_EXIT_OK;
}

int pctl_vehicle_delete(const pctl_opts *o, pctl_client *c, int argc, char **argv)
{
    const char *pos[1];
    size_t n_pos;
    char err[256];
    if (pctl_parse_args(argc, argv, NULL, 0, pos, 1, &n_pos, err, sizeof(err))) {
        return pctl_usage_error(o, "vehicle delete: %s", err);
    }
    uint64_t id;
    int rc = parse_id(o, n_pos, pos, "vehicle delete", &id);
    if (rc != 0) {
        return rc;
    }
    Platoon__V1__DeleteVehicleRequest req = PLATOON__V1__DELETE_VEHICLE_REQUEST__INIT;
    req.id = id;
    req.sequence = 1;
    Platoon__V1__DeleteVehicleResponse *resp = NULL;
    pctl_status st;
    char what[64];
    snprintf(what, sizeof(what), "vehicle delete %llu", (unsigned long long)id);
    if (pctl_open_session(c, &req.client_id, &st) != 0) {
        return pctl_report(o, what, &st);
    }
    int failed =
        pctl_call(c, PCTL_M_DELETE, &req.base, &platoon__v1__delete_vehicle_response__descriptor,
                  true, (ProtobufCMessage **)&resp, &st);
    pctl_close_session(c, req.client_id);
    if (failed) {
        return pctl_report(o, what, &st);
    }
    bool existed = resp->existed;
    unsigned long long revision = (unsigned long long)resp->revision;
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    if (!existed) {
        /* The delete is recorded (it has a revision) but there was nothing to delete: a
         * script usually wants to know, as with `vehicle get`. */
        return pctl_fail(o, PCTL_EXIT_NOT_FOUND, "vehicle delete %llu: not found: no such vehicle",
                         (unsigned long long)id);
    }
    if (o->json) {
        pctl_json_print(json_pack("{s:I, s:b, s:I}", "id", (json_int_t)id, "existed", 1, "revision",
                                  (json_int_t)revision));
    } else {
        printf("vehicle %llu deleted at revision %llu\n", (unsigned long long)id, revision);
    }
    return PCTL_EXIT_OK;
}

/* A whole platoon gathered page by page: the answers, and every vehicle in id order. */
typedef struct platoon_pages {
    Platoon__V1__GetPlatoonResponse **pages;
    size_t n_pages, cap_pages;
    Platoon__V1__Vehicle **vehicles; /* pointers into @pages */
    size_t n_vehicles, cap_vehicles;
    uint64_t revision, leader_id;
    char endpoint[PCTL_ADDRESS_MAX]; /* the node that served the listing */
} platoon_pages;

static void pages_free(platoon_pages *p)
{
    for (size_t i = 0; i < p->n_pages; i++) {
        protobuf_c_message_free_unpacked(&p->pages[i]->base, NULL);
    }
    free(p->pages);
    free(p->vehicles);
    memset(p, 0, sizeof(*p));
}

static bool pages_add(platoon_pages *p, Platoon__V1__GetPlatoonResponse *resp)
{
    if (p->n_pages == p->cap_pages) {
        size_t cap = p->cap_pages ? 2 * p->cap_pages : 16;
        void *np = realloc(p->pages, cap * sizeof(*p->pages));
        if (np == NULL) {
            return false;
        }
        p->pages = np;
        p->cap_pages = cap;
    }
    if (p->n_vehicles + resp->n_vehicles > p->cap_vehicles) {
        size_t cap = p->cap_vehicles ? p->cap_vehicles : 1024;
        while (cap < p->n_vehicles + resp->n_vehicles) {
            cap *= 2;
        }
        void *nv = realloc(p->vehicles, cap * sizeof(*p->vehicles));
        if (nv == NULL) {
            return false;
        }
        p->vehicles = nv;
        p->cap_vehicles = cap;
    }
    p->pages[p->n_pages++] = resp;
    if (resp->n_vehicles > 0) { /* an empty page has no array at all */
        memcpy(&p->vehicles[p->n_vehicles], resp->vehicles,
               resp->n_vehicles * sizeof(*p->vehicles));
        p->n_vehicles += resp->n_vehicles;
    }
    p->leader_id = resp->leader_id;
    return true;
}

/* Why a listing broke off midway and is worth starting again: the node that holds it dropped
 * it (expired, restarted) or could not be reached. */
static bool restartable(const pctl_status *st)
{
    return !st->connected || st->code == 9 /* FAILED_PRECONDITION */ ||
           st->code == 14 /* UNAVAILABLE */ || st->code == 4 /* DEADLINE_EXCEEDED */;
}

/*
 * Reads the whole platoon: the first page from whichever endpoint answers, the next ones from
 * that same node (it holds the listing), following next_page_token until it is empty. Every
 * page is at the revision of the first, so the result is one consistent revision. A listing
 * that breaks off midway is started again from the beginning (a few times), never stitched
 * from two revisions. Returns 0, or PT_EIO with *@st saying why.
 */
static int read_platoon(const pctl_opts *o, pctl_client *c, bool stale, uint32_t page_size,
                        platoon_pages *out, pctl_status *st)
{
    for (int attempt = 0;; attempt++) {
        Platoon__V1__GetPlatoonRequest req = PLATOON__V1__GET_PLATOON_REQUEST__INIT;
        req.consistency = consistency(stale);
        req.page_size = page_size;
        Platoon__V1__GetPlatoonResponse *resp = NULL;
        if (pctl_call(c, PCTL_M_PLATOON, &req.base, &platoon__v1__get_platoon_response__descriptor,
                      true, (ProtobufCMessage **)&resp, st) != 0) {
            return PT_EIO;
        }
        memset(out, 0, sizeof(*out));
        snprintf(out->endpoint, sizeof(out->endpoint), "%s", st->endpoint);
        out->revision = resp->revision;
        int rc = 0;
        for (;;) {
            if (!pages_add(out, resp)) {
                protobuf_c_message_free_unpacked(&resp->base, NULL);
                snprintf(st->message, sizeof(st->message), "out of memory");
                st->code = 8; /* RESOURCE_EXHAUSTED */
                rc = PT_EIO;
                break;
            }
            const char *token = resp->next_page_token;
            if (token == NULL || token[0] == '\0') {
                return 0;
            }
            req.page_token = (char *)token;
            resp = NULL;
            if (pctl_call_at(c, out->endpoint, PCTL_M_PLATOON, &req.base,
                             &platoon__v1__get_platoon_response__descriptor,
                             pctl_now_ms() + o->timeout_ms, (ProtobufCMessage **)&resp, st) != 0) {
                rc = PT_EIO;
                break;
            }
            if (resp->revision != out->revision) {
                /* A server that broke the promise of one revision: refuse to mix them. */
                snprintf(st->message, sizeof(st->message),
                         "a page came at revision %llu instead of %llu",
                         (unsigned long long)resp->revision, (unsigned long long)out->revision);
                protobuf_c_message_free_unpacked(&resp->base, NULL);
                st->code = 13; /* INTERNAL */
                rc = PT_EIO;
                break;
            }
        }
        pages_free(out);
        if (rc != 0 && (!restartable(st) || attempt >= 2 || pctl_interrupted)) {
            return rc;
        }
    }
}

static void show_platoon(const pctl_opts *o, const platoon_pages *p, bool watching)
{
    if (o->json) {
        /* Written piece by piece, the same bytes as one object {revision, leader_id,
         * vehicles}: a tree of millions of vehicles would cost far more than their answers. */
        printf("{\"revision\":%llu,\"leader_id\":%llu,\"vehicles\":[",
               (unsigned long long)p->revision, (unsigned long long)p->leader_id);
        for (size_t i = 0; i < p->n_vehicles; i++) {
            json_t *v = pctl_json_vehicle(p->vehicles[i]);
            if (i > 0) {
                fputc(',', stdout);
            }
            pctl_json_emit(v, stdout);
            json_decref(v);
        }
        fputs("]}\n", stdout);
        fflush(stdout);
        return;
    }
    if (watching) {
        /* Home the cursor and clear the screen so that the table refreshes in place. */
        fputs("\033[H\033[2J", stdout);
    }
    printf("%zu vehicle%s at revision %llu (leader %llu, answered by %s)\n", p->n_vehicles,
           p->n_vehicles == 1 ? "" : "s", (unsigned long long)p->revision,
           (unsigned long long)p->leader_id, p->endpoint);
    pctl_table t;
    pctl_vehicle_table(&t, p->vehicles, p->n_vehicles);
    pctl_table_print(&t, stdout);
    pctl_table_free(&t);
    fflush(stdout);
}

int pctl_vehicle_list(const pctl_opts *o, pctl_client *c, int argc, char **argv)
{
    pctl_flag flags[] = {{.name = "--stale", .is_switch = true},
                         {.name = "--watch", .is_switch = true},
                         {.name = "--interval"},
                         {.name = "--count"},
                         {.name = "--page-size"}};
    const char *pos[1];
    size_t n_pos;
    char err[256];
    if (pctl_parse_args(argc, argv, flags, NFLAGS(flags), pos, 0, &n_pos, err, sizeof(err))) {
        return pctl_usage_error(o, "vehicle list: %s", err);
    }
    int64_t interval_ms = 1000;
    uint64_t count = flags[1].seen ? UINT64_MAX : 1;
    uint64_t page_size = PCTL_PAGE_SIZE_DEFAULT;
    if (flags[2].seen && !pctl_parse_seconds(flags[2].value, 50, 3600000, &interval_ms)) {
        return pctl_usage_error(o, "vehicle list: --interval must be seconds in [0.05, 3600]");
    }
    if (flags[3].seen && !pctl_parse_u64(flags[3].value, 1, UINT64_MAX, &count)) {
        return pctl_usage_error(o, "vehicle list: --count must be a positive integer");
    }
    if (flags[4].seen && !pctl_parse_u64(flags[4].value, 1, PCTL_PAGE_SIZE_MAX, &page_size)) {
        return pctl_usage_error(o, "vehicle list: --page-size must be an integer in [1, %u]",
                                PCTL_PAGE_SIZE_MAX);
    }
    bool watching = flags[1].seen && !o->json && isatty(fileno(stdout));
    int rc = PCTL_EXIT_OK;
    /* --watch runs until Ctrl-C (or --count refreshes); a failed refresh is shown and the
     * watch goes on, since the point of watching is to see the cluster recover. */
    for (uint64_t i = 0; i < count && !pctl_interrupted; i++) {
        int64_t next = pctl_now_ms() + interval_ms;
        platoon_pages p;
        pctl_status st;
        if (read_platoon(o, c, flags[0].seen, (uint32_t)page_size, &p, &st) != 0) {
            rc = pctl_report(o, "vehicle list", &st);
        } else {
            rc = PCTL_EXIT_OK;
            show_platoon(o, &p, watching);
            pages_free(&p);
        }
        if (i + 1 < count) {
            int64_t left = next - pctl_now_ms();
            pctl_sleep_ms(left > 0 ? left : 0);
        }
    }
    return rc;
}
