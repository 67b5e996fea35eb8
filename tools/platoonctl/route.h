/*
 * The motion model of `platoonctl simulate`: a platoon driving round a closed route.
 *
 * The route is a loop of straight legs through waypoints given in metres east and north of
 * an origin; positions are turned into WGS84 degrees by a local flat-earth projection, which
 * is exact to well under a metre over a few kilometres. The lead vehicle advances along the
 * route at its speed (a gentle cruise-speed variation, so that speeds change); each follower
 * keeps the platoon's gap behind the one in front, measured along the route, at the same
 * speed, as an ideal platoon controller would. Everything is a pure function of time: no
 * randomness, so that a run can be compared with another.
 */
#ifndef PCTL_ROUTE_H
#define PCTL_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#define PCTL_ROUTE_MAX_POINTS 16
#define PCTL_ROUTE_START_M    600.0 /* where the last vehicle starts */

typedef struct pctl_route {
    double origin_lat, origin_lon; /* degrees */
    double east[PCTL_ROUTE_MAX_POINTS], north[PCTL_ROUTE_MAX_POINTS];
    double start[PCTL_ROUTE_MAX_POINTS]; /* distance along the loop where each leg starts */
    size_t n;                            /* waypoints (and legs: the last leads back) */
    double length;                       /* of the whole loop, metres */
} pctl_route;

typedef struct pctl_platoon {
    pctl_route route;
    size_t vehicles;
    double gap_m;      /* from one vehicle to the next, along the route */
    double cruise_mps; /* the lead vehicle's mean speed */
    double lead_at;    /* distance travelled by the lead vehicle */
    double t;          /* seconds since the start */
} pctl_platoon;

typedef struct pctl_pose {
    double latitude, longitude; /* degrees */
    double speed;               /* m/s */
    double heading;             /* degrees clockwise from north, [0, 360) */
} pctl_pose;

/* The default route: a loop of about 6.4 km of ring road round a city centre. */
void pctl_route_default(pctl_route *r);

/* Where a point @s metres along the loop is (any @s, wrapped), and the heading of its leg. */
void pctl_route_at(const pctl_route *r, double s, double *lat, double *lon, double *heading);

void pctl_platoon_init(pctl_platoon *p, size_t vehicles, double gap_m, double cruise_mps);

/* Advances the platoon by @dt seconds. */
void pctl_platoon_advance(pctl_platoon *p, double dt);

/* The current lead speed. */
double pctl_platoon_speed(const pctl_platoon *p);

/* The pose of vehicle @i (0 = lead, i behind it). */
void pctl_platoon_pose(const pctl_platoon *p, size_t i, pctl_pose *out);

/* Great-circle distance in metres between two points (haversine), for checks. */
double pctl_distance_m(double lat1, double lon1, double lat2, double lon2);

#endif
