"""WatchPlatoon against a real cluster (TLS, as users run it).

The property, for every watch opened: the events it received, applied in order to its initial
state, reproduce exactly the platoon GetPlatoon returns at the same revision, compared at every
revision GetPlatoon was read at while the writes went on. Also: resuming from every revision of
the history's window gives exactly the suffix of the changes; below the window the watch fails
with OUT_OF_RANGE naming the oldest revision; a watcher that does not read ends with
RESOURCE_EXHAUSTED while the writes go on (and resuming from the revision it names is exact);
watches across a leader's death, a follower's restart and a snapshot installed on a follower
either go on correctly or end with a status to resume from, and resuming yields the exact
platoon."""

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import api, testing  # noqa: E402

N = 300  # vehicle ids in use: 1..N
STALE = api.M["READ_CONSISTENCY_STALE"]
PUT = api.M["WatchEvent"].PUT


def vtuple(v):
    return (v.latitude, v.longitude, v.speed, v.heading, v.revision)


class Writer(threading.Thread):
    """Creates, replaces and deletes vehicles through whichever node leads, until stopped.
    Only the outcome matters here (the truth is read back with GetPlatoon), so a write whose
    answer was lost is simply not counted."""

    def __init__(self, clients, seed, pause=0.0):
        super().__init__(daemon=True)
        self.clients = list(clients)
        self.rng = random.Random(seed)
        self.pause = pause
        self.stop = threading.Event()
        self.ok = 0
        self.failed = 0
        self.last_revision = 0

    def one(self):
        vid = self.rng.randint(1, N)
        for _ in range(200):
            c = self.clients[self.rng.randrange(len(self.clients))]
            try:
                if self.rng.random() < 0.2:
                    r = c.call("DeleteVehicle", timeout=3.0, id=vid)
                    rev = r.revision
                else:
                    v = api.vehicle(vid, self.rng.uniform(-80, 80), self.rng.uniform(-170, 170),
                                    self.rng.uniform(0, 40), self.rng.uniform(0, 359))
                    rev = c.call("UpdateVehicle", timeout=3.0, vehicle=v).vehicle.revision
                self.ok += 1
                self.last_revision = max(self.last_revision, rev)
                return
            except grpc.RpcError as e:
                if e.code() not in (grpc.StatusCode.UNAVAILABLE,
                                    grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
                self.failed += 1
                time.sleep(0.02)
        raise AssertionError("no node took a write for too long")

    def run(self):
        while not self.stop.is_set():
            self.one()
            if self.pause:
                time.sleep(self.pause)


class Truth(threading.Thread):
    """Reads the whole platoon (GetPlatoon, unpaged) again and again: {revision: {id: vehicle}}.
    Every read is one consistent revision, which the watches must reproduce."""

    def __init__(self, clients, stale=False):
        super().__init__(daemon=True)
        self.clients = list(clients)
        self.stale = stale
        self.stop = threading.Event()
        self.states = {}

    def read(self):
        for c in self.clients:
            try:
                r = c.call("GetPlatoon", timeout=3.0, consistency=STALE if self.stale else 0)
            except grpc.RpcError:
                continue
            self.states[r.revision] = {v.id: vtuple(v) for v in r.vehicles}
            return r.revision
        return None

    def run(self):
        while not self.stop.is_set():
            self.read()
            time.sleep(0.05)


class Watcher(threading.Thread):
    """One WatchPlatoon stream, read to its end: every message, and how it ended."""

    def __init__(self, client, **fields):
        super().__init__(daemon=True)
        self.fields = fields
        self.call = client.watch(**fields)
        self.msgs = []
        self.error = None  # (code, details) once the stream ended
        self.done = threading.Event()
        self.last = 0  # the revision of the last event or full state received
        self.start()

    def run(self):
        try:
            for m in self.call:
                self.msgs.append(m)
                self.last = m.revision
        except grpc.RpcError as e:
            self.error = (e.code(), e.details())
        finally:
            self.done.set()

    def wait_for(self, revision, timeout=30.0):
        deadline = time.monotonic() + timeout
        while self.last < revision and not self.done.is_set():
            if time.monotonic() > deadline:
                raise AssertionError("watch %r reached revision %d, not %d" % (
                    self.fields, self.last, revision))
            time.sleep(0.02)

    def cancel(self):
        self.call.cancel()
        self.done.wait(10)

    def events(self):
        """Every change event, in the order received (full states left out)."""
        return [(e.revision, e.type, e.id, vtuple(e.vehicle) if e.type == PUT else None)
                for m in self.msgs if not m.initial for e in m.events]


def resume_revision(details):
    m = re.search(r"resume with from_revision=(\d+)", details or "")
    return int(m.group(1)) if m else None


class Replay:
    """Rebuilds the platoon from watch messages, event by event, following the rules of the
    .proto, and checks it against the truth at every revision the truth was read at."""

    def __init__(self, test, truth, ids=None):
        self.test = test
        self.truth = truth
        self.ids = set(ids) if ids else None
        self.state = None
        self.revision = None  # every change up to it has been applied
        self.in_state = False
        self.resets = 0
        self.compared = 0

    def expected(self, revision):
        t = self.truth[revision]
        return t if self.ids is None else {i: v for i, v in t.items() if i in self.ids}

    def check_up_to(self, below):
        """Compares with every truth in [self.revision, below)."""
        for r in sorted(self.truth):
            if self.revision <= r < below:
                if os.environ.get("WATCH_DEBUG") and self.state != self.expected(r):
                    exp = self.expected(r)
                    for i in sorted(set(exp) | set(self.state)):
                        if exp.get(i) != self.state.get(i):
                            print("at", r, "id", i, "want", exp.get(i), "got", self.state.get(i))
                self.test.assertEqual(self.state, self.expected(r),
                                      "the watch's platoon differs at revision %d" % r)
                self.compared += 1

    def feed(self, msgs, upto=None):
        for m in msgs:
            if m.initial:
                if m.initial_begin:
                    self.state = {}
                    self.in_state = True
                    self.resets += 1
                self.test.assertTrue(self.in_state, "initial without initial_begin")
                for e in m.events:
                    self.test.assertEqual(e.type, PUT)
                    self.test.assertNotIn(e.id, self.state)
                    self.state[e.id] = vtuple(e.vehicle)
                if m.initial_end:
                    self.in_state = False
                    self.test.assertTrue(self.revision is None or m.revision >= self.revision,
                                         "a full state went back in time")
                    self.revision = m.revision
                continue
            self.test.assertFalse(self.in_state, "a change inside a full state")
            for e in m.events:
                self.test.assertGreater(e.revision, self.revision, "a change out of order")
                self.check_up_to(e.revision)
                if e.type == PUT:
                    self.test.assertEqual(e.vehicle.revision, e.revision)
                    self.state[e.id] = vtuple(e.vehicle)
                else:
                    self.test.assertIn(e.id, self.state, "DELETE of a vehicle not held")
                    del self.state[e.id]
                self.revision = e.revision
        if upto is not None:
            # Every change up to @upto was received: the truths up to it are comparable.
            self.check_up_to(upto + 1)
            self.revision = max(self.revision, upto)


class WatchTest(testing.ClusterTest):
    extra_args = ("--sync", "none")

    def clients(self):
        return [n.client for n in self.cluster.nodes.values() if n.alive()]

    def settle(self, writer, truth):
        """Stops the writes, then one last write and one last read: the final revision W every
        watch must reach, with the platoon at W known."""
        writer.stop.set()
        if writer.ident is not None:
            writer.join(30)
            self.assertFalse(writer.is_alive())
        writer.stop.clear()
        writer.one()
        # Then a PUT of vehicle 3, which every watch of these tests sees (filters included):
        # W is a change each of them receives.
        while True:
            vid = 3
            try:
                w = self.retry(lambda: self.node(self.cluster.wait_for_leader()).client.call(
                    "UpdateVehicle", timeout=3.0,
                    vehicle=api.vehicle(vid, 1.0, 2.0, 3.0, 4.0))).vehicle.revision
                break
            except grpc.RpcError:
                continue
        truth.stop.set()
        if truth.ident is not None:
            truth.join(10)
        self.cluster.wait_converged()
        rev = truth.read()
        self.assertGreaterEqual(rev, w)
        return w, rev

    def stop_all_cleanly(self, watching=()):
        """Stops every node with SIGTERM while @watching (watchers on them) are open: each
        node exits 0 (under the sanitizers: no leak, no error), and each watch ends with
        UNAVAILABLE naming exactly the revision it reached."""
        for n in self.cluster.nodes.values():
            if n.alive():
                self.assertEqual(n.stop(), 0, "node %d did not stop cleanly\n%s" % (
                    n.id, n.log()[-3000:]))
        for w in watching:
            self.assertTrue(w.done.wait(20))
            self.assertEqual(w.error[0], grpc.StatusCode.UNAVAILABLE, w.error)
            named = resume_revision(w.error[1])
            self.assertIsNotNone(named, w.error[1])
            reached = w.msgs[-1].revision if w.msgs else w.fields.get("from_revision")
            if w.fields.get("ids"):
                # Changes of other vehicles count as delivered: a filtered watch may name a
                # revision past its last message.
                self.assertGreaterEqual(named, reached)
            else:
                self.assertEqual(named, reached)

    def assert_exact(self, watcher, truth, final, ids=None, min_compared=3, prefix=()):
        """The watch (after the messages of @prefix, an earlier watch it resumed) reproduces
        the truth at every revision it covers, up to @final."""
        watcher.wait_for(final)
        r = Replay(self, truth.states, ids)
        r.feed(list(prefix) + watcher.msgs, upto=final)
        self.assertGreaterEqual(r.compared, min_compared,
                                "too few revisions to compare: %d" % r.compared)
        return r


class Property(WatchTest):
    extra_args = ("--sync", "none", "--watch-history", "200")

    def test_watches_reproduce_the_platoon_and_resume_exactly(self):
        nodes = sorted(self.cluster.nodes)
        follower = [i for i in nodes if i != self.leader][0]
        truth = Truth([self.node(follower).client])
        writer = Writer([self.node(self.leader).client], seed=1)
        for k in range(40):  # some vehicles before anyone watches
            writer.one()
        # Watches on every node, one with a filter, one stale, one resuming at once.
        first = Watcher(self.node(follower).client)
        first.wait_for(1)
        watchers = [first, Watcher(self.node(self.leader).client),
                    Watcher(self.node(nodes[-1]).client, ids=[3, 5, 7, 11, 13, 200]),
                    Watcher(self.node(follower).client, consistency=STALE)]
        truth.read()
        truth.start()
        writer.start()
        time.sleep(1.0)
        # More watches join while the writes go on.
        watchers.append(Watcher(self.node(nodes[-1]).client))
        watchers.append(Watcher(self.node(follower).client, ids=list(range(1, 40))))
        resumed_from = first.last
        resumed = Watcher(self.node(self.leader).client, from_revision=resumed_from)
        time.sleep(1.5)
        final, _ = self.settle(writer, truth)
        print("writes: %d ok, %d lost; final revision %d; %d platoons read" % (
            writer.ok, writer.failed, final, len(truth.states)))
        self.assertGreater(writer.ok, 300, "too few writes to fill the history")
        for w in watchers:
            self.assert_exact(w, truth, final, ids=w.fields.get("ids"))
            self.assertIsNone(w.error)
        # The resumed watch is exactly the suffix of the first one's changes.
        resumed.wait_for(final)
        self.assertEqual(resumed.events(),
                         [e for e in first.events() if resumed_from < e[0] <= final])
        self.assertFalse(any(m.initial for m in resumed.msgs))

        # The window: the oldest revision this node can resume from, from OUT_OF_RANGE.
        client = self.node(follower).client
        with self.assertRaises(grpc.RpcError) as cm:
            next(iter(client.watch(from_revision=0, timeout=10)))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.OUT_OF_RANGE,
                         cm.exception.details())
        oldest = int(re.search(r"resume from here is (\d+)", cm.exception.details()).group(1))
        changes = first.events()
        self.assertGreater(oldest, changes[0][0], "the history should have turned")
        # 200 changes are kept: the oldest is the 201st change from the end (or earlier when
        # the leader wrote no-ops or sessions in between, which are not changes).
        self.assertEqual(oldest, changes[-201][0])
        with self.assertRaises(grpc.RpcError) as cm:
            next(iter(client.watch(from_revision=oldest - 1, timeout=10)))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.OUT_OF_RANGE)
        self.assertIn("resume from here is %d" % oldest, cm.exception.details())

        # Resuming from every revision of the window gives exactly the suffix.
        for frm in range(oldest, final + 1):
            want = [e for e in changes if e[0] > frm]
            # Nothing to receive after the last change: the deadline ends that one.
            call = client.watch(from_revision=frm, timeout=20 if want else 1)
            got = []
            try:
                for m in call:
                    self.assertFalse(m.initial)
                    got += [(e.revision, e.type, e.id, vtuple(e.vehicle) if e.type == PUT
                             else None) for e in m.events]
                    if len(got) >= len(want):
                        break
            except grpc.RpcError as e:
                self.assertEqual(e.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
                self.assertEqual(want, [])
            finally:
                call.cancel()
            self.assertEqual(got, want, "resuming from %d" % frm)
        for w in watchers[1:] + [resumed]:
            w.cancel()
        # Nodes that stop with watches open end them cleanly.
        last = Watcher(self.node(self.leader).client, ids=[3])
        last.wait_for(1)  # streaming: past its start (a start still waiting simply fails)
        self.stop_all_cleanly([first, last])

    def ctl(self, *args):
        cmd = [os.path.join(testing.BIN, "platoonctl"), "--endpoints",
               self.node(self.leader).address] + list(args)
        env = dict(os.environ, **self.cluster.ctl_env(name="ctl-reader", role="reader"))
        return cmd, env

    def test_platoonctl_vehicle_watch(self):
        client = self.node(self.leader).client
        for vid in (1, 2, 3):
            client.call("UpdateVehicle", vehicle=api.vehicle(vid, 10.5, 20.25, 3.0, 90.0))
        cmd, env = self.ctl("--json", "vehicle", "watch", "--id", "2", "--id=3")
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        try:
            # The full state comes first: wait for its end before writing.
            line = ""
            deadline = time.monotonic() + 20
            while '"state":"end"' not in line and time.monotonic() < deadline:
                line = p.stdout.readline()
            self.assertIn('"state":"end"', line)
            client.call("DeleteVehicle", id=3)
            client.call("UpdateVehicle", vehicle=api.vehicle(1, 1.0, 1.0, 1.0, 1.0))  # filtered
            put = client.call("UpdateVehicle", vehicle=api.vehicle(2, -5.5, 7.0, 1.0, 2.0))
            got = []
            while len(got) < 2 and time.monotonic() < deadline:
                got.append(json.loads(p.stdout.readline()))
            p.send_signal(signal.SIGINT)  # Ctrl-C ends it cleanly
            out, err = p.communicate(timeout=20)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual([(e["type"], e["id"]) for e in got], [("DELETE", 3), ("PUT", 2)])
        self.assertEqual(got[1]["revision"], put.vehicle.revision)
        self.assertEqual(got[1]["vehicle"]["latitude"], -5.5)
        # Text output, resuming after the delete: one line per change.
        cmd, env = self.ctl("vehicle", "watch", "--from", str(got[0]["revision"]))
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        lines = [p.stdout.readline(), p.stdout.readline()]
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=20)
        self.assertEqual(p.returncode, 0)
        self.assertTrue(lines[0].startswith("PUT     id=1 "), lines)
        self.assertTrue(lines[1].startswith("PUT     id=2 lat=-5.5 "), lines)
        # Below the window (200 changes): a clear error naming the revision to use.
        writer = Writer([client], seed=5)
        for _ in range(250):
            writer.one()
        cmd, env = self.ctl("vehicle", "watch", "--from", "1")
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("OUT_OF_RANGE", r.stderr)
        m = re.search(r"resume with --from (\d+) or later", r.stderr)
        self.assertIsNotNone(m, r.stderr)
        cmd, env = self.ctl("--json", "vehicle", "watch", "--from", m.group(1))
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        first = json.loads(p.stdout.readline())
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=20)
        self.assertEqual(p.returncode, 0)
        self.assertGreater(first["revision"], int(m.group(1)))
        self.assertFalse(first["initial"])

    def test_requests_are_checked(self):
        client = self.node(self.leader).client
        for fields, code in (({"ids": [0]}, grpc.StatusCode.INVALID_ARGUMENT),
                             ({"ids": list(range(1, 1002))}, grpc.StatusCode.INVALID_ARGUMENT),
                             ({"consistency": 7}, grpc.StatusCode.INVALID_ARGUMENT)):
            with self.assertRaises(grpc.RpcError) as cm:
                next(iter(client.watch(timeout=10, **fields)))
            self.assertEqual(cm.exception.code(), code, cm.exception.details())
        # A reader may watch; the initial state of an empty platoon is one empty message.
        reader = self.cluster.client(self.leader, "watch-reader", "reader")
        m = next(iter(reader.watch(timeout=10)))
        self.assertTrue(m.initial and m.initial_begin and m.initial_end)
        self.assertEqual(list(m.events), [])
        reader.close()


class SlowWatcher(WatchTest):
    """A watcher that never reads (a Python stream never iterated, over a connection with a
    small window) is ended while the writes go on; reading it afterwards gives a consistent
    prefix and the revision to resume from, which is exact."""

    nodes = 1
    extra_args = ("--sync", "none", "--watch-buffer-bytes", "65536", "--watch-max-lag", "500")

    def test_a_watcher_that_does_not_read_is_ended_and_can_resume(self):
        creds = self.cluster.credentials()
        ch = grpc.secure_channel(self.node(1).address, creds, options=[
            ("grpc.http2.lookahead_bytes", 1024), ("grpc.http2.bdp_probe", 0)])
        stalled = ch.unary_stream(
            "/platoon.v1.Platoon/WatchPlatoon",
            request_serializer=api.M["WatchPlatoonRequest"].SerializeToString,
            response_deserializer=api.M["WatchPlatoonResponse"].FromString)(
                api.M["WatchPlatoonRequest"](), wait_for_ready=True)
        # Another watcher that reads, on its own connection, to compare with.
        reading = Watcher(self.node(1).client)
        truth = Truth([self.node(1).client])
        writer = Writer([self.node(1).client], seed=2)
        # Every write succeeds while the stalled watcher falls behind (Writer raises on any
        # error other than UNAVAILABLE, and counts those).
        for _ in range(3000):
            writer.one()
        self.assertEqual(writer.failed, 0)
        truth.read()
        final, _ = self.settle(writer, truth)
        msgs, error = [], None
        try:
            for m in stalled:
                msgs.append(m)
        except grpc.RpcError as e:
            error = e
        ch.close()
        self.assertIsNotNone(error, "the stalled watch was not ended")
        self.assertEqual(error.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, error.details())
        self.assertIn("fell behind", error.details())
        frm = resume_revision(error.details())
        self.assertIsNotNone(frm, error.details())
        # What it received is a consistent prefix up to exactly that revision.
        r = Replay(self, truth.states)
        r.feed(msgs)
        self.assertEqual(r.revision, frm)
        self.assertLess(frm, final)
        # Resuming there completes it exactly.
        # (More than --watch-max-lag changes behind at its start, but catching up: kept.)
        resumed = Watcher(self.node(1).client, from_revision=frm)
        resumed.wait_for(final)
        self.assertIsNone(resumed.error)
        self.assertGreater(final - frm, 500)
        r.feed(resumed.msgs, upto=final)
        self.assertEqual(r.state, truth.states[max(truth.states)])
        # The reading watcher was never dropped.
        self.assert_exact(reading, truth, final, min_compared=1)
        self.assertIsNone(reading.error)
        reading.cancel()
        self.stop_all_cleanly([resumed])


class Faults(WatchTest):
    """Watches across a leader's death, a follower's restart, and a snapshot installed on a
    follower that fell behind."""

    extra_args = ("--sync", "none", "--snapshot-every", "100", "--snapshot-keep", "20")

    def resume(self, old, truth, final, node):
        """Continues @old (which ended) on @node from the last revision it received; if that
        node no longer holds the changes after it (OUT_OF_RANGE), from the full state.
        Returns the replay of both, checked against the truth."""
        r = Replay(self, truth.states)
        r.feed(old.msgs)
        w = Watcher(self.node(node).client, from_revision=r.revision)
        w.wait_for(final)
        if w.error and w.error[0] == grpc.StatusCode.OUT_OF_RANGE:
            w = Watcher(self.node(node).client)  # the node lacks the changes: start over
            w.wait_for(final)
        self.assertIsNone(w.error)
        r.feed(w.msgs, upto=final)
        w.cancel()
        return r

    def test_watches_survive_a_leader_death_and_a_follower_restart(self):
        nodes = sorted(self.cluster.nodes)
        old_leader = self.leader
        followers = [i for i in nodes if i != old_leader]
        truth = Truth(self.clients(), stale=False)
        writer = Writer(self.clients(), seed=3, pause=0.002)
        on = {i: Watcher(self.node(i).client) for i in nodes}
        for w in on.values():
            w.wait_for(1)
        truth.start()
        writer.start()
        time.sleep(1.0)
        # The leader dies: its watcher's stream breaks; the others go on.
        self.node(old_leader).kill()
        self.cluster.wait_for_leader(exclude=(old_leader,))
        time.sleep(1.0)
        # A follower restarts (SIGTERM: its watcher ends with UNAVAILABLE and a revision).
        restarted = [i for i in followers if i != self.cluster.wait_for_leader(
            exclude=(old_leader,))][0]
        self.assertEqual(self.node(restarted).stop(), 0)
        on[restarted].done.wait(20)
        self.assertEqual(on[restarted].error[0], grpc.StatusCode.UNAVAILABLE, on[restarted].error)
        # The status names exactly the revision its messages reached.
        named = resume_revision(on[restarted].error[1])
        self.assertIsNotNone(named, on[restarted].error[1])
        got = Replay(self, {})
        got.feed(on[restarted].msgs)
        self.assertEqual(named, got.revision)
        self.node(restarted).start()
        time.sleep(1.5)
        writer.clients = self.clients()
        truth.clients = self.clients()
        final, _ = self.settle(writer, truth)
        self.node(old_leader).start()  # back, so that the cluster ends whole
        survivor = [i for i in followers if i != restarted][0]
        self.assert_exact(on[survivor], truth, final)
        self.assertIsNone(on[survivor].error)
        on[old_leader].done.wait(20)
        self.assertIsNotNone(on[old_leader].error, "the dead leader's watch did not end")
        for i, where in ((old_leader, survivor), (restarted, restarted)):
            r = self.resume(on[i], truth, final, where)
            self.assertEqual(r.state, truth.states[max(truth.states)])
        on[survivor].cancel()

    def test_a_snapshot_installed_on_a_follower_sends_the_state_again(self):
        nodes = sorted(self.cluster.nodes)
        lagging = [i for i in nodes if i != self.leader][0]
        truth = Truth([self.node(self.leader).client])
        writer = Writer([self.node(self.leader).client], seed=4)
        for _ in range(30):
            writer.one()
        w = Watcher(self.node(lagging).client, consistency=STALE)
        w.wait_for(1)
        truth.read()
        truth.start()
        # The follower misses more than a snapshot interval plus what the log keeps: the
        # leader must send it a snapshot.
        self.node(lagging).pause()
        for _ in range(400):
            writer.one()
        self.node(lagging).resume()
        for _ in range(50):
            writer.one()
        final, _ = self.settle(writer, truth)
        r = self.assert_exact(w, truth, final, min_compared=1)
        self.assertGreaterEqual(r.resets, 2, "the full state was not sent again")
        self.assertIsNone(w.error)
        self.stop_all_cleanly([w])


if __name__ == "__main__":
    testing.main()
