#!/usr/bin/python3
"""A small Platoon client in Python: the contract of proto/platoon/v1/platoon.proto in use.

It shows what a client of any language has to do:
  - build its messages from the .proto (here at run time, with protoc, so nothing generated is
    checked in; with grpcio-tools you would generate platoon_pb2 once instead);
  - keep one exactly-once session: open it with OpenSession (its answer is the client_id),
    number the mutations 1, 2, 3, ... in it, one mutation at a time, and close it when done;
  - retry a mutation after UNAVAILABLE or DEADLINE_EXCEEDED with the *same* client_id,
    sequence and content (its outcome is unknown; the cluster applies it at most once), on the
    next endpoint;
  - treat every other status as the answer (NOT_FOUND on a mutation: the session is gone,
    expired or closed; the request was not applied; open a new one).

Needs Debian's python3-grpcio, python3-protobuf and protobuf-compiler.

A cluster runs with mutual TLS unless it was started with --insecure (docs/security.md): give
the CA and this client's certificate and key with --cacert, --cert and --key, or in
$PLATOON_CACERT, $PLATOON_CERT and $PLATOON_KEY, as for platoonctl.

Usage:
    platoon_client.py [--endpoints HOST:PORT,...] update ID LAT LON SPEED HEADING
    platoon_client.py [--endpoints HOST:PORT,...] get ID
    platoon_client.py [--endpoints HOST:PORT,...] delete ID
    platoon_client.py [--endpoints HOST:PORT,...] list [--stale]
(--endpoints defaults to $PLATOON_ENDPOINTS, else 127.0.0.1:7001.)
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto")
RETRIABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def load_messages():
    """The message classes and enum values of platoon.v1, compiled from the .proto."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "set.pb")
        subprocess.run(["protoc", "--proto_path=" + PROTO_DIR, "--include_imports",
                        "--descriptor_set_out=" + out, "platoon/v1/platoon.proto"], check=True)
        with open(out, "rb") as f:
            fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    fd = pool.FindFileByName("platoon/v1/platoon.proto")
    classes = {}
    for name, desc in fd.message_types_by_name.items():
        if hasattr(message_factory, "GetMessageClass"):
            classes[name] = message_factory.GetMessageClass(desc)
        else:
            classes[name] = message_factory.MessageFactory(pool).GetPrototype(desc)
    for edesc in fd.enum_types_by_name.values():
        for v in edesc.values:
            classes[v.name] = v.number
    return classes


M = load_messages()


class PlatoonClient:
    """Calls the Platoon service on a list of endpoints, with one exactly-once session."""

    def __init__(self, endpoints, timeout=5.0, credentials=None):
        """credentials: grpc.ssl_channel_credentials(...) for a TLS cluster, None without."""
        self.endpoints = list(endpoints)
        self.timeout = timeout
        if credentials is None:
            self.channels = [grpc.insecure_channel(e) for e in self.endpoints]
        else:
            self.channels = [grpc.secure_channel(e, credentials) for e in self.endpoints]
        self.preferred = 0
        # The session, opened by the first mutation (OpenSession answers its client_id).
        self.client_id = 0
        self.sequence = 0

    def _call(self, method, request, response):
        """One request, tried on each endpoint in turn until one answers or time runs out.
        Safe for reads, and for mutations because each retry repeats the same request."""
        deadline = time.monotonic() + self.timeout
        last = None
        while time.monotonic() < deadline:
            for k in range(len(self.channels)):
                i = (self.preferred + k) % len(self.channels)
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                stub = self.channels[i].unary_unary(
                    "/platoon.v1.Platoon/" + method,
                    request_serializer=M[request.DESCRIPTOR.name].SerializeToString,
                    response_deserializer=M[response].FromString)
                try:
                    answer = stub(request, timeout=left)
                    self.preferred = i
                    return answer
                except grpc.RpcError as e:
                    if e.code() not in RETRIABLE:
                        raise  # the cluster's answer: INVALID_ARGUMENT, NOT_FOUND, ...
                    last = e
            time.sleep(0.1)  # every endpoint is down or without a leader: an election?
        raise last if last is not None else TimeoutError("no endpoint answered")

    def _next_sequence(self):
        if self.client_id == 0:
            # Retrying an OpenSession whose answer was lost at worst leaves an unused session
            # behind, which the cluster expires.
            self.client_id = self._call("OpenSession", M["OpenSessionRequest"](),
                                        "OpenSessionResponse").client_id
        self.sequence += 1
        return self.sequence

    def close(self):
        """Ends the session (it would expire 10 minutes after its last use anyway)."""
        if self.client_id != 0:
            self._call("CloseSession", M["CloseSessionRequest"](client_id=self.client_id),
                       "CloseSessionResponse")
            self.client_id = 0

    def update(self, vid, lat, lon, speed, heading):
        vehicle = M["Vehicle"](id=vid, latitude=lat, longitude=lon, speed=speed, heading=heading)
        sequence = self._next_sequence()
        req = M["UpdateVehicleRequest"](vehicle=vehicle, client_id=self.client_id,
                                        sequence=sequence)
        return self._call("UpdateVehicle", req, "UpdateVehicleResponse").vehicle

    def delete(self, vid):
        sequence = self._next_sequence()
        req = M["DeleteVehicleRequest"](id=vid, client_id=self.client_id, sequence=sequence)
        return self._call("DeleteVehicle", req, "DeleteVehicleResponse")

    def get(self, vid, stale=False):
        consistency = M["READ_CONSISTENCY_STALE" if stale else "READ_CONSISTENCY_LINEARIZABLE"]
        req = M["GetVehicleRequest"](id=vid, consistency=consistency)
        return self._call("GetVehicle", req, "GetVehicleResponse").vehicle

    def list(self, stale=False, page_size=1000):
        """Every vehicle, page by page: every page reflects the revision of the first (the
        node that answered it keeps a frozen copy until the last page)."""
        consistency = M["READ_CONSISTENCY_STALE" if stale else "READ_CONSISTENCY_LINEARIZABLE"]
        first = self._call("GetPlatoon", M["GetPlatoonRequest"](consistency=consistency,
                                                                page_size=page_size),
                           "GetPlatoonResponse")
        page = first
        while page.next_page_token:
            # The later pages must come from the node that holds the listing: no failover.
            stub = self.channels[self.preferred].unary_unary(
                "/platoon.v1.Platoon/GetPlatoon",
                request_serializer=M["GetPlatoonRequest"].SerializeToString,
                response_deserializer=M["GetPlatoonResponse"].FromString)
            page = stub(M["GetPlatoonRequest"](page_size=page_size,
                                               page_token=page.next_page_token),
                        timeout=self.timeout)
            first.vehicles.extend(page.vehicles)
        return first


def show(v):
    print("%d lat=%r lon=%r speed=%r heading=%r revision=%d" % (
        v.id, v.latitude, v.longitude, v.speed, v.heading, v.revision))


def main():
    p = argparse.ArgumentParser(description="A small Platoon client (see the module's doc).")
    p.add_argument("--endpoints",
                   default=os.environ.get("PLATOON_ENDPOINTS") or "127.0.0.1:7001")
    p.add_argument("--timeout", type=float, default=5.0)
    for flag, env in (("--cacert", "PLATOON_CACERT"), ("--cert", "PLATOON_CERT"),
                      ("--key", "PLATOON_KEY")):
        p.add_argument(flag, default=os.environ.get(env) or None)
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("update")
    u.add_argument("id", type=int)
    for f in ("lat", "lon", "speed", "heading"):
        u.add_argument(f, type=float)
    for name in ("get", "delete"):
        sub.add_parser(name).add_argument("id", type=int)
    sub.add_parser("list").add_argument("--stale", action="store_true")
    a = p.parse_args()

    credentials = None
    if a.cacert:
        def read(path):
            with open(path, "rb") as f:
                return f.read()
        credentials = grpc.ssl_channel_credentials(
            root_certificates=read(a.cacert), private_key=read(a.key) if a.key else None,
            certificate_chain=read(a.cert) if a.cert else None)
    c = PlatoonClient(a.endpoints.split(","), a.timeout, credentials)
    try:
        if a.cmd == "update":
            show(c.update(a.id, a.lat, a.lon, a.speed, a.heading))
        elif a.cmd == "get":
            show(c.get(a.id))
        elif a.cmd == "delete":
            d = c.delete(a.id)
            print("existed=%s revision=%d" % (d.existed, d.revision))
        else:
            r = c.list(a.stale)
            for v in r.vehicles:
                show(v)
            print("revision=%d leader=%d" % (r.revision, r.leader_id))
        c.close()
    except grpc.RpcError as e:
        print("%s: %s" % (e.code().name, e.details()), file=sys.stderr)
        return 3 if e.code() == grpc.StatusCode.NOT_FOUND else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
