"""examples/kv with real processes on loopback, mutual TLS on: the clerk, exactly-once writes,
roles, and snapshots (state surviving a restart of every node; a node that fell behind the
compacted log catching up through a snapshot).

    python3 test_kv_service.py --bin BUILD/bin --kv BUILD/examples [unittest args]
"""

import argparse
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvclient  # noqa: E402  (puts tests/cluster on the path)
from kvclient import Clerk, KvNode  # noqa: E402

import grpc  # noqa: E402

from harness.cluster import LocalCluster  # noqa: E402

BIN = KV = None
# 20 ms ticks; a snapshot every 40 entries, 10 kept behind it: a few dozen writes compact the
# log past a stopped node.
FLAGS = ["--tick-ms", "20", "--election-ticks", "10", "--snapshot-every", "40",
         "--snapshot-keep", "10"]


def sanitized():
    with open(os.path.join(KV, "kv-server"), "rb") as f:
        return b"__asan_init" in f.read()


class KvTest(unittest.TestCase):
    def setUp(self):
        flags = list(FLAGS)
        if sanitized():  # several times slower: elections get more time, as in the fault suite
            flags[flags.index("--election-ticks") + 1] = "20"
        self.cluster = LocalCluster(os.path.join(KV, "kv-server"), n=3, extra_args=flags,
                                    tools=BIN)
        self.addCleanup(self.cluster.close)
        self.cluster.start()
        self.cluster.wait_for_leader(timeout=60)
        self.kv = {i: KvNode(n.address, self.cluster.credentials("kv-writer", "writer"))
                   for i, n in self.cluster.nodes.items()}
        for k in self.kv.values():
            self.addCleanup(k.close)

    def clerk(self, client_id):
        return Clerk(client_id, lambda: [self.kv[i] for i in sorted(self.kv)
                                         if self.cluster.nodes[i].alive()],
                     attempt_timeout=3.0, retry_for=30.0)

    def fail_with_logs(self, msg):
        self.fail("%s\n%s" % (msg, self.cluster.dump_logs()))

    def write(self, clerk, method, key, value):
        outcome, index, _ = clerk.write(method, key, value)
        if outcome != "ok":
            self.fail_with_logs("%s %s=%s: %s %s" % (method, key, value, outcome, index))
        return index

    def workload(self, clerk, n, keys=5, model=None):
        """n writes over `keys` keys, mostly appends; returns the expected final state."""
        model = {} if model is None else model
        for i in range(n):
            key = "key%d" % (i % keys)
            if i % 7 == 0:
                value = "put%d." % i
                self.write(clerk, "Put", key, value)
                model[key] = value
            else:
                value = "%d." % i
                self.write(clerk, "Append", key, value)
                model[key] = model.get(key, "") + value
        return model

    def call(self, node_id, method, **fields):
        """A call tried again, unchanged, while its outcome is unknown (no leader during an
        election: slow under a sanitizer on a busy machine). Safe for reads, and for writes by
        the very rule under test (the same client id and sequence)."""
        deadline = time.monotonic() + 30
        while True:
            try:
                return self.kv[node_id].call(method, timeout=5.0, **fields)
            except grpc.RpcError as e:
                if e.code() not in kvclient.RETRY or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def read(self, node_id, key, stale=False):
        r = self.call(node_id, "Get", key=key, stale=stale)
        return r.value if r.found else None

    def assert_state(self, node_id, model, stale):
        for key, value in sorted(model.items()):
            got = self.read(node_id, key, stale)
            if got != value:
                self.fail_with_logs("node %d (%s): %s is %r, expected %r" % (
                    node_id, "stale" if stale else "linearizable", key, got, value))

    def restart(self, node_id):
        node = self.cluster.nodes[node_id]
        self.assertEqual(node.stop(), 0, "node %d did not stop cleanly" % node_id)
        node.start()

    # ----- the service and its clerk -----

    def test_clerk_commands(self):
        env = dict(os.environ, **self.cluster.ctl_env("kv-writer", "writer"))
        clerk = [os.path.join(KV, "kv-clerk"), "--endpoints", self.cluster.endpoints(),
                 "--timeout", "30000"]
        p = subprocess.run(clerk + ["put", "a", "x", "append", "a", "y", "append", "b", "z",
                                    "get", "a", "get", "b", "get-stale", "a"],
                           env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 6, p.stdout)
        self.assertTrue(all(line.startswith("ok ") for line in lines[:3]), p.stdout)
        indexes = [int(line.split()[1]) for line in lines[:3]]
        self.assertEqual(indexes, sorted(set(indexes)), "writes at increasing indexes")
        self.assertEqual(lines[3:5], ["xy", "z"])
        # The clerk asks the node that answered last: its linearizable read had waited until
        # that node applied both writes, so its own state shows them.
        self.assertEqual(lines[5], "xy")
        p = subprocess.run(clerk + ["get", "missing"], env=env, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("not found", p.stderr)
        # A reader may read, not write (the methods' roles, checked by the runtime).
        env = dict(os.environ, **self.cluster.ctl_env("kv-reader", "reader"))
        p = subprocess.run(clerk + ["get", "a"], env=env, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual((p.returncode, p.stdout), (0, "xy\n"), p.stderr)
        p = subprocess.run(clerk + ["put", "a", "w"], env=env, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("gRPC status %d" % grpc.StatusCode.PERMISSION_DENIED.value[0], p.stderr)

    def test_retried_write_is_applied_once(self):
        leader = self.cluster.wait_for_leader()
        order = [i for i in self.kv if i != leader] + [leader]
        args = dict(key="k", value="x", client_id=77, sequence=1)
        # The same write through every node: followers forward it, the leader proposes it;
        # only the first is applied, and each gets the first answer.
        answers = [self.call(i, "Append", **args).index for i in order]
        self.assertEqual(len(set(answers)), 1, answers)
        self.assertEqual(self.read(leader, "k"), "x")
        second = self.call(order[0], "Append", key="k", value="y", client_id=77,
                           sequence=2).index
        self.assertGreater(second, answers[0])
        # The clerk has moved on: its first write again is a delayed duplicate.
        with self.assertRaises(grpc.RpcError) as e:
            self.call(leader, "Append", **args)
        self.assertEqual(e.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(self.read(order[1], "k"), "xy")
        # Another client's sequence 1 is its own.
        self.call(leader, "Append", key="k", value="z", client_id=78, sequence=1)
        self.assertEqual(self.read(leader, "k"), "xyz")
        for bad in (dict(client_id=0, sequence=1), dict(client_id=1, sequence=0),
                    dict(client_id=1, sequence=1, key="")):
            fields = dict(dict(key="k", value="v"), **bad)
            with self.assertRaises(grpc.RpcError) as e:
                self.call(order[0], "Put", **fields)
            self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, fields)

    # ----- snapshots -----

    def test_state_survives_restart_of_every_node(self):
        clerk = self.clerk(1001)
        model = self.workload(clerk, 100)  # past two snapshots, with a log tail after them
        last = ("Append", "key0", "last.")
        index = self.write(clerk, *last)
        model["key0"] += "last."
        # Every node snapshots now: the clerk's session (its last answer) is in the snapshots.
        for n in self.cluster.nodes.values():
            n.client.call("Snapshot", timeout=5.0)
        self.workload(self.clerk(1002), 13, keys=3, model=model)  # and a log tail after
        for i in sorted(self.cluster.nodes):
            self.cluster.nodes[i].stop()
        for i in sorted(self.cluster.nodes):
            self.cluster.nodes[i].start()
        self.cluster.wait_for_leader(timeout=60)
        for i in sorted(self.cluster.nodes):
            self.assert_state(i, model, stale=False)
        self.cluster.wait_converged(timeout=60)
        for i, n in sorted(self.cluster.nodes.items()):
            self.assert_state(i, model, stale=True)
            self.assertIn("state loaded from this node's snapshot", n.log(),
                          "node %d restarted without its snapshot" % i)
        # The session survived: the retry of the write before the snapshot is answered as the
        # first time, and not applied again.
        clerk.seq -= 1
        self.assertEqual(self.write(clerk, *last), index)
        self.assert_state(1, model, stale=False)

    def test_lagging_node_catches_up_through_a_snapshot(self):
        leader = self.cluster.wait_for_leader()
        behind = max(i for i in self.cluster.nodes if i != leader)
        model = self.workload(self.clerk(2001), 10)
        self.cluster.nodes[behind].kill()
        # Enough writes that the log the others keep starts after everything `behind` has.
        model = self.workload(self.clerk(2002), 120, model=model)
        first = min(self.cluster.nodes[i].status(timeout=5.0).first_index
                    for i in self.cluster.nodes
                    if i != behind)
        self.assertGreater(first, 15, "the log was not compacted")
        # A leader keeps the entries a follower still lacks in memory (within a budget of
        # tens of MiB) and sends it those; its connection may also still hold messages for the
        # node from before it stopped. Restarted, the others have only their compacted logs:
        # what the node lacks, it can only get as a snapshot.
        for i in self.cluster.nodes:
            if i != behind:
                self.restart(i)
        self.cluster.wait_for_leader(timeout=60)
        self.cluster.nodes[behind].start()
        self.cluster.wait_converged(timeout=60)
        log = self.cluster.nodes[behind].log()
        self.assertIn("sent by the leader", log, "node %d did not catch up through a snapshot"
                      % behind)
        self.assert_state(behind, model, stale=True)
        # And it carries on from there: new writes reach it through the log.
        model = self.workload(self.clerk(2003), 5, model=model)
        self.cluster.wait_converged(timeout=60)
        self.assert_state(behind, model, stale=True)


def main():
    global BIN, KV
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True, help="folder holding platoonctl")
    parser.add_argument("--kv", required=True, help="folder holding kv-server and kv-clerk")
    args, rest = parser.parse_known_args()
    BIN, KV = os.path.abspath(args.bin), os.path.abspath(args.kv)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
