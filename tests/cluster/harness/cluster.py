"""Real platoond processes on this machine, for the cluster tests.

A LocalCluster starts N nodes on loopback with their own data directories under one temporary
directory, and can kill (SIGKILL), pause (SIGSTOP/SIGCONT), restart and stop them. Everything it
starts is stopped and removed by close(), which also runs at interpreter exit, so a failing test
leaves no process behind. Node logs are kept in the temporary directory and printed on failure.

Other placements (the fault-injection suite puts each node in its own network namespace) reuse
these classes: a cluster may be given the nodes' addresses and its directory, and a subclass may
wrap each node's command (command_prefix) and give it its own environment (node_env).
"""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import grpc

from . import api
from .pki import Pki


def free_ports(n):
    """n distinct TCP ports that were free on 127.0.0.1 a moment ago."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class NodeProc:
    def __init__(self, cluster, node_id, address, data_dir=None):
        self.cluster = cluster
        self.id = node_id
        self.address = address
        self.data_dir = data_dir or os.path.join(cluster.tmp, "node%d" % node_id)
        self.log_path = os.path.join(cluster.tmp, "node%d.log" % node_id)
        self.proc = None
        self.client = api.Node(address, cluster.credentials())
        # "host:port" of the monitoring endpoint (--http), None without one; see harness/http.py
        self.http_address = None

    def start(self, join=False, extra=()):
        args = [self.cluster.platoond, "--id", str(self.id), "--listen", self.address,
                "--data-dir", self.data_dir, "--log-level", self.cluster.log_level]
        if join:
            args.append("--join")
        else:
            args += ["--initial-cluster", self.cluster.initial_cluster()]
        args += self.cluster.security_flags(self)
        if self.http_address is not None:
            args += ["--http", self.http_address]
        args += list(self.cluster.extra_args) + list(extra)
        args = self.cluster.command_prefix(self) + args
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=self.cluster.node_env(self))
        log.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def stop(self, timeout=15):
        """SIGTERM and wait; returns the exit code."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGCONT)
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("node %d did not stop within %ss of SIGTERM" % (self.id, timeout))

    def status(self, timeout=1.0):
        return self.client.call("Status", timeout=timeout)

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class LocalCluster:
    def __init__(self, platoond, n=3, extra_args=(), log_level="info", addresses=None, tmp=None,
                 tls=True, tools=None, http=False):
        """platoond: the node program (or another program on the node runtime that takes
        platoond's flags, such as examples/kv's kv-server).
        addresses: {id: "host:port"} of the founding nodes (default: n free loopback ports).
        tmp: the directory for data and logs, left in place by close() (default: a temporary
        directory of the cluster's own, removed by close()).
        tls: run with mutual TLS (a PKI of the cluster's own under tmp/pki, made with
        platoonctl certs), as users do; False runs the nodes with --insecure.
        tools: the folder holding platoonctl (default: the node program's).
        http: give every founding node a monitoring endpoint (--http) on a free loopback port
        (NodeProc.http_address; harness/http.py makes the requests)."""
        self.platoond = platoond
        self.own_tmp = tmp is None
        self.tmp = tempfile.mkdtemp(prefix="platoon-cluster-") if tmp is None else tmp
        tools = tools or os.path.dirname(os.path.abspath(platoond))
        self.pki = Pki(tools, os.path.join(self.tmp, "pki")) if tls else None
        self.extra_args = list(extra_args)
        self.log_level = log_level
        if addresses is None:
            ports = free_ports(n)
            addresses = {i + 1: "127.0.0.1:%d" % ports[i] for i in range(n)}
        self.nodes = {i: self.make_node(i, a) for i, a in sorted(addresses.items())}
        if http:
            for node, port in zip(self.nodes.values(), free_ports(len(self.nodes))):
                node.http_address = "127.0.0.1:%d" % port
        self.members = dict(self.nodes)
        atexit.register(self.close)

    def make_node(self, node_id, address):
        return NodeProc(self, node_id, address)

    def credentials(self, name="harness-admin", role="admin", vehicle=None):
        """Channel credentials of a client of this cluster (None without TLS)."""
        return self.pki.credentials(name, role, vehicle) if self.pki else None

    def client(self, node_id, name, role, vehicle=None):
        """A client of node `node_id` that authenticates as `name` with `role`."""
        return api.Node(self.nodes[node_id].address, self.credentials(name, role, vehicle))

    def ctl_env(self, name="harness-admin", role="admin", vehicle=None):
        """Environment variables that make platoonctl a client of this cluster."""
        return self.pki.ctl_env(name, role, vehicle) if self.pki else {}

    def node_hosts(self, node):
        """The hosts a node's certificate is valid for: where clients reach it."""
        return [node.address.rsplit(":", 1)[0]]

    def security_flags(self, node):
        if self.pki is None:
            return ["--insecure"]
        return self.pki.node_flags(node.id, self.node_hosts(node))

    def command_prefix(self, node):
        """What runs platoond for `node` (e.g. a namespace switch); nothing by default."""
        return []

    def node_env(self, node):
        """The environment of `node`'s process; None inherits this process's."""
        return None

    def initial_cluster(self):
        return ",".join("%d=%s" % (i, n.address) for i, n in sorted(self.members.items()))

    def start(self):
        for n in self.nodes.values():
            n.start()
        return self

    def add_node(self, node_id, address=None):
        if address is None:
            address = "127.0.0.1:%d" % free_ports(1)[0]
        n = self.make_node(node_id, address)
        self.nodes[node_id] = n
        return n

    def endpoints(self):
        return ",".join(n.address for n in self.nodes.values())

    def wait_for_leader(self, timeout=20.0, exclude=()):
        """The id of a leader that every live node reporting one agrees on."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leaders = set()
            for n in self.nodes.values():
                if not n.alive() or n.id in exclude:
                    continue
                try:
                    st = n.status(timeout=0.5)
                except grpc.RpcError:
                    continue
                if st.role == api.M["ROLE_LEADER"]:
                    leaders.add(n.id)
            if len(leaders) == 1:
                return leaders.pop()
            time.sleep(0.05)
        raise AssertionError("no leader within %.0fs\n%s" % (timeout, self.dump_logs()))

    def wait_converged(self, timeout=20.0):
        """Waits until every live node has applied the same index; returns it."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            applied = []
            for n in self.nodes.values():
                if not n.alive():
                    continue
                try:
                    applied.append(n.status(timeout=0.5).applied_index)
                except grpc.RpcError:
                    applied.append(None)
            last = applied
            if applied and None not in applied and len(set(applied)) == 1:
                return applied[0]
            time.sleep(0.05)
        raise AssertionError("nodes did not converge: applied %s\n%s" % (last, self.dump_logs()))

    def dump_logs(self, tail=40):
        out = []
        for n in self.nodes.values():
            lines = n.log().splitlines()[-tail:]
            out.append("---- node %d (%s) ----\n%s" % (n.id, n.address, "\n".join(lines)))
        return "\n".join(out)

    def close(self):
        for n in self.nodes.values():
            if n.alive():
                try:
                    n.proc.send_signal(signal.SIGCONT)
                    n.proc.kill()
                    n.proc.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            n.client.close()
        if self.tmp and os.path.isdir(self.tmp) and self.own_tmp:
            if os.environ.get("PLATOON_KEEP_CLUSTER_DIR"):
                print("cluster files kept in", self.tmp)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp = None
