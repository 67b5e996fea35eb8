/*
 * Pending requests: everything a client waits for on this node, and the rules that give each
 * one exactly one answer.
 *
 *   proposal  answered when its entry is applied here; if another entry (of another term) is
 *             applied at its index, the command was lost (§5.3: a new leader overwrote it) and
 *             the client gets UNAVAILABLE, meaning "unknown": retrying with the same client
 *             session is safe because the state machine deduplicates.
 *   read      a ReadIndex round (thesis §6.4), then a wait until this node has applied up to
 *             the read index, then the query.
 *   forward   relayed to the leader and back.
 *   leader    a request that needs a leader waits (up to leader_wait_ms) for one to be known.
 * Every request also has the client's deadline: DEADLINE_EXCEEDED once it passes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "node/node_internal.h"

int64_t pnode_now_ms(void)
{
    return pnet_now_ms();
}

uint64_t pnode_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Unlinks and returns the first request of a list, or NULL if it is empty. Loops that answer
 * requests from the head take each one off through the sentinel first, so that the list never
 * holds a request its answer has freed. */
static pnode_request *list_take_first(pnode_request *sentinel)
{
    pnode_request *req = sentinel->next;
    if (req == sentinel) {
        return NULL;
    }
    sentinel->next = req->next;
    req->next->prev = sentinel;
    req->prev = req->next = NULL;
    req->linked = false;
    return req;
}

void pnode__request_unlink(pnode *n, pnode_request *req)
{
    (void)n;
    if (req->linked) {
        if (req->stream_ops != NULL) {
            /* Its events (streams.c) must no longer find it: it is about to be freed. */
            pnet_call_stream_set_owner(req->call, NULL);
        }
        req->prev->next = req->next;
        req->next->prev = req->prev;
        req->prev = req->next = NULL;
        req->linked = false;
    }
    req->wait = WAIT_NONE;
}

void pnode__request_wait(pnode *n, pnode_request *req, uint32_t wait)
{
    pnode__request_unlink(n, req);
    req->wait = wait;
    pnode__list_append(wait == WAIT_APPLY ? &n->proposals : &n->pending, req);
}

void pnode__requests_init(pnode *n);
void pnode__requests_init(pnode *n)
{
    pnode__list_init(&n->proposals);
    pnode__list_init(&n->pending);
}

/* The public view of the transport's identity of a caller. */
static void principal_from(pnode_principal *p, const pnet_identity *who, uint64_t via)
{
    memset(p, 0, sizeof(*p));
    if (who == NULL || who->kind == PNET_ID_NONE) {
        return;
    }
    p->authenticated = true;
    p->is_node = who->kind == PNET_ID_NODE;
    p->node_id = p->is_node ? who->node_id : 0;
    snprintf(p->name, sizeof(p->name), "%s", who->name);
    p->role = p->is_node ? PNODE_ROLE_ADMIN : who->role;
    p->has_vehicle = who->has_vehicle;
    p->vehicle_id = who->has_vehicle ? who->vehicle_id : 0;
    p->via = via;
}

pnode_request *pnode__request_new(pnode *n, pnet_call *call, const char *method,
                                  const uint8_t *data, size_t len, int64_t deadline_ms,
                                  const pnet_identity *who, uint64_t via)
{
    pnode_request *req = calloc(1, sizeof(*req));
    if (req == NULL) {
        return NULL;
    }
    req->node = n;
    req->call = call;
    if (who != NULL) {
        req->who_net = *who;
    } else {
        req->who_net.kind = PNET_ID_NONE;
    }
    principal_from(&req->who, who, via);
    if (method != NULL) {
        snprintf(req->method, sizeof(req->method), "%s", method);
    }
    if (len > 0) {
        req->data = malloc(len);
        if (req->data == NULL) {
            free(req);
            return NULL;
        }
        memcpy(req->data, data, len);
    }
    req->len = len;
    req->deadline_ms = deadline_ms;
    return req;
}

static void request_free(pnode_request *req)
{
    if (req->prepared_free != NULL) {
        req->prepared_free(req->prepared);
    } else {
        free(req->prepared);
    }
    free(req->data);
    free(req->query);
    free(req);
}

static void finish_internal(pnode_request *req, int code, const void *data, size_t len)
{
    struct internal_wait *w = req->internal;
    uint8_t *copy = NULL;
    if (code == PNODE_OK && len > 0) {
        copy = malloc(len);
        if (copy == NULL) {
            code = PNODE_RESOURCE_EXHAUSTED;
        } else {
            memcpy(copy, data, len);
        }
    }
    pthread_mutex_lock(&w->mu);
    w->code = code;
    w->result = copy;
    w->result_len = copy ? len : 0;
    w->finished = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

const uint8_t *pnode_request_data(const pnode_request *req, size_t *len)
{
    *len = req->len;
    return req->data;
}

int64_t pnode_request_deadline(const pnode_request *req)
{
    return req->deadline_ms;
}

void pnode_reply(pnode_request *req, const void *data, size_t len)
{
    pnode__request_unlink(req->node, req);
    if (req->internal != NULL) {
        finish_internal(req, PNODE_OK, data, len);
    } else if (req->call != NULL) {
        pnet_call_reply(req->call, data, len);
    }
    request_free(req);
}

void pnode_fail(pnode_request *req, int code, const char *message)
{
    pnode__request_unlink(req->node, req);
    if (req->internal != NULL) {
        finish_internal(req, code == PNODE_OK ? PNODE_UNKNOWN : code, NULL, 0);
    } else if (req->call != NULL) {
        pnet_call_fail(req->call, code == PNODE_OK ? PNODE_UNKNOWN : code, message);
    }
    request_free(req);
}

/* Ends a request's wait: its completion callback answers it, or the default answer does. */
static void complete(pnode *n, pnode_request *req, int code, const char *message,
                     const uint8_t *result, size_t len)
{
    pnode__request_unlink(n, req);
    if (req->proposed_ns != 0) {
        pnode__metrics_proposal(n,
                                code == PNODE_OK                  ? PNODE__PROPOSAL_APPLIED
                                : code == PNODE_DEADLINE_EXCEEDED ? PNODE__PROPOSAL_TIMEOUT
                                : code == PNODE_UNAVAILABLE       ? PNODE__PROPOSAL_LOST
                                                                  : PNODE__PROPOSAL_ABORTED,
                                req->proposed_ns);
        req->proposed_ns = 0;
    }
    if (req->done != NULL) {
        pnode_done_fn done = req->done;
        req->done = NULL;
        done(n, req->done_ctx, req, code, message, result, len);
    } else if (code == PNODE_OK) {
        pnode_reply(req, result, len);
    } else {
        pnode_fail(req, code, message);
    }
}

bool pnode_is_leader(pnode *n)
{
    return n->role == PRAFT_LEADER && !n->sm_failed;
}

uint64_t pnode_leader(pnode *n)
{
    return n->leader;
}

uint64_t pnode_applied(pnode *n)
{
    return n->opts.sm.ops->applied_index(n->opts.sm.ctx);
}

void pnode_submit(pnode *n, pnode_request *req, const void *cmd, size_t len, pnode_done_fn done,
                  void *ctx)
{
    req->done = done;
    req->done_ctx = ctx;
    if (!pnode_is_leader(n)) {
        pnode__metrics_proposal(n, PNODE__PROPOSAL_NOT_LEADER, 0);
        complete(n, req, PNODE_UNAVAILABLE, "this node is not the leader", NULL, 0);
        return;
    }
    uint64_t index = 0, term = 0;
    int rc = praft_propose(n->raft, cmd, len, &index, &term);
    if (rc != 0) {
        pnode__metrics_proposal(
            n, rc == PT_ENOTLEADER ? PNODE__PROPOSAL_NOT_LEADER : PNODE__PROPOSAL_REFUSED, 0);
        complete(n, req, pnode__code(rc), pt_strerror(rc), NULL, 0);
        return;
    }
    req->index = index;
    req->term = term;
    req->proposed_ns = pnode__now_ns();
    pnode__request_wait(n, req, WAIT_APPLY);
}

static void run_query(pnode *n, pnode_request *req)
{
    uint8_t *result = NULL;
    size_t result_len = 0;
    const pnode_sm *sm = &n->opts.sm;
    int rc = sm->ops->query(sm->ctx, req->query, req->query_len, &result, &result_len);
    if (rc != 0) {
        complete(n, req, rc == PT_ENOMEM ? PNODE_RESOURCE_EXHAUSTED : PNODE_INVALID_ARGUMENT,
                 pt_strerror(rc), NULL, 0);
    } else {
        complete(n, req, PNODE_OK, NULL, result, result_len);
    }
    free(result);
}

static void wait_for_leader(pnode *n, pnode_request *req, uint32_t then)
{
    req->then = then;
    /* Without a leader for longer than a request would wait for one, waiting again changes
     * nothing: answer at once, saying since when (a removed node, one cut off from the
     * majority, or a second process with a member's id stays here for good). */
    if (n->no_leader_since_ms != 0 && req->leader_deadline_ms == 0 &&
        pnode_now_ms() - n->no_leader_since_ms > (int64_t)n->opts.leader_wait_ms) {
        char why[200];
        complete(n, req, PNODE_UNAVAILABLE, pnode__no_leader_message(n, why, sizeof(why)), NULL, 0);
        return;
    }
    if (req->leader_deadline_ms == 0) {
        req->leader_deadline_ms = pnode_now_ms() + n->opts.leader_wait_ms;
    }
    pnode__request_wait(n, req, WAIT_LEADER);
}

static void start_read_index(pnode *n, pnode_request *req)
{
    if (n->leader == PRAFT_NONE) {
        wait_for_leader(n, req, THEN_READ);
        return;
    }
    uint64_t context = ++n->next_context;
    int rc = praft_read_index(n->raft, context);
    if (rc == PT_ENOTLEADER) {
        wait_for_leader(n, req, THEN_READ);
        return;
    }
    if (rc != 0) {
        complete(n, req, pnode__code(rc), pt_strerror(rc), NULL, 0);
        return;
    }
    req->context = context;
    pnode__request_wait(n, req, WAIT_READ);
}

void pnode_query(pnode *n, pnode_request *req, bool linearizable, const void *query, size_t len,
                 pnode_done_fn done, void *ctx)
{
    req->done = done;
    req->done_ctx = ctx;
    free(req->query);
    req->query = NULL;
    req->query_len = 0;
    if (len > 0) {
        req->query = malloc(len);
        if (req->query == NULL) {
            complete(n, req, PNODE_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
            return;
        }
        memcpy(req->query, query, len);
        req->query_len = len;
    }
    if (!linearizable) {
        if (pnode_applied(n) == 0 || (!n->ever_leader && pnode_applied(n) <= 1)) {
            /* An empty answer would read as "the platoon is empty": a node that has applied
             * nothing (never joined, or not yet sent anything), or only its own bootstrap
             * without ever hearing from a leader, knows nothing to answer. */
            complete(n, req, PNODE_UNAVAILABLE,
                     "this node has applied nothing yet (it is not part of a cluster, or has "
                     "not caught up): ask another node",
                     NULL, 0);
            return;
        }
        run_query(n, req);
        return;
    }
    start_read_index(n, req);
}

/* Where to reach the leader: its address in the configuration, or, for a leader that is being
 * removed (it leads until the change commits, thesis §4.2.2), the one it advertised. */
static const char *leader_address(pnode *n)
{
    const praft_member *m = praft_config_find(&n->peers_config, n->leader);
    if (m != NULL && m->address[0] != '\0') {
        return m->address;
    }
    for (size_t i = 0; i < n->n_learned; i++) {
        if (n->learned[i].id == n->leader) {
            return n->learned[i].address;
        }
    }
    return NULL;
}

/* Pause before forwarding again after the connection to the leader failed. */
#define FORWARD_RETRY_MS 50

static void forward_done(void *ctx, int status, const char *message, const uint8_t *data,
                         size_t len)
{
    pnode_request *req = ctx;
    if (req->orphan) {
        request_free(req);
        return;
    }
    pnode__request_unlink(req->node, req);
    if (status == 0) {
        pnode_reply(req, data, len);
    } else if (status == PNODE_CANCELLED || status == PNODE_UNKNOWN) {
        /* Not the leader's answer: the call was cut off (the leader stopped and cancelled its
         * calls, or its stream broke) after it may have proposed the request. The outcome is
         * unknown, which the API says with UNAVAILABLE (platoon.proto): a client retries with
         * the same (client_id, sequence), never takes it for a refusal. */
        char why[300];
        snprintf(why, sizeof(why), "the leader did not answer (%s: %s); the outcome is unknown",
                 status == PNODE_CANCELLED ? "CANCELLED" : "UNKNOWN", message);
        pnode_fail(req, PNODE_UNAVAILABLE, why);
    } else if (status == PNODE_UNAVAILABLE && strncmp(message, "failed to connect", 17) == 0 &&
               pnode_now_ms() + FORWARD_RETRY_MS < req->deadline_ms) {
        /* No connection to the leader (it is starting, or the channel waits out a reconnection
         * back-off): nothing was sent, so forwarding again is safe. Within the wait for a
         * leader (leader_wait_ms), try again shortly instead of failing the client. */
        req->retry_at_ms = pnode_now_ms() + FORWARD_RETRY_MS;
        wait_for_leader(req->node, req, THEN_FORWARD);
    } else {
        pnode_fail(req, status, message);
    }
}

void pnode_forward(pnode *n, pnode_request *req)
{
    const char *address = n->leader != n->opts.id ? leader_address(n) : NULL;
    if (address == NULL) {
        wait_for_leader(n, req, THEN_FORWARD);
        return;
    }
    /* The leader must know who asked, not only that this node forwarded it (DESIGN.md,
     * Trust): the caller's identity travels with the request, vouched for by this node's
     * certificate. */
    const pnet_identity *caller = req->who_net.kind != PNET_ID_NONE ? &req->who_net : NULL;
    int rc = pnet_client_call(n->net, n->leader, address, caller, req->method, req->data, req->len,
                              req->deadline_ms, forward_done, req);
    if (rc != 0) {
        pnode_fail(req, PNODE_UNAVAILABLE, "cannot reach the leader");
        return;
    }
    pnode__request_wait(n, req, WAIT_FORWARD);
}

void pnode__requests_applied(pnode *n, uint64_t index, uint64_t term, int code,
                             const uint8_t *result, size_t len)
{
    while (n->proposals.next != &n->proposals && n->proposals.next->index <= index) {
        pnode_request *req = list_take_first(&n->proposals);
        if (req->index == index && req->term == term) {
            complete(n, req, code, NULL, result, len);
        } else {
            /* Another entry took this index: the proposal was overwritten by a newer leader's
             * log and will never be applied (§5.3). Its outcome, from the client's view, is
             * "did not happen", but "unknown" is the answer that needs no proof. */
            complete(n, req, PNODE_UNAVAILABLE,
                     "leadership changed before the write committed; retry with the same sequence",
                     NULL, 0);
        }
    }
}

void pnode__requests_reads(pnode *n, const praft_read_state *reads, size_t n_reads)
{
    for (size_t i = 0; i < n_reads; i++) {
        for (pnode_request *req = n->pending.next; req != &n->pending; req = req->next) {
            if (req->wait != WAIT_READ || req->context != reads[i].context) {
                continue;
            }
            if (reads[i].status != 0) {
                /* Abandoned by a leadership change: a read changes nothing, so start over. */
                wait_for_leader(n, req, THEN_READ);
            } else {
                req->index = reads[i].index;
                pnode__request_wait(n, req, WAIT_READ_APPLY);
            }
            break;
        }
    }
}

static void redispatch(pnode *n, pnode_request *req);

void pnode__requests_progress(pnode *n)
{
    int64_t now = pnode_now_ms();
    uint64_t applied = pnode_applied(n);

    /* Proposals left behind by a snapshot restore: their entries were never handed out here. */
    while (n->proposals.next != &n->proposals && n->proposals.next->index <= applied) {
        complete(n, list_take_first(&n->proposals), PNODE_UNAVAILABLE, "outcome unknown; retry",
                 NULL, 0);
    }
    for (pnode_request *req = n->proposals.next; req != &n->proposals;) {
        pnode_request *next = req->next;
        if (now >= req->deadline_ms) {
            complete(n, req, PNODE_DEADLINE_EXCEEDED, "deadline exceeded before the write applied",
                     NULL, 0);
        }
        req = next;
    }

    /* Walk only the requests present now: a request that goes back to waiting during the walk
     * (a forward that finds no leader address yet) is appended behind @last and waits for the
     * next turn, instead of being revisited forever. Completing a request never removes
     * another one, so @next stays valid. */
    pnode_request *last = n->pending.prev;
    bool done = n->pending.next == &n->pending;
    for (pnode_request *req = n->pending.next; !done;) {
        pnode_request *next = req->next;
        done = req == last;
        switch (req->wait) {
        case WAIT_READ_APPLY:
            if (req->index <= applied) {
                run_query(n, req);
            } else if (now >= req->deadline_ms) {
                complete(n, req, PNODE_DEADLINE_EXCEEDED, "deadline exceeded", NULL, 0);
            }
            break;
        case WAIT_LEADER:
            if (now >= req->deadline_ms) {
                complete(n, req, PNODE_DEADLINE_EXCEEDED, "deadline exceeded waiting for a leader",
                         NULL, 0);
            } else if (n->leader != PRAFT_NONE && (n->leader != n->opts.id || pnode_is_leader(n)) &&
                       now >= req->retry_at_ms) {
                pnode__request_unlink(n, req);
                if (req->then == THEN_READ) {
                    start_read_index(n, req);
                } else {
                    redispatch(n, req);
                }
            } else if (now >= req->leader_deadline_ms) {
                char why[200];
                complete(n, req, PNODE_UNAVAILABLE, pnode__no_leader_message(n, why, sizeof(why)),
                         NULL, 0);
            }
            break;
        case WAIT_FORWARD:
            /* The forwarded call carries the same deadline and ends by itself. */
            break;
        case WAIT_READ:
        case WAIT_CONFIG:
        case WAIT_TRANSFER:
        case WAIT_SNAPSHOT:
            if (now >= req->deadline_ms) {
                complete(n, req, PNODE_DEADLINE_EXCEEDED, "deadline exceeded", NULL, 0);
            }
            break;
        default:
            break;
        }
        req = next;
    }
}

void pnode__proposals_fail(pnode *n, int code, const char *message)
{
    pnode_request *req;
    while ((req = list_take_first(&n->proposals)) != NULL) {
        complete(n, req, code, message, NULL, 0);
    }
}

void pnode__requests_fail_all(pnode *n, int code, const char *message)
{
    pnode_request *req;
    while ((req = list_take_first(&n->proposals)) != NULL) {
        complete(n, req, code, message, NULL, 0);
    }
    while ((req = list_take_first(&n->pending)) != NULL) {
        if (req->wait == WAIT_FORWARD) {
            /* Answer now; the forward's completion frees the request later. */
            pnode__request_unlink(n, req);
            if (req->call != NULL) {
                pnet_call_fail(req->call, code, message);
                req->call = NULL;
            }
            if (req->internal != NULL) {
                finish_internal(req, code, NULL, 0);
                req->internal = NULL;
            }
            req->orphan = true;
            continue;
        }
        req->done = NULL; /* the application's continuation must not run any more */
        complete(n, req, code, message, NULL, 0);
    }
}

static const pnode_method *find_method(pnode *n, const char *name)
{
    for (size_t i = 0; i < n->opts.n_methods; i++) {
        if (strcmp(n->opts.methods[i].name, name) == 0) {
            return &n->opts.methods[i];
        }
    }
    return NULL;
}

static const char *role_name(int role)
{
    switch (role) {
    case PNODE_ROLE_READER:
        return "reader";
    case PNODE_ROLE_WRITER:
        return "writer";
    default:
        return "admin";
    }
}

/* Whether principal @p holds @need (enum pnode_role; 0 is admin) for @method; if not, @why
 * says who lacked what. */
static bool role_allows(const pnode_principal *p, const char *method, int need, char *why,
                        size_t cap)
{
    if (need < PNODE_ROLE_READER || need > PNODE_ROLE_ADMIN) {
        need = PNODE_ROLE_ADMIN;
    }
    if (!p->authenticated || p->role >= need) {
        return true; /* without TLS there is nobody to refuse */
    }
    const char *short_name = strrchr(method, '/');
    snprintf(why, cap, "'%s' is a %s; %s needs the %s role", p->name, role_name(p->role),
             short_name != NULL ? short_name + 1 : method, role_name(need));
    return false;
}

/* Whether the caller of @req holds @need; if not, @req is answered PERMISSION_DENIED. */
static bool allowed(pnode_request *req, int need)
{
    char why[300];
    if (role_allows(&req->who, req->method, need, why, sizeof(why))) {
        return true;
    }
    pnode_fail(req, PNODE_PERMISSION_DENIED, why);
    return false;
}

/* Runs @m's prepare function (which it has) on a request of @who; a refusal without words
 * gets some. */
static int run_prepare(const pnode_method *m, const pnode_principal *who, const uint8_t *data,
                       size_t len, void **prepared, char *why, size_t cap)
{
    why[0] = '\0';
    *prepared = NULL;
    int code = m->prepare(m->app, who, data, len, prepared, why, cap);
    if (code != PNODE_OK && why[0] == '\0') {
        snprintf(why, cap, "the request was refused");
    }
    return code;
}

/* Runs @m's prepare function for @req on the loop, for a request that did not get it on a
 * network thread. False if it refused (@req is then answered). */
static bool prepare_here(const pnode_method *m, pnode_request *req)
{
    if (m->prepare == NULL || req->prepared_set) {
        return true;
    }
    char why[300];
    void *prepared;
    int code = run_prepare(m, &req->who, req->data, req->len, &prepared, why, sizeof(why));
    if (code != PNODE_OK) {
        pnode_fail(req, code, why);
        return false;
    }
    req->prepared = prepared;
    req->prepared_free = m->release;
    req->prepared_set = true;
    return true;
}

int pnode__prepare_call(void *ctx, pnet_event *ev, char *why, size_t cap)
{
    (void)ctx;
    const pnode_method *m = ev->method_ctx;
    int need;
    if (m != NULL) {
        need = m->role;
    } else if (pnode__admin_handles(ev->method)) {
        need = pnode__admin_role(ev->method);
    } else {
        return 0; /* the health service: open to anyone who may connect */
    }
    pnode_principal who;
    principal_from(&who, &ev->who, ev->via);
    if (!role_allows(&who, ev->method, need, why, cap)) {
        return PNODE_PERMISSION_DENIED;
    }
    if (m == NULL || m->prepare == NULL) {
        return 0;
    }
    void *prepared;
    int code = run_prepare(m, &who, ev->data, ev->len, &prepared, why, cap);
    if (code != PNODE_OK) {
        return code;
    }
    ev->prepared = prepared;
    ev->prepared_free = m->release != NULL ? m->release : free;
    return 0;
}

static void redispatch(pnode *n, pnode_request *req)
{
    if (pnode__admin_handles(req->method)) {
        if (allowed(req, pnode__admin_role(req->method))) {
            pnode__admin_call(n, req);
        }
        return;
    }
    const pnode_method *m = find_method(n, req->method);
    if (m == NULL) {
        pnode_fail(req, PNODE_UNIMPLEMENTED, "unknown method");
        return;
    }
    if (allowed(req, m->role) && prepare_here(m, req)) {
        m->handler(n, m->app, req);
    }
}

const pnode_principal *pnode_request_principal(const pnode_request *req)
{
    return &req->who;
}

void *pnode_request_prepared(const pnode_request *req)
{
    return req->prepared;
}

void pnode__dispatch_call(pnode *n, pnet_event *ev)
{
    /* The request takes the event's bytes and what the network thread prepared: no copy. */
    pnode_request *req =
        pnode__request_new(n, ev->call, ev->method, NULL, 0, ev->deadline_ms, &ev->who, ev->via);
    if (req == NULL) {
        pnet_call_fail(ev->call, PNODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    req->data = ev->data;
    req->len = ev->len;
    ev->data = NULL;
    ev->len = 0;
    if (ev->prepare_ran) {
        req->prepared = ev->prepared;
        req->prepared_free = ev->prepared_free;
        req->prepared_set = true;
        ev->prepared = NULL;
        ev->prepared_free = NULL;
    }
    if (atomic_load(&n->stopping)) {
        pnode_fail(req, PNODE_UNAVAILABLE, "the node is shutting down");
        return;
    }
    if (pnode__health_handles(ev->method)) {
        /* Before the refusals below: a health checker must hear NOT_SERVING, not an error. */
        pnode__health_call(n, req);
        return;
    }
    if (n->sm_failed) {
        pnode_fail(req, PNODE_UNAVAILABLE, "this node's state machine failed; ask another node");
        return;
    }
    char why[256];
    /* Status still answers: it is how an operator sees what this node thinks it is. The
     * others get UNAVAILABLE, the API's "not here, try another node" (nothing was applied, and
     * a client that fails over on it, as the API asks, reaches a member). */
    if (pnode__unfit(n, why, sizeof(why)) != NULL &&
        strcmp(ev->method, "/platoon.v1.Cluster/Status") != 0) {
        pnode_fail(req, PNODE_UNAVAILABLE, why);
        return;
    }
    redispatch(n, req);
}
