/*
 * Recovery of the write-ahead log (src/storage/wal_open.c): a torn tail (a write that never
 * completed) is cut at open and every acknowledged write kept; damage anywhere else is
 * PT_ECORRUPT naming the file; segments rotate, are dropped by purges, and survive a crash
 * between being prepared and being used. The damage is made by editing the segment files
 * the way a crash or a bad disk would leave them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "platoon/storage.h"
#include "unit/storage/backend.h"

typedef struct fx {
    char parent[200];
    char dir[256];
    pstore_options opts;
    pstore *s;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    tb_tmpdir(f->parent, sizeof(f->parent));
    snprintf(f->dir, sizeof(f->dir), "%s/data", f->parent);
    pstore_options_init(&f->opts, 7, 1);
    f->opts.sync = PSTORE_SYNC_NONE; /* the damage is made by hand: no flush needed */
    f->opts.segment_size = TB_SEGMENT;
    f->opts.create = true;
    char err[256];
    assert_int_equal(pstore_open(f->dir, &f->opts, &f->s, err, sizeof(err)), 0);
    f->opts.create = false;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    pstore_close(f->s);
    tb_rmrf(f->parent);
    free(f);
    return 0;
}

static int reopen(fx *f, char *err, size_t cap)
{
    pstore_close(f->s);
    f->s = NULL;
    return pstore_open(f->dir, &f->opts, &f->s, err, cap);
}

/* Entry i of generation @gen: len 20 + i % 60, bytes derived from both, never all zero. */
static uint32_t data_of(uint64_t i, uint64_t gen, uint8_t *d)
{
    uint32_t len = 20 + (uint32_t)(i % 60);
    for (uint32_t k = 0; k < len; k++) {
        d[k] = (uint8_t)(1 + (i * 7 + k + gen * 13) % 250);
    }
    return len;
}

/* Writes entries lo..hi of term @term, generation @gen, with a hard state committing hi. */
static void put(pstore *s, uint64_t lo, uint64_t hi, uint64_t term, uint64_t gen)
{
    size_t n = hi - lo + 1;
    praft_entry *e = calloc(n, sizeof(*e));
    uint8_t(*d)[100] = calloc(n, sizeof(*d));
    for (size_t k = 0; k < n; k++) {
        e[k] = (praft_entry){.index = lo + k, .term = term, .data = d[k]};
        e[k].len = data_of(lo + k, gen, d[k]);
    }
    praft_hard_state hs = {.term = term, .vote = 1, .commit = hi};
    pstore_batch w = {.entries = e, .n_entries = n, .hard_state = &hs};
    assert_int_equal(pstore_write(s, &w), 0);
    free(e);
    free(d);
}

/* Entries lo..hi are those of generation @gen and term @term. */
static void expect(pstore *s, uint64_t lo, uint64_t hi, uint64_t term, uint64_t gen)
{
    size_t n = hi - lo + 1, got = 0;
    praft_entry *out = calloc(n, sizeof(*out));
    assert_int_equal(pstore_entries(s, lo, hi + 1, SIZE_MAX, out, &got), 0);
    assert_int_equal(got, n);
    for (size_t k = 0; k < n; k++) {
        uint8_t want[100];
        uint32_t len = data_of(lo + k, gen, want);
        assert_int_equal(out[k].index, lo + k);
        assert_int_equal(out[k].term, term);
        assert_int_equal(out[k].len, len);
        assert_memory_equal(out[k].data, want, len);
        uint64_t t = 0;
        assert_int_equal(pstore_term(s, lo + k, &t), 0);
        assert_int_equal(t, term);
    }
    pstore_entries_free(out, got);
    free(out);
}

static uint8_t *slurp(const char *path, size_t *len)
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

static void spit(const char *path, const uint8_t *buf, size_t len)
{
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    fclose(fp);
}

/* One past the last non-zero byte of @path: where its written records end. */
static size_t data_end(const char *path)
{
    size_t len;
    uint8_t *b = slurp(path, &len);
    while (len > 0 && b[len - 1] == 0) {
        len--;
    }
    free(b);
    return len;
}

static void expect_last(pstore *s, uint64_t last, uint64_t commit)
{
    uint64_t l = 0;
    pstore_log_range(s, NULL, &l);
    assert_int_equal(l, last);
    praft_hard_state hs;
    pstore_hard_state(s, &hs);
    assert_int_equal(hs.commit, commit);
}

enum damage { CUT_MID_RECORD, FLIP_LAST_RECORD, ZEROS_THEN_HALF, KEEP_HALF };

/*
 * Five batches; the fifth is then damaged as a write interrupted by a crash would leave it.
 * Reopening cuts exactly the fifth (never acknowledged in the story the files tell) and keeps
 * the four before it; the store takes new writes at once and keeps them.
 */
static void torn(fx *f, enum damage how)
{
    char seg[1][600];
    for (uint64_t b = 0; b < 4; b++) {
        put(f->s, 1 + b * 4, 4 + b * 4, 1, 0);
    }
    assert_true(tb_segments(f->dir, seg, 1) >= 1);
    size_t end4 = data_end(seg[0]);
    put(f->s, 17, 20, 1, 0);
    size_t end5 = data_end(seg[0]);
    assert_true(end5 > end4 + 100);
    pstore_close(f->s);
    f->s = NULL;
    size_t len;
    uint8_t *img = slurp(seg[0], &len);
    size_t half = end4 + (end5 - end4) / 2;
    switch (how) {
    case CUT_MID_RECORD: /* the file "ends" inside a record: zeros from there on */
    case KEEP_HALF:
        memset(img + half, 0, end5 - half);
        break;
    case FLIP_LAST_RECORD:
        img[end5 - 3] ^= 0x10;
        break;
    case ZEROS_THEN_HALF: /* the first blocks never reached the disk, the later ones did */
        memset(img + end4, 0, half - end4);
        break;
    }
    spit(seg[0], img, len);

    /* A read-only open serves the acknowledged part and changes nothing. */
    char err[256];
    pstore_options ro = f->opts;
    ro.read_only = true;
    assert_int_equal(pstore_open(f->dir, &ro, &f->s, err, sizeof(err)), 0);
    expect_last(f->s, 16, 16);
    assert_int_equal(pstore_check(f->s), 0);
    pstore_close(f->s);
    f->s = NULL;
    size_t len2;
    uint8_t *after = slurp(seg[0], &len2);
    assert_memory_equal(after, img, len);
    free(after);

    assert_int_equal(pstore_open(f->dir, &f->opts, &f->s, err, sizeof(err)), 0);
    expect_last(f->s, 16, 16);
    expect(f->s, 1, 16, 1, 0);
    assert_int_equal(pstore_check(f->s), 0);
    assert_int_equal(data_end(seg[0]), end4); /* the torn bytes are gone */
    put(f->s, 17, 19, 2, 5);
    assert_int_equal(reopen(f, err, sizeof(err)), 0);
    expect_last(f->s, 19, 19);
    expect(f->s, 1, 16, 1, 0);
    expect(f->s, 17, 19, 2, 5);
    free(img);
}

static void torn_tail_cut_mid_record(void **state)
{
    torn(*state, CUT_MID_RECORD);
}

static void torn_tail_flipped_last_record(void **state)
{
    torn(*state, FLIP_LAST_RECORD);
}

static void torn_tail_zeros_then_half_a_batch(void **state)
{
    torn(*state, ZEROS_THEN_HALF);
}

static void torn_tail_half_a_batch_then_zeros(void **state)
{
    torn(*state, KEEP_HALF);
}

/* A bad record with acknowledged writes after it is damage: refused, also read-only. */
static void corrupt_middle_record_is_refused(void **state)
{
    fx *f = *state;
    char seg[1][600], err[256];
    put(f->s, 1, 4, 1, 0);
    tb_segments(f->dir, seg, 1);
    size_t end1 = data_end(seg[0]);
    for (uint64_t b = 1; b < 5; b++) {
        put(f->s, 1 + b * 4, 4 + b * 4, 1, 0);
    }
    pstore_close(f->s);
    f->s = NULL;
    size_t len;
    uint8_t *img = slurp(seg[0], &len);
    img[end1 + 60] ^= 0x01; /* inside batch 2 */
    spit(seg[0], img, len);
    assert_int_equal(pstore_open(f->dir, &f->opts, &f->s, err, sizeof(err)), PT_ECORRUPT);
    assert_null(f->s);
    assert_non_null(strstr(err, "0000000000000001.wal: offset "));
    assert_non_null(strstr(err, "later writes follow"));
    pstore_options ro = f->opts;
    ro.read_only = true;
    assert_int_equal(pstore_open(f->dir, &ro, &f->s, err, sizeof(err)), PT_ECORRUPT);
    img[end1 + 60] ^= 0x01;
    spit(seg[0], img, len);
    assert_int_equal(pstore_open(f->dir, &f->opts, &f->s, err, sizeof(err)), 0);
    expect(f->s, 1, 20, 1, 0);
    free(img);
}

/* Many segments: everything reads back, after a reopen too. */
static void rotation_across_many_segments(void **state)
{
    fx *f = *state;
    char segs[64][600], err[256];
    for (uint64_t lo = 1; lo <= 3000; lo += 10) {
        put(f->s, lo, lo + 9, 1 + lo / 1000, 0);
    }
    size_t n = tb_segments(f->dir, segs, 64);
    assert_true(n >= 4);
    assert_int_equal(pstore_check(f->s), 0);
    assert_int_equal(reopen(f, err, sizeof(err)), 0);
    assert_int_equal(pstore_check(f->s), 0);
    expect_last(f->s, 3000, 3000);
    for (uint64_t lo = 1; lo <= 3000; lo += 10) {
        expect(f->s, lo, lo + 9, 1 + lo / 1000, 0);
    }
    /* A batch larger than a segment gets one of its own. */
    static uint8_t big[40][4096];
    praft_entry e[40];
    for (int k = 0; k < 40; k++) {
        memset(big[k], k + 1, sizeof(big[k]));
        e[k] = (praft_entry){.index = 3001 + (uint64_t)k, .term = 4, .len = 4096, .data = big[k]};
    }
    pstore_batch w = {.entries = e, .n_entries = 40};
    assert_int_equal(pstore_write(f->s, &w), 0);
    assert_int_equal(reopen(f, err, sizeof(err)), 0);
    expect_last(f->s, 3040, 3000);
    praft_entry out[40];
    size_t got = 0;
    assert_int_equal(pstore_entries(f->s, 3001, 3041, SIZE_MAX, out, &got), 0);
    assert_int_equal(got, 40);
    assert_int_equal(out[39].data[4095], 40);
    pstore_entries_free(out, got);
}

/* Segments larger than what recovery reads at once (1 MiB): records straddle its pieces. */
static void large_segments_reopen(void **state)
{
    fx *f = *state;
    char err[256], segs[8][600];
    f->opts.segment_size = 3u << 20;
    pstore_close(f->s);
    tb_rmrf(f->dir);
    f->opts.create = true;
    assert_int_equal(pstore_open(f->dir, &f->opts, &f->s, err, sizeof(err)), 0);
    f->opts.create = false;
    for (uint64_t lo = 1; lo <= 40000; lo += 37) {
        put(f->s, lo, lo + 36, 1, 0);
    }
    /* Segments of 1, 2 and 3 MiB: the later ones hold records past the first 1 MiB piece. */
    size_t n = tb_segments(f->dir, segs, 8), beyond = 0;
    for (size_t i = 0; i < n; i++) {
        beyond += data_end(segs[i]) > (3u << 19);
    }
    assert_true(beyond >= 1);
    assert_int_equal(reopen(f, err, sizeof(err)), 0);
    expect_last(f->s, 40034, 40034);
    expect(f->s, 1, 40034, 1, 0);
    assert_int_equal(pstore_check(f->s), 0);
}

static praft_snapshot_meta snapshot_at(pstore *s, uint64_t index, uint64_t term,
                                       const praft_config *cfg)
{
    pstore_snap_writer *w = NULL;
    assert_int_equal(pstore_snap_begin(s, index, term, cfg, &w), 0);
    uint8_t state[1000];
    memset(state, 0x5a, sizeof(state));
    assert_int_equal(pstore_snap_write(w, state, sizeof(state)), 0);
    praft_snapshot_meta meta;
    assert_int_equal(pstore_snap_finish(w, &meta), 0);
    return meta;
}

/* Purging drops whole segments; hard state, configuration, base and snapshot survive it. */
static void purge_drops_segments_and_keeps_metadata(void **state)
{
    fx *f = *state;
    char segs[64][600], err[256];
    praft_config cfg = {.n_members = 2};
    cfg.members[0] = (praft_member){.id = 1, .role = PRAFT_ROLE_VOTER, .address = "a:1"};
    cfg.members[1] = (praft_member){.id = 2, .role = PRAFT_ROLE_VOTER, .address = "b:2"};
    put(f->s, 1, 10, 1, 0);
    pstore_batch w = {.config = &cfg, .config_index = 10};
    assert_int_equal(pstore_write(f->s, &w), 0);
    for (uint64_t lo = 11; lo <= 2000; lo += 10) {
        put(f->s, lo, lo + 9, 2, 0);
    }
    size_t before = tb_segments(f->dir, segs, 64);
    assert_true(before >= 3);
    praft_hard_state hs = {.term = 5, .vote = 2, .commit = 1990};
    w = (pstore_batch){.hard_state = &hs};
    assert_int_equal(pstore_write(f->s, &w), 0);
    praft_snapshot_meta meta = snapshot_at(f->s, 1500, 2, &cfg);
    assert_int_equal(pstore_purge(f->s, 1500), 0);
    size_t after = tb_segments(f->dir, segs, 64);
    assert_true(after < before);
    assert_null(strstr(segs[0], "0000000000000001.wal"));
    for (int round = 0; round < 2; round++) {
        assert_int_equal(reopen(f, err, sizeof(err)), 0);
        praft_hard_state got;
        pstore_hard_state(f->s, &got);
        assert_int_equal(got.term, 5);
        assert_int_equal(got.vote, round == 0 ? 2 : 1);
        assert_int_equal(got.commit, round == 0 ? 1990 : 2600);
        bool has = false;
        uint64_t cidx = 0;
        praft_config c2;
        pstore_config(f->s, &has, &cidx, &c2);
        assert_true(has);
        assert_int_equal(cidx, 10);
        assert_int_equal(c2.n_members, 2);
        assert_string_equal(c2.members[1].address, "b:2");
        uint64_t first, last, t;
        pstore_log_range(f->s, &first, &last);
        assert_int_equal(first, 1501);
        assert_int_equal(last, round == 0 ? 2000 : 2600);
        assert_int_equal(pstore_term(f->s, 1500, &t), 0);
        assert_int_equal(t, 2);
        praft_snapshot_meta cur;
        pstore_snapshot_current(f->s, &has, &cur);
        assert_true(has);
        assert_int_equal(cur.index, 1500);
        assert_int_equal(cur.checksum, meta.checksum);
        expect(f->s, 1501, 2000, 2, 0);
        assert_int_equal(pstore_check(f->s), 0);
        /* Then the log moves on past the segments that were dropped. */
        if (round == 0) {
            for (uint64_t lo = 2001; lo <= 2600; lo += 10) {
                put(f->s, lo, lo + 9, 5, 1);
            }
        }
    }
    expect(f->s, 2001, 2600, 5, 1);
}

/* §5.3: a conflicting suffix replaced, also back across a segment boundary, then reopened. */
static void conflict_truncation_then_reopen(void **state)
{
    fx *f = *state;
    char err[256], segs[64][600];
    put(f->s, 1, 50, 1, 0);
    put(f->s, 40, 45, 2, 1);
    assert_int_equal(reopen(f, err, sizeof(err)), 0);
    expect_last(f->s, 45, 45);
    expect(f->s, 1, 39, 1, 0);
    expect(f->s, 40, 45, 2, 1);
    for (uint64_t lo = 46; lo < 2000; lo += 10) {
        put(f->s, lo, lo + 9, 2, 1);
    }
    assert_true(tb_segments(f->dir, segs, 64) >= 3);
    put(f->s, 30, 35, 3, 2); /* back into the first segment */
    assert_int_equal(reopen(f, err, sizeof(err)), 0);
    expect_last(f->s, 35, 35);
    expect(f->s, 1, 29, 1, 0);
    expect(f->s, 30, 35, 3, 2);
    assert_int_equal(pstore_check(f->s), 0);
    put(f->s, 36, 40, 3, 2);
    assert_int_equal(reopen(f, err, sizeof(err)), 0);
    expect(f->s, 30, 40, 3, 2);
}

/* A missing segment, first or in the middle, and a middle segment emptied are damage. */
static void missing_or_emptied_segment_is_refused(void **state)
{
    fx *f = *state;
    char segs[64][600], err[256];
    for (uint64_t lo = 1; lo <= 3000; lo += 10) {
        put(f->s, lo, lo + 9, 1, 0);
    }
    pstore_close(f->s);
    f->s = NULL;
    size_t n = tb_segments(f->dir, segs, 64);
    assert_true(n >= 4);
    for (size_t victim = 0; victim < 2; victim++) {
        size_t len;
        uint8_t *img = slurp(segs[victim], &len);
        assert_int_equal(unlink(segs[victim]), 0);
        assert_int_equal(pstore_open(f->dir, &f->opts, &f->s, err, sizeof(err)), PT_ECORRUPT);
        assert_non_null(strstr(err, "missing"));
        assert_non_null(strstr(err, ".wal"));
        FILE *fp = fopen(segs[victim], "wb");
        assert_int_equal(fwrite(img, 1, len, fp), len);
        fclose(fp);
        free(img);
    }
    /* The records of a middle segment lost (zeros): later writes follow the hole. */
    size_t len;
    uint8_t *img = slurp(segs[1], &len);
    uint8_t *zeros = calloc(1, len);
    memcpy(zeros, img, 64);
    spit(segs[1], zeros, len);
    assert_int_equal(pstore_open(f->dir, &f->opts, &f->s, err, sizeof(err)), PT_ECORRUPT);
    assert_non_null(strstr(err, ".wal"));
    spit(segs[1], img, len);
    free(img);
    free(zeros);
    assert_int_equal(pstore_open(f->dir, &f->opts, &f->s, err, sizeof(err)), 0);
    expect(f->s, 1, 3000, 1, 0);
}

/* How many segments hold records (a start record at offset 64). */
static size_t used_segments(fx *f)
{
    char segs[64][600];
    size_t n = tb_segments(f->dir, segs, 64), used = 0;
    for (size_t i = 0; i < n; i++) {
        used += data_end(segs[i]) > 64;
    }
    return used;
}

/*
 * A crash between preparing a segment and using it leaves a prepared segment (header, zeros)
 * and perhaps an unfinished preparation (a .tmp file), or a first commit in the new segment
 * that never completed: each reopens to the acknowledged log, and the log moves on.
 */
static void crash_between_preparation_and_use(void **state)
{
    fx *f = *state;
    char segs[64][600], err[256];
    uint64_t last = 0;
    size_t used = used_segments(f);
    while (used_segments(f) == used) {
        put(f->s, last + 1, last + 10, 1, 0);
        last += 10;
    }
    /* The write just done was the first in a new segment: make it torn. */
    pstore_close(f->s);
    f->s = NULL;
    size_t n = tb_segments(f->dir, segs, 64);
    size_t k = 0;
    while (k < n && data_end(segs[k]) > 64) {
        k++;
    }
    assert_true(k >= 2);
    size_t len;
    uint8_t *img = slurp(segs[k - 1], &len);
    size_t end = data_end(segs[k - 1]);
    memset(img + 64 + (end - 64) / 3, 0, end - 64 - (end - 64) / 3);
    spit(segs[k - 1], img, len);
    free(img);
    char tmp[640];
    snprintf(tmp, sizeof(tmp), "%s/wal/prep-00000000000000ff.tmp", f->dir);
    FILE *fp = fopen(tmp, "wb");
    fputs("half a preparation", fp);
    fclose(fp);
    assert_int_equal(pstore_open(f->dir, &f->opts, &f->s, err, sizeof(err)), 0);
    expect_last(f->s, last - 10, last - 10);
    expect(f->s, 1, last - 10, 1, 0);
    assert_int_equal(pstore_check(f->s), 0);
    struct stat st;
    assert_int_equal(stat(tmp, &st), -1); /* the unfinished preparation is gone */
    assert_int_equal(data_end(segs[k - 1]), 64);
    /* The log moves on into the segment that was prepared. */
    put(f->s, last - 9, last + 200, 2, 3);
    expect(f->s, last - 9, last + 200, 2, 3);
    assert_int_equal(reopen(f, err, sizeof(err)), 0);
    expect(f->s, 1, last - 10, 1, 0);
    expect(f->s, last - 9, last + 200, 2, 3);
    /* A prepared segment whose header is damaged is refused, not reused. */
    pstore_close(f->s);
    f->s = NULL;
    n = tb_segments(f->dir, segs, 64);
    img = slurp(segs[n - 1], &len);
    img[20] ^= 1;
    spit(segs[n - 1], img, len);
    free(img);
    assert_int_equal(pstore_open(f->dir, &f->opts, &f->s, err, sizeof(err)), PT_ECORRUPT);
    assert_non_null(strstr(err, "bad segment header"));
}

/* An LMDB data directory (format 1) keeps opening with LMDB, whatever the default. */
static void existing_lmdb_store_keeps_its_engine(void **state)
{
    fx *f = *state;
    char dir[300], err[256];
    snprintf(dir, sizeof(dir), "%s/old", f->parent);
    pstore_options o = f->opts;
    o.create = true;
    o.engine = PSTORE_ENGINE_LMDB;
    pstore *s = NULL;
    assert_int_equal(pstore_open(dir, &o, &s, err, sizeof(err)), 0);
    put(s, 1, 5, 1, 0);
    pstore_close(s);
    o.engine = PSTORE_ENGINE_WAL;
    assert_int_equal(pstore_open(dir, &o, &s, err, sizeof(err)), 0);
    uint32_t v = 0;
    pstore_identity(s, NULL, NULL, &v);
    assert_int_equal(v, PSTORE_FORMAT_LMDB);
    expect(s, 1, 5, 1, 0);
    pstore_close(s);
    /* Both logs in one directory: which is the node's is unknown. */
    char wal[320];
    snprintf(wal, sizeof(wal), "%s/wal", dir);
    assert_int_equal(mkdir(wal, 0700), 0);
    assert_int_equal(pstore_open(dir, &o, &s, err, sizeof(err)), PT_ECORRUPT);
    assert_non_null(strstr(err, "both"));
    pstore_identity(f->s, NULL, NULL, &v);
    assert_int_equal(v, PSTORE_FORMAT_WAL);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(torn_tail_cut_mid_record),
        T(torn_tail_flipped_last_record),
        T(torn_tail_zeros_then_half_a_batch),
        T(torn_tail_half_a_batch_then_zeros),
        T(corrupt_middle_record_is_refused),
        T(rotation_across_many_segments),
        T(large_segments_reopen),
        T(purge_drops_segments_and_keeps_metadata),
        T(conflict_truncation_then_reopen),
        T(missing_or_emptied_segment_is_refused),
        T(crash_between_preparation_and_use),
        T(existing_lmdb_store_keeps_its_engine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
