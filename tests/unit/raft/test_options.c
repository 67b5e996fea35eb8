/* Options: defaults from the paper, validation with clear errors; creation from inconsistent
 * storage; status; names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

/* §5.6: broadcast time well below the election timeout; the documented defaults. */
static void defaults_are_valid_and_documented(void **state)
{
    (void)state;
    praft_options o;
    praft_options_init(&o, 7);
    assert_int_equal(o.id, 7);
    assert_int_equal(o.seed, 7);
    assert_int_equal(o.election_ticks, 10);
    assert_int_equal(o.heartbeat_ticks, 1);
    assert_false(o.disable_pre_vote);
    assert_false(o.disable_check_quorum);
    assert_false(o.lease_reads);
    assert_int_equal(o.max_msg_bytes, 1u << 20);
    assert_int_equal(o.max_inflight_msgs, 256);
    assert_int_equal(o.max_inflight_bytes, 32u << 20);
    assert_int_equal(o.snapshot_chunk_bytes, 1u << 20);
    assert_int_equal(o.snapshot_retry_ticks, 20);
    assert_int_equal(o.max_uncommitted_bytes, 64u << 20);
    const char *why = "x";
    assert_int_equal(praft_options_validate(&o, &why), 0);
    assert_null(why);
}

typedef struct bad_case {
    const char *field;
    void (*spoil)(praft_options *o);
} bad_case;

static void s_id(praft_options *o)
{
    o->id = 0;
}
static void s_hb(praft_options *o)
{
    o->heartbeat_ticks = 0;
}
static void s_el(praft_options *o)
{
    o->election_ticks = o->heartbeat_ticks;
}
static void s_lease(praft_options *o)
{
    o->lease_reads = true;
    o->disable_check_quorum = true;
}
static void s_msg(praft_options *o)
{
    o->max_msg_bytes = 0;
}
static void s_infl(praft_options *o)
{
    o->max_inflight_msgs = 0;
}
static void s_inflb(praft_options *o)
{
    o->max_inflight_bytes = o->max_msg_bytes - 1;
}
static void s_chunk(praft_options *o)
{
    o->snapshot_chunk_bytes = 0;
}
static void s_retry(praft_options *o)
{
    o->snapshot_retry_ticks = 0;
}

/* Each invalid option is refused with PT_EINVAL and a message naming the field. */
static void invalid_options_name_the_field(void **state)
{
    (void)state;
    const bad_case cases[] = {
        {"id", s_id},
        {"heartbeat_ticks", s_hb},
        {"election_ticks", s_el},
        {"lease_reads", s_lease},
        {"max_msg_bytes", s_msg},
        {"max_inflight_msgs", s_infl},
        {"max_inflight_bytes", s_inflb},
        {"snapshot_chunk_bytes", s_chunk},
        {"snapshot_retry_ticks", s_retry},
    };
    mstore st;
    ms_init(&st);
    praft_storage s = ms_storage(&st);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        praft_options o;
        praft_options_init(&o, 1);
        cases[i].spoil(&o);
        const char *why = NULL;
        assert_int_equal(praft_options_validate(&o, &why), PT_EINVAL);
        assert_non_null(why);
        assert_non_null(strstr(why, cases[i].field));
        praft_node *n = NULL;
        assert_int_equal(praft_new(&o, &s, &n), PT_EINVAL);
        assert_null(n);
    }
    assert_int_equal(praft_options_validate(NULL, NULL), PT_EINVAL);
    ms_free(&st);
}

/* praft_new refuses storage whose contents contradict each other. */
static void inconsistent_storage_is_corrupt(void **state)
{
    (void)state;
    praft_options o;
    praft_options_init(&o, 1);
    mstore st;
    ms_init(&st);
    st.hs.commit = 5; /* beyond the (empty) log */
    praft_storage s = ms_storage(&st);
    praft_node *n = NULL;
    assert_int_equal(praft_new(&o, &s, &n), PT_ECORRUPT);
    st.hs.commit = 0;
    uint8_t junk[3] = {1, 2, 3};
    praft_entry e = {.index = 1, .term = 1, .type = PRAFT_ENTRY_CONFIG, .len = 3, .data = junk};
    praft_ready rd = {.entries = &e, .n_entries = 1};
    ms_write(&st, &rd);
    assert_int_equal(praft_new(&o, &s, &n), PT_ECORRUPT);
    ms_free(&st);
    /* a blank store is fine: a node waiting to be added */
    ms_init(&st);
    s = ms_storage(&st);
    assert_int_equal(praft_new(&o, &s, &n), 0);
    praft_status out;
    praft_status_get(n, &out);
    assert_int_equal(out.role, PRAFT_FOLLOWER);
    assert_int_equal(out.first_index, 1);
    assert_int_equal(out.last_index, 0);
    assert_int_equal(out.config.n_members, 0);
    assert_int_equal(praft_propose(n, "x", 1, NULL, NULL), PT_ENOTLEADER);
    praft_free(n);
    ms_free(&st);
}

/* The status of a leader lists each follower's progress; counters count. */
static void status_reports_progress_and_counters(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    uint64_t idx = 0, term = 0;
    assert_int_equal(praft_propose(c.t[1].n, "abc", 3, &idx, &term), 0);
    assert_int_equal(idx, 3);
    assert_int_equal(term, 2);
    cl_settle(&c);
    praft_status *s = cl_status(&c, 1);
    assert_int_equal(s->id, 1);
    assert_int_equal(s->role, PRAFT_LEADER);
    assert_int_equal(s->leader, 1);
    assert_int_equal(s->vote, 1);
    assert_int_equal(s->commit, 3);
    assert_int_equal(s->applied, 3);
    assert_int_equal(s->n_progress, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(s->progress[i].match, 3);
        assert_int_equal(s->progress[i].next, 4);
        assert_int_equal(s->progress[i].state, PRAFT_PROGRESS_REPLICATE);
        assert_true(s->progress[i].recently_active);
    }
    assert_int_equal(s->counters.entries_proposed, 1);
    assert_true(s->counters.msgs_sent >= 4);
    assert_true(s->counters.msgs_received >= 4);
    s = cl_status(&c, 2);
    assert_int_equal(s->n_progress, 0);
    assert_int_equal(s->leader, 1);
    cl_free(&c);
}

/* Proposals: limits and errors. */
static void proposal_limits(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, NULL);
    cl_elect(&c, 1);
    assert_int_equal(praft_propose(c.t[1].n, NULL, 5, NULL, NULL), PT_EINVAL);
    assert_int_equal(praft_propose(c.t[1].n, "x", (size_t)UINT32_MAX + 1, NULL, NULL), PT_ETOOBIG);
    assert_int_equal(praft_propose(c.t[1].n, NULL, 0, NULL, NULL), 0); /* empty is fine */
    cl_free(&c);
}

static void small_uncommitted(praft_options *o)
{
    o->max_uncommitted_bytes = 10;
}

/* Flow control: past max_uncommitted_bytes of uncommitted entries, proposals get PT_EBUSY. */
static void uncommitted_bytes_are_bounded(void **state)
{
    (void)state;
    cluster c;
    cl_init(&c, 3, 0, small_uncommitted);
    cl_elect(&c, 1);
    assert_int_equal(praft_propose(c.t[1].n, "12345678", 8, NULL, NULL), 0);
    assert_int_equal(praft_propose(c.t[1].n, "12345678", 8, NULL, NULL), PT_EBUSY);
    cl_settle(&c);
    assert_int_equal(praft_propose(c.t[1].n, "12345678", 8, NULL, NULL), 0);
    cl_free(&c);
}

static void names(void **state)
{
    (void)state;
    assert_string_equal(praft_role_name(PRAFT_LEADER), "leader");
    assert_string_equal(praft_role_name(PRAFT_FOLLOWER), "follower");
    assert_string_equal(praft_role_name(PRAFT_CANDIDATE), "candidate");
    assert_string_equal(praft_role_name(PRAFT_LEARNER), "learner");
    assert_string_equal(praft_role_name(0), "unknown");
    assert_string_equal(praft_progress_state_name(PRAFT_PROGRESS_PROBE), "probe");
    assert_string_equal(praft_progress_state_name(PRAFT_PROGRESS_REPLICATE), "replicate");
    assert_string_equal(praft_progress_state_name(PRAFT_PROGRESS_SNAPSHOT), "snapshot");
    assert_string_equal(praft_progress_state_name(9), "unknown");
    assert_string_equal(praft_msg_type_name(PRAFT_MSG_VOTE_RESP), "VOTE_RESP");
    assert_string_equal(praft_msg_type_name(PRAFT_MSG_READ_INDEX_RESP), "READ_INDEX_RESP");
    assert_string_equal(praft_msg_type_name(0), "UNKNOWN");
    assert_string_equal(praft_msg_type_name(14), "UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_valid_and_documented),
        cmocka_unit_test(invalid_options_name_the_field),
        cmocka_unit_test(inconsistent_storage_is_corrupt),
        cmocka_unit_test(status_reports_progress_and_counters),
        cmocka_unit_test(proposal_limits),
        cmocka_unit_test(uncommitted_bytes_are_bounded),
        cmocka_unit_test(names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
