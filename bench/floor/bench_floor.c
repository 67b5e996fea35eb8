/*
 * bench-floor: what the machine itself allows, measured by bench/run in the same run as the
 * clusters so that their figures can be read against it.
 *
 *   bench-floor [--dir DIR] [--seconds S]
 *
 * prints one JSON object: the rate and latency of write(64 bytes) + fdatasync appending to a
 * file in DIR (the floor of one durable log append), and the round-trip time of 64 bytes over
 * a TCP connection on 127.0.0.1 with TCP_NODELAY, echoed by a second thread (the floor of one
 * message and its answer between two processes of the cluster).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG         64
#define MAX_SAMPLES 2000000

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Percentile @q of @n sorted samples, in microseconds. */
static double pct_us(const uint64_t *s, size_t n, double q)
{
    if (n == 0) {
        return 0;
    }
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return (double)s[i] / 1e3;
}

/* write+fdatasync appending to a new file in @dir for @secs; fills the samples. */
static int measure_fsync(const char *dir, double secs, uint64_t *s, size_t *n, double *rate)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/bench-floor.%d", dir, (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    if (fd < 0) {
        fprintf(stderr, "bench-floor: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char buf[MSG];
    memset(buf, 'x', sizeof(buf));
    uint64_t start = now_ns(), end = start + (uint64_t)(secs * 1e9), t = start;
    int rc = 0;
    *n = 0;
    while (t < end && *n < MAX_SAMPLES) {
        if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || fdatasync(fd) != 0) {
            fprintf(stderr, "bench-floor: writing %s: %s\n", path, strerror(errno));
            rc = -1;
            break;
        }
        uint64_t t2 = now_ns();
        s[(*n)++] = t2 - t;
        t = t2;
    }
    *rate = (double)*n / ((double)(t - start) / 1e9);
    close(fd);
    unlink(path);
    return rc;
}

static void *echo_main(void *arg)
{
    int fd = *(int *)arg;
    char buf[MSG];
    for (;;) {
        size_t got = 0;
        while (got < sizeof(buf)) {
            ssize_t r = read(fd, buf + got, sizeof(buf) - got);
            if (r <= 0) {
                return NULL;
            }
            got += (size_t)r;
        }
        if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
            return NULL;
        }
    }
}

static int measure_rtt(double secs, uint64_t *s, size_t *n)
{
    int one = 1, rc = -1;
    int lfd = socket(AF_INET, SOCK_STREAM, 0), cfd = -1, afd = -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    pthread_t echo;
    int started = 0;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) != 0) {
        goto cleanup;
    }
    cfd = socket(AF_INET, SOCK_STREAM, 0);
    if (cfd < 0 || connect(cfd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        goto cleanup;
    }
    afd = accept(lfd, NULL, NULL);
    if (afd < 0) {
        goto cleanup;
    }
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(afd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (pthread_create(&echo, NULL, echo_main, &afd) != 0) {
        goto cleanup;
    }
    started = 1;
    char buf[MSG];
    memset(buf, 'y', sizeof(buf));
    uint64_t end = now_ns() + (uint64_t)(secs * 1e9);
    *n = 0;
    rc = 0;
    while (now_ns() < end && *n < MAX_SAMPLES) {
        uint64_t t = now_ns();
        if (write(cfd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
            rc = -1;
            break;
        }
        size_t got = 0;
        while (got < sizeof(buf)) {
            ssize_t r = read(cfd, buf + got, sizeof(buf) - got);
            if (r <= 0) {
                rc = -1;
                break;
            }
            got += (size_t)r;
        }
        if (rc != 0) {
            break;
        }
        s[(*n)++] = now_ns() - t;
    }
cleanup:
    if (cfd >= 0) {
        shutdown(cfd, SHUT_RDWR); /* ends the echo thread's read */
    }
    if (started) {
        pthread_join(echo, NULL);
    }
    if (afd >= 0) {
        close(afd);
    }
    if (cfd >= 0) {
        close(cfd);
    }
    if (lfd >= 0) {
        close(lfd);
    }
    if (rc != 0) {
        fprintf(stderr, "bench-floor: loopback round trips: %s\n", strerror(errno));
    }
    return rc;
}

int main(int argc, char **argv)
{
    const char *dir = ".";
    double secs = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            secs = strtod(argv[++i], NULL);
        } else {
            fprintf(stderr, "usage: bench-floor [--dir DIR] [--seconds S]\n");
            return 2;
        }
    }
    if (!(secs > 0 && secs <= 600)) {
        fprintf(stderr, "bench-floor: --seconds must be in (0, 600]\n");
        return 2;
    }
    uint64_t *s = malloc(MAX_SAMPLES * sizeof(*s));
    if (s == NULL) {
        fprintf(stderr, "bench-floor: out of memory\n");
        return 1;
    }
    size_t n_sync = 0, n_rtt = 0;
    double rate = 0;
    int status = 1;
    if (measure_fsync(dir, secs, s, &n_sync, &rate) != 0) {
        goto out;
    }
    qsort(s, n_sync, sizeof(*s), cmp_u64);
    double f50 = pct_us(s, n_sync, 0.5), f99 = pct_us(s, n_sync, 0.99);
    if (measure_rtt(secs, s, &n_rtt) != 0) {
        goto out;
    }
    qsort(s, n_rtt, sizeof(*s), cmp_u64);
    printf("{\"fdatasync_per_s\": %.1f, \"fdatasync_p50_us\": %.1f, \"fdatasync_p99_us\": %.1f, "
           "\"loopback_rtt_p50_us\": %.1f, \"loopback_rtt_p99_us\": %.1f}\n",
           rate, f50, f99, pct_us(s, n_rtt, 0.5), pct_us(s, n_rtt, 0.99));
    status = 0;
out:
    free(s);
    return status;
}
