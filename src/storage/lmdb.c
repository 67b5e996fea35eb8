#include "storage/internal.h"

int pstore_open(const char *dir, const pstore_options *opts, pstore **out, char *err,
                size_t err_cap)
{
    *out = NULL;
    return __pstore_fail_buf(err, err_cap, PT_EINTERNAL, "%s: the LMDB backend is not built yet",
                             dir);
}
