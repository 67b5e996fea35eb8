/*
 * The LMDB backend: log entries and metadata in one LMDB environment (DIR/log).
 *
 * Two databases: "log" maps big-endian indexes to entry values (codec.h), "meta" holds small
 * checksummed records: format, identity, hard_state, base (index and term of the entry before
 * the log), config, snapshot (the current one). One pstore_write is one LMDB write
 * transaction: LMDB's copy-on-write B-tree makes it atomic (a crash leaves the previous
 * commit), and its commit syncs per the sync mode.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/log.h"
#include "storage/codec.h"
#include "storage/lmdb_store.h"

#define MAX_GROWTH 40

static int mdb_fail(pstore *s, int rc, const char *what)
{
    lstore *ls = s->be;
    int code = PT_EIO;
    switch (rc) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return pstore__fail(s, PT_ENOSPC,
                            "%s: %s: no space left (%s); the write was not done, nothing "
                            "written before is lost",
                            ls->log_file, what, mdb_strerror(rc));
    case ENOMEM:
        code = PT_ENOMEM;
        break;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_BAD_VALSIZE:
        code = PT_ECORRUPT;
        break;
    case MDB_VERSION_MISMATCH:
        code = PT_EVERSION;
        break;
    default:
        break;
    }
    return pstore__fail(s, code, "%s: %s: %s", ls->log_file, what, mdb_strerror(rc));
}

static int rtxn_begin(pstore *s)
{
    lstore *ls = s->be;
    int rc = mdb_txn_renew(ls->rtxn);
    if (rc == MDB_MAP_RESIZED) {
        /* Another handle grew the map; adopt its size. */
        mdb_env_set_mapsize(ls->env, 0);
        rc = mdb_txn_renew(ls->rtxn);
    }
    return rc == 0 ? 0 : mdb_fail(s, rc, "begin read transaction");
}

static void rtxn_end(pstore *s)
{
    mdb_txn_reset(((lstore *)s->be)->rtxn);
}

static int entry_corrupt(pstore *s, uint64_t index, const char *why)
{
    return pstore__fail(s, PT_ECORRUPT, "%s: entry %llu: %s", ((lstore *)s->be)->log_file,
                        (unsigned long long)index, why);
}

/* ---- writes ---- */

static int put_rec(MDB_txn *txn, MDB_dbi dbi, const char *key, const uint8_t *val, size_t len)
{
    MDB_val k = {strlen(key), (void *)key};
    MDB_val v = {len, (void *)val};
    return mdb_put(txn, dbi, &k, &v, 0);
}

static int apply(lstore *ls, MDB_txn *txn, const pstore_change *c)
{
    int rc = 0;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint8_t kb[8];
    if (c->del_from != 0 || c->del_upto != 0) {
        rc = mdb_cursor_open(txn, ls->log_dbi, &cur);
        if (rc != 0) {
            return rc;
        }
    }
    if (c->del_from == 1) {
        rc = mdb_drop(txn, ls->log_dbi, 0);
    } else if (c->del_from != 0) {
        /* §5.3: the conflicting suffix, newest first. */
        while ((rc = mdb_cursor_get(cur, &k, &v, MDB_LAST)) == 0 && k.mv_size == 8 &&
               pstore__key_get(k.mv_data) >= c->del_from) {
            if ((rc = mdb_cursor_del(cur, 0)) != 0) {
                break;
            }
        }
        rc = rc == MDB_NOTFOUND ? 0 : rc;
    }
    if (rc == 0 && c->del_upto != 0) {
        while ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0 && k.mv_size == 8 &&
               pstore__key_get(k.mv_data) <= c->del_upto) {
            if ((rc = mdb_cursor_del(cur, 0)) != 0) {
                break;
            }
        }
        rc = rc == MDB_NOTFOUND ? 0 : rc;
    }
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    for (size_t i = 0; rc == 0 && i < c->n_entries; i++) {
        const praft_entry *e = &c->entries[i];
        pstore__key_put(kb, e->index);
        k = (MDB_val){8, kb};
        v = (MDB_val){pstore__entry_size(e), NULL};
        /* The log only grows at its end: MDB_APPEND skips the search and keeps pages full. */
        rc = mdb_put(txn, ls->log_dbi, &k, &v, MDB_APPEND | MDB_RESERVE);
        if (rc == 0) {
            pstore__entry_encode(e, v.mv_data);
        }
    }
    if (rc == 0 && c->hard_state) {
        rc = put_rec(txn, ls->meta_dbi, "hard_state", c->hard_state, c->hard_state_len);
    }
    if (rc == 0 && c->config) {
        rc = put_rec(txn, ls->meta_dbi, "config", c->config, c->config_len);
    }
    if (rc == 0 && c->base) {
        rc = put_rec(txn, ls->meta_dbi, "base", c->base, c->base_len);
    }
    if (rc == 0 && c->snapshot) {
        rc = put_rec(txn, ls->meta_dbi, "snapshot", c->snapshot, c->snapshot_len);
    }
    return rc;
}

/*
 * LMDB reports a short write as EIO, and a write that hits a full disk (or the process's file
 * size limit) is often short rather than failing with ENOSPC. Tell the two apart by looking at
 * the space left, so that the operator reads "no space" rather than "I/O error".
 */
static bool out_of_space(lstore *ls)
{
    struct statvfs vfs;
    if (statvfs(ls->log_file, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < (16u << 20)) {
        return true;
    }
    struct rlimit rl;
    struct stat st;
    return getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
           stat(ls->log_file, &st) == 0 && (uint64_t)st.st_size + (1u << 20) >= rl.rlim_cur;
}

/*
 * Preallocation. Without MDB_WRITEMAP, LMDB grows its data file by writing pages past the end,
 * so in a growing log nearly every commit extends the file, and the sync that follows then
 * flushes the file system's metadata too (a journal commit on ext4, for the new size and
 * blocks): measured here, it costs a third more CPU per commit and lowers the commit rate by a
 * fifth to a third (bench-storage). Pages rewritten inside the file need no metadata. So the
 * store keeps PREALLOC_LOW to PREALLOC_LOW + PREALLOC_STEP bytes of zeros written ahead of
 * LMDB's last page, in steps of PREALLOC_STEP; the zeros reach the disk with the next commit's
 * sync. fallocate would not do: it leaves "unwritten" extents, whose first write is again a
 * metadata change. LMDB never reads past its last page, so the zeros are never data; the open
 * check accepts a file longer than the pages it holds. A failure (full disk, file size limit)
 * only stops the preallocation for a while: the commit it follows has succeeded. Zeros never
 * take the last PREALLOC_RESERVE bytes of the file system: on a small or nearly full disk the
 * space is left to what must be written (snapshots, other stores), not reserved for a growth
 * that may not come.
 */
#define PREALLOC_LOW     (2u << 20)
#define PREALLOC_STEP    (4u << 20)
#define PREALLOC_RESERVE (64ull << 20)

void pstore__lmdb_prealloc(pstore *s)
{
    static uint8_t zeros[1 << 16]; /* never written: .bss */
    lstore *ls = s->be;
    if (s->opts.sync == PSTORE_SYNC_NONE || ls->page_size == 0) {
        return; /* nothing is synced: growth costs no metadata flush */
    }
    MDB_envinfo info;
    mdb_env_info(ls->env, &info);
    uint64_t used = ((uint64_t)info.me_last_pgno + 1) * ls->page_size;
    if (used < ls->prealloc_next || ls->file_end >= used + PREALLOC_LOW) {
        return;
    }
    int fd = -1;
    if (mdb_env_get_fd(ls->env, &fd) != 0 || fd < 0) {
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return;
    }
    uint64_t from = (uint64_t)st.st_size > used ? (uint64_t)st.st_size : used;
    ls->file_end = from;
    if (from >= used + PREALLOC_LOW) {
        return; /* already long enough (the size seen at open may be out of date) */
    }
    uint64_t to = used + PREALLOC_LOW + PREALLOC_STEP;
    if (ls->prealloc_cap != 0 && to > ls->prealloc_cap) {
        to = ls->prealloc_cap;
    }
    struct statvfs vfs;
    if (to <= from || fstatvfs(fd, &vfs) != 0 ||
        (uint64_t)vfs.f_bavail * vfs.f_frsize < PREALLOC_RESERVE + (to - from)) {
        ls->prealloc_next = used + PREALLOC_STEP; /* look again once the log has grown */
        return;
    }
    uint64_t at = from;
    while (at < to) {
        size_t n = to - at < sizeof(zeros) ? (size_t)(to - at) : sizeof(zeros);
        ssize_t w = pwrite(fd, zeros, n, (off_t)at);
        if (w <= 0) {
            break;
        }
        at += (uint64_t)w;
    }
    ls->file_end = at;
    if (at < to) {
        /* Out of room: try again once the log has grown by another step. */
        ls->prealloc_next = used + PREALLOC_STEP;
        PT_DEBUG("%s: preallocating up to %llu bytes: %s", ls->log_file, (unsigned long long)to,
                 strerror(errno));
    }
}

static int lmdb_commit(pstore *s, const pstore_change *c)
{
    lstore *ls = s->be;
    for (int attempt = 0; attempt < MAX_GROWTH; attempt++) {
        MDB_txn *txn = NULL;
        int rc = mdb_txn_begin(ls->env, NULL, 0, &txn);
        if (rc == MDB_MAP_RESIZED) {
            mdb_env_set_mapsize(ls->env, 0);
            continue;
        }
        if (rc != 0) {
            return mdb_fail(s, rc, "begin write transaction");
        }
        rc = apply(ls, txn, c);
        if (rc == 0) {
            rc = mdb_txn_commit(txn); /* frees txn whatever the outcome */
        } else {
            mdb_txn_abort(txn);
        }
        if (rc == 0) {
            pstore__lmdb_prealloc(s);
            return 0;
        }
        if (rc == EIO && out_of_space(ls)) {
            rc = ENOSPC;
        }
        if (rc != MDB_MAP_FULL) {
            return mdb_fail(s, rc, "write transaction");
        }
        /* The map is full: the aborted transaction left no trace; grow the map and redo it.
         * Doubling keeps the number of growths logarithmic in the log's size. */
        size_t bigger = ls->map_size * 2;
        rc = mdb_env_set_mapsize(ls->env, bigger);
        if (rc != 0) {
            return mdb_fail(s, rc, "grow the map");
        }
        ls->map_size = bigger;
        PT_INFO("%s: map grown to %zu MiB", ls->log_file, bigger >> 20);
    }
    return pstore__fail(s, PT_ENOSPC, "%s: the map cannot grow any further", ls->log_file);
}

/* ---- reads ---- */

static int lmdb_term(pstore *s, uint64_t index, uint64_t *term)
{
    lstore *ls = s->be;
    int rv = rtxn_begin(s);
    if (rv != 0) {
        return rv;
    }
    uint8_t kb[8];
    pstore__key_put(kb, index);
    MDB_val k = {8, kb}, v;
    int rc = mdb_get(ls->rtxn, ls->log_dbi, &k, &v);
    if (rc == MDB_NOTFOUND) {
        rv = entry_corrupt(s, index, "missing from the log");
    } else if (rc != 0) {
        rv = mdb_fail(s, rc, "read");
    } else {
        praft_entry e;
        const char *why = NULL;
        rv = pstore__entry_decode(index, v.mv_data, v.mv_size, &e, &why);
        if (rv != 0) {
            rv = entry_corrupt(s, index, why);
        } else {
            *term = e.term;
        }
    }
    rtxn_end(s);
    return rv;
}

/* Walks lo..hi-1 in order, verifying each entry; calls @fn for each. */
typedef int (*entry_fn)(void *arg, const praft_entry *e, bool *stop);

static int walk(pstore *s, uint64_t lo, uint64_t hi, entry_fn fn, void *arg)
{
    lstore *ls = s->be;
    int rv = rtxn_begin(s);
    if (rv != 0) {
        return rv;
    }
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(ls->rtxn, ls->log_dbi, &cur);
    if (rc != 0) {
        rv = mdb_fail(s, rc, "open cursor");
        goto out;
    }
    uint8_t kb[8];
    pstore__key_put(kb, lo);
    MDB_val k = {8, kb}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
    bool stop = false;
    for (uint64_t i = lo; i < hi && !stop; i++) {
        if (i > lo) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        if (rc == MDB_NOTFOUND ||
            (rc == 0 && (k.mv_size != 8 || pstore__key_get(k.mv_data) != i))) {
            rv = entry_corrupt(s, i, "missing from the log (the log has a gap)");
            goto out;
        }
        if (rc != 0) {
            rv = mdb_fail(s, rc, "read");
            goto out;
        }
        praft_entry e;
        const char *why = NULL;
        if (pstore__entry_decode(i, v.mv_data, v.mv_size, &e, &why) != 0) {
            rv = entry_corrupt(s, i, why);
            goto out;
        }
        rv = fn(arg, &e, &stop);
        if (rv != 0) {
            goto out;
        }
    }
out:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    rtxn_end(s);
    return rv;
}

typedef struct read_arg {
    praft_entry *out;
    size_t n;
    size_t bytes;
    size_t max_bytes;
} read_arg;

static int read_one(void *arg, const praft_entry *e, bool *stop)
{
    read_arg *a = arg;
    if (a->n > 0 && a->bytes + e->len > a->max_bytes) {
        *stop = true;
        return 0;
    }
    praft_entry *o = &a->out[a->n];
    *o = *e;
    o->data = NULL;
    if (e->len > 0) {
        o->data = malloc(e->len);
        if (o->data == NULL) {
            return PT_ENOMEM;
        }
        memcpy(o->data, e->data, e->len);
    }
    a->bytes += e->len;
    a->n++;
    return 0;
}

static int lmdb_read(pstore *s, uint64_t lo, uint64_t hi, size_t max_bytes, praft_entry *out,
                     size_t *n)
{
    read_arg a = {.out = out, .max_bytes = max_bytes};
    int rv = walk(s, lo, hi, read_one, &a);
    if (rv != 0) {
        pstore_entries_free(out, a.n);
        return rv;
    }
    *n = a.n;
    return 0;
}

typedef struct check_arg {
    pstore *s;
    uint64_t prev_term;
} check_arg;

static int check_one(void *arg, const praft_entry *e, bool *stop)
{
    check_arg *a = arg;
    if (e->term < a->prev_term) {
        return entry_corrupt(a->s, e->index, "term lower than the previous entry's");
    }
    a->prev_term = e->term;
    return 0;
}

static int lmdb_check(pstore *s)
{
    check_arg a = {.s = s, .prev_term = s->base_term};
    int rv = walk(s, s->base_index + 1, s->last_index + 1, check_one, &a);
    if (rv != 0) {
        return rv;
    }
    /* Nothing beyond last_index either. */
    lstore *ls = s->be;
    MDB_stat st;
    rv = rtxn_begin(s);
    if (rv != 0) {
        return rv;
    }
    int rc = mdb_stat(ls->rtxn, ls->log_dbi, &st);
    rtxn_end(s);
    if (rc != 0) {
        return mdb_fail(s, rc, "stat");
    }
    if (st.ms_entries != s->last_index - s->base_index) {
        return pstore__fail(s, PT_ECORRUPT, "%s: the log holds %zu entries, expected %llu",
                            ls->log_file, st.ms_entries,
                            (unsigned long long)(s->last_index - s->base_index));
    }
    return 0;
}

static void lmdb_close(pstore *s)
{
    lstore *ls = s->be;
    if (ls == NULL) {
        return;
    }
    if (ls->rtxn != NULL) {
        mdb_txn_abort(ls->rtxn);
    }
    if (ls->env != NULL) {
        mdb_env_close(ls->env);
    }
    pstore__files_close(&ls->files);
    free(ls);
    s->be = NULL;
}

const pstore_ops pstore__lmdb_ops = {
    .close = lmdb_close,
    .commit = lmdb_commit,
    .read = lmdb_read,
    .term = lmdb_term,
    .check = lmdb_check,
    .tmp_create = pstore__file_tmp_create,
    .tmp_append = pstore__file_tmp_append,
    .tmp_sync = pstore__file_tmp_sync,
    .tmp_read = pstore__file_tmp_read,
    .tmp_publish = pstore__file_tmp_publish,
    .tmp_drop = pstore__file_tmp_drop,
    .blob_read = pstore__file_blob_read,
    .blob_remove = pstore__file_blob_remove,
};
