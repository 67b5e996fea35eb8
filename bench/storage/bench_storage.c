/*
 * bench-storage [--dir DIR] [--seconds S] [--engine wal|lmdb|both]: appends per second and
 * entries per second of the store in full sync mode, for each engine (the write-ahead log and
 * LMDB), at batch sizes 1, 16, 20 and 256 (64-byte entries), next to the raw rate of
 * write(64 bytes) + fdatasync on a file in the same directory, appending and overwriting a
 * preallocated region, measured in the same run: the physical limit of one synced append on
 * this disk. Each store row writes for half its time (at most 1 s) before it is timed, so that
 * the write-ahead log's first segment preparation (64 MiB of zeros, flushed) is not counted:
 * it happens once per 64 MiB of log.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "platoon/storage.h"

#define ENTRY_BYTES 64

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* CPU time (user + system) of this thread so far, in µs: what a write costs beyond its wait. */
static double cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int rm_tree(const char *dir)
{
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

/* write + fdatasync of 64 bytes appended to a file, as many times as fit in @secs. */
static double raw_rate(const char *dir, double secs, bool append, double *cpu_per_op)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/raw.dat", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        perror("open");
        exit(1);
    }
    char buf[ENTRY_BYTES];
    memset(buf, 'x', sizeof(buf));
    if (!append) {
        /* Preallocated and synced: later syncs flush data only, no file size change. */
        for (int i = 0; i < 4096; i++) {
            if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
                exit(1);
            }
        }
        fsync(fd);
    }
    long n = 0;
    double c0 = cpu_us();
    double t0 = now(), t;
    do {
        ssize_t w = append ? write(fd, buf, sizeof(buf))
                           : pwrite(fd, buf, sizeof(buf), (off_t)((n % 4096) * ENTRY_BYTES));
        if (w != (ssize_t)sizeof(buf) || fdatasync(fd) != 0) {
            perror("write/fdatasync");
            exit(1);
        }
        n++;
        t = now();
    } while (t - t0 < secs);
    *cpu_per_op = (cpu_us() - c0) / (double)n;
    close(fd);
    unlink(path);
    return (double)n / (t - t0);
}

static double store_rate(const char *dir, uint32_t engine, size_t batch, double secs,
                         double *entries_per_s, double *cpu_per_op)
{
    char path[600], err[512];
    snprintf(path, sizeof(path), "%s/store-%zu", dir, batch);
    rm_tree(path);
    pstore_options o;
    pstore_options_init(&o, 1, 1);
    o.create = true;
    o.sync = PSTORE_SYNC_FULL;
    o.engine = engine;
    pstore *s = NULL;
    if (pstore_open(path, &o, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench-storage: %s\n", err);
        exit(1);
    }
    praft_entry *e = calloc(batch, sizeof(*e));
    uint8_t *data = calloc(batch, ENTRY_BYTES);
    for (size_t i = 0; i < batch; i++) {
        memset(data + i * ENTRY_BYTES, (int)i, ENTRY_BYTES);
        e[i].term = 1;
        e[i].len = ENTRY_BYTES;
        e[i].data = data + i * ENTRY_BYTES;
    }
    uint64_t next = 1;
    long n = 0;
    praft_hard_state hs = {.term = 1, .vote = 1};
    double warm = secs / 2 < 1 ? secs / 2 : 1;
    for (double w0 = now(); now() - w0 < warm;) {
        for (size_t i = 0; i < batch; i++) {
            e[i].index = next + i;
        }
        hs.commit = next;
        pstore_batch w = {.entries = e, .n_entries = batch, .hard_state = &hs};
        if (pstore_write(s, &w) != 0) {
            fprintf(stderr, "bench-storage: %s\n", pstore_last_error(s));
            exit(1);
        }
        next += batch;
    }
    double c0 = cpu_us();
    double t0 = now(), t;
    do {
        for (size_t i = 0; i < batch; i++) {
            e[i].index = next + i;
        }
        hs.commit = next;
        pstore_batch w = {.entries = e, .n_entries = batch, .hard_state = &hs};
        if (pstore_write(s, &w) != 0) {
            fprintf(stderr, "bench-storage: %s\n", pstore_last_error(s));
            exit(1);
        }
        next += batch;
        n++;
        t = now();
    } while (t - t0 < secs);
    *cpu_per_op = (cpu_us() - c0) / (double)n;
    pstore_close(s);
    rm_tree(path);
    free(e);
    free(data);
    *entries_per_s = (double)(n * (long)batch) / (t - t0);
    return (double)n / (t - t0);
}

int main(int argc, char **argv)
{
    const char *dir = ".";
    double secs = 3;
    const char *which = "both";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            secs = atof(argv[++i]);
        } else if (strcmp(argv[i], "--engine") == 0 && i + 1 < argc &&
                   (strcmp(argv[i + 1], "wal") == 0 || strcmp(argv[i + 1], "lmdb") == 0 ||
                    strcmp(argv[i + 1], "both") == 0)) {
            which = argv[++i];
        } else {
            fprintf(stderr,
                    "usage: bench-storage [--dir DIR] [--seconds S] [--engine wal|lmdb|both]\n");
            return 2;
        }
    }
    char work[512];
    snprintf(work, sizeof(work), "%s/bench-storage.%d", dir, (int)getpid());
    if (mkdir(work, 0700) != 0) {
        perror("bench-storage: mkdir");
        return 1;
    }
    double cpu_append = 0, cpu_over = 0;
    double raw_append = raw_rate(work, secs, true, &cpu_append);
    double raw_over = raw_rate(work, secs, false, &cpu_over);
    printf("%-36s %12s %14s %9s %9s %9s %12s\n", "what (64-byte entries, full sync)", "appends/s",
           "entries/s", "vs app.", "vs over.", "vs near", "cpu/append");
    printf("%-36s %12.0f %14.0f %9s %9s %9s %10.0fus\n", "raw write+fdatasync, appending",
           raw_append, raw_append, "100%", "", "", cpu_append);
    printf("%-36s %12.0f %14.0f %9s %9s %9s %10.0fus\n", "raw write+fdatasync, overwriting",
           raw_over, raw_over, "", "100%", "", cpu_over);
    /* 20 is about what one write carries in a 3-node cluster at 64 clients. */
    size_t batches[] = {1, 16, 20, 256};
    const struct {
        const char *name;
        uint32_t engine;
    } engines[] = {{"wal", PSTORE_ENGINE_WAL}, {"lmdb", PSTORE_ENGINE_LMDB}};
    for (size_t k = 0; k < 2; k++) {
        if (strcmp(which, "both") != 0 && strcmp(which, engines[k].name) != 0) {
            continue;
        }
        for (size_t i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
            /* On a shared machine the disk's rate moves from one second to the next: "vs near"
             * compares with the raw overwriting rate measured just before and just after. */
            double eps = 0, cpu = 0, c = 0, near = raw_rate(work, 1, false, &c) / 2;
            double aps = store_rate(work, engines[k].engine, batches[i], secs, &eps, &cpu);
            near += raw_rate(work, 1, false, &c) / 2;
            char label[64];
            snprintf(label, sizeof(label), "%s pstore_write, batch %zu", engines[k].name,
                     batches[i]);
            printf("%-36s %12.0f %14.0f %8.0f%% %8.0f%% %8.0f%% %10.0fus\n", label, aps, eps,
                   100.0 * aps / raw_append, 100.0 * aps / raw_over, 100.0 * aps / near, cpu);
            fflush(stdout);
        }
    }
    rm_tree(work);
    return 0;
}
