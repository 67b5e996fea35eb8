/*
 * Validation of client input, with messages that name the field as platoon.proto does: the
 * runtime returns them verbatim with INVALID_ARGUMENT.
 *
 * Every bound is written as "!(lo <= x && x <= hi)" so that NaN, which compares false with
 * everything, fails it; infinities fail it because the bounds are finite.
 */
#include <stdio.h>

#include "platoon/codec.h"

bool pveh__vehicle_valid(const pveh_vehicle *v)
{
    return v->id != 0 && v->latitude >= PVEH_LATITUDE_MIN && v->latitude <= PVEH_LATITUDE_MAX &&
           v->longitude >= PVEH_LONGITUDE_MIN && v->longitude <= PVEH_LONGITUDE_MAX &&
           v->speed >= PVEH_SPEED_MIN && v->speed <= PVEH_SPEED_MAX &&
           v->heading >= PVEH_HEADING_MIN && v->heading < PVEH_HEADING_MAX;
}

static int refuse(char *why, size_t why_len, const char *msg)
{
    if (why != NULL && why_len > 0) {
        snprintf(why, why_len, "%s", msg);
    }
    return PT_EINVAL;
}

int pveh_validate_vehicle(const pveh_vehicle *v, char *why, size_t why_len)
{
    if (v == NULL) {
        return refuse(why, why_len, "vehicle must be set");
    }
    if (v->id == 0) {
        return refuse(why, why_len, "vehicle.id must not be 0");
    }
    if (!(v->latitude >= PVEH_LATITUDE_MIN && v->latitude <= PVEH_LATITUDE_MAX)) {
        return refuse(why, why_len, "vehicle.latitude must be within [-90, 90]");
    }
    if (!(v->longitude >= PVEH_LONGITUDE_MIN && v->longitude <= PVEH_LONGITUDE_MAX)) {
        return refuse(why, why_len, "vehicle.longitude must be within [-180, 180]");
    }
    if (!(v->speed >= PVEH_SPEED_MIN && v->speed <= PVEH_SPEED_MAX)) {
        return refuse(why, why_len, "vehicle.speed must be within [0, 150]");
    }
    if (!(v->heading >= PVEH_HEADING_MIN && v->heading < PVEH_HEADING_MAX)) {
        return refuse(why, why_len, "vehicle.heading must be within [0, 360)");
    }
    return 0;
}

int pveh_validate_id(uint64_t id, char *why, size_t why_len)
{
    if (id == 0) {
        return refuse(why, why_len, "id must not be 0");
    }
    return 0;
}
