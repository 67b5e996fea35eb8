/*
 * Crash test: a child process appends batches in full sync mode and reports the last index of
 * each batch whose write returned; the parent kills it with SIGKILL at a random moment, then
 * reopens the store and checks that every reported batch is there and intact, that no partial
 * batch is visible, that the hard state written with each batch is exactly that batch's, and
 * that the log is contiguous.
 *
 * It runs once per durable engine: LMDB, and the write-ahead log with small segments so that
 * kills also land while a segment is being prepared, rotated to or removed.
 *
 * PSTORE_CRASH_ITERATIONS (default 200) and PSTORE_CRASH_SEED change the run; a failure
 * prints the seed that reproduces the sequence of batch sizes and kill delays.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "platoon/storage.h"
#include "unit/storage/backend.h"

/* Entry data: its index, the first and last index of its batch, the batch's number (counted
 * across all children), then filler. */
#define WORDS 4
static void fill(uint8_t *d, uint32_t len, uint64_t index, uint64_t lo, uint64_t hi, uint64_t batch)
{
    uint64_t w[WORDS] = {index, lo, hi, batch};
    memcpy(d, w, sizeof(w));
    for (uint32_t k = sizeof(w); k < len; k++) {
        d[k] = (uint8_t)(index + k);
    }
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static const test_backend *engine;

static void child(const char *dir, int fd, uint64_t seed)
{
    pstore_options o;
    pstore_options_init(&o, 3, 1);
    o.create = true;
    o.engine = engine->engine;
    o.segment_size = TB_SEGMENT;
    o.sync = PSTORE_SYNC_FULL;
    o.initial_map_size = 1 << 20; /* small, so that the map grows during the test */
    pstore *s = NULL;
    char err[256];
    if (pstore_open(dir, &o, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "child: %s\n", err);
        _exit(2);
    }
    uint64_t last, batch = 0;
    pstore_log_range(s, NULL, &last);
    if (last > 0) {
        praft_entry t;
        size_t got = 0;
        uint64_t w[WORDS];
        if (pstore_entries(s, last, last + 1, SIZE_MAX, &t, &got) != 0 || got != 1) {
            _exit(5);
        }
        memcpy(w, t.data, sizeof(w));
        batch = w[3];
        pstore_entries_free(&t, 1);
    }
    static praft_entry e[300];
    static uint8_t data[300][96];
    for (int b = 0; b < 100000; b++) {
        size_t n = 1 + rng_next(&seed) % 100;
        batch++;
        /* Now and then, overwrite a suffix, as a follower does on a conflict (§5.3). */
        uint64_t lo = last + 1;
        if (last > 10 && rng_next(&seed) % 8 == 0) {
            lo = last - rng_next(&seed) % 5;
        }
        for (size_t i = 0; i < n; i++) {
            uint32_t len = 32 + (uint32_t)(rng_next(&seed) % 64);
            fill(data[i], len, lo + i, lo, lo + n - 1, batch);
            e[i] = (praft_entry){.index = lo + i, .term = 1, .len = len, .data = data[i]};
        }
        praft_hard_state hs = {.term = 1, .vote = 1, .commit = lo + n - 1};
        pstore_batch w = {.entries = e, .n_entries = n, .hard_state = &hs};
        if (pstore_write(s, &w) != 0) {
            fprintf(stderr, "child: %s\n", pstore_last_error(s));
            _exit(3);
        }
        last = lo + n - 1;
        if (write(fd, &batch, sizeof(batch)) != sizeof(batch)) {
            _exit(4);
        }
    }
    _exit(0);
}

/* @reported: the number of the last batch whose write returned. */
static void verify(const char *dir, uint64_t reported, uint64_t seed)
{
    pstore_options o;
    pstore_options_init(&o, 3, 1);
    pstore *s = NULL;
    char err[256];
    int rv = pstore_open(dir, &o, &s, err, sizeof(err));
    if (rv == PT_ENOTFOUND && reported == 0) {
        return; /* killed while initialising: nothing was acknowledged, nothing is there */
    }
    if (rv != 0) {
        fail_msg("seed %llu: reopen failed: %s", (unsigned long long)seed, err);
    }
    uint64_t first, last;
    pstore_log_range(s, &first, &last);
    praft_hard_state hs;
    pstore_hard_state(s, &hs);
    /* The hard state and the entries of a batch are one transaction. */
    if (hs.commit != last) {
        fail_msg("seed %llu: hard state commit %llu but last index %llu: torn batch",
                 (unsigned long long)seed, (unsigned long long)hs.commit, (unsigned long long)last);
    }
    assert_int_equal(pstore_check(s), 0);
    uint64_t at = first, newest_lo = 0, newest_batch = 0;
    praft_entry *out = calloc(512, sizeof(*out));
    while (at <= last) {
        uint64_t hi = last + 1 - at > 512 ? at + 512 : last + 1;
        size_t n = 0;
        assert_int_equal(pstore_entries(s, at, hi, SIZE_MAX, out, &n), 0);
        for (size_t i = 0; i < n; i++) {
            uint64_t w[WORDS];
            assert_true(out[i].len >= sizeof(w));
            memcpy(w, out[i].data, sizeof(w));
            uint8_t want[96];
            fill(want, out[i].len, w[0], w[1], w[2], w[3]);
            if (w[0] != at + i || memcmp(want, out[i].data, out[i].len) != 0) {
                fail_msg("seed %llu: entry %llu damaged (batch %llu..%llu, last %llu)",
                         (unsigned long long)seed, (unsigned long long)(at + i),
                         (unsigned long long)w[1], (unsigned long long)w[2],
                         (unsigned long long)last);
            }
        }
        /* The entry at `last` ends its batch: no partial batch is visible. */
        if (at + n - 1 == last) {
            uint64_t w[WORDS];
            memcpy(w, out[n - 1].data, sizeof(w));
            /* Every batch whose write returned is there (or a later one that replaced it). */
            if (w[3] < reported) {
                fail_msg("seed %llu: acknowledged batch %llu lost: the newest is batch %llu",
                         (unsigned long long)seed, (unsigned long long)reported,
                         (unsigned long long)w[3]);
            }
            if (w[2] != last) {
                fail_msg("seed %llu: partial batch %llu..%llu visible up to %llu",
                         (unsigned long long)seed, (unsigned long long)w[1],
                         (unsigned long long)w[2], (unsigned long long)last);
            }
            newest_lo = w[1];
            newest_batch = w[3];
        }
        pstore_entries_free(out, n);
        at += n;
    }
    /* The newest batch is visible whole: every entry from its first index on is its own
     * (older entries before it may belong to batches it partly replaced, §5.3). */
    if (last >= first && newest_lo >= first) {
        size_t n = 0;
        assert_int_equal(pstore_entries(s, newest_lo, last + 1, SIZE_MAX, out, &n), 0);
        assert_int_equal(n, last + 1 - newest_lo);
        for (size_t i = 0; i < n; i++) {
            uint64_t w[WORDS];
            memcpy(w, out[i].data, sizeof(w));
            if (w[3] != newest_batch) {
                fail_msg("seed %llu: entry %llu of batch %llu inside the newest batch %llu",
                         (unsigned long long)seed, (unsigned long long)(newest_lo + i),
                         (unsigned long long)w[3], (unsigned long long)newest_batch);
            }
        }
        pstore_entries_free(out, n);
    }
    free(out);
    pstore_close(s);
}

static void kill_at_random_moments(void **state)
{
    engine = *state;
    int iterations = 200;
    const char *env = getenv("PSTORE_CRASH_ITERATIONS");
    if (env) {
        iterations = atoi(env);
    }
    uint64_t seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 16;
    env = getenv("PSTORE_CRASH_SEED");
    if (env) {
        seed = strtoull(env, NULL, 10);
    }
    print_message("crash test (%s): seed %llu, %d iterations (PSTORE_CRASH_SEED to replay)\n",
                  engine->name, (unsigned long long)seed, iterations);
    char parent[200], dir[256];
    tb_tmpdir(parent, sizeof(parent));
    int epoch = 0;
    snprintf(dir, sizeof(dir), "%s/data-%d", parent, epoch);
    uint64_t rng = seed | 1, reported = 0, kills_mid_write = 0, acknowledged = 0;
    for (int it = 0; it < iterations; it++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        uint64_t child_seed = rng_next(&rng);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child(dir, fds[1], child_seed);
        }
        close(fds[1]);
        /* Let it run 1..40 ms (more than enough for several synced batches), reading its
         * reports meanwhile, then kill it wherever it is. */
        struct timespec t0, now;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        long run_ms = 1 + (long)(rng_next(&rng) % 40);
        for (;;) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            long el = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
            if (el >= run_ms) {
                break;
            }
            struct pollfd p = {.fd = fds[0], .events = POLLIN};
            if (poll(&p, 1, (int)(run_ms - el)) > 0) {
                uint64_t v;
                ssize_t r = read(fds[0], &v, sizeof(v));
                if (r == sizeof(v)) {
                    reported = v;
                } else if (r == 0) {
                    break;
                }
            }
        }
        kill(pid, SIGKILL);
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        /* Reports written before the kill are still in the pipe. */
        uint64_t v;
        while (read(fds[0], &v, sizeof(v)) == sizeof(v)) {
            reported = v;
            kills_mid_write++;
        }
        close(fds[0]);
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) {
            fail_msg("seed %llu: child ended by itself (status %d)", (unsigned long long)seed, st);
        }
        verify(dir, reported, seed);
        /* Start over in a fresh directory now and then: on a fast disk (a tmpfs /tmp) the log
         * would otherwise grow by thousands of batches per kill, and verifying all of it after
         * every kill would make the test quadratic. */
        if (reported > 2000) {
            acknowledged += reported;
            reported = 0;
            tb_rmrf(dir);
            snprintf(dir, sizeof(dir), "%s/data-%d", parent, ++epoch);
        }
    }
    acknowledged += reported;
    print_message("crash test: %d kills, %llu batches acknowledged, %llu reports read after "
                  "the kill\n",
                  iterations, (unsigned long long)acknowledged,
                  (unsigned long long)kills_mid_write);
    tb_rmrf(parent);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(kill_at_random_moments, &tb_backends[1]),
        cmocka_unit_test_prestate(kill_at_random_moments, &tb_backends[2]),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
