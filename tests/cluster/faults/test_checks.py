"""The fault suite's history checks must pass a correct history and catch each kind of bug."""

import copy
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from faults import checks  # noqa: E402

KEYS = [1, 2]


def update(client, seq, key, t0, t1, rev, outcome="ok"):
    r = dict(client=client, f="update", key=key, consistency="lin", seq=seq, invoke=t0,
             complete=t1, outcome=outcome, attempts=1, error=None, node=1)
    if outcome == "ok":
        r.update(revision=rev, echo=[client, seq, rev])
    return r


def delete(client, seq, key, t0, t1, rev, existed):
    return dict(client=client, f="delete", key=key, consistency="lin", seq=seq, invoke=t0,
                complete=t1, outcome="ok", attempts=1, error=None, node=1, revision=rev,
                existed=existed)


def platoon(t0, t1, rev, vehicles, consistency="lin", node=1):
    return dict(client=9, f="platoon", key=None, consistency=consistency, seq=None, invoke=t0,
                complete=t1, outcome="ok", attempts=1, error=None, node=node, revision=rev,
                vehicles={str(k): v for k, v in vehicles.items()}, order=sorted(vehicles))


def get(t0, t1, key, value, consistency="lin"):
    return dict(client=9, f="get", key=key, consistency=consistency, seq=None, invoke=t0,
                complete=t1, outcome="ok", attempts=1, error=None, node=1, value=value)


def good():
    return [
        update(1, 1, 1, 0, 1, 10),
        update(2, 1, 2, 0, 1, 11),
        platoon(2, 3, 11, {1: [1, 1, 10], 2: [2, 1, 11]}),
        update(1, 2, 1, 4, 5, 12),
        platoon(4.5, 4.6, 11, {1: [1, 1, 10], 2: [2, 1, 11]}, consistency="stale", node=2),
        delete(2, 2, 2, 6, 7, 13, True),
        get(8, 9, 1, [1, 2, 12]),
        platoon(10, 11, 13, {1: [1, 2, 12]}),
    ]


def problems(history):
    final = [r for r in history if r["f"] == "platoon"][-1]
    out = []
    out += checks.protocol(history, KEYS)
    out += checks.linearizable(history, KEYS)
    out += checks.monotonic(history)
    out += checks.unique(history)
    out += checks.states(history, KEYS)
    out += checks.lost(history, final)
    return out


class Checks(unittest.TestCase):
    def test_watches_must_rebuild_every_platoon_read(self):
        def segments():
            return [
                dict(node=1, frm=None, end="DEADLINE_EXCEEDED: Deadline Exceeded", msgs=[
                    dict(b=True, i=True, e=True, r=11,
                         ev=[[10, "PUT", 1, [1, 1, 10]], [11, "PUT", 2, [2, 1, 11]]]),
                    dict(b=False, i=False, e=False, r=12, ev=[[12, "PUT", 1, [1, 2, 12]]])]),
                dict(node=2, frm=12, end="UNAVAILABLE: the node is shutting down", msgs=[
                    dict(b=False, i=False, e=False, r=13, ev=[[13, "DELETE", 2, None]])]),
            ]
        found, compared = checks.watches(good(), segments())
        self.assertEqual(found, [])
        self.assertEqual(compared, 3)
        # A change with a wrong value, a lost change, a change out of order, a resumption
        # from the wrong place, a DELETE of what is not held, an unexpected end.
        bad = segments()
        bad[0]["msgs"][1]["ev"][0][3] = [1, 9, 12]
        self.assertTrue(checks.watches(good(), bad)[0])
        bad = segments()
        bad[0]["msgs"].pop(1)
        bad[1]["frm"] = 11
        self.assertTrue(checks.watches(good(), bad)[0])
        bad = segments()
        bad[1]["msgs"][0]["ev"][0][0] = 12
        self.assertTrue(checks.watches(good(), bad)[0])
        bad = segments()
        bad[1]["frm"] = 11
        self.assertTrue(checks.watches(good(), bad)[0])
        bad = segments()
        bad[1]["msgs"][0]["ev"][0][2] = 5
        self.assertTrue(checks.watches(good(), bad)[0])
        bad = segments()
        bad[1]["end"] = "INTERNAL: oops"
        self.assertTrue(checks.watches(good(), bad)[0])

    def test_good_history_passes(self):
        self.assertEqual(problems(good()), [])

    def test_unknown_write_may_be_seen(self):
        h = good()
        h.insert(3, update(3, 1, 2, 3.5, 3.6, None, outcome="unknown"))
        h[-1] = platoon(10, 11, 14, {1: [1, 2, 12], 2: [3, 1, 14]})
        self.assertEqual(problems(h), [])

    def test_write_applied_twice(self):
        h = good()
        h[-1] = platoon(10, 11, 14, {1: [1, 2, 14]})
        self.assertTrue(any("more than once" in p for p in checks.unique(h)))

    def test_two_writes_at_one_revision(self):
        h = good()
        h[4] = platoon(4.5, 4.6, 12, {1: [1, 1, 10], 2: [2, 1, 12]}, consistency="stale")
        self.assertTrue(any("more than one write" in p for p in checks.unique(h)))

    def test_stale_read_from_no_prefix_of_the_log(self):
        # A follower at revision 12 must show key 1 as written at 12, not at 10.
        h = good()
        h[4] = platoon(4.5, 5.5, 12, {1: [1, 1, 10], 2: [2, 1, 11]}, consistency="stale")
        self.assertTrue(checks.states(h, KEYS))

    def test_lost_acknowledged_write(self):
        h = good()
        h[-2] = get(8, 9, 1, [1, 1, 10])
        h[-1] = platoon(10, 11, 13, {1: [1, 1, 10]})
        self.assertTrue(checks.lost(h, h[-1]))
        self.assertTrue(checks.linearizable(h, KEYS))

    def test_linearizable_read_going_back(self):
        h = good()
        h.append(platoon(12, 13, 12, {1: [1, 2, 12], 2: [2, 1, 11]}))
        self.assertTrue(checks.monotonic(h))

    def test_read_of_a_write_never_issued(self):
        h = good()
        h[-2] = get(8, 9, 1, [7, 7, 12], consistency="stale")
        self.assertTrue(any("no client issued" in p for p in checks.unique(h)))

    def test_retry_refused(self):
        h = copy.deepcopy(good())
        h[3].update(outcome="fail", attempts=2, error="FAILED_PRECONDITION: stale sequence")
        self.assertTrue(checks.protocol(h, KEYS))


if __name__ == "__main__":
    unittest.main()
