/*
 * platoonctl vehicle update|get|delete|list. A mutation opens an exactly-once session, sends
 * its request as the session's sequence 1 and closes the session: the request is then safe to
 * retry on another endpoint, since the cluster applies it at most once (a retry of an applied
 * one gets the original answer).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "ctl.h"
#include "output.h"
#include "rpc.h"

#define NFLAGS(f) (sizeof(f) / sizeof((f)[0]))

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

static void show_platoon(const pctl_opts *o, const Platoon__V1__GetPlatoonResponse *p,
                         const char *endpoint, bool watching)
{
    if (o->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < p->n_vehicles; i++) {
            json_array_append_new(arr, pctl_json_vehicle(p->vehicles[i]));
        }
        pctl_json_print(json_pack("{s:I, s:I, s:o}", "revision", (json_int_t)p->revision,
                                  "leader_id", (json_int_t)p->leader_id, "vehicles", arr));
        return;
    }
    if (watching) {
        /* Home the cursor and clear the screen so that the table refreshes in place. */
        fputs("\033[H\033[2J", stdout);
    }
    printf("%zu vehicle%s at revision %llu (leader %llu, answered by %s)\n", p->n_vehicles,
           p->n_vehicles == 1 ? "" : "s", (unsigned long long)p->revision,
           (unsigned long long)p->leader_id, endpoint);
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
                         {.name = "--count"}};
    const char *pos[1];
    size_t n_pos;
    char err[256];
    if (pctl_parse_args(argc, argv, flags, NFLAGS(flags), pos, 0, &n_pos, err, sizeof(err))) {
        return pctl_usage_error(o, "vehicle list: %s", err);
    }
    int64_t interval_ms = 1000;
    uint64_t count = flags[1].seen ? UINT64_MAX : 1;
    if (flags[2].seen && !pctl_parse_seconds(flags[2].value, 50, 3600000, &interval_ms)) {
        return pctl_usage_error(o, "vehicle list: --interval must be seconds in [0.05, 3600]");
    }
    if (flags[3].seen && !pctl_parse_u64(flags[3].value, 1, UINT64_MAX, &count)) {
        return pctl_usage_error(o, "vehicle list: --count must be a positive integer");
    }
    Platoon__V1__GetPlatoonRequest req = PLATOON__V1__GET_PLATOON_REQUEST__INIT;
    req.consistency = consistency(flags[0].seen);
    bool watching = flags[1].seen && !o->json && isatty(fileno(stdout));
    int rc = PCTL_EXIT_OK;
    /* --watch runs until Ctrl-C (or --count refreshes); a failed refresh is shown and the
     * watch goes on, since the point of watching is to see the cluster recover. */
    for (uint64_t i = 0; i < count && !pctl_interrupted; i++) {
        int64_t next = pctl_now_ms() + interval_ms;
        Platoon__V1__GetPlatoonResponse *resp = NULL;
        pctl_status st;
        if (pctl_call(c, PCTL_M_PLATOON, &req.base, &platoon__v1__get_platoon_response__descriptor,
                      true, (ProtobufCMessage **)&resp, &st) != 0) {
            rc = pctl_report(o, "vehicle list", &st);
        } else {
            rc = PCTL_EXIT_OK;
            show_platoon(o, resp, st.endpoint, watching);
            protobuf_c_message_free_unpacked(&resp->base, NULL);
        }
        if (i + 1 < count) {
            int64_t left = next - pctl_now_ms();
            pctl_sleep_ms(left > 0 ? left : 0);
        }
    }
    return rc;
}
