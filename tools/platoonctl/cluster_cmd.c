/*
 * platoonctl cluster status|add|promote|remove|transfer|snapshot.
 *
 * Status asks every member for its own view, not one node for everybody's: a node only
 * knows its own role, term and indices for sure, and an operator looking for a sick member
 * needs to see that it does not answer. The member list comes from the leader when it can be
 * reached (a follower's may lag one change behind), else from any node that has one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/status.h>

#include "args.h"
#include "ctl.h"
#include "output.h"
#include "rpc.h"

#define NFLAGS(f) (sizeof(f) / sizeof((f)[0]))

typedef Platoon__V1__StatusResponse status_msg;

/* One member as seen by `cluster status`. */
typedef struct member_view {
    uint64_t id;
    char address[PCTL_ADDRESS_MAX];
    bool voter;
    status_msg *st; /* its own answer, NULL when unreachable */
    pctl_status err;
} member_view;

typedef struct cluster_view {
    member_view m[PCTL_MAX_ENDPOINTS * 2];
    size_t n;
    const status_msg *leader; /* the answer of the member that is leader, if any */
} cluster_view;

static void view_free(cluster_view *v)
{
    for (size_t i = 0; i < v->n; i++) {
        if (v->m[i].st != NULL) {
            protobuf_c_message_free_unpacked(&v->m[i].st->base, NULL);
        }
    }
    v->n = 0;
}

static status_msg *status_at(pctl_client *c, const char *address, int64_t deadline, pctl_status *st)
{
    Platoon__V1__StatusRequest req = PLATOON__V1__STATUS_REQUEST__INIT;
    status_msg *resp = NULL;
    memset(st, 0, sizeof(*st));
    if (pctl_call_at(c, address, PCTL_M_STATUS, &req.base,
                     &platoon__v1__status_response__descriptor, deadline,
                     (ProtobufCMessage **)&resp, st) != 0) {
        return NULL;
    }
    return resp;
}

/*
 * Any node's Status answer that lists members: the endpoints are tried in turn until one
 * answers with a non-empty configuration (a node started with --join has none yet).
 */
static status_msg *any_status(const pctl_opts *o, pctl_client *c, pctl_status *st)
{
    int64_t deadline = pctl_now_ms() + o->timeout_ms;
    status_msg *fallback = NULL;
    pctl_status fallback_st;
    memset(&fallback_st, 0, sizeof(fallback_st));
    do {
        for (size_t i = 0; i < pctl_client_n_endpoints(c); i++) {
            status_msg *s = status_at(c, pctl_client_endpoint(c, i), deadline, st);
            if (s == NULL) {
                fallback_st.connected = fallback_st.connected || st->connected;
                continue;
            }
            if (s->n_members > 0) {
                if (fallback != NULL) {
                    protobuf_c_message_free_unpacked(&fallback->base, NULL);
                }
                return s;
            }
            if (fallback == NULL) {
                fallback = s;
                fallback_st = *st;
            } else {
                protobuf_c_message_free_unpacked(&s->base, NULL);
            }
        }
        if (fallback != NULL) {
            *st = fallback_st;
            return fallback;
        }
        pctl_sleep_ms(100);
    } while (pctl_now_ms() < deadline && !pctl_interrupted);
    st->connected = fallback_st.connected;
    return NULL;
}

static member_view *view_find(cluster_view *v, uint64_t id)
{
    for (size_t i = 0; i < v->n; i++) {
        if (v->m[i].id == id) {
            return &v->m[i];
        }
    }
    return NULL;
}

/* Adds the members of @s that @v lacks, and asks each new one for its status. */
static void view_add_members(pctl_client *c, cluster_view *v, const status_msg *s, int64_t deadline)
{
    for (size_t i = 0; i < s->n_members; i++) {
        const Platoon__V1__Member *mem = s->members[i];
        member_view *m = view_find(v, mem->id);
        if (m != NULL) {
            m->voter = mem->voter; /* the later (leader's) word wins */
            continue;
        }
        if (v->n == sizeof(v->m) / sizeof(v->m[0])) {
            return;
        }
        m = &v->m[v->n++];
        memset(m, 0, sizeof(*m));
        m->id = mem->id;
        m->voter = mem->voter;
        snprintf(m->address, sizeof(m->address), "%s", mem->address);
        m->st = status_at(c, m->address, deadline, &m->err);
    }
}

/* Builds the view; returns 0 or the exit code of a report already printed. */
static int view_build(const pctl_opts *o, pctl_client *c, cluster_view *v)
{
    memset(v, 0, sizeof(*v));
    pctl_status st;
    status_msg *first = any_status(o, c, &st);
    if (first == NULL) {
        return pctl_report(o, "cluster status", &st);
    }
    int64_t deadline = pctl_now_ms() + o->timeout_ms;
    view_add_members(c, v, first, deadline);
    protobuf_c_message_free_unpacked(&first->base, NULL);
    /* The leader of the highest term is the authority on membership. */
    for (size_t i = 0; i < v->n; i++) {
        const status_msg *s = v->m[i].st;
        if (s != NULL && s->role == PLATOON__V1__ROLE__ROLE_LEADER &&
            (v->leader == NULL || s->term > v->leader->term)) {
            v->leader = s;
        }
    }
    if (v->leader != NULL) {
        view_add_members(c, v, v->leader, deadline);
        /* Members the leader no longer lists (a removal this node had not yet seen). */
        for (size_t i = 0; i < v->n;) {
            bool listed = false;
            for (size_t k = 0; k < v->leader->n_members; k++) {
                listed = listed || v->leader->members[k]->id == v->m[i].id;
            }
            if (listed) {
                i++;
                continue;
            }
            if (v->m[i].st == v->leader) {
                i++; /* cannot happen: a leader lists itself until it steps down */
                continue;
            }
            if (v->m[i].st != NULL) {
                protobuf_c_message_free_unpacked(&v->m[i].st->base, NULL);
            }
            memmove(&v->m[i], &v->m[i + 1], (v->n - i - 1) * sizeof(v->m[0]));
            v->n--;
        }
    }
    return 0;
}

static uint64_t view_reference_index(const cluster_view *v)
{
    if (v->leader != NULL) {
        return v->leader->last_index;
    }
    uint64_t best = 0;
    for (size_t i = 0; i < v->n; i++) {
        if (v->m[i].st != NULL && v->m[i].st->commit_index > best) {
            best = v->m[i].st->commit_index;
        }
    }
    return best;
}

int pctl_cluster_status(const pctl_opts *o, pctl_client *c, int argc, char **argv)
{
    const char *pos[1];
    size_t n_pos;
    char err[256];
    if (pctl_parse_args(argc, argv, NULL, 0, pos, 0, &n_pos, err, sizeof(err))) {
        return pctl_usage_error(o, "cluster status: %s", err);
    }
    cluster_view *v = malloc(sizeof(*v));
    if (v == NULL) {
        return pctl_fail(o, PCTL_EXIT_SERVER, "cluster status: out of memory");
    }
    int rc = view_build(o, c, v);
    if (rc != 0) {
        free(v);
        return rc;
    }
    uint64_t ref = view_reference_index(v);
    uint64_t leader_id = v->leader != NULL ? v->leader->id : 0;
    uint64_t term = v->leader != NULL ? v->leader->term : 0;
    size_t reachable = 0;
    json_t *arr = o->json ? json_array() : NULL;
    pctl_table t;
    pctl_table_init(&t, ">ID|ADDRESS|KIND|ROLE|>TERM|>LEADER|>COMMIT|>APPLIED|>LAST|>SNAPSHOT|"
                        ">MATCH|>LAG|CONTACT|STATE");
    for (size_t i = 0; i < v->n; i++) {
        const member_view *m = &v->m[i];
        const status_msg *s = m->st;
        /* An answer from another node than the member (two members at one address, or a
         * member added at a wrong address) says nothing about the member. */
        bool wrong_node = s != NULL && s->id != m->id;
        reachable += s != NULL && !wrong_node;
        /* Replication is the leader's to judge (its progress for the member: state, match,
         * last contact), never the member's own answer: a member that never started or sits
         * behind a wrong address would otherwise look healthy. */
        const Platoon__V1__Progress *p = NULL;
        if (v->leader != NULL) {
            for (size_t k = 0; k < v->leader->n_followers; k++) {
                if (v->leader->followers[k]->id == m->id) {
                    p = v->leader->followers[k];
                }
            }
        }
        bool is_leader = v->leader != NULL && m->id == leader_id && !wrong_node;
        uint64_t match = is_leader ? v->leader->last_index : p != NULL ? p->match_index : 0;
        uint64_t lag = ref > match ? ref - match : 0;
        char state[96], contact[32];
        if (v->leader == NULL) {
            snprintf(state, sizeof(state), "%s", "no leader");
            snprintf(contact, sizeof(contact), "-");
        } else if (is_leader) {
            snprintf(state, sizeof(state), "%s", "leader");
            snprintf(contact, sizeof(contact), "-");
        } else if (p == NULL) {
            snprintf(state, sizeof(state), "%s", "unknown to the leader");
            snprintf(contact, sizeof(contact), "-");
        } else {
            bool never = p->last_contact_ms < 0;
            snprintf(state, sizeof(state), "%s%s", p->state,
                     never                 ? ", never heard from"
                     : !p->recently_active ? ", not heard from recently"
                                           : "");
            if (never) {
                snprintf(contact, sizeof(contact), "never");
            } else {
                snprintf(contact, sizeof(contact), "%.1fs ago", (double)p->last_contact_ms / 1000);
            }
        }
        if (wrong_node) {
            size_t used = strlen(state);
            snprintf(state + used, sizeof(state) - used, "; %s answers as node %llu", m->address,
                     (unsigned long long)s->id);
        } else if (s == NULL) {
            size_t used = strlen(state);
            snprintf(state + used, sizeof(state) - used, "; unreachable");
        }
        if (arr != NULL) {
            json_t *j =
                json_pack("{s:I, s:s, s:b, s:b, s:s, s:I, s:I}", "id", (json_int_t)m->id, "address",
                          m->address, "voter", m->voter, "reachable", s != NULL && !wrong_node,
                          "state", state, "match_index", (json_int_t)match, "lag", (json_int_t)lag);
            if (p != NULL) {
                json_object_set_new(j, "last_contact_ms",
                                    p->last_contact_ms >= 0 ? json_integer(p->last_contact_ms)
                                                            : json_null());
                json_object_set_new(j, "recently_active", json_boolean(p->recently_active));
            }
            if (s != NULL && !wrong_node) {
                json_object_update_new(
                    j,
                    json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "role",
                              pctl_role_name(s->role), "term", (json_int_t)s->term, "leader_id",
                              (json_int_t)s->leader_id, "commit_index", (json_int_t)s->commit_index,
                              "applied_index", (json_int_t)s->applied_index, "last_index",
                              (json_int_t)s->last_index, "first_index", (json_int_t)s->first_index,
                              "snapshot_index", (json_int_t)s->snapshot_index));
            } else {
                json_object_set_new(j, "error", json_string(wrong_node ? state : m->err.message));
            }
            json_array_append_new(arr, j);
            continue;
        }
        pctl_table_cell(&t, "%llu", (unsigned long long)m->id);
        pctl_table_cell(&t, "%s", m->address);
        pctl_table_cell(&t, "%s", m->voter ? "voter" : "learner");
        if (s == NULL || wrong_node) {
            for (int k = 0; k < 7; k++) { /* ROLE .. SNAPSHOT */
                pctl_table_cell(&t, "-");
            }
        } else {
            pctl_table_cell(&t, "%s", pctl_role_name(s->role));
            pctl_table_cell(&t, "%llu", (unsigned long long)s->term);
            pctl_table_cell(&t, "%llu", (unsigned long long)s->leader_id);
            pctl_table_cell(&t, "%llu", (unsigned long long)s->commit_index);
            pctl_table_cell(&t, "%llu", (unsigned long long)s->applied_index);
            pctl_table_cell(&t, "%llu", (unsigned long long)s->last_index);
            pctl_table_cell(&t, "%llu", (unsigned long long)s->snapshot_index);
        }
        if (v->leader != NULL) {
            pctl_table_cell(&t, "%llu", (unsigned long long)match);
            pctl_table_cell(&t, "%llu", (unsigned long long)lag);
        } else {
            pctl_table_cell(&t, "-");
            pctl_table_cell(&t, "-");
        }
        pctl_table_cell(&t, "%s", contact);
        pctl_table_cell(&t, "%s", state);
    }
    if (arr != NULL) {
        pctl_json_print(json_pack("{s:I, s:I, s:o}", "leader_id", (json_int_t)leader_id, "term",
                                  (json_int_t)term, "members", arr));
    } else {
        if (leader_id != 0) {
            printf("%zu members, %zu reachable; leader %llu in term %llu\n", v->n, reachable,
                   (unsigned long long)leader_id, (unsigned long long)term);
        } else {
            printf("%zu members, %zu reachable; no leader reachable\n", v->n, reachable);
        }
        pctl_table_print(&t, stdout);
    }
    pctl_table_free(&t);
    view_free(v);
    free(v);
    if (leader_id == 0) {
        /* The members' own answers are shown, but without a leader the cluster can take no
         * write: a script checking health must see that. */
        fprintf(stderr, "platoonctl: cluster status: no leader reachable\n");
        return PCTL_EXIT_UNREACHABLE;
    }
    return PCTL_EXIT_OK;
}

/* The configuration as the cluster reports it; a NULL return has been reported. */
static status_msg *members_or_report(const pctl_opts *o, pctl_client *c, const char *what, int *rc)
{
    Platoon__V1__StatusRequest req = PLATOON__V1__STATUS_REQUEST__INIT;
    status_msg *s = NULL;
    pctl_status st;
    if (pctl_call(c, PCTL_M_STATUS, &req.base, &platoon__v1__status_response__descriptor, true,
                  (ProtobufCMessage **)&s, &st) != 0) {
        *rc = pctl_report(o, what, &st);
        return NULL;
    }
    return s;
}

static const Platoon__V1__Member *find_member(const status_msg *s, uint64_t id)
{
    for (size_t i = 0; i < s->n_members; i++) {
        if (s->members[i]->id == id) {
            return s->members[i];
        }
    }
    return NULL;
}

/* Shows the members a change answered with. */
static void show_members(const pctl_opts *o, const char *summary, Platoon__V1__Member **members,
                         size_t n)
{
    if (o->json) {
        pctl_json_print(
            json_pack("{s:s, s:o}", "result", summary, "members", pctl_json_members(members, n)));
        return;
    }
    printf("%s\n", summary);
    pctl_print_members(members, n, stdout);
}

static int parse_member_id(const pctl_opts *o, const char *cmd, const char *s, uint64_t *id)
{
    if (!pctl_parse_u64(s, 1, UINT64_MAX, id)) {
        return pctl_usage_error(o, "%s: member ID '%s' must be a positive integer", cmd, s);
    }
    return 0;
}

static int add_member(const pctl_opts *o, pctl_client *c, const char *what, uint64_t id,
                      const char *address, bool learner, const char *summary)
{
    Platoon__V1__AddMemberRequest req = PLATOON__V1__ADD_MEMBER_REQUEST__INIT;
    req.id = id;
    req.address = (char *)address;
    req.learner = learner;
    Platoon__V1__AddMemberResponse *resp = NULL;
    pctl_status st;
    /* Not retried after UNAVAILABLE: the change may have been made. */
    if (pctl_call(c, PCTL_M_ADD, &req.base, &platoon__v1__add_member_response__descriptor, false,
                  (ProtobufCMessage **)&resp, &st) != 0) {
        return pctl_report(o, what, &st);
    }
    show_members(o, summary, resp->members, resp->n_members);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return PCTL_EXIT_OK;
}

int pctl_cluster_add(const pctl_opts *o, pctl_client *c, int argc, char **argv)
{
    pctl_flag flags[] = {{.name = "--learner", .is_switch = true}};
    const char *pos[2];
    size_t n_pos;
    char err[256];
    if (pctl_parse_args(argc, argv, flags, NFLAGS(flags), pos, 2, &n_pos, err, sizeof(err))) {
        return pctl_usage_error(o, "cluster add: %s", err);
    }
    if (n_pos != 2) {
        return pctl_usage_error(o, "cluster add: expected ID and ADDRESS (host:port)");
    }
    uint64_t id;
    int rc = parse_member_id(o, "cluster add", pos[0], &id);
    if (rc != 0) {
        return rc;
    }
    const char *colon = strrchr(pos[1], ':');
    if (colon == NULL || colon == pos[1] || colon[1] == '\0') {
        return pctl_usage_error(o, "cluster add: address '%s' must be HOST:PORT", pos[1]);
    }
    char summary[PCTL_ADDRESS_MAX + 128];
    snprintf(summary, sizeof(summary), "member %llu (%s) added as a %s", (unsigned long long)id,
             pos[1], flags[0].seen ? "learner" : "voter");
    return add_member(o, c, "cluster add", id, pos[1], flags[0].seen, summary);
}

int pctl_cluster_promote(const pctl_opts *o, pctl_client *c, int argc, char **argv)
{
    const char *pos[1];
    size_t n_pos;
    char err[256];
    if (pctl_parse_args(argc, argv, NULL, 0, pos, 1, &n_pos, err, sizeof(err)) || n_pos != 1) {
        return pctl_usage_error(o, "cluster promote: expected one member ID");
    }
    uint64_t id;
    int rc = parse_member_id(o, "cluster promote", pos[0], &id);
    if (rc != 0) {
        return rc;
    }
    /* Promotion is AddMember of an existing learner; check first that it is one, so that the
     * answer names the real problem rather than a missing address. */
    status_msg *s = members_or_report(o, c, "cluster promote", &rc);
    if (s == NULL) {
        return rc;
    }
    const Platoon__V1__Member *m = find_member(s, id);
    char address[PCTL_ADDRESS_MAX] = "";
    if (m == NULL) {
        rc = pctl_fail(o, PCTL_EXIT_NOT_FOUND, "cluster promote %llu: not found: no such member",
                       (unsigned long long)id);
    } else if (m->voter) {
        rc = pctl_fail(o, PCTL_EXIT_SERVER, "cluster promote %llu: already a voting member",
                       (unsigned long long)id);
    } else {
        snprintf(address, sizeof(address), "%s", m->address);
    }
    protobuf_c_message_free_unpacked(&s->base, NULL);
    if (address[0] == '\0') {
        return rc;
    }
    char summary[PCTL_ADDRESS_MAX + 128];
    snprintf(summary, sizeof(summary), "member %llu (%s) promoted to voter", (unsigned long long)id,
             address);
    return add_member(o, c, "cluster promote", id, address, false, summary);
}

int pctl_cluster_remove(const pctl_opts *o, pctl_client *c, int argc, char **argv)
{
    const char *pos[1];
    size_t n_pos;
    char err[256];
    if (pctl_parse_args(argc, argv, NULL, 0, pos, 1, &n_pos, err, sizeof(err)) || n_pos != 1) {
        return pctl_usage_error(o, "cluster remove: expected one member ID");
    }
    uint64_t id;
    int rc = parse_member_id(o, "cluster remove", pos[0], &id);
    if (rc != 0) {
        return rc;
    }
    status_msg *s = members_or_report(o, c, "cluster remove", &rc);
    if (s == NULL) {
        return rc;
    }
    bool known = find_member(s, id) != NULL;
    protobuf_c_message_free_unpacked(&s->base, NULL);
    if (!known) {
        return pctl_fail(o, PCTL_EXIT_NOT_FOUND, "cluster remove %llu: not found: no such member",
                         (unsigned long long)id);
    }
    Platoon__V1__RemoveMemberRequest req = PLATOON__V1__REMOVE_MEMBER_REQUEST__INIT;
    req.id = id;
    Platoon__V1__RemoveMemberResponse *resp = NULL;
    pctl_status st;
    if (pctl_call(c, PCTL_M_REMOVE, &req.base, &platoon__v1__remove_member_response__descriptor,
                  false, (ProtobufCMessage **)&resp, &st) != 0) {
        return pctl_report(o, "cluster remove", &st);
    }
    char summary[128];
    snprintf(summary, sizeof(summary), "member %llu removed", (unsigned long long)id);
    show_members(o, summary, resp->members, resp->n_members);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return PCTL_EXIT_OK;
}

int pctl_cluster_transfer(const pctl_opts *o, pctl_client *c, int argc, char **argv)
{
    const char *pos[1];
    size_t n_pos;
    char err[256];
    if (pctl_parse_args(argc, argv, NULL, 0, pos, 1, &n_pos, err, sizeof(err))) {
        return pctl_usage_error(o, "cluster transfer: %s", err);
    }
    uint64_t to = 0;
    if (n_pos == 1) {
        int rc = parse_member_id(o, "cluster transfer", pos[0], &to);
        if (rc != 0) {
            return rc;
        }
    }
    Platoon__V1__TransferLeadershipRequest req = PLATOON__V1__TRANSFER_LEADERSHIP_REQUEST__INIT;
    req.to = to;
    Platoon__V1__TransferLeadershipResponse *resp = NULL;
    pctl_status st;
    if (pctl_call(c, PCTL_M_TRANSFER, &req.base,
                  &platoon__v1__transfer_leadership_response__descriptor, false,
                  (ProtobufCMessage **)&resp, &st) != 0) {
        return pctl_report(o, "cluster transfer", &st);
    }
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    /* The answer comes once another node leads; ask who, for the operator. */
    int rc = 0;
    status_msg *s = members_or_report(o, c, "cluster transfer", &rc);
    if (s == NULL) {
        return rc;
    }
    if (o->json) {
        pctl_json_print(json_pack("{s:I, s:I}", "leader_id", (json_int_t)s->leader_id, "term",
                                  (json_int_t)s->term));
    } else {
        printf("leadership transferred: member %llu leads in term %llu\n",
               (unsigned long long)s->leader_id, (unsigned long long)s->term);
    }
    protobuf_c_message_free_unpacked(&s->base, NULL);
    return PCTL_EXIT_OK;
}

int pctl_cluster_snapshot(const pctl_opts *o, pctl_client *c, int argc, char **argv)
{
    const char *pos[1];
    size_t n_pos;
    char err[256];
    if (pctl_parse_args(argc, argv, NULL, 0, pos, 1, &n_pos, err, sizeof(err))) {
        return pctl_usage_error(o, "cluster snapshot: %s", err);
    }
    uint64_t only = 0;
    if (n_pos == 1) {
        int rc = parse_member_id(o, "cluster snapshot", pos[0], &only);
        if (rc != 0) {
            return rc;
        }
    }
    int rc = 0;
    status_msg *s = members_or_report(o, c, "cluster snapshot", &rc);
    if (s == NULL) {
        return rc;
    }
    if (only != 0 && find_member(s, only) == NULL) {
        protobuf_c_message_free_unpacked(&s->base, NULL);
        return pctl_fail(o, PCTL_EXIT_NOT_FOUND, "cluster snapshot %llu: not found: no such member",
                         (unsigned long long)only);
    }
    /* Each node snapshots its own state machine: ask each one (or the one named). */
    json_t *arr = o->json ? json_array() : NULL;
    pctl_table t;
    pctl_table_init(&t, ">ID|ADDRESS|>SNAPSHOT INDEX|RESULT");
    int64_t deadline = pctl_now_ms() + o->timeout_ms;
    for (size_t i = 0; i < s->n_members; i++) {
        const Platoon__V1__Member *m = s->members[i];
        if (only != 0 && m->id != only) {
            continue;
        }
        Platoon__V1__SnapshotRequest req = PLATOON__V1__SNAPSHOT_REQUEST__INIT;
        Platoon__V1__SnapshotResponse *resp = NULL;
        pctl_status st;
        memset(&st, 0, sizeof(st));
        bool ok = pctl_call_at(c, m->address, PCTL_M_SNAPSHOT, &req.base,
                               &platoon__v1__snapshot_response__descriptor, deadline,
                               (ProtobufCMessage **)&resp, &st) == 0;
        if (!ok) {
            rc = PCTL_EXIT_SERVER;
        }
        if (arr != NULL) {
            json_array_append_new(arr, ok ? json_pack("{s:I, s:s, s:I}", "id", (json_int_t)m->id,
                                                      "address", m->address, "index",
                                                      (json_int_t)resp->index)
                                          : json_pack("{s:I, s:s, s:s}", "id", (json_int_t)m->id,
                                                      "address", m->address, "error", st.message));
        } else {
            pctl_table_cell(&t, "%llu", (unsigned long long)m->id);
            pctl_table_cell(&t, "%s", m->address);
            if (ok) {
                pctl_table_cell(&t, "%llu", (unsigned long long)resp->index);
                pctl_table_cell(&t, "ok");
            } else {
                pctl_table_cell(&t, "-");
                pctl_table_cell(&t, "%s: %s", pctl_grpc_code_name(st.code), st.message);
            }
        }
        if (resp != NULL) {
            protobuf_c_message_free_unpacked(&resp->base, NULL);
        }
    }
    if (arr != NULL) {
        pctl_json_print(json_pack("{s:o}", "snapshots", arr));
    } else {
        pctl_table_print(&t, stdout);
    }
    pctl_table_free(&t);
    protobuf_c_message_free_unpacked(&s->base, NULL);
    return rc;
}
