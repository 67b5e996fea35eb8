"""platoonctl certs: the PKI it makes follows docs/security.md (names, alternative names, key
usages, lifetimes, key modes), revocation lists are signed by the CA and list what was revoked,
and every mistake on its command line is one line and exit code 2."""

import datetime
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

from harness import testing  # noqa: E402


def load(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def attr(cert, oid):
    return [a.value for a in cert.subject.get_attributes_for_oid(oid)]


class Certs(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="platoon-certs-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.ctl = os.path.join(testing.BIN, "platoonctl")

    def certs(self, *args, ok=True):
        r = subprocess.run([self.ctl, "certs"] + list(args) + ["--dir", self.dir],
                           capture_output=True, text=True, timeout=60)
        if ok:
            self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def path(self, name):
        return os.path.join(self.dir, name)

    def test_the_pki_follows_the_convention(self):
        old = os.umask(0)  # keys must be 0600 whatever the umask
        try:
            self.certs("ca", "--name", "Test CA")
            self.certs("node", "--id", "3", "--host", "127.0.0.1,node3.example.org,::1")
            self.certs("client", "--name", "truck-7", "--role", "writer", "--vehicle", "7")
            self.certs("client", "--name", "ops", "--role", "admin", "--days", "30")
        finally:
            os.umask(old)
        ca = load(self.path("ca.pem"))
        self.assertTrue(ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
        self.assertEqual(attr(ca, NameOID.COMMON_NAME), ["Test CA"])
        for key in ("ca.key", "node-3.key", "truck-7.key", "ops.key"):
            self.assertEqual(stat.S_IMODE(os.stat(self.path(key)).st_mode), 0o600, key)

        node = load(self.path("node-3.pem"))
        self.assertEqual(attr(node, NameOID.COMMON_NAME), ["node-3"])
        self.assertEqual(attr(node, NameOID.ORGANIZATIONAL_UNIT_NAME), ["node"])
        self.assertEqual(attr(node, NameOID.ORGANIZATION_NAME), ["platoon"])
        san = node.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertEqual(san.get_values_for_type(x509.DNSName), ["node-3", "node3.example.org"])
        self.assertEqual(sorted(str(a) for a in san.get_values_for_type(x509.IPAddress)),
                         ["127.0.0.1", "::1"])
        eku = node.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        self.assertEqual(set(eku), {ExtendedKeyUsageOID.SERVER_AUTH,
                                    ExtendedKeyUsageOID.CLIENT_AUTH})
        self.assertIsInstance(node.public_key(), ec.EllipticCurvePublicKey)
        self.assertEqual(node.public_key().curve.name, "secp256r1")
        self.assertEqual(node.issuer, ca.subject)
        ca.public_key().verify(node.signature, node.tbs_certificate_bytes,
                               ec.ECDSA(node.signature_hash_algorithm))
        life = node.not_valid_after - node.not_valid_before
        self.assertTrue(datetime.timedelta(days=364) < life < datetime.timedelta(days=366))
        self.assertGreater(node.serial_number.bit_length(), 100)

        truck = load(self.path("truck-7.pem"))
        self.assertEqual(attr(truck, NameOID.ORGANIZATIONAL_UNIT_NAME), ["writer"])
        san = truck.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertEqual(san.get_values_for_type(x509.UniformResourceIdentifier),
                         ["urn:platoon:vehicle:7"])
        eku = truck.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        self.assertEqual(list(eku), [ExtendedKeyUsageOID.CLIENT_AUTH])
        ops = load(self.path("ops.pem"))
        self.assertLess(ops.not_valid_after - ops.not_valid_before, datetime.timedelta(days=31))
        self.assertNotEqual(ops.serial_number, truck.serial_number)

    def test_revocation_lists_are_signed_and_cumulative(self):
        self.certs("ca")
        self.certs("client", "--name", "a", "--role", "reader")
        self.certs("client", "--name", "b", "--role", "reader")
        self.certs("revoke", "--cert", self.path("a.pem"))
        self.certs("revoke", "--cert", self.path("b.pem"))
        self.certs("revoke", "--cert", self.path("b.pem"))  # again: no change, no error
        with open(self.path("crl.pem"), "rb") as f:
            crl = x509.load_pem_x509_crl(f.read())
        ca = load(self.path("ca.pem"))
        self.assertTrue(crl.is_signature_valid(ca.public_key()))
        self.assertEqual(sorted(r.serial_number for r in crl),
                         sorted([load(self.path("a.pem")).serial_number,
                                 load(self.path("b.pem")).serial_number]))
        # A certificate of another CA cannot be revoked here.
        other = tempfile.mkdtemp(prefix="platoon-certs-other-")
        self.addCleanup(shutil.rmtree, other, True)
        subprocess.run([self.ctl, "certs", "ca", "--dir", other], check=True,
                       capture_output=True)
        subprocess.run([self.ctl, "certs", "client", "--dir", other, "--name", "x", "--role",
                        "reader"], check=True, capture_output=True)
        r = self.certs("revoke", "--cert", os.path.join(other, "x.pem"), ok=False)
        self.assertEqual(r.returncode, 2, r.stderr)

    def test_mistakes_are_one_line_and_exit_2(self):
        r = self.certs("node", "--id", "1", "--host", "h", ok=False)  # no CA yet
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("certs ca", r.stderr)
        self.certs("ca")
        self.certs("client", "--name", "taken", "--role", "reader")
        cases = [
            ["ca"],                                                  # a CA exists
            ["node", "--id", "0", "--host", "h"],
            ["node", "--id", "x", "--host", "h"],
            ["node", "--id", "1"],                                   # no host
            ["node", "--id", "1", "--host", "bad host"],
            ["client", "--name", "z", "--role", "root"],
            ["client", "--name", "node-1", "--role", "admin"],
            ["client", "--name", "a b", "--role", "admin"],
            ["client", "--name", "z"],                              # no role
            ["client", "--name", "z", "--role", "writer", "--vehicle", "0"],
            ["client", "--name", "taken", "--role", "reader"],      # exists
            ["client", "--name", "z", "--role", "reader", "--id", "3"],
            ["revoke"],
            ["frobnicate"],
            ["node", "--id", "2", "--host", "h", "--days", "0"],
        ]
        for args in cases:
            r = self.certs(*args, ok=False)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, (args, r.stderr))
        r = subprocess.run([self.ctl, "certs", "--help"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertIn("revoke", r.stdout)
        # --force replaces what exists.
        before = load(self.path("taken.pem")).serial_number
        self.certs("client", "--name", "taken", "--role", "reader", "--force")
        self.assertNotEqual(load(self.path("taken.pem")).serial_number, before)


if __name__ == "__main__":
    testing.main()
