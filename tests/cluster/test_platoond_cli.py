"""platoond's command line and data directory: bad flags, a port in use, a data directory that
is damaged, missing or another node's are each refused with one line naming the cause."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import api, cluster, testing  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(args, timeout=20):
    p = subprocess.run([testing.platoond()] + args, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stderr.strip().splitlines()


class Flags(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="platoond-cli-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.dir = os.path.join(self.tmp, "d")

    def base(self, **over):
        port = free_port()
        args = {"--id": "1", "--listen": "127.0.0.1:%d" % port, "--data-dir": self.dir,
                "--initial-cluster": "1=127.0.0.1:%d" % port}
        args.update(over)
        out = ["--insecure"]  # these tests are about the other flags
        for k, v in args.items():
            if v is not None:
                out += [k, v]
        return out

    def test_bad_flags_name_the_flag(self):
        cases = [
            (self.base(**{"--id": "0"}), "--id"),
            (self.base(**{"--id": "x"}), "--id"),
            (self.base(**{"--id": None}), "--id"),
            (self.base(**{"--listen": "nohostport"}), "--listen"),
            (self.base(**{"--listen": None}), "--listen"),
            (self.base(**{"--data-dir": None}), "--data-dir"),
            (self.base(**{"--initial-cluster": "1=127.0.0.1"}), "--initial-cluster"),
            (self.base(**{"--initial-cluster": "0=127.0.0.1:1"}), "--initial-cluster"),
            (self.base(**{"--initial-cluster": "1=a:1,1=b:2"}), "--initial-cluster"),
            (self.base() + ["--log-level", "loud"], "--log-level"),
            (self.base() + ["--sync", "maybe"], "--sync"),
            (self.base() + ["--tick-ms", "0"], "--tick-ms"),
            (self.base() + ["--election-ticks", "1"], "--election-ticks"),
            (self.base() + ["--join"], "--join"),
            (self.base() + ["--frobnicate", "1"], "--frobnicate"),
        ]
        for args, flag in cases:
            rc, lines = run(args)
            self.assertEqual(rc, 2, (args, lines))
            self.assertEqual(len(lines), 1, lines)
            self.assertIn(flag, lines[0])
        self.assertFalse(os.path.exists(self.dir), "a refused start must not create the data dir")

    def test_not_in_initial_cluster(self):
        rc, lines = run(self.base(**{"--id": "4"}))
        self.assertEqual(rc, 1)
        self.assertIn("not in the initial cluster", lines[-1])

    def test_port_in_use(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        self.addCleanup(s.close)
        addr = "127.0.0.1:%d" % s.getsockname()[1]
        rc, lines = run(self.base(**{"--listen": addr, "--initial-cluster": "1=" + addr}))
        self.assertEqual(rc, 1)
        self.assertIn(addr, lines[-1])

    def start_and_check(self, args):
        """Starts platoond with @args until it serves, then returns its status (and stops it)."""
        p = subprocess.Popen([testing.platoond()] + args + testing.FAST, stderr=subprocess.PIPE,
                             text=True)
        listen = args[args.index("--listen") + 1]
        try:
            client = api.Node(listen)
            deadline = time.monotonic() + 20
            while True:
                try:
                    st = client.call("Status", timeout=1.0)
                    if st.leader_id != 0:
                        return st
                except grpc.RpcError:
                    pass
                self.assertLess(time.monotonic(), deadline, "no leader")
                time.sleep(0.1)
        finally:
            p.terminate()
            p.communicate(timeout=20)

    def test_a_refused_first_start_leaves_nothing_behind(self):
        """A first start refused for its own id missing from the initial cluster, for a busy
        port, or for members sharing an address creates nothing; the corrected retry then
        bootstraps with what it was given (it used to serve 0 members forever)."""
        rc, lines = run(self.base(**{"--id": "5"}))
        self.assertEqual(rc, 1)
        self.assertIn("not in the initial cluster", lines[-1])
        self.assertFalse(os.path.exists(self.dir), lines)

        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        addr = "127.0.0.1:%d" % busy.getsockname()[1]
        rc, lines = run(self.base(**{"--listen": addr, "--initial-cluster": "1=" + addr}))
        busy.close()
        self.assertEqual(rc, 1)
        self.assertIn("in use", lines[-1])
        self.assertFalse(os.path.exists(self.dir), lines)

        os.mkdir(self.dir)  # an empty directory made beforehand is left empty
        port = free_port()
        rc, lines = run(self.base(**{"--listen": "127.0.0.1:%d" % port, "--initial-cluster":
                                     "1=127.0.0.1:%d,2=127.0.0.1:%d" % (port, port)}))
        self.assertEqual(rc, 1)
        self.assertIn("same address", lines[-1])
        self.assertEqual(os.listdir(self.dir), [])

        good = "127.0.0.1:%d" % free_port()
        st = self.start_and_check(self.base(**{"--listen": good, "--initial-cluster": "1=" + good}))
        self.assertEqual([(m.id, m.address) for m in st.members], [(1, good)])

    def test_a_blank_store_left_by_an_interrupted_start_is_bootstrapped(self):
        """A data directory whose store exists but holds nothing (what an older version, or a
        crash between creating and bootstrapping, left) is bootstrapped by the next start."""
        good = "127.0.0.1:%d" % free_port()
        p = subprocess.Popen([testing.platoond(), "--id", "1", "--listen", good, "--data-dir",
                              self.dir, "--join", "--insecure"], stderr=subprocess.PIPE,
                             text=True)
        deadline = time.monotonic() + 20
        while not os.path.exists(os.path.join(self.dir, "wal")):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        time.sleep(0.3)
        p.terminate()
        p.communicate(timeout=20)
        st = self.start_and_check(self.base(**{"--listen": good, "--initial-cluster": "1=" + good}))
        self.assertEqual([m.id for m in st.members], [1])

    def test_addresses_are_checked(self):
        port = free_port()
        cases = [
            # --listen is not the node's own address in the initial cluster
            ({"--listen": "127.0.0.1:%d" % port, "--initial-cluster": "1=127.0.0.1:%d" %
              (port + 1)}, "does not serve"),
            # two members with one address
            ({"--listen": "127.0.0.1:%d" % port, "--initial-cluster":
              "1=127.0.0.1:%d,2=127.0.0.1:%d" % (port, port)}, "same address"),
            # port 0 for a member
            ({"--listen": "127.0.0.1:%d" % port, "--initial-cluster":
              "1=127.0.0.1:%d,2=127.0.0.1:0" % port}, "port"),
        ]
        for over, words in cases:
            rc, lines = run(self.base(**over))
            self.assertIn(rc, (1, 2), (over, lines))
            self.assertIn(words, lines[-1], (over, lines))
            self.assertFalse(os.path.exists(self.dir), (over, lines))

        # A restart on another listen address than the one recorded is refused, naming both.
        good = "127.0.0.1:%d" % port
        self.start_and_check(self.base(**{"--listen": good, "--initial-cluster": "1=" + good}))
        moved = "127.0.0.1:%d" % free_port()
        rc, lines = run(self.base(**{"--listen": moved, "--initial-cluster": "1=" + moved}))
        self.assertEqual(rc, 1, lines)
        self.assertIn(good, lines[-1])
        self.assertIn("move", lines[-1])
        # Listening on every interface serves the recorded address.
        self.start_and_check(self.base(**{"--listen": "0.0.0.0:%d" % port}))

    def test_an_unknown_flag_is_called_unknown(self):
        for args in (["--foo"], self.base() + ["--foo"], ["--foo", "1"] + self.base()):
            rc, lines = run(args)
            self.assertEqual(rc, 2, lines)
            self.assertIn("--foo: unknown flag", lines[-1])
        rc, lines = run(self.base() + ["--tick-ms"])
        self.assertIn("--tick-ms: needs a value", lines[-1])

    def test_help(self):
        p = subprocess.run([testing.platoond(), "--help"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        self.assertIn("--initial-cluster", p.stdout)


def wal_segments(data_dir):
    """The write-ahead log's segment files, in order (their names sort as their numbers)."""
    d = os.path.join(data_dir, "wal")
    return [os.path.join(d, n) for n in sorted(os.listdir(d)) if n.endswith(".wal")]


def used_part(path):
    """Bytes of a file up to its last non-zero one: the records, not the zeros after them."""
    with open(path, "rb") as f:
        return len(f.read().rstrip(b"\0"))


class DataDir(unittest.TestCase):
    """A node is started, writes a little, is stopped; then its data directory is damaged.
    New data directories use the write-ahead log (DIR/wal); DataDirLmdb runs the same tests
    on one created with --storage-engine lmdb (DIR/log/data.mdb)."""

    engine = "wal"

    def setUp(self):
        self.c = cluster.LocalCluster(testing.platoond(), n=1,
                                      extra_args=testing.FAST + ["--storage-engine", self.engine])
        self.addCleanup(self.c.close)
        self.c.start()
        self.c.wait_for_leader()
        self.n = self.c.nodes[1]
        for i in range(1, 30):
            self.n.client.call("UpdateVehicle", vehicle=api.vehicle(i, 1.0, 2.0, 3.0, 4.0))
        self.assertEqual(self.n.stop(), 0)

    def start_fails(self, *extra):
        self.n.start(extra=extra)
        try:
            rc = self.n.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.fail("platoond started on a bad data dir:\n" + self.n.log())
        lines = self.n.log().strip().splitlines()
        self.assertEqual(rc, 1, lines[-3:])
        return lines[-1]

    def test_restart_recovers_everything(self):
        self.n.start()
        self.c.wait_for_leader()
        p = self.n.client.call("GetPlatoon")
        self.assertEqual(len(p.vehicles), 29)

    def log_file(self):
        """The file holding the log: LMDB's data file, or the write-ahead log's segment that
        has records (the one after it is prepared ahead, zeros after its header)."""
        if self.engine == "lmdb":
            return os.path.join(self.n.data_dir, "log", "data.mdb")
        return [s for s in wal_segments(self.n.data_dir) if used_part(s) > 64][-1]

    def test_damaged_log_is_refused(self):
        data = self.log_file()
        with open(data, "r+b") as f:
            blob = bytearray(f.read())
            # Flip bytes all over the used part of the file, past LMDB's two meta pages (or
            # the segment's header).
            used = len(blob.rstrip(b"\0"))
            for off in range(4096 * 2 if self.engine == "lmdb" else 64, used, 97):
                blob[off] ^= 0x5A
            f.seek(0)
            f.write(blob)
        line = self.start_fails()
        self.assertIn(self.n.data_dir, line)
        print("refused with:", line)

    def test_missing_log_is_refused_never_rebootstrapped(self):
        log = "log" if self.engine == "lmdb" else "wal"
        shutil.rmtree(os.path.join(self.n.data_dir, log))
        line = self.start_fails()
        self.assertIn(self.n.data_dir, line)
        self.assertFalse(os.path.exists(os.path.join(self.n.data_dir, "log")))
        self.assertFalse(os.path.exists(os.path.join(self.n.data_dir, "wal")))

    def test_another_nodes_data_dir_is_refused(self):
        self.n.id = 2
        args = ["--id", "2", "--listen", self.n.address, "--data-dir", self.n.data_dir,
                "--initial-cluster", "2=" + self.n.address]
        args += self.c.security_flags(self.n)
        p = subprocess.run([testing.platoond()] + args + testing.FAST, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn(self.n.data_dir, p.stderr.strip().splitlines()[-1])

    def test_file_size_limit_is_a_clear_error_and_the_node_still_stops(self):
        """With a file size limit (as with a full disk) a write fails with a clear error
        naming the file and is retried, the server keeps running, and SIGTERM still stops it
        cleanly while it waits to retry (it used to wait forever for the failed write)."""
        # LMDB's pages, or the segment's records, not the zeros kept ahead: a write soon
        # crosses the limit in the middle of the file, as on a disk that fills up.
        used = used_part(self.log_file())
        limit = used + (64 << 10)
        self.c.command_prefix = lambda node: ["prlimit", "--fsize=%d" % limit, "--"]
        self.n.start()
        self.c.wait_for_leader()
        deadline = time.monotonic() + 60
        i = 0
        while "storage write failed" not in self.n.log():
            self.assertLess(time.monotonic(), deadline, "no write failed:\n" + self.n.log())
            self.assertTrue(self.n.alive(), "platoond died:\n" + self.n.log())
            i += 1
            try:
                self.n.client.call("UpdateVehicle", timeout=1.0,
                                   vehicle=api.vehicle(1 + i % 50, 1.0, 2.0, 3.0, 4.0))
            except grpc.RpcError as e:
                self.assertIn(e.code(), (grpc.StatusCode.DEADLINE_EXCEEDED,
                                         grpc.StatusCode.UNAVAILABLE), e.details())
        line = next(l for l in self.n.log().splitlines() if "storage write failed" in l)
        self.assertIn(self.n.data_dir, line)
        self.assertIn("space", line)
        time.sleep(0.7)  # into the wait before the next retry
        self.assertTrue(self.n.alive())
        self.assertEqual(self.n.stop(), 0)  # raises if it does not stop within 15 s

    def test_inspect_has_help_and_takes_the_cluster_name(self):
        inspect = os.path.join(testing.BIN, "platoon-inspect")
        for flag in ("--help", "-h"):
            p = subprocess.run([inspect, flag], capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("--cluster NAME", p.stdout)
        ok = subprocess.run([inspect, self.n.data_dir, "--cluster", "platoon", "--node", "1"],
                            capture_output=True, text=True, timeout=60)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertIn("integrity:   ok", ok.stdout)
        self.assertIn("write-ahead log" if self.engine == "wal" else "LMDB", ok.stdout)
        other = subprocess.run([inspect, self.n.data_dir, "--cluster", "elsewhere", "--node", "1"],
                               capture_output=True, text=True, timeout=60)
        self.assertEqual(other.returncode, 1, other.stdout)

    def test_inspect_needs_no_write_access(self):
        """platoon-inspect only reads: as a user who may read a copy of a data directory but
        write nothing in it, it checks the copy, and nothing in the copy changes."""
        if shutil.which("setpriv") is None or os.geteuid() != 0:
            self.skipTest("needs root and setpriv to run as a user without write access")
        copy = os.path.join(self.c.tmp, "readonly-copy")
        shutil.copytree(self.n.data_dir, copy)
        snaps = os.path.join(copy, "snapshots")
        os.makedirs(snaps, exist_ok=True)
        leftover = os.path.join(snaps, "snap-00000000000000000001-00000000000000000001.psnap.tmp")
        with open(leftover, "wb") as f:
            f.write(b"unfinished")
        for root, dirs, files in os.walk(copy):
            os.chmod(root, 0o555)  # readable and enterable by anyone, writable by nobody
            for name in files:
                os.chmod(os.path.join(root, name), 0o444)
        os.chmod(self.c.tmp, 0o755)
        self.addCleanup(lambda: [os.chmod(r, 0o755) for r, _, _ in os.walk(copy)])
        before = sorted(os.listdir(copy)) + sorted(os.listdir(snaps))
        inspect = os.path.join(testing.BIN, "platoon-inspect")
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        probe = subprocess.run(nobody + [inspect, "--help"], capture_output=True, timeout=60)
        if probe.returncode != 0:
            self.skipTest("an unprivileged user cannot run the programs here: %s" %
                          probe.stderr.decode(errors="replace").strip())
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            inspect, copy], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("integrity:   ok", p.stdout)
        self.assertEqual(sorted(os.listdir(copy)) + sorted(os.listdir(snaps)), before)
        self.assertTrue(os.path.exists(leftover))

    def test_another_clusters_data_dir_is_refused(self):
        line = self.start_fails("--cluster-name", "elsewhere")
        self.assertIn(self.n.data_dir, line)


class DataDirLmdb(DataDir):
    """The same on a data directory created with --storage-engine lmdb (the engine of earlier
    releases, which such directories keep)."""

    engine = "lmdb"


if __name__ == "__main__":
    testing.main()
