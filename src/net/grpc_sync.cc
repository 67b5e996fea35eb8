// pnet_grpc_sync_fast (grpc_sync.h): the one C++ file of the tree, because abseil's settings
// have no C interface.
#include "net/grpc_sync.h"

#include <cstdlib>
#include <cstring>

#include <absl/synchronization/mutex.h>

extern "C" void pnet_grpc_sync_fast(void)
{
    const char *keep = std::getenv("PLATOON_ABSL_DEADLOCK_DETECTION");
    if (keep != nullptr && std::strcmp(keep, "1") == 0) {
        return;
    }
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}
