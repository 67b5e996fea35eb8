/* The motion model of platoonctl simulate: the platoon keeps its gap, moves with its speed,
 * and reports valid headings and coordinates all the way round the loop. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "route.h"

static void loop_is_closed_and_positions_valid(void **state)
{
    (void)state;
    pctl_route r;
    pctl_route_default(&r);
    assert_true(r.length > 5000.0 && r.length < 8000.0);
    double lat0, lon0, h0, lat1, lon1, h1;
    pctl_route_at(&r, 0.0, &lat0, &lon0, &h0);
    pctl_route_at(&r, r.length, &lat1, &lon1, &h1);
    assert_true(pctl_distance_m(lat0, lon0, lat1, lon1) < 0.01);
    for (int k = 0; 37.0 * k - r.length < 2 * r.length; k++) {
        double s = 37.0 * k - r.length;
        double lat, lon, h;
        pctl_route_at(&r, s, &lat, &lon, &h);
        assert_true(lat >= -90.0 && lat <= 90.0);
        assert_true(lon >= -180.0 && lon <= 180.0);
        assert_true(h >= 0.0 && h < 360.0);
    }
}

/* Walking a metre along the route moves a metre on the ground, in the stated heading. */
static void heading_matches_the_direction_of_travel(void **state)
{
    (void)state;
    pctl_route r;
    pctl_route_default(&r);
    int turns = 0;
    double prev_h = -1.0;
    for (int k = 0; 5.0 + 50.0 * k < r.length; k++) {
        double s = 5.0 + 50.0 * k;
        double lat, lon, h, lat2, lon2, h2;
        pctl_route_at(&r, s, &lat, &lon, &h);
        pctl_route_at(&r, s + 1.0, &lat2, &lon2, &h2);
        if (h2 != h) {
            continue; /* a corner between the two points */
        }
        assert_true(fabs(pctl_distance_m(lat, lon, lat2, lon2) - 1.0) < 0.01);
        double north = (lat2 - lat) * 111195.0;
        double east = (lon2 - lon) * 111195.0 * cos(lat * M_PI / 180.0);
        double dir = atan2(east, north) * 180.0 / M_PI;
        dir = dir < 0 ? dir + 360.0 : dir;
        double diff = fabs(dir - h);
        diff = diff > 180.0 ? 360.0 - diff : diff;
        assert_true(diff < 0.5);
        turns += prev_h >= 0 && h != prev_h;
        prev_h = h;
    }
    assert_true(turns >= 7); /* the loop really turns: an octagon */
}

static void followers_keep_the_gap_and_everyone_moves(void **state)
{
    (void)state;
    pctl_platoon p;
    pctl_platoon_init(&p, 6, 25.0, 20.0);
    pctl_pose before[6];
    for (size_t i = 0; i < 6; i++) {
        pctl_platoon_pose(&p, i, &before[i]);
    }
    for (int step = 0; step < 600; step++) {
        pctl_platoon_advance(&p, 0.1);
        for (size_t i = 1; i < 6; i++) {
            pctl_pose a, b;
            pctl_platoon_pose(&p, i - 1, &a);
            pctl_platoon_pose(&p, i, &b);
            /* Along the route the gap is exact; straight-line it is shorter only round a
             * corner (an octagon's corner turns 45 degrees). */
            double d = pctl_distance_m(a.latitude, a.longitude, b.latitude, b.longitude);
            assert_true(d <= 25.0 + 0.01);
            assert_true(d >= 25.0 * cos(M_PI / 8) - 0.01);
            assert_true(b.speed == a.speed);
        }
    }
    /* After 60 s at about 20 m/s, the lead has travelled about 1.2 km along the route. */
    assert_true(fabs(p.t - 60.0) < 1e-9);
    double travelled = p.lead_at - 25.0 * 5 - PCTL_ROUTE_START_M;
    assert_true(travelled > 20.0 * 0.9 * 60.0 && travelled < 20.0 * 1.1 * 60.0);
    pctl_pose lead;
    pctl_platoon_pose(&p, 0, &lead);
    assert_true(pctl_distance_m(lead.latitude, lead.longitude, before[0].latitude,
                                before[0].longitude) > 100.0);
    assert_true(lead.speed >= 18.0 && lead.speed <= 22.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loop_is_closed_and_positions_valid),
        cmocka_unit_test(heading_matches_the_direction_of_travel),
        cmocka_unit_test(followers_keep_the_gap_and_everyone_moves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
