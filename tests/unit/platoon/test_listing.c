/* GetPlatoon listings: a large platoon read page by page at the revision of the first page
 * while writes go on, page tokens, and the bounds on listings. Driven through the state
 * machine's interface (apply and query), as the node's loop drives it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <cmocka.h>

#include "helpers.h"
#include "platoon/listing.h"
#include "platoon/state.h"
#include "platoon/v1/platoon.pb-c.h"

/* The size the issue reported: its single answer (~69 MB) no longer fit a 64 MiB message. */
#define BIG_PLATOON 1500000u

#define MESSAGE_CAP ((size_t)64 << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void apply_update(tsm *t, uint64_t index, uint64_t id, double lat)
{
    pveh_vehicle v = veh(id, lat, 10.0, 20.0, 30.0);
    uint8_t *cmd = NULL, *res = NULL;
    size_t len = 0, res_len = 0;
    assert_int_equal(pveh_command_update(&v, 0, 0, 1000, &cmd, &len), 0);
    assert_int_equal(t->iface.ops->apply(t->iface.ctx, index, 1, cmd, len, &res, &res_len), 0);
    free(cmd);
    free(res);
}

static void apply_delete(tsm *t, uint64_t index, uint64_t id)
{
    uint8_t *cmd = NULL, *res = NULL;
    size_t len = 0, res_len = 0;
    assert_int_equal(pveh_command_delete(id, 0, 0, 1000, &cmd, &len), 0);
    assert_int_equal(t->iface.ops->apply(t->iface.ctx, index, 1, cmd, len, &res, &res_len), 0);
    free(cmd);
    free(res);
}

/* Opens a listing through the query interface for @principal; returns its result. */
static pveh_listing_result open_listing_as(tsm *t, int64_t now_ms, uint32_t page_size,
                                           uint64_t principal)
{
    uint8_t *q = NULL, *res = NULL;
    size_t q_len = 0, res_len = 0;
    assert_int_equal(pveh__listing_query(now_ms, page_size, principal, &q, &q_len), 0);
    assert_int_equal(t->iface.ops->query(t->iface.ctx, q, q_len, &res, &res_len), 0);
    pveh_listing_result r;
    assert_int_equal(pveh__listing_result_decode(res, res_len, &r), 0);
    assert_int_equal(r.page_size, page_size);
    free(q);
    free(res);
    return r;
}

/* The same for a principal of its own each time. */
static pveh_listing_result open_listing(tsm *t, int64_t now_ms, uint32_t page_size)
{
    static uint64_t next_principal = 1000;
    return open_listing_as(t, now_ms, page_size, next_principal++);
}

/* The packed size of a GetPlatoon answer holding @page, as the service builds it. */
static size_t packed_size(const pveh_vehicle *page, size_t n, const char *token, uint64_t rev)
{
    Platoon__V1__Vehicle *vs = calloc(n ? n : 1, sizeof(*vs));
    Platoon__V1__Vehicle **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
    assert_non_null(vs);
    assert_non_null(ptrs);
    for (size_t i = 0; i < n; i++) {
        platoon__v1__vehicle__init(&vs[i]);
        vs[i].id = page[i].id;
        vs[i].latitude = page[i].latitude;
        vs[i].longitude = page[i].longitude;
        vs[i].speed = page[i].speed;
        vs[i].heading = page[i].heading;
        vs[i].revision = page[i].revision;
        ptrs[i] = &vs[i];
    }
    Platoon__V1__GetPlatoonResponse resp = PLATOON__V1__GET_PLATOON_RESPONSE__INIT;
    resp.n_vehicles = n;
    resp.vehicles = ptrs;
    resp.revision = rev;
    resp.leader_id = 1;
    resp.next_page_token = (char *)token;
    size_t size = platoon__v1__get_platoon_response__get_packed_size(&resp);
    free(vs);
    free(ptrs);
    return size;
}

/* What the unpaged answer of old would have been: every vehicle in one message. */
static size_t unpaged_size(size_t n_vehicles)
{
    pveh_vehicle v = veh(UINT64_C(1) << 40, -45.123456, 120.5, 33.3, 359.9);
    v.revision = UINT64_C(1) << 40;
    return packed_size(&v, 1, "", 0) * n_vehicles;
}

static void a_large_platoon_reads_page_by_page_at_one_revision(void **state)
{
    (void)state;
    tsm t;
    tsm_new(&t, NULL);
    double t0 = now_s();
    /* Every even id from 2: vehicle i at index i, latitude a function of its id. */
    uint64_t index = 0;
    for (uint64_t i = 1; i <= BIG_PLATOON; i++) {
        apply_update(&t, ++index, 2 * i, (double)(i % 180) - 89.0);
    }
    double built = now_s() - t0;
    assert_int_equal(pveh_sm_vehicle_count(t.sm), BIG_PLATOON);
    uint64_t pinned = index;

    t0 = now_s();
    pveh_listing_result r = open_listing(&t, 1000, 10000);
    assert_int_equal(r.status, PVEH_LISTING_OPEN_OK);
    assert_int_equal(r.revision, pinned);
    pveh_listings *ls = &t.sm->listings;

    pveh_vehicle *page = malloc(PVEH_PAGE_SIZE_MAX * sizeof(*page));
    assert_non_null(page);
    char token[PVEH_PAGE_TOKEN_LEN + 1] = "";
    uint64_t after = 0, seen = 0, next_id = 2, writes = 0;
    size_t largest = 0, pages = 0;
    uint64_t seed = 7;
    for (;;) {
        pveh_listing *li;
        if (pages == 0) {
            li = pveh__listing_find(ls, r.listing);
        } else {
            pveh_page_token tok;
            assert_int_equal(pveh__page_token_parse(token, &tok), 0);
            assert_int_equal(tok.revision, pinned);
            assert_int_equal(tok.node_id, 3);
            li = pveh__listing_find(ls, tok.listing);
            assert_non_null(li);
            assert_int_equal(li->secret, tok.secret);
            after = tok.after;
        }
        assert_non_null(li);
        assert_int_equal(li->revision, pinned);
        size_t n = 0;
        pveh__listing_page(ls, li, 3, after, PVEH_PAGE_SIZE_MAX, page, &n, token);
        pages++;
        for (size_t i = 0; i < n; i++) {
            /* Exactly the vehicles of the pinned revision, each once, in id order. */
            assert_int_equal(page[i].id, next_id);
            assert_int_equal(page[i].revision, next_id / 2);
            assert_true(page[i].latitude == (double)((next_id / 2) % 180) - 89.0);
            next_id += 2;
            seen++;
        }
        size_t size = packed_size(page, n, token, pinned);
        if (size > largest) {
            largest = size;
        }
        if (token[0] == '\0') {
            break;
        }
        /* Writes between pages: replacements ahead of the reader and behind it, new ids in
         * the gaps, deletions; none may show in the listing. */
        for (int w = 0; w < 50; w++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            uint64_t id = 2 * ((seed >> 20) % BIG_PLATOON + 1);
            switch (w % 4) {
            case 0:
                apply_update(&t, ++index, id, 1.5);
                break;
            case 1:
                apply_update(&t, ++index, id + 1, 2.5); /* odd: new */
                break;
            case 2:
                apply_delete(&t, ++index, id);
                break;
            default:
                apply_update(&t, ++index, 2 * BIG_PLATOON + 2 * (uint64_t)w + 2, 3.5);
                break;
            }
            writes++;
        }
    }
    double paged = now_s() - t0;
    assert_int_equal(seen, BIG_PLATOON);
    assert_int_equal(pages, (BIG_PLATOON + PVEH_PAGE_SIZE_MAX - 1) / PVEH_PAGE_SIZE_MAX);
    /* The last page closed the listing. */
    assert_int_equal(pveh__listings_count(ls), 0);
    /* Pages stay far under the cap that the single answer of old broke through. */
    assert_true(largest < MESSAGE_CAP / 64);
    assert_true(unpaged_size(BIG_PLATOON) > MESSAGE_CAP);
    assert_true(pveh_sm_applied_index(t.sm) == pinned + writes);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    print_message("%u vehicles: built by apply in %.2f s; %zu pages of up to %u read in %.2f s "
                  "with %llu writes between them; largest page %zu bytes (unpaged: %zu); peak "
                  "RSS %ld MiB\n",
                  BIG_PLATOON, built, pages, PVEH_PAGE_SIZE_MAX, paged, (unsigned long long)writes,
                  largest, unpaged_size(BIG_PLATOON), ru.ru_maxrss / 1024);
    free(page);
    tsm_free(&t);
}

static void listings_are_bounded_and_expire(void **state)
{
    (void)state;
    tsm t;
    tsm_new(&t, NULL);
    for (uint64_t i = 1; i <= 3000; i++) {
        apply_update(&t, i, i, 0.0);
    }
    pveh_listings *ls = &t.sm->listings;
    uint64_t ids[PVEH_LISTINGS_MAX];
    for (int i = 0; i < PVEH_LISTINGS_MAX; i++) {
        pveh_listing_result r = open_listing(&t, 1000 + i * 1000, 100);
        assert_int_equal(r.status, PVEH_LISTING_OPEN_OK);
        ids[i] = r.listing;
        for (int j = 0; j < i; j++) {
            assert_true(ids[j] != ids[i]);
        }
    }
    assert_int_equal(pveh__listings_count(ls), PVEH_LISTINGS_MAX);
    pveh_listing_result full = open_listing(&t, 9000, 100);
    assert_int_equal(full.status, PVEH_LISTING_OPEN_FULL);
    pveh__listings_free(ls);
    pveh__listings_init(ls);

    /* One principal holds at most its share: another still gets one. */
    for (int i = 0; i < PVEH_LISTINGS_PER_PRINCIPAL_MAX; i++) {
        assert_int_equal(open_listing_as(&t, 1000, 100, 7).status, PVEH_LISTING_OPEN_OK);
    }
    assert_int_equal(open_listing_as(&t, 1000, 100, 7).status, PVEH_LISTING_OPEN_MINE);
    assert_int_equal(open_listing_as(&t, 1000, 100, 8).status, PVEH_LISTING_OPEN_OK);
    pveh__listings_free(ls);
    pveh__listings_init(ls);
    for (int i = 0; i < PVEH_LISTINGS_MAX; i++) {
        pveh_listing_result r = open_listing(&t, 1000 + i * 1000, 100);
        assert_int_equal(r.status, PVEH_LISTING_OPEN_OK);
        ids[i] = r.listing;
    }

    /* Idle for longer than the limit: dropped; the others stay. The first was opened at
     * 1000, the second at 2000. */
    pveh__listings_expire(ls, 1000 + PVEH_LISTING_IDLE_MS + 1);
    assert_null(pveh__listing_find(ls, ids[0]));
    assert_non_null(pveh__listing_find(ls, ids[1]));
    assert_int_equal(pveh__listings_count(ls), PVEH_LISTINGS_MAX - 1);
    pveh_listing_result again = open_listing(&t, 70000, 100);
    assert_int_equal(again.status, PVEH_LISTING_OPEN_OK);
    assert_true(again.listing > ids[PVEH_LISTINGS_MAX - 1]); /* ids are never reused */

    /* A listing that reached its end is closed at once. */
    pveh_listing *li = pveh__listing_find(ls, ids[1]);
    pveh_vehicle *page = malloc(3000 * sizeof(*page));
    size_t n = 0;
    char token[PVEH_PAGE_TOKEN_LEN + 1];
    pveh__listing_page(ls, li, 1, 0, 3000, page, &n, token);
    assert_int_equal(n, 3000);
    assert_string_equal(token, "");
    assert_null(pveh__listing_find(ls, ids[1]));
    free(page);
    /* The rest is released with the state machine (ASan checks for leaks). */
    tsm_free(&t);
}

static void a_snapshot_drops_abandoned_listings(void **state)
{
    (void)state;
    tsm t;
    tsm_new(&t, NULL);
    for (uint64_t i = 1; i <= 100; i++) {
        apply_update(&t, i, i, 0.0);
    }
    int64_t now = pveh__listings_now_ms();
    pveh_listing_result old = open_listing(&t, now - PVEH_LISTING_IDLE_MS - 1000, 10);
    pveh_listing_result fresh = open_listing(&t, now, 10);
    void *frozen = NULL;
    assert_int_equal(t.iface.ops->snapshot_begin(t.iface.ctx, &frozen, NULL, NULL), 0);
    t.iface.ops->snapshot_end(frozen);
    assert_null(pveh__listing_find(&t.sm->listings, old.listing));
    assert_non_null(pveh__listing_find(&t.sm->listings, fresh.listing));
    tsm_free(&t);
}

static void an_empty_platoon_is_one_empty_page(void **state)
{
    (void)state;
    tsm t;
    tsm_new(&t, NULL);
    apply_delete(&t, 1, 5);
    pveh_listing_result r = open_listing(&t, 0, 0);
    assert_int_equal(r.revision, 1);
    pveh_listing *li = pveh__listing_find(&t.sm->listings, r.listing);
    pveh_vehicle page[1];
    size_t n = 1;
    char token[PVEH_PAGE_TOKEN_LEN + 1];
    pveh__listing_page(&t.sm->listings, li, 1, 0, 1, page, &n, token);
    assert_int_equal(n, 0);
    assert_string_equal(token, "");
    assert_int_equal(pveh__listings_count(&t.sm->listings), 0);
    tsm_free(&t);
}

static void page_tokens_round_trip_and_refuse_garbage(void **state)
{
    (void)state;
    pveh_page_token t = {.node_id = 3,
                         .incarnation = 0x0123456789abcdefu,
                         .listing = 42,
                         .secret = UINT64_MAX,
                         .revision = 99,
                         .after = 1234567};
    char text[PVEH_PAGE_TOKEN_LEN + 1];
    pveh__page_token_format(&t, text);
    assert_int_equal(strlen(text), PVEH_PAGE_TOKEN_LEN);
    pveh_page_token back;
    assert_int_equal(pveh__page_token_parse(text, &back), 0);
    assert_memory_equal(&back, &t, sizeof(t));

    const char *bad[] = {"", "xyz", "01", "not a token at all"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(pveh__page_token_parse(bad[i], &back), PT_EMALFORMED);
    }
    char edited[PVEH_PAGE_TOKEN_LEN + 2];
    memcpy(edited, text, sizeof(text));
    edited[0] = '9'; /* another version */
    assert_int_equal(pveh__page_token_parse(edited, &back), PT_EMALFORMED);
    memcpy(edited, text, sizeof(text));
    edited[5] = 'G'; /* not hex */
    assert_int_equal(pveh__page_token_parse(edited, &back), PT_EMALFORMED);
    memcpy(edited, text, sizeof(text));
    edited[PVEH_PAGE_TOKEN_LEN] = '0'; /* too long */
    edited[PVEH_PAGE_TOKEN_LEN + 1] = '\0';
    assert_int_equal(pveh__page_token_parse(edited, &back), PT_EMALFORMED);
    t.listing = 0;
    pveh__page_token_format(&t, text);
    assert_int_equal(pveh__page_token_parse(text, &back), PT_EMALFORMED);

    /* A listing query is never taken for another query, and garbage is refused. */
    uint8_t *q = NULL;
    size_t q_len = 0;
    assert_int_equal(pveh_query_list(&q, &q_len), 0);
    assert_false(pveh__listing_query_is(q, q_len));
    free(q);
    tsm sm;
    tsm_new(&sm, NULL);
    uint8_t junk[3] = {0xA7, 1, 2};
    uint8_t *res = NULL;
    size_t res_len = 0;
    assert_int_equal(sm.iface.ops->query(sm.iface.ctx, junk, sizeof(junk), &res, &res_len),
                     PT_EMALFORMED);
    pveh_listing_result r;
    assert_int_equal(pveh__listing_result_decode(junk, sizeof(junk), &r), PT_EMALFORMED);
    tsm_free(&sm);
}

static void page_sizes_have_a_default_a_maximum_and_an_unpaged_bound(void **state)
{
    (void)state;
    size_t limit = 0;
    assert_int_equal(pveh__listing_first_limit(0, 0, &limit), 0);
    assert_int_equal(limit, 0);
    assert_int_equal(pveh__listing_first_limit(0, PVEH_UNPAGED_MAX, &limit), 0);
    assert_int_equal(limit, PVEH_UNPAGED_MAX);
    assert_int_equal(pveh__listing_first_limit(0, PVEH_UNPAGED_MAX + 1, &limit), PT_ETOOBIG);
    assert_int_equal(pveh__listing_first_limit(1, 5000000, &limit), 0);
    assert_int_equal(limit, 1);
    assert_int_equal(pveh__listing_first_limit(PVEH_PAGE_SIZE_MAX + 1, 5000000, &limit), 0);
    assert_int_equal(limit, PVEH_PAGE_SIZE_MAX);
    assert_int_equal(pveh__listing_first_limit(UINT32_MAX, 3, &limit), 0);
    assert_int_equal(limit, PVEH_PAGE_SIZE_MAX);
    assert_int_equal(pveh__listing_next_limit(0), PVEH_PAGE_SIZE_MAX);
    assert_int_equal(pveh__listing_next_limit(7), 7);
    assert_int_equal(pveh__listing_next_limit(UINT32_MAX), PVEH_PAGE_SIZE_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_large_platoon_reads_page_by_page_at_one_revision),
        cmocka_unit_test(listings_are_bounded_and_expire),
        cmocka_unit_test(a_snapshot_drops_abandoned_listings),
        cmocka_unit_test(an_empty_platoon_is_one_empty_page),
        cmocka_unit_test(page_tokens_round_trip_and_refuse_garbage),
        cmocka_unit_test(page_sizes_have_a_default_a_maximum_and_an_unpaged_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
