/*
 * Finding the leader of the cluster under test, so that "leader only" loads go straight to it:
 * Platoon's Cluster.Status names the leader and every member's address; etcd's
 * Maintenance.Status names the leader's member id, which the leader recognises as its own.
 */
#ifndef PBENCH_DISCOVER_H
#define PBENCH_DISCOVER_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

/*
 * Asks the endpoints (in turn, for up to @wait_ms while no leader is known) which one leads;
 * writes the leader's address into @out. For Platoon, the address is the one the members
 * advertise; for etcd, the endpoint (of @endpoints) that answers as the leader.
 * Returns 0 or PT_ETIMEDOUT (no leader within @wait_ms; for etcd, also a leader that is none of
 * the endpoints); @err receives one line.
 */
int pbench_find_leader(int target, const char *const *endpoints, size_t n_endpoints,
                       uint32_t wait_ms, char *out, size_t out_cap, char *err, size_t err_cap);

/*
 * One blocking unary call of @method with an empty request on channel @ch, on a completion queue
 * of its own, within @timeout_ms. On OK, *@answer (owned by the caller) holds the reply.
 * Returns 0 or PT_EIO (@err receives the status).
 */
int pbench_unary_on(grpc_channel *ch, const char *method, int64_t timeout_ms,
                    grpc_byte_buffer **answer, char *err, size_t err_cap);

#endif
