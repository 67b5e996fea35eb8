/*
 * platoon/vehicle.h — the vehicle state machine: the platoon's replicated state.
 *
 * The state is: the platoon's vehicles ordered by id, the cluster membership of the last
 * committed configuration, the last applied index, and the client session table that makes
 * mutations exactly-once. It implements the generic interface of platoon/state_machine.h
 * (pveh_sm_interface), so the node runtime drives it without knowing about vehicles.
 *
 * What travels through the log and back is bytes in this part's own compact, versioned,
 * little-endian encoding (not protobuf: the encoding is part of the replicated state and must
 * never change under a node's feet):
 *   - commands (UPDATE a vehicle, DELETE an id, OPEN_SESSION, CLOSE_SESSION) built by
 *     pveh_command_encode (or the pveh_command_update/_delete shorthands) on the leader,
 *     carrying the client's (client_id, sequence), the authenticated caller
 *     (pveh_principal_key), a limit the leader enforces (see pveh_command) and the leader's
 *     clock in milliseconds, the only time the state machine ever sees;
 *   - their results, read by pveh_result_decode;
 *   - queries (GET an id, LIST all) built by pveh_query_get/_list, whose results are read by
 *     pveh_query_result_decode.
 * Every decoder validates everything (length, version, kinds, finite doubles, ranges, order)
 * and never crashes on arbitrary bytes.
 *
 * EXACTLY-ONCE (Ongaro's thesis, section 6.3). A client first opens a session with an
 * OPEN_SESSION command: its client id is the log index of that command, so ids are never
 * reused and the state machine knows that any id it does not hold was closed, expired or
 * evicted (or never existed). A mutating command with client_id != 0 is applied at most once
 * per (client_id, sequence); one request outstanding per client, increasing sequences >= 1:
 *   no such session           -> PVEH_STATUS_UNKNOWN_SESSION (NOT_FOUND), nothing applied:
 *                                a late retry of a request whose session is gone is refused,
 *                                never applied twice; the client opens a new session;
 *   session of another principal -> PVEH_STATUS_FOREIGN_SESSION (PERMISSION_DENIED), nothing
 *                                applied and the session untouched: nobody can use, advance or
 *                                lock another principal's session;
 *   sequence == last applied, same content -> the original answer again, nothing applied
 *                               (a retry);
 *   sequence == last applied, other content -> PVEH_STATUS_SEQUENCE_CONFLICT (ALREADY_EXISTS),
 *                               nothing applied: the pair already names a different request,
 *                               and answering it with the earlier result would drop this write;
 *   sequence <  last applied  -> PVEH_STATUS_STALE_SEQUENCE (FAILED_PRECONDITION);
 *   sequence >  last applied  -> applied, and remembered as the new answer.
 * A session is kept while used and at least session_ttl_ms (>= 10 minutes) of log time after
 * its last use; log time is the largest leader timestamp applied so far, so it never goes back
 * and expiry is identical on every node. Bounds: a principal holds at most the quota its
 * OPEN_SESSION carries (opening one more closes that principal's own least recently used
 * session), and the table at most max_sessions: when it is full of other principals' live
 * sessions, OPEN_SESSION is refused (PVEH_STATUS_SESSIONS_FULL) rather than evicting anyone.
 * Sessions are in snapshots.
 * Version 1 commands (written by releases before sessions were opened explicitly) keep their
 * rules: they create their session on first use, unbound, and a full table evicts the least
 * recently used.
 *
 * Threads: a pveh_sm is not thread-safe; call it from one thread (the runtime's loop), except
 * for the frozen snapshot functions as stated in platoon/state_machine.h.
 */
#ifndef PLATOON_VEHICLE_H
#define PLATOON_VEHICLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platoon/error.h"
#include "platoon/raft.h"
#include "platoon/state_machine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bounds of a vehicle (WGS84 degrees, metres per second). */
#define PVEH_LATITUDE_MIN  (-90.0)
#define PVEH_LATITUDE_MAX  90.0
#define PVEH_LONGITUDE_MIN (-180.0)
#define PVEH_LONGITUDE_MAX 180.0
#define PVEH_SPEED_MIN     0.0
#define PVEH_SPEED_MAX     150.0
#define PVEH_HEADING_MIN   0.0
#define PVEH_HEADING_MAX   360.0 /* exclusive */

/* Session limits: the floor of each option and its default. */
#define PVEH_SESSION_TTL_MS_MIN   UINT64_C(600000) /* 10 minutes of log time */
#define PVEH_MAX_SESSIONS_MIN     10000u
#define PVEH_MAX_SESSIONS_DEFAULT 100000u
#define PVEH_MAX_SESSIONS_MAX \
    (1u << 26) /* keeps the table's 32-bit slot indexes far from overflow */

/* The default bounds the service stamps into commands (pveh_options). */
#define PVEH_MAX_VEHICLES_DEFAULT           UINT64_C(1000000)
#define PVEH_SESSIONS_PER_PRINCIPAL_DEFAULT 10000u

/* The largest "why" message a validation function writes, including the NUL. */
#define PVEH_WHY_MAX 96

/* One vehicle, as in platoon.v1.Vehicle. */
typedef struct pveh_vehicle {
    uint64_t id;       /* != 0 */
    double latitude;   /* [-90, 90] */
    double longitude;  /* [-180, 180] */
    double speed;      /* [0, 150] */
    double heading;    /* [0, 360) */
    uint64_t revision; /* log index of the write that produced this state; ignored on input */
} pveh_vehicle;

enum pveh_op {
    PVEH_OP_UPDATE = 1,        /* create or replace a vehicle */
    PVEH_OP_DELETE = 2,        /* delete a vehicle by id */
    PVEH_OP_OPEN_SESSION = 3,  /* open an exactly-once session; its id is the entry's index */
    PVEH_OP_CLOSE_SESSION = 4, /* close one (its principal's only) */
};

enum pveh_query_op {
    PVEH_QUERY_GET = 1,  /* one vehicle by id */
    PVEH_QUERY_LIST = 2, /* every vehicle in ascending id */
};

/* The application-level outcome carried in a result (the gRPC status the runtime answers). */
enum pveh_status {
    PVEH_STATUS_OK = 0,
    PVEH_STATUS_STALE_SEQUENCE = 1, /* FAILED_PRECONDITION: older than the client's last */
    PVEH_STATUS_NOT_FOUND = 2,      /* NOT_FOUND (queries only) */
    /* ALREADY_EXISTS: the client's last sequence again, but with other content */
    PVEH_STATUS_SEQUENCE_CONFLICT = 3,
    /* NOT_FOUND: no session has this client id (closed, expired, evicted or never opened) */
    PVEH_STATUS_UNKNOWN_SESSION = 4,
    /* PERMISSION_DENIED: the session belongs to another principal */
    PVEH_STATUS_FOREIGN_SESSION = 5,
    /* RESOURCE_EXHAUSTED: the vehicle is new and the platoon has the most vehicles allowed */
    PVEH_STATUS_PLATOON_FULL = 6,
    /* RESOURCE_EXHAUSTED: the session table is full of other principals' live sessions */
    PVEH_STATUS_SESSIONS_FULL = 7,
};

/* ============================================================================================
 * Validation: what the runtime checks before proposing, with messages for INVALID_ARGUMENT
 * ========================================================================================== */

/*
 * Checks a vehicle given in UpdateVehicle: id != 0, every coordinate finite and within its
 * bounds (the revision is ignored).
 * @v: the vehicle, or NULL when the request carries none.
 * @why, @why_len: on failure, receives a NUL-terminated message naming the field as the proto
 *     does, e.g. "vehicle.latitude must be within [-90, 90]" (truncated to @why_len; @why may
 *     be NULL when @why_len is 0). Untouched on success.
 * Returns 0 or PT_EINVAL.
 */
PT_API int pveh_validate_vehicle(const pveh_vehicle *v, char *why, size_t why_len);

/*
 * Checks the id of DeleteVehicle or GetVehicle: "id must not be 0".
 * Returns 0 or PT_EINVAL (message in @why as above).
 */
PT_API int pveh_validate_id(uint64_t id, char *why, size_t why_len);

/* ============================================================================================
 * Commands and their results
 * ========================================================================================== */

/* A command, decoded or to encode. */
typedef struct pveh_command {
    uint32_t version;      /* decoded: the format it was written in (1 or 2); ignored to encode */
    uint32_t op;           /* enum pveh_op */
    uint64_t client_id;    /* UPDATE, DELETE: 0 for no exactly-once session; CLOSE_SESSION: the
                              session; OPEN_SESSION: 0 */
    uint64_t sequence;     /* UPDATE, DELETE with a session: >= 1; otherwise 0 */
    uint64_t timestamp_ms; /* the leader's clock when it proposed the command */
    /* The authenticated caller, pveh_principal_key of its name (version 2 only; 0 in a
     * version 1 command). */
    uint64_t principal;
    /* A bound the proposing leader enforces, so that every node applies the same one:
     * UPDATE: the most vehicles the platoon may hold (0: no bound); a new vehicle beyond it is
     * refused with PVEH_STATUS_PLATOON_FULL. OPEN_SESSION: the most sessions the principal may
     * hold (>= 1). Otherwise 0. */
    uint64_t limit;
    pveh_vehicle vehicle; /* UPDATE: the new state (revision 0) */
    uint64_t id;          /* DELETE: the vehicle to delete; UPDATE: vehicle.id */
} pveh_command;

/*
 * The 64-bit key of a principal's name (the first 8 bytes of a SHA-256 of it; never 0), which
 * binds sessions to whoever opened them. Finding another name with the same key is as hard as
 * a 64-bit second preimage. "" is the key of every caller of a cluster without TLS.
 */
PT_API uint64_t pveh_principal_key(const char *name);

/*
 * Encodes @c in the current format (version 2) into a malloc'd buffer owned by the caller
 * (free()). Checks what the op needs: UPDATE a valid vehicle, DELETE an id != 0,
 * OPEN_SESSION client_id and sequence 0 and a limit >= 1, CLOSE_SESSION a client_id.
 * Returns 0, PT_EINVAL, or PT_ENOMEM.
 */
PT_API int pveh_command_encode(const pveh_command *c, uint8_t **out, size_t *out_len);

/*
 * Builds an UPDATE command (principal 0, no limit: pveh_command_encode sets them).
 * @v: the vehicle (validated with pveh_validate_vehicle; its revision is ignored).
 * @client_id, @sequence: the client's session (client_id 0 for none).
 * @timestamp_ms: the proposing leader's wall clock, milliseconds since the Unix epoch.
 * @out, @out_len: on success a malloc'd command owned by the caller (free()).
 * Returns 0, PT_EINVAL (invalid vehicle), or PT_ENOMEM.
 */
PT_API int pveh_command_update(const pveh_vehicle *v, uint64_t client_id, uint64_t sequence,
                               uint64_t timestamp_ms, uint8_t **out, size_t *out_len);

/* Builds a DELETE command; as pveh_command_update. Returns 0, PT_EINVAL (id 0), PT_ENOMEM. */
PT_API int pveh_command_delete(uint64_t id, uint64_t client_id, uint64_t sequence,
                               uint64_t timestamp_ms, uint8_t **out, size_t *out_len);

/*
 * Decodes and validates a command (@data owned by the caller).
 * Returns 0, PT_EVERSION (unknown format version), or PT_ECORRUPT (anything else invalid:
 * length, kind, id 0, a coordinate not finite or out of bounds).
 */
PT_API int pveh_command_decode(const uint8_t *data, size_t len, pveh_command *out);

/* The answer to a command. */
typedef struct pveh_result {
    uint32_t op;     /* enum pveh_op */
    uint32_t status; /* enum pveh_status */
    /* UPDATE, OK: the vehicle as stored, revision = the index of the update. */
    pveh_vehicle vehicle;
    /* DELETE, OK: whether the vehicle existed, and the index at which the delete was applied
     * (also when it did not exist). */
    bool existed; /* also CLOSE_SESSION, OK: whether the session was open */
    uint64_t revision;
    /* OPEN_SESSION, OK: the new session's client id (the index of the command). */
    uint64_t client_id;
    /* STALE_SEQUENCE, SEQUENCE_CONFLICT: the client's last applied sequence (for the error
     * message). */
    uint64_t last_sequence;
} pveh_result;

/*
 * Encodes a result into a malloc'd buffer owned by the caller (the state machine uses it; it is
 * public for runtimes that forward results between nodes).
 * Returns 0, PT_EINVAL (op or status unknown), or PT_ENOMEM.
 */
PT_API int pveh_result_encode(const pveh_result *r, uint8_t **out, size_t *out_len);

/* Decodes and validates a result. Returns 0, PT_EVERSION, or PT_EMALFORMED. */
PT_API int pveh_result_decode(const uint8_t *data, size_t len, pveh_result *out);

/* ============================================================================================
 * Queries and their results
 * ========================================================================================== */

/* Builds a GET query (malloc'd, owned by the caller). Returns 0, PT_EINVAL (id 0), PT_ENOMEM. */
PT_API int pveh_query_get(uint64_t id, uint8_t **out, size_t *out_len);

/* Builds a LIST query (malloc'd, owned by the caller). Returns 0 or PT_ENOMEM. */
PT_API int pveh_query_list(uint8_t **out, size_t *out_len);

/* A decoded query. */
typedef struct pveh_query {
    uint32_t op; /* enum pveh_query_op */
    uint64_t id; /* GET */
} pveh_query;

/* Decodes and validates a query. Returns 0, PT_EVERSION, or PT_EMALFORMED. */
PT_API int pveh_query_decode(const uint8_t *data, size_t len, pveh_query *out);

/* The answer to a query. */
typedef struct pveh_query_result {
    uint32_t op;            /* enum pveh_query_op */
    uint32_t status;        /* GET: PVEH_STATUS_OK or PVEH_STATUS_NOT_FOUND; LIST: OK */
    uint64_t applied_index; /* the applied index the answer reflects (GetPlatoon's revision) */
    pveh_vehicle vehicle;   /* GET, OK */
    pveh_vehicle *vehicles; /* LIST: malloc'd, ascending id; NULL when n_vehicles is 0 */
    size_t n_vehicles;
} pveh_query_result;

/*
 * Decodes and validates a query result. On success the caller owns out->vehicles and releases
 * it with pveh_query_result_free. On failure nothing is allocated.
 * Returns 0, PT_EVERSION, PT_EMALFORMED, or PT_ENOMEM.
 */
PT_API int pveh_query_result_decode(const uint8_t *data, size_t len, pveh_query_result *out);

/* Releases what pveh_query_result_decode allocated (@r may be NULL). */
PT_API void pveh_query_result_free(pveh_query_result *r);

/* ============================================================================================
 * The state machine
 * ========================================================================================== */

/* Options. They are part of the replicated behaviour: every node of a cluster must use the
 * same values, or session expiry and eviction (and so exactly-once answers) would diverge. */
typedef struct pveh_options {
    uint32_t max_sessions;   /* in [PVEH_MAX_SESSIONS_MIN, PVEH_MAX_SESSIONS_MAX]; default
                                PVEH_MAX_SESSIONS_DEFAULT */
    uint64_t session_ttl_ms; /* >= PVEH_SESSION_TTL_MS_MIN; default the minimum (10 minutes) */
    /* The limits this node's service (platoon/service.h) stamps into the commands it proposes
     * as leader (pveh_command.limit): they travel in the log, so the values of the leader
     * that proposed a command apply on every node, whatever the others are configured with. The
     * most vehicles (default PVEH_MAX_VEHICLES_DEFAULT; 0: no bound) and the most sessions per
     * principal (in [1, max_sessions]; default PVEH_SESSIONS_PER_PRINCIPAL_DEFAULT, and at most
     * max_sessions). */
    uint64_t max_vehicles;
    uint32_t max_sessions_per_principal;
} pveh_options;

/* Fills @opts with the defaults. */
PT_API void pveh_options_init(pveh_options *opts);

typedef struct pveh_sm pveh_sm;

/*
 * Creates an empty state machine (applied index 0, no vehicles, no sessions, no members).
 * @opts: options (copied), or NULL for the defaults.
 * @out: set to the new handle, owned by the caller (pveh_sm_free).
 * Returns 0, PT_EINVAL (an option out of its range), or PT_ENOMEM.
 */
PT_API int pveh_sm_new(const pveh_options *opts, pveh_sm **out);

/* Frees a state machine (NULL is fine). Frozen snapshots taken from it stay valid. */
PT_API void pveh_sm_free(pveh_sm *sm);

/* Fills @out with the generic interface of @sm, for the runtime. @sm stays owned by the
 * caller and must outlive the runtime's use of @out. */
PT_API void pveh_sm_interface(pveh_sm *sm, pnode_sm *out);

/* Direct reads of the state (loop thread), for tests, tools and status pages. */

/* Copies the vehicle @id into @out. Returns 0 or PT_ENOTFOUND. */
PT_API int pveh_sm_get(const pveh_sm *sm, uint64_t id, pveh_vehicle *out);

/* The number of vehicles. */
PT_API size_t pveh_sm_vehicle_count(const pveh_sm *sm);

/* The index of the last applied entry. */
PT_API uint64_t pveh_sm_applied_index(const pveh_sm *sm);

/* The log time: the largest leader timestamp applied so far (0 before any command). */
PT_API uint64_t pveh_sm_log_time(const pveh_sm *sm);

/* Copies the membership of the last applied configuration (empty before the first). */
PT_API void pveh_sm_membership(const pveh_sm *sm, praft_config *out);

/* The number of client sessions in the table. */
PT_API size_t pveh_sm_session_count(const pveh_sm *sm);

/* The session of @client_id: its last applied sequence and the log time of its last use (either
 * pointer may be NULL). Returns 0 or PT_ENOTFOUND. */
PT_API int pveh_sm_session_get(const pveh_sm *sm, uint64_t client_id, uint64_t *last_sequence,
                               uint64_t *last_used_ms);

#ifdef __cplusplus
}
#endif
#endif
