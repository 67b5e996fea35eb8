/* pnet_grpc_sync_fast (grpc_sync.h) for a build without a C++ compiler: abseil cannot be
 * reached from C, so its deadlock detection stays as the abseil build left it. */
#include "net/grpc_sync.h"

void pnet_grpc_sync_fast(void)
{
}
