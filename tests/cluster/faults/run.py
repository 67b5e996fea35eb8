"""One fault-injection run from the outside: the hosts are made, the run happens in the clients'
namespace (inner.py), the hosts are removed whatever happens, and one summary line is printed.

    run.py --bin BUILD/bin --seed N [--mix all] [--duration 30] [--out DIR] [--keep]

The run directory (the history, the nemesis' log, every node's log and data) is removed when
the run passes and kept when it fails (or with --keep); its path is printed. Exit status 0 when
the run passed. Needs root (it says so and fails otherwise).
"""

import argparse
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from faults import hosts as hostsmod  # noqa: E402
from faults.nemesis import MIXES  # noqa: E402

INNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "inner.py")
PR_SET_PDEATHSIG = 1


def sanitized(bin_dir):
    """True for a platoond built with AddressSanitizer (several times slower)."""
    with open(os.path.join(bin_dir, "platoond"), "rb") as f:
        return b"__asan_init" in f.read()


def _die_with_parent():
    # If this process is killed outright, the run inside is told to stop (SIGTERM) and cleans
    # up its nodes; the namespaces are then swept by the next run.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Interrupted(Exception):
    pass


def summary(seed, mix, res):
    c = res.get("counts", {})
    line = ("faults seed=%s mix=%s: ops=%d ok=%d fail=%d unknown=%d faults=%d linearizable=%s "
            "converged=%s" % (seed, mix, res.get("ops", 0), c.get("ok", 0), c.get("fail", 0),
                              c.get("unknown", 0), res.get("faults", 0),
                              "yes" if res.get("linearizable") else "no",
                              "yes" if res.get("converged") else "no"))
    if res.get("ok"):
        return line + " PASS"
    first = res.get("error") or next(
        ("%s: %s" % (k, v[0].splitlines()[0]) for k, v in res.get("problems", {}).items()), "?")
    return line + " FAIL (%s)" % first



def _private_mounts():
    """A mount namespace of the inner process's own, so that the disk fault's tmpfs can never
    outlive it. Propagation is made private where / is a mount point (any real machine); in a
    chroot, where it is not, the namespace keeps the parent's propagation."""
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                           capture_output=True)
    mode = "private" if probe.returncode == 0 else "unchanged"
    return ["unshare", "--mount", "--propagation", mode]

def run(bin_dir, seed, mix="all", duration=30.0, out=None, keep=False, clients=4, log=print,
        route_to_joining=False, remove_leader=True, lease_reads=False):
    """Runs one seed; returns the result (a dict, see inner.py) with "summary" and "dir"."""
    hostsmod.require_root()
    if mix not in MIXES:
        raise ValueError("unknown mix %r (one of %s)" % (mix, ", ".join(MIXES)))
    bin_dir = os.path.abspath(bin_dir)
    swept = hostsmod.sweep_stale()
    if swept:
        log("removed namespaces of an earlier run that died: %s" % " ".join(swept))
    if out:
        os.makedirs(out, exist_ok=True)
    run_dir = tempfile.mkdtemp(prefix="run-%s-%s-" % (mix, seed), dir=out)
    asan = sanitized(bin_dir)
    uses_members = "member" in MIXES[mix]
    hosts = hostsmod.Hosts(4 if uses_members else 3)
    cfg = dict(bin=bin_dir, seed=seed, mix=mix, duration=duration, run_dir=run_dir,
               clients=clients, disk="disk" in MIXES[mix], route_to_joining=route_to_joining,
               remove_leader=remove_leader, lease_reads=lease_reads,
               attempt_timeout=3.0 if asan else 1.0, retry_for=12.0 if asan else 6.0,
               election_ticks=20 if asan else 10,
               hosts=dict(run_id=hosts.run_id, n_hosts=hosts.n_hosts, bridge_ns=hosts.bridge_ns,
                          client_ns=hosts.client_ns, created=[]))
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)

    def on_signal(signum, frame):
        raise Interrupted("interrupted by signal %d" % signum)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    res = dict(ok=False, error=None)
    inner = None
    try:
        hosts.create()
        inner = subprocess.Popen(
            hostsmod.in_ns(hosts.client_ns) + _private_mounts() + [sys.executable, INNER,
             os.path.join(run_dir, "config.json")],
            stdout=open(os.path.join(run_dir, "inner.log"), "wb"), stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent)
        # Bounded: the run's own phases are bounded; this catches a hang of the whole.
        inner.wait(timeout=duration + (900 if asan else 420))
        try:
            with open(os.path.join(run_dir, "result.json")) as f:
                res = json.load(f)
        except (OSError, ValueError):
            res["error"] = "the run left no result (exit %s); see %s" % (
                inner.returncode, os.path.join(run_dir, "inner.log"))
    except subprocess.TimeoutExpired:
        res["error"] = "the run did not finish in time"
    except Interrupted as e:
        res["error"] = str(e)
        raise
    finally:
        if inner is not None and inner.poll() is None:
            inner.send_signal(signal.SIGTERM)
            try:
                inner.wait(timeout=30)
            except subprocess.TimeoutExpired:
                inner.kill()
                inner.wait()
        hosts.destroy()
        for s, h in old.items():
            signal.signal(s, h)
        res["summary"] = summary(seed, mix, res)
        res["dir"] = run_dir
        if res.get("ok") and not keep:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            res["summary"] += " [files: %s]" % run_dir
    return res


def main():
    p = argparse.ArgumentParser(description="one fault-injection run")
    p.add_argument("--bin", required=True, help="folder holding platoond and platoon-inspect")
    p.add_argument("--seed", type=int, default=None, help="default: from the clock")
    p.add_argument("--mix", default="all", choices=sorted(MIXES))
    p.add_argument("--duration", type=float, default=30.0, help="seconds of faults")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--lease-reads", action="store_true",
                   help="run the nodes with --lease-reads (reads from the leader's lease)")
    p.add_argument("--out", default=None, help="where run directories go (default: the temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the run directory even if it passed")
    p.add_argument("--route-to-joining", action="store_true",
                   help="send client requests to a joining node before it is a voter")
    p.add_argument("--keep-leader", action="store_true",
                   help="membership changes never remove the leader")
    a = p.parse_args()
    seed = a.seed if a.seed is not None else int(time.time()) % 1000000
    try:
        res = run(a.bin, seed, a.mix, a.duration, a.out, a.keep, a.clients,
                  route_to_joining=a.route_to_joining, remove_leader=not a.keep_leader,
                  lease_reads=a.lease_reads)
    except hostsmod.NotRoot as e:
        print("faults: %s" % e, file=sys.stderr)
        return 2
    print(res["summary"])
    for check, items in res.get("problems", {}).items():
        for item in items[:5]:
            print("  %s: %s" % (check, item))
    return 0 if res.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
