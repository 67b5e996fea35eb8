"""platoon-bench --watchers against a real three-node cluster, for about a second: the writes
and the watch streams must run, every stream must last the whole run, and the report must carry
the watch figures. A smoke run, not a benchmark: no figure is asserted beyond "some"."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import testing  # noqa: E402


class BenchWatchSmoke(testing.ClusterTest):
    def run_bench(self, *args):
        bench = os.path.join(testing.BIN, "platoon-bench")
        cmd = [bench, "--endpoints", self.cluster.endpoints(), "--duration", "1", "--warmup",
               "0.3", "--concurrency", "8", "--pool", "50", "--json", "--quiet"] + list(args)
        cert, key = self.cluster.pki.client("bench", "writer")
        cmd += ["--cacert", self.cluster.pki.ca, "--cert", cert, "--key", key]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            self.fail_with_logs("%s exited %d: %s" % (" ".join(cmd), p.returncode, p.stderr))
        report = json.loads(p.stdout)
        self.assertEqual(report["errors"], 0, report["first_error"])
        self.assertGreater(report["writes"]["ops"], 0)
        return report

    def test_watchers_on_the_leader_receive_the_writes(self):
        r = self.run_bench("--workload", "update", "--watchers", "6", "--watch-channels", "2")
        w = r["watch"]
        self.assertEqual(w["watchers"], 6)
        self.assertEqual(w["channels"], 2)
        self.assertEqual(w["ended_early"], 0, w["first_error"])
        self.assertGreater(w["events"], 0)
        # The bench saw the answers of the writes it sent, so most events are timed.
        self.assertGreater(w["timed"], 0)
        for key in ("delay_p50_us", "delay_p90_us", "delay_p99_us", "delay_max_us",
                    "events_per_s"):
            self.assertIn(key, w)

    def test_watchers_on_a_named_node(self):
        # The last endpoint: a follower or the leader, either way not found by discovery.
        endpoint = self.cluster.endpoints().split(",")[-1]
        r = self.run_bench("--workload", "update", "--watchers", "2", "--watch-node", endpoint)
        self.assertEqual(r["watch"]["node"], endpoint)
        self.assertEqual(r["watch"]["ended_early"], 0, r["watch"]["first_error"])
        self.assertGreater(r["watch"]["events"], 0)


if __name__ == "__main__":
    testing.main()
