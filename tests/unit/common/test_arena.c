/* The arena: objects from the caller's buffer while it lasts, then from few, growing blocks;
 * every object aligned and apart from the others; release empties it; protobuf-c decodes into
 * it exactly as with its default allocator. Leaks of the blocks show under LeakSanitizer. */
#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/arena_protobuf.h"
#include "platoon/raft/v1/raft.pb-c.h"
#include "platoon/v1/platoon.pb-c.h"

static bool inside(const void *p, const unsigned char *buf, size_t cap)
{
    return (const unsigned char *)p >= buf && (const unsigned char *)p < buf + cap;
}

static bool aligned(const void *p)
{
    return ((uintptr_t)p % alignof(max_align_t)) == 0;
}

static void objects_come_from_the_buffer_while_it_lasts(void **state)
{
    (void)state;
    alignas(max_align_t) unsigned char buf[256];
    pt_arena a;
    pt__arena_init(&a, buf, sizeof(buf));
    unsigned char *prev = NULL;
    size_t prev_len = 0;
    for (size_t n = 1; n <= 5; n++) { /* 1..5 bytes, each rounded up to the alignment */
        unsigned char *p = pt__arena_alloc(&a, n);
        assert_non_null(p);
        assert_true(inside(p, buf, sizeof(buf)));
        assert_true(aligned(p));
        if (prev != NULL) {
            assert_true(p >= prev + prev_len); /* apart from the one before */
        }
        memset(p, 0xab, n);
        prev = p, prev_len = n;
    }
    assert_int_equal(pt__arena_blocks(&a), 0);
    /* More than is left: a block from malloc, outside the buffer. */
    unsigned char *big = pt__arena_alloc(&a, 300);
    assert_non_null(big);
    assert_false(inside(big, buf, sizeof(buf)));
    assert_true(aligned(big));
    memset(big, 0xcd, 300); /* the whole object is usable (AddressSanitizer checks) */
    assert_int_equal(pt__arena_blocks(&a), 1);
    pt__arena_release(&a);
    assert_int_equal(pt__arena_blocks(&a), 0);
    /* Empty again: the next object is the buffer's first. */
    void *again = pt__arena_alloc(&a, 8);
    assert_ptr_equal(again, buf);
    pt__arena_release(&a);
}

static void many_objects_take_few_blocks(void **state)
{
    (void)state;
    alignas(max_align_t) unsigned char buf[128];
    pt_arena a;
    pt__arena_init(&a, buf, sizeof(buf));
    unsigned char *objs[2000];
    for (size_t i = 0; i < 2000; i++) {
        objs[i] = pt__arena_alloc(&a, 100);
        assert_non_null(objs[i]);
        assert_true(aligned(objs[i]));
        memset(objs[i], (int)(i & 0xff), 100);
    }
    /* Every object still holds what was written to it: none overlaps another. */
    for (size_t i = 0; i < 2000; i++) {
        for (size_t k = 0; k < 100; k++) {
            assert_int_equal(objs[i][k], i & 0xff);
        }
    }
    /* 2000 × 112 bytes ≈ 219 KiB in blocks of 4, 8, 16, ... KiB: six blocks, not 2000. */
    assert_true(pt__arena_blocks(&a) <= 7);
    pt__arena_release(&a);
}

static void an_arena_without_a_buffer_and_odd_sizes(void **state)
{
    (void)state;
    pt_arena a;
    pt__arena_init(&a, NULL, 0);
    void *z1 = pt__arena_alloc(&a, 0);
    void *z2 = pt__arena_alloc(&a, 0);
    assert_non_null(z1);
    assert_non_null(z2);
    assert_ptr_not_equal(z1, z2); /* 0 bytes still get places of their own */
    assert_null(pt__arena_alloc(&a, SIZE_MAX));
    assert_null(pt__arena_alloc(&a, SIZE_MAX - 8));
    /* A buffer too small to hold one aligned object is not used. */
    unsigned char tiny[3];
    pt_arena b;
    pt__arena_init(&b, tiny + 1, 1);
    void *p = pt__arena_alloc(&b, 1);
    assert_non_null(p);
    assert_false(inside(p, tiny, sizeof(tiny)));
    pt__arena_free(&b, p); /* nothing: released with the arena */
    pt__arena_release(&a);
    pt__arena_release(&b);
}

/* A RaftBatch of @n appends of 3 entries each, packed. */
static uint8_t *pack_batch(size_t n, size_t *len)
{
    Platoon__Raft__V1__RaftBatch batch = PLATOON__RAFT__V1__RAFT_BATCH__INIT;
    Platoon__Raft__V1__RaftMessage *msgs = calloc(n, sizeof(*msgs));
    Platoon__Raft__V1__RaftMessage **mp = calloc(n, sizeof(*mp));
    Platoon__Raft__V1__AppendEntriesRequest *reqs = calloc(n, sizeof(*reqs));
    Platoon__Raft__V1__Entry *ents = calloc(3 * n, sizeof(*ents));
    Platoon__Raft__V1__Entry **ep = calloc(3 * n, sizeof(*ep));
    static uint8_t payload[50];
    for (size_t i = 0; i < sizeof(payload); i++) {
        payload[i] = (uint8_t)(i * 7);
    }
    for (size_t i = 0; i < n; i++) {
        platoon__raft__v1__raft_message__init(&msgs[i]);
        platoon__raft__v1__append_entries_request__init(&reqs[i]);
        for (size_t k = 0; k < 3; k++) {
            Platoon__Raft__V1__Entry *e = &ents[3 * i + k];
            platoon__raft__v1__entry__init(e);
            e->term = 7;
            e->index = 3 * i + k + 1;
            e->data.data = payload;
            e->data.len = 10 + k;
            ep[3 * i + k] = e;
        }
        reqs[i].term = 7;
        reqs[i].prev_index = 3 * i;
        reqs[i].n_entries = 3;
        reqs[i].entries = &ep[3 * i];
        msgs[i].from = 1;
        msgs[i].to = 2;
        msgs[i].body_case = PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_APPEND;
        msgs[i].append = &reqs[i];
        mp[i] = &msgs[i];
    }
    batch.n_messages = n;
    batch.messages = mp;
    *len = platoon__raft__v1__raft_batch__get_packed_size(&batch);
    uint8_t *out = malloc(*len);
    assert_non_null(out);
    platoon__raft__v1__raft_batch__pack(&batch, out);
    free(msgs), free(mp), free(reqs), free(ents), free(ep);
    return out;
}

static void protobuf_decodes_into_an_arena_as_with_malloc(void **state)
{
    (void)state;
    /* A small request fits a small buffer: no block at all. */
    Platoon__V1__UpdateVehicleRequest in = PLATOON__V1__UPDATE_VEHICLE_REQUEST__INIT;
    Platoon__V1__Vehicle v = PLATOON__V1__VEHICLE__INIT;
    v.id = 42, v.latitude = 52.5, v.longitude = 13.4, v.speed = 22.0, v.heading = 90.0;
    in.vehicle = &v, in.client_id = 9, in.sequence = 3;
    uint8_t bytes[128];
    size_t len = platoon__v1__update_vehicle_request__pack(&in, bytes);
    alignas(max_align_t) unsigned char space[512];
    pt_arena a;
    pt__arena_init(&a, space, sizeof(space));
    ProtobufCAllocator alloc = PT_ARENA_PROTOBUF_C(&a);
    Platoon__V1__UpdateVehicleRequest *out =
        platoon__v1__update_vehicle_request__unpack(&alloc, len, bytes);
    assert_non_null(out);
    assert_true(inside(out, space, sizeof(space)));
    assert_non_null(out->vehicle);
    assert_true(out->vehicle->id == 42 && out->vehicle->heading == 90.0);
    assert_true(out->client_id == 9 && out->sequence == 3);
    assert_int_equal(pt__arena_blocks(&a), 0);
    pt__arena_release(&a);
    /* Malformed bytes: NULL, and what was taken is released with the arena. */
    bytes[0] = 0xff, bytes[1] = 0xff;
    assert_null(platoon__v1__update_vehicle_request__unpack(&alloc, len, bytes));
    pt__arena_release(&a);

    /* A batch of 500 appends: the same as protobuf-c's own decoding, in a few blocks. */
    size_t blen = 0;
    uint8_t *packed = pack_batch(500, &blen);
    Platoon__Raft__V1__RaftBatch *ref = platoon__raft__v1__raft_batch__unpack(NULL, blen, packed);
    Platoon__Raft__V1__RaftBatch *got = platoon__raft__v1__raft_batch__unpack(&alloc, blen, packed);
    assert_non_null(ref);
    assert_non_null(got);
    assert_int_equal(got->n_messages, ref->n_messages);
    for (size_t i = 0; i < ref->n_messages; i++) {
        const Platoon__Raft__V1__AppendEntriesRequest *r = ref->messages[i]->append;
        const Platoon__Raft__V1__AppendEntriesRequest *g = got->messages[i]->append;
        assert_int_equal(got->messages[i]->body_case, PLATOON__RAFT__V1__RAFT_MESSAGE__BODY_APPEND);
        assert_int_equal(g->prev_index, r->prev_index);
        assert_int_equal(g->n_entries, r->n_entries);
        for (size_t k = 0; k < r->n_entries; k++) {
            assert_int_equal(g->entries[k]->index, r->entries[k]->index);
            assert_int_equal(g->entries[k]->data.len, r->entries[k]->data.len);
            assert_memory_equal(g->entries[k]->data.data, r->entries[k]->data.data,
                                r->entries[k]->data.len);
        }
    }
    assert_true(pt__arena_blocks(&a) <= 12);
    platoon__raft__v1__raft_batch__free_unpacked(ref, NULL);
    pt__arena_release(&a);
    free(packed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(objects_come_from_the_buffer_while_it_lasts),
        cmocka_unit_test(many_objects_take_few_blocks),
        cmocka_unit_test(an_arena_without_a_buffer_and_odd_sizes),
        cmocka_unit_test(protobuf_decodes_into_an_arena_as_with_malloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
