"""The documented contract against the behaviour: the Python example client works as its
documentation says, the .proto states the session rules and every status code, and the
operations guide says what the server really does (writes without a majority, log lines,
snapshot file names)."""

import os
import re
import subprocess
import sys
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import api, testing  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
EXAMPLE = os.path.join(ROOT, "examples", "python", "platoon_client.py")


def read(*path):
    with open(os.path.join(ROOT, *path)) as f:
        return f.read()


class Contract(testing.ClusterTest):
    def example(self, *args):
        return subprocess.run(["/usr/bin/python3", EXAMPLE, "--endpoints",
                               self.cluster.endpoints()] + list(args),
                              capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, **self.cluster.ctl_env()))

    def test_the_python_example_works_as_documented(self):
        r = self.example("update", "42", "48.8566", "2.3522", "13.5", "90")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("42 lat=48.8566 lon=2.3522", r.stdout)
        r = self.example("get", "42")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.example("list")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("42 lat=", r.stdout)
        r = self.example("delete", "42")
        self.assertIn("existed=True", r.stdout)
        r = self.example("get", "42")
        self.assertEqual(r.returncode, 3)
        self.assertIn("NOT_FOUND", r.stderr)
        self.assertTrue("examples/python" in read("docs", "operations.md"))
        self.assertTrue("examples/python" in read("proto", "platoon", "v1", "platoon.proto"))

    def test_the_proto_states_the_session_rules_and_every_code(self):
        proto = read("proto", "platoon", "v1", "platoon.proto")
        for words in ("One mutation at a time per client_id", "10 minutes", "100,000",
                      "ALREADY_EXISTS", "FAILED_PRECONDITION", "NOT_FOUND (not a member)",
                      "RESOURCE_EXHAUSTED", "ABORTED", "removed from the cluster",
                      "PERMISSION_DENIED"):
            self.assertIn(words, proto)
        # Each method's request message says which errors it returns.
        for msg in ("UpdateVehicleRequest", "DeleteVehicleRequest", "GetVehicleRequest",
                    "GetPlatoonRequest", "StatusRequest", "AddMemberRequest",
                    "RemoveMemberRequest", "TransferLeadershipRequest", "SnapshotRequest"):
            before = proto[:proto.index("message %s" % msg)]
            comment = before[before.rstrip().rfind("\n\n"):]
            self.assertIn("Errors", comment, msg)

    def test_writes_without_a_majority_fail_fast_with_no_leader(self):
        """docs/operations.md says so, and it is true: UNAVAILABLE "no leader is known since"
        well before the deadline (it used to be DEADLINE_EXCEEDED after the full deadline)."""
        survivor = self.leader
        for i in (1, 2, 3):
            if i != survivor:
                self.node(i).kill()
        client = self.node(survivor).client
        seen = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            start = time.monotonic()
            try:
                client.call("UpdateVehicle", timeout=30.0,
                            vehicle=api.vehicle(1, 1.0, 2.0, 3.0, 4.0))
            except grpc.RpcError as e:
                self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE, e.details())
                if "no leader is known since" in e.details():
                    seen = e.details()
                    break
        self.assertIsNotNone(seen, "never answered 'no leader is known since'")
        # Now that the node knows it has no leader, the next write is refused at once: its 30 s
        # deadline cannot be what ends it, or the call would take longer than this bound.
        start = time.monotonic()
        with self.assertRaises(grpc.RpcError) as cm:
            client.call("UpdateVehicle", timeout=30.0, vehicle=api.vehicle(1, 1.0, 2.0, 3.0, 4.0))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertLess(time.monotonic() - start, 25.0)
        ops = read("docs", "operations.md")
        self.assertIn("no leader is known since", ops)

    def test_log_lines_and_snapshot_names_are_as_documented(self):
        ops = read("docs", "operations.md")
        n = self.node(self.leader)
        first = n.log().splitlines()[0]
        self.assertIn("initialised for cluster", first)
        self.assertIn("initialised for cluster C node N", ops)
        for i in range(1, 20):
            self.retry(lambda: self.update(self.leader, i, 1.0))
        r = n.client.call("Snapshot", timeout=10.0)
        self.assertGreater(r.index, 0)
        names = os.listdir(os.path.join(n.data_dir, "snapshots"))
        snaps = [x for x in names if x.endswith(".psnap")]
        self.assertTrue(snaps, names)
        for name in snaps:
            self.assertRegex(name, r"^snap-\d{20}-\d{20}\.psnap$")
        self.assertIn("snap-INDEX-TERM.psnap", ops)
        self.assertRegex(ops, r"snap-\d{20}-\d{20}\.psnap")
        # An ordinary restart loads the node's own snapshot: it is not "restored from a
        # snapshot" (that line is for a snapshot sent by the leader).
        self.assertEqual(n.stop(), 0)
        mark = len(n.log())
        n.start()
        self.cluster.wait_for_leader()
        deadline = time.monotonic() + 20
        while "serving on" not in n.log()[mark:]:
            self.assertLess(time.monotonic(), deadline, n.log())
            time.sleep(0.1)
        after = n.log()[mark:]
        self.assertNotIn("state restored from snapshot", after)
        self.assertIn("state loaded from this node's snapshot", after)
        self.assertIn("state loaded from this node's snapshot", ops)

    def test_thread_names_are_as_documented(self):
        """The guide's table of threads names every thread platoond runs, and the pools have
        the sizes it gives: --io-threads defaults to the cores, from 2 to 8, and half as many
        (rounded up) senders."""
        ops = read("docs", "operations.md")
        documented = set(re.findall(r"^\| `(pt-[a-z]+)`", ops, re.M))
        self.assertTrue({"pt-loop", "pt-net", "pt-send", "pt-writer"} <= documented, documented)
        pid = self.node(self.leader).proc.pid
        names = []
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                    names.append(f.read().strip())
            except FileNotFoundError:
                pass  # a thread that ended meanwhile
        ours = [n for n in names if n.startswith("pt-")]
        self.assertTrue(set(ours) <= documented, (ours, documented))
        io = min(max(os.cpu_count() or 2, 2), 8)
        self.assertEqual(ours.count("pt-net"), io, names)
        self.assertEqual(ours.count("pt-send"), (io + 1) // 2, names)
        self.assertEqual(ours.count("pt-loop"), 1, names)
        self.assertEqual(ours.count("pt-writer"), 1, names)

    def test_the_guide_does_not_promise_what_is_not_enforced(self):
        """Removed ids can be added again (the cluster does not remember them): the guide
        said ids are never reused, as if that were enforced."""
        ops = read("docs", "operations.md")
        self.assertNotIn("unique and never reused |", ops)
        self.assertIn("not enforced", ops)


if __name__ == "__main__":
    testing.main()
