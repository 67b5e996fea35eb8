/* Checksums: stable across runs, sensitive to every bit, identical one-shot and incremental. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/checksum.h"

static void known_value_is_stable(void **state)
{
    (void)state;
    /* XXH3-64 of the empty input is a published constant of the algorithm. */
    assert_true(pt__checksum(NULL, 0) == UINT64_C(0x2D06800538D394C2));
}

static void every_single_bit_flip_changes_the_sum(void **state)
{
    (void)state;
    uint8_t buf[64];
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)(i * 37 + 11);
    }
    uint64_t base = pt__checksum(buf, sizeof(buf));
    for (size_t bit = 0; bit < sizeof(buf) * 8; bit++) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_true(pt__checksum(buf, sizeof(buf)) != base);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_true(pt__checksum(buf, sizeof(buf)) == base);
}

static void incremental_equals_one_shot(void **state)
{
    (void)state;
    uint8_t buf[1000];
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)(i ^ (i >> 3));
    }
    pt_checksum_state *s = pt__checksum_new();
    assert_non_null(s);
    size_t off = 0, step = 1;
    while (off < sizeof(buf)) {
        size_t n = step < sizeof(buf) - off ? step : sizeof(buf) - off;
        pt__checksum_update(s, buf + off, n);
        off += n;
        step = step * 3 + 1;
    }
    assert_true(pt__checksum_digest(s) == pt__checksum(buf, sizeof(buf)));
    pt__checksum_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_value_is_stable),
        cmocka_unit_test(every_single_bit_flip_changes_the_sum),
        cmocka_unit_test(incremental_equals_one_shot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
