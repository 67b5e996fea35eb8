"""Crashes of real nodes: the leader killed with SIGKILL while clients write, a restarted node
catching up from the log and, when the log was compacted, from a snapshot. No acknowledged
write may be lost."""

import os
import sys
import threading
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import api, testing  # noqa: E402

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class Writer(threading.Thread):
    """Writes one vehicle of its own with increasing latitude through every node in turn,
    retrying each (client, sequence) until it is acknowledged or the run ends."""

    def __init__(self, cluster, vid, stop):
        super().__init__(daemon=True)
        self.cluster, self.vid, self.stop = cluster, vid, stop
        self.acked = 0  # the highest sequence acknowledged (latitude = sequence / 1000)
        self.errors = []

    def run(self):
        seq = 0
        nodes = list(self.cluster.nodes.values())
        k = self.vid
        sid = None
        while sid is None and not self.stop.is_set():
            try:
                sid = nodes[k % len(nodes)].client.call("OpenSession", timeout=1.0).client_id
            except grpc.RpcError as e:
                if e.code() not in RETRYABLE:
                    self.errors.append("%s %s" % (e.code(), e.details()))
                    return
                k += 1
                time.sleep(0.02)
        while not self.stop.is_set():
            seq += 1
            while not self.stop.is_set():
                node = nodes[k % len(nodes)]
                k += 1
                try:
                    node.client.call("UpdateVehicle", timeout=1.0, client_id=sid,
                                     sequence=seq,
                                     vehicle=api.vehicle(self.vid, seq / 1000.0, 0.0, 1.0, 1.0))
                    self.acked = seq
                    break
                except grpc.RpcError as e:
                    if e.code() not in RETRYABLE:
                        self.errors.append("%s %s" % (e.code(), e.details()))
                        return
                    time.sleep(0.02)


class Failover(testing.ClusterTest):
    extra_args = ("--snapshot-every", "100", "--snapshot-keep", "10")

    def check_no_acked_write_lost(self, writers):
        for node_id, node in self.cluster.nodes.items():
            if not node.alive():
                continue
            got = {v.id: v.latitude for v in node.client.call("GetPlatoon", timeout=5).vehicles}
            for w in writers:
                self.assertIn(w.vid, got, "node %d lost vehicle %d" % (node_id, w.vid))
                # Unknown-outcome writes after the last ack may have happened: >= is the rule.
                self.assertGreaterEqual(round(got[w.vid] * 1000), w.acked,
                                        "node %d lost an acknowledged write of %d" % (node_id, w.vid))

    def test_leader_killed_under_load(self):
        stop = threading.Event()
        writers = [Writer(self.cluster, vid, stop) for vid in (1, 2, 3, 4)]
        for w in writers:
            w.start()
        time.sleep(1.0)
        old = self.leader
        acked_before = [w.acked for w in writers]
        self.node(old).kill()
        new = self.cluster.wait_for_leader(timeout=20, exclude=(old,))
        self.assertNotEqual(new, old)
        # Writes continue under the new leader.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(
                w.acked > b for w, b in zip(writers, acked_before)):
            time.sleep(0.05)
        self.assertTrue(all(w.acked > b for w, b in zip(writers, acked_before)),
                        "writes did not continue after the failover")
        # The old leader comes back and catches up.
        self.node(old).start()
        time.sleep(0.5)
        stop.set()
        for w in writers:
            w.join(timeout=10)
            self.assertEqual(w.errors, [])
        self.cluster.wait_converged(timeout=30)
        self.check_no_acked_write_lost(writers)
        states = [[(v.id, v.latitude, v.revision)
                   for v in self.node(i).client.call("GetPlatoon", consistency=1).vehicles]
                  for i in (1, 2, 3)]
        self.assertEqual(states[0], states[1])
        self.assertEqual(states[0], states[2])

    def test_restarted_node_catches_up_by_snapshot(self):
        lagging = next(i for i in (1, 2, 3) if i != self.leader)
        node = self.node(lagging)
        last_before = node.status().last_index
        node.kill()
        client = self.node(self.leader).client
        for i in range(600):
            self.retry(lambda: client.call("UpdateVehicle",
                                           vehicle=api.vehicle(i % 50 + 1, i / 1000.0, 0, 1, 1)))
        leader_st = client.call("Status")
        self.assertGreater(leader_st.first_index, last_before + 1,
                           "the leader's log was not compacted past the lagging node")
        node.start()
        applied = self.cluster.wait_converged(timeout=30)
        st = node.status()
        self.assertEqual(st.applied_index, applied)
        # Its log now starts past where it stopped: the gap was filled by a snapshot.
        self.assertGreater(st.snapshot_index, last_before)
        mine = [(v.id, v.latitude) for v in node.client.call("GetPlatoon", consistency=1).vehicles]
        theirs = [(v.id, v.latitude) for v in client.call("GetPlatoon").vehicles]
        self.assertEqual(mine, theirs)


if __name__ == "__main__":
    testing.main()
