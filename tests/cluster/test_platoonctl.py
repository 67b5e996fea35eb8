"""platoonctl against a real cluster: each command's output (JSON and tables), its exit codes
for invalid values, missing vehicles and an unreachable cluster, failover between endpoints,
cluster status asking every member, and simulate's platoon and report."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import cluster as cl, testing  # noqa: E402


class Platoonctl(testing.ClusterTest):
    def run_ctl(self, *args, endpoints=None, timeout=10.0, env=None):
        cmd = [os.path.join(testing.BIN, "platoonctl")]
        if endpoints is not False:
            cmd += ["--endpoints", endpoints or self.cluster.endpoints()]
        cmd += ["--timeout", str(timeout)] + list(args)
        env = dict(os.environ if env is None else env, **self.cluster.ctl_env())
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 60,
                              env=env)

    def json_of(self, r):
        self.assertEqual(r.returncode, 0, "stderr: %s stdout: %s" % (r.stderr, r.stdout))
        return json.loads(r.stdout.strip().splitlines()[-1])

    def test_vehicle_commands_and_exit_codes(self):
        v = self.json_of(self.run_ctl("--json", "vehicle", "update", "7", "--lat", "51.5",
                                      "--lon", "-0.12", "--speed", "13.5", "--heading", "270"))
        self.assertEqual((v["id"], v["latitude"], v["longitude"], v["speed"], v["heading"]),
                         (7, 51.5, -0.12, 13.5, 270.0))
        self.assertGreater(v["revision"], 0)
        got = self.json_of(self.run_ctl("--json", "vehicle", "get", "7"))
        self.assertEqual(got, v)
        table = self.run_ctl("vehicle", "list")
        self.assertEqual(table.returncode, 0, table.stderr)
        self.assertIn("51.5 ", table.stdout)
        self.assertIn("LATITUDE", table.stdout)
        # The server's INVALID_ARGUMENT message is shown, with exit code 2.
        bad = self.run_ctl("vehicle", "update", "8", "--lat", "95", "--lon", "0", "--speed",
                           "1", "--heading", "0")
        self.assertEqual(bad.returncode, 2)
        self.assertIn("vehicle.latitude", bad.stderr)
        # A value that is not a number never leaves the client.
        self.assertEqual(self.run_ctl("vehicle", "update", "8", "--lat", "north", "--lon", "0",
                                      "--speed", "1", "--heading", "0").returncode, 2)
        self.assertEqual(self.run_ctl("vehicle", "update", "8", "--lat", "1").returncode, 2)
        self.assertEqual(self.run_ctl("vehicle", "frobnicate").returncode, 2)
        missing = self.run_ctl("--json", "vehicle", "get", "999")
        self.assertEqual(missing.returncode, 3)
        self.assertIn("not found", missing.stderr)
        self.assertEqual(json.loads(missing.stdout)["error"]["kind"], "not_found")
        d = self.json_of(self.run_ctl("--json", "vehicle", "delete", "7"))
        self.assertTrue(d["existed"])
        self.assertEqual(self.run_ctl("vehicle", "delete", "7").returncode, 3)
        self.assertEqual(self.run_ctl("vehicle", "get", "7").returncode, 3)

    def test_extreme_ids_and_exact_doubles_survive_the_documented_export_and_restore(self):
        """Ids at and above 2^63 print as themselves (they printed as negative numbers, and the
        restore of docs/operations.md then failed on them); doubles print in the fewest digits
        that read back exactly (2.3522, not 2.3521999999999998; 359.9999, never 360.0)."""
        top = 2**64 - 1
        ids = [1, 2**63 - 1, 2**63, top]
        for i, vid in enumerate(ids):
            r = self.run_ctl("--json", "vehicle", "update", str(vid), "--lat", "48.8566",
                             "--lon", "2.3522", "--speed", "0.1", "--heading", "359.9999")
            self.assertEqual(self.json_of(r)["id"], vid)
        raw = self.run_ctl("--json", "vehicle", "get", str(top))
        self.assertIn('"id":18446744073709551615', raw.stdout)
        self.assertIn('"longitude":2.3522,', raw.stdout)
        self.assertIn('"heading":359.9999,', raw.stdout)
        table = self.run_ctl("vehicle", "get", str(top))
        self.assertIn("359.9999", table.stdout)
        self.assertNotIn("360.0", table.stdout)
        members = self.json_of(self.run_ctl("--json", "cluster", "status"))
        self.assertEqual(sorted(m["id"] for m in members["members"]), [1, 2, 3])

        export = self.run_ctl("--json", "vehicle", "list")
        before = self.json_of(export)["vehicles"]
        self.assertEqual([v["id"] for v in before], ids)
        fd, path = tempfile.mkstemp(suffix=".json")
        with os.fdopen(fd, "w") as f:
            f.write(export.stdout)
        self.addCleanup(os.remove, path)
        for vid in ids:
            self.assertEqual(self.run_ctl("vehicle", "delete", str(vid)).returncode, 0)

        # The restore procedure of docs/operations.md, run as written.
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                               "operations.md")) as f:
            doc = f.read()
        start = doc.index("To restore an export")
        script = doc[doc.index("```sh\n", start) + 6:doc.index("```", doc.index("```sh", start) + 5)]
        env = dict(os.environ, PATH=testing.BIN + os.pathsep + os.environ["PATH"],
                   PLATOON_ENDPOINTS=self.cluster.endpoints(), **self.cluster.ctl_env())
        r = subprocess.run(["bash", "-e", "-c", script.replace("platoon.json", path)], env=env,
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        after = self.json_of(self.run_ctl("--json", "vehicle", "list"))["vehicles"]
        strip = lambda vs: [{k: v for k, v in x.items() if k != "revision"} for x in vs]
        self.assertEqual(strip(after), strip(before))

    def test_unreachable_cluster_and_failover(self):
        dead = "127.0.0.1:%d" % cl.free_ports(1)[0]
        r = self.run_ctl("vehicle", "list", endpoints=dead, timeout=1.0)
        self.assertEqual(r.returncode, 4)
        self.assertIn("unreachable", r.stderr)
        # A dead endpoint first in the list is skipped; the environment variable is honoured.
        env = dict(os.environ, PLATOON_ENDPOINTS=dead + "," + self.node(1).address)
        ok = self.run_ctl("--json", "vehicle", "list", endpoints=False, env=env)
        self.assertEqual(self.json_of(ok)["leader_id"], self.leader)

    def test_unreachable_endpoints_fail_fast_naming_the_cause(self):
        """A refused connection, a name that does not resolve, a port out of range and a scheme
        each end the command with their cause, without waiting out --timeout (they all used
        to take the full timeout and say the same thing); an endpoint that accepts TCP but
        never completes a gRPC connection is retried until --timeout, and named too."""
        ctl = os.path.join(testing.BIN, "platoonctl")
        dead = "127.0.0.1:%d" % cl.free_ports(1)[0]
        mute = socket.socket()  # listens, never accepts: no HTTP/2 handshake ever completes
        mute.bind(("127.0.0.1", 0))
        mute.listen(16)
        self.addCleanup(mute.close)
        silent = "127.0.0.1:%d" % mute.getsockname()[1]
        cases = [(dead, 4, "connection refused"),
                 ("no-such-host.invalid:7001", 4, "cannot resolve host"),
                 ("127.0.0.1:99999", 2, "port"),
                 ("http://127.0.0.1:7001", 2, "scheme"),
                 (silent, 4, "no gRPC connection"),
                 (dead + "," + silent, 4, "connection refused")]
        for endpoints, code, words in cases:
            # --timeout 600 where the cause is final: a command that waited it out would be
            # killed by the guard below.
            timeout = "3" if silent in endpoints else "600"
            r = subprocess.run([ctl, "--endpoints", endpoints, "--timeout", timeout,
                                "--dial-timeout", "0.5", "vehicle", "list"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, code, (endpoints, r.stderr))
            self.assertIn(words, r.stderr, endpoints)

    def test_cluster_status_asks_every_member(self):
        follower = next(i for i in (1, 2, 3) if i != self.leader)
        self.node(follower).kill()
        st = self.json_of(self.run_ctl("--json", "cluster", "status",
                                       endpoints=self.node(self.leader).address))
        self.assertEqual(st["leader_id"], self.leader)
        by_id = {m["id"]: m for m in st["members"]}
        self.assertEqual(sorted(by_id), [1, 2, 3])
        self.assertFalse(by_id[follower]["reachable"])
        for i in (1, 2, 3):
            if i != follower:
                self.assertTrue(by_id[i]["reachable"])
                self.assertEqual(by_id[i]["role"], "leader" if i == self.leader else "follower")
                self.assertEqual(by_id[i]["leader_id"], self.leader)
        table = self.run_ctl("cluster", "status")
        self.assertEqual(table.returncode, 0, table.stderr)
        self.assertIn("unreachable", table.stdout)

    def test_cluster_status_judges_replication_from_the_leader(self):
        """A member that was added but never started is shown with the leader's view of it
        (never heard from, its match and lag), not as a healthy follower; without a leader the
        command exits 4."""
        ghost = "127.0.0.1:%d" % cl.free_ports(1)[0]
        r = self.run_ctl("cluster", "add", "9", ghost, "--learner")
        self.assertEqual(r.returncode, 0, r.stderr)
        for i in range(5):
            self.json_of(self.run_ctl("--json", "vehicle", "update", str(i + 1), "--lat", "1",
                                      "--lon", "2", "--speed", "3", "--heading", "4"))
        st = self.json_of(self.run_ctl("--json", "cluster", "status"))
        by_id = {m["id"]: m for m in st["members"]}
        g = by_id[9]
        self.assertFalse(g["reachable"])
        self.assertIn("never heard from", g["state"])
        self.assertEqual(g["match_index"], 0)
        self.assertGreater(g["lag"], 0)
        self.assertIsNone(g["last_contact_ms"])
        for i in (1, 2, 3):
            self.assertTrue(by_id[i]["reachable"])
            if i != self.leader:
                self.assertTrue(by_id[i]["state"].startswith("replicate"), by_id[i])
                self.assertIsNotNone(by_id[i]["last_contact_ms"])
        table = self.run_ctl("cluster", "status")
        self.assertEqual(table.returncode, 0, table.stderr)
        line = next(l for l in table.stdout.splitlines() if ghost in l)
        self.assertIn("never", line)
        self.assertNotIn(" ok", line)

        # Without a majority there is no leader: the command says so and exits 4.
        for i in (1, 2, 3):
            if i != self.leader:
                self.node(i).kill()
        deadline = time.monotonic() + 30
        while True:
            r = self.run_ctl("--json", "cluster", "status",
                             endpoints=self.node(self.leader).address)
            if r.returncode == 4 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(r.returncode, 4, r.stdout)
        self.assertIn("no leader", r.stderr)

    def test_simulate_drives_the_platoon_and_reports(self):
        r = self.run_ctl("--json", "simulate", "--vehicles", "4", "--rate", "20", "--duration",
                         "2", "--first-id", "100")
        rep = self.json_of(r)
        self.assertGreater(rep["writes"], 0)
        self.assertEqual(rep["failed"], 0)
        self.assertGreaterEqual(rep["latency_us"]["p99"], rep["latency_us"]["p50"])
        self.assertIn("simulate:", r.stderr)  # the progress line
        p = self.json_of(self.run_ctl("--json", "vehicle", "list"))
        ids = [v["id"] for v in p["vehicles"]]
        self.assertEqual(ids, [100, 101, 102, 103])
        for v in p["vehicles"]:
            self.assertTrue(-90 <= v["latitude"] <= 90 and 0 <= v["heading"] < 360)
            self.assertGreater(v["speed"], 0)
        # --watch --count refreshes the given number of times.
        w = self.run_ctl("--json", "vehicle", "list", "--watch", "--interval", "0.1",
                         "--count", "3")
        self.assertEqual(w.returncode, 0, w.stderr)
        self.assertEqual(len(w.stdout.strip().splitlines()), 3)

    def test_simulate_cleanup_removes_what_it_wrote(self):
        """simulate writes ids FIRST-ID.. (1 by default, said in its help) and --cleanup deletes
        them afterwards; a vehicle outside that range is untouched."""
        self.json_of(self.run_ctl("--json", "vehicle", "update", "50", "--lat", "1", "--lon", "2",
                                  "--speed", "3", "--heading", "4"))
        r = self.run_ctl("--json", "simulate", "--vehicles", "3", "--rate", "20", "--duration",
                         "1", "--cleanup")
        self.assertGreater(self.json_of(r)["writes"], 0)
        ids = [v["id"] for v in self.json_of(self.run_ctl("--json", "vehicle", "list"))["vehicles"]]
        self.assertEqual(ids, [50])
        h = self.run_ctl("simulate", "--help", endpoints=False)
        self.assertEqual(h.returncode, 0)
        self.assertIn("--first-id", h.stdout)
        self.assertIn("defaults to 1", h.stdout)
        self.assertIn("--cleanup", h.stdout)

    def test_flags_anywhere_per_command_help_and_dash_h(self):
        """Global options after the command, -h, and help per command or group (each used to
        be an "unknown command" or a refused option)."""
        self.json_of(self.run_ctl("vehicle", "update", "5", "--lat", "1", "--lon", "2", "--speed",
                                  "3", "--heading", "4", "--json"))
        ctl = os.path.join(testing.BIN, "platoonctl")
        r = subprocess.run([ctl, "vehicle", "get", "5", "--json", "--endpoints",
                            self.cluster.endpoints(), "--timeout=5"], capture_output=True,
                           text=True, timeout=60, env=dict(os.environ, **self.cluster.ctl_env()))
        self.assertEqual(self.json_of(r)["id"], 5)
        for args, words in [(["-h"], "usage: platoonctl"), (["--help"], "COMMAND"),
                            (["vehicle", "--help"], "vehicle list"),
                            (["vehicle", "get", "-h"], "vehicle get ID"),
                            (["cluster", "add", "--help"], "cluster add ID HOST:PORT"),
                            (["--json", "cluster", "-h"], "cluster status")]:
            h = subprocess.run([ctl] + args, capture_output=True, text=True, timeout=30)
            self.assertEqual(h.returncode, 0, (args, h.stderr))
            self.assertIn(words, h.stdout, args)
        self.assertNotIn("vehicle list", subprocess.run(
            [ctl, "vehicle", "get", "-h"], capture_output=True, text=True, timeout=30).stdout)
        g = subprocess.run([ctl, "vehicle"], capture_output=True, text=True, timeout=30)
        self.assertEqual(g.returncode, 2)
        self.assertIn("vehicle get", g.stderr)
        u = subprocess.run([ctl, "vehicle", "list", "--bogus"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(u.returncode, 2)
        self.assertIn("--bogus", u.stderr)

    def test_transfer_and_snapshot(self):
        target = next(i for i in (1, 2, 3) if i != self.leader)
        t = self.json_of(self.run_ctl("--json", "cluster", "transfer", str(target)))
        self.assertEqual(t["leader_id"], target)
        self.run_ctl("vehicle", "update", "1", "--lat", "1", "--lon", "1", "--speed", "1",
                     "--heading", "1")
        s = self.json_of(self.run_ctl("--json", "cluster", "snapshot"))
        self.assertEqual(sorted(x["id"] for x in s["snapshots"]), [1, 2, 3])
        for x in s["snapshots"]:
            self.assertGreater(x["index"], 0)
        self.assertEqual(self.run_ctl("cluster", "snapshot", "9").returncode, 3)
        self.assertEqual(self.run_ctl("cluster", "remove", "9").returncode, 3)


if __name__ == "__main__":
    testing.main()
