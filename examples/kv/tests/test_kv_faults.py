"""examples/kv under faults: concurrent clerks' histories checked for linearizability while
the fault-injection suite's nemesis (tests/cluster/faults) kills, pauses and partitions the
nodes, each node on a host of its own (a network namespace), mutual TLS on.

    python3 test_kv_faults.py --bin BUILD/bin --kv BUILD/examples [--seed N] [--duration S]

Every clerk writes values no other write writes (Put "p<clerk>.<seq>;", Append
"a<clerk>.<seq>;"), so a Get names the writes it saw and their order. A write with no definite
answer is retried, unchanged, on other nodes (kv.proto's exactly-once rule); an Append applied
twice would show its piece twice, which no linearization explains. Checks, after healing:
  linearizable  the history of each key has a linearization (harness/linearizability.py);
  unique        no two acknowledged writes took effect at the same log index;
  protocol      no write was refused (a retry must get the first answer, never "stale");
  converged     every node ends with the same value for every key as a linearizable read;
  crashes       no process ended except by the nemesis' SIGKILL or a clean stop, no
                sanitizer report; platoon-inspect passes every data directory.
Needs root (namespaces, nftables), like tests/cluster/test_faults.py. A failing run keeps its
directory (history.jsonl, nemesis.log, node logs) and names it with the seed.
"""

import argparse
import ctypes
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvclient  # noqa: E402  (puts tests/cluster on the path)
from kvclient import Clerk, KvNode  # noqa: E402

import grpc  # noqa: E402

from faults import hosts as hostsmod, nemesis as nemesismod, nodes  # noqa: E402
from harness import linearizability as lin  # noqa: E402

ARGS = None
FOUNDERS = {1: 1, 2: 2, 3: 3}  # node id: host
KEYS = ["k1", "k2", "k3", "k4"]
CLERKS = 4
MIX = "crash-partition"  # kill, pause, transfer, isolate, split, oneway, flap (+ snapshots)


def sanitized(kv_dir):
    with open(os.path.join(kv_dir, "kv-server"), "rb") as f:
        return b"__asan_init" in f.read()


# ----- inside the clients' namespace -----

class ClerkThread(threading.Thread):
    """One clerk: Put, Append and linearizable Get on random keys, each operation recorded."""

    def __init__(self, n, kv, alive, history, stop, cfg):
        super().__init__(name="clerk-%d" % n, daemon=True)
        self.n = n
        self.rng = random.Random("%s/clerk/%d" % (cfg["seed"], n))
        self.kv, self.alive, self.history, self.stop = kv, alive, history, stop
        self.timeout = cfg["attempt_timeout"]
        self.clerk = Clerk(0xC1E4C000 + n, self.shuffled, attempt_timeout=self.timeout,
                           retry_for=cfg["retry_for"])
        self.error = None

    def shuffled(self):
        ids = [i for i in self.kv if self.alive(i)]
        return [self.kv[i] for i in self.rng.sample(ids, len(ids))]

    def run(self):
        try:
            while not self.stop.is_set():
                self.one()
        except Exception as e:  # a bug of the test itself must fail the run, loudly
            self.error = repr(e)

    def one(self):
        key = self.rng.choice(KEYS)
        x = self.rng.random()
        rec = dict(clerk=self.n, key=key, invoke=time.monotonic())
        if x < 0.55:
            kind = "write" if x < 0.15 else "append"
            value = "%s%d.%d;" % ("p" if kind == "write" else "a", self.n, self.clerk.seq + 1)
            outcome, answer, attempts = self.clerk.write("Put" if kind == "write" else "Append",
                                                         key, value)
            rec.update(kind=kind, value=value, outcome=outcome, attempts=attempts,
                       seq=self.clerk.seq)
            rec["index" if outcome == "ok" else "error"] = answer
        else:
            nodes = self.shuffled()
            if not nodes:
                time.sleep(0.05)
                return
            rec.update(kind="read", node=nodes[0].endpoint)
            try:
                rec["value"] = nodes[0].get(key, timeout=self.timeout)
                rec["outcome"] = "ok"
            except grpc.RpcError as e:
                rec.update(outcome="fail", error="%s: %s" % (e.code().name, e.details()))
        rec["complete"] = time.monotonic()
        self.history.append(rec)


def check(history):
    """The problems found in a history, by check."""
    problems = {}
    ops = [lin.Op(r["key"], r["kind"], r.get("value"), r["invoke"], r["complete"], r["outcome"],
                  client=r["clerk"]) for r in history]
    v = lin.check_history(ops)
    if not v.ok:
        problems["linearizable"] = ["key %s: %s" % (v.key, v.reason)]
    at = {}
    for r in history:
        if r["kind"] != "read" and r["outcome"] == "ok":
            other = at.setdefault(r["index"], r)
            if other is not r:
                problems.setdefault("unique", []).append(
                    "index %d holds %r and %r" % (r["index"], other["value"], r["value"]))
        if r["kind"] != "read" and r["outcome"] == "fail":
            problems.setdefault("protocol", []).append(
                "%r refused: %s" % (r["value"], r["error"]))
    return problems, v.ops_checked


def inner(cfg_path):
    with open(cfg_path) as f:
        cfg = json.load(f)
    run_dir = cfg["run_dir"]
    os.chdir(run_dir)  # where a crashing node would leave its core file
    log_file = open(os.path.join(run_dir, "nemesis.log"), "a")
    t0 = time.monotonic()

    def log(text):
        log_file.write("%9.3f %s\n" % (time.monotonic() - t0, text))
        log_file.flush()

    hosts = hostsmod.Hosts.__new__(hostsmod.Hosts)
    hosts.__dict__.update(cfg["hosts"])
    extra = ["--tick-ms", "20", "--election-ticks", str(cfg["election_ticks"]),
             "--snapshot-every", "100", "--snapshot-keep", "20"]
    cluster = nodes.NetnsCluster(os.path.join(cfg["kv"], "kv-server"), hosts, run_dir, FOUNDERS,
                                 extra_args=extra, tools=cfg["bin"])
    history, problems, res = [], {}, dict(ok=False)
    nem = None
    try:
        cluster.start()
        cluster.wait_for_leader(timeout=60)
        creds = cluster.credentials("kv-clerk", "writer")
        kv = {i: KvNode(n.address, creds) for i, n in cluster.nodes.items()}
        stop = threading.Event()
        clerks = [ClerkThread(c + 1, kv, lambda i: cluster.nodes[i].alive(), history, stop, cfg)
                  for c in range(CLERKS)]
        nem = nemesismod.Nemesis(cluster, hosts, cfg["seed"], MIX, cfg["duration"], FOUNDERS, log)
        for c in clerks:
            c.start()
        nem.start()
        time.sleep(cfg["duration"])
        nem.stop_event.set()
        nem.join(60)
        nem.heal_all()
        log("healed")
        time.sleep(1.5)  # the clerks go on for a moment on a healed cluster
        stop.set()
        for c in clerks:
            c.join(cfg["retry_for"] + 10)
            if c.is_alive() or c.error:
                problems.setdefault("workload", []).append("%s: %s" % (c.name, c.error or
                                                                       "did not stop"))
        if nem.error:
            problems.setdefault("nemesis", []).append(nem.error)
        cluster.wait_for_leader(timeout=60)
        log("converged at applied index %d" % cluster.wait_converged(timeout=60))
        # Every node holds what a linearizable read says, for every key.
        lead = cluster.wait_for_leader()
        for key in KEYS:
            want = kv[lead].get(key, timeout=5.0)
            for i in sorted(kv):
                got = kv[i].get(key, stale=True, timeout=5.0)
                if got != want:
                    problems.setdefault("converged", []).append(
                        "node %d: %s is %r, a linearizable read says %r" % (i, key, got, want))
        for n in cluster.nodes.values():
            rc = n.stop(timeout=60)
            log("node %d stopped: exit %s" % (n.id, rc))
        problems.update({k: v for k, v in [("crashes", cluster.unexpected_exits() + [
            "core file " + p for p in cluster.core_files()]), ("sanitizer", [
                "%s: %s" % r for r in cluster.sanitizer_reports()])] if v})
        for n in cluster.nodes.values():
            ok, out = nodes.inspect(cfg["bin"], n.data_dir)
            if not ok:
                problems.setdefault("storage", []).append("node %d: %s" % (n.id, out))
        found, checked = check(history)
        problems.update(found)
        res["ops_checked"] = checked
    except BaseException as e:  # noqa: B902 - anything, an interrupt included, fails the run
        problems.setdefault("error", []).append("%s: %s" % (type(e).__name__, e))
    finally:
        cluster.close()
    counts = {}
    for r in history:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    res.update(ok=not problems, problems=problems, ops=len(history), counts=counts,
               faults=nem.total() if nem else 0, fault_counts=nem.counts if nem else {})
    with open(os.path.join(run_dir, "history.jsonl"), "w") as f:
        for r in history:
            f.write(json.dumps(r) + "\n")
    with open(os.path.join(run_dir, "result.json"), "w") as f:
        json.dump(res, f, indent=1)
    return 0 if res["ok"] else 1


# ----- outside: the hosts, made and always removed -----

def die_with_parent():
    # Killed outright, this process takes the run inside with it (its namespaces are then
    # swept by the next run).
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def run(seed, duration):
    hostsmod.require_root()
    hostsmod.sweep_stale()
    asan = sanitized(ARGS.kv)
    run_dir = tempfile.mkdtemp(prefix="kv-faults-%d-" % seed)
    hosts = hostsmod.Hosts(3)
    cfg = dict(bin=ARGS.bin, kv=ARGS.kv, seed=seed, duration=duration, run_dir=run_dir,
               attempt_timeout=3.0 if asan else 1.0, retry_for=12.0 if asan else 6.0,
               election_ticks=20 if asan else 10,
               hosts=dict(run_id=hosts.run_id, n_hosts=hosts.n_hosts, bridge_ns=hosts.bridge_ns,
                          client_ns=hosts.client_ns, created=[]))
    cfg_path = os.path.join(run_dir, "config.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=1)
    res = dict(ok=False, problems={"error": ["the run left no result"]})
    try:
        hosts.create()
        with open(os.path.join(run_dir, "inner.log"), "wb") as out:
            p = subprocess.Popen(hostsmod.in_ns(hosts.client_ns) + [
                sys.executable, os.path.abspath(__file__), "--inner", cfg_path],
                stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
            try:
                p.wait(timeout=duration + (600 if asan else 300))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        with open(os.path.join(run_dir, "result.json")) as f:
            res = json.load(f)
    except (OSError, ValueError) as e:
        res["problems"]["error"].append(str(e))
    finally:
        hosts.destroy()
    res["dir"] = run_dir
    if res["ok"]:
        shutil.rmtree(run_dir, ignore_errors=True)
    return res


class KvFaults(unittest.TestCase):
    def test_linearizable_under_kills_and_partitions(self):
        res = run(ARGS.seed, ARGS.duration)
        c = res.get("counts", {})
        summary = ("kv faults seed=%d mix=%s: ops=%d ok=%d fail=%d unknown=%d checked=%d "
                   "faults=%d %s" % (ARGS.seed, MIX, res.get("ops", 0), c.get("ok", 0),
                                     c.get("fail", 0), c.get("unknown", 0),
                                     res.get("ops_checked", 0), res.get("faults", 0),
                                     res.get("fault_counts", {})))
        print(summary, flush=True)
        detail = "\n".join("  %s: %s" % (k, item) for k, items in res["problems"].items()
                           for item in items[:5])
        self.assertTrue(res["ok"], "%s FAIL [files: %s]\n%s" % (summary, res["dir"], detail))
        # A run that did nothing proves nothing.
        self.assertGreater(c.get("ok", 0), 100, summary)
        self.assertGreater(res["faults"], 0, summary)


def main():
    global ARGS
    if len(sys.argv) == 3 and sys.argv[1] == "--inner":
        sys.exit(inner(sys.argv[2]))
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True, help="folder holding platoonctl, platoon-inspect")
    parser.add_argument("--kv", required=True, help="folder holding kv-server")
    parser.add_argument("--seed", type=int, default=139,
                        help="the fault schedule (default: one with kills, isolation and splits)")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds of faults (default 15, 12 for a sanitized build)")
    ARGS, rest = parser.parse_known_args()
    ARGS.bin, ARGS.kv = os.path.abspath(ARGS.bin), os.path.abspath(ARGS.kv)
    if ARGS.duration is None:
        ARGS.duration = 12.0 if sanitized(ARGS.kv) else 15.0
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
