"""One fault-injection run, from inside the clients' network namespace.

run.py creates the hosts and starts this program in the clients' namespace (under nsenter and
unshare, which give it a mount namespace of its own: the tmpfs of the disk fault is mounted
there and vanishes with it, whatever happens). It starts the cluster, runs the workload and the
nemesis, heals everything, checks, and writes result.json, history.jsonl and nemesis.log into
the run directory. Usage: inner.py RUN_DIR/config.json
"""

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import grpc  # noqa: E402

from faults import checks, hosts as hostsmod, nemesis as nemesismod, nodes, workload  # noqa: E402
from faults.workload import read_once  # noqa: E402
from harness import api  # noqa: E402

KEYS = list(range(1, 7))
FOUNDERS = {1: 1, 2: 2, 3: 3}
TMPFS_SIZE = "16m"


class Run:
    def __init__(self, cfg):
        self.cfg = cfg
        self.dir = cfg["run_dir"]
        self.t0 = time.monotonic()
        self.log_file = open(os.path.join(self.dir, "nemesis.log"), "a")
        self.problems = {}
        self.mounted = None
        self.cluster = None

    def log(self, text):
        self.log_file.write("%9.3f %s\n" % (time.monotonic() - self.t0, text))
        self.log_file.flush()

    def problem(self, check, items):
        if items:
            self.problems.setdefault(check, []).extend(items)

    # ----- set-up -----

    def mount_disk(self):
        d = os.path.join(self.dir, "host%d" % nemesismod.DISK_HOST)
        os.makedirs(d, exist_ok=True)
        hostsmod.run(["mount", "-t", "tmpfs", "-o", "size=" + TMPFS_SIZE, "platoon-faults", d])
        self.mounted = d

    def unmount_disk(self, keep):
        if not self.mounted:
            return
        if keep:  # the tmpfs goes with this process's mount namespace: keep a copy
            shutil.copytree(self.mounted, self.mounted + ".saved", symlinks=True,
                            ignore_dangling_symlinks=True, dirs_exist_ok=True)
        subprocess.run(["umount", "-l", self.mounted], capture_output=True, timeout=30)
        self.mounted = None

    def start_cluster(self):
        c = self.cfg
        h = hostsmod.Hosts.__new__(hostsmod.Hosts)
        h.__dict__.update(c["hosts"])
        self.hosts = h
        extra = ["--tick-ms", "20", "--election-ticks", str(c["election_ticks"]),
                 "--snapshot-every", "200", "--snapshot-keep", "50"]
        if c.get("lease_reads"):
            extra.append("--lease-reads")
        self.cluster = nodes.NetnsCluster(os.path.join(c["bin"], "platoond"), h, self.dir,
                                          FOUNDERS, extra_args=extra)
        self.cluster.start()
        self.cluster.wait_for_leader(timeout=60)
        self.log("cluster up")

    def targets(self):
        eager = self.cfg.get("route_to_joining", False)
        return [(n.id, n.client) for n in list(self.cluster.nodes.values())
                if n.alive() and not getattr(n, "removed", False)
                and (eager or not getattr(n, "joining", False))]

    # ----- the run -----

    def main(self):
        c = self.cfg
        if c["disk"]:
            self.mount_disk()
        self.start_cluster()
        wl = workload.Workload(self.targets, c["clients"], KEYS, c["seed"],
                               attempt_timeout=c["attempt_timeout"], retry_for=c["retry_for"])
        nem = nemesismod.Nemesis(self.cluster, self.hosts, c["seed"], c["mix"], c["duration"],
                                 FOUNDERS, self.log, remove_leader=c["remove_leader"])
        self.nemesis = nem
        # A watcher beside the clients: its changes must rebuild what GetPlatoon reads.
        watch_stop = threading.Event()
        self.watch = workload.Watch(self.targets, c["seed"], watch_stop)
        wl.start()
        self.watch.start()
        nem.start()
        time.sleep(c["duration"])
        nem.stop_event.set()
        nem.join(60)
        self.problem("nemesis", ["the nemesis did not stop"] if nem.is_alive() else [])
        self.problem("nemesis", [nem.error] if nem.error else [])
        nem.heal_all()
        self.log("healed")
        time.sleep(2.0)  # the clients run on a healed cluster for a moment
        stuck = wl.stop(timeout=c["retry_for"] + 10)
        self.problem("workload", ["%s did not stop" % s for s in stuck] + wl.errors())
        watch_stop.set()
        self.watch.join(30)
        self.problem("watch", ["the watcher did not stop"] if self.watch.is_alive() else [])
        self.problem("watch", [self.watch.error] if self.watch.error else [])
        history = wl.history.ops
        self.settle()
        final = self.final_reads(history)
        self.stop_nodes()
        self.post_mortem()
        self.check(history, final)
        return history, final

    def settle(self):
        """Brings the membership to what the cluster's configuration says: members running,
        nodes that are not members stopped; then waits for the members to agree."""
        cl = self.cluster
        deadline = time.monotonic() + 60
        members = None
        while time.monotonic() < deadline and members is None:
            lead = self.nemesis.leader()
            if lead is not None:
                try:
                    st = cl.nodes[lead].status(timeout=2.0)
                    if len(st.members) > 0:
                        members = {m.id for m in st.members}
                except grpc.RpcError:
                    pass
            time.sleep(0.1)
        if members is None:
            self.problem("converged", ["no leader within 60 s of healing"])
            return
        self.log("members after healing: %s" % sorted(members))
        with cl.lock:
            for n in list(cl.nodes.values()):
                if n.id not in members and n.alive():
                    n.removed = True
                    rc = n.stop()
                    self.log("stopped node %d, not a member: %s" % (n.id, rc))
                elif n.id in members and not n.alive():
                    self.problem("converged", ["member %d was not running after healing" % n.id])
        try:
            cl.wait_for_leader(timeout=60)
            applied = cl.wait_converged(timeout=90)
            self.log("converged at applied index %d" % applied)
        except AssertionError as e:
            self.problem("converged", [str(e).splitlines()[0]])

    def final_reads(self, history):
        """A linearizable GetPlatoon and a stale one from every running member, recorded in
        the history; all must show the same state."""
        t = self.cfg["attempt_timeout"] * 2
        final = None
        deadline = time.monotonic() + 30
        while final is None and time.monotonic() < deadline:
            for nid, node in self.targets():
                r = read_once(nid, node, "platoon", None, "lin", 0, t)
                history.append(r)
                if r["outcome"] == "ok":
                    final = r
                    break
            else:
                time.sleep(0.2)
        if final is None:
            self.problem("converged", ["no linearizable read succeeded after healing"])
            return None
        for nid, node in self.targets():
            r = read_once(nid, node, "platoon", None, "stale", 0, t)
            history.append(r)
            if r["outcome"] != "ok":
                self.problem("converged", ["stale read from node %d failed: %s" % (nid,
                                                                                    r["error"])])
            elif (r["vehicles"], r["revision"]) != (final["vehicles"], final["revision"]):
                self.problem("converged", [
                    "node %d's state (revision %d, %s) differs from the linearizable read's "
                    "(revision %d, %s)" % (nid, r["revision"], r["vehicles"], final["revision"],
                                           final["vehicles"])])
        return final

    def stop_nodes(self):
        with self.cluster.lock:
            for n in self.cluster.nodes.values():
                if n.alive():
                    try:
                        rc = n.stop(timeout=60)
                    except AssertionError as e:
                        self.problem("crashes", [str(e)])
                        continue
                    self.log("node %d stopped: exit %s" % (n.id, rc))

    def post_mortem(self):
        cl = self.cluster
        self.problem("crashes", cl.unexpected_exits())
        self.problem("crashes", ["core file %s" % p for p in cl.core_files()])
        for name, text in cl.sanitizer_reports():
            self.problem("sanitizer", ["%s:\n%s" % (name, text[:4000])])
        for n in cl.nodes.values():
            if not os.path.isdir(n.data_dir):
                continue
            ok, out = nodes.inspect(self.cfg["bin"], n.data_dir)
            if not ok:
                self.problem("storage", ["node %d: %s" % (n.id, out.splitlines()[-1])])

    def check(self, history, final):
        self.problem("protocol", checks.protocol(history, KEYS))
        self.problem("linearizable", checks.linearizable(history, KEYS))
        self.problem("monotonic", checks.monotonic(history))
        self.problem("unique", checks.unique(history))
        self.problem("states", checks.states(history, KEYS))
        problems, compared = checks.watches(history, self.watch.segments)
        self.problem("watch", problems)
        self.log("watch: %d segments, %d GetPlatoon reads compared with the watch" % (
            len(self.watch.segments), compared))
        if final is not None:
            self.problem("lost", checks.lost(history, final))


def main():
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    os.chdir(cfg["run_dir"])  # where a crashing node leaves its core file
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGTERM, on_signal)
    run = Run(cfg)
    history, final, error = [], None, None
    try:
        history, final = run.main()
    except BaseException as e:  # noqa: B902 - anything, including an interrupt, fails the run
        error = "%s: %s" % (type(e).__name__, e)
        run.log("run failed: %s" % error)
    finally:
        if run.cluster is not None:
            run.cluster.close()
        ok = error is None and not run.problems
        run.unmount_disk(keep=not ok)
    with open(os.path.join(cfg["run_dir"], "history.jsonl"), "w") as f:
        for r in history:
            f.write(json.dumps(r) + "\n")
    nem = getattr(run, "nemesis", None)
    result = dict(ok=ok, error=error, problems=run.problems, counts=checks.counts(history),
                  ops=len(history), faults=nem.total() if nem else 0,
                  fault_counts=nem.counts if nem else {},
                  linearizable=not any(k in run.problems for k in ("linearizable", "monotonic",
                                                                    "unique", "states", "lost")),
                  converged="converged" not in run.problems and final is not None,
                  schedule=nem.steps if nem else [])
    if error:
        result["linearizable"] = result["converged"] = False
    with open(os.path.join(cfg["run_dir"], "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
