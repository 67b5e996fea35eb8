/*
 * The locks inside gRPC. gRPC's mutexes are abseil's, and Debian builds abseil without NDEBUG,
 * so abseil runs its debug-mode deadlock detection on every lock a gRPC thread takes: a lookup
 * in one process-wide graph of locks, under one process-wide spin lock. That is a serial point
 * shared by every thread that does I/O, and 3-4% of a busy leader's CPU on its own
 * (bench/README.md). The programs (platoond, platoon-bench) turn it off at start; the
 * libraries leave the choice to the program that embeds them, since the setting is global to
 * the process.
 */
#ifndef PLATOON_NET_GRPC_SYNC_H
#define PLATOON_NET_GRPC_SYNC_H

#ifdef __cplusplus
extern "C" {
#endif

/* Turns abseil's deadlock detection off for the whole process, unless the environment has
 * PLATOON_ABSL_DEADLOCK_DETECTION=1 (for debugging gRPC's own locking). Call it before
 * grpc_init. Does nothing where the build had no C++ compiler to reach abseil with. */
void pnet_grpc_sync_fast(void);

#ifdef __cplusplus
}
#endif

#endif
