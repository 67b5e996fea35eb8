/*
 * The platoon.v1.Cluster service: status, membership changes, leadership transfer and
 * snapshots on demand. It is part of the runtime, not of an application: any application
 * embedding the runtime gets it.
 *
 * Status is answered by the node asked (so an operator can ask each member for its own view).
 * Membership changes and transfers are the leader's business: a follower forwards them. A
 * change is answered once its configuration is committed and applied here, with the
 * resulting members; the core refuses a second change while one is in flight (thesis §4.1),
 * which the client sees as FAILED_PRECONDITION.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "node/node_internal.h"
#include "platoon/v1/platoon.pb-c.h"

#define M_STATUS   "/platoon.v1.Cluster/Status"
#define M_ADD      "/platoon.v1.Cluster/AddMember"
#define M_REMOVE   "/platoon.v1.Cluster/RemoveMember"
#define M_TRANSFER "/platoon.v1.Cluster/TransferLeadership"
#define M_SNAPSHOT "/platoon.v1.Cluster/Snapshot"

static const char *const admin_methods[] = {M_STATUS, M_ADD, M_REMOVE, M_TRANSFER, M_SNAPSHOT};

bool pnode__admin_handles(const char *method)
{
    for (size_t i = 0; i < sizeof(admin_methods) / sizeof(admin_methods[0]); i++) {
        if (strcmp(method, admin_methods[i]) == 0) {
            return true;
        }
    }
    return false;
}

int pnode__admin_role(const char *method)
{
    /* Looking at the cluster is a reader's right; changing it is an admin's. */
    return strcmp(method, M_STATUS) == 0 ? PNODE_ROLE_READER : PNODE_ROLE_ADMIN;
}

size_t pnode__admin_names(const char **out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof(admin_methods) / sizeof(admin_methods[0]) && n < cap; i++) {
        out[n++] = admin_methods[i];
    }
    return n;
}

void pnode__admin_register(pnode *n)
{
    for (size_t i = 0; i < sizeof(admin_methods) / sizeof(admin_methods[0]); i++) {
        pnet_transport_register_method(n->net, admin_methods[i], NULL);
    }
}

void pnode_reply_message(pnode_request *req, const ProtobufCMessage *msg)
{
    /* Most answers (a write's vehicle, a read's) are a few dozen bytes: packed on the stack,
     * they cost the loop no allocation (pnode_reply copies them into gRPC's buffer). */
    uint8_t small[512];
    size_t size = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = size <= sizeof(small) ? small : malloc(size);
    if (buf == NULL) {
        pnode_fail(req, PNODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    protobuf_c_message_pack(msg, buf);
    pnode_reply(req, buf, size);
    if (buf != small) {
        free(buf);
    }
}

static Platoon__V1__Role role_of(uint32_t role)
{
    switch (role) {
    case PRAFT_FOLLOWER:
        return PLATOON__V1__ROLE__ROLE_FOLLOWER;
    case PRAFT_CANDIDATE:
        return PLATOON__V1__ROLE__ROLE_CANDIDATE;
    case PRAFT_LEADER:
        return PLATOON__V1__ROLE__ROLE_LEADER;
    case PRAFT_LEARNER:
        return PLATOON__V1__ROLE__ROLE_LEARNER;
    default:
        return PLATOON__V1__ROLE__ROLE_UNSPECIFIED;
    }
}

/* The members of @cfg as protobuf messages; @storage holds them, @ptrs points at them. */
static size_t members_of(const praft_config *cfg, Platoon__V1__Member *storage,
                         Platoon__V1__Member **ptrs)
{
    size_t k = 0;
    for (uint32_t i = 0; i < cfg->n_members; i++) {
        const praft_member *m = &cfg->members[i];
        if (m->role == PRAFT_ROLE_NONE) {
            continue; /* leaving in a joint configuration */
        }
        platoon__v1__member__init(&storage[k]);
        storage[k].id = m->id;
        storage[k].address = (char *)m->address;
        storage[k].voter = m->role == PRAFT_ROLE_VOTER;
        ptrs[k] = &storage[k];
        k++;
    }
    return k;
}

/* Status and Snapshot take an empty message, but a body that is not a message at all is a
 * broken or hostile client: it is refused, not answered (nor, for Snapshot, acted upon). */
static bool empty_request_ok(pnode_request *req, const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *in = protobuf_c_message_unpack(d, NULL, req->len, req->data);
    if (in == NULL) {
        char why[96];
        snprintf(why, sizeof(why), "malformed %s", d->short_name);
        pnode_fail(req, PNODE_INVALID_ARGUMENT, why);
        return false;
    }
    protobuf_c_message_free_unpacked(in, NULL);
    return true;
}

static void handle_status(pnode *n, pnode_request *req)
{
    if (!empty_request_ok(req, &platoon__v1__status_request__descriptor)) {
        return;
    }
    struct {
        praft_status st;
        Platoon__V1__Member members[PRAFT_MAX_MEMBERS];
        Platoon__V1__Member *member_ptrs[PRAFT_MAX_MEMBERS];
        Platoon__V1__Progress progress[PRAFT_MAX_MEMBERS];
        Platoon__V1__Progress *progress_ptrs[PRAFT_MAX_MEMBERS];
    } *w = malloc(sizeof(*w));
    if (w == NULL) {
        pnode_fail(req, PNODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    praft_status_get(n->raft, &w->st);
    Platoon__V1__StatusResponse resp = PLATOON__V1__STATUS_RESPONSE__INIT;
    resp.id = n->opts.id;
    resp.role = role_of(w->st.role);
    resp.term = w->st.term;
    resp.leader_id = w->st.leader;
    resp.commit_index = w->st.commit;
    resp.applied_index = pnode_applied(n);
    resp.snapshot_index = n->last_snapshot_index;
    pthread_mutex_lock(&n->store_mu);
    pstore_log_range(n->store, &resp.first_index, &resp.last_index);
    pthread_mutex_unlock(&n->store_mu);
    resp.n_members = members_of(&w->st.config, w->members, w->member_ptrs);
    resp.members = w->member_ptrs;
    for (size_t i = 0; i < w->st.n_progress; i++) {
        const praft_progress *p = &w->st.progress[i];
        platoon__v1__progress__init(&w->progress[i]);
        w->progress[i].id = p->id;
        w->progress[i].match_index = p->match;
        w->progress[i].next_index = p->next;
        w->progress[i].state = (char *)praft_progress_state_name(p->state);
        w->progress[i].recently_active = p->recently_active;
        w->progress[i].last_contact_ms = pnode__since_heard_ms(n, p->id);
        w->progress_ptrs[i] = &w->progress[i];
    }
    resp.n_followers = w->st.n_progress;
    resp.followers = w->progress_ptrs;
    pnode_reply_message(req, &resp.base);
    free(w);
}

/* Answers @req with the current configuration's members, in the response type of @method. */
static void reply_members(pnode *n, pnode_request *req)
{
    struct {
        praft_status st;
        Platoon__V1__Member members[PRAFT_MAX_MEMBERS];
        Platoon__V1__Member *ptrs[PRAFT_MAX_MEMBERS];
    } *w = malloc(sizeof(*w));
    if (w == NULL) {
        pnode_fail(req, PNODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    praft_status_get(n->raft, &w->st);
    size_t k = members_of(&w->st.config, w->members, w->ptrs);
    if (strcmp(req->method, M_ADD) == 0) {
        Platoon__V1__AddMemberResponse r = PLATOON__V1__ADD_MEMBER_RESPONSE__INIT;
        r.n_members = k;
        r.members = w->ptrs;
        pnode_reply_message(req, &r.base);
    } else if (strcmp(req->method, M_REMOVE) == 0) {
        Platoon__V1__RemoveMemberResponse r = PLATOON__V1__REMOVE_MEMBER_RESPONSE__INIT;
        r.n_members = k;
        r.members = w->ptrs;
        pnode_reply_message(req, &r.base);
    } else {
        Platoon__V1__TransferLeadershipResponse r = PLATOON__V1__TRANSFER_LEADERSHIP_RESPONSE__INIT;
        r.n_members = k;
        r.members = w->ptrs;
        pnode_reply_message(req, &r.base);
    }
    free(w);
}

static void fail_change(pnode_request *req, int rc)
{
    switch (rc) {
    case PT_ECONFCHANGE:
        pnode_fail(req, PNODE_FAILED_PRECONDITION,
                   "a membership change is already in progress; retry when it has completed");
        break;
    case PT_ENOTREADY:
        pnode_fail(req, PNODE_FAILED_PRECONDITION,
                   "not ready: the learner has not caught up, or the leader has not yet "
                   "committed an entry of its term");
        break;
    case PT_ETRANSFER:
        pnode_fail(req, PNODE_UNAVAILABLE, "a leadership transfer is in progress");
        break;
    case PT_ENOTLEADER:
        pnode_fail(req, PNODE_UNAVAILABLE, "this node is no longer the leader");
        break;
    default:
        pnode_fail(req, pnode__code(rc), pt_strerror(rc));
        break;
    }
}

static void start_change(pnode *n, pnode_request *req, const praft_change *change)
{
    uint64_t index = 0;
    int rc = praft_change_membership(n->raft, change, &index);
    if (rc != 0) {
        fail_change(req, rc);
        return;
    }
    PT_INFO("membership change proposed at index %llu: %s %llu", (unsigned long long)index,
            change->type == PRAFT_CHANGE_REMOVE      ? "remove"
            : change->type == PRAFT_CHANGE_ADD_VOTER ? "add voter"
                                                     : "add learner",
            (unsigned long long)change->id);
    req->index = index;
    req->context = change->id;
    req->term = change->type;
    pnode__request_wait(n, req, WAIT_CONFIG);
}

static bool wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            return true;
        }
    }
    return false;
}

/* The length on the wire of the last occurrence of length-delimited field @field in a
 * well-formed message (the one the parser kept), or 0 if absent. protobuf-c hands strings over
 * NUL-terminated, so an embedded NUL would silently cut an address short: comparing the two
 * lengths tells it apart. */
static size_t wire_field_len(const uint8_t *data, size_t len, uint32_t field)
{
    const uint8_t *p = data, *end = data + len;
    size_t found = 0;
    uint64_t key, v;
    while (p < end && wire_varint(&p, end, &key)) {
        switch (key & 7) {
        case 0:
            if (!wire_varint(&p, end, &v)) {
                return found;
            }
            break;
        case 1:
            p += (size_t)(end - p) < 8 ? (size_t)(end - p) : 8;
            break;
        case 2:
            if (!wire_varint(&p, end, &v) || v > (uint64_t)(end - p)) {
                return found;
            }
            if ((key >> 3) == field) {
                found = (size_t)v;
            }
            p += v;
            break;
        case 5:
            p += (size_t)(end - p) < 4 ? (size_t)(end - p) : 4;
            break;
        default:
            return found;
        }
    }
    return found;
}

static void handle_add(pnode *n, pnode_request *req)
{
    Platoon__V1__AddMemberRequest *in =
        platoon__v1__add_member_request__unpack(NULL, req->len, req->data);
    if (in == NULL) {
        pnode_fail(req, PNODE_INVALID_ARGUMENT, "malformed AddMemberRequest");
        return;
    }
    praft_change change;
    memset(&change, 0, sizeof(change));
    change.id = in->id;
    bool learner = in->learner;
    bool too_long = in->address != NULL && strlen(in->address) >= PRAFT_ADDRESS_MAX;
    bool has_nul =
        in->address != NULL && strlen(in->address) != wire_field_len(req->data, req->len, 2);
    char address[PRAFT_ADDRESS_MAX] = "";
    if (in->address != NULL && !too_long) {
        snprintf(address, sizeof(address), "%s", in->address);
    }
    platoon__v1__add_member_request__free_unpacked(in, NULL);

    if (change.id == 0) {
        pnode_fail(req, PNODE_INVALID_ARGUMENT, "id must not be 0");
        return;
    }
    if (too_long) {
        pnode_fail(req, PNODE_INVALID_ARGUMENT, "address is longer than 127 bytes");
        return;
    }
    if (has_nul) {
        pnode_fail(req, PNODE_INVALID_ARGUMENT, "address contains a NUL byte");
        return;
    }
    praft_status *st = malloc(sizeof(*st));
    if (st == NULL) {
        pnode_fail(req, PNODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    praft_status_get(n->raft, st);
    const praft_member *existing = praft_config_find(&st->config, change.id);
    int code = PNODE_OK;
    const char *why = NULL;
    char whybuf[256];
    if (existing != NULL && existing->role == PRAFT_ROLE_VOTER) {
        code = PNODE_ALREADY_EXISTS;
        why = "id is already a voting member";
    } else if (existing != NULL && learner) {
        code = PNODE_ALREADY_EXISTS;
        why = "id is already a learner";
    } else if (existing == NULL && address[0] == '\0') {
        code = PNODE_INVALID_ARGUMENT;
        why = "address must not be empty";
    } else if (existing == NULL && pnode__address_check(address, false, whybuf, sizeof(whybuf))) {
        code = PNODE_INVALID_ARGUMENT;
        why = whybuf;
    } else if (existing == NULL) {
        /* Two members at one address: the one that answers there gets both members' messages,
         * and the cluster counts it twice towards a quorum. */
        for (uint32_t i = 0; i < st->config.n_members; i++) {
            const praft_member *m = &st->config.members[i];
            if (m->address[0] != '\0' && pnode__same_endpoint(m->address, address)) {
                snprintf(whybuf, sizeof(whybuf),
                         "address %s is already member %llu's; each member needs its own", address,
                         (unsigned long long)m->id);
                code = PNODE_ALREADY_EXISTS;
                why = whybuf;
                break;
            }
        }
    }
    free(st);
    if (code != PNODE_OK) {
        pnode_fail(req, code, why);
        return;
    }
    change.type = learner ? PRAFT_CHANGE_ADD_LEARNER : PRAFT_CHANGE_ADD_VOTER;
    snprintf(change.address, sizeof(change.address), "%s", address);
    start_change(n, req, &change);
}

static void handle_remove(pnode *n, pnode_request *req)
{
    Platoon__V1__RemoveMemberRequest *in =
        platoon__v1__remove_member_request__unpack(NULL, req->len, req->data);
    if (in == NULL) {
        pnode_fail(req, PNODE_INVALID_ARGUMENT, "malformed RemoveMemberRequest");
        return;
    }
    praft_change change;
    memset(&change, 0, sizeof(change));
    change.type = PRAFT_CHANGE_REMOVE;
    change.id = in->id;
    platoon__v1__remove_member_request__free_unpacked(in, NULL);
    if (change.id == 0) {
        pnode_fail(req, PNODE_INVALID_ARGUMENT, "id must not be 0");
        return;
    }
    praft_status *st = malloc(sizeof(*st));
    if (st == NULL) {
        pnode_fail(req, PNODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    praft_status_get(n->raft, st);
    bool member = praft_config_find(&st->config, change.id) != NULL;
    free(st);
    if (!member) {
        /* Also the answer to a retry of a removal that already went through. */
        pnode_fail(req, PNODE_NOT_FOUND, "id is not a member");
        return;
    }
    start_change(n, req, &change);
}

static void handle_transfer(pnode *n, pnode_request *req)
{
    Platoon__V1__TransferLeadershipRequest *in =
        platoon__v1__transfer_leadership_request__unpack(NULL, req->len, req->data);
    if (in == NULL) {
        pnode_fail(req, PNODE_INVALID_ARGUMENT, "malformed TransferLeadershipRequest");
        return;
    }
    uint64_t to = in->to;
    platoon__v1__transfer_leadership_request__free_unpacked(in, NULL);
    int rc = praft_transfer_leadership(n->raft, to);
    if (rc == PT_EINVAL) {
        pnode_fail(req, PNODE_INVALID_ARGUMENT, "to must be another voting member (or 0)");
        return;
    }
    if (rc == PT_ENOQUORUM) {
        pnode_fail(req, PNODE_FAILED_PRECONDITION, "there is no other voting member");
        return;
    }
    if (rc != 0) {
        fail_change(req, rc);
        return;
    }
    req->old_leader = n->opts.id;
    /* The core gives up after an election timeout; allow twice that before saying so. */
    req->leader_deadline_ms =
        pnode_now_ms() + 2 * (int64_t)n->opts.election_ticks * n->opts.tick_ms + 1000;
    pnode__request_wait(n, req, WAIT_TRANSFER);
}

static void handle_snapshot(pnode *n, pnode_request *req)
{
    if (!empty_request_ok(req, &platoon__v1__snapshot_request__descriptor)) {
        return;
    }
    uint64_t applied = pnode_applied(n);
    req->index = applied;
    if (applied > n->last_snapshot_index) {
        pnode__maybe_snapshot(n, true);
    }
    pnode__request_wait(n, req, WAIT_SNAPSHOT);
    pnode__admin_progress(n);
}

void pnode__admin_call(pnode *n, pnode_request *req)
{
    if (strcmp(req->method, M_STATUS) == 0) {
        handle_status(n, req);
        return;
    }
    if (strcmp(req->method, M_SNAPSHOT) == 0) {
        handle_snapshot(n, req);
        return;
    }
    if (!pnode_is_leader(n)) {
        pnode_forward(n, req);
        return;
    }
    if (strcmp(req->method, M_ADD) == 0) {
        handle_add(n, req);
    } else if (strcmp(req->method, M_REMOVE) == 0) {
        handle_remove(n, req);
    } else {
        handle_transfer(n, req);
    }
}

/* True once the applied configuration is final (not joint) and shows the change. */
static bool change_applied(pnode *n, const pnode_request *req)
{
    if (pnode_applied(n) < req->index || n->applied_config.joint) {
        return false;
    }
    return true;
}

static bool change_visible(pnode *n, const pnode_request *req)
{
    const praft_member *m = praft_config_find(&n->applied_config, req->context);
    switch (req->term) {
    case PRAFT_CHANGE_REMOVE:
        return m == NULL;
    case PRAFT_CHANGE_ADD_VOTER:
        return m != NULL && m->role == PRAFT_ROLE_VOTER;
    default:
        return m != NULL;
    }
}

void pnode__admin_progress(pnode *n)
{
    for (pnode_request *req = n->pending.next; req != &n->pending;) {
        pnode_request *next = req->next;
        switch (req->wait) {
        case WAIT_CONFIG:
            if (change_applied(n, req)) {
                pnode__request_unlink(n, req);
                if (change_visible(n, req)) {
                    reply_members(n, req);
                } else {
                    pnode_fail(req, PNODE_ABORTED,
                               "the change was lost in a leadership change; check the members "
                               "and retry");
                }
            }
            break;
        case WAIT_TRANSFER:
            if (n->leader != PRAFT_NONE && n->leader != req->old_leader) {
                pnode__request_unlink(n, req);
                reply_members(n, req);
            } else if (pnode_now_ms() >= req->leader_deadline_ms) {
                pnode__request_unlink(n, req);
                pnode_fail(req, PNODE_ABORTED, "leadership transfer did not complete in time");
            }
            break;
        case WAIT_SNAPSHOT:
            if (n->last_snapshot_index >= req->index) {
                pnode__request_unlink(n, req);
                Platoon__V1__SnapshotResponse r = PLATOON__V1__SNAPSHOT_RESPONSE__INIT;
                r.index = n->last_snapshot_index;
                pnode_reply_message(req, &r.base);
            } else if (!n->snap_running) {
                pnode__maybe_snapshot(n, true);
            }
            break;
        default:
            break;
        }
        req = next;
    }
}
