#include "unit/storage/backend.h"

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

test_backend tb_backends[3] = {
    {.name = "memory", .durable = false, .format = PSTORE_FORMAT_VERSION},
    {.name = "lmdb", .durable = true, .engine = PSTORE_ENGINE_LMDB, .format = PSTORE_FORMAT_LMDB},
    {.name = "wal", .durable = true, .engine = PSTORE_ENGINE_WAL, .format = PSTORE_FORMAT_WAL},
};

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tb_rmrf(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void tb_tmpdir(char *out, size_t cap)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, cap, "%s/pstore-test-XXXXXX", base ? base : "/tmp");
    if (mkdtemp(out) == NULL) {
        abort();
    }
}

int tb_open(test_backend *b, const pstore_options *opts, pstore **out)
{
    if (!b->durable) {
        return pstore_open_memory(opts, out);
    }
    char parent[200];
    tb_tmpdir(parent, sizeof(parent));
    snprintf(b->dir, sizeof(b->dir), "%s/data", parent);
    pstore_options o = *opts;
    o.create = true;
    o.engine = b->engine;
    o.segment_size = TB_SEGMENT;
    char err[256];
    return pstore_open(b->dir, &o, out, err, sizeof(err));
}

int tb_reopen(test_backend *b, pstore **s, const pstore_options *opts)
{
    pstore_close(*s);
    *s = NULL;
    char err[256];
    return pstore_open(b->dir, opts, s, err, sizeof(err));
}

void tb_close(test_backend *b, pstore *s)
{
    pstore_close(s);
    if (b->durable) {
        char parent[256];
        snprintf(parent, sizeof(parent), "%s", b->dir);
        char *slash = strrchr(parent, '/');
        if (slash != NULL) {
            *slash = '\0';
            tb_rmrf(parent);
        }
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t tb_segments(const char *dir, char paths[][600], size_t cap)
{
    char wal[400];
    snprintf(wal, sizeof(wal), "%s/wal", dir);
    DIR *d = opendir(wal);
    if (d == NULL) {
        return 0;
    }
    char *names[256];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < 256) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".wal") == 0) {
            names[n++] = strdup(de->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), cmp_str); /* names sort as their numbers */
    for (size_t i = 0; i < n; i++) {
        if (i < cap) {
            snprintf(paths[i], 600, "%s/%s", wal, names[i]);
        }
        free(names[i]);
    }
    return n;
}
