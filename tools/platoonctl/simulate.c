/*
 * platoonctl simulate: drives a platoon (route.h) and writes every vehicle's position to the
 * cluster at a fixed rate, as the vehicles' own telematics units would, then reports the
 * throughput, the errors and the latency percentiles.
 *
 * Each vehicle is one client of the cluster: its own client id (random per run) and
 * increasing sequence numbers, and at most one write in flight, so the exactly-once sessions
 * of the state machine see every client's sequence in order. A write that fails with
 * UNAVAILABLE or DEADLINE_EXCEEDED has an unknown outcome: it is sent again, unchanged (same
 * sequence), to the next endpoint, which is always safe; its latency counts from the first
 * attempt, as the vehicle experiences it. All vehicles' calls run concurrently on one
 * completion queue, driven by this thread.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <grpc/support/time.h>

#include "args.h"
#include "ctl.h"
#include "histogram.h"
#include "output.h"
#include "route.h"
#include "rpc.h"

#define NFLAGS(f)         (sizeof(f) / sizeof((f)[0]))
#define RETRY_PAUSE_US    50000 /* before resending a write whose outcome is unknown */
#define PROGRESS_EVERY_US 1000000

typedef struct sim_vehicle {
    uint64_t id, client_id, sequence;
    size_t ep; /* the endpoint it writes to; moves on after a failure */
    int64_t next_due_us;
    int64_t first_sent_us; /* of the current sequence */
    bool in_flight, unconfirmed;
    uint8_t *req;
    size_t req_len;
    /* The call in flight. */
    grpc_call *call;
    grpc_byte_buffer *send, *recv;
    grpc_metadata_array md_initial, md_trailing;
    grpc_status_code status;
    grpc_slice details;
} sim_vehicle;

typedef struct sim {
    pctl_client *client;
    grpc_completion_queue *cq;
    sim_vehicle *v;
    size_t n;
    pctl_platoon platoon;
    int64_t start_us, period_us, timeout_us;
    size_t in_flight;
    uint64_t ok, errors, failed;
    char last_error[512];
    char last_refusal[640]; /* the last definite refusal: what made `failed` grow */
    pctl_hist hist;
} sim;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static gpr_timespec at_us(int64_t t)
{
    int64_t left = t - now_us();
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_micros(left > 0 ? left : 0, GPR_TIMESPAN));
}

/* Packs the vehicle's next position as a new request (the next sequence). */
static int next_request(sim *s, sim_vehicle *v, size_t index)
{
    pctl_pose pose;
    pctl_platoon_pose(&s->platoon, index, &pose);
    Platoon__V1__Vehicle veh = PLATOON__V1__VEHICLE__INIT;
    veh.id = v->id;
    veh.latitude = pose.latitude;
    veh.longitude = pose.longitude;
    veh.speed = pose.speed;
    veh.heading = pose.heading;
    Platoon__V1__UpdateVehicleRequest req = PLATOON__V1__UPDATE_VEHICLE_REQUEST__INIT;
    req.vehicle = &veh;
    req.client_id = v->client_id;
    req.sequence = ++v->sequence;
    size_t len = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *buf = realloc(v->req, len ? len : 1);
    if (buf == NULL) {
        return -1;
    }
    protobuf_c_message_pack(&req.base, buf);
    v->req = buf;
    v->req_len = len;
    return 0;
}

static void call_release(sim_vehicle *v)
{
    grpc_call_unref(v->call);
    v->call = NULL;
    grpc_byte_buffer_destroy(v->send);
    v->send = NULL;
    if (v->recv != NULL) {
        grpc_byte_buffer_destroy(v->recv);
        v->recv = NULL;
    }
    grpc_metadata_array_destroy(&v->md_initial);
    grpc_metadata_array_destroy(&v->md_trailing);
    grpc_slice_unref(v->details);
}

static int start_call(sim *s, sim_vehicle *v)
{
    grpc_channel *ch = pctl_client_channel(s->client, v->ep);
    if (ch == NULL) {
        return -1;
    }
    grpc_slice method = grpc_slice_from_static_string(PCTL_M_UPDATE);
    v->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq, method, NULL,
                                       at_us(now_us() + s->timeout_us), NULL);
    if (v->call == NULL) {
        return -1;
    }
    grpc_slice body = grpc_slice_from_copied_buffer((const char *)v->req, v->req_len);
    v->send = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);
    v->recv = NULL;
    v->status = GRPC_STATUS_UNKNOWN;
    v->details = grpc_empty_slice();
    grpc_metadata_array_init(&v->md_initial);
    grpc_metadata_array_init(&v->md_trailing);
    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = v->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &v->md_initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &v->recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &v->md_trailing;
    ops[5].data.recv_status_on_client.status = &v->status;
    ops[5].data.recv_status_on_client.status_details = &v->details;
    if (grpc_call_start_batch(v->call, ops, 6, v, NULL) != GRPC_CALL_OK) {
        call_release(v);
        return -1;
    }
    v->in_flight = true;
    s->in_flight++;
    return 0;
}

static void finish_call(sim *s, sim_vehicle *v)
{
    int64_t t = now_us();
    v->in_flight = false;
    s->in_flight--;
    grpc_status_code code = v->status;
    if (code == GRPC_STATUS_OK) {
        pctl_hist_record(&s->hist, (uint64_t)(t - v->first_sent_us));
        s->ok++;
        v->unconfirmed = false;
    } else {
        s->errors++;
        size_t n = GRPC_SLICE_LENGTH(v->details);
        n = n < sizeof(s->last_error) - 64 ? n : sizeof(s->last_error) - 64;
        snprintf(s->last_error, sizeof(s->last_error), "%s from %s: %.*s",
                 pctl_grpc_code_name(code), pctl_client_endpoint(s->client, v->ep), (int)n,
                 (const char *)GRPC_SLICE_START_PTR(v->details));
        if (code == GRPC_STATUS_UNAVAILABLE || code == GRPC_STATUS_DEADLINE_EXCEEDED) {
            /* Unknown outcome: resend the same sequence elsewhere, after a short pause (an
             * election takes a few hundred milliseconds). */
            v->unconfirmed = true;
            v->ep = (v->ep + 1) % pctl_client_n_endpoints(s->client);
            v->next_due_us = t + RETRY_PAUSE_US;
        } else {
            /* A definite refusal: this write is lost, the vehicle goes on with the next. */
            s->failed++;
            snprintf(s->last_refusal, sizeof(s->last_refusal), "%s (vehicle %llu, sequence %llu)",
                     s->last_error, (unsigned long long)v->id, (unsigned long long)v->sequence);
            v->unconfirmed = false;
        }
    }
    call_release(v);
}

/* Starts the writes that are due; returns the time the next one falls due (or INT64_MAX). */
static int64_t launch_due(sim *s, int64_t t)
{
    int64_t next = INT64_MAX;
    /* The model is a pure function of time: bring it to now once for every write sent now. */
    pctl_platoon_advance(&s->platoon, (double)(t - s->start_us) / 1e6 - s->platoon.t);
    for (size_t i = 0; i < s->n; i++) {
        sim_vehicle *v = &s->v[i];
        if (v->in_flight) {
            continue;
        }
        if (v->next_due_us <= t) {
            if (!v->unconfirmed) {
                if (next_request(s, v, i) != 0) {
                    continue;
                }
                v->first_sent_us = t;
                /* The next report is one period later; a vehicle that fell behind (its last
                 * write was slow) skips the slots it missed rather than bursting. */
                v->next_due_us += s->period_us;
                if (v->next_due_us < t) {
                    v->next_due_us = t + s->period_us;
                }
            }
            if (start_call(s, v) != 0) {
                s->errors++;
                snprintf(s->last_error, sizeof(s->last_error), "could not start a call");
                v->unconfirmed = true;
                v->next_due_us = t + RETRY_PAUSE_US;
            }
            if (v->in_flight) {
                continue;
            }
        }
        next = v->next_due_us < next ? v->next_due_us : next;
    }
    return next;
}

static void progress(const sim *s, int64_t t, bool tty)
{
    double secs = (double)(t - s->start_us) / 1e6;
    fprintf(stderr,
            "%ssimulate: %5.1fs  %llu writes  %.0f/s  %llu errors  p50 %.2f ms  p99 %.2f ms%s",
            tty ? "\r\033[K" : "", secs, (unsigned long long)s->ok,
            secs > 0 ? (double)s->ok / secs : 0.0, (unsigned long long)s->errors,
            (double)pctl_hist_percentile(&s->hist, 50) / 1000.0,
            (double)pctl_hist_percentile(&s->hist, 99) / 1000.0, tty ? "" : "\n");
    fflush(stderr);
}

static void report(const pctl_opts *o, const sim *s, double secs, double rate, size_t unconfirmed)
{
    const double ps[] = {50, 90, 99, 99.9};
    uint64_t us[4];
    for (size_t i = 0; i < 4; i++) {
        us[i] = pctl_hist_percentile(&s->hist, ps[i]);
    }
    uint64_t max = s->hist.total ? s->hist.max : 0;
    double wps = secs > 0 ? (double)s->ok / secs : 0.0;
    if (o->json) {
        /* Latencies in whole microseconds: exact, and free of binary-fraction noise. */
        pctl_json_print(json_pack(
            "{s:I, s:f, s:f, s:f, s:I, s:f, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I, s:I}}",
            "vehicles", (json_int_t)s->n, "rate_hz", rate, "duration_s", secs,
            "target_writes_per_s", rate * (double)s->n, "writes", (json_int_t)s->ok, "writes_per_s",
            wps, "errors", (json_int_t)s->errors, "failed", (json_int_t)s->failed, "unconfirmed",
            (json_int_t)unconfirmed, "latency_us", "p50", (json_int_t)us[0], "p90",
            (json_int_t)us[1], "p99", (json_int_t)us[2], "p99.9", (json_int_t)us[3], "max",
            (json_int_t)max, "mean", (json_int_t)llround(pctl_hist_mean(&s->hist))));
        return;
    }
    double lat[4];
    for (size_t i = 0; i < 4; i++) {
        lat[i] = (double)us[i] / 1000.0;
    }
    printf("simulated %zu vehicles at %.1f Hz each for %.1f s\n", s->n, rate, secs);
    pctl_table t;
    pctl_table_init(&t, "METRIC|>VALUE");
    pctl_table_cell(&t, "target writes/s");
    pctl_table_cell(&t, "%.1f", rate * (double)s->n);
    pctl_table_cell(&t, "writes acknowledged");
    pctl_table_cell(&t, "%llu", (unsigned long long)s->ok);
    pctl_table_cell(&t, "writes/s");
    pctl_table_cell(&t, "%.1f", wps);
    pctl_table_cell(&t, "errors (attempts that failed)");
    pctl_table_cell(&t, "%llu", (unsigned long long)s->errors);
    pctl_table_cell(&t, "writes refused");
    pctl_table_cell(&t, "%llu", (unsigned long long)s->failed);
    pctl_table_cell(&t, "writes unconfirmed at the end");
    pctl_table_cell(&t, "%zu", unconfirmed);
    const char *names[] = {"latency p50 (ms)", "latency p90 (ms)", "latency p99 (ms)",
                           "latency p99.9 (ms)"};
    for (size_t i = 0; i < 4; i++) {
        pctl_table_cell(&t, "%s", names[i]);
        pctl_table_cell(&t, "%.2f", lat[i]);
    }
    pctl_table_cell(&t, "latency max (ms)");
    pctl_table_cell(&t, "%.2f", (double)max / 1000.0);
    pctl_table_print(&t, stdout);
    pctl_table_free(&t);
    if (s->errors > 0) {
        printf("last error: %s\n", s->last_error);
    }
    if (s->failed > 0) {
        printf("last refusal: %s\n", s->last_refusal);
    }
}

static int run(const pctl_opts *o, sim *s, int64_t duration_us, double rate)
{
    bool tty = isatty(fileno(stderr));
    s->start_us = now_us();
    int64_t end = s->start_us + duration_us;
    int64_t next_progress = s->start_us + PROGRESS_EVERY_US;
    for (size_t i = 0; i < s->n; i++) {
        /* Spread the vehicles' first reports over one period. */
        s->v[i].next_due_us =
            s->start_us + (int64_t)((double)s->period_us * (double)i / (double)s->n);
    }
    for (;;) {
        int64_t t = now_us();
        bool sending = t < end && !pctl_interrupted;
        if (!sending && s->in_flight == 0) {
            break;
        }
        int64_t wake = next_progress;
        if (sending) {
            int64_t due = launch_due(s, t);
            wake = due < wake ? due : wake;
            wake = end < wake ? end : wake;
        }
        grpc_event ev = grpc_completion_queue_next(s->cq, at_us(wake), NULL);
        if (ev.type == GRPC_OP_COMPLETE) {
            finish_call(s, ev.tag);
        }
        t = now_us();
        if (t >= next_progress) {
            progress(s, t, tty);
            next_progress += PROGRESS_EVERY_US;
        }
    }
    double secs = (double)(now_us() - s->start_us) / 1e6;
    if (secs > (double)duration_us / 1e6) {
        secs = (double)duration_us / 1e6; /* the tail only waited for answers */
    }
    if (tty) {
        fputs("\r\033[K", stderr);
    }
    size_t unconfirmed = 0;
    for (size_t i = 0; i < s->n; i++) {
        unconfirmed += s->v[i].unconfirmed;
    }
    report(o, s, secs, rate, unconfirmed);
    if (s->ok == 0) {
        return pctl_fail(o, PCTL_EXIT_UNREACHABLE, "simulate: no write succeeded; last error: %s",
                         s->last_error[0] ? s->last_error : "none");
    }
    if (s->failed > 0) {
        return pctl_fail(o, PCTL_EXIT_SERVER, "simulate: %llu writes were refused; the last: %s",
                         (unsigned long long)s->failed, s->last_refusal);
    }
    return PCTL_EXIT_OK;
}

/* --cleanup: deletes the vehicles the run wrote, so that it leaves the platoon as it found it
 * apart from vehicles it replaced. Deletes are sent after the run, even when it was
 * interrupted; each is exactly-once under its own client id. */
static int cleanup(const pctl_opts *o, pctl_client *c, uint64_t first_id, uint64_t n)
{
    uint64_t client_id = 0;
    uint64_t failed = 0;
    char last[600] = "";
    pctl_status open_st;
    if (pctl_open_session(c, &client_id, &open_st) != 0) {
        return pctl_fail(o, PCTL_EXIT_SERVER, "simulate --cleanup: no session: %s",
                         open_st.message);
    }
    for (uint64_t i = 0; i < n; i++) {
        Platoon__V1__DeleteVehicleRequest req = PLATOON__V1__DELETE_VEHICLE_REQUEST__INIT;
        req.id = first_id + i;
        req.client_id = client_id;
        req.sequence = i + 1;
        Platoon__V1__DeleteVehicleResponse *resp = NULL;
        pctl_status st;
        if (pctl_call(c, PCTL_M_DELETE, &req.base,
                      &platoon__v1__delete_vehicle_response__descriptor, true,
                      (ProtobufCMessage **)&resp, &st) != 0) {
            failed++;
            snprintf(last, sizeof(last), "vehicle %llu: %s", (unsigned long long)req.id,
                     st.message);
            continue;
        }
        protobuf_c_message_free_unpacked(&resp->base, NULL);
    }
    pctl_close_session(c, client_id);
    if (failed > 0) {
        return pctl_fail(o, PCTL_EXIT_SERVER,
                         "simulate --cleanup: %llu deletes failed; last: %.300s",
                         (unsigned long long)failed, last);
    }
    if (!o->json) {
        fprintf(stderr, "simulate: deleted vehicles %llu..%llu\n", (unsigned long long)first_id,
                (unsigned long long)(first_id + n - 1));
    }
    return PCTL_EXIT_OK;
}

int pctl_simulate(const pctl_opts *o, pctl_client *c, int argc, char **argv)
{
    pctl_flag flags[] = {{.name = "--vehicles"},
                         {.name = "--rate"},
                         {.name = "--duration"},
                         {.name = "--gap"},
                         {.name = "--speed"},
                         {.name = "--first-id"},
                         {.name = "--cleanup", .is_switch = true}};
    const char *pos[1];
    size_t n_pos;
    char err[256];
    if (pctl_parse_args(argc, argv, flags, NFLAGS(flags), pos, 0, &n_pos, err, sizeof(err))) {
        return pctl_usage_error(o, "simulate: %s", err);
    }
    uint64_t n = 5, first_id = 1;
    double rate = 10.0, gap = 20.0, speed = 25.0;
    int64_t duration_ms = 10000;
    if (flags[0].seen && !pctl_parse_u64(flags[0].value, 1, 100000, &n)) {
        return pctl_usage_error(o, "simulate: --vehicles must be an integer in [1, 100000]");
    }
    if (flags[1].seen && (!pctl_parse_double(flags[1].value, &rate) || rate <= 0 || rate > 1000)) {
        return pctl_usage_error(o, "simulate: --rate must be in (0, 1000] writes/s per vehicle");
    }
    if (flags[2].seen && !pctl_parse_seconds(flags[2].value, 100, 86400000, &duration_ms)) {
        return pctl_usage_error(o, "simulate: --duration must be seconds in [0.1, 86400]");
    }
    if (flags[3].seen && (!pctl_parse_double(flags[3].value, &gap) || gap < 0 || gap > 1000)) {
        return pctl_usage_error(o, "simulate: --gap must be metres in [0, 1000]");
    }
    if (flags[4].seen && (!pctl_parse_double(flags[4].value, &speed) || speed < 0 || speed > 130)) {
        return pctl_usage_error(o, "simulate: --speed must be m/s in [0, 130]");
    }
    if (flags[5].seen && !pctl_parse_u64(flags[5].value, 1, UINT64_MAX - n, &first_id)) {
        return pctl_usage_error(o, "simulate: --first-id must be a positive integer");
    }

    sim s;
    memset(&s, 0, sizeof(s));
    s.client = c;
    s.n = n;
    s.period_us = (int64_t)llround(1e6 / rate);
    s.timeout_us = o->timeout_ms * 1000;
    pctl_hist_init(&s.hist);
    pctl_platoon_init(&s.platoon, n, gap, speed);
    s.v = calloc(n, sizeof(*s.v));
    if (s.v == NULL) {
        return pctl_fail(o, PCTL_EXIT_SERVER, "simulate: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        s.v[i].id = first_id + i;
        /* One session per vehicle: each has one write in flight, in sequence order. */
        pctl_status st;
        if (pctl_open_session(c, &s.v[i].client_id, &st) != 0) {
            for (size_t k = 0; k < i; k++) {
                pctl_close_session(c, s.v[k].client_id);
            }
            free(s.v);
            return pctl_report(o, "simulate: opening the vehicles' sessions", &st);
        }
        s.v[i].ep = i % pctl_client_n_endpoints(c);
    }
    s.cq = grpc_completion_queue_create_for_next(NULL);
    int rc = run(o, &s, duration_ms * 1000, rate);
    for (size_t i = 0; i < n; i++) {
        pctl_close_session(c, s.v[i].client_id);
    }
    grpc_completion_queue_shutdown(s.cq);
    while (grpc_completion_queue_next(s.cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(s.cq);
    for (size_t i = 0; i < n; i++) {
        free(s.v[i].req);
    }
    free(s.v);
    if (flags[6].seen) {
        int crc = cleanup(o, c, first_id, n);
        if (rc == PCTL_EXIT_OK) {
            rc = crc;
        }
    }
    return rc;
}
