/*
 * Codec tests: every core message type survives encode -> decode unchanged, batches of
 * messages concatenate into a valid RaftBatch, and bytes from the network that are random,
 * truncated or inconsistent are refused with PT_EMALFORMED, never a crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/codec.h"

static praft_snapshot_meta sample_meta(void)
{
    praft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = 120;
    meta.term = 7;
    meta.size = 100;
    meta.checksum = 0x1122334455667788ull;
    meta.config.joint = true;
    meta.config.n_members = 3;
    meta.config.members[0] =
        (praft_member){.id = 1, .role = PRAFT_ROLE_VOTER, .old_role = PRAFT_ROLE_VOTER};
    meta.config.members[1] =
        (praft_member){.id = 2, .role = PRAFT_ROLE_LEARNER, .old_role = PRAFT_ROLE_NONE};
    meta.config.members[2] =
        (praft_member){.id = 9, .role = PRAFT_ROLE_NONE, .old_role = PRAFT_ROLE_VOTER};
    strcpy(meta.config.members[0].address, "10.0.0.1:7000");
    strcpy(meta.config.members[1].address, "node-b.example:7000");
    strcpy(meta.config.members[2].address, "");
    return meta;
}

static void assert_meta_equal(const praft_snapshot_meta *a, const praft_snapshot_meta *b)
{
    assert_int_equal(a->index, b->index);
    assert_int_equal(a->term, b->term);
    assert_int_equal(a->size, b->size);
    assert_int_equal(a->checksum, b->checksum);
    assert_int_equal(a->config.joint, b->config.joint);
    assert_int_equal(a->config.n_members, b->config.n_members);
    for (uint32_t i = 0; i < a->config.n_members; i++) {
        assert_int_equal(a->config.members[i].id, b->config.members[i].id);
        assert_int_equal(a->config.members[i].role, b->config.members[i].role);
        assert_int_equal(a->config.members[i].old_role, b->config.members[i].old_role);
        assert_string_equal(a->config.members[i].address, b->config.members[i].address);
    }
}

/* Field-by-field comparison of everything the protocol carries. */
static void assert_msg_equal(const praft_msg *a, const praft_msg *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->from, b->from);
    assert_int_equal(a->to, b->to);
    assert_int_equal(a->term, b->term);
    assert_int_equal(a->prev_index, b->prev_index);
    assert_int_equal(a->prev_term, b->prev_term);
    assert_int_equal(a->commit, b->commit);
    assert_int_equal(a->n_entries, b->n_entries);
    for (size_t i = 0; i < a->n_entries; i++) {
        assert_int_equal(a->entries[i].term, b->entries[i].term);
        assert_int_equal(a->entries[i].index, b->entries[i].index);
        assert_int_equal(a->entries[i].type, b->entries[i].type);
        assert_int_equal(a->entries[i].len, b->entries[i].len);
        if (a->entries[i].len > 0) {
            assert_memory_equal(a->entries[i].data, b->entries[i].data, a->entries[i].len);
        }
    }
    assert_int_equal(a->index, b->index);
    assert_int_equal(a->reject, b->reject);
    assert_int_equal(a->hint_index, b->hint_index);
    assert_int_equal(a->hint_term, b->hint_term);
    assert_int_equal(a->last_index, b->last_index);
    assert_int_equal(a->last_term, b->last_term);
    assert_int_equal(a->transfer, b->transfer);
    assert_int_equal(a->context, b->context);
    assert_int_equal(a->offset, b->offset);
    assert_int_equal(a->len, b->len);
    assert_int_equal(a->done, b->done);
    if (a->len > 0) {
        assert_memory_equal(a->data, b->data, a->len);
    }
    if (a->type == PRAFT_MSG_SNAPSHOT) {
        assert_non_null(b->snapshot);
        assert_meta_equal(a->snapshot, b->snapshot);
    } else if (a->type == PRAFT_MSG_SNAPSHOT_RESP) {
        assert_non_null(b->snapshot);
        assert_int_equal(a->snapshot->index, b->snapshot->index);
        assert_int_equal(a->snapshot->term, b->snapshot->term);
    } else {
        assert_null(b->snapshot);
    }
}

static void roundtrip(const praft_msg *m)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    praft_msg *back = NULL;
    assert_int_equal(pnet_msg_encode(m, &buf, &len), 0);
    assert_int_equal(pnet_msg_decode(buf, len, &back), 0);
    assert_msg_equal(m, back);
    pnet_msg_free(back);
    free(buf);
}

/* One message of each type with every field it uses set to a distinctive value. */
static uint8_t chunk[100];
static uint8_t e1[] = "set vehicle 7";
static uint8_t e3[3000];
static praft_entry entries[3];
static praft_snapshot_meta meta_full;

static size_t all_types(praft_msg *out)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof(e3); i++) {
        e3[i] = (uint8_t)(i * 7);
    }
    for (size_t i = 0; i < sizeof(chunk); i++) {
        chunk[i] = (uint8_t)(255 - i);
    }
    entries[0] = (praft_entry){
        .term = 4, .index = 11, .type = PRAFT_ENTRY_NORMAL, .len = sizeof(e1), .data = e1};
    entries[1] = (praft_entry){.term = 5, .index = 12, .type = PRAFT_ENTRY_NOOP};
    entries[2] = (praft_entry){
        .term = 5, .index = 13, .type = PRAFT_ENTRY_CONFIG, .len = sizeof(e3), .data = e3};
    meta_full = sample_meta();

    memset(out, 0, 16 * sizeof(*out));
    out[n++] = (praft_msg){.type = PRAFT_MSG_APPEND,
                           .from = 1,
                           .to = 2,
                           .term = 5,
                           .prev_index = 10,
                           .prev_term = 4,
                           .commit = 9,
                           .entries = entries,
                           .n_entries = 3};
    out[n++] = (praft_msg){.type = PRAFT_MSG_APPEND,
                           .from = 1,
                           .to = 2,
                           .term = 5,
                           .prev_index = 13,
                           .prev_term = 5,
                           .commit = 13}; /* empty probe */
    out[n++] = (praft_msg){.type = PRAFT_MSG_APPEND_RESP,
                           .from = 2,
                           .to = 1,
                           .term = 5,
                           .index = 13,
                           .reject = true,
                           .hint_index = 8,
                           .hint_term = 3};
    out[n++] = (praft_msg){.type = PRAFT_MSG_VOTE,
                           .from = 3,
                           .to = 1,
                           .term = 6,
                           .last_index = 13,
                           .last_term = 5,
                           .transfer = true};
    out[n++] =
        (praft_msg){.type = PRAFT_MSG_VOTE_RESP, .from = 1, .to = 3, .term = 6, .reject = true};
    out[n++] = (praft_msg){
        .type = PRAFT_MSG_PREVOTE, .from = 3, .to = 1, .term = 7, .last_index = 13, .last_term = 5};
    out[n++] = (praft_msg){.type = PRAFT_MSG_PREVOTE_RESP, .from = 1, .to = 3, .term = 7};
    out[n++] = (praft_msg){
        .type = PRAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 5, .commit = 12, .context = 77};
    out[n++] =
        (praft_msg){.type = PRAFT_MSG_HEARTBEAT_RESP, .from = 2, .to = 1, .term = 5, .context = 77};
    out[n++] = (praft_msg){.type = PRAFT_MSG_SNAPSHOT,
                           .from = 1,
                           .to = 2,
                           .term = 8,
                           .snapshot = &meta_full,
                           .offset = 0,
                           .data = chunk,
                           .len = 100,
                           .done = true};
    out[n++] = (praft_msg){.type = PRAFT_MSG_SNAPSHOT_RESP,
                           .from = 2,
                           .to = 1,
                           .term = 8,
                           .snapshot = &meta_full,
                           .offset = 100,
                           .reject = true,
                           .index = 120};
    out[n++] = (praft_msg){.type = PRAFT_MSG_TIMEOUT_NOW, .from = 1, .to = 3, .term = 8};
    out[n++] =
        (praft_msg){.type = PRAFT_MSG_READ_INDEX, .from = 2, .to = 1, .term = 8, .context = 991};
    out[n++] = (praft_msg){.type = PRAFT_MSG_READ_INDEX_RESP,
                           .from = 1,
                           .to = 2,
                           .term = 8,
                           .context = 991,
                           .index = 130,
                           .reject = true};
    return n;
}

static void test_roundtrip_every_type(void **state)
{
    (void)state;
    praft_msg msgs[16];
    size_t n = all_types(msgs);
    bool seen[PRAFT_MSG_READ_INDEX_RESP + 1] = {false};
    for (size_t i = 0; i < n; i++) {
        roundtrip(&msgs[i]);
        seen[msgs[i].type] = true;
    }
    for (uint32_t t = PRAFT_MSG_APPEND; t <= PRAFT_MSG_READ_INDEX_RESP; t++) {
        assert_true(seen[t]);
    }
}

static void test_roundtrip_extremes(void **state)
{
    (void)state;
    praft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = UINT64_MAX;
    meta.term = UINT64_MAX;
    meta.size = 5;
    meta.config.n_members = PRAFT_MAX_MEMBERS;
    for (uint32_t i = 0; i < PRAFT_MAX_MEMBERS; i++) {
        meta.config.members[i].id = UINT64_MAX - PRAFT_MAX_MEMBERS + i;
        meta.config.members[i].role = PRAFT_ROLE_VOTER;
        memset(meta.config.members[i].address, 'a' + (int)(i % 26), PRAFT_ADDRESS_MAX - 1);
    }
    uint8_t d[5] = {1, 2, 3, 4, 5};
    praft_msg m = {.type = PRAFT_MSG_SNAPSHOT,
                   .from = UINT64_MAX,
                   .to = 1,
                   .term = UINT64_MAX,
                   .snapshot = &meta,
                   .offset = 0,
                   .data = d,
                   .len = 5,
                   .done = true};
    roundtrip(&m);
    /* A middle chunk, not done. */
    m.len = 2;
    m.offset = 1;
    m.done = false;
    roundtrip(&m);
}

/* Concatenated batch items are a RaftBatch; messages of another lane are dropped, in order. */
struct collected {
    praft_msg *msgs[32];
    size_t n;
};

static void collect(void *ctx, praft_msg *m)
{
    struct collected *c = ctx;
    assert_true(c->n < 32);
    c->msgs[c->n++] = m;
}

static void test_batch_concatenation(void **state)
{
    (void)state;
    praft_msg msgs[16];
    size_t n = all_types(msgs);
    uint8_t *all = NULL;
    size_t all_len = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t *item;
        size_t len;
        assert_int_equal(pnet__msg_encode_batch_item(&msgs[i], &item, &len), 0);
        all = realloc(all, all_len + len);
        assert_non_null(all);
        memcpy(all + all_len, item, len);
        all_len += len;
        free(item);
    }
    for (int lane = 0; lane < PNET_LANE_COUNT; lane++) {
        struct collected c = {.n = 0};
        uint64_t bad = 0;
        assert_int_equal(pnet__batch_decode(all, all_len, lane, collect, &c, &bad), 0);
        size_t expect = 0;
        for (size_t i = 0; i < n; i++) {
            if (pnet__lane_of(msgs[i].type) == lane) {
                assert_true(expect < c.n);
                assert_msg_equal(&msgs[i], c.msgs[expect]);
                expect++;
            }
        }
        assert_int_equal(c.n, expect);
        assert_int_equal(bad, n - expect);
        for (size_t i = 0; i < c.n; i++) {
            pnet_msg_free(c.msgs[i]);
        }
    }
    free(all);
}

static void test_lanes(void **state)
{
    (void)state;
    for (int lane = 0; lane < PNET_LANE_COUNT; lane++) {
        const char *m = pnet__lane_method(lane);
        assert_non_null(m);
        assert_int_equal(pnet__lane_from_method(m, strlen(m)), lane);
        assert_int_equal(pnet__lane_from_method(m, strlen(m) - 1), -1);
    }
    assert_null(pnet__lane_method(PNET_LANE_COUNT));
    assert_int_equal(pnet__lane_of(0), -1);
    assert_int_equal(pnet__lane_of(PRAFT_MSG_READ_INDEX_RESP + 1), -1);
    assert_int_equal(pnet__lane_of(PRAFT_MSG_PREVOTE), PNET_LANE_VOTE);
    assert_int_equal(pnet__lane_of(PRAFT_MSG_HEARTBEAT), PNET_LANE_APPEND);
}

static void test_encode_rejects_bad_shapes(void **state)
{
    (void)state;
    uint8_t *buf = NULL;
    size_t len = 0;
    praft_msg m = {.type = 99, .from = 1, .to = 2};
    assert_int_equal(pnet_msg_encode(&m, &buf, &len), PT_EINVAL);
    m = (praft_msg){.type = PRAFT_MSG_APPEND, .from = 1, .to = 2, .n_entries = 2};
    assert_int_equal(pnet_msg_encode(&m, &buf, &len), PT_EINVAL);
    m = (praft_msg){.type = PRAFT_MSG_SNAPSHOT, .from = 1, .to = 2};
    assert_int_equal(pnet_msg_encode(&m, &buf, &len), PT_EINVAL);
    m = (praft_msg){.type = PRAFT_MSG_SNAPSHOT_RESP, .from = 1, .to = 2};
    assert_int_equal(pnet_msg_encode(&m, &buf, &len), PT_EINVAL);
    assert_int_equal(pnet_msg_encode(NULL, &buf, &len), PT_EINVAL);
    assert_null(buf);
}

/* Encodes @m, which must encode, and expects decoding to refuse it as inconsistent. */
static void expect_malformed(const praft_msg *m)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    praft_msg *back = NULL;
    assert_int_equal(pnet_msg_encode(m, &buf, &len), 0);
    assert_int_equal(pnet_msg_decode(buf, len, &back), PT_EMALFORMED);
    assert_null(back);
    free(buf);
}

static void test_decode_rejects_inconsistent(void **state)
{
    (void)state;
    praft_msg msgs[16];
    all_types(msgs);
    praft_msg m;

    m = msgs[0]; /* sender 0 */
    m.from = 0;
    expect_malformed(&m);
    m = msgs[0];
    m.to = 0;
    expect_malformed(&m);

    praft_entry bad[3];
    memcpy(bad, entries, sizeof(bad));
    m = msgs[0];
    m.entries = bad;
    bad[1].index = 14; /* a gap */
    expect_malformed(&m);
    memcpy(bad, entries, sizeof(bad));
    bad[2].term = 4; /* terms decrease */
    expect_malformed(&m);
    memcpy(bad, entries, sizeof(bad));
    bad[2].term = 6; /* beyond the leader's term */
    expect_malformed(&m);
    memcpy(bad, entries, sizeof(bad));
    bad[1].type = 7; /* unknown entry type */
    expect_malformed(&m);
    memcpy(bad, entries, sizeof(bad));
    m.prev_term = 5; /* first entry older than prev_term */
    expect_malformed(&m);
    m = msgs[0];
    m.prev_index = UINT64_MAX - 1; /* indexes would overflow */
    expect_malformed(&m);

    m = msgs[3]; /* a candidate whose log is ahead of its term */
    m.last_term = m.term + 1;
    expect_malformed(&m);

    praft_snapshot_meta meta = sample_meta();
    m = msgs[9];
    m.snapshot = &meta;
    m.offset = 1; /* chunk ends beyond the size */
    expect_malformed(&m);
    m.offset = 0;
    m.len = 50; /* claims to be the last chunk but ends early */
    expect_malformed(&m);
    m.len = 100;
    meta.term = 9; /* snapshot newer than the sender's term */
    expect_malformed(&m);
    meta = sample_meta();
    meta.index = 0;
    expect_malformed(&m);
    meta = sample_meta();
    meta.config.members[1].id = 1; /* duplicate / unsorted ids */
    expect_malformed(&m);
    meta = sample_meta();
    meta.config.members[1].id = 0;
    expect_malformed(&m);
    meta = sample_meta();
    meta.config.joint = false; /* old roles outside a joint config */
    expect_malformed(&m);
    meta = sample_meta();
    meta.config.members[0].role = 5;
    expect_malformed(&m);
    meta = sample_meta();
    meta.config.members[2].old_role = PRAFT_ROLE_NONE; /* in neither side */
    expect_malformed(&m);
}

/* Protobuf-level damage: an empty body, too many members, an over-long address. */
static void test_decode_rejects_raw(void **state)
{
    (void)state;
    praft_msg *back = NULL;
    uint8_t buf[8192];
    size_t len;

    Platoon__Raft__V1__RaftMessage pb = PLATOON__RAFT__V1__RAFT_MESSAGE__INIT;
    pb.from = 1;
    pb.to = 2;
    len = protobuf_c_message_pack(&pb.base, buf); /* no body */
    assert_int_equal(pnet_msg_decode(buf, len, &back), PT_EMALFORMED);

    Platoon__Raft__V1__InstallSnapshotRequest s = PLATOON__RAFT__V1__INSTALL_SNAPSHOT_REQUEST__INIT;
    pb.body_case = PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_SNAPSHOT;
    pb.snapshot = &s;
    s.term = 3;
    len = protobuf_c_message_pack(&pb.base, buf); /* no meta */
    assert_int_equal(pnet_msg_decode(buf, len, &back), PT_EMALFORMED);

    Platoon__Raft__V1__SnapshotMeta meta = PLATOON__RAFT__V1__SNAPSHOT_META__INIT;
    Platoon__Raft__V1__Config config = PLATOON__RAFT__V1__CONFIG__INIT;
    Platoon__Raft__V1__Member members[PRAFT_MAX_MEMBERS + 1];
    Platoon__Raft__V1__Member *ptrs[PRAFT_MAX_MEMBERS + 1];
    char long_addr[PRAFT_ADDRESS_MAX + 1];
    memset(long_addr, 'x', PRAFT_ADDRESS_MAX);
    long_addr[PRAFT_ADDRESS_MAX] = '\0';
    for (size_t i = 0; i <= PRAFT_MAX_MEMBERS; i++) {
        platoon__raft__v1__member__init(&members[i]);
        members[i].id = i + 1;
        members[i].role = PLATOON__RAFT__V1__ROLE__ROLE_VOTER;
        members[i].address = "a:1";
        ptrs[i] = &members[i];
    }
    meta.index = 5;
    meta.term = 2;
    meta.config = &config;
    config.members = ptrs;
    s.meta = &meta;
    config.n_members = PRAFT_MAX_MEMBERS + 1;
    len = protobuf_c_message_pack(&pb.base, buf);
    assert_int_equal(pnet_msg_decode(buf, len, &back), PT_EMALFORMED);
    config.n_members = 1;
    members[0].address = long_addr;
    len = protobuf_c_message_pack(&pb.base, buf);
    assert_int_equal(pnet_msg_decode(buf, len, &back), PT_EMALFORMED);
    members[0].address = "a:1";
    len = protobuf_c_message_pack(&pb.base, buf); /* now valid: the control case */
    assert_int_equal(pnet_msg_decode(buf, len, &back), 0);
    assert_int_equal(back->snapshot->config.n_members, 1);
    pnet_msg_free(back);
}

static void drop(void *ctx, praft_msg *m)
{
    (*(size_t *)ctx)++;
    pnet_msg_free(m);
}

/* Every prefix of every valid encoding, and random bytes, decode to a valid message or to
 * PT_EMALFORMED; under ASan this also proves no read goes out of bounds. */
static void test_truncated_and_random(void **state)
{
    (void)state;
    praft_msg msgs[16];
    size_t n = all_types(msgs);
    size_t refused = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t *buf;
        size_t len;
        assert_int_equal(pnet_msg_encode(&msgs[i], &buf, &len), 0);
        for (size_t cut = 0; cut < len; cut++) {
            uint8_t *copy = malloc(cut + 1); /* exact size, so ASan sees overreads */
            memcpy(copy, buf, cut);
            praft_msg *back = NULL;
            int rc = pnet_msg_decode(copy, cut, &back);
            assert_true(rc == 0 || rc == PT_EMALFORMED);
            refused += rc != 0;
            pnet_msg_free(back);
            free(copy);
        }
        /* Flip each byte of small encodings. */
        for (size_t pos = 0; pos < len && pos < 200; pos++) {
            buf[pos] ^= 0x5a;
            praft_msg *back = NULL;
            int rc = pnet_msg_decode(buf, len, &back);
            assert_true(rc == 0 || rc == PT_EMALFORMED);
            pnet_msg_free(back);
            uint64_t bad = 0;
            size_t kept = 0;
            rc = pnet__batch_decode(buf, len, PNET_LANE_APPEND, drop, &kept, &bad);
            assert_true(rc == 0 || rc == PT_EMALFORMED);
            buf[pos] ^= 0x5a;
        }
        free(buf);
    }
    assert_true(refused > 0);

    srand(12345);
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(rand() % 64);
        uint8_t *b = malloc(len + 1);
        for (size_t i = 0; i < len; i++) {
            b[i] = (uint8_t)rand();
        }
        praft_msg *back = NULL;
        int rc = pnet_msg_decode(b, len, &back);
        assert_true(rc == 0 || rc == PT_EMALFORMED);
        pnet_msg_free(back);
        free(b);
    }
    praft_msg *back = NULL;
    assert_int_equal(pnet_msg_decode(NULL, 0, &back), PT_EMALFORMED); /* no body */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_every_type),
        cmocka_unit_test(test_roundtrip_extremes),
        cmocka_unit_test(test_batch_concatenation),
        cmocka_unit_test(test_lanes),
        cmocka_unit_test(test_encode_rejects_bad_shapes),
        cmocka_unit_test(test_decode_rejects_inconsistent),
        cmocka_unit_test(test_decode_rejects_raw),
        cmocka_unit_test(test_truncated_and_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
