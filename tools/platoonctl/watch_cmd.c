/*
 * platoonctl vehicle watch: prints every change to the platoon as the node applies it
 * (WatchPlatoon, a server stream), until Ctrl-C or an error.
 *
 * Text output, one line per event: the full state first ("state at revision R" and one PUT line
 * per vehicle), then "changes after revision R" and a PUT or DELETE line per change. With
 * --json, one object per line: {"state":"begin","revision":R}, the events
 * ({"initial":true|false,"type":"PUT","id":..,"revision":..,"vehicle":{..}} or
 * {"initial":false,"type":"DELETE","id":..,"revision":..}), {"state":"end","revision":R}.
 * A watch that ends with an error says how to resume (--from REV); Ctrl-C ends it cleanly
 * (exit 0).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/support/time.h>
#include <jansson.h>

#include "platoon/v1/platoon.pb-c.h"

#include "args.h"
#include "ctl.h"
#include "output.h"
#include "rpc.h"

#define PCTL_M_WATCH       "/platoon.v1.Platoon/WatchPlatoon"
#define PCTL_WATCH_IDS_MAX 1000

/* The state of one watch call. */
typedef struct watch_call {
    grpc_completion_queue *cq;
    grpc_call *call;
    grpc_metadata_array md_initial, md_trailing;
    grpc_byte_buffer *request, *msg;
    grpc_status_code status;
    grpc_slice details;
    int tag_start, tag_recv, tag_status;
    bool recv_pending, status_done, cancelled;
    /* What was received: any message, and the revision to resume from. */
    bool got_message;
    bool resumable;
    uint64_t resume_from;
} watch_call;

static void print_event(const pctl_opts *o, bool initial, const Platoon__V1__WatchEvent *e)
{
    bool put = e->type == PLATOON__V1__WATCH_EVENT__TYPE__PUT;
    if (o->json) {
        json_t *j = json_object();
        json_object_set_new(j, "initial", json_boolean(initial));
        json_object_set_new(j, "type", json_string(put ? "PUT" : "DELETE"));
        json_object_set_new(j, "id", json_integer((json_int_t)e->id));
        json_object_set_new(j, "revision", json_integer((json_int_t)e->revision));
        if (put && e->vehicle != NULL) {
            json_object_set_new(j, "vehicle", pctl_json_vehicle(e->vehicle));
        }
        pctl_json_print(j);
        return;
    }
    if (put && e->vehicle != NULL) {
        const Platoon__V1__Vehicle *v = e->vehicle;
        char f[4][32];
        pctl_format_double(v->latitude, f[0], sizeof(f[0]));
        pctl_format_double(v->longitude, f[1], sizeof(f[1]));
        pctl_format_double(v->speed, f[2], sizeof(f[2]));
        pctl_format_double(v->heading, f[3], sizeof(f[3]));
        printf("PUT     id=%llu lat=%s lon=%s speed=%s heading=%s revision=%llu\n",
               (unsigned long long)e->id, f[0], f[1], f[2], f[3], (unsigned long long)e->revision);
    } else {
        printf("DELETE  id=%llu revision=%llu\n", (unsigned long long)e->id,
               (unsigned long long)e->revision);
    }
}

static void print_marker(const pctl_opts *o, const char *state, uint64_t revision)
{
    if (o->json) {
        json_t *j = json_object();
        json_object_set_new(j, "state", json_string(state));
        json_object_set_new(j, "revision", json_integer((json_int_t)revision));
        pctl_json_print(j);
    } else if (strcmp(state, "begin") == 0) {
        printf("state at revision %llu:\n", (unsigned long long)revision);
    } else {
        printf("changes after revision %llu:\n", (unsigned long long)revision);
    }
}

/* Prints one message; false when it cannot be decoded. */
static bool show(const pctl_opts *o, watch_call *w, grpc_byte_buffer *bb)
{
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, bb)) {
        return false;
    }
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    Platoon__V1__WatchPlatoonResponse *m = platoon__v1__watch_platoon_response__unpack(
        NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    if (m == NULL) {
        return false;
    }
    w->got_message = true;
    if (m->initial && m->initial_begin) {
        print_marker(o, "begin", m->revision);
        w->resumable = false;
    }
    for (size_t i = 0; i < m->n_events; i++) {
        print_event(o, m->initial, m->events[i]);
    }
    if (m->initial && m->initial_end) {
        print_marker(o, "end", m->revision);
        w->resumable = true;
        w->resume_from = m->revision;
    } else if (!m->initial && m->n_events > 0) {
        w->resume_from = m->revision;
    }
    fflush(stdout);
    platoon__v1__watch_platoon_response__free_unpacked(m, NULL);
    return true;
}

static bool recv_next(watch_call *w)
{
    grpc_op op;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &w->msg;
    w->recv_pending = grpc_call_start_batch(w->call, &op, 1, &w->tag_recv, NULL) == GRPC_CALL_OK;
    return w->recv_pending;
}

/* Starts the call on @ch. Returns false when it could not be started. */
static bool start(watch_call *w, grpc_channel *ch, const ProtobufCMessage *req)
{
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(len > 0 ? len : 1);
    if (buf == NULL) {
        return false;
    }
    protobuf_c_message_pack(req, buf);
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, len);
    free(buf);
    w->request = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_slice method = grpc_slice_from_static_string(PCTL_M_WATCH);
    w->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, w->cq, method, NULL,
                                       gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (w->call == NULL) {
        return false;
    }
    grpc_op ops[4];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = w->request;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &w->md_initial;
    if (grpc_call_start_batch(w->call, ops, 4, &w->tag_start, NULL) != GRPC_CALL_OK) {
        return false;
    }
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &w->md_trailing;
    ops[0].data.recv_status_on_client.status = &w->status;
    ops[0].data.recv_status_on_client.status_details = &w->details;
    if (grpc_call_start_batch(w->call, ops, 1, &w->tag_status, NULL) != GRPC_CALL_OK) {
        grpc_call_cancel(w->call, NULL);
        return false;
    }
    return recv_next(w);
}

/* Runs the call until its status arrives (or Ctrl-C cancels it). */
static void run(const pctl_opts *o, watch_call *w)
{
    bool start_done = false;
    while (!w->status_done || w->recv_pending || !start_done) {
        if (pctl_interrupted && !w->cancelled) {
            w->cancelled = true;
            grpc_call_cancel(w->call, NULL);
        }
        gpr_timespec wait =
            gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(200, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(w->cq, wait, NULL);
        if (ev.type != GRPC_OP_COMPLETE) {
            continue;
        }
        if (ev.tag == &w->tag_start) {
            start_done = true;
        } else if (ev.tag == &w->tag_status) {
            w->status_done = true;
        } else if (ev.tag == &w->tag_recv) {
            w->recv_pending = false;
            grpc_byte_buffer *bb = w->msg;
            w->msg = NULL;
            if (bb == NULL) {
                continue; /* the stream is over: the status follows */
            }
            bool ok = show(o, w, bb);
            grpc_byte_buffer_destroy(bb);
            if (!ok && !w->cancelled) {
                w->cancelled = true;
                grpc_call_cancel_with_status(w->call, GRPC_STATUS_INTERNAL,
                                             "an answer could not be decoded", NULL);
            }
            if (!w->cancelled && !w->status_done) {
                recv_next(w);
            }
        }
    }
}

static void call_free(watch_call *w)
{
    if (w->call != NULL) {
        grpc_call_unref(w->call);
    }
    if (w->request != NULL) {
        grpc_byte_buffer_destroy(w->request);
    }
    grpc_slice_unref(w->details);
    grpc_metadata_array_destroy(&w->md_initial);
    grpc_metadata_array_destroy(&w->md_trailing);
    if (w->cq != NULL) {
        grpc_completion_queue_shutdown(w->cq);
        while (grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(w->cq);
    }
}

/* Takes every "--id N" and "--id=N" out of @argv (into @ids), leaving the rest in place.
 * Returns the remaining argc, or -1 with @err set. */
static int take_ids(int argc, char **argv, uint64_t *ids, size_t *n_ids, char *err, size_t cap)
{
    int out = 0;
    *n_ids = 0;
    for (int i = 0; i < argc; i++) {
        const char *v = NULL;
        if (strcmp(argv[i], "--id") == 0) {
            if (i + 1 >= argc) {
                snprintf(err, cap, "--id needs a vehicle ID");
                return -1;
            }
            v = argv[++i];
        } else if (strncmp(argv[i], "--id=", 5) == 0) {
            v = argv[i] + 5;
        } else {
            argv[out++] = argv[i];
            continue;
        }
        if (*n_ids >= PCTL_WATCH_IDS_MAX) {
            snprintf(err, cap, "at most %d --id", PCTL_WATCH_IDS_MAX);
            return -1;
        }
        if (!pctl_parse_u64(v, 1, UINT64_MAX, &ids[*n_ids])) {
            snprintf(err, cap, "--id '%s' must be a positive integer", v);
            return -1;
        }
        (*n_ids)++;
    }
    return out;
}

int pctl_vehicle_watch(const pctl_opts *o, pctl_client *c, int argc, char **argv)
{
    static uint64_t ids[PCTL_WATCH_IDS_MAX];
    size_t n_ids = 0;
    char err[256];
    int left = take_ids(argc, argv, ids, &n_ids, err, sizeof(err));
    if (left < 0) {
        return pctl_usage_error(o, "vehicle watch: %s", err);
    }
    pctl_flag flags[] = {{.name = "--from"}, {.name = "--stale", .is_switch = true}};
    const char *pos[1];
    size_t n_pos;
    if (pctl_parse_args(left, argv, flags, 2, pos, 0, &n_pos, err, sizeof(err))) {
        return pctl_usage_error(o, "vehicle watch: %s", err);
    }
    Platoon__V1__WatchPlatoonRequest req = PLATOON__V1__WATCH_PLATOON_REQUEST__INIT;
    if (flags[0].seen) {
        if (!pctl_parse_u64(flags[0].value, 0, UINT64_MAX, &req.from_revision)) {
            return pctl_usage_error(o, "vehicle watch: --from must be a revision (an integer)");
        }
        req.start_case = PLATOON__V1__WATCH_PLATOON_REQUEST__START_FROM_REVISION;
    }
    req.ids = ids;
    req.n_ids = n_ids;
    req.consistency = flags[1].seen ? PLATOON__V1__READ_CONSISTENCY__READ_CONSISTENCY_STALE
                                    : PLATOON__V1__READ_CONSISTENCY__READ_CONSISTENCY_LINEARIZABLE;

    /* The first endpoint that takes the watch serves all of it: a watch lives on one node.
     * One that cannot be reached, or cannot serve yet (UNAVAILABLE) before sending anything,
     * is passed over for the next. */
    pctl_status st;
    memset(&st, 0, sizeof(st));
    size_t n = pctl_client_n_endpoints(c);
    for (size_t i = 0; i < n && !pctl_interrupted; i++) {
        watch_call w;
        memset(&w, 0, sizeof(w));
        w.details = grpc_empty_slice();
        grpc_metadata_array_init(&w.md_initial);
        grpc_metadata_array_init(&w.md_trailing);
        w.cq = grpc_completion_queue_create_for_next(NULL);
        grpc_channel *ch = pctl_client_channel(c, i);
        snprintf(st.endpoint, sizeof(st.endpoint), "%s", pctl_client_endpoint(c, i));
        if (ch == NULL || w.cq == NULL || !start(&w, ch, &req.base)) {
            st.code = GRPC_STATUS_RESOURCE_EXHAUSTED;
            snprintf(st.message, sizeof(st.message), "the call could not be started");
            call_free(&w);
            continue;
        }
        run(o, &w);
        bool got = w.got_message;
        st.connected = st.connected || got || w.status != GRPC_STATUS_UNAVAILABLE;
        st.code = (int)w.status;
        size_t len = GRPC_SLICE_LENGTH(w.details);
        len = len < sizeof(st.message) - 1 ? len : sizeof(st.message) - 1;
        memcpy(st.message, GRPC_SLICE_START_PTR(w.details), len);
        st.message[len] = '\0';
        bool resumable = w.resumable;
        uint64_t resume_from = w.resume_from;
        call_free(&w);
        if (pctl_interrupted) {
            return PCTL_EXIT_OK; /* Ctrl-C: a clean end */
        }
        if (!got && st.code == GRPC_STATUS_UNAVAILABLE) {
            continue;
        }
        int rc = pctl_report(o, "vehicle watch", &st);
        const char *oldest = strstr(st.message, "can resume from here is ");
        if (st.code == GRPC_STATUS_OUT_OF_RANGE && oldest != NULL && !o->json) {
            fprintf(stderr,
                    "platoonctl: the node no longer holds the changes after revision %llu: "
                    "resume with --from %llu or later, or watch without --from for the full "
                    "state\n",
                    (unsigned long long)req.from_revision,
                    strtoull(oldest + strlen("can resume from here is "), NULL, 10));
        } else if (resumable && !o->json) {
            fprintf(stderr, "platoonctl: to go on, run: platoonctl vehicle watch --from %llu\n",
                    (unsigned long long)resume_from);
        }
        return rc;
    }
    if (pctl_interrupted) {
        return PCTL_EXIT_OK;
    }
    return pctl_report(o, "vehicle watch", &st);
}
