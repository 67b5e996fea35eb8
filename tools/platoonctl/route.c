#include "route.h"

#include <math.h>
#include <string.h>

#define EARTH_RADIUS_M 6371008.8
#define DEG            (180.0 / M_PI)

void pctl_route_default(pctl_route *r)
{
    /* An octagon of about 2 km across, centred near Eindhoven, where the truck-platooning
     * trials of the 2010s ran. The exact place matters little; a loop that turns does. */
    static const double pts[][2] = {{-400, -1000}, {400, -1000}, {1000, -400}, {1000, 400},
                                    {400, 1000},   {-400, 1000}, {-1000, 400}, {-1000, -400}};
    memset(r, 0, sizeof(*r));
    r->origin_lat = 51.4416;
    r->origin_lon = 5.4697;
    r->n = sizeof(pts) / sizeof(pts[0]);
    for (size_t i = 0; i < r->n; i++) {
        r->east[i] = pts[i][0];
        r->north[i] = pts[i][1];
    }
    for (size_t i = 0; i < r->n; i++) {
        size_t j = (i + 1) % r->n;
        r->start[i] = r->length;
        r->length += hypot(r->east[j] - r->east[i], r->north[j] - r->north[i]);
    }
}

void pctl_route_at(const pctl_route *r, double s, double *lat, double *lon, double *heading)
{
    s = fmod(s, r->length);
    if (s < 0) {
        s += r->length;
    }
    size_t i = r->n - 1;
    for (size_t k = 1; k < r->n; k++) {
        if (s < r->start[k]) {
            i = k - 1;
            break;
        }
    }
    size_t j = (i + 1) % r->n;
    double de = r->east[j] - r->east[i], dn = r->north[j] - r->north[i];
    double leg = hypot(de, dn);
    double f = leg > 0 ? (s - r->start[i]) / leg : 0;
    double east = r->east[i] + f * de, north = r->north[i] + f * dn;
    *lat = r->origin_lat + north / EARTH_RADIUS_M * DEG;
    *lon = r->origin_lon + east / (EARTH_RADIUS_M * cos(r->origin_lat / DEG)) * DEG;
    double h = atan2(de, dn) * DEG; /* clockwise from north */
    if (h < 0) {
        h += 360.0;
    }
    *heading = h >= 360.0 ? 0.0 : h;
}

void pctl_platoon_init(pctl_platoon *p, size_t vehicles, double gap_m, double cruise_mps)
{
    memset(p, 0, sizeof(*p));
    pctl_route_default(&p->route);
    p->vehicles = vehicles;
    p->gap_m = gap_m;
    p->cruise_mps = cruise_mps;
    /* Start with the whole platoon on the route, the last vehicle PCTL_ROUTE_START_M along
     * it: just before the first bend, so that even a short run shows the platoon turning. */
    p->lead_at = PCTL_ROUTE_START_M + gap_m * (double)(vehicles > 0 ? vehicles - 1 : 0);
}

double pctl_platoon_speed(const pctl_platoon *p)
{
    /* +-10% over a minute: enough to see speeds change in the table. */
    return p->cruise_mps * (1.0 + 0.1 * sin(2.0 * M_PI * p->t / 60.0));
}

void pctl_platoon_advance(pctl_platoon *p, double dt)
{
    if (dt <= 0) {
        return;
    }
    /* Midpoint rule: the speed changes slowly, so this is accurate to millimetres. */
    pctl_platoon tmp = *p;
    tmp.t = p->t + dt / 2;
    p->lead_at += pctl_platoon_speed(&tmp) * dt;
    p->t += dt;
}

void pctl_platoon_pose(const pctl_platoon *p, size_t i, pctl_pose *out)
{
    double s = p->lead_at - p->gap_m * (double)i;
    pctl_route_at(&p->route, s, &out->latitude, &out->longitude, &out->heading);
    out->speed = pctl_platoon_speed(p);
}

double pctl_distance_m(double lat1, double lon1, double lat2, double lon2)
{
    double p1 = lat1 / DEG, p2 = lat2 / DEG;
    double dp = (lat2 - lat1) / DEG, dl = (lon2 - lon1) / DEG;
    double a = sin(dp / 2) * sin(dp / 2) + cos(p1) * cos(p2) * sin(dl / 2) * sin(dl / 2);
    return 2 * EARTH_RADIUS_M * asin(sqrt(a));
}
