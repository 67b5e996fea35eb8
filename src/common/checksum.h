/*
 * Checksums for everything Platoon writes to disk or receives from the network.
 *
 * XXH3-64 from libxxhash: a well-kept, fast (several GB/s) non-cryptographic hash whose 64 bits
 * make an undetected random corruption vanishingly unlikely. Data on disk is checksummed with
 * it; the value is stored little-endian.
 */
#ifndef PLATOON_COMMON_CHECKSUM_H
#define PLATOON_COMMON_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* XXH3-64 of a buffer; len may be 0 (data may then be NULL). */
uint64_t pt__checksum(const void *data, size_t len);

/* Incremental form, for data that arrives in pieces (snapshot chunks). */
typedef struct pt_checksum_state pt_checksum_state;
pt_checksum_state *pt__checksum_new(void); /* NULL on allocation failure */
void pt__checksum_update(pt_checksum_state *s, const void *data, size_t len);
uint64_t pt__checksum_digest(const pt_checksum_state *s);
void pt__checksum_free(pt_checksum_state *s);

#endif
