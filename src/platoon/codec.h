/*
 * The vehicle state machine's wire formats (commands, results, queries, query results), and
 * the record encodings the snapshot format reuses. The public entry points are declared in
 * platoon/vehicle.h; this header holds what the other files of the part share.
 *
 * Layouts, all little-endian:
 *
 *   command  = version u8 (2) | op u8 | client_id u64 | sequence u64 | timestamp_ms u64 |
 *              principal u64 | limit u64 | body
 *              UPDATE body = vehicle body (40 bytes)           -> 82 bytes in all
 *              DELETE body = id u64                            -> 50 bytes in all
 *              OPEN_SESSION, CLOSE_SESSION: no body            -> 42 bytes
 *              (version 1, still read: no principal and limit, UPDATE and DELETE only: 66
 *              and 34 bytes)
 *   vehicle body   = id u64 | latitude f64 | longitude f64 | speed f64 | heading f64
 *   vehicle record = vehicle body | revision u64 (48 bytes)
 *
 *   result   = version u8 | op u8 | status u8 | body
 *              OK UPDATE:  vehicle record                      -> 51 bytes
 *              OK DELETE:  existed u8 | revision u64           -> 12 bytes
 *              OK OPEN_SESSION: client_id u64                  -> 11 bytes
 *              OK CLOSE_SESSION: existed u8                    -> 4 bytes
 *              STALE, CONFLICT: last_sequence u64              -> 11 bytes
 *              UNKNOWN_SESSION, FOREIGN_SESSION, PLATOON_FULL, SESSIONS_FULL: nothing
 *
 *   query    = version u8 | op u8 [| id u64 for GET]           -> 10 or 2 bytes
 *   query result = version u8 | op u8 | status u8 | applied_index u64 | body
 *              GET OK:     vehicle record;  GET NOT_FOUND: nothing
 *              LIST:       count u32 | count vehicle records in strictly ascending id
 *
 * Fixed widths rather than varints: every message has an exact expected length, which makes
 * validation simple and total, and a command is still under 70 bytes.
 */
#ifndef PLATOON_VEHICLE_CODEC_H
#define PLATOON_VEHICLE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platoon/vehicle.h"

#define PVEH_FORMAT_VERSION 1 /* results and queries */
#define PVEH_CMD_VERSION    2 /* commands: 2 added principal and limit, and the session ops */

#define PVEH_VEHICLE_BODY_LEN   40
#define PVEH_VEHICLE_RECORD_LEN 48
#define PVEH_CMD_V1_HEADER_LEN  26
#define PVEH_CMD_HEADER_LEN     42
#define PVEH_CMD_UPDATE_LEN     (PVEH_CMD_HEADER_LEN + PVEH_VEHICLE_BODY_LEN)
#define PVEH_CMD_DELETE_LEN     (PVEH_CMD_HEADER_LEN + 8)
#define PVEH_CMD_MAX_LEN        PVEH_CMD_UPDATE_LEN /* the longest command */
#define PVEH_RESULT_HEADER_LEN  3
#define PVEH_RESULT_MAX_LEN     (PVEH_RESULT_HEADER_LEN + PVEH_VEHICLE_RECORD_LEN)
#define PVEH_QRESULT_HEADER_LEN 11
#define PVEH_QUERY_GET_LEN      10

/* True when @v's id and coordinates are within bounds (the revision is not looked at). */
bool pveh__vehicle_valid(const pveh_vehicle *v);

/* Writes the 40-byte body of @v, and its revision after it when @with_revision (48 bytes). */
void pveh__vehicle_put(uint8_t *p, const pveh_vehicle *v, bool with_revision);

/* Reads a vehicle body (and revision when @with_revision; else revision = 0) and validates
 * it; with a revision, it must be >= 1 (every stored state was written at some index). */
bool pveh__vehicle_get(const uint8_t *p, bool with_revision, pveh_vehicle *out);

/* A hash of what the command @cmd (@len bytes, already decoded successfully) asks for: its
 * kind and body, without the client, sequence or timestamp. Never 0. */
uint64_t pveh__command_fingerprint(const uint8_t *cmd, size_t len);

/* Encodes @c into @buf (at least PVEH_CMD_MAX_LEN bytes), as pveh_command_encode does, without
 * allocating (the leader encodes every command it proposes); sets *@len. Returns 0 or
 * PT_EINVAL (unknown op, or fields the op forbids or needs). */
int pveh__command_put(uint8_t *buf, const pveh_command *c, size_t *len);

/* Encodes the query for vehicle @id (not 0) into @buf (PVEH_QUERY_GET_LEN bytes), as
 * pveh_query_get does, without allocating. */
void pveh__query_get_put(uint8_t *buf, uint64_t id);

/* Encodes @r into @buf (at least PVEH_RESULT_MAX_LEN bytes); sets *@len. Returns 0 or
 * PT_EINVAL (unknown op or status). */
int pveh__result_put(uint8_t *buf, const pveh_result *r, size_t *len);

#endif
