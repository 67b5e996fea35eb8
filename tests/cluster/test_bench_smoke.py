"""platoon-bench against a real three-node cluster, for about a second per workload: it must
complete and report no failed call. A smoke run, not a benchmark: no figure is asserted."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import testing  # noqa: E402


class BenchSmoke(testing.ClusterTest):
    def run_bench(self, *args):
        bench = os.path.join(testing.BIN, "platoon-bench")
        cmd = [bench, "--endpoints", self.cluster.endpoints(), "--duration", "1", "--warmup",
               "0.2", "--concurrency", "8", "--pool", "50", "--json", "--quiet"] + list(args)
        # The cluster runs with TLS, as users run it: the load generator is a writer.
        cert, key = self.cluster.pki.client("bench", "writer")
        cmd += ["--cacert", self.cluster.pki.ca, "--cert", cert, "--key", key]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            self.fail_with_logs("%s exited %d: %s" % (" ".join(cmd), p.returncode, p.stderr))
        report = json.loads(p.stdout)
        self.assertEqual(report["errors"], 0, report["first_error"])
        self.assertGreater(report["all"]["ops"], 0)
        return report

    def test_update_through_the_leader(self):
        r = self.run_bench("--workload", "update")
        self.assertEqual(r["reads"]["ops"], 0)

    def test_mixed_spread_over_every_node(self):
        r = self.run_bench("--workload", "mixed", "--spread")
        self.assertEqual(len(r["endpoints"]), 3)

    def test_reads_of_the_whole_platoon_stale(self):
        r = self.run_bench("--workload", "read", "--read", "platoon", "--consistency", "stale")
        self.assertEqual(r["writes"]["ops"], 0)


if __name__ == "__main__":
    testing.main()
