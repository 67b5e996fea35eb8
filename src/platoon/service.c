/*
 * The platoon.v1.Platoon service: gRPC requests in, vehicle commands and queries out.
 *
 * The handlers run on the node's loop thread. They validate first (so a bad request is refused
 * by whichever node receives it, naming the field), then either propose on the leader, forward
 * to it, or read. The leader stamps its wall clock into each command: session expiry then
 * depends only on the log, identically on every node.
 */
#include <stdio.h>
#include <stdlib.h>

#include "common/arena_protobuf.h"
#include "platoon/codec.h"
#include "platoon/service.h"
#include "platoon/state.h"
#include "platoon/watch.h"
#include "platoon/v1/platoon.pb-c.h"

static void to_proto(const pveh_vehicle *v, Platoon__V1__Vehicle *out)
{
    platoon__v1__vehicle__init(out);
    out->id = v->id;
    out->latitude = v->latitude;
    out->longitude = v->longitude;
    out->speed = v->speed;
    out->heading = v->heading;
    out->revision = v->revision;
}

/* The answer of the state machine to a command, as a gRPC answer. */
static bool result_ok(pnode_request *req, int code, const char *message, const uint8_t *data,
                      size_t len, pveh_result *out)
{
    if (code != PNODE_OK) {
        pnode_fail(req, code, message);
        return false;
    }
    if (pveh_result_decode(data, len, out) != 0) {
        pnode_fail(req, PNODE_INTERNAL, "undecodable result from the state machine");
        return false;
    }
    char why[240];
    switch (out->status) {
    case PVEH_STATUS_OK:
        return true;
    case PVEH_STATUS_STALE_SEQUENCE:
        snprintf(why, sizeof(why),
                 "sequence is older than this client's last applied sequence (%llu)",
                 (unsigned long long)out->last_sequence);
        pnode_fail(req, PNODE_FAILED_PRECONDITION, why);
        return false;
    case PVEH_STATUS_SEQUENCE_CONFLICT:
        snprintf(why, sizeof(why),
                 "sequence %llu of this client was already used for a different request; "
                 "a new request needs a new sequence",
                 (unsigned long long)out->last_sequence);
        pnode_fail(req, PNODE_ALREADY_EXISTS, why);
        return false;
    case PVEH_STATUS_UNKNOWN_SESSION:
        pnode_fail(req, PNODE_NOT_FOUND,
                   "no session has this client_id (closed, expired after 10 minutes unused, "
                   "evicted, or never opened): nothing was applied; open a new session with "
                   "OpenSession");
        return false;
    case PVEH_STATUS_FOREIGN_SESSION:
        pnode_fail(req, PNODE_PERMISSION_DENIED,
                   "this client_id is another principal's session: open your own with "
                   "OpenSession");
        return false;
    case PVEH_STATUS_PLATOON_FULL:
        pnode_fail(req, PNODE_RESOURCE_EXHAUSTED,
                   "the platoon has the most vehicles this cluster allows (--max-vehicles): "
                   "delete one before adding another");
        return false;
    case PVEH_STATUS_SESSIONS_FULL:
        pnode_fail(req, PNODE_RESOURCE_EXHAUSTED,
                   "the session table is full of other clients' live sessions; retry later");
        return false;
    default:
        pnode_fail(req, PNODE_INTERNAL, "unknown status from the state machine");
        return false;
    }
}

/* The answer to a mutation, a session's opening or its closing, once the state machine
 * applied it (or the request failed on the way). */
static void command_done(pnode *node, void *ctx, pnode_request *req, int code, const char *message,
                         const uint8_t *data, size_t len)
{
    (void)node;
    (void)ctx;
    pveh_result r;
    if (!result_ok(req, code, message, data, len, &r)) {
        return;
    }
    switch (r.op) {
    case PVEH_OP_UPDATE: {
        Platoon__V1__Vehicle v;
        to_proto(&r.vehicle, &v);
        Platoon__V1__UpdateVehicleResponse resp = PLATOON__V1__UPDATE_VEHICLE_RESPONSE__INIT;
        resp.vehicle = &v;
        pnode_reply_message(req, &resp.base);
        break;
    }
    case PVEH_OP_DELETE: {
        Platoon__V1__DeleteVehicleResponse resp = PLATOON__V1__DELETE_VEHICLE_RESPONSE__INIT;
        resp.existed = r.existed;
        resp.revision = r.revision;
        pnode_reply_message(req, &resp.base);
        break;
    }
    case PVEH_OP_OPEN_SESSION: {
        Platoon__V1__OpenSessionResponse resp = PLATOON__V1__OPEN_SESSION_RESPONSE__INIT;
        resp.client_id = r.client_id;
        pnode_reply_message(req, &resp.base);
        break;
    }
    default: {
        Platoon__V1__CloseSessionResponse resp = PLATOON__V1__CLOSE_SESSION_RESPONSE__INIT;
        resp.existed = r.existed;
        pnode_reply_message(req, &resp.base);
        break;
    }
    }
}

/* Proposes @c (stamped with the caller's principal as it was prepared) on the leader, stamped
 * with the leader's clock and the leader's limits (so that the leader's configuration decides,
 * identically on every node), or forwards the request to the leader, which builds the command
 * itself. */
static void propose_or_forward(pnode *node, const pveh_sm *sm, pnode_request *req, pveh_command *c)
{
    if (!pnode_is_leader(node)) {
        pnode_forward(node, req);
        return;
    }
    c->timestamp_ms = pnode_wall_ms();
    if (c->op == PVEH_OP_UPDATE) {
        c->limit = sm->opts.max_vehicles;
    } else if (c->op == PVEH_OP_OPEN_SESSION) {
        c->limit = sm->opts.max_sessions_per_principal;
    }
    uint8_t cmd[PVEH_CMD_MAX_LEN]; /* pnode_submit copies it into the log */
    size_t cmd_len = 0;
    if (pveh__command_put(cmd, c, &cmd_len) != 0) {
        /* The request was checked as it was prepared: only a bug leads here. */
        pnode_fail(req, PNODE_INTERNAL, "the command could not be encoded");
        return;
    }
    pnode_submit(node, req, cmd, cmd_len, command_done, NULL);
}

/* ============================================================================================
 * Preparing requests
 *
 * Decoding and checking a request runs on the network thread that received it (pnode_method's
 * prepare): the loop, one thread for the whole node, only proposes or reads. A prepare function
 * sees the caller and the bytes, never the state machine's state. Requests are decoded into an
 * arena on that thread's stack (common/arena_protobuf.h): decoding one allocates nothing.
 * ========================================================================================== */

/* A certificate bound to one vehicle may write that vehicle only (docs/security.md): a
 * compromised or faulty vehicle cannot move another. */
static int scope_check(const pnode_principal *p, uint64_t vehicle_id, char *why, size_t cap)
{
    if (!p->authenticated || !p->has_vehicle || p->vehicle_id == vehicle_id) {
        return PNODE_OK;
    }
    snprintf(why, cap, "'%s' may write vehicle %llu only, not vehicle %llu", p->name,
             (unsigned long long)p->vehicle_id, (unsigned long long)vehicle_id);
    return PNODE_PERMISSION_DENIED;
}

/* A session's sequences start at 1 (thesis §6.3 numbers a client's commands from the
 * registration on); without a session there is no sequence to give. */
static int session_check(uint64_t client_id, uint64_t sequence, char *why, size_t cap)
{
    if (client_id != 0 && sequence == 0) {
        snprintf(why, cap, "sequence must be at least 1 with a client_id");
        return PNODE_INVALID_ARGUMENT;
    }
    return PNODE_OK;
}

static int refuse(int code, const char *message, char *why, size_t cap)
{
    snprintf(why, cap, "%s", message);
    return code;
}

/* The prepared form of a mutation: its command, stamped with the caller's principal key (a
 * hash, worth doing off the loop); the leader adds its clock and its limits as it proposes. */
static int command_prepared(const pnode_principal *who, const pveh_command *c, void **out,
                            char *why, size_t cap)
{
    pveh_command *p = malloc(sizeof(*p));
    if (p == NULL) {
        return refuse(PNODE_RESOURCE_EXHAUSTED, "out of memory", why, cap);
    }
    *p = *c;
    p->principal = pveh_principal_key(who->authenticated ? who->name : "");
    *out = p;
    return PNODE_OK;
}

/* An update's or a delete's command @c, its vehicle valid: its session fields and the
 * caller's scope checked, then prepared. */
static int vehicle_command_prepared(const pnode_principal *who, const pveh_command *c, void **out,
                                    char *why, size_t cap)
{
    int code = session_check(c->client_id, c->sequence, why, cap);
    if (code == PNODE_OK) {
        code = scope_check(who, c->id, why, cap);
    }
    return code == PNODE_OK ? command_prepared(who, c, out, why, cap) : code;
}

static int prepare_update(void *app, const pnode_principal *who, const uint8_t *data, size_t len,
                          void **out, char *why, size_t cap)
{
    (void)app;
    pt_decode_arena da;
    Platoon__V1__UpdateVehicleRequest *in =
        platoon__v1__update_vehicle_request__unpack(pt__decode_arena_init(&da), len, data);
    if (in == NULL) {
        pt__decode_arena_release(&da);
        return refuse(PNODE_INVALID_ARGUMENT, "malformed UpdateVehicleRequest", why, cap);
    }
    if (in->vehicle == NULL) {
        pt__decode_arena_release(&da);
        return refuse(PNODE_INVALID_ARGUMENT, "vehicle is required", why, cap);
    }
    pveh_command c = {.op = PVEH_OP_UPDATE,
                      .client_id = in->client_id,
                      .sequence = in->sequence,
                      .vehicle = {.id = in->vehicle->id,
                                  .latitude = in->vehicle->latitude,
                                  .longitude = in->vehicle->longitude,
                                  .speed = in->vehicle->speed,
                                  .heading = in->vehicle->heading},
                      .id = in->vehicle->id};
    pt__decode_arena_release(&da);
    if (pveh_validate_vehicle(&c.vehicle, why, cap) != 0) {
        return PNODE_INVALID_ARGUMENT;
    }
    return vehicle_command_prepared(who, &c, out, why, cap);
}

static int prepare_delete(void *app, const pnode_principal *who, const uint8_t *data, size_t len,
                          void **out, char *why, size_t cap)
{
    (void)app;
    pt_decode_arena da;
    Platoon__V1__DeleteVehicleRequest *in =
        platoon__v1__delete_vehicle_request__unpack(pt__decode_arena_init(&da), len, data);
    if (in == NULL) {
        pt__decode_arena_release(&da);
        return refuse(PNODE_INVALID_ARGUMENT, "malformed DeleteVehicleRequest", why, cap);
    }
    pveh_command c = {
        .op = PVEH_OP_DELETE, .client_id = in->client_id, .sequence = in->sequence, .id = in->id};
    pt__decode_arena_release(&da);
    if (pveh_validate_id(c.id, why, cap) != 0) {
        return PNODE_INVALID_ARGUMENT;
    }
    return vehicle_command_prepared(who, &c, out, why, cap);
}

static int prepare_open(void *app, const pnode_principal *who, const uint8_t *data, size_t len,
                        void **out, char *why, size_t cap)
{
    (void)app;
    pt_decode_arena da;
    Platoon__V1__OpenSessionRequest *in =
        platoon__v1__open_session_request__unpack(pt__decode_arena_init(&da), len, data);
    if (in == NULL) {
        pt__decode_arena_release(&da);
        return refuse(PNODE_INVALID_ARGUMENT, "malformed OpenSessionRequest", why, cap);
    }
    pt__decode_arena_release(&da);
    pveh_command c = {.op = PVEH_OP_OPEN_SESSION};
    return command_prepared(who, &c, out, why, cap);
}

static int prepare_close(void *app, const pnode_principal *who, const uint8_t *data, size_t len,
                         void **out, char *why, size_t cap)
{
    (void)app;
    pt_decode_arena da;
    Platoon__V1__CloseSessionRequest *in =
        platoon__v1__close_session_request__unpack(pt__decode_arena_init(&da), len, data);
    if (in == NULL) {
        pt__decode_arena_release(&da);
        return refuse(PNODE_INVALID_ARGUMENT, "malformed CloseSessionRequest", why, cap);
    }
    uint64_t client_id = in->client_id;
    pt__decode_arena_release(&da);
    if (client_id == 0) {
        return refuse(PNODE_INVALID_ARGUMENT, "client_id must not be 0", why, cap);
    }
    pveh_command c = {.op = PVEH_OP_CLOSE_SESSION, .client_id = client_id};
    return command_prepared(who, &c, out, why, cap);
}

/* UpdateVehicle, DeleteVehicle, OpenSession, CloseSession: the prepared command, proposed. */
static void handle_command(pnode *node, void *app, pnode_request *req)
{
    pveh_command c = *(const pveh_command *)pnode_request_prepared(req);
    propose_or_forward(node, app, req, &c);
}

static int consistency_check(int value, bool *linearizable, char *why, size_t cap)
{
    switch (value) {
    case PLATOON__V1__READ_CONSISTENCY__READ_CONSISTENCY_LINEARIZABLE:
        *linearizable = true;
        return PNODE_OK;
    case PLATOON__V1__READ_CONSISTENCY__READ_CONSISTENCY_STALE:
        *linearizable = false;
        return PNODE_OK;
    default:
        return refuse(PNODE_INVALID_ARGUMENT,
                      "consistency must be READ_CONSISTENCY_LINEARIZABLE or "
                      "READ_CONSISTENCY_STALE",
                      why, cap);
    }
}

static bool consistency_of(int value, bool *linearizable, pnode_request *req)
{
    char why[160];
    if (consistency_check(value, linearizable, why, sizeof(why)) != PNODE_OK) {
        pnode_fail(req, PNODE_INVALID_ARGUMENT, why);
        return false;
    }
    return true;
}

static bool query_ok(pnode_request *req, int code, const char *message, const uint8_t *data,
                     size_t len, pveh_query_result *out)
{
    if (code != PNODE_OK) {
        pnode_fail(req, code, message);
        return false;
    }
    if (pveh_query_result_decode(data, len, out) != 0) {
        pnode_fail(req, PNODE_INTERNAL, "undecodable answer from the state machine");
        return false;
    }
    return true;
}

static void get_done(pnode *node, void *ctx, pnode_request *req, int code, const char *message,
                     const uint8_t *data, size_t len)
{
    (void)node;
    (void)ctx;
    pveh_query_result r;
    if (!query_ok(req, code, message, data, len, &r)) {
        return;
    }
    if (r.status == PVEH_STATUS_NOT_FOUND) {
        pveh_query_result_free(&r);
        pnode_fail(req, PNODE_NOT_FOUND, "vehicle not found");
        return;
    }
    Platoon__V1__Vehicle v;
    to_proto(&r.vehicle, &v);
    Platoon__V1__GetVehicleResponse resp = PLATOON__V1__GET_VEHICLE_RESPONSE__INIT;
    resp.vehicle = &v;
    pnode_reply_message(req, &resp.base);
    pveh_query_result_free(&r);
}

/* This node's id, for the page tokens of its listings. */
static uint64_t self_id(pnode *node)
{
    pnode_status st;
    pnode_status_get(node, &st);
    return st.raft.id;
}

/* Answers @req with the vehicles of listing @li above id @after, at most @limit of them,
 * with a token for the rest; a listing whose last page this is ends here. */
static void reply_page(pnode *node, pveh_sm *sm, pnode_request *req, pveh_listing *li,
                       uint64_t after, size_t limit)
{
    size_t cap = limit < li->view.n ? limit : li->view.n;
    uint64_t revision = li->revision;
    pveh_vehicle *page = malloc((cap ? cap : 1) * sizeof(*page));
    Platoon__V1__Vehicle *vs = calloc(cap ? cap : 1, sizeof(*vs));
    Platoon__V1__Vehicle **ptrs = calloc(cap ? cap : 1, sizeof(*ptrs));
    if (page == NULL || vs == NULL || ptrs == NULL) {
        free(page);
        free(vs);
        free(ptrs);
        pnode_fail(req, PNODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    size_t n = 0;
    char token[PVEH_PAGE_TOKEN_LEN + 1];
    pveh__listing_page(&sm->listings, li, self_id(node), after, cap, page, &n, token);
    for (size_t i = 0; i < n; i++) {
        to_proto(&page[i], &vs[i]);
        ptrs[i] = &vs[i];
    }
    Platoon__V1__GetPlatoonResponse resp = PLATOON__V1__GET_PLATOON_RESPONSE__INIT;
    resp.n_vehicles = n;
    resp.vehicles = ptrs;
    resp.revision = revision;
    resp.leader_id = pnode_leader(node);
    resp.next_page_token = token;
    pnode_reply_message(req, &resp.base);
    free(page);
    free(vs);
    free(ptrs);
}

static void list_done(pnode *node, void *ctx, pnode_request *req, int code, const char *message,
                      const uint8_t *data, size_t len)
{
    pveh_sm *sm = ctx;
    pveh_listing_result r;
    if (code != PNODE_OK) {
        pnode_fail(req, code, message);
        return;
    }
    if (pveh__listing_result_decode(data, len, &r) != 0) {
        pnode_fail(req, PNODE_INTERNAL, "undecodable answer from the state machine");
        return;
    }
    if (r.status == PVEH_LISTING_OPEN_FULL) {
        char why[200];
        snprintf(why, sizeof(why),
                 "%d listings of the platoon are in progress on this node, the most it holds: "
                 "finish one, or retry once they expire (%d s idle)",
                 PVEH_LISTINGS_MAX, PVEH_LISTING_IDLE_MS / 1000);
        pnode_fail(req, PNODE_RESOURCE_EXHAUSTED, why);
        return;
    }
    if (r.status == PVEH_LISTING_OPEN_MINE) {
        char why[200];
        snprintf(why, sizeof(why),
                 "this client already has %d listings of the platoon in progress on this node, "
                 "the most one client may: finish one, or retry once they expire (%d s idle)",
                 PVEH_LISTINGS_PER_PRINCIPAL_MAX, PVEH_LISTING_IDLE_MS / 1000);
        pnode_fail(req, PNODE_RESOURCE_EXHAUSTED, why);
        return;
    }
    pveh_listing *li = pveh__listing_find(&sm->listings, r.listing);
    if (li == NULL) {
        pnode_fail(req, PNODE_INTERNAL, "the listing vanished as it opened");
        return;
    }
    size_t limit;
    if (pveh__listing_first_limit(r.page_size, li->view.n, &limit) != 0) {
        char why[300];
        snprintf(why, sizeof(why),
                 "the platoon has %zu vehicles, more than %u in one answer: set page_size "
                 "(at most %u) and follow next_page_token",
                 li->view.n, PVEH_UNPAGED_MAX, PVEH_PAGE_SIZE_MAX);
        pveh__listing_close(li);
        pnode_fail(req, PNODE_FAILED_PRECONDITION, why);
        return;
    }
    reply_page(node, sm, req, li, 0, limit);
}

/* A later page of a listing: from its frozen view, on this node only. */
static void next_page(pnode *node, pveh_sm *sm, pnode_request *req, const char *text,
                      uint32_t page_size)
{
    pveh_page_token t;
    if (pveh__page_token_parse(text, &t) != 0) {
        pnode_fail(req, PNODE_INVALID_ARGUMENT,
                   "page_token is malformed: pass back next_page_token exactly as received");
        return;
    }
    char why[300];
    uint64_t self = self_id(node);
    if (t.node_id != self) {
        snprintf(why, sizeof(why),
                 "page_token belongs to a listing held by node %llu, not by this node (%llu): "
                 "ask node %llu for its pages, or start the listing again without page_token",
                 (unsigned long long)t.node_id, (unsigned long long)self,
                 (unsigned long long)t.node_id);
        pnode_fail(req, PNODE_FAILED_PRECONDITION, why);
        return;
    }
    pveh_listing *li = NULL;
    if (t.incarnation == sm->listings.incarnation) {
        if (t.listing >= sm->listings.next_id) {
            pnode_fail(req, PNODE_INVALID_ARGUMENT, "page_token names no listing of this node");
            return;
        }
        li = pveh__listing_find(&sm->listings, t.listing);
    }
    if (li == NULL) {
        snprintf(why, sizeof(why),
                 "the listing at revision %llu has expired (idle for more than %d s, finished, "
                 "or this node restarted): start it again without page_token",
                 (unsigned long long)t.revision, PVEH_LISTING_IDLE_MS / 1000);
        pnode_fail(req, PNODE_FAILED_PRECONDITION, why);
        return;
    }
    if (li->secret != t.secret || li->revision != t.revision) {
        pnode_fail(req, PNODE_INVALID_ARGUMENT, "page_token names no listing of this node");
        return;
    }
    li->last_used_ms = pnode_now_ms();
    reply_page(node, sm, req, li, t.after, pveh__listing_next_limit(page_size));
}

/* The prepared form of GetVehicle: the state machine's query, and how to read it. */
typedef struct get_prepared {
    bool linearizable;
    uint8_t query[PVEH_QUERY_GET_LEN];
} get_prepared;

static void get_prepared_free(void *p)
{
    free(p);
}

static int prepare_get(void *app, const pnode_principal *who, const uint8_t *data, size_t len,
                       void **out, char *why, size_t cap)
{
    (void)app;
    (void)who;
    pt_decode_arena da;
    Platoon__V1__GetVehicleRequest *in =
        platoon__v1__get_vehicle_request__unpack(pt__decode_arena_init(&da), len, data);
    if (in == NULL) {
        pt__decode_arena_release(&da);
        return refuse(PNODE_INVALID_ARGUMENT, "malformed GetVehicleRequest", why, cap);
    }
    uint64_t id = in->id;
    int consistency = (int)in->consistency;
    pt__decode_arena_release(&da);
    if (pveh_validate_id(id, why, cap) != 0) {
        return PNODE_INVALID_ARGUMENT;
    }
    bool linearizable;
    int code = consistency_check(consistency, &linearizable, why, cap);
    if (code != PNODE_OK) {
        return code;
    }
    get_prepared *g = malloc(sizeof(*g));
    if (g == NULL) {
        return refuse(PNODE_RESOURCE_EXHAUSTED, "out of memory", why, cap);
    }
    pveh__query_get_put(g->query, id);
    g->linearizable = linearizable;
    *out = g;
    return PNODE_OK;
}

static void handle_get(pnode *node, void *app, pnode_request *req)
{
    (void)app;
    const get_prepared *g = pnode_request_prepared(req);
    pnode_query(node, req, g->linearizable, g->query, sizeof(g->query), get_done, NULL);
}

static void handle_list(pnode *node, void *app, pnode_request *req)
{
    pveh_sm *sm = app;
    size_t len;
    const uint8_t *data = pnode_request_data(req, &len);
    pt_decode_arena da;
    Platoon__V1__GetPlatoonRequest *in =
        platoon__v1__get_platoon_request__unpack(pt__decode_arena_init(&da), len, data);
    if (in == NULL) {
        pt__decode_arena_release(&da);
        pnode_fail(req, PNODE_INVALID_ARGUMENT, "malformed GetPlatoonRequest");
        return;
    }
    int64_t now = pnode_now_ms();
    pveh__listings_expire(&sm->listings, now);
    if (in->page_token != NULL && in->page_token[0] != '\0') {
        next_page(node, sm, req, in->page_token, in->page_size);
        pt__decode_arena_release(&da);
        return;
    }
    int consistency = (int)in->consistency;
    uint32_t page_size = in->page_size;
    pt__decode_arena_release(&da);
    bool linearizable;
    if (!consistency_of(consistency, &linearizable, req)) {
        return;
    }
    uint8_t *q = NULL;
    size_t q_len = 0;
    const pnode_principal *who = pnode_request_principal(req);
    if (pveh__listing_query(now, page_size, pveh_principal_key(who->authenticated ? who->name : ""),
                            &q, &q_len) != 0) {
        pnode_fail(req, PNODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    pnode_query(node, req, linearizable, q, q_len, list_done, sm);
    free(q);
}

size_t pveh_service_methods(pveh_sm *sm, pnode_method *out, size_t cap)
{
    if (cap < 6) {
        return 0;
    }
    out[0] = (pnode_method){.name = "/platoon.v1.Platoon/UpdateVehicle",
                            .handler = handle_command,
                            .app = sm,
                            .role = PNODE_ROLE_WRITER,
                            .prepare = prepare_update};
    out[1] = (pnode_method){.name = "/platoon.v1.Platoon/DeleteVehicle",
                            .handler = handle_command,
                            .app = sm,
                            .role = PNODE_ROLE_WRITER,
                            .prepare = prepare_delete};
    out[2] = (pnode_method){.name = "/platoon.v1.Platoon/GetVehicle",
                            .handler = handle_get,
                            .app = sm,
                            .role = PNODE_ROLE_READER,
                            .prepare = prepare_get,
                            .release = get_prepared_free};
    out[3] = (pnode_method){.name = "/platoon.v1.Platoon/GetPlatoon",
                            .handler = handle_list,
                            .app = sm,
                            .role = PNODE_ROLE_READER};
    out[4] = (pnode_method){.name = "/platoon.v1.Platoon/OpenSession",
                            .handler = handle_command,
                            .app = sm,
                            .role = PNODE_ROLE_WRITER,
                            .prepare = prepare_open};
    out[5] = (pnode_method){.name = "/platoon.v1.Platoon/CloseSession",
                            .handler = handle_command,
                            .app = sm,
                            .role = PNODE_ROLE_WRITER,
                            .prepare = prepare_close};
    if (cap < 7) {
        return 6; /* a caller from before WatchPlatoon, with room for six */
    }
    /* Watching is reading (docs/security.md): a reader may watch every vehicle. */
    out[6] = (pnode_method){.name = "/platoon.v1.Platoon/WatchPlatoon",
                            .handler = pveh__watch_handle,
                            .app = sm,
                            .role = PNODE_ROLE_READER};
    return 7;
}
