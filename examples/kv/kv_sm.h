/*
 * The kv service's replicated state machine: a map from string keys to string values, plus
 * the clients' sessions that make writes exactly-once. The node runtime drives it through the
 * pnode_sm interface of <platoon/state_machine.h>: it applies committed commands (kv_codec.h)
 * in log order, answers queries, takes snapshots and restores them.
 */
#ifndef KV_SM_H
#define KV_SM_H

#include <stddef.h>
#include <stdint.h>

#include <platoon/state_machine.h>

typedef struct kv_sm kv_sm;

/* A new, empty state machine. Returns 0 or PT_ENOMEM. */
int kv_sm_new(kv_sm **out);
/* Frees @sm (NULL is fine); call it only after the runtime that used it has stopped. */
void kv_sm_free(kv_sm *sm);
/* The interface to hand to the runtime (pnode_options.sm). */
void kv_sm_interface(kv_sm *sm, pnode_sm *out);

#endif
