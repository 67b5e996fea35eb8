/*
 * Listings: GetPlatoon read page by page, every page at the revision of the first.
 *
 * The first page of a listing is a query (linearizable or stale, as the client asked) that
 * freezes the vehicles at the applied index it runs at (a copy-on-write view of the map: one
 * directory of chunk pointers). Later pages are read from that view by their page token,
 * while the loop keeps applying writes to the live map. The views live on the node that
 * served the first page, in a small table of the state machine that is not replicated and
 * not in snapshots: at most PVEH_LISTINGS_MAX at once, each dropped when its last page is
 * served or once idle for PVEH_LISTING_IDLE_MS (checked at every GetPlatoon on the node, and
 * at every snapshot the node starts: an abandoned listing on a node that is written to but no
 * longer listed is released within one snapshot interval after its idle time). A
 * view costs its directory, plus a copy of each chunk the loop writes while it lives: at
 * worst one copy of the vehicles per listing.
 *
 * Everything here runs on the loop thread, like the state machine it belongs to.
 */
#ifndef PLATOON_VEHICLE_LISTING_H
#define PLATOON_VEHICLE_LISTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platoon/vehicle_map.h"

/* Listings open at once on one node, and for one principal (certificate name) on one node:
 * one more is refused (RESOURCE_EXHAUSTED), so one reader cannot hold them all. */
#define PVEH_LISTINGS_MAX               8
#define PVEH_LISTINGS_PER_PRINCIPAL_MAX 2
/* A listing whose last page was served this long ago is dropped. */
#define PVEH_LISTING_IDLE_MS            60000
/* Vehicles per page: page_size above the maximum is lowered to it. */
#define PVEH_PAGE_SIZE_MAX              10000u
/* page_size 0 (clients from before paging): the whole platoon in one answer, up to this many
 * vehicles (about 5 MB); a larger platoon is refused with FAILED_PRECONDITION. */
#define PVEH_UNPAGED_MAX                100000u

/* A page token, as carried (hex) in GetPlatoon's page_token / next_page_token. */
typedef struct pveh_page_token {
    uint64_t node_id;     /* the node that holds the listing */
    uint64_t incarnation; /* that node's process: a restart forgets every listing */
    uint64_t listing;     /* the listing's id, never reused by one process */
    uint64_t secret;      /* random: a token cannot be guessed or forged */
    uint64_t revision;    /* the applied index every page reflects */
    uint64_t after;       /* the last id served: the next page starts above it */
} pveh_page_token;

/* The text length of a token, without its NUL. */
#define PVEH_PAGE_TOKEN_LEN (2 * (1 + 6 * 8))

typedef struct pveh_listing {
    uint64_t id; /* 0: a free slot */
    uint64_t secret;
    uint64_t revision;
    uint64_t principal; /* pveh_principal_key of who opened it */
    int64_t last_used_ms;
    pveh_map view;
} pveh_listing;

typedef struct pveh_listings {
    pveh_listing slot[PVEH_LISTINGS_MAX];
    uint64_t incarnation;
    uint64_t next_id;
} pveh_listings;

struct pveh_sm;

void pveh__listings_init(pveh_listings *l);
void pveh__listings_free(pveh_listings *l);

/* Drops every listing idle since before @now_ms - PVEH_LISTING_IDLE_MS. */
void pveh__listings_expire(pveh_listings *l, int64_t now_ms);

/* The clock of listings: milliseconds of CLOCK_MONOTONIC, as pnode_now_ms. */
int64_t pveh__listings_now_ms(void);

/* The number of open listings. */
size_t pveh__listings_count(const pveh_listings *l);

/* The listing @id, or NULL when it is not open (expired, finished, never opened). */
pveh_listing *pveh__listing_find(pveh_listings *l, uint64_t id);

/* Drops listing @li (its view is released). */
void pveh__listing_close(pveh_listing *li);

/*
 * How many vehicles the first page of a listing of @n vehicles holds, for a client's
 * @page_size: page_size 0 is unpaged (all @n, when @n <= PVEH_UNPAGED_MAX), above
 * PVEH_PAGE_SIZE_MAX it is lowered to that. Returns 0 with *@limit set, or PT_ETOOBIG (unpaged,
 * and too many vehicles).
 */
int pveh__listing_first_limit(uint32_t page_size, size_t n, size_t *limit);

/* The same for a later page: page_size 0 or above the maximum means PVEH_PAGE_SIZE_MAX. */
size_t pveh__listing_next_limit(uint32_t page_size);

/*
 * Reads one page of listing @li: the vehicles above id @after, at most @limit of them, copied
 * into @out (room for @limit), their number in *@n. When more remain, @token receives the
 * token of the next page (issued by node @node_id); otherwise it is "" and the listing is
 * closed (@li is gone).
 */
void pveh__listing_page(const pveh_listings *l, pveh_listing *li, uint64_t node_id, uint64_t after,
                        size_t limit, pveh_vehicle *out, size_t *n,
                        char token[PVEH_PAGE_TOKEN_LEN + 1]);

/* ----- the query that opens a listing (built by the service, run by the state machine) */

#define PVEH_LISTING_OPEN_OK   0
#define PVEH_LISTING_OPEN_FULL 1 /* PVEH_LISTINGS_MAX listings are open */
#define PVEH_LISTING_OPEN_MINE 2 /* the principal has PVEH_LISTINGS_PER_PRINCIPAL_MAX open */

/* Builds the query (malloc'd, owned by the caller): @now_ms is the loop's clock; @page_size,
 * the client's, comes back in the result; @principal is who asks. Returns 0 or PT_ENOMEM. */
int pveh__listing_query(int64_t now_ms, uint32_t page_size, uint64_t principal, uint8_t **out,
                        size_t *out_len);

/* Whether @query is a listing query (rather than one of pveh_query_decode's). */
bool pveh__listing_query_is(const uint8_t *query, size_t len);

/* Runs a listing query against @sm: opens a listing of its vehicles at its applied index.
 * The result says which (pveh__listing_result_decode). Returns 0, PT_EMALFORMED, PT_ENOMEM. */
int pveh__listing_query_run(struct pveh_sm *sm, const uint8_t *query, size_t len, uint8_t **result,
                            size_t *result_len);

typedef struct pveh_listing_result {
    uint32_t status;    /* PVEH_LISTING_OPEN_* */
    uint64_t revision;  /* the applied index of the view */
    uint64_t listing;   /* OK: the listing's id */
    uint32_t page_size; /* as given to pveh__listing_query */
} pveh_listing_result;

/* Returns 0 or PT_EMALFORMED. */
int pveh__listing_result_decode(const uint8_t *data, size_t len, pveh_listing_result *out);

/* ----- page tokens */

/* Writes @t as PVEH_PAGE_TOKEN_LEN hex digits and a NUL into @out. */
void pveh__page_token_format(const pveh_page_token *t, char out[PVEH_PAGE_TOKEN_LEN + 1]);

/* Reads a token. Returns 0 or PT_EMALFORMED (not a token of this format). */
int pveh__page_token_parse(const char *text, pveh_page_token *out);

#endif
