/* The error table: every code is negative, far from errno, unique, named and described. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "platoon/error.h"

static const int all_codes[] = {
#define X(name, value, text) name,
    PT_ERROR_TABLE(X)
#undef X
};
#define N_CODES (sizeof(all_codes) / sizeof(all_codes[0]))

static void codes_are_negative_and_never_errno(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CODES; i++) {
        assert_true(all_codes[i] <= -1000);
        /* errno values are small positive numbers; ours must not collide even when negated. */
        assert_true(-all_codes[i] > EHWPOISON);
    }
}

static void codes_are_unique(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CODES; i++) {
        for (size_t j = i + 1; j < N_CODES; j++) {
            assert_int_not_equal(all_codes[i], all_codes[j]);
        }
    }
}

static void every_code_has_a_description_and_a_name(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CODES; i++) {
        assert_string_not_equal(pt_strerror(all_codes[i]), "unknown error");
        assert_true(strncmp(pt_error_name(all_codes[i]), "PT_E", 4) == 0);
        assert_string_not_equal(pt_error_name(all_codes[i]), "PT_E?");
    }
    assert_string_equal(pt_strerror(PT_ENOMEM), "out of memory");
    assert_string_equal(pt_error_name(PT_ECORRUPT), "PT_ECORRUPT");
}

static void success_and_unknown_codes(void **state)
{
    (void)state;
    assert_string_equal(pt_strerror(0), "success");
    assert_string_equal(pt_error_name(0), "PT_OK");
    assert_string_equal(pt_strerror(-5), "unknown error");
    assert_string_equal(pt_strerror(12345), "unknown error");
    assert_string_equal(pt_error_name(-5), "PT_E?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(codes_are_negative_and_never_errno),
        cmocka_unit_test(codes_are_unique),
        cmocka_unit_test(every_code_has_a_description_and_a_name),
        cmocka_unit_test(success_and_unknown_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
