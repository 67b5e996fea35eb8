"""The monitoring endpoint (--http) and the gRPC health service, on a real TLS cluster:
/healthz, /readyz (ready, and not ready with the reason on a node cut off from the majority),
/metrics (valid for promtool, values that move with writes and leader changes, refused without
a client certificate of the cluster's CA), grpc.health.v1.Health/Check, and the flag's errors.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

from harness import api, testing  # noqa: E402
from harness import http as h  # noqa: E402
from harness.cluster import LocalCluster, free_ports  # noqa: E402
from harness.pki import Pki  # noqa: E402

HEALTH = api.load_messages("grpc/health/v1/health.proto")
SERVING = HEALTH["HealthCheckResponse"].SERVING
NOT_SERVING = HEALTH["HealthCheckResponse"].NOT_SERVING


def health_check(node, credentials, service="", method="Check", timeout=2.0):
    """Calls grpc.health.v1.Health/<method> on `node` with the standard message encoding;
    returns the response's status (a ServingStatus number)."""
    with grpc.secure_channel(node.address, credentials) as ch:
        stub = ch.unary_unary(
            "/grpc.health.v1.Health/" + method,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=HEALTH["HealthCheckResponse"].FromString)
        return stub(HEALTH["HealthCheckRequest"](service=service), timeout=timeout).status


class HttpTest(unittest.TestCase):
    def setUp(self):
        self.cluster = LocalCluster(testing.platoond(), n=3, extra_args=testing.FAST, http=True)
        self.addCleanup(self.cluster.close)
        self.cluster.start()
        self.leader = self.cluster.wait_for_leader()
        self.pki = self.cluster.pki
        self.reader = self.pki.client("watcher", "reader")

    def node(self, i):
        return self.cluster.nodes[i]

    def fail_with_logs(self, msg):
        self.fail("%s\n%s" % (msg, self.cluster.dump_logs()))

    def get(self, i, path, client="reader"):
        cert = self.reader if client == "reader" else client
        try:
            return h.get(self.node(i), path, pki=self.pki, client=cert)
        except OSError as e:
            self.fail_with_logs("node %d: GET %s: %r" % (i, path, e))

    def metrics(self, i):
        status, body = self.get(i, "/metrics")
        self.assertEqual(status, 200, body)
        return body, h.parse_metrics(body)

    def wait_ready(self, i, want=200, timeout=15.0):
        """Polls /readyz of node i (no client certificate) until it answers `want`; returns the
        body."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = h.get(self.node(i), "/readyz", pki=self.pki)
            except OSError as e:
                last = (None, str(e))
            if last[0] == want:
                return last[1]
            time.sleep(0.05)
        self.fail_with_logs("node %d: /readyz never answered %d (last: %r)" % (i, want, last))

    def write(self, n, first_id=1):
        for k in range(n):
            deadline = time.monotonic() + 10
            while True:
                try:
                    self.node(self.leader).client.call(
                        "UpdateVehicle", timeout=2.0,
                        vehicle=api.vehicle(first_id + k, 1.0 + k, 10.0, 20.0, 90.0))
                    break
                except grpc.RpcError as e:
                    if time.monotonic() > deadline:
                        self.fail_with_logs("write failed: %s %s" % (e.code(), e.details()))
                    time.sleep(0.05)

    # ----- /healthz and /readyz

    def test_healthz_and_readyz_answer_without_client_certificate(self):
        for i in self.cluster.nodes:
            self.assertEqual(self.get(i, "/healthz", client=None), (200, "ok\n"))
            self.assertEqual(self.wait_ready(i), "ok\n")
        status, body = h.get(self.node(1), "/nothing", pki=self.pki)
        self.assertEqual(status, 404)

    def test_readyz_is_503_with_the_reason_on_a_node_cut_off_from_the_majority(self):
        for i in self.cluster.nodes:
            self.wait_ready(i)
        follower = next(i for i in self.cluster.nodes if i != self.leader)
        creds = self.cluster.credentials("watcher", "reader")
        self.assertEqual(health_check(self.node(follower), creds), SERVING)
        others = [i for i in self.cluster.nodes if i != follower]
        for i in others:
            self.node(i).pause()
        try:
            body = self.wait_ready(follower, want=503)
            self.assertTrue("not heard" in body or "no leader" in body, body)
            self.assertEqual(len(body.strip().splitlines()), 1, body)
            self.assertEqual(health_check(self.node(follower), creds), NOT_SERVING)
            self.assertEqual(
                health_check(self.node(follower), creds, service="platoon.v1.Platoon"),
                NOT_SERVING)
        finally:
            for i in others:
                self.node(i).resume()
        self.wait_ready(follower)
        deadline = time.monotonic() + 10
        while health_check(self.node(follower), creds) != SERVING:
            if time.monotonic() > deadline:
                self.fail_with_logs("the health service never said SERVING again")
            time.sleep(0.05)

    # ----- grpc.health.v1

    def test_grpc_health_service(self):
        self.wait_ready(self.leader)
        creds = self.cluster.credentials("watcher", "reader")
        n = self.node(self.leader)
        self.assertEqual(health_check(n, creds, ""), SERVING)
        self.assertEqual(health_check(n, creds, "platoon.v1.Platoon"), SERVING)
        with self.assertRaises(grpc.RpcError) as e:
            health_check(n, creds, "no.such.Service")
        self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)
        # The wire format of the standard protocol, written by hand (not from our .proto):
        # HealthCheckRequest{service (1): string}, HealthCheckResponse{status (1): enum},
        # SERVING = 1.
        with grpc.secure_channel(n.address, creds) as ch:
            raw = ch.unary_unary("/grpc.health.v1.Health/Check")
            service = b"platoon.v1.Platoon"
            self.assertEqual(raw(b"\x0a" + bytes([len(service)]) + service, timeout=2.0),
                             b"\x08\x01")
            self.assertEqual(raw(b"", timeout=2.0), b"\x08\x01")
    def test_grpc_health_watch_follows_readiness(self):
        """Watch sends the status at once and again when it changes: a follower cut off from
        the others goes NOT_SERVING, and SERVING again once it hears a leader."""
        follower = next(i for i in self.cluster.nodes if i != self.leader)
        self.wait_ready(follower)
        creds = self.cluster.credentials("watcher", "reader")
        n = self.node(follower)
        with grpc.secure_channel(n.address, creds) as ch:
            watch = ch.unary_stream(
                "/grpc.health.v1.Health/Watch",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=HEALTH["HealthCheckResponse"].FromString)
            unknown = watch(HEALTH["HealthCheckRequest"](service="no.such.Service"), timeout=30)
            self.assertEqual(next(unknown).status, HEALTH["HealthCheckResponse"].SERVICE_UNKNOWN)
            unknown.cancel()
            stream = watch(HEALTH["HealthCheckRequest"](service=""), timeout=60)
            self.assertEqual(next(stream).status, SERVING)
            others = [i for i in self.cluster.nodes if i != follower]
            for i in others:
                self.node(i).pause()
            try:
                self.assertEqual(next(stream).status, NOT_SERVING)
            finally:
                for i in others:
                    self.node(i).resume()
            self.assertEqual(next(stream).status, SERVING)
            stream.cancel()

    # ----- /metrics

    def test_metrics_need_a_client_certificate_of_the_cluster(self):
        status, body = self.get(self.leader, "/metrics", client=None)
        self.assertEqual(status, 401, body)
        self.assertIn("certificate", body)
        # A certificate of another CA is refused too.
        other = Pki(os.path.dirname(testing.platoond()), os.path.join(self.cluster.tmp, "other"))
        status, body = h.get(self.node(self.leader), "/metrics", pki=self.pki,
                             client=other.client("stranger", "admin"))
        self.assertEqual(status, 401, body)
        status, body = self.get(self.leader, "/metrics")
        self.assertEqual(status, 200, body)
        self.assertIn("# TYPE platoon_raft_term gauge", body)

    def test_metrics_pass_promtool(self):
        promtool = shutil.which("promtool")
        if promtool is None:
            self.skipTest("promtool is not installed (Debian package prometheus, which "
                          "scripts/install-deps installs): the exposition is not checked by it")
        self.write(3)
        for i in self.cluster.nodes:
            body, _ = self.metrics(i)
            r = subprocess.run([promtool, "check", "metrics"], input=body.encode(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout.decode() + body)
            self.assertEqual(r.stdout.decode().strip(), "", "promtool's remarks on node %d" % i)

    def test_metrics_move_with_writes(self):
        self.wait_ready(self.leader)
        body, before = self.metrics(self.leader)
        for name in ("platoon_raft_term", "platoon_raft_commit_index", "platoon_raft_applied_index",
                     "platoon_raft_leader_changes_seen_total", "platoon_sessions",
                     "platoon_commit_duration_seconds_count",
                     "platoon_storage_sync_duration_seconds_count"):
            self.assertIsNotNone(h.value(before, name), name)
        self.assertEqual(h.value(before, "platoon_raft_role", role="leader"), 1)
        self.assertEqual(h.value(before, "platoon_ready"), 1)

        update = "/platoon.v1.Platoon/UpdateVehicle"
        self.write(5)
        self.cluster.wait_converged()
        # The leader publishes what it counts at its next tick (20 ms here).
        deadline = time.monotonic() + 5
        while True:
            _, after = self.metrics(self.leader)
            applied = h.value(after, "platoon_raft_applied_index")
            if applied >= h.value(before, "platoon_raft_applied_index") + 5:
                break
            if time.monotonic() > deadline:
                self.fail_with_logs("applied index did not move: %s" % applied)
            time.sleep(0.05)

        def grew(name, by, **labels):
            b = h.value(before, name, **labels) or 0
            a = h.value(after, name, **labels)
            self.assertIsNotNone(a, (name, labels))
            self.assertGreaterEqual(a - b, by, (name, labels, b, a))

        grew("platoon_raft_commit_index", 5)
        grew("platoon_proposals_total", 5, result="applied")
        grew("platoon_commit_duration_seconds_count", 5)
        grew("platoon_commit_duration_seconds_bucket", 5, le="+Inf")
        grew("platoon_storage_sync_duration_seconds_count", 1)
        grew("platoon_storage_sync_entries_sum", 5)
        grew("platoon_grpc_requests_total", 5, method=update, code="OK")
        self.assertEqual(h.value(after, "platoon_vehicles"), 5)
        # Histograms: cumulative buckets, +Inf equal to _count.
        bounds = sorted(
            (float(dict(k[1])["le"]), v) for k, v in after.items()
            if k[0] == "platoon_commit_duration_seconds_bucket")
        counts = [v for _, v in bounds]
        self.assertEqual(counts, sorted(counts))
        self.assertEqual(counts[-1], h.value(after, "platoon_commit_duration_seconds_count"))
        # The leader sees its followers, caught up.
        for i in self.cluster.nodes:
            if i != self.leader:
                self.assertIsNotNone(
                    h.value(after, "platoon_peer_replication_lag_entries", peer=str(i)))
        # A follower applied the same writes.
        follower = next(i for i in self.cluster.nodes if i != self.leader)
        deadline = time.monotonic() + 5
        while True:
            _, f = self.metrics(follower)
            if h.value(f, "platoon_raft_applied_index") >= h.value(
                    after, "platoon_raft_applied_index"):
                break
            if time.monotonic() > deadline:
                self.fail_with_logs("follower's applied index did not move")
            time.sleep(0.05)
        self.assertEqual(h.value(f, "platoon_raft_role", role="follower"), 1)

    def test_watch_metrics_count_open_watches(self):
        node = self.leader
        # With --http the node's live view watches the node itself: one watch, once it is up.
        deadline = time.monotonic() + 10
        while True:
            _, m = self.metrics(node)
            if m[("platoon_watchers", frozenset())] == 1.0:
                break
            if time.monotonic() > deadline:
                self.fail_with_logs("the live view's own watch never showed in platoon_watchers")
            time.sleep(0.05)
        sent0 = m[("platoon_watch_events_sent_total", frozenset())]
        self.write(3)
        stream = self.node(node).client.watch()
        first = next(stream)  # the initial state: the watch is open and started
        self.assertTrue(first.initial)
        deadline = time.monotonic() + 10
        while True:
            _, m = self.metrics(node)
            if m[("platoon_watchers", frozenset())] == 2.0:
                break
            if time.monotonic() > deadline:
                self.fail_with_logs("platoon_watchers never showed the open watch")
            time.sleep(0.05)
        self.assertGreaterEqual(m[("platoon_watch_events_sent_total", frozenset())], sent0 + 3)
        stream.cancel()
        deadline = time.monotonic() + 10
        while self.metrics(node)[1][("platoon_watchers", frozenset())] != 1.0:
            if time.monotonic() > deadline:
                self.fail_with_logs("platoon_watchers still counts a cancelled watch")
            time.sleep(0.05)

    def test_metrics_follow_a_leader_change(self):
        follower = next(i for i in self.cluster.nodes if i != self.leader)
        self.wait_ready(follower)
        _, before = self.metrics(follower)
        old = self.leader
        self.node(old).kill()
        new = self.cluster.wait_for_leader(exclude=(old,))
        self.assertNotEqual(new, old)
        deadline = time.monotonic() + 10
        while True:
            _, after = self.metrics(follower)
            if h.value(after, "platoon_raft_leader_id") == new:
                break
            if time.monotonic() > deadline:
                self.fail_with_logs("follower %d never named leader %d" % (follower, new))
            time.sleep(0.05)
        self.assertGreater(h.value(after, "platoon_raft_term"), h.value(before, "platoon_raft_term"))
        self.assertGreaterEqual(h.value(after, "platoon_raft_leader_changes_seen_total"),
                                h.value(before, "platoon_raft_leader_changes_seen_total") + 1)

    def test_sighup_applies_to_the_endpoint(self):
        """A revocation applies to /metrics at the next request, and a rotated node certificate
        is served to the next connection, after SIGHUP, as on the gRPC port."""
        import signal
        import ssl
        n = self.node(self.leader)
        self.assertEqual(self.get(self.leader, "/metrics")[0], 200)
        # Rotation: a new key and certificate for the node.
        cert, key = self.pki.node(self.leader)
        os.remove(cert)
        os.remove(key)
        cert, _ = self.pki.node(self.leader)
        with open(cert) as f:
            new_der = ssl.PEM_cert_to_DER_cert(f.read())
        # Revocation of the reader's certificate.
        self.pki.revoke(self.reader[0])
        n.proc.send_signal(signal.SIGHUP)
        host, port = n.http_address.rsplit(":", 1)
        deadline = time.monotonic() + 10
        served, status, body = "", None, ""
        while True:
            try:
                served = ssl.get_server_certificate((host, int(port)))
                status, body = h.get(n, "/metrics", pki=self.pki, client=self.reader)
            except OSError:
                pass  # a connection the old server had taken, closed by the reload
            if served and ssl.PEM_cert_to_DER_cert(served) == new_der and status == 401:
                break
            if time.monotonic() > deadline:
                self.fail_with_logs("after SIGHUP: served the new certificate: %s; /metrics: "
                                    "%s %s" % (bool(served) and ssl.PEM_cert_to_DER_cert(served) == new_der,
                                               status, body))
            time.sleep(0.1)
        self.assertIn("revoked", body)
        self.assertEqual(h.get(n, "/healthz", pki=self.pki), (200, "ok\n"))
        other = self.pki.client("another-reader", "reader")
        self.assertEqual(h.get(n, "/metrics", pki=self.pki, client=other)[0], 200)
        self.assertTrue(n.alive())
        # A graceful stop ends the endpoint too (and, under the sanitizers, leaks nothing).
        self.assertEqual(n.stop(), 0, n.log())


class HttpFlagTest(unittest.TestCase):
    """--http errors at start-up, on a single insecure node."""

    def run_node(self, http_arg):
        tmp = tempfile.mkdtemp(prefix="platoon-http-")
        self.addCleanup(shutil.rmtree, tmp, True)
        port = free_ports(1)[0]
        args = [testing.platoond(), "--id", "1", "--listen", "127.0.0.1:%d" % port, "--data-dir",
                os.path.join(tmp, "d"), "--initial-cluster", "1=127.0.0.1:%d" % port, "--insecure",
                "--http", http_arg]
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            self.fail("platoond did not exit with --http %s" % http_arg)
        return p.returncode, err.decode(errors="replace").strip().splitlines()

    def test_bad_address_is_a_flag_error(self):
        for bad in ("nonsense", "127.0.0.1:", "127.0.0.1:99999", ":80x"):
            rc, lines = self.run_node(bad)
            self.assertEqual(rc, 2, (bad, lines))
            self.assertIn("--http", lines[-1])

    def test_port_in_use_is_named(self):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        self.addCleanup(s.close)
        address = "127.0.0.1:%d" % s.getsockname()[1]
        rc, lines = self.run_node(address)
        self.assertEqual(rc, 1, lines)
        said = [line for line in lines if line.startswith("platoond: --http")]
        self.assertEqual(len(said), 1, lines)
        self.assertIn(address, said[0])
        self.assertIn("already in use", said[0])

    def test_plain_http_without_tls(self):
        tmp = tempfile.mkdtemp(prefix="platoon-http-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cluster = LocalCluster(testing.platoond(), n=1, extra_args=testing.FAST, tls=False,
                               http=True, tmp=tmp)
        self.addCleanup(cluster.close)
        cluster.start()
        cluster.wait_for_leader()
        node = cluster.nodes[1]
        deadline = time.monotonic() + 10
        while h.get(node, "/readyz")[0] != 200:
            if time.monotonic() > deadline:
                self.fail("single node never ready\n" + cluster.dump_logs())
            time.sleep(0.05)
        status, body = h.get(node, "/metrics")
        self.assertEqual(status, 200)
        self.assertIn("platoon_raft_term", body)


if __name__ == "__main__":
    testing.main()
