/*
 * Little-endian fixed-width encoding, shared by the command codec and the snapshot format.
 *
 * Everything the vehicle state machine writes is little-endian whatever the host, so that a
 * snapshot taken on one node restores on any other. Doubles travel as their IEEE 754 bits.
 */
#ifndef PLATOON_VEHICLE_BYTES_H
#define PLATOON_VEHICLE_BYTES_H

#include <stdint.h>
#include <string.h>

static inline void pveh__put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void pveh__put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline void pveh__put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline void pveh__put_f64(uint8_t *p, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
    pveh__put_u64(p, bits);
}

static inline uint16_t pveh__get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t pveh__get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static inline uint64_t pveh__get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static inline double pveh__get_f64(const uint8_t *p)
{
    uint64_t bits = pveh__get_u64(p);
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

#endif
