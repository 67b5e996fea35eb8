/*
 * The durability suite's tests that look inside write-ahead log files (DIR/wal/<seq>.wal):
 * preallocation, lost and cut segments, flipped bytes, a full disk. Torn writes and the
 * other recovery rules have their own suite (test_wal.c).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "unit/storage/durability.h"

static size_t segments(fx *f, char paths[][600], size_t cap)
{
    return tb_segments(f->dir, paths, cap);
}

void segments_are_preallocated(void **state)
{
    fx *f = *state;
    char segs[64][600];
    size_t n = segments(f, segs, 64);
    /* The log, and the next segment if its preparation (in the background, ahead of need) ran
     * before the store closed: on a loaded machine it may not have. */
    assert_true(n >= 1);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        assert_int_equal(stat(segs[i], &st), 0);
        assert_int_equal(st.st_size, TB_SEGMENT);
    }
    /* With syncing on, a new segment is written whole (zeros), not left sparse: appends then
     * overwrite allocated blocks and a flush carries no file system metadata. */
    f->opts.sync = PSTORE_SYNC_FULL;
    f->opts.segment_size = 2 * TB_SEGMENT;
    pstore *s = NULL;
    char err[256];
    assert_int_equal(reopen(f, &s, err, sizeof(err)), 0);
    static uint8_t big[16][4096];
    praft_entry e[16];
    uint64_t next = N_ENTRIES + 1;
    for (int b = 0; b < 4; b++) {
        for (int k = 0; k < 16; k++) {
            memset(big[k], (int)next, sizeof(big[k]));
            e[k] = (praft_entry){.index = next, .term = 2, .len = sizeof(big[k]), .data = big[k]};
            next++;
        }
        pstore_batch w = {.entries = e, .n_entries = 16};
        assert_int_equal(pstore_write(s, &w), 0);
    }
    pstore_close(s);
    size_t m = segments(f, segs, 64);
    assert_true(m > n);
    struct stat st;
    assert_int_equal(stat(segs[m - 1], &st), 0);
    assert_int_equal(st.st_size, 2 * TB_SEGMENT);
    assert_true((uint64_t)st.st_blocks * 512 >= 2 * TB_SEGMENT);
    assert_int_equal(reopen(f, &s, err, sizeof(err)), 0);
    assert_int_equal(pstore_check(s), 0);
    uint64_t last;
    pstore_log_range(s, NULL, &last);
    assert_int_equal(last, next - 1);
    pstore_close(s);
}

void wal_lost_log_is_refused(void **state)
{
    fx *f = *state;
    char segs[64][600], err[256], p[400];
    pstore *s = NULL;
    size_t n = segments(f, segs, 64);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(unlink(segs[i]), 0);
    }
    f->opts.create = true; /* even when creating is allowed */
    assert_int_equal(reopen(f, &s, err, sizeof(err)), PT_ECORRUPT);
    assert_non_null(strstr(err, "no segment"));
    path_of(f, "wal", p, sizeof(p));
    assert_int_equal(rmdir(p), 0);
    assert_int_equal(reopen(f, &s, err, sizeof(err)), PT_ECORRUPT);
    assert_non_null(strstr(err, "refusing to start blank"));
    assert_null(s);
}

/* Flips a bit of entry @index's data in whichever segment holds it; *where and *off (may be
 * NULL) tell where, for flip_at to flip it back. */
static void flip_at(const char *path, size_t off)
{
    size_t len;
    uint8_t *buf = slurp(path, &len);
    assert_true(off < len);
    buf[off] ^= 0x80;
    spit(path, buf, len);
    free(buf);
}

static void flip_entry(fx *f, uint64_t index, char *where, size_t *off)
{
    char segs[64][600];
    size_t n = segments(f, segs, 64);
    uint8_t want[DATA_LEN];
    entry_data(index, want);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        uint8_t *buf = slurp(segs[i], &len);
        uint8_t *at = memmem(buf, len, want, DATA_LEN);
        size_t o = at != NULL ? (size_t)(at - buf) + 20 : 0;
        free(buf);
        if (at != NULL) {
            flip_at(segs[i], o);
            if (where != NULL) {
                memcpy(where, segs[i], 600);
                *off = o;
            }
            return;
        }
    }
    fail_msg("entry %llu not found in the segments", (unsigned long long)index);
}

void wal_flipped_entry_is_caught(void **state)
{
    fx *f = *state;
    char err[256];
    pstore *s = NULL;
    /* Every record is verified at open: a bad one with later writes after it is damage. */
    uint64_t victims[] = {10, 590, 600};
    for (int v = 0; v < 3; v++) {
        char where[600];
        size_t off = 0;
        flip_entry(f, victims[v], where, &off);
        assert_int_equal(reopen(f, &s, err, sizeof(err)), PT_ECORRUPT);
        assert_non_null(strstr(err, ".wal: offset "));
        assert_non_null(strstr(err, "later writes follow"));
        flip_at(where, off); /* back as it was */
        assert_int_equal(reopen(f, &s, err, sizeof(err)), 0);
        pstore_close(s);
    }
    /* Damage after the open is caught on read: every read verifies the entry's checksum. */
    assert_int_equal(reopen(f, &s, err, sizeof(err)), 0);
    flip_entry(f, 10, NULL, NULL);
    praft_entry out[1];
    size_t n = 0;
    assert_int_equal(pstore_entries(s, 10, 11, SIZE_MAX, out, &n), PT_ECORRUPT);
    assert_int_equal(n, 0);
    assert_non_null(strstr(pstore_last_error(s), "entry 10: entry checksum mismatch"));
    assert_non_null(strstr(pstore_last_error(s), ".wal: offset "));
    assert_int_equal(pstore_check(s), PT_ECORRUPT);
    pstore_close(s);
}

void wal_cut_segment_is_refused(void **state)
{
    fx *f = *state;
    char segs[64][600], err[256];
    pstore *s = NULL;
    assert_true(segments(f, segs, 64) >= 1);
    /* Segments are made whole before use: a crash never leaves one short. */
    assert_int_equal(truncate(segs[0], (off_t)3 * 4096), 0);
    assert_int_equal(reopen(f, &s, err, sizeof(err)), PT_ECORRUPT);
    assert_non_null(strstr(err, "was cut"));
    assert_int_equal(truncate(segs[0], 0), 0);
    assert_int_equal(reopen(f, &s, err, sizeof(err)), PT_ECORRUPT);
    assert_non_null(strstr(err, ".wal"));
}

/*
 * A bit flipped anywhere in any segment, hundreds of times, each in a child process that
 * opens the store read-only (so that each run sees the same files): the outcome must be an
 * error at open, an error from the full check, or a store whose every entry is exactly as
 * written. A flip inside the last commit (here: the one that made the snapshot current) is
 * indistinguishable from a write interrupted by a crash and is ignored (a writer would cut
 * it): the entries are intact all the same. The log never crashes the process.
 */
void wal_random_flips_never_give_wrong_data(void **state)
{
    fx *f = *state;
    char segs[64][600];
    size_t nseg = segments(f, segs, 64);
    assert_true(nseg > 0 && nseg <= 64);
    uint8_t *orig[64];
    size_t lens[64];
    for (size_t i = 0; i < nseg; i++) {
        orig[i] = slurp(segs[i], &lens[i]);
    }
    unsigned seed = (unsigned)getpid();
    const char *env = getenv("PSTORE_FLIP_SEED");
    if (env) {
        seed = (unsigned)strtoul(env, NULL, 10);
    }
    srandom(seed);
    f->opts.read_only = true;
    int counts[3] = {0};
    for (int iter = 0; iter < 300; iter++) {
        size_t k = (size_t)random() % nseg;
        /* Half the flips in the written part (the first 40 KiB), half anywhere. */
        size_t off = (size_t)random() % (iter % 2 ? lens[k] : 40960);
        uint8_t bit = (uint8_t)(1u << (random() % 8));
        orig[k][off] ^= bit;
        spit(segs[k], orig[k], lens[k]);
        orig[k][off] ^= bit;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            signal(SIGSEGV, SIG_DFL);
            signal(SIGBUS, SIG_DFL);
            signal(SIGABRT, SIG_DFL);
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
        if (!WIFEXITED(st) || WEXITSTATUS(st) < 10 || WEXITSTATUS(st) > 12) {
            fail_msg("seed %u: flip in %s at offset %zu gave wrong data, no message or a crash "
                     "(status %d)",
                     seed, segs[k], off, st);
        }
        counts[WEXITSTATUS(st) - 10]++;
    }
    for (size_t i = 0; i < nseg; i++) {
        spit(segs[i], orig[i], lens[i]);
        free(orig[i]);
    }
    /* Flips in the records are caught (the written part is most of the first 40 KiB). */
    assert_true(counts[0] > 0);
    print_message("random flips (seed %u): %d refused at open, %d by the check, %d harmless\n",
                  seed, counts[0], counts[1], counts[2]);
}

static void batch_of(uint64_t first, praft_entry *e, uint8_t data[][1024], int n)
{
    for (int k = 0; k < n; k++) {
        memset(data[k], (int)(first + (uint64_t)k), 1024);
        e[k] = (praft_entry){.index = first + (uint64_t)k, .term = 3, .len = 1024, .data = data[k]};
    }
}

/*
 * A full disk (here: a file size limit, which makes writes fail with EFBIG as ENOSPC would),
 * hit in the middle of an append inside a preallocated segment: the write fails with
 * PT_ENOSPC and a message, the store is as before, the same write succeeds once there is room
 * again, and everything acknowledged is there after reopening. A segment that cannot be
 * prepared for lack of room fails a rotation the same way.
 */
void wal_full_disk_loses_nothing(void **state)
{
    fx *f = *state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        pstore *s = NULL;
        char err[256];
        f->opts.sync = PSTORE_SYNC_FULL;
        f->opts.segment_size = 1 << 20;
        if (pstore_open(f->dir, &f->opts, &s, err, sizeof(err)) != 0) {
            _exit(2);
        }
        static uint8_t data[64][1024];
        praft_entry e[64];
        uint64_t last = N_ENTRIES;
        int fulls = 0;
        for (int b = 0; b < 200 && fulls < 2; b++) {
            batch_of(last + 1, e, data, 64);
            pstore_batch w = {.entries = e, .n_entries = 64};
            int rv = pstore_write(s, &w);
            if (rv == PT_ENOSPC && strstr(pstore_last_error(s), "no space") != NULL) {
                /* As before: the last acknowledged entry is the last one. */
                uint64_t l2;
                pstore_log_range(s, NULL, &l2);
                if (l2 != last) {
                    _exit(6);
                }
                /* Room again: the same write goes through. */
                struct rlimit rl;
                getrlimit(RLIMIT_FSIZE, &rl);
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_FSIZE, &rl);
                fulls++;
                if (pstore_write(s, &w) != 0) {
                    fprintf(stderr, "child: after space came back: %s\n", pstore_last_error(s));
                    _exit(7);
                }
            } else if (rv != 0) {
                fprintf(stderr, "child: %s: %s\n", pt_error_name(rv), pstore_last_error(s));
                _exit(3);
            }
            last += 64;
            if (write(fds[1], &last, sizeof(last)) != sizeof(last)) {
                _exit(4);
            }
            if (b == 0 || fulls == 1) {
                /* The first write moved into a 1 MiB segment: let it fill up to 600 KiB
                 * (mid-append failure); then, after space came back once, limit again below
                 * what the next segment needs (its preparation fails). */
                struct rlimit rl;
                getrlimit(RLIMIT_FSIZE, &rl);
                rl.rlim_cur = (rlim_t)(fulls == 0 ? 600 << 10 : 1000 << 10);
                setrlimit(RLIMIT_FSIZE, &rl);
                if (fulls == 1) {
                    fulls = 3; /* stop at the next ENOSPC */
                }
            }
        }
        pstore_close(s);
        _exit(fulls >= 3 ? 0 : 5);
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
    assert_true(acked > N_ENTRIES + 64);
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
