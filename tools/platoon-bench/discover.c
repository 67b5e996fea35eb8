/*
 * Leader discovery (discover.h): a blocking unary call on a completion queue of its own.
 */
#include "discover.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "creds.h"
#include "engine.h"
#include "etcd_kv.pb-c.h"
#include "platoon/error.h"
#include "platoon/v1/platoon.pb-c.h"

int pbench_unary_on(grpc_channel *ch, const char *method, int64_t timeout_ms,
                    grpc_byte_buffer **answer, char *err, size_t err_cap)
{
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    grpc_call *call =
        grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                 grpc_slice_from_static_string(method), NULL, deadline, NULL);
    grpc_slice empty = grpc_empty_slice();
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&empty, 1);
    grpc_metadata_array md_initial, md_trailing;
    grpc_metadata_array_init(&md_initial);
    grpc_metadata_array_init(&md_trailing);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    *answer = NULL;

    grpc_op ops[6];
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &md_initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = answer;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &md_trailing;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    int rc = PT_EIO;
    if (call != NULL && grpc_call_start_batch(call, ops, 6, call, NULL) == GRPC_CALL_OK) {
        grpc_event ev =
            grpc_completion_queue_pluck(cq, call, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_OP_COMPLETE && ev.success && status == GRPC_STATUS_OK &&
            *answer != NULL) {
            rc = 0;
        } else {
            snprintf(err, err_cap, "%s: status %d %.*s", method, (int)status,
                     (int)GRPC_SLICE_LENGTH(details), (const char *)GRPC_SLICE_START_PTR(details));
        }
    }
    if (rc != 0 && *answer != NULL) {
        grpc_byte_buffer_destroy(*answer);
        *answer = NULL;
    }
    grpc_byte_buffer_destroy(send);
    grpc_metadata_array_destroy(&md_initial);
    grpc_metadata_array_destroy(&md_trailing);
    grpc_slice_unref(details);
    if (call != NULL) {
        grpc_call_unref(call);
    }
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    return rc;
}

/* One unary call to @address with a 1 s deadline, on a channel of its own. */
static int unary(const char *address, const char *method, grpc_byte_buffer **answer, char *err,
                 size_t err_cap)
{
    grpc_channel_credentials *creds = pbench_creds();
    grpc_channel *ch = grpc_channel_create(address, creds, NULL);
    grpc_channel_credentials_release(creds);
    int n = snprintf(err, err_cap, "%s: ", address);
    size_t used = n > 0 && (size_t)n < err_cap ? (size_t)n : 0;
    int rc = pbench_unary_on(ch, method, 1000, answer, err + used, err_cap - used);
    grpc_channel_destroy(ch);
    return rc;
}

static ProtobufCMessage *unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb)
{
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, bb)) {
        return NULL;
    }
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    ProtobufCMessage *m =
        protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    grpc_byte_buffer_reader_destroy(&reader);
    return m;
}

/* 1: found (written to @out), 0: this endpoint knows no leader yet, <0: error. */
static int ask_platoon(const char *address, char *out, size_t out_cap, char *err, size_t err_cap)
{
    grpc_byte_buffer *bb = NULL;
    int rc = unary(address, "/platoon.v1.Cluster/Status", &bb, err, err_cap);
    if (rc != 0) {
        return rc;
    }
    Platoon__V1__StatusResponse *st =
        (Platoon__V1__StatusResponse *)unpack(&platoon__v1__status_response__descriptor, bb);
    grpc_byte_buffer_destroy(bb);
    if (st == NULL) {
        snprintf(err, err_cap, "Status at %s: an answer that does not decode", address);
        return PT_EMALFORMED;
    }
    rc = 0;
    for (size_t i = 0; st->leader_id != 0 && i < st->n_members; i++) {
        if (st->members[i]->id == st->leader_id && st->members[i]->address[0] != '\0') {
            snprintf(out, out_cap, "%s", st->members[i]->address);
            rc = 1;
        }
    }
    protobuf_c_message_free_unpacked(&st->base, NULL);
    return rc;
}

/* 1: @address is the leader, 0: it is not (or knows none), <0: error. */
static int ask_etcd(const char *address, char *err, size_t err_cap)
{
    grpc_byte_buffer *bb = NULL;
    int rc = unary(address, "/etcdserverpb.Maintenance/Status", &bb, err, err_cap);
    if (rc != 0) {
        return rc;
    }
    Etcdserverpb__StatusResponse *st =
        (Etcdserverpb__StatusResponse *)unpack(&etcdserverpb__status_response__descriptor, bb);
    grpc_byte_buffer_destroy(bb);
    if (st == NULL) {
        snprintf(err, err_cap, "Status at %s: an answer that does not decode", address);
        return PT_EMALFORMED;
    }
    rc = st->header != NULL && st->leader != 0 && st->header->member_id == st->leader;
    protobuf_c_message_free_unpacked(&st->base, NULL);
    return rc;
}

int pbench_find_leader(int target, const char *const *endpoints, size_t n_endpoints,
                       uint32_t wait_ms, char *out, size_t out_cap, char *err, size_t err_cap)
{
    uint64_t give_up = pbench_now_ns() + (uint64_t)wait_ms * 1000000u;
    snprintf(err, err_cap, "no leader among the endpoints within %u ms", wait_ms);
    do {
        for (size_t i = 0; i < n_endpoints; i++) {
            char why[256] = "";
            int rc;
            if (target == PBENCH_TARGET_ETCD) {
                rc = ask_etcd(endpoints[i], why, sizeof(why));
                if (rc == 1) {
                    snprintf(out, out_cap, "%s", endpoints[i]);
                }
            } else {
                rc = ask_platoon(endpoints[i], out, out_cap, why, sizeof(why));
            }
            if (rc == 1) {
                return 0;
            }
            if (rc < 0) {
                snprintf(err, err_cap, "no leader found within %u ms (last: %s)", wait_ms, why);
            }
        }
        struct timespec pause = {0, 100L * 1000000};
        nanosleep(&pause, NULL);
    } while (pbench_now_ns() < give_up && !pbench_stop_requested);
    return PT_ETIMEDOUT;
}
