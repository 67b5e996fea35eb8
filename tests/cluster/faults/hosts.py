"""Simulated hosts: one Linux network namespace per node and one for the clients, joined by a
bridge that lives in a namespace of its own.

Nothing here touches the machine's own interfaces, routes or firewall: every link, address and
nftables rule is created inside a namespace this module created, named with the suite's prefix
and the id of the process that owns it, so that concurrent runs never collide and a later run can
remove what a killed one left behind (sweep_stale).

    ptf<pid>x<rand>-br    the bridge "br0" and one port per host (v<host>)
    ptf<pid>x<rand>-n1..  a node host: "eth0" with 10.213.0.(10+k)/24
    ptf<pid>x<rand>-cl    the clients: "eth0" with 10.213.0.100/24

Faults on the network are made here too: nftables drop rules inside a node's namespace (the
only firewall they touch is that namespace's own) and links of the bridge taken down and up.
"""

import os
import re
import secrets
import subprocess

PREFIX = "ptf"
SUBNET = "10.213.0"
CLIENT_ADDR = SUBNET + ".100"
_NAME = re.compile(r"^%s(\d+)x[0-9a-f]+-" % PREFIX)
TABLE = "platoon_nemesis"


class NotRoot(Exception):
    pass


def require_root():
    if os.geteuid() != 0:
        raise NotRoot("the fault-injection suite needs root: it creates network namespaces, "
                      "veth links, nftables rules and a tmpfs (run it as root, e.g. in CI)")


def run(args, check=True, input=None, timeout=20):
    """Runs a command, raising with its stderr when it fails (and check is set)."""
    p = subprocess.run(args, input=input, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(args), p.returncode,
                                                    p.stderr.strip()))
    return p


def in_ns(ns):
    """The prefix that runs a command in network namespace `ns`. nsenter joins the namespace
    only; `ip netns exec` (and `ip -n`) also remount /sys, which fails where / is not a mount
    point (a chroot) and is not needed here."""
    return ["nsenter", "--net=/run/netns/" + ns]


def list_namespaces():
    p = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in p.stdout.splitlines() if line.strip()]


def _kill_namespace(ns):
    """Kills every process inside `ns`, then removes it."""
    p = run(["ip", "netns", "pids", ns], check=False)
    for pid in p.stdout.split():
        try:
            os.kill(int(pid), 9)
        except (ProcessLookupError, ValueError):
            pass
    run(["ip", "netns", "del", ns], check=False)


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def sweep_stale():
    """Removes the namespaces (and their processes) of earlier runs whose owner has died.
    Returns their names."""
    gone = []
    for ns in list_namespaces():
        m = _NAME.match(ns)
        if m and not _alive(int(m.group(1))):
            _kill_namespace(ns)
            gone.append(ns)
    return gone


class Hosts:
    """The namespaces of one run. create() builds them; destroy() always removes them."""

    def __init__(self, n_hosts):
        self.run_id = "%s%dx%s" % (PREFIX, os.getpid(), secrets.token_hex(3))
        self.n_hosts = n_hosts
        self.bridge_ns = self.run_id + "-br"
        self.client_ns = self.run_id + "-cl"
        self.created = []

    def node_ns(self, host):
        return "%s-n%d" % (self.run_id, host)

    def address(self, host):
        return "%s.%d" % (SUBNET, 10 + host)

    def _add_ns(self, ns):
        run(["ip", "netns", "add", ns])
        self.created.append(ns)
        run(in_ns(ns) + ["ip", "link", "set", "lo", "up"])

    def _attach(self, ns, port, addr):
        # The veth is made inside the bridge namespace and its far end moved straight into the
        # host's namespace: it never exists in the machine's own namespace.
        run(in_ns(self.bridge_ns) + ["ip", "link", "add", port, "type", "veth", "peer", "name",
             "eth0", "netns", ns])
        run(in_ns(self.bridge_ns) + ["ip", "link", "set", port, "master", "br0"])
        run(in_ns(self.bridge_ns) + ["ip", "link", "set", port, "up"])
        run(in_ns(ns) + ["ip", "addr", "add", addr + "/24", "dev", "eth0"])
        run(in_ns(ns) + ["ip", "link", "set", "eth0", "up"])

    def create(self):
        self._add_ns(self.bridge_ns)
        run(in_ns(self.bridge_ns) + ["ip", "link", "add", "br0", "type", "bridge"])
        run(in_ns(self.bridge_ns) + ["ip", "link", "set", "br0", "up"])
        for h in range(1, self.n_hosts + 1):
            ns = self.node_ns(h)
            self._add_ns(ns)
            self._attach(ns, "v%d" % h, self.address(h))
            # An empty table of the nemesis' own, with input and output chains to add drops to.
            run(in_ns(ns) + ["nft", "-f", "-"], input=(
                "table inet %s {\n"
                " chain input { type filter hook input priority 0; policy accept; }\n"
                " chain output { type filter hook output priority 0; policy accept; }\n"
                "}\n" % TABLE))
        self._add_ns(self.client_ns)
        self._attach(self.client_ns, "vcl", CLIENT_ADDR)
        return self

    def destroy(self):
        """Kills whatever still runs inside and removes every namespace (links go with them)."""
        for ns in reversed(self.created):
            _kill_namespace(ns)
        self.created = []

    # ----- faults, callable from any namespace (they name the namespace they act in) -----

    def drop(self, host, peer_host, direction):
        """Drops packets at `host` from (direction "in") or to ("out") `peer_host`."""
        chain, field = ("input", "saddr") if direction == "in" else ("output", "daddr")
        run(in_ns(self.node_ns(host)) + ["nft", "add", "rule", "inet", TABLE,
             chain, "ip", field, self.address(peer_host), "drop"])

    def heal(self, host):
        run(in_ns(self.node_ns(host)) + ["nft", "flush", "table", "inet", TABLE])

    def rules(self, host):
        return run(in_ns(self.node_ns(host)) + ["nft", "list", "table", "inet",
                    TABLE]).stdout

    def link(self, host, up):
        run(in_ns(self.bridge_ns) + ["ip", "link", "set", "v%d" % host, "up" if up else "down"])
