/*
 * What platoon-bench sends: the requests of each workload, for each target (a Platoon cluster
 * through platoon.v1, or an etcd cluster through the subset of etcdserverpb in etcd_kv.proto),
 * encoded with protobuf-c. The engine (engine.h) asks for one request per call and hands the
 * answer back for a light check.
 */
#ifndef PBENCH_WORKLOAD_H
#define PBENCH_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pbench_target { PBENCH_TARGET_PLATOON, PBENCH_TARGET_ETCD };

enum pbench_workload {
    PBENCH_WL_UPDATE, /* writes only: UpdateVehicle / Put of a random vehicle of the pool */
    PBENCH_WL_MIXED,  /* 90% reads of one vehicle, 10% writes */
    PBENCH_WL_READ,   /* reads only: GetVehicle or GetPlatoon / Range */
    PBENCH_WL_FILL,   /* internal: write every vehicle of the pool once, in order */
};

/* The kinds of call, reported separately. */
enum pbench_kind { PBENCH_KIND_WRITE = 0, PBENCH_KIND_READ = 1, PBENCH_KINDS = 2 };

typedef struct pbench_workload_cfg {
    int target;          /* enum pbench_target */
    int workload;        /* enum pbench_workload */
    bool read_all;       /* reads fetch the whole platoon (GetPlatoon / a prefix Range) */
    bool linearizable;   /* reads: ReadIndex (true) or the local replica (false) */
    bool sessions;       /* Platoon updates: one exactly-once session per slot */
    uint32_t pool;       /* vehicles (keys) 1..pool */
    uint32_t value_size; /* etcd: bytes per value */
} pbench_workload_cfg;

/* The per-slot state a workload keeps (sessions' sequences, the fill cursor is global). */
typedef struct pbench_slot_state {
    uint64_t client_id;
    uint64_t sequence;
} pbench_slot_state;

/* One encoded request. */
typedef struct pbench_request {
    const char *method; /* static */
    int kind;           /* enum pbench_kind */
    size_t len;
    uint8_t buf[512];
} pbench_request;

/* A small, fast random generator (xorshift64*), one per engine. */
uint64_t pbench_rand(uint64_t *state);

/*
 * Encodes the next request of slot @slot into @out. For PBENCH_WL_FILL, *fill_next is the next
 * vehicle to write (1-based) and is advanced. Returns 0, 1 when there is nothing left to send
 * (the fill is complete), or PT_EINVAL (a request too big for the buffer).
 */
int pbench_request_next(const pbench_workload_cfg *cfg, pbench_slot_state *slot, uint64_t *rng,
                        uint32_t *fill_next, pbench_request *out);

/* Checks an OK answer's bytes: 0 when they decode as the method's response, else PT_EMALFORMED.
 * *@revision is set to the written vehicle's revision for a Platoon update, else 0. */
int pbench_response_check(const pbench_workload_cfg *cfg, const pbench_request *req,
                          const uint8_t *data, size_t len, uint64_t *revision);

#endif
