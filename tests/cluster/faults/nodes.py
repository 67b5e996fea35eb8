"""platoond processes on the simulated hosts: the harness's LocalCluster, with each node run
inside its host's network namespace, its data directory in its host's folder, and sanitizer
reports written to files of the run rather than mixed into the log.

A node id lives on one host at a time; membership changes start new ids on free hosts. The
process's fate is tracked so that the checks can tell what the nemesis did (SIGKILL, a
restart) from a crash: every exit that was not a nemesis kill or a requested stop is recorded.
"""

import glob
import os
import signal
import subprocess
import threading

from faults.hosts import in_ns  # noqa: E402
from harness.cluster import LocalCluster, NodeProc

PORT = 7001


class HostNode(NodeProc):
    def __init__(self, cluster, node_id, address, host):
        super().__init__(cluster, node_id, address,
                         data_dir=os.path.join(cluster.host_dir(host), "node%d" % node_id))
        self.host = host
        self.expected_exit = False  # set while the nemesis kills or the run stops this node
        self.exits = []  # (returncode, expected) of every process of this node that ended

    def start(self, join=False, extra=()):
        self.expected_exit = False
        super().start(join=join, extra=extra)

    def reap(self):
        """Records the exit of a process that ended; returns True if one did."""
        if self.proc is None or self.proc in self.cluster.reaped:
            return False
        rc = self.proc.poll()
        if rc is None:
            return False
        self.cluster.reaped.add(self.proc)
        self.exits.append((rc, self.expected_exit))
        return True

    def kill(self):
        self.expected_exit = True
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)
            super().kill()
        self.reap()

    def stop(self, timeout=30):
        self.expected_exit = True
        try:
            return super().stop(timeout=timeout)
        finally:
            self.reap()


class NetnsCluster(LocalCluster):
    def __init__(self, platoond, hosts, run_dir, founders, extra_args=(), env=None,
                 log_level="info", tools=None):
        """founders: {node_id: host}. env: the environment given to every node. tools: the
        folder holding platoonctl (default: platoond's)."""
        self.hosts = hosts
        self.run_dir = run_dir
        self.env = dict(env or os.environ)
        self.reaped = set()
        self.lock = threading.RLock()  # the nemesis and the final phase both change nodes
        self.host_of = dict(founders)
        super().__init__(platoond, extra_args=extra_args, log_level=log_level, tmp=run_dir,
                         addresses={i: self.endpoint(h) for i, h in founders.items()},
                         tools=tools)

    def endpoint(self, host):
        return "%s:%d" % (self.hosts.address(host), PORT)

    def host_dir(self, host):
        d = os.path.join(self.run_dir, "host%d" % host)
        os.makedirs(d, exist_ok=True)
        return d

    def make_node(self, node_id, address):
        return HostNode(self, node_id, address, self.host_of[node_id])

    def place(self, node_id, host):
        self.host_of[node_id] = host
        return self.add_node(node_id, self.endpoint(host))

    def command_prefix(self, node):
        return in_ns(self.hosts.node_ns(node.host))

    def node_env(self, node):
        env = dict(self.env)
        # Sanitizer reports go to files of their own (one per process: the runtime appends the
        # pid), collected by the checks; any report fails the run.
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            base = env.get(var, "")
            path = os.path.join(self.run_dir, "sanitizer-node%d" % node.id)
            env[var] = (base + ":" if base else "") + "log_path=" + path
        return env

    def running(self):
        return [n for n in self.nodes.values() if n.alive()]

    def sanitizer_reports(self):
        out = []
        for path in sorted(glob.glob(os.path.join(self.run_dir, "sanitizer-node*"))):
            with open(path, errors="replace") as f:
                text = f.read()
            if text.strip():
                out.append((os.path.basename(path), text))
        return out

    def unexpected_exits(self):
        """Every process exit that the nemesis or the run did not cause, as text."""
        out = []
        for n in self.nodes.values():
            n.reap()
            for rc, expected in n.exits:
                if expected and rc in (-signal.SIGKILL, 0):
                    continue
                what = "signal %d" % -rc if rc < 0 else "exit code %d" % rc
                out.append("node %d ended with %s%s" % (n.id, what,
                                                        "" if not expected else " when stopped"))
        return out

    def core_files(self):
        # Nodes run with the run directory as their working directory (see inner.py).
        return sorted(glob.glob(os.path.join(self.run_dir, "core*")))


def inspect(bin_dir, data_dir):
    """Runs the storage integrity checker on a data directory: (ok, its output)."""
    p = subprocess.run([os.path.join(bin_dir, "platoon-inspect"), data_dir],
                       capture_output=True, text=True, timeout=120)
    return p.returncode == 0, (p.stdout + p.stderr).strip()
