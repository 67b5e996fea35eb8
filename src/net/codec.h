/*
 * Codecs between the Raft core's messages (struct praft_msg, include/platoon/raft.h) and the
 * peer protocol (proto/platoon/raft/v1/raft.proto), and the lanes that carry them.
 *
 * Encoding trusts the core's structures but checks their shape (a pointer that a type needs
 * must be there). Decoding trusts nothing: any inconsistency in bytes from the network gives
 * PT_EMALFORMED, never a crash, never an allocation sized by an unchecked length.
 */
#ifndef PLATOON_NET_CODEC_H
#define PLATOON_NET_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "platoon/raft.h"
#include "platoon/raft/v1/raft.pb-c.h"

/* The lanes of the peer protocol: one client-streaming RPC each (see raft.proto). */
enum pnet_lane {
    PNET_LANE_APPEND = 0,      /* AppendEntries: APPEND, HEARTBEAT and their answers */
    PNET_LANE_VOTE = 1,        /* RequestVote: VOTE, PREVOTE and their answers */
    PNET_LANE_SNAPSHOT = 2,    /* InstallSnapshot: SNAPSHOT chunks and SNAPSHOT_RESP */
    PNET_LANE_TIMEOUT_NOW = 3, /* TimeoutNow */
    PNET_LANE_READ_INDEX = 4,  /* ReadIndex: READ_INDEX and READ_INDEX_RESP */
    PNET_LANE_COUNT = 5,
};

/* The lane of a core message type, or -1 for an unknown type. */
int pnet__lane_of(uint32_t type);

/* The full gRPC method name of a lane ("/platoon.raft.v1.Raft/AppendEntries"). */
const char *pnet__lane_method(int lane);

/* The lane served by gRPC method @method (@len bytes, not NUL-terminated), or -1. */
int pnet__lane_from_method(const char *method, size_t len);

/*
 * Encodes @msg as a RaftMessage (from, to and one body).
 * On success *out is a malloc'd buffer of *len bytes owned by the caller.
 * Errors: PT_EINVAL (unknown type, a NULL pointer the type needs, an entry or chunk longer than
 * the protocol allows), PT_ENOMEM.
 */
int pnet_msg_encode(const praft_msg *msg, uint8_t **out, size_t *len);

/*
 * Like pnet_msg_encode, but the bytes are one element of RaftBatch.messages: the field's tag
 * and length come first, so that the elements of several messages, concatenated, are a valid
 * RaftBatch.
 */
int pnet__msg_encode_batch_item(const praft_msg *msg, uint8_t **out, size_t *len);

/*
 * Decodes one RaftMessage from @buf (@len bytes; @buf may be NULL when @len is 0).
 * On success *out is one malloc'd block holding the message and everything it points to
 * (entries and their data, snapshot meta, chunk data); release it with pnet_msg_free().
 * Errors: PT_EMALFORMED (not a valid protobuf, or inconsistent: see raft.proto), PT_ENOMEM.
 */
int pnet_msg_decode(const uint8_t *buf, size_t len, praft_msg **out);

/* Frees a message returned by pnet_msg_decode or handed out by the transport. NULL is ok. */
void pnet_msg_free(praft_msg *msg);

/* pnet_msg_decode for an already unpacked RaftMessage. Same results. */
int pnet__msg_from_pb(const Platoon__Raft__V1__RaftMessage *pb, praft_msg **out);

/*
 * Decodes a RaftBatch received on @lane and hands each valid message to @fn (which takes
 * ownership of it), in order. Messages that are malformed or do not belong to @lane are dropped
 * and counted in *n_bad. Returns 0, PT_EMALFORMED if the batch itself cannot be parsed (nothing
 * is handed out then), or PT_ENOMEM.
 */
int pnet__batch_decode(const uint8_t *buf, size_t len, int lane,
                       void (*fn)(void *ctx, praft_msg *msg), void *ctx, uint64_t *n_bad);

#endif
