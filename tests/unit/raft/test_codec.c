/* The configuration codec (CONFIG entries): round trip, validation, corruption detection;
 * and the bootstrap entry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

static praft_config sample(void)
{
    praft_config c;
    memset(&c, 0, sizeof(c));
    c.joint = true;
    c.n_members = 3;
    c.members[0] = (praft_member){.id = 1, .role = PRAFT_ROLE_VOTER, .old_role = PRAFT_ROLE_VOTER};
    c.members[1] = (praft_member){.id = 5, .role = PRAFT_ROLE_VOTER, .old_role = PRAFT_ROLE_NONE};
    c.members[2] = (praft_member){.id = 9, .role = PRAFT_ROLE_NONE, .old_role = PRAFT_ROLE_VOTER};
    strcpy(c.members[0].address, "10.0.0.1:7000");
    strcpy(c.members[1].address, "node-5.example:7000");
    return c;
}

static void config_round_trips(void **state)
{
    (void)state;
    praft_config c = sample(), d;
    uint8_t *data;
    size_t len;
    assert_int_equal(praft_config_encode(&c, &data, &len), 0);
    assert_int_equal(praft_config_decode(data, len, &d), 0);
    assert_true(d.joint);
    assert_int_equal(d.n_members, 3);
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(d.members[i].id, c.members[i].id);
        assert_int_equal(d.members[i].role, c.members[i].role);
        assert_int_equal(d.members[i].old_role, c.members[i].old_role);
        assert_string_equal(d.members[i].address, c.members[i].address);
    }
    assert_non_null(praft_config_find(&d, 5));
    assert_null(praft_config_find(&d, 6));
    assert_null(praft_config_find(NULL, 5));
    free(data);
}

/* Any flipped bit, any truncation is detected: PT_ECORRUPT, never a crash. */
static void corruption_is_detected(void **state)
{
    (void)state;
    praft_config c = sample(), d;
    uint8_t *data;
    size_t len;
    assert_int_equal(praft_config_encode(&c, &data, &len), 0);
    for (size_t i = 0; i < len; i++) {
        for (int b = 0; b < 8; b++) {
            data[i] ^= (uint8_t)(1u << b);
            assert_int_equal(praft_config_decode(data, len, &d), PT_ECORRUPT);
            data[i] ^= (uint8_t)(1u << b);
        }
    }
    for (size_t l = 0; l < len; l++) {
        assert_int_equal(praft_config_decode(data, l, &d), PT_ECORRUPT);
    }
    assert_int_equal(praft_config_decode(NULL, len, &d), PT_ECORRUPT);
    free(data);
}

/* Invalid configurations are not encoded. */
static void invalid_configs_are_refused(void **state)
{
    (void)state;
    uint8_t *data;
    size_t len;
    praft_config c = sample();
    c.members[1].id = 1; /* duplicate / unsorted */
    assert_int_equal(praft_config_encode(&c, &data, &len), PT_EINVAL);
    c = sample();
    c.members[0].id = 0;
    assert_int_equal(praft_config_encode(&c, &data, &len), PT_EINVAL);
    c = sample();
    c.joint = false; /* old roles in a simple config */
    assert_int_equal(praft_config_encode(&c, &data, &len), PT_EINVAL);
    c = sample();
    c.n_members = 1;
    c.members[0].role = PRAFT_ROLE_LEARNER; /* no voter in C_new */
    assert_int_equal(praft_config_encode(&c, &data, &len), PT_EINVAL);
    c = sample();
    c.members[0].role = 7;
    assert_int_equal(praft_config_encode(&c, &data, &len), PT_EINVAL);
    c = sample();
    c.n_members = 0;
    assert_int_equal(praft_config_encode(&c, &data, &len), PT_EINVAL);
    c = sample();
    memset(c.members[0].address, 'a', PRAFT_ADDRESS_MAX); /* not terminated */
    assert_int_equal(praft_config_encode(&c, &data, &len), PT_EINVAL);
    assert_int_equal(praft_config_encode(NULL, &data, &len), PT_EINVAL);
}

/* The bootstrap entry is index 1, term 1, a simple configuration with a voter. */
static void bootstrap_entry(void **state)
{
    (void)state;
    praft_config c = sample();
    praft_entry e;
    assert_int_equal(praft_bootstrap_entry(&c, &e), PT_EINVAL); /* joint */
    c.joint = false;
    c.n_members = 2;
    c.members[0].old_role = PRAFT_ROLE_NONE;
    c.members[1].old_role = PRAFT_ROLE_NONE;
    assert_int_equal(praft_bootstrap_entry(&c, &e), 0);
    assert_int_equal(e.index, 1);
    assert_int_equal(e.term, 1);
    assert_int_equal(e.type, PRAFT_ENTRY_CONFIG);
    praft_config d;
    assert_int_equal(praft_config_decode(e.data, e.len, &d), 0);
    assert_int_equal(d.n_members, 2);
    free(e.data);
    assert_int_equal(praft_bootstrap_entry(NULL, &e), PT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_round_trips),
        cmocka_unit_test(corruption_is_detected),
        cmocka_unit_test(invalid_configs_are_refused),
        cmocka_unit_test(bootstrap_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
