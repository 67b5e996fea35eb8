"""A test PKI made with `platoonctl certs`: one CA, node certificates, client certificates.

The cluster tests run with TLS on, as users do (docs/security.md); a Pki is the directory of
one cluster's certificates. Certificates are made on first use and kept: asking twice for the
same node or client returns the same files.
"""

import os
import subprocess


class Pki:
    def __init__(self, bin_dir, directory):
        self.platoonctl = os.path.join(bin_dir, "platoonctl")
        self.dir = directory
        os.makedirs(self.dir, exist_ok=True)
        self.ca = os.path.join(self.dir, "ca.pem")
        self.crl = os.path.join(self.dir, "crl.pem")
        if not os.path.exists(self.ca):
            self._certs("ca")

    def _certs(self, *args):
        r = subprocess.run([self.platoonctl, "certs"] + list(args) + ["--dir", self.dir],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if r.returncode != 0:
            raise AssertionError("platoonctl certs %s failed (%d): %s" % (
                " ".join(args), r.returncode, r.stderr.decode(errors="replace")))
        return r

    def node(self, node_id, hosts=("127.0.0.1",)):
        """(cert, key) of node `node_id`, valid for `hosts`."""
        cert = os.path.join(self.dir, "node-%d.pem" % node_id)
        key = os.path.join(self.dir, "node-%d.key" % node_id)
        if not os.path.exists(cert):
            self._certs("node", "--id", str(node_id), "--host", ",".join(hosts))
        return cert, key

    def client(self, name, role="admin", vehicle=None):
        """(cert, key) of client `name` with `role`, bound to `vehicle` if given."""
        cert = os.path.join(self.dir, "%s.pem" % name)
        key = os.path.join(self.dir, "%s.key" % name)
        if not os.path.exists(cert):
            args = ["client", "--name", name, "--role", role]
            if vehicle is not None:
                args += ["--vehicle", str(vehicle)]
            self._certs(*args)
        return cert, key

    def revoke(self, cert):
        self._certs("revoke", "--cert", cert)

    def node_flags(self, node_id, hosts=("127.0.0.1",)):
        cert, key = self.node(node_id, hosts)
        flags = ["--tls-ca", self.ca, "--tls-cert", cert, "--tls-key", key]
        if os.path.exists(self.crl):
            flags += ["--tls-crl", self.crl]
        return flags

    def ctl_env(self, name="harness-admin", role="admin", vehicle=None):
        """The environment that makes platoonctl use client `name`'s certificate."""
        cert, key = self.client(name, role, vehicle)
        return {"PLATOON_CACERT": self.ca, "PLATOON_CERT": cert, "PLATOON_KEY": key}

    def credentials(self, name="harness-admin", role="admin", vehicle=None):
        """gRPC channel credentials of client `name` (for harness.api.Node)."""
        import grpc
        cert, key = self.client(name, role, vehicle)
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca), private_key=_read(key), certificate_chain=_read(cert))


def _read(path):
    with open(path, "rb") as f:
        return f.read()
