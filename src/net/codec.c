/*
 * praft_msg <-> protobuf-c codecs for the peer protocol (proto/platoon/raft/v1/raft.proto).
 */
#include "net/codec.h"

#include <stdlib.h>
#include <string.h>

#include "common/arena_protobuf.h"

typedef Platoon__Raft__V1__RaftMessage pb_message;
typedef Platoon__Raft__V1__Entry pb_entry;
typedef Platoon__Raft__V1__Member pb_member;
typedef Platoon__Raft__V1__Config pb_config;
typedef Platoon__Raft__V1__SnapshotMeta pb_meta;

/* ============================================================================================
 * Lanes
 * ========================================================================================== */

static const char *const lane_methods[PNET_LANE_COUNT] = {
    [PNET_LANE_APPEND] = "/platoon.raft.v1.Raft/AppendEntries",
    [PNET_LANE_VOTE] = "/platoon.raft.v1.Raft/RequestVote",
    [PNET_LANE_SNAPSHOT] = "/platoon.raft.v1.Raft/InstallSnapshot",
    [PNET_LANE_TIMEOUT_NOW] = "/platoon.raft.v1.Raft/TimeoutNow",
    [PNET_LANE_READ_INDEX] = "/platoon.raft.v1.Raft/ReadIndex",
};

int pnet__lane_of(uint32_t type)
{
    switch (type) {
    case PRAFT_MSG_APPEND:
    case PRAFT_MSG_APPEND_RESP:
    case PRAFT_MSG_HEARTBEAT:
    case PRAFT_MSG_HEARTBEAT_RESP:
        return PNET_LANE_APPEND;
    case PRAFT_MSG_VOTE:
    case PRAFT_MSG_VOTE_RESP:
    case PRAFT_MSG_PREVOTE:
    case PRAFT_MSG_PREVOTE_RESP:
        return PNET_LANE_VOTE;
    case PRAFT_MSG_SNAPSHOT:
    case PRAFT_MSG_SNAPSHOT_RESP:
        return PNET_LANE_SNAPSHOT;
    case PRAFT_MSG_TIMEOUT_NOW:
        return PNET_LANE_TIMEOUT_NOW;
    case PRAFT_MSG_READ_INDEX:
    case PRAFT_MSG_READ_INDEX_RESP:
        return PNET_LANE_READ_INDEX;
    default:
        return -1;
    }
}

const char *pnet__lane_method(int lane)
{
    if (lane < 0 || lane >= PNET_LANE_COUNT) {
        return NULL;
    }
    return lane_methods[lane];
}

int pnet__lane_from_method(const char *method, size_t len)
{
    for (int i = 0; i < PNET_LANE_COUNT; i++) {
        if (strlen(lane_methods[i]) == len && memcmp(lane_methods[i], method, len) == 0) {
            return i;
        }
    }
    return -1;
}

/* ============================================================================================
 * Encoding
 * ========================================================================================== */

/* Every protobuf-c structure one message needs, so that encoding allocates only the entries. */
struct enc {
    pb_message msg;
    union {
        Platoon__Raft__V1__AppendEntriesRequest append;
        Platoon__Raft__V1__AppendEntriesResponse append_resp;
        Platoon__Raft__V1__RequestVoteRequest vote;
        Platoon__Raft__V1__RequestVoteResponse vote_resp;
        Platoon__Raft__V1__HeartbeatRequest heartbeat;
        Platoon__Raft__V1__HeartbeatResponse heartbeat_resp;
        Platoon__Raft__V1__InstallSnapshotRequest snapshot;
        Platoon__Raft__V1__InstallSnapshotResponse snapshot_resp;
        Platoon__Raft__V1__TimeoutNowRequest timeout_now;
        Platoon__Raft__V1__ReadIndexRequest read_index;
        Platoon__Raft__V1__ReadIndexResponse read_index_resp;
    } u;
    pb_entry *entries;
    pb_entry **entry_ptrs;
    pb_meta meta;
    pb_config config;
    pb_member members[PRAFT_MAX_MEMBERS];
    pb_member *member_ptrs[PRAFT_MAX_MEMBERS];
};

static void enc_release(struct enc *e)
{
    free(e->entries);
    free(e->entry_ptrs);
    e->entries = NULL;
    e->entry_ptrs = NULL;
}

static int enc_meta(struct enc *e, const praft_snapshot_meta *m)
{
    const praft_config *c = &m->config;
    platoon__raft__v1__snapshot_meta__init(&e->meta);
    platoon__raft__v1__config__init(&e->config);
    e->meta.index = m->index;
    e->meta.term = m->term;
    e->meta.size = m->size;
    e->meta.checksum = m->checksum;
    e->meta.config = &e->config;
    if (c->n_members > PRAFT_MAX_MEMBERS) {
        return PT_EINVAL;
    }
    e->config.joint = c->joint;
    e->config.n_members = c->n_members;
    e->config.members = e->member_ptrs;
    for (uint32_t i = 0; i < c->n_members; i++) {
        const praft_member *src = &c->members[i];
        pb_member *dst = &e->members[i];
        if (memchr(src->address, '\0', sizeof(src->address)) == NULL) {
            return PT_EINVAL;
        }
        platoon__raft__v1__member__init(dst);
        dst->id = src->id;
        dst->role = (Platoon__Raft__V1__Role)src->role;
        dst->old_role = (Platoon__Raft__V1__Role)src->old_role;
        /* protobuf-c does not modify the string while packing. */
        dst->address = (char *)src->address;
        e->member_ptrs[i] = dst;
    }
    return 0;
}

static int enc_append(struct enc *e, const praft_msg *m)
{
    Platoon__Raft__V1__AppendEntriesRequest *a = &e->u.append;
    platoon__raft__v1__append_entries_request__init(a);
    a->term = m->term;
    a->prev_index = m->prev_index;
    a->prev_term = m->prev_term;
    a->commit = m->commit;
    if (m->n_entries == 0) {
        return 0;
    }
    if (m->entries == NULL) {
        return PT_EINVAL;
    }
    e->entries = calloc(m->n_entries, sizeof(*e->entries));
    e->entry_ptrs = calloc(m->n_entries, sizeof(pb_entry *));
    if (e->entries == NULL || e->entry_ptrs == NULL) {
        return PT_ENOMEM;
    }
    for (size_t i = 0; i < m->n_entries; i++) {
        const praft_entry *src = &m->entries[i];
        pb_entry *dst = &e->entries[i];
        if (src->len > 0 && src->data == NULL) {
            return PT_EINVAL;
        }
        platoon__raft__v1__entry__init(dst);
        dst->term = src->term;
        dst->index = src->index;
        dst->type = (Platoon__Raft__V1__EntryType)src->type;
        dst->data.len = src->len;
        dst->data.data = src->data;
        e->entry_ptrs[i] = dst;
    }
    a->n_entries = m->n_entries;
    a->entries = e->entry_ptrs;
    return 0;
}

/* Fills e->msg from @m. The structures point into @m: @m must outlive the packing. */
static int enc_build(struct enc *e, const praft_msg *m)
{
    pb_message *pb = &e->msg;
    int rc = 0;

    platoon__raft__v1__raft_message__init(pb);
    pb->from = m->from;
    pb->to = m->to;
    switch (m->type) {
    case PRAFT_MSG_APPEND:
        rc = enc_append(e, m);
        pb->body_case = PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_APPEND;
        pb->append = &e->u.append;
        break;
    case PRAFT_MSG_APPEND_RESP: {
        Platoon__Raft__V1__AppendEntriesResponse *r = &e->u.append_resp;
        platoon__raft__v1__append_entries_response__init(r);
        r->term = m->term;
        r->index = m->index;
        r->reject = m->reject;
        r->hint_index = m->hint_index;
        r->hint_term = m->hint_term;
        pb->body_case = PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_APPEND_RESPONSE;
        pb->append_response = r;
        break;
    }
    case PRAFT_MSG_VOTE:
    case PRAFT_MSG_PREVOTE: {
        Platoon__Raft__V1__RequestVoteRequest *v = &e->u.vote;
        platoon__raft__v1__request_vote_request__init(v);
        v->term = m->term;
        v->last_index = m->last_index;
        v->last_term = m->last_term;
        v->pre_vote = m->type == PRAFT_MSG_PREVOTE;
        v->transfer = m->transfer;
        pb->body_case = PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_VOTE;
        pb->vote = v;
        break;
    }
    case PRAFT_MSG_VOTE_RESP:
    case PRAFT_MSG_PREVOTE_RESP: {
        Platoon__Raft__V1__RequestVoteResponse *v = &e->u.vote_resp;
        platoon__raft__v1__request_vote_response__init(v);
        v->term = m->term;
        v->reject = m->reject;
        v->pre_vote = m->type == PRAFT_MSG_PREVOTE_RESP;
        pb->body_case = PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_VOTE_RESPONSE;
        pb->vote_response = v;
        break;
    }
    case PRAFT_MSG_HEARTBEAT: {
        Platoon__Raft__V1__HeartbeatRequest *h = &e->u.heartbeat;
        platoon__raft__v1__heartbeat_request__init(h);
        h->term = m->term;
        h->commit = m->commit;
        h->context = m->context;
        pb->body_case = PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_HEARTBEAT;
        pb->heartbeat = h;
        break;
    }
    case PRAFT_MSG_HEARTBEAT_RESP: {
        Platoon__Raft__V1__HeartbeatResponse *h = &e->u.heartbeat_resp;
        platoon__raft__v1__heartbeat_response__init(h);
        h->term = m->term;
        h->context = m->context;
        pb->body_case = PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_HEARTBEAT_RESPONSE;
        pb->heartbeat_response = h;
        break;
    }
    case PRAFT_MSG_SNAPSHOT: {
        Platoon__Raft__V1__InstallSnapshotRequest *s = &e->u.snapshot;
        platoon__raft__v1__install_snapshot_request__init(s);
        if (m->snapshot == NULL || (m->len > 0 && m->data == NULL)) {
            return PT_EINVAL;
        }
        rc = enc_meta(e, m->snapshot);
        s->term = m->term;
        s->meta = &e->meta;
        s->offset = m->offset;
        s->data.len = m->len;
        s->data.data = m->data;
        s->done = m->done;
        pb->body_case = PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_SNAPSHOT;
        pb->snapshot = s;
        break;
    }
    case PRAFT_MSG_SNAPSHOT_RESP: {
        Platoon__Raft__V1__InstallSnapshotResponse *s = &e->u.snapshot_resp;
        platoon__raft__v1__install_snapshot_response__init(s);
        if (m->snapshot == NULL) {
            return PT_EINVAL;
        }
        s->term = m->term;
        s->snapshot_index = m->snapshot->index;
        s->snapshot_term = m->snapshot->term;
        s->offset = m->offset;
        s->reject = m->reject;
        s->index = m->index;
        pb->body_case = PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_SNAPSHOT_RESPONSE;
        pb->snapshot_response = s;
        break;
    }
    case PRAFT_MSG_TIMEOUT_NOW: {
        Platoon__Raft__V1__TimeoutNowRequest *t = &e->u.timeout_now;
        platoon__raft__v1__timeout_now_request__init(t);
        t->term = m->term;
        pb->body_case = PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_TIMEOUT_NOW;
        pb->timeout_now = t;
        break;
    }
    case PRAFT_MSG_READ_INDEX: {
        Platoon__Raft__V1__ReadIndexRequest *r = &e->u.read_index;
        platoon__raft__v1__read_index_request__init(r);
        r->term = m->term;
        r->context = m->context;
        pb->body_case = PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_READ_INDEX;
        pb->read_index = r;
        break;
    }
    case PRAFT_MSG_READ_INDEX_RESP: {
        Platoon__Raft__V1__ReadIndexResponse *r = &e->u.read_index_resp;
        platoon__raft__v1__read_index_response__init(r);
        r->term = m->term;
        r->context = m->context;
        r->index = m->index;
        r->reject = m->reject;
        pb->body_case = PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_READ_INDEX_RESPONSE;
        pb->read_index_response = r;
        break;
    }
    default:
        return PT_EINVAL;
    }
    return rc;
}

/* Bytes of a varint holding @v. */
static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Encodes @m with @header bytes of room in front (0, or a RaftBatch field header). */
static int encode(const praft_msg *m, bool as_batch_item, uint8_t **out, size_t *len)
{
    struct enc *e = malloc(sizeof(*e));
    uint8_t *buf = NULL;
    int rc;

    if (e == NULL) {
        return PT_ENOMEM;
    }
    e->entries = NULL;
    e->entry_ptrs = NULL;
    rc = enc_build(e, m);
    if (rc != 0) {
        goto out;
    }
    size_t body = protobuf_c_message_get_packed_size(&e->msg.base);
    /* Field 1 of RaftBatch, wire type 2 (length-delimited): tag byte 0x0a, then the length. */
    size_t header = as_batch_item ? 1 + varint_size(body) : 0;
    buf = malloc(header + body + 1); /* +1: malloc(0) may return NULL */
    if (buf == NULL) {
        rc = PT_ENOMEM;
        goto out;
    }
    if (as_batch_item) {
        buf[0] = 0x0a;
        varint_put(buf + 1, body);
    }
    protobuf_c_message_pack(&e->msg.base, buf + header);
    *out = buf;
    *len = header + body;
out:
    enc_release(e);
    free(e);
    return rc;
}

int pnet_msg_encode(const praft_msg *msg, uint8_t **out, size_t *len)
{
    if (msg == NULL || out == NULL || len == NULL) {
        return PT_EINVAL;
    }
    return encode(msg, false, out, len);
}

int pnet__msg_encode_batch_item(const praft_msg *msg, uint8_t **out, size_t *len)
{
    if (msg == NULL || out == NULL || len == NULL) {
        return PT_EINVAL;
    }
    return encode(msg, true, out, len);
}

/* ============================================================================================
 * Decoding
 * ========================================================================================== */

static bool role_ok(int role)
{
    return role == PRAFT_ROLE_NONE || role == PRAFT_ROLE_VOTER || role == PRAFT_ROLE_LEARNER;
}

/* Checks and copies a configuration from the network. */
static int dec_config(const pb_config *pb, praft_config *out)
{
    memset(out, 0, sizeof(*out));
    if (pb == NULL) {
        return 0; /* an empty configuration */
    }
    if (pb->n_members > PRAFT_MAX_MEMBERS || (pb->n_members > 0 && pb->members == NULL)) {
        return PT_EMALFORMED;
    }
    out->joint = pb->joint;
    out->n_members = (uint32_t)pb->n_members;
    for (size_t i = 0; i < pb->n_members; i++) {
        const pb_member *src = pb->members[i];
        praft_member *dst = &out->members[i];
        if (src == NULL || src->id == PRAFT_NONE) {
            return PT_EMALFORMED;
        }
        /* Members are sorted by id without duplicates (raft.h). */
        if (i > 0 && src->id <= out->members[i - 1].id) {
            return PT_EMALFORMED;
        }
        if (!role_ok(src->role) || !role_ok(src->old_role)) {
            return PT_EMALFORMED;
        }
        int role = (int)src->role, old_role = (int)src->old_role;
        if (!pb->joint && old_role != PRAFT_ROLE_NONE) {
            return PT_EMALFORMED;
        }
        if (role == PRAFT_ROLE_NONE && old_role == PRAFT_ROLE_NONE) {
            return PT_EMALFORMED;
        }
        const char *addr = src->address != NULL ? src->address : "";
        size_t alen = strnlen(addr, PRAFT_ADDRESS_MAX);
        if (alen >= PRAFT_ADDRESS_MAX) {
            return PT_EMALFORMED;
        }
        dst->id = src->id;
        dst->role = (uint8_t)src->role;
        dst->old_role = (uint8_t)src->old_role;
        memcpy(dst->address, addr, alen);
        dst->address[alen] = '\0';
    }
    return 0;
}

/* Checks what can be checked of an AppendEntries without the receiver's log: entries are
 * consecutive from prev_index + 1 (§5.3), and their terms never decrease, are at least
 * prev_term and at most the leader's term (a leader only holds entries of its term or
 * earlier ones, §5.3 Log Matching). */
static int check_append(const Platoon__Raft__V1__AppendEntriesRequest *a)
{
    if (a->n_entries > 0 && a->entries == NULL) {
        return PT_EMALFORMED;
    }
    if (a->prev_term > a->term) {
        return PT_EMALFORMED;
    }
    if (a->n_entries > UINT64_MAX - a->prev_index) {
        return PT_EMALFORMED;
    }
    uint64_t last_term = a->prev_term;
    for (size_t i = 0; i < a->n_entries; i++) {
        const pb_entry *en = a->entries[i];
        if (en == NULL || en->index != a->prev_index + 1 + i) {
            return PT_EMALFORMED;
        }
        if (en->term < last_term || en->term > a->term || en->term == 0) {
            return PT_EMALFORMED;
        }
        int type = (int)en->type;
        if (type != PRAFT_ENTRY_NORMAL && type != PRAFT_ENTRY_NOOP && type != PRAFT_ENTRY_CONFIG) {
            return PT_EMALFORMED;
        }
        if (en->data.len > UINT32_MAX || (en->data.len > 0 && en->data.data == NULL)) {
            return PT_EMALFORMED;
        }
        last_term = en->term;
    }
    return 0;
}

/* A chunk lies within its snapshot, and the last one ends it (§7). */
static int check_snapshot(const Platoon__Raft__V1__InstallSnapshotRequest *s)
{
    if (s->meta == NULL || s->meta->index == 0 || s->meta->term == 0 || s->meta->term > s->term) {
        return PT_EMALFORMED;
    }
    if (s->data.len > 0 && s->data.data == NULL) {
        return PT_EMALFORMED;
    }
    if (s->offset > s->meta->size || s->data.len > s->meta->size - s->offset) {
        return PT_EMALFORMED;
    }
    if (s->done && s->offset + s->data.len != s->meta->size) {
        return PT_EMALFORMED;
    }
    return 0;
}

/* Rounds @n up to a multiple of 8, so that the parts of a decoded block stay aligned. */
static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

int pnet__msg_from_pb(const pb_message *pb, praft_msg **out)
{
    size_t n_entries = 0, data_bytes = 0;
    bool need_meta = false;
    int rc;

    if (pb == NULL || out == NULL) {
        return PT_EINVAL;
    }
    if (pb->from == PRAFT_NONE || pb->to == PRAFT_NONE) {
        return PT_EMALFORMED;
    }

    /* First pass: validate and size the block. */
    switch (pb->body_case) {
    case PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_APPEND:
        if (pb->append == NULL || check_append(pb->append) != 0) {
            return PT_EMALFORMED;
        }
        n_entries = pb->append->n_entries;
        for (size_t i = 0; i < n_entries; i++) {
            data_bytes += align8(pb->append->entries[i]->data.len);
        }
        break;
    case PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_SNAPSHOT:
        if (pb->snapshot == NULL || check_snapshot(pb->snapshot) != 0) {
            return PT_EMALFORMED;
        }
        need_meta = true;
        data_bytes = pb->snapshot->data.len;
        break;
    case PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_SNAPSHOT_RESPONSE:
        if (pb->snapshot_response == NULL) {
            return PT_EMALFORMED;
        }
        need_meta = true;
        break;
    case PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_APPEND_RESPONSE:
    case PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_VOTE:
    case PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_VOTE_RESPONSE:
    case PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_HEARTBEAT:
    case PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_HEARTBEAT_RESPONSE:
    case PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_TIMEOUT_NOW:
    case PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_READ_INDEX:
    case PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_READ_INDEX_RESPONSE:
        /* The union's members are all pointers: any of them tells whether the body is there. */
        if (pb->append_response == NULL) {
            return PT_EMALFORMED;
        }
        break;
    default:
        return PT_EMALFORMED;
    }

    /* Every size below is bounded by the length of the bytes protobuf-c already parsed. */
    size_t off_entries = align8(sizeof(praft_msg));
    size_t off_meta = off_entries + align8(n_entries * sizeof(praft_entry));
    size_t off_data = off_meta + (need_meta ? align8(sizeof(praft_snapshot_meta)) : 0);
    uint8_t *block = calloc(1, off_data + data_bytes + 1);
    if (block == NULL) {
        return PT_ENOMEM;
    }
    praft_msg *m = (praft_msg *)block;
    uint8_t *data = block + off_data;
    m->from = pb->from;
    m->to = pb->to;
    if (need_meta) {
        m->snapshot = (praft_snapshot_meta *)(block + off_meta);
    }

    switch (pb->body_case) {
    case PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_APPEND: {
        const Platoon__Raft__V1__AppendEntriesRequest *a = pb->append;
        m->type = PRAFT_MSG_APPEND;
        m->term = a->term;
        m->prev_index = a->prev_index;
        m->prev_term = a->prev_term;
        m->commit = a->commit;
        m->n_entries = n_entries;
        m->entries = n_entries > 0 ? (praft_entry *)(block + off_entries) : NULL;
        for (size_t i = 0; i < n_entries; i++) {
            const pb_entry *src = a->entries[i];
            praft_entry *dst = &m->entries[i];
            dst->term = src->term;
            dst->index = src->index;
            dst->type = (uint32_t)src->type;
            dst->len = (uint32_t)src->data.len;
            if (src->data.len > 0) {
                dst->data = data;
                memcpy(data, src->data.data, src->data.len);
                data += align8(src->data.len);
            }
        }
        break;
    }
    case PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_APPEND_RESPONSE: {
        const Platoon__Raft__V1__AppendEntriesResponse *r = pb->append_response;
        m->type = PRAFT_MSG_APPEND_RESP;
        m->term = r->term;
        m->index = r->index;
        m->reject = r->reject;
        m->hint_index = r->hint_index;
        m->hint_term = r->hint_term;
        break;
    }
    case PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_VOTE: {
        const Platoon__Raft__V1__RequestVoteRequest *v = pb->vote;
        m->type = v->pre_vote ? PRAFT_MSG_PREVOTE : PRAFT_MSG_VOTE;
        m->term = v->term;
        m->last_index = v->last_index;
        m->last_term = v->last_term;
        m->transfer = v->transfer;
        /* A candidate's log cannot end in a term later than the one it campaigns in. */
        if (v->last_term > v->term) {
            rc = PT_EMALFORMED;
            goto fail;
        }
        break;
    }
    case PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_VOTE_RESPONSE: {
        const Platoon__Raft__V1__RequestVoteResponse *v = pb->vote_response;
        m->type = v->pre_vote ? PRAFT_MSG_PREVOTE_RESP : PRAFT_MSG_VOTE_RESP;
        m->term = v->term;
        m->reject = v->reject;
        break;
    }
    case PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_HEARTBEAT: {
        const Platoon__Raft__V1__HeartbeatRequest *h = pb->heartbeat;
        m->type = PRAFT_MSG_HEARTBEAT;
        m->term = h->term;
        m->commit = h->commit;
        m->context = h->context;
        break;
    }
    case PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_HEARTBEAT_RESPONSE: {
        const Platoon__Raft__V1__HeartbeatResponse *h = pb->heartbeat_response;
        m->type = PRAFT_MSG_HEARTBEAT_RESP;
        m->term = h->term;
        m->context = h->context;
        break;
    }
    case PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_SNAPSHOT: {
        const Platoon__Raft__V1__InstallSnapshotRequest *s = pb->snapshot;
        m->type = PRAFT_MSG_SNAPSHOT;
        m->term = s->term;
        m->snapshot->index = s->meta->index;
        m->snapshot->term = s->meta->term;
        m->snapshot->size = s->meta->size;
        m->snapshot->checksum = s->meta->checksum;
        rc = dec_config(s->meta->config, &m->snapshot->config);
        if (rc != 0) {
            goto fail;
        }
        m->offset = s->offset;
        m->len = s->data.len;
        m->done = s->done;
        if (s->data.len > 0) {
            m->data = data;
            memcpy(data, s->data.data, s->data.len);
        }
        break;
    }
    case PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_SNAPSHOT_RESPONSE: {
        const Platoon__Raft__V1__InstallSnapshotResponse *s = pb->snapshot_response;
        m->type = PRAFT_MSG_SNAPSHOT_RESP;
        m->term = s->term;
        m->snapshot->index = s->snapshot_index;
        m->snapshot->term = s->snapshot_term;
        m->offset = s->offset;
        m->reject = s->reject;
        m->index = s->index;
        break;
    }
    case PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_TIMEOUT_NOW:
        m->type = PRAFT_MSG_TIMEOUT_NOW;
        m->term = pb->timeout_now->term;
        break;
    case PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_READ_INDEX:
        m->type = PRAFT_MSG_READ_INDEX;
        m->term = pb->read_index->term;
        m->context = pb->read_index->context;
        break;
    case PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_READ_INDEX_RESPONSE:
        m->type = PRAFT_MSG_READ_INDEX_RESP;
        m->term = pb->read_index_response->term;
        m->context = pb->read_index_response->context;
        m->index = pb->read_index_response->index;
        m->reject = pb->read_index_response->reject;
        break;
    default:
        break; /* excluded by the first pass */
    }
    *out = m;
    return 0;
fail:
    free(block);
    return rc;
}

int pnet_msg_decode(const uint8_t *buf, size_t len, praft_msg **out)
{
    pb_message *pb;
    int rc;

    if (out == NULL || (buf == NULL && len > 0)) {
        return PT_EINVAL;
    }
    pt_decode_arena da; /* decoded there, then copied (pnet__msg_from_pb) */
    pb = platoon__raft__v1__raft_message__unpack(pt__decode_arena_init(&da), len, buf);
    rc = pb != NULL ? pnet__msg_from_pb(pb, out) : PT_EMALFORMED;
    pt__decode_arena_release(&da);
    return rc;
}

void pnet_msg_free(praft_msg *msg)
{
    free(msg);
}

int pnet__batch_decode(const uint8_t *buf, size_t len, int lane,
                       void (*fn)(void *ctx, praft_msg *msg), void *ctx, uint64_t *n_bad)
{
    Platoon__Raft__V1__RaftBatch *batch;
    int rc = 0;

    if (buf == NULL && len > 0) {
        return PT_EINVAL;
    }
    pt_decode_arena da;
    batch = platoon__raft__v1__raft_batch__unpack(pt__decode_arena_init(&da), len, buf);
    if (batch == NULL) {
        pt__decode_arena_release(&da);
        return PT_EMALFORMED;
    }
    for (size_t i = 0; i < batch->n_messages; i++) {
        praft_msg *m = NULL;
        int r = pnet__msg_from_pb(batch->messages[i], &m);
        if (r == PT_ENOMEM) {
            rc = r;
            break;
        }
        if (r != 0 || pnet__lane_of(m->type) != lane) {
            pnet_msg_free(m);
            if (n_bad != NULL) {
                (*n_bad)++;
            }
            continue;
        }
        fn(ctx, m);
    }
    pt__decode_arena_release(&da);
    return rc;
}
