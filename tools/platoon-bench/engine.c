/*
 * The engine (engine.h). One thread, one completion queue, @concurrency slots. A slot is one
 * outstanding unary call: a single batch of the six client operations, whose completion carries
 * the status and the answer. The thread waits on the queue with a deadline of at most 100 ms,
 * so progress lines, phase changes (warm-up, recording, drain) and Ctrl-C are handled on time
 * even when no call completes.
 */
#include "creds.h"
#include "discover.h"
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "platoon/error.h"
#include "platoon/v1/platoon.pb-c.h"

volatile int pbench_stop_requested;

struct slot {
    grpc_call *call; /* NULL while idle */
    grpc_channel *ch;
    pbench_slot_state st;
    pbench_request req;
    grpc_byte_buffer *send, *recv;
    grpc_metadata_array md_initial, md_trailing;
    grpc_status_code status;
    grpc_slice details;
    uint64_t start_ns;
};

enum phase { PHASE_WARMUP, PHASE_RECORD, PHASE_DRAIN };

struct engine {
    const pbench_engine_cfg *cfg;
    pbench_result *res;
    grpc_completion_queue *cq;
    grpc_channel **channels;
    struct slot *slots;
    uint32_t outstanding;
    uint64_t rng;
    uint32_t fill_next;
    int phase;
    uint64_t record_start_ns, record_end_ns;
    /* The current second, for the progress line. */
    pbench_hist second;
    uint64_t second_errors;
    pbench_watch *watch; /* NULL without watchers */
};

uint64_t pbench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Opens an exactly-once session on @ch with a blocking OpenSession call (before the run:
 * sessions are opened once per slot, not measured). Returns 0 and sets *@client_id, or
 * PT_EIO. */
static int open_session(grpc_channel *ch, int64_t timeout_ms, uint64_t *client_id)
{
    grpc_byte_buffer *answer = NULL;
    char err[400];
    if (pbench_unary_on(ch, "/platoon.v1.Platoon/OpenSession", timeout_ms, &answer, err,
                        sizeof(err)) != 0) {
        fprintf(stderr, "platoon-bench: %s\n", err);
        return PT_EIO;
    }
    int rc = PT_EIO;
    grpc_byte_buffer_reader reader;
    if (grpc_byte_buffer_reader_init(&reader, answer)) {
        grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
        Platoon__V1__OpenSessionResponse *resp = platoon__v1__open_session_response__unpack(
            NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
        if (resp != NULL && resp->client_id != 0) {
            *client_id = resp->client_id;
            rc = 0;
        }
        if (resp != NULL) {
            platoon__v1__open_session_response__free_unpacked(resp, NULL);
        }
        grpc_slice_unref(all);
        grpc_byte_buffer_reader_destroy(&reader);
    }
    grpc_byte_buffer_destroy(answer);
    if (rc != 0) {
        fprintf(stderr, "platoon-bench: OpenSession answered no session\n");
    }
    return rc;
}

/* Starts the next call of @s; 1 when the workload has nothing more to send (a fill is done). */
static int slot_start(struct engine *e, struct slot *s)
{
    const pbench_engine_cfg *cfg = e->cfg;
    int rc = pbench_request_next(&cfg->wl, &s->st, &e->rng, &e->fill_next, &s->req);
    if (rc != 0) {
        return rc;
    }
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(cfg->timeout_ms, GPR_TIMESPAN));
    s->call = grpc_channel_create_call(s->ch, NULL, GRPC_PROPAGATE_DEFAULTS, e->cq,
                                       grpc_slice_from_static_string(s->req.method), NULL, deadline,
                                       NULL);
    if (s->call == NULL) {
        return PT_ENOMEM;
    }
    grpc_slice payload = grpc_slice_from_copied_buffer((const char *)s->req.buf, s->req.len);
    s->send = grpc_raw_byte_buffer_create(&payload, 1);
    grpc_slice_unref(payload);
    s->recv = NULL;
    grpc_metadata_array_init(&s->md_initial);
    grpc_metadata_array_init(&s->md_trailing);
    s->details = grpc_empty_slice();

    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = s->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->md_initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &s->recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &s->md_trailing;
    ops[5].data.recv_status_on_client.status = &s->status;
    ops[5].data.recv_status_on_client.status_details = &s->details;

    s->start_ns = pbench_now_ns();
    if (grpc_call_start_batch(s->call, ops, 6, s, NULL) != GRPC_CALL_OK) {
        grpc_byte_buffer_destroy(s->send);
        grpc_metadata_array_destroy(&s->md_initial);
        grpc_metadata_array_destroy(&s->md_trailing);
        grpc_call_unref(s->call);
        s->call = NULL;
        return PT_EIO;
    }
    e->outstanding++;
    return 0;
}

static void note_error(struct engine *e, int code, const char *what, size_t what_len)
{
    pbench_result *res = e->res;
    res->errors++;
    e->second_errors++;
    res->codes[code >= 0 && code < PBENCH_MAX_CODES ? code : GRPC_STATUS_UNKNOWN]++;
    if (res->first_error[0] == '\0') {
        snprintf(res->first_error, sizeof(res->first_error), "status %d: %.*s", code, (int)what_len,
                 what);
    }
}

/* Records the completed call of @s and releases it. */
static void slot_finish(struct engine *e, struct slot *s, bool success)
{
    uint64_t now = pbench_now_ns();
    int code = success ? (int)s->status : GRPC_STATUS_UNKNOWN;
    if (code == GRPC_STATUS_OK) {
        int rc = PT_EMALFORMED;
        if (s->recv != NULL) {
            grpc_byte_buffer_reader reader;
            if (grpc_byte_buffer_reader_init(&reader, s->recv)) {
                grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
                uint64_t revision = 0;
                rc = pbench_response_check(&e->cfg->wl, &s->req, GRPC_SLICE_START_PTR(all),
                                           GRPC_SLICE_LENGTH(all), &revision);
                if (rc == 0 && revision != 0 && e->watch != NULL) {
                    pbench_watch_ack(e->watch, revision, now);
                }
                grpc_slice_unref(all);
                grpc_byte_buffer_reader_destroy(&reader);
            }
        }
        if (rc != 0) {
            const char *m = "an answer that does not decode";
            note_error(e, GRPC_STATUS_INTERNAL, m, strlen(m));
        } else {
            uint64_t lat = now - s->start_ns;
            pbench_hist_record(&e->second, lat);
            if (e->phase == PHASE_RECORD && now < e->record_end_ns) {
                e->res->ok[s->req.kind]++;
                pbench_hist_record(&e->res->lat[s->req.kind], lat);
            }
        }
    } else {
        const char *m = (const char *)GRPC_SLICE_START_PTR(s->details);
        note_error(e, code, m, GRPC_SLICE_LENGTH(s->details));
    }
    grpc_byte_buffer_destroy(s->send);
    if (s->recv != NULL) {
        grpc_byte_buffer_destroy(s->recv);
    }
    grpc_metadata_array_destroy(&s->md_initial);
    grpc_metadata_array_destroy(&s->md_trailing);
    grpc_slice_unref(s->details);
    grpc_call_unref(s->call);
    s->call = NULL;
    e->outstanding--;
}

static void print_progress(struct engine *e, uint64_t now, uint64_t run_start)
{
    double t = (double)(now - run_start) / 1e9;
    const char *tag = e->phase == PHASE_WARMUP ? " (warm-up)" : "";
    fprintf(stderr,
            "platoon-bench: %5.1fs %8llu ops/s  p50 %7.3f ms  p99 %7.3f ms  in flight %u  "
            "errors %llu%s\n",
            t, (unsigned long long)e->second.count,
            (double)pbench_hist_quantile(&e->second, 0.5) / 1e6,
            (double)pbench_hist_quantile(&e->second, 0.99) / 1e6, e->outstanding,
            (unsigned long long)e->second_errors, tag);
}

static grpc_arg int_arg(const char *key, int value)
{
    grpc_arg a;
    a.type = GRPC_ARG_INTEGER;
    a.key = (char *)key;
    a.value.integer = value;
    return a;
}

static grpc_channel *channel_open(const char *target, grpc_channel_credentials *creds)
{
    /* Channels to the same address would share one connection through gRPC's global subchannel
     * pool; a local pool per channel gives each its own TCP connection, as separate clients
     * would have. Answers are not size-limited: GetPlatoon grows with the pool. The load
     * generator shares the machine with the cluster it measures, so it keeps its own cost per
     * call low: no retry machinery (a failed call is counted, never retried behind our back)
     * and gRPC's minimal filter stack, with deadline checks kept (every call has one). Measured
     * here: about a fifth less CPU per call (31 -> 25 us). */
    grpc_arg args[] = {
        int_arg(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1),
        int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, -1),
        int_arg(GRPC_ARG_MINIMAL_STACK, 1),
        int_arg(GRPC_ARG_ENABLE_DEADLINE_CHECKS, 1),
        int_arg(GRPC_ARG_ENABLE_RETRIES, 0),
    };
    grpc_channel_args chargs = {sizeof(args) / sizeof(args[0]), args};
    return grpc_channel_create(target, creds, &chargs);
}

grpc_channel *pbench_channel_open(const char *target)
{
    grpc_channel_credentials *creds = pbench_creds();
    grpc_channel *ch = channel_open(target, creds);
    grpc_channel_credentials_release(creds);
    return ch;
}

static int open_channels(struct engine *e)
{
    const pbench_engine_cfg *cfg = e->cfg;
    grpc_channel_credentials *creds = pbench_creds();
    int rc = 0;
    for (uint32_t i = 0; i < cfg->channels; i++) {
        e->channels[i] = channel_open(cfg->endpoints[i % cfg->n_endpoints], creds);
        if (e->channels[i] == NULL) {
            rc = PT_EIO;
            break;
        }
    }
    grpc_channel_credentials_release(creds);
    return rc;
}

int pbench_engine_run(const pbench_engine_cfg *cfg, pbench_result *res)
{
    struct engine *e = calloc(1, sizeof(*e));
    int rc = PT_ENOMEM;
    if (e == NULL) {
        return PT_ENOMEM;
    }
    memset(res, 0, sizeof(*res));
    e->cfg = cfg;
    e->res = res;
    e->rng = cfg->seed ? cfg->seed : 0x9e3779b97f4a7c15u;
    e->fill_next = 1;
    e->channels = calloc(cfg->channels, sizeof(grpc_channel *));
    e->slots = calloc(cfg->concurrency, sizeof(*e->slots));
    e->cq = grpc_completion_queue_create_for_next(NULL);
    if (e->channels == NULL || e->slots == NULL || e->cq == NULL) {
        goto cleanup;
    }
    rc = open_channels(e);
    if (rc != 0) {
        goto cleanup;
    }
    if (cfg->watchers > 0) {
        e->watch =
            pbench_watch_create(cfg->watchers, cfg->watch_target, cfg->watch_channels, &res->watch);
        if (e->watch == NULL) {
            rc = PT_ENOMEM;
            goto cleanup;
        }
        if (cfg->watch_idle) {
            pbench_watch_filter(e->watch, cfg->watchers, cfg->wl.pool);
        } else {
            pbench_watch_filter(e->watch, cfg->watch_one_vehicle ? cfg->wl.pool : 0, 0);
        }
    }

    bool fill = cfg->wl.workload == PBENCH_WL_FILL;
    uint64_t run_start = pbench_now_ns();
    e->record_start_ns = run_start + (fill ? 0 : (uint64_t)(cfg->warmup_s * 1e9));
    e->record_end_ns = e->record_start_ns + (fill ? 0 : (uint64_t)(cfg->duration_s * 1e9));
    e->phase = e->record_start_ns > run_start ? PHASE_WARMUP : PHASE_RECORD;
    uint64_t next_second = run_start + 1000000000u;
    uint64_t drain_deadline = UINT64_MAX;

    bool sessions = cfg->wl.sessions && cfg->wl.target == PBENCH_TARGET_PLATOON &&
                    (cfg->wl.workload == PBENCH_WL_UPDATE || cfg->wl.workload == PBENCH_WL_MIXED);
    for (uint32_t i = 0; i < cfg->concurrency && sessions; i++) {
        struct slot *s = &e->slots[i];
        rc = open_session(e->channels[i % cfg->channels], cfg->timeout_ms, &s->st.client_id);
        if (rc != 0) {
            goto cleanup;
        }
    }
    /* The watchers start first, so that their initial states are behind them by the time the
     * recording starts (with a warm-up). */
    if (e->watch != NULL) {
        rc = pbench_watch_start(e->watch, e->record_start_ns, e->record_end_ns);
        if (rc != 0) {
            e->phase = PHASE_DRAIN;
        }
    }
    for (uint32_t i = 0; i < cfg->concurrency && e->phase != PHASE_DRAIN; i++) {
        struct slot *s = &e->slots[i];
        s->ch = e->channels[i % cfg->channels];
        int src = slot_start(e, s);
        if (src < 0) {
            rc = src;
            e->phase = PHASE_DRAIN;
            break;
        }
    }

    while (e->outstanding > 0 || (e->phase != PHASE_DRAIN && !fill)) {
        uint64_t now = pbench_now_ns();
        /* Phase changes. */
        if (e->phase == PHASE_WARMUP && now >= e->record_start_ns) {
            e->phase = PHASE_RECORD;
        }
        if (e->phase == PHASE_RECORD && !fill && now >= e->record_end_ns) {
            e->phase = PHASE_DRAIN;
        }
        if (pbench_stop_requested && e->phase != PHASE_DRAIN) {
            res->interrupted = true;
            e->phase = PHASE_DRAIN;
            if (now < e->record_end_ns) {
                e->record_end_ns = now;
            }
        }
        if (e->phase == PHASE_DRAIN && drain_deadline == UINT64_MAX) {
            /* Every call ends by its own deadline; a little more, then cancel what is left. */
            drain_deadline = now + (uint64_t)(cfg->timeout_ms + 2000) * 1000000u;
        }
        if (now >= drain_deadline) {
            for (uint32_t i = 0; i < cfg->concurrency; i++) {
                if (e->slots[i].call != NULL) {
                    grpc_call_cancel(e->slots[i].call, NULL);
                }
            }
            drain_deadline = UINT64_MAX - 1; /* once */
        }
        if (cfg->progress && now >= next_second) {
            print_progress(e, now, run_start);
            pbench_hist_reset(&e->second);
            e->second_errors = 0;
            next_second += 1000000000u;
        }
        if (e->outstanding == 0 && (fill || e->phase == PHASE_DRAIN)) {
            break;
        }

        gpr_timespec wait =
            gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(100, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(e->cq, wait, NULL);
        if (ev.type != GRPC_OP_COMPLETE) {
            continue;
        }
        struct slot *s = ev.tag;
        slot_finish(e, s, ev.success != 0);
        if (e->phase != PHASE_DRAIN) {
            int src = slot_start(e, s);
            if (src < 0) {
                rc = src;
                e->phase = PHASE_DRAIN;
            }
        }
    }
    uint64_t end = e->record_end_ns < pbench_now_ns() ? e->record_end_ns : pbench_now_ns();
    res->elapsed_s = end > e->record_start_ns ? (double)(end - e->record_start_ns) / 1e9 : 0;
    if (e->watch != NULL) {
        pbench_watch_stop(e->watch); /* what they receive from now on is not recorded */
    }

cleanup:
    if (e->channels != NULL) {
        for (uint32_t i = 0; i < cfg->channels; i++) {
            if (e->channels[i] != NULL) {
                grpc_channel_destroy(e->channels[i]);
            }
        }
    }
    pbench_watch_destroy(e->watch); /* nothing of theirs is outstanding any more */
    if (e->cq != NULL) {
        grpc_completion_queue_shutdown(e->cq);
        while (grpc_completion_queue_next(e->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
               GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(e->cq);
    }
    free(e->slots);
    free(e->channels);
    free(e);
    return rc;
}
