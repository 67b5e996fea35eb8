/*
 * Synchronous unary calls with endpoint failover (see rpc.h). Every call is one batch of the
 * six client operations, waited for with grpc_completion_queue_pluck on the caller's thread.
 */
#include "rpc.h"

#include "platoon/v1/platoon.pb-c.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <time.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "platoon/error.h"

struct pctl_endpoint {
    char address[PCTL_ADDRESS_MAX];
    grpc_channel *channel; /* created on first use */
};

struct pctl_client {
    grpc_completion_queue *cq;
    struct pctl_endpoint eps[PCTL_MAX_ENDPOINTS];
    size_t n_eps;
    size_t preferred; /* the endpoint that answered last */
    int64_t timeout_ms, dial_ms;
    /* Channels to addresses outside the endpoint list (members found by cluster status). */
    struct pctl_endpoint extra[PCTL_MAX_ENDPOINTS * 2];
    size_t n_extra;
    /* TLS material (--cacert, --cert, --key), NULL without TLS. */
    char *ca_pem, *cert_pem, *key_pem;
};

static grpc_arg channel_arg_list[] = {
    /* A restarted node must be reachable again within a fraction of a second, not after
     * gRPC's default back-off of up to two minutes. */
    {GRPC_ARG_INTEGER, GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, {.integer = 100}},
    {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, {.integer = 500}},
    /* Despite its name, gRPC takes this as the least time one connection attempt (TCP and TLS
     * handshakes) is given: a busy server's handshake can take longer than the back-off, and
     * would then never complete. The dial timeout bounds the wait for an endpoint anyway. */
    {GRPC_ARG_INTEGER, GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, {.integer = 5000}},
    /* A whole platoon in one GetPlatoon answer may exceed the 4 MiB default. */
    {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, {.integer = 64 << 20}},
};
static const grpc_channel_args channel_args = {
    sizeof(channel_arg_list) / sizeof(channel_arg_list[0]), channel_arg_list};

const void *pctl_channel_args(void)
{
    return &channel_args;
}

int64_t pctl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pctl_sleep_ms(int64_t ms)
{
    int64_t end = pctl_now_ms() + ms;
    while (!pctl_interrupted) {
        int64_t left = end - pctl_now_ms();
        if (left <= 0) {
            break;
        }
        if (left > 50) {
            left = 50; /* wake often enough to notice Ctrl-C */
        }
        struct timespec ts = {left / 1000, (left % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
}

static gpr_timespec deadline_of(int64_t deadline_ms)
{
    int64_t left = deadline_ms - pctl_now_ms();
    if (left < 0) {
        left = 0;
    }
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(left, GPR_TIMESPAN));
}

/* Reads a whole PEM file (at most 1 MiB) into a string. */
static int read_pem(const char *flag, const char *path, char **out, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, cap, "%s %s: %s", flag, path, strerror(errno));
        return PT_EINVAL;
    }
    size_t max = 1u << 20;
    char *buf = malloc(max + 1);
    size_t n = buf != NULL ? fread(buf, 1, max + 1, f) : 0;
    fclose(f);
    if (buf == NULL) {
        return PT_ENOMEM;
    }
    buf[n <= max ? n : max] = '\0';
    if (n == 0 || n > max || strstr(buf, "-----BEGIN ") == NULL) {
        snprintf(err, cap, "%s %s: not a PEM file", flag, path);
        free(buf);
        return PT_EINVAL;
    }
    *out = buf;
    return 0;
}

static int load_tls(pctl_client *c, const pctl_opts *o, char *err, size_t cap)
{
    int given = (o->cacert != NULL && o->cacert[0] != '\0') +
                (o->cert != NULL && o->cert[0] != '\0') + (o->key != NULL && o->key[0] != '\0');
    if (given == 0) {
        return 0;
    }
    if (given != 3) {
        snprintf(err, cap, "TLS needs all of --cacert, --cert and --key (or $%s, $%s, $%s)",
                 PCTL_CACERT_ENV, PCTL_CERT_ENV, PCTL_KEY_ENV);
        return PT_EINVAL;
    }
    int rc = read_pem("--cacert", o->cacert, &c->ca_pem, err, cap);
    if (rc == 0) {
        rc = read_pem("--cert", o->cert, &c->cert_pem, err, cap);
    }
    if (rc == 0) {
        rc = read_pem("--key", o->key, &c->key_pem, err, cap);
    }
    return rc;
}

static void free_tls(pctl_client *c)
{
    free(c->ca_pem);
    free(c->cert_pem);
    if (c->key_pem != NULL) {
        memset(c->key_pem, 0, strlen(c->key_pem));
        free(c->key_pem);
    }
}

bool pctl_client_tls(const pctl_client *c)
{
    return c->ca_pem != NULL;
}

int pctl_client_new(const pctl_opts *opts, pctl_client **out, char *err, size_t cap)
{
    pctl_client *c = calloc(1, sizeof(*c));
    char *copy = strdup(opts->endpoints != NULL ? opts->endpoints : "");
    int rc = 0;
    if (c == NULL || copy == NULL) {
        rc = PT_ENOMEM;
        goto fail;
    }
    char *save = NULL;
    for (char *ep = strtok_r(copy, ",", &save); ep != NULL; ep = strtok_r(NULL, ",", &save)) {
        const char *colon = strrchr(ep, ':');
        if (strstr(ep, "://") != NULL) {
            snprintf(err, cap,
                     "--endpoints: '%s': give HOST:PORT, without a scheme such as http://", ep);
            rc = PT_EINVAL;
            goto fail;
        }
        if (colon == NULL || colon == ep || colon[1] == '\0' || strlen(ep) >= PCTL_ADDRESS_MAX) {
            snprintf(err, cap, "--endpoints: '%s' is not HOST:PORT", ep);
            rc = PT_EINVAL;
            goto fail;
        }
        char *end = NULL;
        unsigned long port = strtoul(colon + 1, &end, 10);
        if (*end != '\0' || colon[1] < '0' || colon[1] > '9' || port == 0 || port > 65535) {
            snprintf(err, cap, "--endpoints: '%s': the port must be a number in [1, 65535]", ep);
            rc = PT_EINVAL;
            goto fail;
        }
        if (c->n_eps == PCTL_MAX_ENDPOINTS) {
            snprintf(err, cap, "--endpoints: more than %d endpoints", PCTL_MAX_ENDPOINTS);
            rc = PT_EINVAL;
            goto fail;
        }
        snprintf(c->eps[c->n_eps++].address, PCTL_ADDRESS_MAX, "%s", ep);
    }
    if (c->n_eps == 0) {
        snprintf(err, cap, "--endpoints: no endpoint given");
        rc = PT_EINVAL;
        goto fail;
    }
    c->timeout_ms = opts->timeout_ms;
    c->dial_ms = opts->dial_ms;
    rc = load_tls(c, opts, err, cap);
    if (rc != 0) {
        goto fail;
    }
    grpc_init();
    c->cq = grpc_completion_queue_create_for_pluck(NULL);
    free(copy);
    *out = c;
    return 0;

fail:
    free(copy);
    if (c != NULL) {
        free_tls(c);
    }
    free(c);
    return rc;
}

void pctl_client_free(pctl_client *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < c->n_eps; i++) {
        if (c->eps[i].channel != NULL) {
            grpc_channel_destroy(c->eps[i].channel);
        }
    }
    for (size_t i = 0; i < c->n_extra; i++) {
        grpc_channel_destroy(c->extra[i].channel);
    }
    /* Every call has completed by now, so the queue shuts down at once. */
    grpc_completion_queue_shutdown(c->cq);
    grpc_completion_queue_pluck(c->cq, c, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
    grpc_completion_queue_destroy(c->cq);
    free_tls(c);
    free(c);
    grpc_shutdown_blocking();
}

size_t pctl_client_n_endpoints(const pctl_client *c)
{
    return c->n_eps;
}

const char *pctl_client_endpoint(const pctl_client *c, size_t i)
{
    return i < c->n_eps ? c->eps[i].address : NULL;
}

static grpc_channel *new_channel(pctl_client *c, const char *address)
{
    grpc_channel_credentials *creds;
    if (c->ca_pem != NULL) {
        /* The node's certificate is checked against the CA and against the host of the
         * endpoint (its certificate lists the hosts it serves, see `platoonctl certs node`). */
        grpc_ssl_pem_key_cert_pair pair = {.private_key = c->key_pem, .cert_chain = c->cert_pem};
        creds = grpc_ssl_credentials_create_ex(c->ca_pem, &pair, NULL, NULL);
    } else {
        creds = grpc_insecure_credentials_create();
    }
    if (creds == NULL) {
        return NULL;
    }
    grpc_channel *ch = grpc_channel_create(address, creds, &channel_args);
    grpc_channel_credentials_release(creds);
    return ch;
}

/* The cached channel to @address (an endpoint's or an extra one); NULL when out of room. */
static grpc_channel *channel_for(pctl_client *c, const char *address)
{
    for (size_t i = 0; i < c->n_eps; i++) {
        if (strcmp(c->eps[i].address, address) == 0) {
            if (c->eps[i].channel == NULL) {
                c->eps[i].channel = new_channel(c, address);
            }
            return c->eps[i].channel;
        }
    }
    for (size_t i = 0; i < c->n_extra; i++) {
        if (strcmp(c->extra[i].address, address) == 0) {
            return c->extra[i].channel;
        }
    }
    size_t max = sizeof(c->extra) / sizeof(c->extra[0]);
    if (c->n_extra == max || strlen(address) >= PCTL_ADDRESS_MAX) {
        return NULL;
    }
    struct pctl_endpoint *e = &c->extra[c->n_extra];
    snprintf(e->address, sizeof(e->address), "%s", address);
    e->channel = new_channel(c, address);
    if (e->channel == NULL) {
        return NULL;
    }
    c->n_extra++;
    return e->channel;
}

grpc_channel *pctl_client_channel(pctl_client *c, size_t i)
{
    return i < c->n_eps ? channel_for(c, c->eps[i].address) : NULL;
}

/*
 * Waits until @ch is connected, or until @deadline_ms. A refused connection is final for
 * this attempt (the channel goes CONNECTING then TRANSIENT_FAILURE): we do not wait for the
 * back-off to try again, the next endpoint is a better bet.
 */
static bool dial(pctl_client *c, grpc_channel *ch, int64_t deadline_ms, bool *timed_out)
{
    *timed_out = false;
    grpc_connectivity_state s = grpc_channel_check_connectivity_state(ch, 1);
    bool attempted = false;
    while (s != GRPC_CHANNEL_READY) {
        if (s == GRPC_CHANNEL_SHUTDOWN || (s == GRPC_CHANNEL_TRANSIENT_FAILURE && attempted)) {
            return false;
        }
        if (s == GRPC_CHANNEL_CONNECTING) {
            attempted = true;
        }
        int tag;
        grpc_channel_watch_connectivity_state(ch, s, deadline_of(deadline_ms), c->cq, &tag);
        grpc_event ev =
            grpc_completion_queue_pluck(c->cq, &tag, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (!ev.success) {
            *timed_out = true; /* the deadline passed */
            return false;
        }
        s = grpc_channel_check_connectivity_state(ch, 1);
    }
    return true;
}

/*
 * Why @address could not be connected to, in words: gRPC only says that the channel failed,
 * so the cause is found the way the connection would have failed (name resolution, then one
 * TCP connect bounded by @max_ms). Writes @why.
 */
static bool diagnose(const char *address, int64_t max_ms, char *why, size_t cap)
{
    char host[PCTL_ADDRESS_MAX];
    snprintf(host, sizeof(host), "%s", address);
    char *colon = strrchr(host, ':');
    if (colon == NULL) {
        snprintf(why, cap, "not HOST:PORT");
        return true;
    }
    *colon = '\0';
    const char *port = colon + 1;
    char *h = host;
    size_t hl = strlen(h);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h[hl - 1] = '\0';
        h++;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(h, port, &hints, &res);
    if (g != 0) {
        snprintf(why, cap, "cannot resolve host '%.100s': %s", h, gai_strerror(g));
        return g != EAI_AGAIN;
    }
    int err = ETIMEDOUT;
    for (const struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        int fd =
            socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            err = 0;
        } else if (errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            if (poll(&p, 1, (int)max_ms) == 1) {
                socklen_t len = sizeof(err);
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            } else {
                err = ETIMEDOUT;
            }
        } else {
            err = errno;
        }
        close(fd);
        if (err == 0) {
            break;
        }
    }
    freeaddrinfo(res);
    if (err == 0) {
        /* TCP gets through: the gRPC or TLS handshake is what failed, which may be slow or
         * passing (a node starting), so it is retried. */
        snprintf(why, cap, "it accepts TCP connections, but no gRPC connection could be set up");
        return false;
    }
    if (err == ECONNREFUSED) {
        snprintf(why, cap, "connection refused (nothing listens there)");
    } else if (err == ETIMEDOUT) {
        snprintf(why, cap, "no answer to a TCP connection within the dial timeout");
    } else {
        snprintf(why, cap, "%s", strerror(err));
    }
    return true;
}

static void set_status(pctl_status *st, int code, const char *address, const char *fmt,
                       const char *detail)
{
    st->code = code;
    snprintf(st->endpoint, sizeof(st->endpoint), "%s", address);
    snprintf(st->message, sizeof(st->message), fmt, detail);
}

/* Packs @req into a byte buffer. NULL when out of memory. */
static grpc_byte_buffer *pack(const ProtobufCMessage *req)
{
    size_t len = protobuf_c_message_get_packed_size(req);
    grpc_slice slice = grpc_slice_malloc(len);
    protobuf_c_message_pack(req, GRPC_SLICE_START_PTR(slice));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return bb;
}

static ProtobufCMessage *unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *desc)
{
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, bb)) {
        return NULL;
    }
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    ProtobufCMessage *m =
        protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    return m;
}

/* One call on a connected channel. */
static int call_once(pctl_client *c, grpc_channel *ch, const char *address, const char *method,
                     const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                     int64_t deadline_ms, ProtobufCMessage **resp, pctl_status *st)
{
    int rc = PT_EIO;
    grpc_metadata_array md_initial, md_trailing;
    grpc_metadata_array_init(&md_initial);
    grpc_metadata_array_init(&md_trailing);
    grpc_byte_buffer *request = pack(req), *response = NULL;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_slice mslice = grpc_slice_from_copied_string(method);
    grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, mslice,
                                               NULL, deadline_of(deadline_ms), NULL);
    grpc_slice_unref(mslice);
    if (call == NULL || request == NULL) {
        set_status(st, GRPC_STATUS_RESOURCE_EXHAUSTED, address, "%s", "out of memory");
        goto cleanup;
    }
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = request;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &md_initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &response;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &md_trailing;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    int tag;
    if (grpc_call_start_batch(call, ops, 6, &tag, NULL) != GRPC_CALL_OK) {
        set_status(st, GRPC_STATUS_INTERNAL, address, "%s", "could not start the call");
        goto cleanup;
    }
    grpc_completion_queue_pluck(c->cq, &tag, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    st->connected = true;
    if (status != GRPC_STATUS_OK) {
        char msg[sizeof(st->message)];
        size_t n = GRPC_SLICE_LENGTH(details);
        n = n < sizeof(msg) - 1 ? n : sizeof(msg) - 1;
        memcpy(msg, GRPC_SLICE_START_PTR(details), n);
        msg[n] = '\0';
        set_status(st, (int)status, address, "%s", msg);
        goto cleanup;
    }
    *resp = response != NULL ? unpack(response, resp_desc) : NULL;
    if (*resp == NULL) {
        set_status(st, GRPC_STATUS_INTERNAL, address, "%s", "the answer could not be decoded");
        goto cleanup;
    }
    set_status(st, GRPC_STATUS_OK, address, "%s", "");
    rc = 0;

cleanup:
    if (call != NULL) {
        grpc_call_unref(call);
    }
    if (request != NULL) {
        grpc_byte_buffer_destroy(request);
    }
    if (response != NULL) {
        grpc_byte_buffer_destroy(response);
    }
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&md_initial);
    grpc_metadata_array_destroy(&md_trailing);
    return rc;
}

int pctl_call_at(pctl_client *c, const char *address, const char *method,
                 const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                 int64_t deadline_ms, ProtobufCMessage **resp, pctl_status *st)
{
    *resp = NULL;
    grpc_channel *ch = channel_for(c, address);
    if (ch == NULL) {
        set_status(st, GRPC_STATUS_RESOURCE_EXHAUSTED, address, "%s", "too many channels");
        return PT_EIO;
    }
    int64_t dial_deadline = pctl_now_ms() + c->dial_ms;
    if (dial_deadline > deadline_ms) {
        dial_deadline = deadline_ms;
    }
    bool timed_out = false;
    if (!dial(c, ch, dial_deadline, &timed_out)) {
        char why[256];
        /* After a dial timeout, TCP alone gets a short look: a host that does not answer it
         * at all is as hopeless as a refusal. */
        st->hopeless = diagnose(address, timed_out ? 200 : 500, why, sizeof(why));
        st->code = GRPC_STATUS_UNAVAILABLE;
        snprintf(st->endpoint, sizeof(st->endpoint), "%s", address);
        snprintf(st->message, sizeof(st->message), "%s: %s", address, why);
        return PT_EIO;
    }
    return call_once(c, ch, address, method, req, resp_desc, deadline_ms, resp, st);
}

int pctl_call(pctl_client *c, const char *method, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc, bool idempotent, ProtobufCMessage **resp,
              pctl_status *st)
{
    int64_t deadline = pctl_now_ms() + c->timeout_ms;
    memset(st, 0, sizeof(*st));
    st->code = GRPC_STATUS_DEADLINE_EXCEEDED;
    snprintf(st->message, sizeof(st->message), "no answer within the timeout");
    bool connected = false;
    char causes[sizeof(st->message)], last_causes[sizeof(st->message)];
    causes[0] = last_causes[0] = '\0';
    for (;;) {
        bool connected_this_pass = false, hopeless_pass = true;
        if (causes[0] != '\0') {
            memcpy(last_causes, causes, sizeof(causes));
        }
        causes[0] = '\0';
        for (size_t k = 0; k < c->n_eps; k++) {
            size_t i = (c->preferred + k) % c->n_eps;
            if (pctl_now_ms() >= deadline || pctl_interrupted) {
                goto out;
            }
            st->connected = false;
            st->hopeless = false;
            /* An idempotent request may be tried elsewhere, so one endpoint that accepts the
             * connection but never answers (a hung or overloaded process) may take only half
             * of the time left, or the dial timeout if that is longer. */
            int64_t attempt = deadline;
            if (idempotent && c->n_eps > 1) {
                int64_t left = deadline - pctl_now_ms();
                int64_t share = left / 2 > c->dial_ms ? left / 2 : c->dial_ms;
                attempt = pctl_now_ms() + (share < left ? share : left);
            }
            if (pctl_call_at(c, c->eps[i].address, method, req, resp_desc, attempt, resp, st) ==
                0) {
                c->preferred = i;
                return 0;
            }
            connected = connected || st->connected;
            connected_this_pass = connected_this_pass || st->connected;
            hopeless_pass = hopeless_pass && !st->connected && st->hopeless;
            /* Nothing was sent when the connection failed: trying elsewhere is always safe. */
            if (!st->connected) {
                size_t used = strlen(causes), room = sizeof(causes) - used;
                if (room > 3) {
                    if (used > 0) {
                        memcpy(causes + used, "; ", 3);
                        used += 2;
                        room -= 2;
                    }
                    size_t m = strlen(st->message);
                    m = m < room - 1 ? m : room - 1;
                    memcpy(causes + used, st->message, m);
                    causes[used + m] = '\0';
                }
                continue;
            }
            bool retriable =
                st->code == GRPC_STATUS_UNAVAILABLE || st->code == GRPC_STATUS_DEADLINE_EXCEEDED;
            if (!retriable || !idempotent) {
                c->preferred = i;
                goto out;
            }
        }
        if (!connected_this_pass && hopeless_pass) {
            /* Not one endpoint could be connected to, each for a cause that waiting will not
             * change (refused, not resolvable, no answer to TCP within the dial timeout):
             * waiting out the whole timeout would change nothing but the time it takes to
             * say so. A failed gRPC or TLS handshake over a working TCP connection is
             * retried until the timeout instead: a node may be starting. */
            snprintf(st->message, sizeof(st->message), "%s", causes);
            goto out;
        }
        /* Every endpoint is without a leader: an election may be under way. */
        pctl_sleep_ms(100);
    }
out:
    if (!connected && !st->connected && st->code == GRPC_STATUS_UNAVAILABLE) {
        /* Out of time without a single connection: every endpoint's cause. */
        const char *why = causes[0] != '\0' ? causes : last_causes;
        if (why[0] != '\0') {
            snprintf(st->message, sizeof(st->message), "%s", why);
        }
    }
    st->connected = st->connected || connected;
    return PT_EIO;
}

int pctl_open_session(pctl_client *c, uint64_t *client_id, pctl_status *st)
{
    Platoon__V1__OpenSessionRequest req = PLATOON__V1__OPEN_SESSION_REQUEST__INIT;
    Platoon__V1__OpenSessionResponse *resp = NULL;
    if (pctl_call(c, PCTL_M_OPEN, &req.base, &platoon__v1__open_session_response__descriptor, true,
                  (ProtobufCMessage **)&resp, st) != 0) {
        return PT_EIO;
    }
    *client_id = resp->client_id;
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return 0;
}

void pctl_close_session(pctl_client *c, uint64_t client_id)
{
    Platoon__V1__CloseSessionRequest req = PLATOON__V1__CLOSE_SESSION_REQUEST__INIT;
    req.client_id = client_id;
    Platoon__V1__CloseSessionResponse *resp = NULL;
    pctl_status st;
    if (pctl_call(c, PCTL_M_CLOSE, &req.base, &platoon__v1__close_session_response__descriptor,
                  true, (ProtobufCMessage **)&resp, &st) == 0) {
        protobuf_c_message_free_unpacked(&resp->base, NULL);
    }
}
