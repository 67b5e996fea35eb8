"""Security end to end (docs/security.md): mutual TLS on every connection, identities from
certificates, roles and per-vehicle write scope, revocation and rotation by SIGHUP.

Each attack that once took over an unauthenticated cluster is replayed here against a TLS
cluster, by an outsider without a certificate, by a client with a certificate of its own, and
by a node certificate speaking for another node: each must be refused and leave every node's
term, log, membership and vehicles as they were.
"""

import os
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

from harness import api, testing  # noqa: E402
from harness.cluster import LocalCluster  # noqa: E402

R = api._load_messages("platoon/raft/v1/raft.proto")
U64_MAX = 2**64 - 1


def read(path):
    with open(path, "rb") as f:
        return f.read()


class Lane:
    """A hand-made peer lane: what an attacker with some credentials can send a node."""

    def __init__(self, address, credentials=None, target=None):
        options = [("grpc.ssl_target_name_override", target)] if target else []
        if credentials is None:
            self.channel = grpc.insecure_channel(address, options=options)
        else:
            self.channel = grpc.secure_channel(address, credentials, options=options)

    def send(self, lane, messages, sender_id=None, timeout=3.0):
        """Sends one batch on lane `lane`; returns the status code it ended with."""
        call = self.channel.stream_unary(
            "/platoon.raft.v1.Raft/" + lane,
            request_serializer=R["RaftBatch"].SerializeToString,
            response_deserializer=R["StreamSummary"].FromString)
        md = [("platoon-sender-id", str(sender_id))] if sender_id is not None else None
        try:
            call(iter([R["RaftBatch"](messages=messages)]), timeout=timeout, metadata=md)
            return grpc.StatusCode.OK
        except grpc.RpcError as e:
            return e.code()

    def send_raw(self, lane, data, timeout=3.0):
        call = self.channel.stream_unary("/platoon.raft.v1.Raft/" + lane,
                                         request_serializer=lambda b: b,
                                         response_deserializer=lambda b: b)
        try:
            call(iter([data]), timeout=timeout)
            return grpc.StatusCode.OK
        except grpc.RpcError as e:
            return e.code()

    def close(self):
        self.channel.close()


def forged_attacks(frm, to, leader):
    """(lane, [RaftMessage]) of every forgery an attacker tried, aimed at node `to` and claiming
    to come from node `frm`."""
    msg = R["RaftMessage"]
    vehicle_entry = R["Entry"](term=U64_MAX - 5, index=10**6, type=R["ENTRY_TYPE_NORMAL"],
                               data=b"\x01\x02forged-vehicle")
    garbage_entry = R["Entry"](term=U64_MAX - 5, index=10**6, type=R["ENTRY_TYPE_NORMAL"],
                               data=b"\xff" * 32)
    meta = R["SnapshotMeta"](index=10**6, term=U64_MAX - 5, size=4, checksum=0,
                             config=R["Config"](members=[R["Member"](id=99, role=1,
                                                                     address="127.0.0.1:1")]))
    return [
        ("RequestVote", [msg(**{"from": frm, "to": to, "vote": R["RequestVoteRequest"](
            term=U64_MAX, last_index=U64_MAX, last_term=U64_MAX)})]),
        ("RequestVote", [msg(**{"from": 99, "to": to, "vote": R["RequestVoteRequest"](
            term=U64_MAX - 5, last_index=U64_MAX, last_term=U64_MAX - 5)})]),
        ("AppendEntries", [msg(**{"from": leader, "to": to, "append": R["AppendEntriesRequest"](
            term=U64_MAX - 5, prev_index=10**6 - 1, prev_term=0, commit=10**6,
            entries=[garbage_entry])})]),
        ("AppendEntries", [msg(**{"from": leader, "to": to, "append": R["AppendEntriesRequest"](
            term=U64_MAX - 5, prev_index=10**6 - 1, prev_term=0, commit=10**6,
            entries=[vehicle_entry])})]),
        ("AppendEntries", [msg(**{"from": 99, "to": to, "heartbeat": R["HeartbeatRequest"](
            term=U64_MAX - 5, commit=10**6)})]),
        ("InstallSnapshot", [msg(**{"from": leader, "to": to, "snapshot":
                                    R["InstallSnapshotRequest"](term=U64_MAX - 5, meta=meta,
                                                                offset=0, data=b"evil",
                                                                done=True)})]),
    ]


class SecurityTest(unittest.TestCase):
    nodes = 3

    def setUp(self):
        self.cluster = LocalCluster(testing.platoond(), n=self.nodes, extra_args=testing.FAST)
        self.addCleanup(self.cluster.close)
        self.cluster.start()
        self.leader = self.cluster.wait_for_leader()
        self.pki = self.cluster.pki
        self.admin = self.cluster.nodes[1].client
        api_retry(lambda: self.admin.call("UpdateVehicle", vehicle=api.vehicle(1, 48.1, 11.5,
                                                                               20.0, 90.0)))
        self.cluster.wait_converged()

    # ---- helpers ---------------------------------------------------------------------------

    def snapshot_state(self):
        """Every node's (term, last log index, commit, membership, vehicles)."""
        out = {}
        for i, n in self.cluster.nodes.items():
            st = n.status()
            members = sorted((m.id, m.voter, m.address) for m in st.members)
            vehicles = sorted((v.id, v.latitude, v.revision) for v in self.admin_of(i).call(
                "GetPlatoon", consistency=api.M["READ_CONSISTENCY_STALE"]).vehicles)
            out[i] = (st.term, st.last_index, st.commit_index, members, vehicles)
        return out

    def admin_of(self, i):
        return self.cluster.nodes[i].client

    def assert_unchanged(self, before, what):
        time.sleep(0.5)  # let anything that got in take effect
        after = self.snapshot_state()
        self.assertEqual(before, after, "%s changed the cluster\n%s" % (
            what, self.cluster.dump_logs()))

    def creds(self, name, role="writer", vehicle=None):
        return self.pki.credentials(name, role, vehicle)

    def expect_code(self, code, fn, what):
        try:
            fn()
        except grpc.RpcError as e:
            self.assertEqual(e.code(), code, "%s: %s %s" % (what, e.code(), e.details()))
            return e.details()
        self.fail("%s was not refused" % what)

    # ---- connections ------------------------------------------------------------------------

    def test_callers_without_a_valid_certificate_are_refused(self):
        addr = self.cluster.nodes[1].address
        other = os.path.join(self.cluster.tmp, "other-pki")
        from harness.pki import Pki
        stranger = Pki(testing.BIN, other)
        cert, key = stranger.client("mallory", "admin")
        bad = {
            "plaintext": grpc.insecure_channel(addr),
            "no client certificate": grpc.secure_channel(
                addr, grpc.ssl_channel_credentials(root_certificates=read(self.pki.ca))),
            "a certificate of another CA": grpc.secure_channel(
                addr, grpc.ssl_channel_credentials(read(self.pki.ca), read(key), read(cert))),
            "an expired certificate": grpc.secure_channel(
                addr, expired_credentials(self.pki, self.cluster.tmp)),
        }
        for what, ch in bad.items():
            stub = ch.unary_unary("/platoon.v1.Platoon/GetPlatoon",
                                  request_serializer=api.M["GetPlatoonRequest"].SerializeToString,
                                  response_deserializer=api.M["GetPlatoonResponse"].FromString)
            with self.assertRaises(grpc.RpcError, msg=what) as cm:
                stub(api.M["GetPlatoonRequest"](), timeout=2)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE, what)
            ch.close()
        # The cluster itself is untouched and serves a proper client.
        self.assertEqual(len(self.admin.call("GetPlatoon").vehicles), 1)

    def test_a_revoked_certificate_is_refused_after_sighup(self):
        c = self.cluster.client(1, "soon-revoked", "writer")
        c.call("UpdateVehicle", vehicle=api.vehicle(2, 1.0, 2.0, 3.0, 4.0), timeout=5)
        cert, _ = self.pki.client("soon-revoked", "writer")
        self.pki.revoke(cert)
        for n in self.cluster.nodes.values():
            n.proc.send_signal(signal.SIGHUP)
        # The same connection is refused from its next call on: verdicts are dropped on reload.
        deadline = time.monotonic() + 10
        while True:
            try:
                c.call("GetPlatoon")
            except grpc.RpcError as e:
                self.assertEqual(e.code(), grpc.StatusCode.UNAUTHENTICATED, e.details())
                self.assertIn("revoked", e.details())
                break
            self.assertLess(time.monotonic(), deadline, "revocation not applied after SIGHUP")
            time.sleep(0.1)
        # ...and so is a new connection, on every node.
        for i in self.cluster.nodes:
            again = self.cluster.client(i, "soon-revoked", "writer")
            self.expect_code(grpc.StatusCode.UNAUTHENTICATED, lambda: again.call("GetPlatoon"),
                             "revoked certificate on node %d" % i)
            again.close()
        self.expect_code(grpc.StatusCode.UNAUTHENTICATED, lambda: c.call(
            "UpdateVehicle", vehicle=api.vehicle(2, 9.0, 2.0, 3.0, 4.0)), "revoked writer")
        got = {v.id: v.latitude for v in self.admin.call("GetPlatoon").vehicles}
        self.assertEqual(got[2], 1.0)
        self.assertIn("revoked", self.cluster.nodes[1].log())

    # ---- the peer protocol ------------------------------------------------------------------

    def test_forged_peer_traffic_is_refused_and_changes_nothing(self):
        target = 2 if self.leader != 2 else 3
        addr = self.cluster.nodes[target].address
        before = self.snapshot_state()
        impostor = 1 if target != 1 else 3
        icert, ikey = self.pki.node(impostor)
        attackers = {
            "an outsider in plaintext": (Lane(addr), None, grpc.StatusCode.UNAVAILABLE),
            "a client certificate": (Lane(addr, self.creds("eve", "admin")), None,
                                     grpc.StatusCode.PERMISSION_DENIED),
            "node %d's certificate announcing node 3" % impostor: (
                Lane(addr, grpc.ssl_channel_credentials(read(self.pki.ca), read(ikey),
                                                        read(icert))),
                3 if impostor != 3 else 1, grpc.StatusCode.PERMISSION_DENIED),
        }
        for who, (lane, sender, expected) in attackers.items():
            for lane_name, msgs in forged_attacks(frm=self.leader if sender is None else sender,
                                                  to=target, leader=self.leader):
                if sender is not None:
                    for m in msgs:
                        setattr(m, "from", sender)
                code = lane.send(lane_name, msgs, sender_id=sender if sender else 1)
                self.assertEqual(code, expected, "%s, %s: %s" % (who, lane_name, code))
            code = lane.send_raw("AppendEntries", os.urandom(200))
            self.assertEqual(code, expected, "%s, random bytes" % who)
            lane.close()
        self.assert_unchanged(before, "forged peer traffic")
        log = self.cluster.nodes[target].log()
        self.assertIn("eve", log)
        self.assertEqual(log.count("refused a peer lane: only node certificates may use the peer "
                                   "protocol, not client 'eve'"), 1, log)

    def test_a_node_speaking_for_another_inside_its_lane_is_cut_off(self):
        target = 2 if self.leader != 2 else 3
        impostor = 1 if target != 1 else 3
        other = ({1, 2, 3} - {target, impostor}).pop()
        icert, ikey = self.pki.node(impostor)
        lane = Lane(self.cluster.nodes[target].address,
                    grpc.ssl_channel_credentials(read(self.pki.ca), read(ikey), read(icert)))
        before = self.snapshot_state()
        msgs = [R["RaftMessage"](**{"from": other, "to": target, "vote": R["RequestVoteRequest"](
            term=U64_MAX - 5, last_index=U64_MAX, last_term=U64_MAX - 5)})]
        code = lane.send("RequestVote", msgs, sender_id=impostor)
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED)
        lane.close()
        self.assert_unchanged(before, "a node speaking for another")

    # ---- roles and scope --------------------------------------------------------------------

    def test_roles_and_vehicle_scope(self):
        follower = 2 if self.leader != 2 else 3
        for via in (self.leader, follower):  # directly and forwarded by a follower
            reader = self.cluster.client(via, "rita", "reader")
            writer = self.cluster.client(via, "walt", "writer")
            v7 = self.cluster.client(via, "truck-7", "writer", vehicle=7)
            self.assertEqual(len(reader.call("GetPlatoon").vehicles) >= 1, True)
            reader.call("Status")
            d = self.expect_code(grpc.StatusCode.PERMISSION_DENIED, lambda: reader.call(
                "UpdateVehicle", vehicle=api.vehicle(5, 1.0)), "reader writing")
            self.assertIn("rita", d)
            self.assertIn("writer", d)
            writer.call("UpdateVehicle", vehicle=api.vehicle(5, 1.0), timeout=5)
            d = self.expect_code(grpc.StatusCode.PERMISSION_DENIED, lambda: writer.call(
                "AddMember", id=9, address="127.0.0.1:1", learner=True), "writer adding a member")
            self.assertIn("walt", d)
            self.assertIn("admin", d)
            for m, kw in (("RemoveMember", {"id": 3}), ("TransferLeadership", {}),
                          ("Snapshot", {})):
                self.expect_code(grpc.StatusCode.PERMISSION_DENIED, lambda: writer.call(m, **kw),
                                 "writer calling " + m)
            v7.call("UpdateVehicle", vehicle=api.vehicle(7, 2.0), timeout=5)
            d = self.expect_code(grpc.StatusCode.PERMISSION_DENIED, lambda: v7.call(
                "UpdateVehicle", vehicle=api.vehicle(8, 2.0)), "vehicle 7 moving vehicle 8")
            self.assertIn("vehicle 7 only", d)
            self.expect_code(grpc.StatusCode.PERMISSION_DENIED,
                             lambda: v7.call("DeleteVehicle", id=1), "vehicle 7 deleting 1")
        ids = sorted(v.id for v in self.admin.call("GetPlatoon").vehicles)
        self.assertEqual(ids, [1, 5, 7])
        self.assertEqual(len(self.cluster.nodes[1].status().members), 3)

    def test_only_nodes_may_forward_an_identity(self):
        writer = self.cluster.client(self.leader, "walt", "writer")
        stub = writer.channel.unary_unary(
            "/platoon.v1.Cluster/AddMember",
            request_serializer=api.M["AddMemberRequest"].SerializeToString,
            response_deserializer=api.M["AddMemberResponse"].FromString)
        with self.assertRaises(grpc.RpcError) as cm:
            stub(api.M["AddMemberRequest"](id=9, address="127.0.0.1:1", learner=True), timeout=3,
                 metadata=[("platoon-principal", "node;id=1")])
        self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn("walt", cm.exception.details())
        self.assertEqual(len(self.admin.call("Status").members), 3)

    # ---- rotation ---------------------------------------------------------------------------

    def test_rotation_by_sighup_under_load_loses_nothing(self):
        acked, errors, stop = {}, [], threading.Event()
        writer = self.cluster.client(1, "loader", "writer")
        sid = writer.call("OpenSession", timeout=10).client_id

        def load():
            seq = 0
            while not stop.is_set():
                seq += 1
                try:
                    writer.call("UpdateVehicle", vehicle=api.vehicle(100 + seq % 20, float(seq)),
                                client_id=sid, sequence=seq, timeout=3)
                    acked[100 + seq % 20] = float(seq)
                except grpc.RpcError as e:
                    errors.append(e.code())
                time.sleep(0.005)

        t = threading.Thread(target=load)
        t.start()
        try:
            time.sleep(0.5)
            for i, n in sorted(self.cluster.nodes.items()):
                cert, key = self.pki.node(i)
                os.remove(cert)
                os.remove(key)
                self.pki.node(i)  # a new key and certificate for node i
                n.proc.send_signal(signal.SIGHUP)
                time.sleep(0.7)
                self.assertTrue(n.alive(), n.log())
                self.assertIn("TLS material reloaded", n.log())
        finally:
            stop.set()
            t.join()
        self.assertGreater(len(acked), 0)
        self.cluster.wait_converged()
        got = {v.id: v.latitude for v in self.admin.call("GetPlatoon").vehicles}
        for vid, lat in acked.items():
            self.assertGreaterEqual(got.get(vid, -1), lat, "acknowledged write lost")
        # New connections after the rotation present the new certificates and work.
        fresh = self.cluster.client(2, "after-rotation", "reader")
        fresh.call("GetPlatoon")
        # A bad file on SIGHUP keeps the material in use and says why.
        cert, key = self.pki.node(1)
        with open(key, "w") as f:
            f.write("not a key\n")
        self.cluster.nodes[1].proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        self.assertIn("TLS material not reloaded", self.cluster.nodes[1].log())
        self.cluster.nodes[1].client.call("GetPlatoon")


class StartupTest(unittest.TestCase):
    def test_platoond_refuses_to_start_without_tls_or_insecure(self):
        tmp = LocalCluster(testing.platoond(), n=1, tls=False)
        self.addCleanup(tmp.close)
        n = tmp.nodes[1]
        r = subprocess.run([testing.platoond(), "--id", "1", "--listen", n.address, "--data-dir",
                            n.data_dir, "--initial-cluster", "1=" + n.address],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn(b"--insecure", r.stdout)
        self.assertFalse(os.path.exists(n.data_dir), "a refused start wrote its data directory")

    def test_a_certificate_of_another_node_is_refused_at_start(self):
        c = LocalCluster(testing.platoond(), n=2)
        self.addCleanup(c.close)
        n1 = c.nodes[1]
        cert2, key2 = c.pki.node(2)
        r = subprocess.run([testing.platoond(), "--id", "1", "--listen", n1.address, "--data-dir",
                            n1.data_dir, "--initial-cluster", c.initial_cluster(),
                            "--tls-ca", c.pki.ca, "--tls-cert", cert2, "--tls-key", key2],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn(b"node-2", r.stdout)
        self.assertFalse(os.path.exists(n1.data_dir))

    def test_insecure_logs_a_loud_warning(self):
        c = LocalCluster(testing.platoond(), n=1, tls=False, extra_args=testing.FAST)
        self.addCleanup(c.close)
        c.start()
        c.wait_for_leader()
        self.assertIn("WITHOUT TLS", c.nodes[1].log())


def api_retry(fn, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except grpc.RpcError as e:
            if e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) \
                    or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def expired_credentials(pki, tmp):
    """Credentials of a client certificate of the cluster's CA that expired yesterday."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    ca_cert = x509.load_pem_x509_certificate(read(pki.ca))
    ca_key = serialization.load_pem_private_key(read(os.path.join(pki.dir, "ca.key")), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.utcnow()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old-timer"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "platoon"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "admin")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=30))
            .not_valid_after(now - datetime.timedelta(days=1))
            .sign(ca_key, hashes.SHA256()))
    return grpc.ssl_channel_credentials(
        read(pki.ca),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()),
        cert.public_bytes(serialization.Encoding.PEM))


if __name__ == "__main__":
    testing.main()
