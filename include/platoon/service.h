/*
 * platoon/service.h — the platoon.v1.Platoon gRPC service (proto/platoon/v1/platoon.proto) on
 * top of the node runtime and the vehicle state machine.
 *
 * Every node answers every request: mutations are validated here (INVALID_ARGUMENT names the
 * field), then proposed on the leader or forwarded to it; linearizable reads go through
 * ReadIndex on any node; stale reads are answered from the local replica.
 */
#ifndef PLATOON_SERVICE_H
#define PLATOON_SERVICE_H

#include <stddef.h>

#include "platoon/node.h"
#include "platoon/vehicle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The six methods of platoon.v1.Platoon, to put in pnode_options.methods. @sm is the node's
 * state machine (the handlers do not change it: it is driven by the runtime; they read the
 * limits of its options to stamp them into the commands they propose).
 * Fills out[0..6) and returns 6, or 0 if @cap < 6. */
PT_API size_t pveh_service_methods(pveh_sm *sm, pnode_method *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
