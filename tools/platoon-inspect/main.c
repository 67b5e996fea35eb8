/*
 * platoon-inspect DIR [--cluster NAME --node ID]: prints what a data directory holds (identity,
 * hard state, configuration, log range, snapshots) and checks its integrity (every entry's
 * checksum, the log's contiguity, every snapshot). Exits 0 if all is well, 1 with one line
 * naming the file, the index and what is wrong otherwise, 2 on a usage error.
 *
 * Both storage engines are read: the write-ahead log (DIR/wal, format version 2) and LMDB
 * (DIR/log, format version 1). The directory is opened read-only: a write-ahead log whose
 * last write never completed (a torn tail) is shown without it, and the library's warning
 * says what a node would cut at its next start; nothing is changed.
 *
 * The check runs in a child process: LMDB does not checksum its own B-tree pages, and a
 * damaged page can make it crash; the parent then reports that instead of dying.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/checksum.h"
#include "platoon/storage.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: platoon-inspect DATA_DIR [--cluster NAME --node ID]\n"
                 "  prints what a node's data directory holds and checks its integrity\n"
                 "  --cluster NAME  the cluster name given to platoond --cluster-name\n"
                 "                  (default platoon), or the numeric cluster id it prints\n"
                 "  --node ID       the node's id; with --cluster, also checks that the\n"
                 "                  directory belongs to that node\n"
                 "  --help, -h\n"
                 "exit codes: 0 all is well, 1 damaged or unreadable, 2 usage error\n");
}

/* The cluster id platoond derives from its --cluster-name; a number is taken as the id. */
static uint64_t cluster_id_of(const char *v)
{
    char *end = NULL;
    unsigned long long n = strtoull(v, &end, 10);
    if (*v >= '0' && *v <= '9' && end != NULL && *end == '\0' && n != 0) {
        return n;
    }
    uint64_t cid = pt__checksum(v, strlen(v));
    return cid != 0 ? cid : 1;
}

static const char *role(uint8_t r)
{
    return r == PRAFT_ROLE_VOTER ? "voter" : r == PRAFT_ROLE_LEARNER ? "learner" : "-";
}

static int inspect(const char *dir, uint64_t cluster, uint64_t node)
{
    pstore_options o;
    pstore_options_init(&o, cluster, node);
    o.read_only = true; /* it only checks: a read-only directory or file system is fine */
    pstore *s = NULL;
    char err[512];
    int rv = pstore_open(dir, &o, &s, err, sizeof(err));
    if (rv != 0) {
        fprintf(stderr, "platoon-inspect: %s (%s)\n", err, pt_error_name(rv));
        return 1;
    }
    uint64_t c, n, first, last;
    uint32_t version;
    pstore_identity(s, &c, &n, &version);
    printf("data dir:    %s\n", dir);
    printf("identity:    cluster %" PRIu64 " node %" PRIu64 ", format version %u (%s)\n", c, n,
           version,
           version == PSTORE_FORMAT_WAL    ? "write-ahead log"
           : version == PSTORE_FORMAT_LMDB ? "LMDB"
                                           : "unknown");
    praft_hard_state hs;
    pstore_hard_state(s, &hs);
    printf("hard state:  term %" PRIu64 " vote %" PRIu64 " commit %" PRIu64 "\n", hs.term, hs.vote,
           hs.commit);
    bool has = false;
    uint64_t cidx = 0;
    static praft_config cfg;
    pstore_config(s, &has, &cidx, &cfg);
    if (has) {
        printf("config:      at index %" PRIu64 "%s\n", cidx, cfg.joint ? " (joint)" : "");
        for (uint32_t i = 0; i < cfg.n_members; i++) {
            const praft_member *m = &cfg.members[i];
            printf("             %" PRIu64 " %s%s%s %s\n", m->id, role(m->role),
                   cfg.joint ? " was " : "", cfg.joint ? role(m->old_role) : "", m->address);
        }
    } else {
        printf("config:      none\n");
    }
    pstore_log_range(s, &first, &last);
    uint64_t base_term = 0;
    pstore_term(s, first - 1, &base_term);
    printf("log:         %" PRIu64 "..%" PRIu64 " (%" PRIu64 " entries; entry %" PRIu64
           " has term %" PRIu64 ")\n",
           first, last, last + 1 - first, first - 1, base_term);
    pstore_snap_info snaps[64];
    size_t k = 0;
    pstore_snap_list(s, snaps, 64, &k);
    printf("snapshots:   %zu\n", k);
    for (size_t i = 0; i < k; i++) {
        printf("             index %" PRIu64 " term %" PRIu64 " size %" PRIu64 " (raw %" PRIu64
               ") xxh3 %016" PRIx64 " checksum ok%s\n",
               snaps[i].index, snaps[i].term, snaps[i].size, snaps[i].raw_size, snaps[i].checksum,
               snaps[i].current ? " (current)" : "");
    }
    fflush(stdout);
    rv = pstore_check(s);
    if (rv != 0) {
        fprintf(stderr, "platoon-inspect: %s (%s)\n", pstore_last_error(s), pt_error_name(rv));
        pstore_close(s);
        return 1;
    }
    printf("integrity:   ok (every entry and snapshot verified)\n");
    pstore_close(s);
    return 0;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    uint64_t cluster = 0, node = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--cluster") == 0 && i + 1 < argc && argv[i + 1][0] != '\0') {
            cluster = cluster_id_of(argv[++i]);
        } else if (strcmp(argv[i], "--node") == 0 && i + 1 < argc) {
            char *end = NULL;
            node = strtoull(argv[++i], &end, 10);
            if (*argv[i] == '-' || *end != '\0' || node == 0) {
                fprintf(stderr, "platoon-inspect: --node must be a positive integer\n");
                return 2;
            }
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "platoon-inspect: unknown flag %s (see --help)\n", argv[i]);
            return 2;
        } else if (dir == NULL) {
            dir = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (dir == NULL || (cluster == 0) != (node == 0)) {
        usage(stderr);
        return 2;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("platoon-inspect: fork");
        return 1;
    }
    if (pid == 0) {
        int rv = inspect(dir, cluster, node);
        fflush(stdout);
        fflush(stderr);
        _exit(rv);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid) {
        perror("platoon-inspect: waitpid");
        return 1;
    }
    if (WIFSIGNALED(st)) {
        char lmdb[4096];
        struct stat sb;
        snprintf(lmdb, sizeof(lmdb), "%s/log/data.mdb", dir);
        if (stat(lmdb, &sb) == 0) {
            fprintf(stderr,
                    "platoon-inspect: %s: LMDB crashed (signal %d) reading it: its B-tree pages "
                    "are damaged\n",
                    lmdb, WTERMSIG(st));
        } else {
            fprintf(stderr, "platoon-inspect: %s: the check crashed (signal %d)\n", dir,
                    WTERMSIG(st));
        }
        return 1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
