/*
 * The kv state machine alone, through the pnode_sm interface the runtime uses: exactly-once
 * writes, deterministic refusals, and snapshots (the same bytes for the same state however it
 * was reached; a restore that validates everything before it replaces anything).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv_codec.h"
#include "kv_sm.h"

typedef struct fixture {
    kv_sm *sm;
    pnode_sm itf;
    uint64_t index; /* of the last entry handed to the state machine */
} fixture;

static void open_sm(fixture *f)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(kv_sm_new(&f->sm), 0);
    kv_sm_interface(f->sm, &f->itf);
}

/* Applies a write at the next index; returns its result. */
static kv_result apply_write(fixture *f, uint8_t op, uint64_t client, uint64_t seq, const char *key,
                             const char *value)
{
    kv_command c = {op, client, seq, key, strlen(key), value, strlen(value)};
    uint8_t *cmd, *out;
    size_t len, out_len;
    assert_int_equal(kv_command_encode(&c, &cmd, &len), 0);
    f->index++;
    assert_int_equal(f->itf.ops->apply(f->sm, f->index, 1, cmd, len, &out, &out_len), 0);
    kv_result r;
    assert_int_equal(kv_result_decode(out, out_len, &r), 0);
    free(cmd);
    free(out);
    return r;
}

/* Field by field: the padding of a struct on the stack is not zero. */
static void assert_same_result(kv_result a, kv_result b)
{
    assert_int_equal(a.status, b.status);
    assert_int_equal(a.index, b.index);
    assert_int_equal(a.last_sequence, b.last_sequence);
}

/* The value of @key ("" and found=false when absent). The caller frees *value. */
static bool get(fixture *f, const char *key, char **value)
{
    uint8_t *out;
    size_t len;
    assert_int_equal(f->itf.ops->query(f->sm, (const uint8_t *)key, strlen(key), &out, &len), 0);
    kv_answer a;
    assert_int_equal(kv_answer_decode(out, len, &a), 0);
    /* Not strndup: the answer's bytes are not NUL-terminated. */
    *value = malloc(a.value_len + 1);
    memcpy(*value, a.value, a.value_len);
    (*value)[a.value_len] = '\0';
    free(out);
    return a.found;
}

static void assert_value(fixture *f, const char *key, const char *want)
{
    char *v;
    bool found = get(f, key, &v);
    if (want == NULL) {
        assert_false(found);
    } else {
        assert_true(found);
        assert_string_equal(v, want);
    }
    free(v);
}

static void test_retry_is_applied_once(void **state)
{
    (void)state;
    fixture f;
    open_sm(&f);
    kv_result first = apply_write(&f, KV_OP_APPEND, 7, 1, "k", "x");
    assert_int_equal(first.status, KV_STATUS_OK);
    assert_int_equal(first.index, 1);
    /* The same write again (the answer was lost): the first answer, nothing applied. */
    kv_result again = apply_write(&f, KV_OP_APPEND, 7, 1, "k", "x");
    assert_same_result(again, first);
    assert_value(&f, "k", "x");
    assert_int_equal(apply_write(&f, KV_OP_APPEND, 7, 2, "k", "y").index, 3);
    /* A delayed duplicate of write 1, after write 2: refused, nothing applied. */
    kv_result stale = apply_write(&f, KV_OP_APPEND, 7, 1, "k", "x");
    assert_int_equal(stale.status, KV_STATUS_STALE);
    assert_int_equal(stale.last_sequence, 2);
    /* Another client's sequences are its own. */
    assert_int_equal(apply_write(&f, KV_OP_APPEND, 8, 1, "k", "z").status, KV_STATUS_OK);
    assert_value(&f, "k", "xyz");
    assert_int_equal(apply_write(&f, KV_OP_PUT, 8, 2, "k", "new").status, KV_STATUS_OK);
    assert_value(&f, "k", "new");
    assert_value(&f, "other", NULL);
    kv_sm_free(f.sm);
}

static void test_too_big_is_refused_the_same_way_on_retry(void **state)
{
    (void)state;
    fixture f;
    open_sm(&f);
    char *big = malloc(KV_VALUE_MAX + 1);
    memset(big, 'v', KV_VALUE_MAX);
    big[KV_VALUE_MAX] = '\0';
    assert_int_equal(apply_write(&f, KV_OP_PUT, 1, 1, "k", big).status, KV_STATUS_OK);
    assert_int_equal(apply_write(&f, KV_OP_APPEND, 1, 2, "k", "!").status, KV_STATUS_TOO_BIG);
    assert_int_equal(apply_write(&f, KV_OP_APPEND, 1, 2, "k", "!").status, KV_STATUS_TOO_BIG);
    assert_int_equal(f.itf.ops->applied_index(f.sm), 3);
    assert_value(&f, "k", big);
    free(big);
    kv_sm_free(f.sm);
}

static void test_bad_commands_change_nothing(void **state)
{
    (void)state;
    fixture f;
    open_sm(&f);
    apply_write(&f, KV_OP_PUT, 1, 1, "k", "v");
    kv_command c = {KV_OP_PUT, 1, 2, "k", 1, "w", 1};
    uint8_t *cmd, *out = NULL;
    size_t len, out_len;
    assert_int_equal(kv_command_encode(&c, &cmd, &len), 0);
    assert_int_equal(f.itf.ops->apply(f.sm, 1, 1, cmd, len, &out, &out_len), PT_EINVAL);
    assert_int_equal(f.itf.ops->apply(f.sm, 2, 1, cmd, len - 1, &out, &out_len), PT_ECORRUPT);
    cmd[0] = 99;
    assert_int_equal(f.itf.ops->apply(f.sm, 2, 1, cmd, len, &out, &out_len), PT_EVERSION);
    assert_null(out);
    assert_int_equal(f.itf.ops->applied_index(f.sm), 1);
    assert_value(&f, "k", "v");
    free(cmd);
    kv_sm_free(f.sm);
}

/* ----- snapshots ----- */

typedef struct buffer {
    uint8_t *data;
    size_t len, pos;
} buffer;

static int to_buffer(void *ctx, const void *data, size_t len)
{
    buffer *b = ctx;
    b->data = realloc(b->data, b->len + len);
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

/* Hands the buffer out in small pieces, as a stream would. */
static int from_buffer(void *ctx, void *out, size_t cap, size_t *n)
{
    buffer *b = ctx;
    size_t left = b->len - b->pos;
    *n = left < cap ? left : cap;
    *n = *n < 7 ? *n : 7;
    memcpy(out, b->data + b->pos, *n);
    b->pos += *n;
    return 0;
}

static buffer snapshot(fixture *f)
{
    void *frozen;
    uint64_t index, term;
    buffer b = {0};
    assert_int_equal(f->itf.ops->snapshot_begin(f->sm, &frozen, &index, &term), 0);
    assert_int_equal(index, f->index);
    /* Changes after the freeze are not in the snapshot. */
    apply_write(f, KV_OP_PUT, 99, f->index + 1, "late", "x");
    assert_int_equal(f->itf.ops->snapshot_write(frozen, to_buffer, &b), 0);
    f->itf.ops->snapshot_end(frozen);
    return b;
}

static void test_snapshot_depends_on_the_state_alone(void **state)
{
    (void)state;
    fixture a, b;
    open_sm(&a);
    open_sm(&b);
    /* The same final state through different histories, at the same index. */
    apply_write(&a, KV_OP_PUT, 1, 1, "a", "1");
    apply_write(&a, KV_OP_PUT, 2, 1, "b", "2");
    apply_write(&a, KV_OP_APPEND, 3, 5, "c", "3");
    apply_write(&b, KV_OP_APPEND, 3, 5, "c", "3");
    apply_write(&b, KV_OP_PUT, 2, 1, "b", "2");
    apply_write(&b, KV_OP_PUT, 1, 1, "a", "1");
    for (fixture *f = &a; f != NULL; f = f == &a ? &b : NULL) {
        /* Equal sessions too: client 1's last write at index 1 in a, 3 in b. Make them equal. */
        apply_write(f, KV_OP_PUT, 1, 2, "a", "1");
        apply_write(f, KV_OP_PUT, 2, 2, "b", "2");
        apply_write(f, KV_OP_APPEND, 3, 6, "c", "");
    }
    buffer sa = snapshot(&a), sb = snapshot(&b);
    assert_int_equal(sa.len, sb.len);
    assert_memory_equal(sa.data, sb.data, sa.len);
    free(sa.data);
    free(sb.data);
    kv_sm_free(a.sm);
    kv_sm_free(b.sm);
}

static void test_restore_brings_back_values_and_sessions(void **state)
{
    (void)state;
    fixture f, g;
    open_sm(&f);
    apply_write(&f, KV_OP_PUT, 1, 1, "k", "v");
    kv_result last = apply_write(&f, KV_OP_APPEND, 1, 2, "k", "w");
    buffer s = snapshot(&f);

    open_sm(&g);
    apply_write(&g, KV_OP_PUT, 5, 1, "gone", "x");
    assert_int_equal(g.itf.ops->restore(g.sm, from_buffer, &s), 0);
    g.index = g.itf.ops->applied_index(g.sm);
    assert_int_equal(g.index, 2);
    assert_value(&g, "k", "vw");
    assert_value(&g, "gone", NULL);
    /* The session came along: the retry of the last write gets its first answer. */
    kv_result retry = apply_write(&g, KV_OP_APPEND, 1, 2, "k", "w");
    assert_same_result(retry, last);
    assert_value(&g, "k", "vw");
    free(s.data);
    kv_sm_free(f.sm);
    kv_sm_free(g.sm);
}

static void test_damaged_snapshot_changes_nothing(void **state)
{
    (void)state;
    fixture f, g;
    open_sm(&f);
    apply_write(&f, KV_OP_PUT, 1, 1, "k", "v");
    buffer s = snapshot(&f);
    open_sm(&g);
    apply_write(&g, KV_OP_PUT, 2, 1, "mine", "m");
    /* Every single flipped byte and every truncation is refused. */
    for (size_t i = 0; i < s.len; i++) {
        s.data[i] ^= 0x20;
        s.pos = 0;
        assert_int_not_equal(g.itf.ops->restore(g.sm, from_buffer, &s), 0);
        s.data[i] ^= 0x20;
        buffer cut = {s.data, i, 0};
        assert_int_equal(g.itf.ops->restore(g.sm, from_buffer, &cut), PT_ECORRUPT);
    }
    assert_int_equal(g.itf.ops->applied_index(g.sm), 1);
    assert_value(&g, "mine", "m");
    assert_value(&g, "k", NULL);
    free(s.data);
    kv_sm_free(f.sm);
    kv_sm_free(g.sm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_is_applied_once),
        cmocka_unit_test(test_too_big_is_refused_the_same_way_on_retry),
        cmocka_unit_test(test_bad_commands_change_nothing),
        cmocka_unit_test(test_snapshot_depends_on_the_state_alone),
        cmocka_unit_test(test_restore_brings_back_values_and_sessions),
        cmocka_unit_test(test_damaged_snapshot_changes_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
