"""make demo, as a test: the narrated demo runs to its end with every claim holding, prints
its verdict, and leaves no process or temporary directory behind."""

import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import testing  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(ROOT, "scripts", "demo")


class Demo(unittest.TestCase):
    def test_demo_runs_and_every_claim_holds(self):
        r = subprocess.run([DEMO, testing.BIN], capture_output=True, text=True, timeout=300)
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, out)
        verdict = [l for l in r.stdout.splitlines() if l.startswith("VERDICT:")]
        self.assertEqual(len(verdict), 1, out)
        self.assertRegex(verdict[0], r"^VERDICT: PASS - every claim held; nodes 2, 3, 4 hold "
                                     r"identical state: 6 vehicles, applied index \d+$")
        # The story it tells: a new leader, writes continuing, catch-up, the membership moves.
        for claim in ("was elected leader", "took over after", "writes continue",
                      "is back and has applied everything", "node 4 caught up",
                      "node 4 is a voter", "members are now 2, 3, 4"):
            self.assertIn(claim, r.stdout)
        data_dir = re.search(r"data in (\S+)", r.stdout).group(1)
        self.assertFalse(os.path.exists(data_dir), "the demo left %s behind" % data_dir)
        self.assertNotIn(data_dir, subprocess.run(["ps", "-eo", "args"], capture_output=True,
                                                  text=True).stdout)

    def test_demo_refuses_a_missing_bin_dir(self):
        r = subprocess.run([DEMO, "/nonexistent-bin"], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("platoond", r.stdout + r.stderr)


if __name__ == "__main__":
    testing.main()
