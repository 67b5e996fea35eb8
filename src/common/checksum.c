#include "common/checksum.h"

#include <stdlib.h>
#include <xxhash.h>

struct pt_checksum_state {
    XXH3_state_t *xxh;
};

uint64_t pt__checksum(const void *data, size_t len)
{
    return (uint64_t)XXH3_64bits(len ? data : "", len);
}

pt_checksum_state *pt__checksum_new(void)
{
    pt_checksum_state *s = malloc(sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->xxh = XXH3_createState();
    if (s->xxh == NULL) {
        free(s);
        return NULL;
    }
    XXH3_64bits_reset(s->xxh);
    return s;
}

void pt__checksum_update(pt_checksum_state *s, const void *data, size_t len)
{
    if (len > 0) {
        XXH3_64bits_update(s->xxh, data, len);
    }
}

uint64_t pt__checksum_digest(const pt_checksum_state *s)
{
    return (uint64_t)XXH3_64bits_digest(s->xxh);
}

void pt__checksum_free(pt_checksum_state *s)
{
    if (s != NULL) {
        XXH3_freeState(s->xxh);
        free(s);
    }
}
