"""platoond's public API on a real three-node cluster: every node answers every request,
invalid input is refused naming the field and changes nothing, retries apply once."""

import math
import os
import sys
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import api, testing  # noqa: E402

INVALID = grpc.StatusCode.INVALID_ARGUMENT


class Service(testing.ClusterTest):
    def test_writes_and_reads_through_every_node(self):
        for i in (1, 2, 3):
            r = self.retry(lambda: self.update(i, 100 + i, 10.0 + i), what="update via %d" % i)
            self.assertEqual(r.vehicle.id, 100 + i)
            self.assertGreater(r.vehicle.revision, 0)
        for i in (1, 2, 3):
            for vid in (101, 102, 103):
                got = self.node(i).client.call("GetVehicle", id=vid).vehicle
                self.assertEqual(got.latitude, 10.0 + (vid - 100))
            p = self.platoon(i)
            self.assertEqual([v.id for v in p.vehicles], [101, 102, 103])
            self.assertEqual(p.leader_id, self.leader)
        # Stale reads converge to the same state on every node.
        self.cluster.wait_converged()
        states = [[(v.id, v.latitude, v.revision) for v in self.platoon(i, stale=True).vehicles]
                  for i in (1, 2, 3)]
        self.assertEqual(states[0], states[1])
        self.assertEqual(states[0], states[2])

    def test_delete_and_not_found(self):
        follower = next(i for i in (1, 2, 3) if i != self.leader)
        self.retry(lambda: self.update(follower, 7, 1.0))
        d = self.node(follower).client.call("DeleteVehicle", id=7)
        self.assertTrue(d.existed)
        self.assertGreater(d.revision, 0)
        d2 = self.node(self.leader).client.call("DeleteVehicle", id=7)
        self.assertFalse(d2.existed)
        self.assertGreater(d2.revision, d.revision)
        for i in (1, 2, 3):
            with self.assertRaises(grpc.RpcError) as cm:
                self.node(i).client.call("GetVehicle", id=7)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_invalid_input_is_refused_and_changes_nothing(self):
        self.retry(lambda: self.update(self.leader, 1, 5.0))
        before = self.platoon(self.leader)
        good = dict(id=2, lat=1.0, lon=1.0, speed=1.0, heading=1.0)
        cases = [
            (dict(good, lat=90.0000001), "vehicle.latitude"),
            (dict(good, lat=-91.0), "vehicle.latitude"),
            (dict(good, lat=math.nan), "vehicle.latitude"),
            (dict(good, lon=180.5), "vehicle.longitude"),
            (dict(good, lon=-math.inf), "vehicle.longitude"),
            (dict(good, speed=-0.1), "vehicle.speed"),
            (dict(good, speed=150.01), "vehicle.speed"),
            (dict(good, heading=360.0), "vehicle.heading"),
            (dict(good, heading=-1.0), "vehicle.heading"),
            (dict(good, id=0), "vehicle.id"),
        ]
        for node_id in (1, 2, 3):
            client = self.node(node_id).client
            for fields, field in cases:
                v = api.vehicle(fields["id"], fields["lat"], fields["lon"], fields["speed"],
                                fields["heading"])
                with self.assertRaises(grpc.RpcError) as cm:
                    client.call("UpdateVehicle", vehicle=v)
                self.assertEqual(cm.exception.code(), INVALID, fields)
                self.assertIn(field, cm.exception.details())
            for method, kwargs, field in [
                ("UpdateVehicle", {}, "vehicle"),
                ("DeleteVehicle", {"id": 0}, "id"),
                ("GetVehicle", {"id": 0}, "id"),
                ("GetVehicle", {"id": 1, "consistency": 7}, "consistency"),
                ("GetPlatoon", {"consistency": 9}, "consistency"),
            ]:
                with self.assertRaises(grpc.RpcError) as cm:
                    client.call(method, **kwargs)
                self.assertEqual(cm.exception.code(), INVALID, (method, kwargs))
                self.assertIn(field, cm.exception.details())
        after = self.platoon(self.leader)
        self.assertEqual(after.revision, before.revision)
        self.assertEqual(list(after.vehicles), list(before.vehicles))

    def test_retries_apply_once(self):
        follower = next(i for i in (1, 2, 3) if i != self.leader)
        sid = self.open_session(follower)
        first = self.retry(lambda: self.update(follower, 9, 1.0, client_id=sid, sequence=1))
        # A retry of the same (client, sequence) and content returns the original.
        again = self.update(self.leader, 9, 1.0, client_id=sid, sequence=1)
        self.assertEqual(again.vehicle.revision, first.vehicle.revision)
        self.assertEqual(again.vehicle.latitude, 1.0)
        # The same (client, sequence) with other content is refused, and nothing is applied.
        with self.assertRaises(grpc.RpcError) as cm:
            self.update(self.leader, 9, 2.0, client_id=sid, sequence=1)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.ALREADY_EXISTS)
        self.assertIn("different request", cm.exception.details())
        self.assertEqual(self.node(self.leader).client.call("GetVehicle", id=9).vehicle.latitude, 1.0)
        second = self.update(follower, 9, 3.0, client_id=sid, sequence=2)
        self.assertGreater(second.vehicle.revision, first.vehicle.revision)
        with self.assertRaises(grpc.RpcError) as cm:
            self.update(follower, 9, 4.0, client_id=sid, sequence=1)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        d1 = self.node(follower).client.call("DeleteVehicle", id=9, client_id=sid, sequence=3)
        d2 = self.node(self.leader).client.call("DeleteVehicle", id=9, client_id=sid, sequence=3)
        self.assertTrue(d1.existed)
        self.assertEqual((d2.existed, d2.revision), (True, d1.revision))

    def test_status_from_every_node(self):
        self.retry(lambda: self.update(self.leader, 1, 1.0))
        applied = self.cluster.wait_converged()
        for i in (1, 2, 3):
            st = self.node(i).status()
            self.assertEqual(st.id, i)
            self.assertEqual(st.leader_id, self.leader)
            self.assertEqual(st.applied_index, applied)
            self.assertEqual(sorted(m.id for m in st.members), [1, 2, 3])
            self.assertTrue(all(m.voter for m in st.members))
            if i == self.leader:
                self.assertEqual(st.role, api.M["ROLE_LEADER"])
                self.assertEqual(sorted(p.id for p in st.followers), [x for x in (1, 2, 3) if x != i])
                # A follower may apply an entry before the leader has its acknowledgement:
                # the leader's view catches up a moment later.
                deadline = time.monotonic() + 10
                while (any(p.match_index != st.last_index for p in st.followers) and
                       time.monotonic() < deadline):
                    time.sleep(0.05)
                    st = self.node(i).status()
                for p in st.followers:
                    self.assertEqual(p.match_index, st.last_index)
            else:
                self.assertEqual(st.role, api.M["ROLE_FOLLOWER"])

    def test_admin_errors(self):
        for i in (1, 2, 3):
            client = self.node(i).client
            for method, kwargs, code in [
                ("RemoveMember", {"id": 99}, grpc.StatusCode.NOT_FOUND),
                ("RemoveMember", {"id": 0}, INVALID),
                ("AddMember", {"id": 0, "address": "127.0.0.1:1"}, INVALID),
                ("AddMember", {"id": 1, "address": "127.0.0.1:1"}, grpc.StatusCode.ALREADY_EXISTS),
                ("AddMember", {"id": 9, "address": ""}, INVALID),
                ("AddMember", {"id": 9, "address": "x" * 200}, INVALID),
                ("TransferLeadership", {"to": 99}, INVALID),
            ]:
                with self.assertRaises(grpc.RpcError) as cm:
                    client.call(method, **kwargs)
                self.assertEqual(cm.exception.code(), code, (i, method, kwargs))
        st = self.node(self.leader).status()
        self.assertEqual(sorted(m.id for m in st.members), [1, 2, 3])

    def test_clean_shutdown(self):
        self.retry(lambda: self.update(self.leader, 1, 1.0))
        for i in (1, 2, 3):
            rc = self.node(i).stop()
            self.assertEqual(rc, 0, "node %d exited %s\n%s" % (i, rc, self.node(i).log()))


if __name__ == "__main__":
    testing.main()
