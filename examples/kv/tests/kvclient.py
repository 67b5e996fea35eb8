"""A Python client of examples/kv, for its tests: stubs built from kv.proto at run time (as
tests/cluster/harness/api.py does for platoon.proto) and a clerk that keeps kv.proto's
exactly-once rules the way kv-clerk does.

Importing this module puts tests/cluster on sys.path, so the tests can use the project's
cluster harness (harness.*) and fault-injection suite (faults.*).
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
KV_DIR = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(KV_DIR))
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))

import grpc  # noqa: E402

from harness import api  # noqa: E402

K = api.load_messages("kv.proto", proto_dir=KV_DIR)

_METHODS = {
    "Get": ("GetRequest", "GetResponse"),
    "Put": ("PutRequest", "WriteResponse"),
    "Append": ("AppendRequest", "WriteResponse"),
}

# A write that ends with one of these may or may not have been applied: send it again.
RETRY = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class KvNode:
    """Stubs of kv.v1.KV on one endpoint."""

    def __init__(self, endpoint, credentials=None):
        self.endpoint = endpoint
        # Quick reconnects to restarted nodes. Not grpc.min_reconnect_backoff_ms: gRPC takes
        # it as the time a connection attempt (TCP and TLS handshakes) may last.
        options = [("grpc.initial_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 200)]
        if credentials is None:
            self.channel = grpc.insecure_channel(endpoint, options=options)
        else:
            self.channel = grpc.secure_channel(endpoint, credentials, options=options)
        self.stubs = {m: self.channel.unary_unary("/kv.v1.KV/" + m,
                                                  request_serializer=K[req].SerializeToString,
                                                  response_deserializer=K[resp].FromString)
                      for m, (req, resp) in _METHODS.items()}

    def call(self, method, timeout=2.0, **fields):
        req = K[_METHODS[method][0]](**fields)
        return self.stubs[method](req, timeout=timeout, wait_for_ready=True)

    def get(self, key, stale=False, timeout=2.0):
        """The value of `key`, or None when absent."""
        r = self.call("Get", timeout=timeout, key=key, stale=stale)
        return r.value if r.found else None

    def close(self):
        self.channel.close()


class Clerk:
    """One client session: a client id and a sequence per write. A write is retried, unchanged,
    on the next node until a definite answer or `retry_for` seconds."""

    def __init__(self, client_id, nodes, attempt_timeout=1.0, retry_for=6.0):
        self.client_id = client_id
        self.nodes = nodes  # () -> [KvNode] to try, in order
        self.seq = 0
        self.attempt_timeout = attempt_timeout
        self.retry_for = retry_for

    def write(self, method, key, value):
        """Returns (outcome, index or error text, attempts): outcome "ok", "fail" (a definite
        refusal) or "unknown" (no definite answer in time)."""
        self.seq += 1
        give_up = time.monotonic() + self.retry_for
        error, attempts, i = None, 0, 0
        while True:
            nodes = self.nodes()
            if nodes:
                node = nodes[i % len(nodes)]
                i += 1
                attempts += 1
                try:
                    r = node.call(method, timeout=self.attempt_timeout, key=key, value=value,
                                  client_id=self.client_id, sequence=self.seq)
                    return "ok", r.index, attempts
                except grpc.RpcError as e:
                    error = "%s: %s" % (e.code().name, e.details())
                    if e.code() not in RETRY:
                        return "fail", error, attempts
            if time.monotonic() >= give_up:
                return "unknown", error, attempts
            time.sleep(0.02)
