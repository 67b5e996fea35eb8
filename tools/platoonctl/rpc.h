/*
 * Synchronous unary calls to a Platoon cluster over the gRPC C core, for a command-line
 * client: one completion queue, one cached channel per address, one call at a time.
 *
 * Failover. pctl_call tries the endpoints in turn, starting with the last one that answered,
 * until one answers or the command's deadline passes. An endpoint that cannot be connected to
 * within the dial timeout (down, or a paused process that accepts TCP but never speaks HTTP/2)
 * is skipped. A request marked idempotent is also retried on the next endpoint, round after
 * round, when a node answers UNAVAILABLE (no leader yet: an election in progress) or does not
 * answer within its share of the time (half of what is left); one that is not idempotent is
 * sent once, with the whole timeout, since its outcome after a failure is unknown.
 */
#ifndef PCTL_RPC_H
#define PCTL_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#include "ctl.h"

/* Full method names of the public API. */
#define PCTL_M_UPDATE   "/platoon.v1.Platoon/UpdateVehicle"
#define PCTL_M_DELETE   "/platoon.v1.Platoon/DeleteVehicle"
#define PCTL_M_GET      "/platoon.v1.Platoon/GetVehicle"
#define PCTL_M_PLATOON  "/platoon.v1.Platoon/GetPlatoon"
#define PCTL_M_OPEN     "/platoon.v1.Platoon/OpenSession"
#define PCTL_M_CLOSE    "/platoon.v1.Platoon/CloseSession"
#define PCTL_M_STATUS   "/platoon.v1.Cluster/Status"
#define PCTL_M_ADD      "/platoon.v1.Cluster/AddMember"
#define PCTL_M_REMOVE   "/platoon.v1.Cluster/RemoveMember"
#define PCTL_M_TRANSFER "/platoon.v1.Cluster/TransferLeadership"
#define PCTL_M_SNAPSHOT "/platoon.v1.Cluster/Snapshot"

#define PCTL_MAX_ENDPOINTS 32
#define PCTL_ADDRESS_MAX   256

/* The outcome of a call: a gRPC status code (0 = OK), its message, and who gave it. */
typedef struct pctl_status {
    int code;
    char message[512];
    char endpoint[PCTL_ADDRESS_MAX]; /* the address that answered, or the last one tried */
    bool connected;                  /* false: no endpoint could be reached at all */
    /* Not connected for a cause that retrying will not change soon: the name does not
     * resolve, the connection is refused, or TCP itself gets no answer. */
    bool hopeless;
} pctl_status;

/*
 * Parses @opts->endpoints and prepares the client (no connection is made yet).
 * Returns 0, PT_EINVAL (an empty or malformed list; @err says why), PT_ENOMEM.
 */
int pctl_client_new(const pctl_opts *opts, pctl_client **out, char *err, size_t cap);
void pctl_client_free(pctl_client *c);

size_t pctl_client_n_endpoints(const pctl_client *c);
/* Whether the client speaks TLS (--cacert, --cert, --key given). */
bool pctl_client_tls(const pctl_client *c);
const char *pctl_client_endpoint(const pctl_client *c, size_t i);

/*
 * Calls @method at @address with @req; on status OK unpacks the answer into *@resp (free it
 * with protobuf_c_message_free_unpacked). @deadline_ms is on pctl_now_ms()'s clock.
 * Returns 0 when the call completed with OK; otherwise PT_EIO and *@st says what happened.
 */
int pctl_call_at(pctl_client *c, const char *address, const char *method,
                 const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                 int64_t deadline_ms, ProtobufCMessage **resp, pctl_status *st);

/* Like pctl_call_at, with the failover described above, within the client's timeout. */
int pctl_call(pctl_client *c, const char *method, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc, bool idempotent, ProtobufCMessage **resp,
              pctl_status *st);

/* Opens an exactly-once session (OpenSession, retried on other endpoints like any call: a
 * retry can at worst open a second session, which expires unused). Sets *@client_id.
 * Returns 0, or PT_EIO with *@st saying why. */
int pctl_open_session(pctl_client *c, uint64_t *client_id, pctl_status *st);

/* Closes @client_id's session, best effort: a session left open expires by itself. */
void pctl_close_session(pctl_client *c, uint64_t client_id);

/* The channel to endpoint @i (created on first use), for callers that run their own calls
 * (simulate). NULL when it cannot be created. Owned by the client. */
grpc_channel *pctl_client_channel(pctl_client *c, size_t i);

/* Monotonic milliseconds. */
int64_t pctl_now_ms(void);

/* Sleeps @ms milliseconds, returning early when interrupted. */
void pctl_sleep_ms(int64_t ms);

/* The gRPC channel arguments every channel of platoonctl uses (quick reconnection). */
const void *pctl_channel_args(void);

/* A random non-zero 64-bit number (client ids). */
uint64_t pctl_random_u64(void);

#endif
