/* Snapshots of the vehicle state machine: exact round trips, byte-identical snapshots from
 * identical histories (determinism), frozen copies independent of later applies, and restore
 * refusing every corruption (bit flips, truncation, trailing bytes, random bytes) while
 * leaving the previous state intact. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/checksum.h"
#include "helpers.h"
#include "platoon/vehicle.h"

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

static praft_config members(uint32_t n)
{
    praft_config c;
    memset(&c, 0, sizeof(c));
    c.n_members = n;
    for (uint32_t i = 0; i < n; i++) {
        c.members[i].id = i + 1;
        c.members[i].role = i == n - 1 ? PRAFT_ROLE_LEARNER : PRAFT_ROLE_VOTER;
        snprintf(c.members[i].address, sizeof(c.members[i].address), "10.0.0.%u:7000", i + 1);
    }
    return c;
}

/* Applies @n random commands from index *@index on: updates and deletes over a small id
 * space, from a few clients with retries and stale sequences, with no-ops and configuration
 * changes in between. The same seed gives the same history. */
static void random_history(tsm *t, uint64_t *index, uint64_t *now, size_t n, uint64_t seed)
{
    rng_state = seed;
    uint64_t seqs[8] = {0};
    for (size_t i = 0; i < n; i++) {
        uint64_t kind = rnd() % 16;
        *now += rnd() % 5000;
        ++*index;
        if (kind == 0) {
            assert_int_equal(t->iface.ops->applied_noop(t->iface.ctx, *index, 1), 0);
            continue;
        }
        if (kind == 1) {
            praft_config c = members(1 + (uint32_t)(rnd() % 5));
            assert_int_equal(t->iface.ops->applied_config(t->iface.ctx, *index, 1, &c), 0);
            continue;
        }
        uint64_t client = rnd() % 8; /* 0: no session */
        uint64_t r = rnd() % 10;
        uint64_t seq = seqs[client];
        if (client != 0 && r < 7) {
            seq = ++seqs[client]; /* a new request */
        } else if (client != 0 && r == 7 && seq > 0) {
            seq--; /* a stale one */
        }          /* else: a retry of the last one */
        uint64_t id = 1 + rnd() % 40;
        if (rnd() % 4 == 0) {
            tsm_delete(t, *index, id, client, seq, *now);
        } else {
            pveh_vehicle v = veh(id, (double)(rnd() % 180) - 90, (double)(rnd() % 360) - 180,
                                 (double)(rnd() % 150), (double)(rnd() % 360));
            tsm_update(t, *index, &v, client, seq, *now);
        }
    }
}

static void assert_same_snapshot(tsm *a, tsm *b)
{
    membuf sa = tsm_snapshot(a);
    membuf sb = tsm_snapshot(b);
    assert_int_equal(sa.len, sb.len);
    assert_memory_equal(sa.data, sb.data, sa.len);
    free(sa.data);
    free(sb.data);
}

static void round_trip_restores_the_same_state(void **state)
{
    (void)state;
    tsm a, b;
    tsm_new(&a, NULL);
    tsm_new(&b, NULL);
    uint64_t index = 0, now = 1000;
    random_history(&a, &index, &now, 2000, 42);
    assert_true(pveh_sm_vehicle_count(a.sm) > 10);
    assert_true(pveh_sm_session_count(a.sm) > 3);

    membuf snap = tsm_snapshot(&a);
    const size_t chunks[] = {0, 1, 7, 4096};
    for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
        tsm c;
        tsm_new(&c, NULL);
        assert_int_equal(tsm_restore(&c, snap.data, snap.len, chunks[k]), 0);
        assert_same_snapshot(&a, &c);
        tsm_free(&c);
    }
    assert_int_equal(tsm_restore(&b, snap.data, snap.len, 0), 0);

    /* Field by field, not only the bytes. */
    assert_int_equal(pveh_sm_applied_index(b.sm), index);
    assert_int_equal(pveh_sm_log_time(b.sm), pveh_sm_log_time(a.sm));
    assert_int_equal(pveh_sm_vehicle_count(b.sm), pveh_sm_vehicle_count(a.sm));
    for (uint64_t id = 1; id <= 40; id++) {
        pveh_vehicle va, vb;
        int ra = pveh_sm_get(a.sm, id, &va);
        assert_int_equal(pveh_sm_get(b.sm, id, &vb), ra);
        if (ra == 0) {
            assert_memory_equal(&va, &vb, sizeof(va));
        }
    }
    assert_int_equal(pveh_sm_session_count(b.sm), pveh_sm_session_count(a.sm));
    for (uint64_t c = 1; c < 8; c++) {
        uint64_t sa = 0, ua = 0, sb = 0, ub = 0;
        int ra = pveh_sm_session_get(a.sm, c, &sa, &ua);
        assert_int_equal(pveh_sm_session_get(b.sm, c, &sb, &ub), ra);
        assert_int_equal(sa, sb);
        assert_int_equal(ua, ub);
    }
    praft_config ca, cb;
    pveh_sm_membership(a.sm, &ca);
    pveh_sm_membership(b.sm, &cb);
    assert_memory_equal(&ca, &cb, sizeof(ca));

    /* The restored state behaves the same from here on: same answers, same snapshots. */
    uint64_t index_b = index, now_b = now;
    random_history(&a, &index, &now, 500, 7);
    random_history(&b, &index_b, &now_b, 500, 7);
    assert_same_snapshot(&a, &b);
    free(snap.data);
    tsm_free(&a);
    tsm_free(&b);
}

static void identical_histories_give_identical_snapshots(void **state)
{
    (void)state;
    tsm a, b;
    pveh_options opts;
    pveh_options_init(&opts);
    opts.max_sessions = PVEH_MAX_SESSIONS_MIN;
    tsm_new(&a, &opts);
    tsm_new(&b, &opts);
    uint64_t ia = 0, ib = 0, na = 0, nb = 0;
    random_history(&a, &ia, &na, 3000, 1234);
    random_history(&b, &ib, &nb, 3000, 1234);
    assert_same_snapshot(&a, &b);

    /* Many sessions, evictions and expiries (hash table growth included) on both. */
    pveh_vehicle v = veh(1, 0, 0, 0, 0);
    for (uint64_t c = 1; c <= 12000; c++) {
        uint64_t ts = na + c * 40; /* all within one ttl: eviction, not expiry */
        tsm_update(&a, ++ia, &v, c * 7919, 1, ts);
        tsm_update(&b, ++ib, &v, c * 7919, 1, ts);
    }
    assert_int_equal(pveh_sm_session_count(a.sm), PVEH_MAX_SESSIONS_MIN);
    assert_same_snapshot(&a, &b);
    /* Long after, one command expires everything else on both. */
    tsm_update(&a, ++ia, &v, 5, 1, na + (uint64_t)12000 * 40 + 2 * PVEH_SESSION_TTL_MS_MIN);
    tsm_update(&b, ++ib, &v, 5, 1, na + (uint64_t)12000 * 40 + 2 * PVEH_SESSION_TTL_MS_MIN);
    assert_int_equal(pveh_sm_session_count(a.sm), 1);
    assert_same_snapshot(&a, &b);

    /* A different history gives a different snapshot (the comparison can fail). */
    tsm_update(&b, ++ib, &v, 0, 0, 0);
    membuf sa = tsm_snapshot(&a);
    membuf sb = tsm_snapshot(&b);
    assert_true(sa.len != sb.len || memcmp(sa.data, sb.data, sa.len) != 0);
    free(sa.data);
    free(sb.data);
    tsm_free(&a);
    tsm_free(&b);
}

static void a_frozen_copy_ignores_later_applies_and_outlives_the_state(void **state)
{
    (void)state;
    tsm a;
    tsm_new(&a, NULL);
    uint64_t index = 0, now = 0;
    random_history(&a, &index, &now, 300, 99);
    membuf expected = tsm_snapshot(&a);

    void *frozen = NULL;
    uint64_t fi = 0, ft = 0;
    assert_int_equal(a.iface.ops->snapshot_begin(a.iface.ctx, &frozen, &fi, &ft), 0);
    assert_int_equal(fi, index);
    random_history(&a, &index, &now, 300, 100);
    const pnode_sm_ops *ops = a.iface.ops;
    tsm_free(&a);

    /* Written twice, after the live state changed and was freed: the same bytes, those of the
     * moment snapshot_begin was called. */
    for (int k = 0; k < 2; k++) {
        membuf got = {0};
        assert_int_equal(ops->snapshot_write(frozen, membuf_write, &got), 0);
        assert_int_equal(got.len, expected.len);
        assert_memory_equal(got.data, expected.data, got.len);
        free(got.data);
    }
    ops->snapshot_end(frozen);
    ops->snapshot_end(NULL);
    free(expected.data);
}

typedef struct writer_job {
    const pnode_sm_ops *ops;
    void *frozen;
    membuf out;
    int rv;
} writer_job;

static void *write_frozen(void *arg)
{
    writer_job *j = arg;
    j->rv = j->ops->snapshot_write(j->frozen, membuf_write, &j->out);
    return NULL;
}

/* Many chunks of vehicles: the frozen copy shares them with the live state, and is written on
 * another thread while the loop's applies copy the chunks they touch. */
static void a_frozen_copy_of_many_chunks_is_written_while_applies_go_on(void **state)
{
    (void)state;
    tsm a;
    tsm_new(&a, NULL);
    uint64_t index = 0;
    for (uint64_t id = 1; id <= 20000; id++) {
        pveh_vehicle v = veh(id * 2, 1.0, 2.0, 3.0, 4.0);
        tsm_update(&a, ++index, &v, 0, 0, 1000);
    }
    membuf expected = tsm_snapshot(&a);
    void *frozen = NULL;
    assert_int_equal(a.iface.ops->snapshot_begin(a.iface.ctx, &frozen, NULL, NULL), 0);
    writer_job job = {.ops = a.iface.ops, .frozen = frozen};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, write_frozen, &job), 0);
    for (uint64_t k = 0; k < 3000; k++) {
        uint64_t id = (k * 7919) % 41000 + 1;
        if (k % 3 == 0) {
            tsm_delete(&a, ++index, id, 0, 0, 1000);
        } else {
            pveh_vehicle v = veh(id, 5.0, 6.0, 7.0, 8.0);
            tsm_update(&a, ++index, &v, 0, 0, 1000);
        }
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(job.rv, 0);
    assert_int_equal(job.out.len, expected.len);
    assert_memory_equal(job.out.data, expected.data, expected.len);
    a.iface.ops->snapshot_end(frozen);
    free(job.out.data);
    free(expected.data);
    tsm_free(&a);
}

static void write_errors_are_returned(void **state)
{
    (void)state;
    tsm a;
    tsm_new(&a, NULL);
    uint64_t index = 0, now = 0;
    random_history(&a, &index, &now, 300, 5);
    /* Enough vehicles for the snapshot to span several write buffers. */
    for (uint64_t id = 100; id < 3100; id++) {
        pveh_vehicle v = veh(id, 1, 2, 3, 4);
        tsm_update(&a, ++index, &v, 0, 0, now);
    }
    membuf whole = tsm_snapshot(&a);
    assert_true(whole.len > (size_t)2 * 65536);
    void *frozen = NULL;
    assert_int_equal(a.iface.ops->snapshot_begin(a.iface.ctx, &frozen, NULL, NULL), 0);
    const size_t limits[] = {1, 64, 65536, 65537, whole.len / 2, whole.len - 1};
    for (size_t k = 0; k < sizeof(limits) / sizeof(limits[0]); k++) {
        membuf b = {.fail_after = limits[k]};
        assert_int_equal(a.iface.ops->snapshot_write(frozen, membuf_write, &b), PT_EIO);
        free(b.data);
    }
    membuf b = {.fail_after = whole.len};
    assert_int_equal(a.iface.ops->snapshot_write(frozen, membuf_write, &b), 0);
    assert_int_equal(b.len, whole.len);
    free(b.data);
    free(whole.data);
    a.iface.ops->snapshot_end(frozen);
    tsm_free(&a);
}

/* A state machine with its own state, to check that failed restores leave it untouched. */
static void victim(tsm *t)
{
    tsm_new(t, NULL);
    uint64_t index = 0, now = 0;
    random_history(t, &index, &now, 100, 77);
}

static void assert_restore_refused(tsm *t, const membuf *before, const uint8_t *data, size_t len,
                                   size_t chunk)
{
    int rv = tsm_restore(t, data, len, chunk);
    if (rv != PT_ECORRUPT && rv != PT_EVERSION) {
        fail_msg("restore of %zu corrupt bytes returned %d", len, rv);
    }
    membuf after = tsm_snapshot(t);
    assert_int_equal(after.len, before->len);
    assert_memory_equal(after.data, before->data, after.len);
    free(after.data);
}

static void every_bit_flip_is_refused_and_the_state_stays(void **state)
{
    (void)state;
    tsm src, t;
    tsm_new(&src, NULL);
    uint64_t index = 0, now = 0;
    random_history(&src, &index, &now, 60, 3);
    membuf snap = tsm_snapshot(&src);
    assert_true(snap.len > 200);
    victim(&t);
    membuf before = tsm_snapshot(&t);
    for (size_t bit = 0; bit < snap.len * 8; bit++) {
        snap.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_restore_refused(&t, &before, snap.data, snap.len, bit % 3 == 0 ? 5 : 0);
        snap.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* The unflipped snapshot still restores: the loop above really exercised it. */
    assert_int_equal(tsm_restore(&t, snap.data, snap.len, 0), 0);
    assert_same_snapshot(&src, &t);
    free(before.data);
    free(snap.data);
    tsm_free(&src);
    tsm_free(&t);
}

static void truncated_or_extended_snapshots_are_refused(void **state)
{
    (void)state;
    tsm src, t;
    tsm_new(&src, NULL);
    uint64_t index = 0, now = 0;
    random_history(&src, &index, &now, 60, 4);
    membuf snap = tsm_snapshot(&src);
    victim(&t);
    membuf before = tsm_snapshot(&t);
    for (size_t len = 0; len < snap.len; len++) {
        assert_restore_refused(&t, &before, snap.data, len, 0);
    }
    uint8_t *longer = malloc(snap.len + 1);
    memcpy(longer, snap.data, snap.len);
    longer[snap.len] = 0;
    assert_restore_refused(&t, &before, longer, snap.len + 1, 0);
    assert_restore_refused(&t, &before, longer, snap.len + 1, 1);
    free(longer);
    free(before.data);
    free(snap.data);
    tsm_free(&src);
    tsm_free(&t);
}

/* A checksum alone would catch a random flip; these are well-formed snapshots (valid
 * checksum) whose content is invalid, so they test the validation of each record. */
static void recomputed_checksums_do_not_hide_invalid_records(void **state)
{
    (void)state;
    tsm src, t;
    tsm_new(&src, NULL);
    pveh_vehicle a = veh(1, 1, 1, 1, 1), b = veh(2, 2, 2, 2, 2);
    tsm_update(&src, 1, &a, 9, 1, 50);
    tsm_update(&src, 2, &b, 0, 0, 60);
    praft_config c = members(2);
    assert_int_equal(src.iface.ops->applied_config(src.iface.ctx, 3, 1, &c), 0);
    membuf snap = tsm_snapshot(&src);
    victim(&t);
    membuf before = tsm_snapshot(&t);

    /* Offsets from the format: header 64, then vehicles (48 each), then sessions. */
    struct {
        size_t offset;
        uint8_t value;
    } cases[] = {
        {12, 1},             /* flags */
        {60, 1},             /* reserved header byte */
        {56, 2},             /* joint not a bool */
        {64 + 48, 1},        /* second vehicle id = 1: not ascending */
        {64 + 8 + 7, 0x7f},  /* first vehicle latitude: NaN */
        {64 + 40, 9},        /* first vehicle revision beyond the applied index */
        {64 + 96, 0},        /* session client id 0 (all 8 bytes below) */
        {64 + 96 + 16, 200}, /* session last use after the log time */
        {64 + 96 + 40, 99},  /* session result length (after fingerprint and principal) */
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        uint8_t *copy = malloc(snap.len);
        memcpy(copy, snap.data, snap.len);
        if (cases[k].offset == 64 + 96) {
            memset(copy + cases[k].offset, 0, 8);
        } else if (cases[k].offset == 64 + 8 + 7) {
            copy[64 + 8 + 6] = 0xf8; /* with 0x7f above: a NaN's exponent and mantissa */
            copy[cases[k].offset] = cases[k].value;
        } else {
            copy[cases[k].offset] = cases[k].value;
        }
        uint64_t sum = 0;
        /* Re-seal with a correct checksum of the modified body. */
        sum = pt__checksum(copy, snap.len - 8);
        for (int i = 0; i < 8; i++) {
            copy[snap.len - 8 + i] = (uint8_t)(sum >> (8 * i));
        }
        if (tsm_restore(&t, copy, snap.len, 0) != PT_ECORRUPT) {
            fail_msg("case %zu (offset %zu) was accepted", k, cases[k].offset);
        }
        membuf after = tsm_snapshot(&t);
        assert_memory_equal(after.data, before.data, before.len);
        free(after.data);
        free(copy);
    }
    free(before.data);
    free(snap.data);
    tsm_free(&src);
    tsm_free(&t);
}

static void random_bytes_never_crash_restore(void **state)
{
    (void)state;
    tsm t;
    victim(&t);
    membuf before = tsm_snapshot(&t);
    rng_state = 0xabcdef12345;
    uint8_t buf[512];
    for (int iter = 0; iter < 3000; iter++) {
        size_t len = rnd() % sizeof(buf);
        for (size_t i = 0; i < len; i++) {
            buf[i] = (uint8_t)rnd();
        }
        if (iter % 2 == 0 && len >= 64) {
            /* A plausible header with random counts, to get past the magic. */
            static const uint8_t hdr[16] = {'P', 'V', 'E', 'H', 'S', 'N', 'A', 'P', 1};
            memcpy(buf, hdr, sizeof(hdr));
        }
        assert_restore_refused(&t, &before, buf, len, 0);
    }
    free(before.data);
    tsm_free(&t);
}

static int failing_read(void *ctx, void *buf, size_t cap, size_t *n)
{
    (void)ctx;
    (void)buf;
    (void)cap;
    *n = 0;
    return PT_EIO;
}

static void read_errors_and_limits(void **state)
{
    (void)state;
    tsm t;
    victim(&t);
    membuf before = tsm_snapshot(&t);
    assert_int_equal(t.iface.ops->restore(t.iface.ctx, failing_read, NULL), PT_EIO);

    /* A valid snapshot holding more sessions than this node keeps is refused as such. */
    pveh_options big;
    pveh_options_init(&big);
    big.max_sessions = 20000;
    pveh_options small;
    pveh_options_init(&small);
    small.max_sessions = PVEH_MAX_SESSIONS_MIN;
    tsm src, dst;
    tsm_new(&src, &big);
    tsm_new(&dst, &small);
    pveh_vehicle v = veh(1, 0, 0, 0, 0);
    for (uint64_t c = 1; c <= PVEH_MAX_SESSIONS_MIN + 1; c++) {
        tsm_update(&src, c, &v, c, 1, c);
    }
    membuf snap = tsm_snapshot(&src);
    assert_int_equal(tsm_restore(&dst, snap.data, snap.len, 0), PT_EINVAL);
    assert_int_equal(pveh_sm_applied_index(dst.sm), 0);
    /* With one session fewer it fits. */
    tsm_free(&src);
    tsm_new(&src, &big);
    for (uint64_t c = 1; c <= PVEH_MAX_SESSIONS_MIN; c++) {
        tsm_update(&src, c, &v, c, 1, c);
    }
    free(snap.data);
    snap = tsm_snapshot(&src);
    assert_int_equal(tsm_restore(&dst, snap.data, snap.len, 0), 0);
    assert_int_equal(pveh_sm_session_count(dst.sm), PVEH_MAX_SESSIONS_MIN);
    /* And it keeps its own limit afterwards: a new client evicts the oldest. */
    tsm_update(&dst, PVEH_MAX_SESSIONS_MIN + 1, &v, 99999, 1, 99999);
    assert_int_equal(pveh_sm_session_count(dst.sm), PVEH_MAX_SESSIONS_MIN);
    assert_int_equal(pveh_sm_session_get(dst.sm, 1, NULL, NULL), PT_ENOTFOUND);

    free(snap.data);
    free(before.data);
    tsm_free(&src);
    tsm_free(&dst);
    tsm_free(&t);
}

static void an_empty_state_round_trips(void **state)
{
    (void)state;
    tsm a, b;
    tsm_new(&a, NULL);
    victim(&b);
    membuf snap = tsm_snapshot(&a);
    assert_int_equal(tsm_restore(&b, snap.data, snap.len, 0), 0);
    assert_int_equal(pveh_sm_vehicle_count(b.sm), 0);
    assert_int_equal(pveh_sm_session_count(b.sm), 0);
    assert_int_equal(pveh_sm_applied_index(b.sm), 0);
    assert_same_snapshot(&a, &b);
    free(snap.data);
    tsm_free(&a);
    tsm_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_restores_the_same_state),
        cmocka_unit_test(identical_histories_give_identical_snapshots),
        cmocka_unit_test(a_frozen_copy_ignores_later_applies_and_outlives_the_state),
        cmocka_unit_test(a_frozen_copy_of_many_chunks_is_written_while_applies_go_on),
        cmocka_unit_test(write_errors_are_returned),
        cmocka_unit_test(every_bit_flip_is_refused_and_the_state_stays),
        cmocka_unit_test(truncated_or_extended_snapshots_are_refused),
        cmocka_unit_test(recomputed_checksums_do_not_hide_invalid_records),
        cmocka_unit_test(random_bytes_never_crash_restore),
        cmocka_unit_test(read_errors_and_limits),
        cmocka_unit_test(an_empty_state_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
