"""The nemesis: faults from a seeded schedule, applied to the real processes and network.

The schedule (which faults, how long each lasts, the quiet time between them) is drawn from the
seed alone, so a seed names a fault schedule. Which node a fault hits is decided when it
happens ("the leader" is whoever leads then), by a generator drawn from the same seed: the
timing of a real cluster is not reproducible, the schedule is.

Faults (each undone by its heal, except membership changes, which are permanent):
  kill       SIGKILL a node (the leader half of the time); restarted at heal
  pause      SIGSTOP a node (the leader half of the time); SIGCONT at heal
  isolate    the leader's host drops every packet from and to the other nodes
  split      a random minority of nodes cut from the majority, both ways
  oneway     one node drops what another sends it (the other way still flows)
  flap       a node's link to the bridge goes down and up on a timer
  disk       host 1's data directory (a small tmpfs) is filled up; the ballast is removed at heal
  member     a voter is replaced: a new node joins as a learner, is promoted, the old one
             is removed and stopped
  transfer   leadership moves to another voter
  snapshot   every running node is asked to snapshot and compact its log (joins other faults)
"""

import os
import random
import threading
import time

import grpc

from harness import api

MIXES = {
    "crash": ["kill", "pause", "transfer"],
    "partition": ["isolate", "split", "oneway", "flap"],
    "membership": ["member", "kill", "isolate", "pause"],
    "disk": ["disk", "kill", "pause", "isolate"],
    "crash-partition": ["kill", "pause", "transfer", "isolate", "split", "oneway", "flap"],
    "all": ["kill", "pause", "isolate", "split", "oneway", "flap", "disk", "member", "transfer"],
}
# Faults that cannot share a step: both change membership or both need host 1's disk.
SOLO = {"member", "disk"}
DISK_HOST = 1


def schedule(seed, mix, duration):
    """[(start offset s, [fault, ...], hold s)] for a run of `duration` seconds."""
    rng = random.Random("%s/schedule" % seed)
    kinds = MIXES[mix]
    steps, t = [], rng.uniform(1.0, 2.0)
    while t < duration:
        faults = [rng.choice(kinds)]
        if rng.random() < 0.3:
            other = rng.choice(kinds)
            if other != faults[0] and not (other in SOLO and faults[0] in SOLO):
                faults.append(other)
        if rng.random() < 0.5:
            faults.append("snapshot")
        hold = rng.uniform(1.0, 4.0)
        steps.append((round(t, 3), faults, round(hold, 3)))
        t += hold + rng.uniform(0.5, 2.0)
    return steps


class Nemesis(threading.Thread):
    def __init__(self, cluster, hosts, seed, mix, duration, founders, log, remove_leader=True):
        super().__init__(name="nemesis", daemon=True)
        self.cluster = cluster
        self.hosts = hosts
        self.rng = random.Random("%s/targets" % seed)
        self.steps = schedule(seed, mix, duration)
        self.founders = set(founders)
        self.log = log  # (text) -> None, timestamps added by the caller
        self.stop_event = threading.Event()
        # Whether a membership change may remove the leader itself (see inner.py).
        self.remove_leader = remove_leader
        self.counts = {}
        self.error = None
        self.next_id = max(cluster.nodes) + 1
        self.killed = set()  # ids killed and not yet restarted
        self.paused = set()
        self.cut_hosts = set()  # hosts with drop rules
        self.down_links = set()
        self.ballast = None
        self.events = []

    # ----- helpers -----

    def say(self, text):
        self.events.append(text)
        self.log(text)

    def count(self, kind):
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def total(self):
        return sum(v for k, v in self.counts.items())

    def leader(self):
        """The id of the node that says it leads with the highest term, or None."""
        best = None
        for n in list(self.cluster.nodes.values()):
            if not n.alive() or n.id in self.paused:
                continue
            try:
                st = n.status(timeout=0.5)
            except grpc.RpcError:
                continue
            if st.role == api.M["ROLE_LEADER"] and (best is None or st.term > best[0]):
                best = (st.term, n.id)
        return best[1] if best else None

    def members(self):
        """Running nodes that have not been removed, by id."""
        return sorted(n.id for n in self.cluster.nodes.values()
                      if n.alive() and not getattr(n, "removed", False))

    def configured(self):
        """The member ids in the leader's configuration (empty if no leader answers)."""
        lead = self.leader()
        if lead is None:
            return set()
        try:
            return {m.id for m in self.cluster.nodes[lead].status(timeout=1.0).members}
        except grpc.RpcError:
            return set()

    def target(self, exclude, prefer_leader=True):
        if prefer_leader and self.rng.random() < 0.5:
            lead = self.leader()
            if lead is not None and lead not in exclude:
                return lead
        choices = [i for i in self.members() if i not in exclude]
        return self.rng.choice(choices) if choices else None

    def call_any(self, method, deadline, again=(), **fields):
        """Calls a Cluster method on running nodes until it succeeds, a code that is not
        UNAVAILABLE, DEADLINE_EXCEEDED or in `again` comes back, or the deadline passes.
        Returns (response or None, last code)."""
        again = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) + tuple(again)
        code = None
        while time.monotonic() < deadline and not self.stop_event.is_set():
            ids = self.members()
            if not ids:
                time.sleep(0.1)
                continue
            node = self.cluster.nodes[self.rng.choice(ids)]
            try:
                return node.client.call(method, timeout=2.0, **fields), None
            except grpc.RpcError as e:
                code = e.code()
                if code not in again:
                    return None, code
            time.sleep(0.2)
        return None, code

    # ----- faults -----

    def apply(self, kind, busy):
        """Applies one fault, avoiding the node ids in `busy`; returns a heal function."""
        c = self.cluster
        if kind in ("kill", "pause"):
            nid = self.target(busy)
            if nid is None:
                return None
            busy.add(nid)
            node = c.nodes[nid]
            if kind == "kill":
                self.say("kill -9 node %d" % nid)
                with c.lock:
                    node.kill()
                self.killed.add(nid)
                return lambda: self.restart(nid)
            self.say("SIGSTOP node %d" % nid)
            node.pause()
            self.paused.add(nid)
            return lambda: self.resume(nid)
        if kind in ("isolate", "split", "oneway"):
            ids = self.members()
            if len(ids) < 2:
                return None
            if kind == "isolate":
                lead = self.leader()
                if lead is None:
                    return None
                side = [lead]
            elif kind == "split":
                side = self.rng.sample(ids, (len(ids) - 1) // 2)
            else:
                a, b = self.rng.sample(ids, 2)
                self.say("node %d no longer hears node %d" % (a, b))
                self.cut(c.nodes[a].host, c.nodes[b].host, "in")
                return self.heal_network
            others = [i for i in ids if i not in side]
            self.say("partition %s | %s" % (side, others))
            for a in side:
                for b in others:
                    ha, hb = c.nodes[a].host, c.nodes[b].host
                    self.cut(ha, hb, "in")
                    self.cut(ha, hb, "out")
                    self.cut(hb, ha, "in")
                    self.cut(hb, ha, "out")
            return self.heal_network
        if kind == "flap":
            nid = self.target(busy, prefer_leader=False)
            if nid is None:
                return None
            host = c.nodes[nid].host
            stop = threading.Event()
            t = threading.Thread(target=self.flap, args=(host, stop), daemon=True)
            self.say("flapping the link of node %d" % nid)
            t.start()

            def heal():
                stop.set()
                t.join(5)
                self.hosts.link(host, True)
                self.down_links.discard(host)
            return heal
        if kind == "disk":
            on = [n for n in c.nodes.values() if n.host == DISK_HOST and n.alive()]
            if not on or on[0].id in busy:
                return None
            busy.add(on[0].id)
            self.fill_disk(on[0].id)
            return self.free_disk
        if kind == "member":
            self.replace(busy)
            return None
        if kind == "transfer":
            lead = self.leader()
            ids = [i for i in self.members() if i != lead and i not in self.paused]
            to = self.rng.choice(ids + [0])  # 0: the most caught-up voter
            self.say("transfer leadership from %s to %d" % (lead, to))
            _, code = self.call_any("TransferLeadership", time.monotonic() + 3.0, to=to)
            if code is not None:
                self.say("transfer: %s" % code.name)
            return None
        if kind == "snapshot":
            for nid in self.members():
                if nid in self.paused:
                    continue
                try:
                    r = c.nodes[nid].client.call("Snapshot", timeout=2.0)
                    self.say("node %d snapshot at %d" % (nid, r.index))
                except grpc.RpcError as e:
                    self.say("node %d snapshot: %s" % (nid, e.code().name))
            return None
        raise ValueError("unknown fault %r" % kind)

    def cut(self, host, peer, direction):
        self.hosts.drop(host, peer, direction)
        self.cut_hosts.add(host)

    def heal_network(self):
        for h in sorted(self.cut_hosts):
            self.hosts.heal(h)
        self.cut_hosts.clear()

    def flap(self, host, stop):
        up = True
        while not stop.is_set():
            up = not up
            self.hosts.link(host, up)
            if up:
                self.down_links.discard(host)
            else:
                self.down_links.add(host)
            stop.wait(self.rng.uniform(0.2, 0.8))

    def restart(self, nid):
        with self.cluster.lock:
            node = self.cluster.nodes[nid]
            if nid in self.killed and not node.alive():
                self.say("restart node %d" % nid)
                node.start(join=nid not in self.founders)
            self.killed.discard(nid)

    def resume(self, nid):
        self.say("SIGCONT node %d" % nid)
        self.cluster.nodes[nid].resume()
        self.paused.discard(nid)

    def fill_disk(self, nid):
        path = os.path.join(self.cluster.host_dir(DISK_HOST), "ballast")
        self.ballast = path
        written = 0
        chunk = b"\0" * (256 << 10)
        try:
            with open(path, "wb") as f:
                while written < (1 << 30):  # bounded: the tmpfs is far smaller
                    f.write(chunk)
                    f.flush()
                    written += len(chunk)
        except OSError:
            pass
        self.say("disk of node %d full (%d KiB of ballast)" % (nid, written >> 10))

    def free_disk(self):
        if self.ballast and os.path.exists(self.ballast):
            os.unlink(self.ballast)
            self.say("disk of host %d freed" % DISK_HOST)
        self.ballast = None

    def replace(self, busy):
        """Replaces a voter by a new node on a free host, within a bounded time."""
        c = self.cluster
        used = {n.host for n in c.nodes.values() if n.alive() or n.id in self.killed}
        free = [h for h in range(1, self.hosts.n_hosts + 1) if h not in used]
        voters = [i for i in self.members() if i not in busy]
        if not self.remove_leader:
            lead = self.leader()
            voters = [i for i in voters if i != lead]
        if not free or not voters:
            return
        nid, host = self.next_id, self.rng.choice(free)
        self.next_id += 1
        victim = self.rng.choice(voters)
        busy.update({nid, victim})
        deadline = time.monotonic() + 15.0
        with c.lock:
            node = c.place(nid, host)
            # Clients learn of the new node once it is a voter (caught up), unless the run
            # routes them to joining nodes on purpose (inner.py: route_to_joining).
            node.joining = True
            node.start(join=True)
        self.say("node %d started on host %d to replace node %d" % (nid, host, victim))
        # Not ready (a learner catching up, a change in flight) and changes lost in a
        # leadership change are retried; "already a member" means an earlier try went through.
        again = (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ABORTED)
        for learner in (True, False):
            r, code = self.call_any("AddMember", deadline, again=again, id=nid,
                                    address=node.address, learner=learner)
            what = "learner" if learner else "voter"
            if r is None and code != grpc.StatusCode.ALREADY_EXISTS:
                self.say("adding node %d as %s gave up: %s" % (nid, what, code))
                return
            self.say("node %d added as %s" % (nid, what))
        node.joining = False
        r, code = self.call_any("RemoveMember", deadline, again=again, id=victim)
        if r is None and code is not None and victim not in self.configured():
            # A retry of a removal that went through is refused (the id is no longer a
            # member); the configuration says whether it did.
            self.say("removal of node %d: %s, but it is no longer a member" % (victim, code.name))
        elif r is None:
            self.say("removing node %d gave up: %s" % (victim, code))
            return
        self.say("node %d removed" % victim)
        with c.lock:
            old = c.nodes[victim]
            old.removed = True
            if victim in self.killed:
                self.killed.discard(victim)
            elif old.alive():
                if victim in self.paused:
                    self.resume(victim)
                rc = old.stop()
                self.say("node %d stopped with %s" % (victim, rc))

    # ----- the schedule -----

    def run(self):
        start = time.monotonic()
        try:
            for at, faults, hold in self.steps:
                if self.stop_event.wait(max(0.0, start + at - time.monotonic())):
                    break
                busy, heals = set(), []
                for kind in faults:
                    n_before = len(self.events)
                    heal = self.apply(kind, busy)
                    if len(self.events) > n_before:  # it did something (it had a target)
                        self.count(kind)
                    if heal:
                        heals.append(heal)
                self.stop_event.wait(hold)
                for heal in heals:
                    heal()
        except Exception as e:  # a nemesis that breaks must fail the run, not stop quietly
            self.error = repr(e)
            self.say("nemesis failed: %r" % e)
            raise

    def heal_all(self):
        """Undoes every fault still in place: links up, rules gone, nodes running, disk free."""
        for h in sorted(self.down_links):
            self.hosts.link(h, True)
        self.down_links.clear()
        for h in range(1, self.hosts.n_hosts + 1):
            self.hosts.heal(h)
        self.cut_hosts.clear()
        for nid in sorted(self.paused):
            self.resume(nid)
        for nid in sorted(self.killed):
            self.restart(nid)
        self.free_disk()
