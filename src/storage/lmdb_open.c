/*
 * Opening a data directory: initialising a new one atomically, refusing a damaged, partial or
 * foreign one, and checking what a crash could have touched (metadata, the log's tail,
 * snapshots) before anything is served.
 *
 * Why refuse rather than repair: a node that restarted blank over lost files would have
 * forgotten its vote and its acknowledged entries, and could vote twice in one term or help
 * elect a leader that lacks committed entries (§5.2, §5.4). Only an operator can decide that
 * a node must rejoin as a new member.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "storage/codec.h"
#include "storage/lmdb_store.h"

/* How many entries at the log's tail are verified at open (the part a crash could touch). */
#define TAIL_CHECK 256

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static unsigned env_flags(const pstore_options *o)
{
    unsigned f = MDB_NOTLS;
    if (o->read_only) {
        /* No lock file either: the flock on DIR/LOCK (open_store) already keeps writers out. */
        return f | MDB_RDONLY | MDB_NOLOCK;
    }
    if (o->sync == PSTORE_SYNC_NORMAL) {
        f |= MDB_NOMETASYNC;
    } else if (o->sync == PSTORE_SYNC_NONE) {
        f |= MDB_NOSYNC;
    }
    return f;
}

static int env_open(pstore *s, const char *path, size_t map_size, MDB_env **out)
{
    MDB_env *env = NULL;
    int rc = mdb_env_create(&env);
    if (rc == 0) {
        rc = mdb_env_set_maxdbs(env, 2);
    }
    if (rc == 0) {
        rc = mdb_env_set_mapsize(env, map_size);
    }
    if (rc == 0) {
        rc = mdb_env_open(env, path, env_flags(&s->opts), 0600);
    }
    if (rc != 0) {
        if (env != NULL) {
            mdb_env_close(env);
        }
        if (rc == MDB_INVALID) {
            return pstore__fail(s, PT_ECORRUPT,
                                "%s/data.mdb: not an LMDB file, or its meta pages are damaged",
                                path);
        }
        if (rc == MDB_VERSION_MISMATCH) {
            return pstore__fail(s, PT_EVERSION, "%s/data.mdb: written by another LMDB version",
                                path);
        }
        return pstore__fail(s, rc == ENOSPC ? PT_ENOSPC : (rc == ENOENT ? PT_ECORRUPT : PT_EIO),
                            "%s/data.mdb: cannot open: %s", path, mdb_strerror(rc));
    }
    *out = env;
    return 0;
}

/* Creates DIR/log.init with a complete empty store, then renames it to DIR/log: a crash
 * leaves either no log (a fresh directory, retried) or a complete one. */
static int init_dir(pstore *s, const char *dir)
{
    char tmp[PATH_MAX], final[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s/log.init", dir);
    snprintf(final, sizeof(final), "%s/log", dir);
    nftw(tmp, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    if (mkdir(tmp, 0700) != 0) {
        return pstore__errno(s, errno, tmp, "mkdir");
    }
    MDB_env *env = NULL;
    int rv = env_open(s, tmp, s->opts.initial_map_size, &env);
    if (rv != 0) {
        return rv;
    }
    MDB_txn *txn = NULL;
    MDB_dbi log_dbi, meta_dbi;
    uint8_t rec[PSTORE_REC_MAX];
    praft_hard_state hs = {0, 0, 0};
    int rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (rc == 0) {
        rc = mdb_dbi_open(txn, "log", MDB_CREATE, &log_dbi);
    }
    if (rc == 0) {
        rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &meta_dbi);
    }
#define PUT(key, len)                                                 \
    if (rc == 0) {                                                    \
        MDB_val k_ = {strlen(key), (void *)(key)}, v_ = {(len), rec}; \
        rc = mdb_put(txn, meta_dbi, &k_, &v_, 0);                     \
    }
    PUT("format", pstore__rec_u32(PSTORE_FORMAT_LMDB, rec));
    PUT("identity", pstore__rec_pair(s->opts.cluster_id, s->opts.node_id, rec));
    PUT("hard_state", pstore__rec_hard_state(&hs, rec));
    PUT("base", pstore__rec_pair(0, 0, rec));
#undef PUT
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
    } else if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    if (rc == 0) {
        rc = mdb_env_sync(env, 1);
    }
    mdb_env_close(env);
    if (rc != 0) {
        return pstore__fail(s, rc == ENOSPC ? PT_ENOSPC : PT_EIO, "%s: cannot initialise: %s", tmp,
                            mdb_strerror(rc));
    }
    if ((rv = pstore__fsync_dir(s, tmp)) != 0) {
        return rv;
    }
    if (rename(tmp, final) != 0) {
        return pstore__errno(s, errno, final, "rename");
    }
    if ((rv = pstore__fsync_dir(s, dir)) != 0) {
        return rv;
    }
    PT_INFO("%s: initialised for cluster %llu node %llu", dir,
            (unsigned long long)s->opts.cluster_id, (unsigned long long)s->opts.node_id);
    return 0;
}

/* Reads meta record @key; *found false if absent. */
static int get_rec(pstore *s, const char *key, MDB_val *v, bool *found)
{
    lstore *ls = s->be;
    MDB_val k = {strlen(key), (void *)key};
    int rc = mdb_get(ls->rtxn, ls->meta_dbi, &k, v);
    *found = rc == 0;
    if (rc == MDB_NOTFOUND) {
        return 0;
    }
    if (rc != 0) {
        return pstore__fail(s, PT_ECORRUPT, "%s: metadata record '%s': %s", ls->log_file, key,
                            mdb_strerror(rc));
    }
    return 0;
}

static int bad_rec(pstore *s, const char *key, const char *why)
{
    return pstore__fail(s, PT_ECORRUPT, "%s: metadata record '%s' %s", ((lstore *)s->be)->log_file,
                        key, why);
}

static int load_meta(pstore *s, bool *has_snap, uint64_t *snap_index, uint64_t *snap_term)
{
    MDB_val v;
    bool found;
    int rv;
#define GET(key, required)                         \
    if ((rv = get_rec(s, key, &v, &found)) != 0) { \
        return rv;                                 \
    }                                              \
    if ((required) && !found) {                    \
        return bad_rec(s, key, "is missing");      \
    }
    GET("format", true);
    uint32_t version = 0;
    if (pstore__rec_parse_u32(v.mv_data, v.mv_size, &version) != 0) {
        return bad_rec(s, "format", "fails its checksum");
    }
    if (version != PSTORE_FORMAT_LMDB) {
        return pstore__fail(s, PT_EVERSION, "%s: format version %u, this program reads %u",
                            ((lstore *)s->be)->log_file, version, PSTORE_FORMAT_LMDB);
    }
    s->version = version;
    GET("identity", true);
    uint64_t cluster = 0, node = 0;
    if (pstore__rec_parse_pair(v.mv_data, v.mv_size, &cluster, &node) != 0) {
        return bad_rec(s, "identity", "fails its checksum");
    }
    if (s->opts.cluster_id == 0 && s->opts.node_id == 0) {
        s->opts.cluster_id = cluster; /* inspection: take the recorded identity */
        s->opts.node_id = node;
    } else if (cluster != s->opts.cluster_id || node != s->opts.node_id) {
        return pstore__fail(
            s, PT_EMISMATCH, "%s: belongs to cluster %llu node %llu, not cluster %llu node %llu",
            s->name, (unsigned long long)cluster, (unsigned long long)node,
            (unsigned long long)s->opts.cluster_id, (unsigned long long)s->opts.node_id);
    }
    GET("hard_state", true);
    if (pstore__rec_parse_hard_state(v.mv_data, v.mv_size, &s->hs) != 0) {
        return bad_rec(s, "hard_state", "fails its checksum");
    }
    GET("base", true);
    if (pstore__rec_parse_pair(v.mv_data, v.mv_size, &s->base_index, &s->base_term) != 0) {
        return bad_rec(s, "base", "fails its checksum");
    }
    GET("config", false);
    if (found) {
        if (pstore__rec_parse_config(v.mv_data, v.mv_size, &s->config_index, &s->config) != 0) {
            return bad_rec(s, "config", "fails its checksum");
        }
        s->has_config = true;
    }
    GET("snapshot", false);
    *has_snap = found;
    if (found && pstore__rec_parse_pair(v.mv_data, v.mv_size, snap_index, snap_term) != 0) {
        return bad_rec(s, "snapshot", "fails its checksum");
    }
#undef GET
    return 0;
}

/* The log's bounds agree with the metadata and its last TAIL_CHECK entries are intact. LMDB
 * commits are atomic, so a crash never leaves a torn batch: a bad entry here is damage, not an
 * interrupted write, and the store is refused. */
static int check_log(pstore *s)
{
    lstore *ls = s->be;
    MDB_cursor *cur = NULL;
    MDB_stat st;
    int rv = 0;
    int rc = mdb_stat(ls->rtxn, ls->log_dbi, &st);
    if (rc == 0) {
        rc = mdb_cursor_open(ls->rtxn, ls->log_dbi, &cur);
    }
    if (rc != 0) {
        return pstore__fail(s, PT_ECORRUPT, "%s: cannot read the log: %s", ls->log_file,
                            mdb_strerror(rc));
    }
    MDB_val k, v;
    s->last_index = s->base_index;
    if (st.ms_entries == 0) {
        goto out;
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    if (rc != 0 || k.mv_size != 8) {
        rv = pstore__fail(s, PT_ECORRUPT, "%s: cannot read the log's first entry: %s", ls->log_file,
                          rc ? mdb_strerror(rc) : "bad key");
        goto out;
    }
    uint64_t first = pstore__key_get(k.mv_data);
    if (first != s->base_index + 1) {
        rv = pstore__fail(s, PT_ECORRUPT, "%s: entry %llu: the log should start at %llu",
                          ls->log_file, (unsigned long long)first,
                          (unsigned long long)s->base_index + 1);
        goto out;
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc != 0 || k.mv_size != 8) {
        rv = pstore__fail(s, PT_ECORRUPT, "%s: cannot read the log's last entry: %s", ls->log_file,
                          rc ? mdb_strerror(rc) : "bad key");
        goto out;
    }
    uint64_t last = pstore__key_get(k.mv_data);
    if (last < first || last - first + 1 != st.ms_entries) {
        rv = pstore__fail(s, PT_ECORRUPT, "%s: the log %llu..%llu holds %zu entries: it has gaps",
                          ls->log_file, (unsigned long long)first, (unsigned long long)last,
                          st.ms_entries);
        goto out;
    }
    uint64_t expect = last, next_term = UINT64_MAX;
    for (int i = 0; i < TAIL_CHECK && rc == 0 && expect >= first; i++) {
        praft_entry e;
        const char *why = NULL;
        if (k.mv_size != 8 || pstore__key_get(k.mv_data) != expect) {
            rv = pstore__fail(s, PT_ECORRUPT, "%s: entry %llu: missing (the log has a gap)",
                              ls->log_file, (unsigned long long)expect);
            goto out;
        }
        if (pstore__entry_decode(expect, v.mv_data, v.mv_size, &e, &why) != 0) {
            rv = pstore__fail(s, PT_ECORRUPT, "%s: entry %llu: %s", ls->log_file,
                              (unsigned long long)expect, why);
            goto out;
        }
        if (e.term > next_term || e.term < s->base_term) {
            rv = pstore__fail(s, PT_ECORRUPT, "%s: entry %llu: term %llu out of order",
                              ls->log_file, (unsigned long long)expect, (unsigned long long)e.term);
            goto out;
        }
        next_term = e.term;
        expect--;
        rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        rv = pstore__fail(s, PT_ECORRUPT, "%s: reading the log's tail: %s", ls->log_file,
                          mdb_strerror(rc));
        goto out;
    }
    s->last_index = last;
out:
    mdb_cursor_close(cur);
    return rv;
}

static int open_store(pstore *s, const char *dir)
{
    lstore *ls = s->be;
    char log_dir[PATH_MAX], path[PATH_MAX];
    snprintf(log_dir, sizeof(log_dir), "%s/log", dir);
    snprintf(ls->log_file, sizeof(ls->log_file), "%s/log/data.mdb", dir);
    int lrv = pstore__files_lock(s, dir);
    if (lrv != 0) {
        return lrv;
    }
    bool ro = s->opts.read_only;
    struct stat st;
    snprintf(path, sizeof(path), "%s/log.init", dir);
    if (!ro && exists(path)) {
        PT_WARN("%s: removing an initialisation that did not finish", path);
        nftw(path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    }
    bool has_log_dir = exists(log_dir), has_snap_dir = exists(ls->files.snap_dir);
    if (!has_log_dir && has_snap_dir) {
        return pstore__fail(s, PT_ECORRUPT,
                            "%s: missing while %s exists: the log, vote and identity are gone; "
                            "refusing to start blank",
                            log_dir, ls->files.snap_dir);
    }
    if (has_log_dir && !exists(ls->log_file)) {
        return pstore__fail(s, PT_ECORRUPT,
                            "%s: missing: the log, vote and identity are gone; refusing to start "
                            "blank",
                            ls->log_file);
    }
    if (!has_log_dir) {
        if (!s->opts.create) {
            return pstore__fail(s, PT_ENOTFOUND,
                                "%s: not initialised (a new node must be created explicitly)", dir);
        }
        int rv = init_dir(s, dir);
        if (rv != 0) {
            return rv;
        }
    }
    int rv = env_open(s, log_dir, s->opts.initial_map_size, &ls->env);
    if (rv != 0) {
        return rv;
    }
    MDB_envinfo info;
    MDB_stat est;
    mdb_env_info(ls->env, &info);
    mdb_env_stat(ls->env, &est);
    ls->map_size = info.me_mapsize;
    /* LMDB maps the file: a page past its end would be a SIGBUS, not an error. A file cut
     * short (truncated copy, damaged file system) is refused before any page is touched. */
    if (stat(ls->log_file, &st) != 0) {
        return pstore__errno(s, errno, ls->log_file, "stat");
    }
    if ((uint64_t)st.st_size < ((uint64_t)info.me_last_pgno + 1) * est.ms_psize) {
        return pstore__fail(s, PT_ECORRUPT, "%s: truncated: %lld bytes, its last page ends at %llu",
                            ls->log_file, (long long)st.st_size,
                            (unsigned long long)(info.me_last_pgno + 1) * est.ms_psize);
    }
    ls->page_size = est.ms_psize;
    ls->file_end = (uint64_t)st.st_size;
    struct rlimit rl;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        /* Leave the last MiB below a file size limit to LMDB itself (lmdb.c, out_of_space). */
        ls->prealloc_cap = rl.rlim_cur > (2u << 20) ? (uint64_t)rl.rlim_cur - (1u << 20) : 1;
    }
    int rc = mdb_txn_begin(ls->env, NULL, MDB_RDONLY, &ls->rtxn);
    if (rc == 0) {
        rc = mdb_dbi_open(ls->rtxn, "log", 0, &ls->log_dbi);
    }
    if (rc == 0) {
        rc = mdb_dbi_open(ls->rtxn, "meta", 0, &ls->meta_dbi);
    }
    if (rc != 0) {
        return pstore__fail(s, PT_ECORRUPT, "%s: cannot open the log and metadata: %s",
                            ls->log_file, mdb_strerror(rc));
    }
    /* Committing the read transaction makes the database handles permanent. */
    rc = mdb_txn_commit(ls->rtxn);
    ls->rtxn = NULL;
    if (rc == 0) {
        rc = mdb_txn_begin(ls->env, NULL, MDB_RDONLY, &ls->rtxn);
    }
    if (rc != 0) {
        return pstore__fail(s, PT_EIO, "%s: %s", ls->log_file, mdb_strerror(rc));
    }
    bool has_snap = false;
    uint64_t snap_index = 0, snap_term = 0;
    rv = load_meta(s, &has_snap, &snap_index, &snap_term);
    if (rv == 0) {
        rv = check_log(s);
    }
    mdb_txn_reset(ls->rtxn);
    if (rv != 0) {
        return rv;
    }
    return pstore__files_open_snapshots(s, has_snap, snap_index, snap_term, ls->log_file);
}

int pstore__lmdb_open(pstore *s, const char *dir)
{
    lstore *ls = calloc(1, sizeof(*ls));
    if (ls == NULL) {
        return pstore__fail(s, PT_ENOMEM, "%s: out of memory", dir);
    }
    pstore__files_init(&ls->files);
    s->be = ls;
    s->ops = &pstore__lmdb_ops;
    s->version = PSTORE_FORMAT_LMDB;
    return open_store(s, dir);
}
