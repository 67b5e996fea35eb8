/* Listings of the platoon read page by page at one revision: see listing.h. */
#include "platoon/listing.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "platoon/bytes.h"
#include "platoon/codec.h"
#include "platoon/state.h"

/* The first byte of a listing query: no version of pveh_query_decode's format starts so, so
 * the two kinds cannot be confused. */
#define LISTING_QUERY_TAG  0xA7
#define LISTING_QUERY_LEN  21
#define LISTING_RESULT_LEN 21
#define TOKEN_VERSION      1
#define TOKEN_BYTES        (1 + 6 * 8)

/* 64 random bits for ids that must not be guessed. Not part of the replicated state, so the
 * state machine's determinism is untouched. Falls back to the clocks (still unique per
 * process, no longer secret) if the kernel's generator cannot be read. */
static uint64_t random64(void)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == (ssize_t)sizeof(r) && r != 0) {
        return r;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_REALTIME, &a);
    clock_gettime(CLOCK_MONOTONIC, &b);
    r = ((uint64_t)a.tv_sec * 1000000007u) ^ (uint64_t)a.tv_nsec ^ ((uint64_t)b.tv_nsec << 32);
    return r != 0 ? r : 1;
}

void pveh__listings_init(pveh_listings *l)
{
    memset(l, 0, sizeof(*l));
    l->incarnation = random64();
    l->next_id = 1;
}

void pveh__listing_close(pveh_listing *li)
{
    pveh__map_free(&li->view);
    li->id = 0;
}

void pveh__listings_free(pveh_listings *l)
{
    for (size_t i = 0; i < PVEH_LISTINGS_MAX; i++) {
        if (l->slot[i].id != 0) {
            pveh__listing_close(&l->slot[i]);
        }
    }
}

void pveh__listings_expire(pveh_listings *l, int64_t now_ms)
{
    for (size_t i = 0; i < PVEH_LISTINGS_MAX; i++) {
        pveh_listing *li = &l->slot[i];
        if (li->id != 0 && now_ms - li->last_used_ms > PVEH_LISTING_IDLE_MS) {
            pveh__listing_close(li);
        }
    }
}

int64_t pveh__listings_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t pveh__listings_count(const pveh_listings *l)
{
    size_t n = 0;
    for (size_t i = 0; i < PVEH_LISTINGS_MAX; i++) {
        n += l->slot[i].id != 0;
    }
    return n;
}

pveh_listing *pveh__listing_find(pveh_listings *l, uint64_t id)
{
    for (size_t i = 0; id != 0 && i < PVEH_LISTINGS_MAX; i++) {
        if (l->slot[i].id == id) {
            return &l->slot[i];
        }
    }
    return NULL;
}

int pveh__listing_first_limit(uint32_t page_size, size_t n, size_t *limit)
{
    if (page_size == 0) {
        /* Unpaged, as clients from before paging ask: all of it, or a clear refusal rather
         * than a first page that such a client would take for the whole platoon. */
        *limit = n;
        return n <= PVEH_UNPAGED_MAX ? 0 : PT_ETOOBIG;
    }
    *limit = page_size < PVEH_PAGE_SIZE_MAX ? page_size : PVEH_PAGE_SIZE_MAX;
    return 0;
}

size_t pveh__listing_next_limit(uint32_t page_size)
{
    return page_size == 0 || page_size > PVEH_PAGE_SIZE_MAX ? PVEH_PAGE_SIZE_MAX : page_size;
}

void pveh__listing_page(const pveh_listings *l, pveh_listing *li, uint64_t node_id, uint64_t after,
                        size_t limit, pveh_vehicle *out, size_t *n,
                        char token[PVEH_PAGE_TOKEN_LEN + 1])
{
    pveh_map_iter it;
    pveh__map_seek_after(&li->view, after, &it);
    size_t got = 0;
    const pveh_vehicle *v;
    while (got < limit && (v = pveh__map_next(&it)) != NULL) {
        out[got++] = *v;
    }
    *n = got;
    token[0] = '\0';
    if (got > 0 && pveh__map_next(&it) != NULL) {
        pveh_page_token t = {.node_id = node_id,
                             .incarnation = l->incarnation,
                             .listing = li->id,
                             .secret = li->secret,
                             .revision = li->revision,
                             .after = out[got - 1].id};
        pveh__page_token_format(&t, token);
    } else {
        pveh__listing_close(li); /* the last page: nothing more to keep */
    }
}

int pveh__listing_query(int64_t now_ms, uint32_t page_size, uint64_t principal, uint8_t **out,
                        size_t *out_len)
{
    uint8_t *q = malloc(LISTING_QUERY_LEN);
    if (q == NULL) {
        return PT_ENOMEM;
    }
    q[0] = LISTING_QUERY_TAG;
    pveh__put_u64(q + 1, (uint64_t)now_ms);
    pveh__put_u32(q + 9, page_size);
    pveh__put_u64(q + 13, principal);
    *out = q;
    *out_len = LISTING_QUERY_LEN;
    return 0;
}

bool pveh__listing_query_is(const uint8_t *query, size_t len)
{
    return len > 0 && query != NULL && query[0] == LISTING_QUERY_TAG;
}

int pveh__listing_query_run(struct pveh_sm *sm, const uint8_t *query, size_t len, uint8_t **result,
                            size_t *result_len)
{
    if (len != LISTING_QUERY_LEN || !pveh__listing_query_is(query, len)) {
        return PT_EMALFORMED;
    }
    int64_t now_ms = (int64_t)pveh__get_u64(query + 1);
    uint8_t *out = malloc(LISTING_RESULT_LEN);
    if (out == NULL) {
        return PT_ENOMEM;
    }
    uint64_t principal = pveh__get_u64(query + 13);
    pveh_listings *l = &sm->listings;
    pveh_listing *li = NULL;
    size_t mine = 0;
    for (size_t i = 0; i < PVEH_LISTINGS_MAX; i++) {
        if (l->slot[i].id == 0 && li == NULL) {
            li = &l->slot[i];
        } else if (l->slot[i].id != 0 && l->slot[i].principal == principal) {
            mine++;
        }
    }
    out[0] = PVEH_LISTING_OPEN_FULL;
    if (mine >= PVEH_LISTINGS_PER_PRINCIPAL_MAX) {
        out[0] = PVEH_LISTING_OPEN_MINE;
        li = NULL;
    }
    pveh__put_u64(out + 1, sm->applied_index);
    pveh__put_u64(out + 9, 0);
    memcpy(out + 17, query + 9, 4); /* the page size, handed back to the service */
    if (li != NULL) {
        if (pveh__map_freeze(&sm->vehicles, &li->view) != 0) {
            free(out);
            return PT_ENOMEM;
        }
        li->id = l->next_id++;
        li->secret = random64();
        li->revision = sm->applied_index;
        li->principal = principal;
        li->last_used_ms = now_ms;
        out[0] = PVEH_LISTING_OPEN_OK;
        pveh__put_u64(out + 9, li->id);
    }
    *result = out;
    *result_len = LISTING_RESULT_LEN;
    return 0;
}

int pveh__listing_result_decode(const uint8_t *data, size_t len, pveh_listing_result *out)
{
    if (data == NULL || len != LISTING_RESULT_LEN || data[0] > PVEH_LISTING_OPEN_MINE) {
        return PT_EMALFORMED;
    }
    out->status = data[0];
    out->revision = pveh__get_u64(data + 1);
    out->listing = pveh__get_u64(data + 9);
    out->page_size = pveh__get_u32(data + 17);
    if (out->status == PVEH_LISTING_OPEN_OK && out->listing == 0) {
        return PT_EMALFORMED;
    }
    return 0;
}

static const char hex_digits[] = "0123456789abcdef";

void pveh__page_token_format(const pveh_page_token *t, char out[PVEH_PAGE_TOKEN_LEN + 1])
{
    uint8_t b[TOKEN_BYTES];
    b[0] = TOKEN_VERSION;
    pveh__put_u64(b + 1, t->node_id);
    pveh__put_u64(b + 9, t->incarnation);
    pveh__put_u64(b + 17, t->listing);
    pveh__put_u64(b + 25, t->secret);
    pveh__put_u64(b + 33, t->revision);
    pveh__put_u64(b + 41, t->after);
    for (size_t i = 0; i < TOKEN_BYTES; i++) {
        out[2 * i] = hex_digits[b[i] >> 4];
        out[2 * i + 1] = hex_digits[b[i] & 15];
    }
    out[PVEH_PAGE_TOKEN_LEN] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

int pveh__page_token_parse(const char *text, pveh_page_token *out)
{
    if (text == NULL || strnlen(text, PVEH_PAGE_TOKEN_LEN + 1) != PVEH_PAGE_TOKEN_LEN) {
        return PT_EMALFORMED;
    }
    uint8_t b[TOKEN_BYTES];
    for (size_t i = 0; i < TOKEN_BYTES; i++) {
        int hi = hex_value(text[2 * i]);
        int lo = hex_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return PT_EMALFORMED;
        }
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    if (b[0] != TOKEN_VERSION) {
        return PT_EMALFORMED;
    }
    out->node_id = pveh__get_u64(b + 1);
    out->incarnation = pveh__get_u64(b + 9);
    out->listing = pveh__get_u64(b + 17);
    out->secret = pveh__get_u64(b + 25);
    out->revision = pveh__get_u64(b + 33);
    out->after = pveh__get_u64(b + 41);
    if (out->listing == 0 || out->node_id == 0) {
        return PT_EMALFORMED;
    }
    return 0;
}
