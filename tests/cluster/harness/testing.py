"""Shared scaffolding of the cluster tests: `python3 test_x.py --bin BUILD/bin [unittest args]`."""

import argparse
import os
import sys
import time
import unittest

import grpc

from . import api
from .cluster import LocalCluster

BIN = None


def main():
    global BIN
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True, help="folder holding platoond")
    args, rest = parser.parse_known_args()
    BIN = os.path.abspath(args.bin)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


def platoond():
    return os.path.join(BIN, "platoond")


# Fast timings for tests on loopback: 20 ms ticks, election after 200-400 ms.
FAST = ["--tick-ms", "20", "--election-ticks", "10"]


class ClusterTest(unittest.TestCase):
    """Starts a fresh cluster per test and always tears it down."""

    nodes = 3
    extra_args = ()

    def setUp(self):
        self.cluster = LocalCluster(platoond(), n=self.nodes, extra_args=FAST + list(self.extra_args))
        self.addCleanup(self.cluster.close)
        self.cluster.start()
        self.leader = self.cluster.wait_for_leader()

    def fail_with_logs(self, msg):
        self.fail("%s\n%s" % (msg, self.cluster.dump_logs()))

    def node(self, i):
        return self.cluster.nodes[i]

    def retry(self, fn, timeout=10.0, what="operation"):
        """Calls fn until it stops raising UNAVAILABLE / DEADLINE_EXCEEDED, within timeout."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return fn()
            except grpc.RpcError as e:
                if e.code() not in (grpc.StatusCode.UNAVAILABLE,
                                    grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
                if time.monotonic() > deadline:
                    self.fail_with_logs("%s kept failing: %s %s" % (what, e.code(), e.details()))
                time.sleep(0.05)

    def open_session(self, node_id, timeout=10.0):
        """Opens an exactly-once session through node_id (retried while there is no leader);
        returns its client_id."""
        return self.retry(lambda: self.node(node_id).client.call("OpenSession").client_id,
                          timeout=timeout, what="OpenSession")

    def update(self, node_id, vid, lat, client_id=0, sequence=0, timeout=2.0):
        return self.node(node_id).client.call(
            "UpdateVehicle", timeout=timeout, vehicle=api.vehicle(vid, lat, 10.0, 20.0, 90.0),
            client_id=client_id, sequence=sequence)

    def platoon(self, node_id, stale=False):
        return self.node(node_id).client.call(
            "GetPlatoon", consistency=api.M["READ_CONSISTENCY_STALE"] if stale else 0)
