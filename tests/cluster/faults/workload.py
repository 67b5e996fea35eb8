"""Concurrent clients that write and read vehicles while the nemesis works, recording a history.

Each client is a thread that opens its own exactly-once session (OpenSession) and numbers its
mutations 1, 2, 3, ... in it. Every
update writes a value no other update writes (the client's number in the latitude, its sequence
in the longitude), so a read names the write it saw. A mutation that ends in UNAVAILABLE,
DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED is retried with the same (client_id, sequence), on
another node, until it gets a definite answer or its time runs out; then its outcome is
unknown. A read is not retried: a failed read changes nothing, so it is recorded as failed and
the client moves on.

Every operation becomes one record (a dict, so the history can be written as JSON lines):
  client, f (update | delete | get | platoon), key, consistency (lin | stale), seq,
  invoke, complete (seconds of time.monotonic), outcome (ok | fail | unknown), node (that
  answered), attempts, error, and what came back: for an update its vehicle's revision; for a
  delete existed and revision; for get the vehicle seen (write id and revision) or None; for
  platoon every vehicle seen and the read's revision.
"""

import random
import threading
import time

import grpc

from harness import api

RETRY = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
         grpc.StatusCode.RESOURCE_EXHAUSTED)
STALE = api.M["READ_CONSISTENCY_STALE"]
LINEARIZABLE = api.M["READ_CONSISTENCY_LINEARIZABLE"]

# How often each operation is chosen (weights).
MIX = [("update", "lin", 40), ("delete", "lin", 8), ("get", "lin", 17), ("platoon", "lin", 10),
       ("get", "stale", 10), ("platoon", "stale", 15)]


def encode(writer, seq):
    """The vehicle fields of `writer`'s write number `seq`: unique to that write."""
    return dict(lat=float(writer), lon=seq / 1000.0, speed=float(seq % 150), heading=90.0)


def decode(v):
    """The (writer, seq) that wrote vehicle `v`, and its revision."""
    return [int(round(v.latitude)), int(round(v.longitude * 1000)), int(v.revision)]


class History:
    def __init__(self):
        self.lock = threading.Lock()
        self.ops = []

    def add(self, rec):
        with self.lock:
            self.ops.append(rec)


class Client(threading.Thread):
    def __init__(self, writer, targets, keys, history, rng, stop, attempt_timeout, retry_for):
        super().__init__(name="client-%d" % writer, daemon=True)
        self.writer = writer
        self.client_id = None  # opened when the thread starts
        self.targets = targets  # () -> [(node_id, api.Node)] of the nodes to talk to
        self.keys = keys
        self.history = history
        self.rng = rng
        self.stop = stop
        self.attempt_timeout = attempt_timeout
        self.retry_for = retry_for
        self.seq = 0
        self.error = None

    def open_session(self):
        """The client's exactly-once session, opened through any reachable node (an opening
        whose answer is lost just leaves an unused session behind)."""
        give_up = time.monotonic() + self.retry_for
        while not self.stop.is_set() and time.monotonic() < give_up:
            nodes = self.targets()
            if nodes:
                try:
                    _, node = self.rng.choice(nodes)
                    return node.call("OpenSession", timeout=self.attempt_timeout).client_id
                except grpc.RpcError as e:
                    if e.code() not in RETRY:
                        raise RuntimeError("OpenSession refused: %s %s" % (e.code(), e.details()))
            time.sleep(0.05)
        return None

    def run(self):
        try:
            self.client_id = self.open_session()
            while self.client_id is not None and not self.stop.is_set():
                self.one()
        except Exception as e:  # a bug of the workload itself must fail the run, loudly
            self.error = repr(e)
            raise

    def pick(self):
        while not self.stop.is_set():
            nodes = self.targets()
            if nodes:
                return self.rng.choice(nodes)
            time.sleep(0.05)
        return None

    def one(self):
        total = sum(w for _, _, w in MIX)
        x = self.rng.uniform(0, total)
        for f, consistency, w in MIX:
            x -= w
            if x <= 0:
                break
        key = self.rng.choice(self.keys)
        if f in ("update", "delete"):
            self.mutate(f, key)
        else:
            self.read(f, key, consistency)

    def mutate(self, f, key):
        self.seq += 1
        rec = dict(client=self.writer, f=f, key=key, consistency="lin", seq=self.seq,
                   outcome="unknown", attempts=0, error=None, node=None)
        if f == "update":
            fields = encode(self.writer, self.seq)
            req = dict(vehicle=api.vehicle(key, fields["lat"], fields["lon"], fields["speed"],
                                           fields["heading"]),
                       client_id=self.client_id, sequence=self.seq)
            method = "UpdateVehicle"
        else:
            req = dict(id=key, client_id=self.client_id, sequence=self.seq)
            method = "DeleteVehicle"
        rec["invoke"] = time.monotonic()
        give_up = rec["invoke"] + self.retry_for
        # A mutation is retried even after the run is told to stop, within its time: the
        # fewer outcomes stay unknown, the more the checks can tell.
        while True:
            nodes = self.targets()
            if not nodes:
                if time.monotonic() >= give_up:
                    break
                time.sleep(0.05)
                continue
            node_id, node = self.rng.choice(nodes)
            rec["attempts"] += 1
            try:
                resp = node.call(method, timeout=self.attempt_timeout, **req)
            except grpc.RpcError as e:
                rec["error"] = "%s: %s" % (e.code().name, e.details())
                if e.code() in RETRY and time.monotonic() < give_up:
                    time.sleep(0.02)
                    continue
                if e.code() not in RETRY:
                    # A definite refusal. FAILED_PRECONDITION on a retry would break the API's
                    # promise that retries are safe: it is kept as unknown and flagged.
                    rec["outcome"] = "fail"
                    rec["node"] = node_id
                break
            rec["outcome"] = "ok"
            rec["node"] = node_id
            rec["error"] = None
            if f == "update":
                rec["revision"] = int(resp.vehicle.revision)
                rec["echo"] = decode(resp.vehicle)
            else:
                rec["revision"] = int(resp.revision)
                rec["existed"] = bool(resp.existed)
            break
        rec["complete"] = time.monotonic()
        self.history.add(rec)

    def read(self, f, key, consistency):
        target = self.pick()
        if target is None:
            return
        node_id, node = target
        self.history.add(read_once(node_id, node, f, key, consistency, self.writer,
                                   self.attempt_timeout))


def read_once(node_id, node, f, key, consistency, client, timeout):
    """One read, recorded; never raises for a gRPC error."""
    rec = dict(client=client, f=f, key=key if f == "get" else None, consistency=consistency,
               seq=None, node=node_id, attempts=1, error=None)
    level = STALE if consistency == "stale" else LINEARIZABLE
    rec["invoke"] = time.monotonic()
    try:
        if f == "get":
            resp = node.call("GetVehicle", timeout=timeout, id=key, consistency=level)
            rec["value"] = decode(resp.vehicle)
        else:
            resp = node.call("GetPlatoon", timeout=timeout, consistency=level)
            rec["vehicles"] = {str(v.id): decode(v) for v in resp.vehicles}
            rec["order"] = [int(v.id) for v in resp.vehicles]
            rec["revision"] = int(resp.revision)
        rec["outcome"] = "ok"
    except grpc.RpcError as e:
        if f == "get" and e.code() == grpc.StatusCode.NOT_FOUND:
            rec["value"] = None
            rec["outcome"] = "ok"
        else:
            rec["error"] = "%s: %s" % (e.code().name, e.details())
            rec["outcome"] = "fail"
    rec["complete"] = time.monotonic()
    return rec


class Workload:
    def __init__(self, targets, n_clients, keys, seed, attempt_timeout, retry_for):
        self.history = History()
        self.stop_event = threading.Event()
        self.clients = [Client(c + 1, targets, keys, self.history,
                               random.Random("%s/client/%d" % (seed, c)), self.stop_event,
                               attempt_timeout, retry_for)
                        for c in range(n_clients)]

    def start(self):
        for c in self.clients:
            c.start()

    def stop(self, timeout):
        """Stops the clients; each finishes (or gives up on) the operation it is in."""
        self.stop_event.set()
        for c in self.clients:
            c.join(timeout)
        return [c.name for c in self.clients if c.is_alive()]

    def errors(self):
        return ["%s: %s" % (c.name, c.error) for c in self.clients if c.error]


class Watch(threading.Thread):
    """A WatchPlatoon client beside the others: it watches one node at a time, in segments of at
    most `segment_s` seconds (a deadline), and goes on elsewhere after each one ends, resuming
    from the last revision it reached, or from the full state when that node no longer holds
    the changes after it (OUT_OF_RANGE). Each segment is recorded as a dict: node, the
    from_revision it resumed from (None: a full state), its messages, how it ended; each message
    as {"b": initial_begin, "i": initial, "e": initial_end, "r": revision, "ev": [[revision,
    "PUT" | "DELETE", id, decode(vehicle) or None], ...]}. checks.watches replays them."""

    def __init__(self, targets, seed, stop, segment_s=5.0):
        super().__init__(name="watch", daemon=True)
        self.targets = targets
        self.rng = random.Random("%s/watch" % seed)
        self.stop = stop
        self.segment_s = segment_s
        self.segments = []
        self.error = None

    def run(self):
        try:
            self.loop()
        except Exception as e:  # a bug of the workload itself must fail the run, loudly
            self.error = repr(e)
            raise

    def loop(self):
        reached = None  # the revision up to which every change was received
        while not self.stop.is_set():
            nodes = self.targets()
            if not nodes:
                time.sleep(0.05)
                continue
            node_id, node = self.rng.choice(nodes)
            seg = dict(node=node_id, frm=reached, msgs=[], end=None)
            self.segments.append(seg)
            fields = {} if reached is None else {"from_revision": reached}
            call = node.watch(timeout=self.segment_s, **fields)
            try:
                for m in call:
                    seg["msgs"].append(dict(
                        b=m.initial_begin, i=m.initial, e=m.initial_end, r=int(m.revision),
                        ev=[[int(e.revision), "PUT" if e.type == 0 else "DELETE", int(e.id),
                             decode(e.vehicle) if e.type == 0 else None] for e in m.events]))
                    if not m.initial or m.initial_end:
                        reached = int(m.revision)
                    elif m.initial_begin:
                        reached = None  # a full state in progress: nothing to resume from
                    if self.stop.is_set():
                        call.cancel()
            except grpc.RpcError as e:
                seg["end"] = "%s: %s" % (e.code().name, e.details())
                if e.code() == grpc.StatusCode.OUT_OF_RANGE:
                    reached = None
                elif e.code() not in (grpc.StatusCode.DEADLINE_EXCEEDED,
                                      grpc.StatusCode.CANCELLED):
                    time.sleep(0.05)
