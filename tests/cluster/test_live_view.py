"""The live view (--http, /): its page in a real browser (headless Chromium driven by
ChromeDriver), its event stream, and its TLS gate.

In the browser the test reads what the page shows from the DOM (one SVG group per vehicle, one
table row per vehicle and per node) and from window.platoonView, the state the page renders
from, and checks it against GetPlatoon: every vehicle with its exact values and revision; a
write appears within a bounded time; a deleted vehicle disappears; killing the leader shows
the new leader. It saves screenshots in the build directory (live-view.png, and the narrow
layout of a phone, live-view-phone.png). The browser runs against a cluster without TLS:
presenting a client certificate from headless Chromium would need a system-wide policy; the
TLS gate of the same endpoint is checked without a browser.
"""

import json
import os
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

from harness import api, testing  # noqa: E402
from harness import http as h  # noqa: E402
from harness.cluster import LocalCluster, free_ports  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def sse_events(address, last_event_id=None, want=1, timeout=10.0, until=None):
    """Reads Server-Sent Events from http://address/api/events: a list of (event, id, data as
    JSON), until `want` of them matched `until` (default: any event but "cluster") or the
    timeout passed."""
    until = until or (lambda ev: ev[0] != "cluster")
    host, port = address.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    try:
        req = "GET /api/events HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n" % address
        if last_event_id is not None:
            req += "Last-Event-ID: %s\r\n" % last_event_id
        s.sendall((req + "\r\n").encode())
        raw, text, events, matched = b"", b"", [], 0
        head_done = False
        deadline = time.monotonic() + timeout
        while matched < want and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
            if not head_done:
                if b"\r\n\r\n" not in raw:
                    continue
                head, raw = raw.split(b"\r\n\r\n", 1)
                if not head.startswith(b"HTTP/1.1 200"):
                    raise AssertionError("GET /api/events: %r" % head)
                head_done = True
            # Chunked transfer coding: the payload of every complete chunk.
            while True:
                line, sep, rest = raw.partition(b"\r\n")
                if not sep:
                    break
                size = int(line.split(b";")[0], 16)
                if len(rest) < size + 2:
                    break
                text += rest[:size]
                raw = rest[size + 2:]
            # Complete events end with a blank line.
            while b"\n\n" in text:
                block, text = text.split(b"\n\n", 1)
                fields = {}
                for ln in block.decode().split("\n"):
                    k, _, v = ln.partition(": ")
                    fields[k] = v
                ev = (fields.get("event"), fields.get("id"), json.loads(fields.get("data", "null")))
                events.append(ev)
                matched += bool(until(ev))
        return events
    finally:
        s.close()


def first_change(events):
    """The first event that is not the periodic "cluster" one (None if there is none)."""
    return next((e for e in events if e[0] != "cluster"), (None, None, None))


class Feed(testing.ClusterTest):
    """The event stream itself, without a browser (plain HTTP)."""

    nodes = 3

    def setUp(self):
        self.cluster = LocalCluster(testing.platoond(), n=3, tls=False, http=True,
                                    extra_args=testing.FAST)
        self.addCleanup(self.cluster.close)
        self.cluster.start()
        self.leader = self.cluster.wait_for_leader()

    def test_state_then_changes_and_resumption(self):
        for vid in (1, 2, 3):
            self.retry(lambda: self.update(self.leader, vid, 10.0 + vid))
        follower = next(i for i in self.cluster.nodes if i != self.leader)
        addr = self.node(follower).http_address
        want = {v.id: v for v in self.platoon(self.leader).vehicles}
        # The first event is the whole platoon, at one revision, with ids as strings.
        deadline = time.monotonic() + 10
        while True:
            ev = first_change(sse_events(addr))
            if ev[0] == "state" and len(ev[2]["vehicles"]) == 3:
                break
            self.assertLess(time.monotonic(), deadline, "no full state: %r" % (ev,))
            time.sleep(0.1)
        state = ev[2]
        self.assertEqual(ev[1], state["revision"])
        got = {int(v["id"]): v for v in state["vehicles"]}
        self.assertEqual(set(got), set(want))
        for vid, v in want.items():
            self.assertEqual(got[vid]["latitude"], v.latitude)
            self.assertEqual(int(got[vid]["revision"]), v.revision)
        # Later changes arrive as events; resuming after the state gives exactly them.
        r0 = state["revision"]
        self.retry(lambda: self.update(self.leader, 2, 42.0))
        self.retry(lambda: self.node(self.leader).client.call("DeleteVehicle", id=3))
        events = sse_events(addr, last_event_id=r0, want=2)
        kinds = [(e[0], e[2]["vehicle"]["id"] if e[0] == "put" else e[2].get("id"))
                 for e in events if e[0] != "cluster"]
        self.assertEqual(kinds, [("put", "2"), ("delete", "3")], events)
        revs = [int(e[1]) for e in events if e[0] != "cluster"]
        self.assertTrue(all(r > int(r0) for r in revs) and revs == sorted(revs), revs)
        # A Last-Event-ID the feed cannot resume from (from the future) gets the full state.
        ev = first_change(sse_events(addr, last_event_id="99999999"))
        self.assertEqual(ev[0], "state")
        self.assertEqual(sorted(v["id"] for v in ev[2]["vehicles"]), ["1", "2"])

    def test_cluster_answers_this_nodes_view(self):
        for i, n in self.cluster.nodes.items():
            # A follower learns of the new leader from its first message (Raft §5.2), which
            # may still be on its way when the leader already says it leads.
            deadline = time.monotonic() + 10
            while True:
                status, body = h.get(n, "/api/cluster")
                self.assertEqual(status, 200, body)
                c = json.loads(body)
                if c["leader"] != "0" or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            self.assertEqual(c["node"], str(i))
            self.assertEqual(c["leader"], str(self.leader))
            self.assertEqual(sorted(m["id"] for m in c["members"]), ["1", "2", "3"])
            if i == self.leader:
                self.assertEqual(c["role"], "leader")
                self.assertTrue(all("match" in m for m in c["members"] if m["id"] != str(i)))


class Gate(unittest.TestCase):
    """With TLS the live view is for the cluster's readers only, like /metrics."""

    def test_reader_certificate_needed(self):
        cluster = LocalCluster(testing.platoond(), n=1, http=True, extra_args=testing.FAST)
        self.addCleanup(cluster.close)
        cluster.start()
        cluster.wait_for_leader()
        node = cluster.nodes[1]
        for path in ("/", "/api/events", "/api/cluster"):
            status, body = h.get(node, path, pki=cluster.pki, client=None)
            self.assertEqual(status, 401, "%s without a certificate: %s" % (path, body))
        reader = cluster.pki.client("screen", "reader")
        status, body = h.get(node, "/", pki=cluster.pki, client=reader)
        self.assertEqual(status, 200)
        self.assertIn("<title>Platoon", body)
        status, body = h.get(node, "/api/cluster", pki=cluster.pki, client=reader)
        self.assertEqual((status, json.loads(body)["node"]), (200, "1"))


@unittest.skipUnless(os.environ.get("PLATOON_BROWSER_TESTS", "1") != "0",
                     "PLATOON_BROWSER_TESTS=0")
class Browser(testing.ClusterTest):
    """The page in headless Chromium."""

    nodes = 3

    def setUp(self):
        for path in (CHROMIUM, CHROMEDRIVER):
            if not os.access(path, os.X_OK):
                self.fail("%s is missing: scripts/install-deps installs chromium and "
                          "chromium-driver (or set PLATOON_BROWSER_TESTS=0)" % path)
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        self.cluster = LocalCluster(testing.platoond(), n=3, tls=False, http=True,
                                    extra_args=testing.FAST)
        self.addCleanup(self.cluster.close)
        self.cluster.start()
        self.leader = self.cluster.wait_for_leader()
        # Chromium and ChromeDriver are started here and reached at 127.0.0.1: left to
        # themselves they dial "localhost", which a minimal machine without /etc/hosts cannot
        # resolve. ChromeDriver then attaches to the running browser.
        self.profile = os.path.join(self.cluster.tmp, "chromium")
        browser_port, driver_port = free_ports(2)
        self.browser = self.spawn("chromium", [
            CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
            "--window-size=1280,760", "--user-data-dir=" + self.profile, "--no-first-run",
            "--disable-extensions", "--disable-dev-shm-usage",
            "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=%d" % browser_port,
            "about:blank"], browser_port)
        self.chromedriver = self.spawn("chromedriver", [CHROMEDRIVER, "--port=%d" % driver_port],
                                       driver_port)
        opts = Options()
        opts.debugger_address = "127.0.0.1:%d" % browser_port
        self.driver = webdriver.Remote(command_executor="http://127.0.0.1:%d" % driver_port,
                                       options=opts)
        self.addCleanup(self.driver.quit)
        self.driver.set_script_timeout(10)

    def spawn(self, name, args, port):
        """Starts a helper program logging to the cluster's folder, stopped at cleanup, and
        waits until it listens on 127.0.0.1:port."""
        path = os.path.join(self.cluster.tmp, name + ".log")
        log = open(path, "wb")
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.addCleanup(self.stop_process, p)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return p
            except OSError:
                if p.poll() is not None or time.monotonic() > deadline:
                    with open(path, errors="replace") as f:
                        self.fail("%s did not start: %s" % (name, f.read()[-2000:]))
                time.sleep(0.05)

    @staticmethod
    def stop_process(p):
        if p.poll() is None:
            os.killpg(p.pid, 15)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, 9)
                p.wait()

    def view(self):
        return self.driver.execute_script(
            "var v = window.platoonView; return v && {revision: v.revision, connected: "
            "v.connected, vehicles: v.vehicles, cluster: v.cluster};")

    def shown(self):
        """What the DOM shows: {id: revision} of the drawn vehicles, and the table's ids."""
        drawn = self.driver.execute_script(
            "return Array.from(document.querySelectorAll('#vehicles g.vehicle'))"
            ".map(g => [g.dataset.id, g.dataset.revision]);")
        rows = self.driver.execute_script(
            "return Array.from(document.querySelectorAll('#list tbody tr'))"
            ".map(r => r.dataset.id);")
        return {int(i): int(r) for i, r in drawn}, sorted(int(i) for i in rows)

    def wait(self, what, cond, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            v = cond()
            if v:
                return v
            if time.monotonic() > deadline:
                self.fail_with_logs("the page never showed %s; it holds %r" % (what, self.view()))
            time.sleep(0.05)

    def screenshot(self, name):
        out = os.path.join(os.path.dirname(os.path.abspath(testing.platoond())), "..", name)
        self.driver.save_screenshot(os.path.abspath(out))
        print("screenshot: %s" % os.path.abspath(out))

    def test_the_page_shows_the_platoon_and_follows_it(self):
        for vid in range(1, 6):
            self.retry(lambda: self.update(self.leader, vid, 52.0 + vid * 0.0002))
        follower = next(i for i in self.cluster.nodes if i != self.leader)
        self.driver.get("http://%s/" % self.node(follower).http_address)

        # Everything GetPlatoon says, and nothing else, in the model and the drawing.
        want = {v.id: v for v in self.platoon(self.leader).vehicles}
        top = max(v.revision for v in want.values())
        self.wait("the platoon", lambda: (self.view() or {}).get("connected") and
                  int(self.view()["revision"] or 0) >= top)
        model = self.view()["vehicles"]
        self.assertEqual(sorted(int(k) for k in model), sorted(want))
        for vid, v in want.items():
            m = model[str(vid)]
            self.assertEqual((m["latitude"], m["longitude"], m["speed"], m["heading"]),
                             (v.latitude, v.longitude, v.speed, v.heading))
            self.assertEqual(int(m["revision"]), v.revision)
        self.wait("every vehicle drawn", lambda: self.shown() == (
            {vid: v.revision for vid, v in want.items()}, sorted(want)))

        # A write appears: the time from its acknowledgement to the page is printed (a bound,
        # not a benchmark: the page is redrawn on the next animation frame).
        reply = self.retry(lambda: self.update(self.leader, 3, 52.01))
        t0 = time.monotonic()
        self.wait("the write", lambda: self.shown()[0].get(3) == reply.vehicle.revision, 5.0)
        print("live view: a write was drawn %.0f ms after it was acknowledged" %
              (1000 * (time.monotonic() - t0)))
        self.screenshot("live-view.png")

        # A deleted vehicle disappears.
        self.retry(lambda: self.node(self.leader).client.call("DeleteVehicle", id=5))
        self.wait("the delete", lambda: 5 not in self.shown()[0] and 5 not in self.shown()[1])

        # The page shows the cluster; killing the leader shows the new one.
        self.wait("the leader", lambda: (self.view()["cluster"] or {}).get("leader") ==
                  str(self.leader))
        self.assertEqual(self.view()["cluster"]["node"], str(follower))
        old = self.leader
        self.node(old).kill()
        new = self.cluster.wait_for_leader(exclude=(old,))
        self.wait("the new leader", lambda: (self.view()["cluster"] or {}).get("leader") ==
                  str(new), 15.0)
        role = self.driver.execute_script(
            "var r = document.querySelector('#nodes tbody tr[data-id=\"%d\"]');"
            "return r && r.dataset.role;" % new)
        self.assertEqual(role, "leader")
        # Writes through the new leader still reach the page.
        reply = self.retry(lambda: self.update(new, 1, 52.02), timeout=15.0)
        self.wait("a write after the failover",
                  lambda: self.shown()[0].get(1) == reply.vehicle.revision)

        # A phone's width: the drawing stays, the panels go below it.
        self.driver.set_window_size(420, 900)
        self.wait("the narrow layout", lambda: self.driver.execute_script(
            "return document.querySelector('main').getBoundingClientRect().width < 500;"))
        self.screenshot("live-view-phone.png")


if __name__ == "__main__":
    testing.main()
