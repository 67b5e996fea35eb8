/*
 * platoon/error.h — error codes shared by every part of Platoon.
 *
 * Every public function returns an int: 0 on success, or one of the negative PT_E* codes below.
 * The codes start at -1000 so that they never collide with errno values, negated or not.
 * pt_strerror() gives a short, static, human-readable description of any code.
 */
#ifndef PLATOON_ERROR_H
#define PLATOON_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* Marks a symbol of the public API: the only ones libplatoon.so exports. */
#define PT_API __attribute__((visibility("default")))

/* X(name, value, description): the single table from which the enum and pt_strerror come. */
#define PT_ERROR_TABLE(X)                                                                        \
    X(PT_ENOMEM, -1000, "out of memory")                                                         \
    X(PT_EINVAL, -1001, "invalid argument")                                                      \
    X(PT_ENOTLEADER, -1002, "not the leader")                                                    \
    X(PT_EBUSY, -1003, "busy: another operation is in progress")                                 \
    X(PT_ESTALE, -1004, "stale: the request refers to an outdated term or index")                \
    X(PT_ECOMPACTED, -1005, "the requested log entries were compacted into a snapshot")          \
    X(PT_EUNAVAILABLE, -1006, "the requested log entries are not available yet")                 \
    X(PT_ECORRUPT, -1007, "data is corrupt")                                                     \
    X(PT_EIO, -1008, "input/output error")                                                       \
    X(PT_ENOSPC, -1009, "no space left on the device")                                           \
    X(PT_ENOTFOUND, -1010, "not found")                                                          \
    X(PT_EEXIST, -1011, "already exists")                                                        \
    X(PT_EMALFORMED, -1012, "malformed message")                                                 \
    X(PT_ETRANSFER, -1013, "leadership transfer in progress")                                    \
    X(PT_ECONFCHANGE, -1014, "a membership change is already in progress")                       \
    X(PT_ESHUTDOWN, -1015, "shutting down")                                                      \
    X(PT_ETIMEDOUT, -1016, "timed out")                                                          \
    X(PT_EMISMATCH, -1017, "data directory belongs to another cluster or node")                  \
    X(PT_EVERSION, -1018, "unsupported format version")                                          \
    X(PT_ENOTREADY, -1019, "not ready: not caught up or no committed entry of the current term") \
    X(PT_ECANCELED, -1020, "canceled")                                                           \
    X(PT_ETOOBIG, -1021, "too big")                                                              \
    X(PT_ENOQUORUM, -1022, "no quorum")                                                          \
    X(PT_EINTERNAL, -1023, "internal error")

enum pt_error {
#define PT_ERROR_ENUM(name, value, text) name = (value),
    PT_ERROR_TABLE(PT_ERROR_ENUM)
#undef PT_ERROR_ENUM
};

/*
 * pt_strerror — describes an error code.
 * @code: 0, a PT_E* code, or anything else.
 * Returns a static string; never NULL ("success" for 0, "unknown error" for unknown codes).
 */
PT_API const char *pt_strerror(int code);

/*
 * pt_error_name — the symbolic name of an error code ("PT_ENOMEM"), for logs and tests.
 * Returns a static string; never NULL ("PT_OK" for 0, "PT_E?" for unknown codes).
 */
PT_API const char *pt_error_name(int code);

#ifdef __cplusplus
}
#endif
#endif
