/*
 * pstore_open: which engine a data directory is opened with. An existing store keeps the
 * engine it was created with, recognised by what the directory holds (DIR/log: LMDB, format
 * 1; DIR/wal: the write-ahead log, format 2), so that a node upgraded in place keeps its
 * data; a new store gets pstore_options.engine. Both at once is damage, never a choice.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/files.h"
#include "storage/lmdb_store.h"
#include "storage/wal.h"

static bool exists(const char *dir, const char *name)
{
    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

int pstore_open(const char *dir, const pstore_options *opts, pstore **out, char *err,
                size_t err_cap)
{
    if (err != NULL && err_cap > 0) {
        err[0] = '\0';
    }
    if (out == NULL || dir == NULL || dir[0] == '\0' || strlen(dir) > 200) {
        return pstore__fail_buf(err, err_cap, PT_EINVAL, "invalid data directory name");
    }
    *out = NULL;
    pstore *s = NULL;
    int rv = pstore__alloc(opts, dir, &s);
    if (rv != 0) {
        return pstore__fail_buf(err, err_cap, rv, "%s: invalid options", dir);
    }
    bool lmdb = exists(dir, "log"), wal = exists(dir, "wal");
    if (lmdb && wal) {
        rv = pstore__fail(s, PT_ECORRUPT,
                          "%s: holds both an LMDB log (log/) and a write-ahead log (wal/): "
                          "which one is the node's is unknown",
                          dir);
    } else if (lmdb || (!wal && s->opts.engine == PSTORE_ENGINE_LMDB)) {
        rv = pstore__lmdb_open(s, dir);
    } else {
        rv = pstore__wal_open(s, dir);
    }
    if (rv != 0) {
        pstore__fail_buf(err, err_cap, rv, "%s", s->err[0] ? s->err : pt_strerror(rv));
        if (s->be == NULL) {
            pstore__free(s);
        } else {
            pstore_close(s);
        }
        return rv;
    }
    s->err[0] = '\0';
    *out = s;
    return 0;
}
