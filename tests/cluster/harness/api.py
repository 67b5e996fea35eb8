"""A Python client of Platoon's public API, built from the project's own .proto files.

The message classes are generated at run time from `protoc --descriptor_set_out`, never from
checked-in generated code, so every test that uses this client also proves that the .proto files
are the real contract of the server (a second gRPC implementation talking to platoond).
Needs Debian's python3-grpcio, python3-protobuf and protobuf-compiler.
"""

import os
import subprocess
import tempfile

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PROTO_DIR = os.path.join(ROOT, "proto")


def load_messages(rel_path, proto_dir=PROTO_DIR):
    """The message classes and enum values of `rel_path` (under `proto_dir`), by name."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "set.pb")
        subprocess.run(
            ["protoc", "--proto_path=" + proto_dir, "--include_imports",
             "--descriptor_set_out=" + out, rel_path],
            check=True,
        )
        with open(out, "rb") as f:
            fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    classes = {}
    for fd in fds.file:
        desc = pool.FindFileByName(fd.name)
        for name, mdesc in desc.message_types_by_name.items():
            classes[name] = message_factory.GetMessageClass(mdesc) if hasattr(
                message_factory, "GetMessageClass") else message_factory.MessageFactory(pool).GetPrototype(mdesc)
        for name, edesc in desc.enum_types_by_name.items():
            for v in edesc.values:
                classes[v.name] = v.number
    return classes


_load_messages = load_messages  # the name older tests use
M = load_messages("platoon/v1/platoon.proto")

_METHODS = {
    "UpdateVehicle": ("platoon.v1.Platoon", "UpdateVehicleRequest", "UpdateVehicleResponse"),
    "DeleteVehicle": ("platoon.v1.Platoon", "DeleteVehicleRequest", "DeleteVehicleResponse"),
    "GetVehicle": ("platoon.v1.Platoon", "GetVehicleRequest", "GetVehicleResponse"),
    "GetPlatoon": ("platoon.v1.Platoon", "GetPlatoonRequest", "GetPlatoonResponse"),
    "OpenSession": ("platoon.v1.Platoon", "OpenSessionRequest", "OpenSessionResponse"),
    "CloseSession": ("platoon.v1.Platoon", "CloseSessionRequest", "CloseSessionResponse"),
    "Status": ("platoon.v1.Cluster", "StatusRequest", "StatusResponse"),
    "AddMember": ("platoon.v1.Cluster", "AddMemberRequest", "AddMemberResponse"),
    "RemoveMember": ("platoon.v1.Cluster", "RemoveMemberRequest", "RemoveMemberResponse"),
    "TransferLeadership": ("platoon.v1.Cluster", "TransferLeadershipRequest",
                           "TransferLeadershipResponse"),
    "Snapshot": ("platoon.v1.Cluster", "SnapshotRequest", "SnapshotResponse"),
}


class Node:
    """Stubs for every method of both services on one endpoint ("host:port")."""

    def __init__(self, endpoint, credentials=None):
        """credentials: grpc.ssl_channel_credentials for a TLS cluster (see pki.Pki), or None
        for a cluster run with --insecure."""
        self.endpoint = endpoint
        options = [("grpc.initial_reconnect_backoff_ms", 100),
                   # gRPC takes this as the least time a connection attempt is given
                   # (TCP and TLS handshakes), not as a back-off: a loaded node needs more
                   # than 100 ms.
                   ("grpc.min_reconnect_backoff_ms", 2000),
                   ("grpc.max_reconnect_backoff_ms", 200)]
        if credentials is None:
            self.channel = grpc.insecure_channel(endpoint, options=options)
        else:
            self.channel = grpc.secure_channel(endpoint, credentials, options=options)
        for name, (service, req, resp) in _METHODS.items():
            setattr(self, "_" + name, self.channel.unary_unary(
                "/%s/%s" % (service, name),
                request_serializer=M[req].SerializeToString,
                response_deserializer=M[resp].FromString,
            ))

        self._WatchPlatoon = self.channel.unary_stream(
            "/platoon.v1.Platoon/WatchPlatoon",
            request_serializer=M["WatchPlatoonRequest"].SerializeToString,
            response_deserializer=M["WatchPlatoonResponse"].FromString,
        )

    def watch(self, timeout=None, **fields):
        """Opens WatchPlatoon with a request built from `fields` (from_revision, ids,
        consistency); returns the response iterator (a grpc call: .cancel() ends it)."""
        return self._WatchPlatoon(M["WatchPlatoonRequest"](**fields), timeout=timeout,
                                  wait_for_ready=True)

    def call(self, method, timeout=2.0, **fields):
        """Calls `method` with a request built from `fields`; raises grpc.RpcError on failure."""
        req_name = _METHODS[method][1]
        # wait_for_ready: a channel whose first connection failed (a node still starting, or
        # restarting) would otherwise fail fast until its reconnect back-off ends.
        return getattr(self, "_" + method)(M[req_name](**fields), timeout=timeout,
                                           wait_for_ready=True)

    def close(self):
        self.channel.close()


def vehicle(vid, lat=0.0, lon=0.0, speed=0.0, heading=0.0):
    return M["Vehicle"](id=vid, latitude=lat, longitude=lon, speed=speed, heading=heading)


class WatchState:
    """What a client of WatchPlatoon holds: the platoon as its events rebuild it (the rules of
    the .proto), and the revision it may resume from."""

    def __init__(self):
        self.vehicles = {}  # id -> Vehicle
        self.revision = None  # of the full state, then of the last change applied
        self.in_initial = False
        self.initial_revision = None
        self.last_change = 0
        self.resets = 0  # full states received

    def apply(self, msg):
        """Applies one WatchPlatoonResponse; raises AssertionError when the stream breaks a
        rule (a change out of order, an initial state in pieces of different revisions)."""
        if msg.initial:
            if msg.initial_begin:
                self.vehicles = {}
                self.in_initial = True
                self.initial_revision = msg.revision
                self.resets += 1
            assert self.in_initial, "an initial message without initial_begin"
            assert msg.revision == self.initial_revision, "initial state pieces disagree"
            for e in msg.events:
                assert e.type == M["WatchEvent"].PUT, "a DELETE in an initial state"
                assert e.id not in self.vehicles, "vehicle %d twice in an initial state" % e.id
                self.vehicles[e.id] = e.vehicle
            if msg.initial_end:
                self.in_initial = False
                self.revision = msg.revision
                self.last_change = msg.revision
            return
        assert not self.in_initial, "a change inside an initial state"
        for e in msg.events:
            assert e.revision > self.last_change, "change %d after %d" % (e.revision,
                                                                          self.last_change)
            self.last_change = e.revision
            if e.type == M["WatchEvent"].PUT:
                assert e.vehicle.revision == e.revision
                self.vehicles[e.id] = e.vehicle
            else:
                assert e.id in self.vehicles, "DELETE of vehicle %d, which is not held" % e.id
                del self.vehicles[e.id]
        if msg.events:
            assert msg.revision == msg.events[-1].revision
        self.revision = self.last_change

    def snapshot(self):
        """{id: (latitude, longitude, speed, heading, revision)}"""
        return {i: (v.latitude, v.longitude, v.speed, v.heading, v.revision)
                for i, v in self.vehicles.items()}
