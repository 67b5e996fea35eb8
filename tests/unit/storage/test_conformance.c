/*
 * The storage contract, run against every backend (memory, LMDB, write-ahead log): the same
 * calls must give the same results and the same errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "platoon/storage.h"
#include "unit/storage/backend.h"

typedef struct fixture {
    test_backend *b;
    pstore_options opts;
    pstore *s;
} fixture;

static int setup_with(void **state, test_backend *b)
{
    fixture *f = calloc(1, sizeof(*f));
    f->b = b;
    pstore_options_init(&f->opts, 7, 1);
    f->opts.sync = PSTORE_SYNC_NONE; /* durability across power loss is not under test here */
    f->opts.segment_size = TB_SEGMENT;
    assert_int_equal(tb_open(b, &f->opts, &f->s), 0);
    *state = f;
    return 0;
}

static int setup_memory(void **state)
{
    return setup_with(state, &tb_backends[0]);
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
    fixture *f = *state;
    tb_close(f->b, f->s);
    free(f);
    return 0;
}

/* Entry i has term 1 + i / 10 and i % 50 bytes of data derived from i. */
static uint8_t *make_data(uint64_t i, uint64_t salt, uint32_t *len)
{
    *len = (uint32_t)((i + salt) % 50);
    uint8_t *d = *len ? malloc(*len) : NULL;
    for (uint32_t k = 0; k < *len; k++) {
        d[k] = (uint8_t)(i * 31 + k + salt);
    }
    return d;
}

static void append_range(pstore *s, uint64_t lo, uint64_t hi, uint64_t term, uint64_t salt)
{
    size_t n = hi - lo + 1;
    praft_entry *e = calloc(n, sizeof(*e));
    for (size_t k = 0; k < n; k++) {
        e[k].index = lo + k;
        e[k].term = term ? term : 1 + (lo + k) / 10;
        e[k].type = PRAFT_ENTRY_NORMAL;
        e[k].data = make_data(lo + k, salt, &e[k].len);
    }
    pstore_batch w = {.entries = e, .n_entries = n};
    assert_int_equal(pstore_write(s, &w), 0);
    pstore_entries_free(e, n);
    free(e);
}

static void expect_entry(const praft_entry *e, uint64_t index, uint64_t term, uint64_t salt)
{
    uint32_t len;
    uint8_t *d = make_data(index, salt, &len);
    assert_int_equal(e->index, index);
    assert_int_equal(e->term, term);
    assert_int_equal(e->len, len);
    if (len) {
        assert_memory_equal(e->data, d, len);
    }
    free(d);
}

static void empty_store(void **state)
{
    fixture *f = *state;
    uint64_t first, last, term = 99;
    pstore_log_range(f->s, &first, &last);
    assert_int_equal(first, 1);
    assert_int_equal(last, 0);
    assert_int_equal(pstore_term(f->s, 0, &term), 0);
    assert_int_equal(term, 0);
    assert_int_equal(pstore_term(f->s, 1, &term), PT_EUNAVAILABLE);
    praft_hard_state hs = {1, 1, 1};
    pstore_hard_state(f->s, &hs);
    assert_int_equal(hs.term + hs.vote + hs.commit, 0);
    bool has = true;
    pstore_config(f->s, &has, NULL, NULL);
    assert_false(has);
    pstore_snapshot_current(f->s, &has, NULL);
    assert_false(has);
    praft_entry out[1];
    size_t n = 9;
    assert_int_equal(pstore_entries(f->s, 1, 1, 100, out, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(pstore_entries(f->s, 1, 2, 100, out, &n), PT_EUNAVAILABLE);
    assert_int_equal(pstore_entries(f->s, 0, 1, 100, out, &n), PT_ECOMPACTED);
    assert_int_equal(pstore_check(f->s), 0);
    uint64_t c, id;
    uint32_t v;
    pstore_identity(f->s, &c, &id, &v);
    assert_int_equal(c, 7);
    assert_int_equal(id, 1);
    assert_int_equal(v, f->b->format);
}

static void append_and_read_back(void **state)
{
    fixture *f = *state;
    append_range(f->s, 1, 40, 0, 0);
    append_range(f->s, 41, 100, 0, 0);
    uint64_t first, last;
    pstore_log_range(f->s, &first, &last);
    assert_int_equal(first, 1);
    assert_int_equal(last, 100);
    praft_entry out[100];
    size_t n = 0;
    assert_int_equal(pstore_entries(f->s, 1, 101, SIZE_MAX, out, &n), 0);
    assert_int_equal(n, 100);
    for (size_t i = 0; i < n; i++) {
        expect_entry(&out[i], i + 1, 1 + (i + 1) / 10, 0);
    }
    pstore_entries_free(out, n);
    for (uint64_t i = 1; i <= 100; i++) {
        uint64_t t;
        assert_int_equal(pstore_term(f->s, i, &t), 0);
        assert_int_equal(t, 1 + i / 10);
    }
    assert_int_equal(pstore_check(f->s), 0);
}

static void entries_are_bounded_in_bytes(void **state)
{
    fixture *f = *state;
    append_range(f->s, 1, 60, 0, 0);
    praft_entry out[60];
    size_t n = 0;
    /* Entry 1 has 1 byte, 2 has 2, ...: 1+2+...+k <= 20 allows k = 5. */
    assert_int_equal(pstore_entries(f->s, 1, 61, 20, out, &n), 0);
    assert_int_equal(n, 5);
    pstore_entries_free(out, n);
    /* At least one entry even when it alone exceeds the bound. */
    assert_int_equal(pstore_entries(f->s, 40, 61, 1, out, &n), 0);
    assert_int_equal(n, 1);
    expect_entry(&out[0], 40, 5, 0);
    pstore_entries_free(out, n);
    assert_int_equal(pstore_entries(f->s, 5, 4, 1, out, &n), PT_EINVAL);
}

static void conflicting_suffix_is_replaced(void **state)
{
    fixture *f = *state;
    append_range(f->s, 1, 10, 1, 0);
    append_range(f->s, 6, 7, 2, 5); /* §5.3: 6.. conflict; 8..10 must go too */
    uint64_t first, last;
    pstore_log_range(f->s, &first, &last);
    assert_int_equal(last, 7);
    praft_entry out[7];
    size_t n = 0;
    assert_int_equal(pstore_entries(f->s, 1, 8, SIZE_MAX, out, &n), 0);
    assert_int_equal(n, 7);
    for (uint64_t i = 1; i <= 5; i++) {
        expect_entry(&out[i - 1], i, 1, 0);
    }
    expect_entry(&out[5], 6, 2, 5);
    expect_entry(&out[6], 7, 2, 5);
    pstore_entries_free(out, n);
    uint64_t t;
    assert_int_equal(pstore_term(f->s, 8, &t), PT_EUNAVAILABLE);
    assert_int_equal(pstore_check(f->s), 0);
}

static void bad_appends_change_nothing(void **state)
{
    fixture *f = *state;
    append_range(f->s, 1, 5, 1, 0);
    praft_entry gap = {.index = 7, .term = 1};
    pstore_batch w = {.entries = &gap, .n_entries = 1};
    assert_int_equal(pstore_write(f->s, &w), PT_EINVAL);
    assert_true(strlen(pstore_last_error(f->s)) > 0);
    praft_entry holes[2] = {{.index = 6, .term = 1}, {.index = 8, .term = 1}};
    w.entries = holes;
    w.n_entries = 2;
    praft_hard_state hs = {5, 1, 0};
    w.hard_state = &hs;
    assert_int_equal(pstore_write(f->s, &w), PT_EINVAL);
    praft_hard_state got;
    pstore_hard_state(f->s, &got);
    assert_int_equal(got.term, 0); /* the hard state of a refused batch is not written */
    uint64_t last;
    pstore_log_range(f->s, NULL, &last);
    assert_int_equal(last, 5);
}

static praft_config sample_config(uint64_t n)
{
    praft_config c;
    memset(&c, 0, sizeof(c));
    c.n_members = (uint32_t)n;
    for (uint64_t i = 0; i < n; i++) {
        c.members[i].id = i + 1;
        c.members[i].role = PRAFT_ROLE_VOTER;
        snprintf(c.members[i].address, PRAFT_ADDRESS_MAX, "127.0.0.1:%llu",
                 7000 + (unsigned long long)i);
    }
    return c;
}

static void hard_state_and_config_survive(void **state)
{
    fixture *f = *state;
    praft_hard_state hs = {.term = 3, .vote = 2, .commit = 0};
    praft_config cfg = sample_config(3);
    cfg.joint = true;
    cfg.members[2].old_role = PRAFT_ROLE_VOTER;
    praft_entry e = {.index = 1, .term = 3, .type = PRAFT_ENTRY_CONFIG};
    pstore_batch w = {
        .entries = &e, .n_entries = 1, .hard_state = &hs, .config = &cfg, .config_index = 1};
    assert_int_equal(pstore_write(f->s, &w), 0);
    if (f->b->durable) {
        f->opts.create = false;
        assert_int_equal(tb_reopen(f->b, &f->s, &f->opts), 0);
    }
    praft_hard_state got;
    pstore_hard_state(f->s, &got);
    assert_memory_equal(&got, &hs, sizeof(hs));
    bool has = false;
    uint64_t idx = 0;
    praft_config gc;
    pstore_config(f->s, &has, &idx, &gc);
    assert_true(has);
    assert_int_equal(idx, 1);
    assert_true(gc.joint);
    assert_int_equal(gc.n_members, 3);
    assert_string_equal(gc.members[2].address, "127.0.0.1:7002");
    assert_int_equal(gc.members[2].old_role, PRAFT_ROLE_VOTER);
    uint64_t t;
    assert_int_equal(pstore_term(f->s, 1, &t), 0);
    assert_int_equal(t, 3);
}

/* Writes a snapshot whose payload is @size bytes from a simple generator. */
static praft_snapshot_meta make_snapshot(pstore *s, uint64_t index, uint64_t term, size_t size)
{
    praft_config cfg = sample_config(3);
    pstore_snap_writer *w = NULL;
    assert_int_equal(pstore_snap_begin(s, index, term, &cfg, &w), 0);
    uint8_t buf[1000];
    for (size_t off = 0; off < size;) {
        size_t k = size - off < sizeof(buf) ? size - off : sizeof(buf);
        for (size_t j = 0; j < k; j++) {
            buf[j] = (uint8_t)(((off + j) * 7 + index) ^ ((off + j) >> 9));
        }
        assert_int_equal(pstore_snap_write(w, buf, k), 0);
        off += k;
    }
    praft_snapshot_meta meta;
    assert_int_equal(pstore_snap_finish(w, &meta), 0);
    assert_int_equal(meta.index, index);
    return meta;
}

static void expect_payload(pstore *s, const praft_snapshot_meta *meta, size_t size)
{
    pstore_snap_reader *r = NULL;
    praft_config cfg;
    assert_int_equal(pstore_snap_open(s, meta, &cfg, &r), 0);
    assert_int_equal(cfg.n_members, 3);
    uint8_t buf[777];
    size_t off = 0, n = 0;
    for (;;) {
        assert_int_equal(pstore_snap_reader_read(r, buf, sizeof(buf), &n), 0);
        if (n == 0) {
            break;
        }
        for (size_t j = 0; j < n; j++) {
            assert_int_equal(buf[j], (uint8_t)(((off + j) * 7 + meta->index) ^ ((off + j) >> 9)));
        }
        off += n;
    }
    assert_int_equal(off, size);
    pstore_snap_reader_close(r);
}

static void snapshot_then_purge(void **state)
{
    fixture *f = *state;
    append_range(f->s, 1, 100, 0, 0);
    assert_int_equal(pstore_purge(f->s, 50), PT_EINVAL); /* no snapshot covers it yet */
    praft_snapshot_meta meta = make_snapshot(f->s, 60, 7, 300000);
    assert_true(meta.size > 0);
    assert_true(meta.size < 300000); /* zstd did its job on this regular payload */
    assert_int_equal(pstore_purge(f->s, 61), PT_EINVAL);
    assert_int_equal(pstore_purge(f->s, 50), 0);
    if (f->b->durable) {
        f->opts.create = false;
        assert_int_equal(tb_reopen(f->b, &f->s, &f->opts), 0);
    }
    uint64_t first, last, t;
    pstore_log_range(f->s, &first, &last);
    assert_int_equal(first, 51);
    assert_int_equal(last, 100);
    assert_int_equal(pstore_term(f->s, 50, &t), 0); /* the base's term stays known */
    assert_int_equal(t, 6);
    assert_int_equal(pstore_term(f->s, 49, &t), PT_ECOMPACTED);
    praft_entry out[2];
    size_t n;
    assert_int_equal(pstore_entries(f->s, 50, 52, SIZE_MAX, out, &n), PT_ECOMPACTED);
    assert_int_equal(pstore_entries(f->s, 51, 52, SIZE_MAX, out, &n), 0);
    expect_entry(&out[0], 51, 6, 0);
    pstore_entries_free(out, n);
    bool has = false;
    praft_snapshot_meta cur;
    pstore_snapshot_current(f->s, &has, &cur);
    assert_true(has);
    assert_int_equal(cur.index, 60);
    assert_int_equal(cur.term, 7);
    assert_int_equal(cur.size, meta.size);
    assert_int_equal(cur.checksum, meta.checksum);
    expect_payload(f->s, &cur, 300000);
    assert_int_equal(pstore_purge(f->s, 40), 0); /* below first: nothing to do */
    assert_int_equal(pstore_check(f->s), 0);
}

static void newest_snapshots_are_kept(void **state)
{
    fixture *f = *state;
    append_range(f->s, 1, 50, 0, 0);
    praft_snapshot_meta m[4];
    for (int i = 0; i < 4; i++) {
        m[i] = make_snapshot(f->s, 10 + 10 * (uint64_t)i, 2, 1000 + 100 * (size_t)i);
    }
    pstore_snap_info list[8];
    size_t n = 0;
    pstore_snap_list(f->s, list, 8, &n);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].index, 40);
    assert_true(list[0].current);
    assert_int_equal(list[1].index, 30);
    uint8_t buf[16];
    size_t len;
    assert_int_equal(pstore_snap_read(f->s, &m[0], 0, buf, sizeof(buf), &len), PT_ENOTFOUND);
    assert_int_equal(pstore_snap_read(f->s, &m[2], 0, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, sizeof(buf));
    if (f->b->durable) {
        f->opts.create = false;
        assert_int_equal(tb_reopen(f->b, &f->s, &f->opts), 0);
        pstore_snap_list(f->s, list, 8, &n);
        assert_int_equal(n, 2);
        assert_int_equal(list[0].checksum, m[3].checksum);
    }
    /* An older snapshot than the current one is refused. */
    pstore_snap_writer *w = NULL;
    praft_config cfg = sample_config(1);
    assert_int_equal(pstore_snap_begin(f->s, 5, 1, &cfg, &w), PT_EINVAL);
}

/* Copies snapshot @meta from @from to @to in chunks of @chunk bytes, dropping the "connection"
 * once in the middle and resuming from the receiver's offset. */
static void transfer(pstore *from, pstore *to, const praft_snapshot_meta *meta, size_t chunk)
{
    uint8_t *buf = malloc(chunk);
    uint64_t off = 0, next = 0;
    bool dropped = false;
    while (off < meta->size) {
        size_t len = 0;
        assert_int_equal(pstore_snap_read(from, meta, off, buf, chunk, &len), 0);
        assert_true(len > 0);
        if (!dropped && off > meta->size / 2) {
            dropped = true;
            /* A chunk from a stale, earlier request arrives: refused, offset reported. */
            assert_int_equal(pstore_recv_chunk(to, meta, off - 1, buf, 1, &next), PT_ESTALE);
            assert_int_equal(next, off);
            off = next;
            continue;
        }
        assert_int_equal(pstore_recv_chunk(to, meta, off, buf, len, &next), 0);
        off += len;
        assert_int_equal(next, off);
    }
    free(buf);
}

static void snapshot_transfer_and_install(void **state)
{
    fixture *f = *state;
    pstore *leader = NULL;
    pstore_options lo;
    pstore_options_init(&lo, 7, 2);
    assert_int_equal(pstore_open_memory(&lo, &leader), 0);
    append_range(leader, 1, 30, 0, 0);
    praft_snapshot_meta meta = make_snapshot(leader, 25, 3, 200000);

    append_range(f->s, 1, 40, 9, 0); /* a follower with a divergent log */
    assert_int_equal(pstore_recv_finish(f->s, &meta), PT_ENOTFOUND);
    transfer(leader, f->s, &meta, 4096);
    praft_snapshot_meta other = meta;
    other.checksum ^= 1;
    assert_int_equal(pstore_recv_finish(f->s, &other), PT_ENOTFOUND);
    assert_int_equal(pstore_recv_finish(f->s, &meta), 0);
    /* Received, not installed yet: the log is untouched. */
    uint64_t first, last;
    pstore_log_range(f->s, &first, &last);
    assert_int_equal(last, 40);

    praft_entry e = {.index = 26, .term = 4};
    praft_hard_state hs = {.term = 4, .vote = 2, .commit = 25};
    pstore_batch w = {.install_snapshot = &meta, .entries = &e, .n_entries = 1, .hard_state = &hs};
    assert_int_equal(pstore_write(f->s, &w), 0);
    if (f->b->durable) {
        f->opts.create = false;
        assert_int_equal(tb_reopen(f->b, &f->s, &f->opts), 0);
    }
    pstore_log_range(f->s, &first, &last);
    assert_int_equal(first, 26);
    assert_int_equal(last, 26);
    uint64_t t;
    assert_int_equal(pstore_term(f->s, 25, &t), 0);
    assert_int_equal(t, 3);
    bool has = false;
    uint64_t cidx = 0;
    praft_config cfg;
    pstore_config(f->s, &has, &cidx, &cfg);
    assert_true(has);
    assert_int_equal(cidx, 25);
    assert_int_equal(cfg.n_members, 3);
    praft_snapshot_meta cur;
    pstore_snapshot_current(f->s, &has, &cur);
    assert_true(has);
    assert_int_equal(cur.checksum, meta.checksum);
    expect_payload(f->s, &cur, 200000);
    pstore_close(leader);
}

static void damaged_transfer_is_refused(void **state)
{
    fixture *f = *state;
    pstore *leader = NULL;
    pstore_options lo;
    pstore_options_init(&lo, 7, 2);
    assert_int_equal(pstore_open_memory(&lo, &leader), 0);
    praft_snapshot_meta meta = make_snapshot(leader, 5, 1, 5000);
    uint8_t *bytes = malloc(meta.size);
    size_t len = 0;
    assert_int_equal(pstore_snap_read(leader, &meta, 0, bytes, meta.size, &len), 0);
    assert_int_equal(len, meta.size);

    /* One flipped bit in transit. */
    bytes[meta.size / 2] ^= 0x10;
    assert_int_equal(pstore_recv_chunk(f->s, &meta, 0, bytes, len, NULL), 0);
    assert_int_equal(pstore_recv_finish(f->s, &meta), PT_ECORRUPT);
    assert_non_null(strstr(pstore_last_error(f->s), "snapshot 5"));
    bytes[meta.size / 2] ^= 0x10;

    /* Bytes missing. */
    uint64_t next = 0;
    assert_int_equal(pstore_recv_chunk(f->s, &meta, 0, bytes, len - 1, &next), 0);
    assert_int_equal(pstore_recv_finish(f->s, &meta), PT_EUNAVAILABLE);
    /* Past the end. */
    assert_int_equal(pstore_recv_chunk(f->s, &meta, len - 1, bytes, 2, &next), PT_EINVAL);
    /* A meta that lies about the checksum: the bytes are right but not what was announced. */
    pstore_recv_abort(f->s);
    praft_snapshot_meta liar = meta;
    liar.checksum ^= 0xff;
    assert_int_equal(pstore_recv_chunk(f->s, &liar, 0, bytes, len, NULL), 0);
    assert_int_equal(pstore_recv_finish(f->s, &liar), PT_ECORRUPT);
    /* Nothing was installed or kept. */
    pstore_snap_info list[4];
    size_t n = 9;
    pstore_snap_list(f->s, list, 4, &n);
    assert_int_equal(n, 0);
    pstore_batch w = {.install_snapshot = &meta};
    assert_int_equal(pstore_write(f->s, &w), PT_ENOTFOUND);
    /* Restarting at 0 with the right bytes works. */
    assert_int_equal(pstore_recv_chunk(f->s, &meta, 0, bytes, len, NULL), 0);
    assert_int_equal(pstore_recv_finish(f->s, &meta), 0);
    free(bytes);
    pstore_close(leader);
}

static void raft_storage_view(void **state)
{
    fixture *f = *state;
    append_range(f->s, 1, 20, 0, 0);
    praft_hard_state hs = {.term = 2, .vote = 1, .commit = 15};
    pstore_batch w = {.hard_state = &hs};
    assert_int_equal(pstore_write(f->s, &w), 0);
    praft_snapshot_meta meta = make_snapshot(f->s, 15, 2, 100);
    assert_int_equal(pstore_purge(f->s, 10), 0);
    praft_storage rs;
    pstore_raft_storage(f->s, &rs);
    praft_hard_state got;
    praft_snapshot_meta snap;
    assert_int_equal(rs.initial_state(rs.ctx, &got, &snap), 0);
    assert_int_equal(got.commit, 15);
    assert_int_equal(snap.index, 15);
    assert_int_equal(snap.checksum, meta.checksum);
    uint64_t v;
    assert_int_equal(rs.first_index(rs.ctx, &v), 0);
    assert_int_equal(v, 11);
    assert_int_equal(rs.last_index(rs.ctx, &v), 0);
    assert_int_equal(v, 20);
    assert_int_equal(rs.term(rs.ctx, 10, &v), 0);
    assert_int_equal(v, 2);
    praft_entry out[10];
    size_t n;
    assert_int_equal(rs.entries(rs.ctx, 11, 21, SIZE_MAX, out, &n), 0);
    assert_int_equal(n, 10);
    pstore_entries_free(out, n);
    uint8_t *whole = malloc(meta.size + 1);
    size_t got_len = 0, len;
    while (rs.snapshot_read(rs.ctx, &snap, got_len, whole + got_len, 7, &len) == 0 && len > 0) {
        got_len += len;
    }
    assert_int_equal(got_len, meta.size);
    free(whole);
}

#define BOTH(fn)                                                   \
    cmocka_unit_test_setup_teardown(fn, setup_memory, teardown),   \
        cmocka_unit_test_setup_teardown(fn, setup_lmdb, teardown), \
        cmocka_unit_test_setup_teardown(fn, setup_wal, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(empty_store),
        BOTH(append_and_read_back),
        BOTH(entries_are_bounded_in_bytes),
        BOTH(conflicting_suffix_is_replaced),
        BOTH(bad_appends_change_nothing),
        BOTH(hard_state_and_config_survive),
        BOTH(snapshot_then_purge),
        BOTH(newest_snapshots_are_kept),
        BOTH(snapshot_transfer_and_install),
        BOTH(damaged_transfer_is_refused),
        BOTH(raft_storage_view),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
