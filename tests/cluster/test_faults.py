"""Short fault-injection runs (see faults/): real platoond processes on hosts of their own
(network namespaces), a nemesis per mix of faults, histories checked. Each run prints its
summary line; a failing run keeps its files and names the seed that reproduces its schedule:

    tests/cluster/faults/run.py --bin BUILD/bin --seed SEED --mix MIX --duration SECONDS

Needs root (network namespaces, nftables, tmpfs): without it every test fails saying so.
`make torture` runs the long ones (tests/cluster/torture).
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faults import hosts, run  # noqa: E402
from harness import testing  # noqa: E402


class Faults(unittest.TestCase):
    def check_run(self, seed, mix, duration, asan_duration, **options):
        bin_dir = testing.BIN
        # The sanitized build is several times slower: shorter runs keep make check's budget.
        if run.sanitized(bin_dir):
            duration = asan_duration
        res = run.run(bin_dir, seed, mix, duration, **options)
        print(res["summary"], flush=True)
        detail = "\n".join("  %s: %s" % (k, item) for k, items in res.get("problems", {}).items()
                           for item in items[:5])
        self.assertTrue(res["ok"], "%s\n%s" % (res["summary"], detail))
        # A run that did nothing proves nothing.
        self.assertGreater(res["counts"]["ok"], 100, res["summary"])
        self.assertGreater(res["faults"], 0, res["summary"])
        leftover = [ns for ns in hosts.list_namespaces() if ns.startswith(hosts.PREFIX + "%d"
                                                                           % os.getpid())]
        self.assertEqual(leftover, [], "namespaces left behind")

    def test_crash_pause_transfer(self):
        self.check_run(11, "crash", 20, 15)

    def test_partitions_and_flapping_links(self):
        self.check_run(12, "partition", 20, 15)

    def test_membership_changes_under_faults(self):
        # Voters, the leader among them, are replaced while nodes are killed, paused and
        # isolated, and clients talk to joining nodes before they have a configuration.
        self.check_run(1, "membership", 20, 15, remove_leader=True, route_to_joining=True)

    def test_lease_reads_under_pauses_and_partitions(self):
        # Reads from the leader's lease (thesis §6.4.1): a leader paused past its lease, or cut
        # off while a new one is elected, must not answer from its old state.
        self.check_run(13, "all", 20, 15, lease_reads=True)

    def test_full_disk(self):
        self.check_run(1, "disk", 20, 15)


if __name__ == "__main__":
    testing.main()
