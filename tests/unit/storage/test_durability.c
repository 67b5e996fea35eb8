/*
 * The durable backends (LMDB and the write-ahead log): identity, refusal of partial or
 * foreign data directories, and corruption (flipped bytes, truncated and removed files)
 * caught at open or on read with a clear error; a full disk loses nothing. Tests that look
 * inside the files exist once per engine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "platoon/storage.h"
#include "unit/storage/backend.h"
#include "unit/storage/durability.h"

/* Entry i's data: "entry-<i>" then a pattern, so that a test can find it in the file. */
void entry_data(uint64_t i, uint8_t *d)
{
    memset(d, 0, DATA_LEN);
    snprintf((char *)d, DATA_LEN, "entry-%08llu", (unsigned long long)i);
    for (size_t k = 16; k < DATA_LEN; k++) {
        d[k] = (uint8_t)(i * 13 + k);
    }
}

static int setup_with(void **state, const test_backend *b)
{
    fx *f = calloc(1, sizeof(*f));
    f->b = b;
    tb_tmpdir(f->parent, sizeof(f->parent));
    snprintf(f->dir, sizeof(f->dir), "%s/data", f->parent);
    pstore_options_init(&f->opts, 7, 1);
    f->opts.sync = PSTORE_SYNC_NONE;
    f->opts.create = true;
    f->opts.engine = b->engine;
    f->opts.segment_size = TB_SEGMENT;
    pstore *s = NULL;
    char err[256];
    assert_int_equal(pstore_open(f->dir, &f->opts, &s, err, sizeof(err)), 0);
    uint8_t data[16][DATA_LEN];
    praft_entry e[16];
    for (uint64_t lo = 1; lo <= N_ENTRIES; lo += 16) {
        for (int k = 0; k < 16; k++) {
            entry_data(lo + (uint64_t)k, data[k]);
            e[k] = (praft_entry){
                .index = lo + (uint64_t)k, .term = 2, .len = DATA_LEN, .data = data[k]};
        }
        praft_hard_state hs = {.term = 2, .vote = 1, .commit = lo};
        pstore_batch w = {.entries = e, .n_entries = 16, .hard_state = &hs};
        assert_int_equal(pstore_write(s, &w), 0);
    }
    praft_config cfg = {.n_members = 1};
    cfg.members[0].id = 1;
    cfg.members[0].role = PRAFT_ROLE_VOTER;
    pstore_snap_writer *sw = NULL;
    assert_int_equal(pstore_snap_begin(s, 100, 2, &cfg, &sw), 0);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(pstore_snap_write(sw, data, sizeof(data)), 0);
    }
    assert_int_equal(pstore_snap_finish(sw, &f->snap), 0);
    pstore_close(s);
    f->opts.create = false;
    *state = f;
    return 0;
}

static int setup_lmdb(void **state)
{
    return setup_with(state, &tb_backends[1]);
}

static int setup_wal(void **state)
{
    return setup_with(state, &tb_backends[2]);
}

static int teardown(void **state)
{
    fx *f = *state;
    tb_rmrf(f->parent);
    free(f);
    return 0;
}

int reopen(fx *f, pstore **s, char *err, size_t cap)
{
    return pstore_open(f->dir, &f->opts, s, err, cap);
}

void path_of(fx *f, const char *rel, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", f->dir, rel);
}

static void snap_path(fx *f, char *out, size_t cap)
{
    snprintf(out, cap, "%s/snapshots/snap-%020llu-%020llu.psnap", f->dir,
             (unsigned long long)f->snap.index, (unsigned long long)f->snap.term);
}

uint8_t *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    *len = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *buf = malloc(*len);
    assert_int_equal(fread(buf, 1, *len, fp), *len);
    fclose(fp);
    return buf;
}

void spit(const char *path, const uint8_t *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    fclose(fp);
}

static void reopens_intact(void **state)
{
    fx *f = *state;
    pstore *s = NULL;
    char err[256];
    assert_int_equal(reopen(f, &s, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(pstore_check(s), 0);
    uint64_t first, last;
    pstore_log_range(s, &first, &last);
    assert_int_equal(last, N_ENTRIES);
    pstore_close(s);
}

/* With syncing on, the store keeps zero-filled room written ahead of LMDB's pages (so that a
 * commit rewrites blocks inside the file instead of growing it); the longer file is no damage:
 * it reopens, checks clean and keeps growing with the log. */
static void room_is_kept_ahead_of_the_log(void **state)
{
    fx *f = *state;
    char p[400];
    path_of(f, "log/data.mdb", p, sizeof(p));
    struct statvfs vfs;
    assert_int_equal(statvfs(p, &vfs), 0);
    if ((uint64_t)vfs.f_bavail * vfs.f_frsize < (128ull << 20)) {
        skip(); /* the store never preallocates into the last 64 MiB of a file system */
    }
    struct stat before, after;
    assert_int_equal(stat(p, &before), 0);
    f->opts.sync = PSTORE_SYNC_FULL;
    pstore *s = NULL;
    char err[256];
    assert_int_equal(reopen(f, &s, err, sizeof(err)), 0);
    static uint8_t big[16][4096];
    praft_entry e[16];
    uint64_t next = N_ENTRIES + 1;
    for (int b = 0; b < 2; b++) {
        for (int k = 0; k < 16; k++) {
            memset(big[k], (int)next, sizeof(big[k]));
            e[k] = (praft_entry){.index = next, .term = 2, .len = sizeof(big[k]), .data = big[k]};
            next++;
        }
        pstore_batch w = {.entries = e, .n_entries = 16};
        assert_int_equal(pstore_write(s, &w), 0);
    }
    assert_int_equal(stat(p, &after), 0);
    /* 128 KiB of entries were added, the file grew by at least the 2 MiB kept ahead. */
    assert_true(after.st_size >= before.st_size + (2 << 20));
    pstore_close(s);
    assert_int_equal(reopen(f, &s, err, sizeof(err)), 0);
    assert_int_equal(pstore_check(s), 0);
    uint64_t last;
    pstore_log_range(s, NULL, &last);
    assert_int_equal(last, next - 1);
    praft_entry out[1];
    size_t n = 0;
    assert_int_equal(pstore_entries(s, last, last + 1, SIZE_MAX, out, &n), 0);
    assert_int_equal(out[0].data[100], (uint8_t)last);
    pstore_entries_free(out, n);
    pstore_close(s);
}

static void identity_is_checked(void **state)
{
    fx *f = *state;
    pstore *s = NULL;
    char err[256];
    pstore_options o = f->opts;
    o.node_id = 2;
    assert_int_equal(pstore_open(f->dir, &o, &s, err, sizeof(err)), PT_EMISMATCH);
    assert_null(s);
    assert_non_null(strstr(err, "belongs to cluster 7 node 1"));
    o = f->opts;
    o.cluster_id = 8;
    o.create = true; /* create never overrides an existing store */
    assert_int_equal(pstore_open(f->dir, &o, &s, err, sizeof(err)), PT_EMISMATCH);
}

static void missing_store_is_not_created_silently(void **state)
{
    fx *f = *state;
    pstore *s = NULL;
    char err[256], dir[300];
    snprintf(dir, sizeof(dir), "%s/elsewhere", f->parent);
    assert_int_equal(pstore_open(dir, &f->opts, &s, err, sizeof(err)), PT_ENOTFOUND);
    assert_non_null(strstr(err, "elsewhere"));
}

static void second_open_is_refused(void **state)
{
    fx *f = *state;
    pstore *a = NULL, *b = NULL;
    char err[256];
    assert_int_equal(reopen(f, &a, err, sizeof(err)), 0);
    assert_int_equal(reopen(f, &b, err, sizeof(err)), PT_EBUSY);
    pstore_close(a);
}

static void lost_log_is_refused(void **state)
{
    fx *f = *state;
    char p[400], err[256];
    pstore *s = NULL;
    path_of(f, "log/data.mdb", p, sizeof(p));
    assert_int_equal(unlink(p), 0);
    f->opts.create = true; /* even when creating is allowed */
    assert_int_equal(reopen(f, &s, err, sizeof(err)), PT_ECORRUPT);
    assert_non_null(strstr(err, "data.mdb: missing"));
    path_of(f, "log/lock.mdb", p, sizeof(p));
    unlink(p);
    path_of(f, "log", p, sizeof(p));
    assert_int_equal(rmdir(p), 0);
    assert_int_equal(reopen(f, &s, err, sizeof(err)), PT_ECORRUPT);
    assert_non_null(strstr(err, "refusing to start blank"));
    assert_null(s);
}

static void lost_snapshot_is_refused(void **state)
{
    fx *f = *state;
    char p[400], err[256];
    pstore *s = NULL;
    snap_path(f, p, sizeof(p));
    assert_int_equal(unlink(p), 0);
    assert_int_equal(reopen(f, &s, err, sizeof(err)), PT_ECORRUPT);
    assert_non_null(strstr(err, "current snapshot"));
}

static void damaged_snapshot_is_refused(void **state)
{
    fx *f = *state;
    char p[400], err[256];
    pstore *s = NULL;
    snap_path(f, p, sizeof(p));
    size_t len;
    uint8_t *orig = slurp(p, &len);
    /* Every byte position of the file, one at a time (header, payload, trailer). */
    size_t step = len / 97 + 1;
    for (size_t off = 0; off < len; off += step) {
        orig[off] ^= 0x04;
        spit(p, orig, len);
        assert_int_equal(reopen(f, &s, err, sizeof(err)), PT_ECORRUPT);
        assert_non_null(strstr(err, "snap-"));
        orig[off] ^= 0x04;
    }
    spit(p, orig, len - 10); /* truncated */
    assert_int_equal(reopen(f, &s, err, sizeof(err)), PT_ECORRUPT);
    assert_non_null(strstr(err, "snap-"));
    spit(p, orig, len);
    assert_int_equal(reopen(f, &s, err, sizeof(err)), 0);
    pstore_close(s);
    free(orig);
}

static void flipped_entry_is_caught(void **state)
{
    fx *f = *state;
    char p[400], err[256];
    pstore *s = NULL;
    path_of(f, "log/data.mdb", p, sizeof(p));
    size_t len;
    uint8_t *buf = slurp(p, &len);
    /* Entry 10 (old, not in the tail checked at open) and entry 590 (in the tail). */
    uint64_t victims[] = {10, 590};
    for (int v = 0; v < 2; v++) {
        uint8_t want[DATA_LEN];
        entry_data(victims[v], want);
        uint8_t *at = memmem(buf, len, want, DATA_LEN);
        assert_non_null(at);
        at[20] ^= 0x80;
        spit(p, buf, len);
        int rv = reopen(f, &s, err, sizeof(err));
        if (v == 1) {
            assert_int_equal(rv, PT_ECORRUPT); /* the tail is verified at open */
            assert_non_null(strstr(err, "entry 590: entry checksum mismatch"));
        } else {
            assert_int_equal(rv, 0);
            praft_entry out[1];
            size_t n = 0;
            assert_int_equal(pstore_entries(s, 10, 11, SIZE_MAX, out, &n), PT_ECORRUPT);
            assert_int_equal(n, 0);
            assert_non_null(strstr(pstore_last_error(s), "entry 10: entry checksum mismatch"));
            assert_int_equal(pstore_check(s), PT_ECORRUPT);
            uint64_t t;
            assert_int_equal(pstore_term(s, 10, &t), PT_ECORRUPT);
            pstore_close(s);
        }
        at[20] ^= 0x80;
    }
    free(buf);
}

static void truncated_log_is_refused(void **state)
{
    fx *f = *state;
    char p[400], err[256];
    pstore *s = NULL;
    path_of(f, "log/data.mdb", p, sizeof(p));
    assert_int_equal(truncate(p, (off_t)3 * 4096), 0);
    int rv = reopen(f, &s, err, sizeof(err));
    assert_int_equal(rv, PT_ECORRUPT);
    assert_non_null(strstr(err, "data.mdb"));
    assert_int_equal(truncate(p, 0), 0);
    assert_int_equal(reopen(f, &s, err, sizeof(err)), PT_ECORRUPT);
}

/*
 * A byte flipped anywhere in the LMDB file, hundreds of times, each in a child process: the
 * outcome must be an error at open, an error from the full check, or (a flip in free space or
 * in bytes LMDB never reads back) a store whose every entry and record is exactly as written.
 * Never silently different data. LMDB does not checksum its own B-tree pages: a flip in a
 * page's structure (a node offset, a key size) can make it read out of bounds and crash the
 * process. Such crashes happen before any data is served; they are counted and reported here
 * rather than hidden (platoon-inspect runs its check in a child process for that reason).
 */
static void random_flips_never_give_wrong_data(void **state)
{
    fx *f = *state;
    char p[400];
    path_of(f, "log/data.mdb", p, sizeof(p));
    size_t len;
    uint8_t *orig = slurp(p, &len);
    unsigned seed = (unsigned)getpid();
    const char *env = getenv("PSTORE_FLIP_SEED");
    if (env) {
        seed = (unsigned)strtoul(env, NULL, 10);
    }
    srandom(seed);
    int counts[4] = {0}; /* open refused, check refused, intact, crashed */
    for (int iter = 0; iter < 300; iter++) {
        size_t off = (size_t)random() % len;
        uint8_t bit = (uint8_t)(1u << (random() % 8));
        orig[off] ^= bit;
        spit(p, orig, len);
        orig[off] ^= bit;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            /* cmocka's handlers would turn a crash into an ordinary failure exit. */
            signal(SIGSEGV, SIG_DFL);
            signal(SIGBUS, SIG_DFL);
            signal(SIGABRT, SIG_DFL);
            signal(SIGFPE, SIG_DFL);
            signal(SIGILL, SIG_DFL);
            pstore *s = NULL;
            char err[256];
            if (pstore_open(f->dir, &f->opts, &s, err, sizeof(err)) != 0) {
                _exit(err[0] ? 10 : 99);
            }
            if (pstore_check(s) != 0) {
                _exit(pstore_last_error(s)[0] ? 11 : 99);
            }
            praft_hard_state hs;
            pstore_hard_state(s, &hs);
            uint64_t first, last;
            pstore_log_range(s, &first, &last);
            if (first != 1 || last != N_ENTRIES || hs.term != 2 || hs.commit != N_ENTRIES - 15) {
                _exit(98);
            }
            static praft_entry out[N_ENTRIES];
            size_t n = 0;
            if (pstore_entries(s, 1, N_ENTRIES + 1, SIZE_MAX, out, &n) != 0 || n != N_ENTRIES) {
                _exit(11);
            }
            for (size_t i = 0; i < n; i++) {
                uint8_t want[DATA_LEN];
                entry_data(i + 1, want);
                if (out[i].len != DATA_LEN || memcmp(out[i].data, want, DATA_LEN) != 0 ||
                    out[i].term != 2) {
                    _exit(98);
                }
            }
            pstore_entries_free(out, n);
            pstore_close(s);
            _exit(12);
        }
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (WIFEXITED(st) && WEXITSTATUS(st) >= 10 && WEXITSTATUS(st) <= 12) {
            counts[WEXITSTATUS(st) - 10]++;
        } else if (WIFSIGNALED(st)) {
            counts[3]++;
            print_message("seed %u: flip at offset %zu made LMDB crash (signal %d)\n", seed, off,
                          WTERMSIG(st));
        } else {
            fail_msg("seed %u: flip at offset %zu gave wrong data or no message (exit %d)", seed,
                     off, WEXITSTATUS(st));
        }
    }
    spit(p, orig, len);
    free(orig);
    print_message("random flips (seed %u): %d refused at open, %d by the check, %d harmless, "
                  "%d crashes\n",
                  seed, counts[0], counts[1], counts[2], counts[3]);
}

/*
 * A full disk (here: a file size limit, which makes writes fail with EFBIG as ENOSPC would):
 * the write that does not fit fails with PT_ENOSPC and a message, and everything acknowledged
 * before is there after reopening. The map also grows on the way (1 MiB initial size).
 */
static void full_disk_loses_nothing(void **state)
{
    fx *f = *state;
    char p[400];
    path_of(f, "log/data.mdb", p, sizeof(p));
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {(rlim_t)st.st_size + (4 << 20), (rlim_t)st.st_size + (4 << 20)};
        setrlimit(RLIMIT_FSIZE, &rl);
        pstore *s = NULL;
        char err[256];
        f->opts.initial_map_size = 1 << 20;
        f->opts.sync = PSTORE_SYNC_FULL; /* with the room kept ahead (lmdb.c) */
        if (pstore_open(f->dir, &f->opts, &s, err, sizeof(err)) != 0) {
            _exit(2);
        }
        static uint8_t data[64][1024];
        praft_entry e[64];
        uint64_t last = N_ENTRIES;
        for (int b = 0; b < 10000; b++) {
            for (int k = 0; k < 64; k++) {
                memset(data[k], (int)(last + 1 + (uint64_t)k), sizeof(data[k]));
                e[k] = (praft_entry){
                    .index = last + 1 + (uint64_t)k, .term = 3, .len = 1024, .data = data[k]};
            }
            pstore_batch w = {.entries = e, .n_entries = 64};
            int rv = pstore_write(s, &w);
            if (rv == PT_ENOSPC && strstr(pstore_last_error(s), "no space") != NULL) {
                pstore_close(s);
                _exit(0);
            }
            if (rv != 0) {
                fprintf(stderr, "child: %s: %s\n", pt_error_name(rv), pstore_last_error(s));
                _exit(3);
            }
            last += 64;
            if (write(fds[1], &last, sizeof(last)) != sizeof(last)) {
                _exit(4);
            }
        }
        _exit(5);
    }
    close(fds[1]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    uint64_t acked = 0, v;
    while (read(fds[0], &v, sizeof(v)) == sizeof(v)) {
        acked = v;
    }
    close(fds[0]);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(acked > N_ENTRIES); /* some writes fitted before the disk was full */
    pstore *s = NULL;
    char err[256];
    assert_int_equal(reopen(f, &s, err, sizeof(err)), 0);
    uint64_t last;
    pstore_log_range(s, NULL, &last);
    assert_int_equal(last, acked);
    assert_int_equal(pstore_check(s), 0);
    praft_entry out[1];
    size_t n = 0;
    assert_int_equal(pstore_entries(s, acked, acked + 1, SIZE_MAX, out, &n), 0);
    assert_int_equal(out[0].data[0], (uint8_t)acked);
    pstore_entries_free(out, n);
    pstore_close(s);
}

#define LMDB(fn) cmocka_unit_test_setup_teardown(fn, setup_lmdb, teardown)
#define WAL(fn)  cmocka_unit_test_setup_teardown(fn, setup_wal, teardown)
#define BOTH(fn) LMDB(fn), WAL(fn)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(reopens_intact),
        LMDB(room_is_kept_ahead_of_the_log),
        WAL(segments_are_preallocated),
        BOTH(identity_is_checked),
        BOTH(missing_store_is_not_created_silently),
        BOTH(second_open_is_refused),
        LMDB(lost_log_is_refused),
        WAL(wal_lost_log_is_refused),
        BOTH(lost_snapshot_is_refused),
        BOTH(damaged_snapshot_is_refused),
        LMDB(flipped_entry_is_caught),
        WAL(wal_flipped_entry_is_caught),
        LMDB(truncated_log_is_refused),
        WAL(wal_cut_segment_is_refused),
        LMDB(random_flips_never_give_wrong_data),
        WAL(wal_random_flips_never_give_wrong_data),
        LMDB(full_disk_loses_nothing),
        WAL(wal_full_disk_loses_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
