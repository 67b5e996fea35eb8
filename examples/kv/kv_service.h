/* The kv.v1.KV gRPC service (kv.proto), as methods for the node runtime. */
#ifndef KV_SERVICE_H
#define KV_SERVICE_H

#include <stddef.h>

#include <platoon/node.h>

/* Writes the service's methods (Get, Put, Append) into @out for pnode_options.methods and
 * returns how many, or 0 if @cap is too small. The handlers need no context: everything they
 * touch is the runtime's (the state machine is reached through pnode_submit/pnode_query). */
size_t kv_service_methods(pnode_method *out, size_t cap);

#endif
