"""GetPlatoon page by page: a few thousand vehicles listed in small pages, through the real RPC
and through `platoonctl vehicle list`, while writes go on; every page is at the revision of the
first, and the listing is exactly the platoon at that revision. Page tokens that are malformed,
forged, from another node or of a finished listing get the documented errors, and a node holds
a bounded number of listings."""

import concurrent.futures
import json
import os
import subprocess
import sys
import threading

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import api, testing  # noqa: E402

N = 3000


class Writer(threading.Thread):
    """Replaces, creates and deletes vehicles until stopped, recording every outcome with its
    revision so that the platoon at any revision can be recomputed."""

    def __init__(self, client):
        super().__init__(daemon=True)
        self.client = client
        self.stop = threading.Event()
        self.log = []  # (revision, id, latitude or None for a delete)
        self.error = None

    def run(self):
        i = 0
        try:
            while not self.stop.is_set():
                i += 1
                vid = (i * 7919) % (N + 500) + 1
                if i % 5 == 0:
                    r = self.client.call("DeleteVehicle", timeout=5.0, id=vid)
                    self.log.append((r.revision, vid, None))
                else:
                    lat = float(i % 90)
                    r = self.client.call("UpdateVehicle", timeout=5.0,
                                         vehicle=api.vehicle(vid, lat, 1.0, 2.0, 3.0))
                    self.log.append((r.vehicle.revision, vid, lat))
        except grpc.RpcError as e:  # reported by the test
            self.error = e


class Paging(testing.ClusterTest):
    extra_args = ("--sync", "none")

    def setUp(self):
        super().setUp()
        leader = self.node(self.leader).client

        def put(vid):
            r = self.retry(lambda: leader.call("UpdateVehicle", timeout=5.0,
                                               vehicle=api.vehicle(vid, -1.0, 1.0, 2.0, 3.0)))
            return r.vehicle.revision, vid, -1.0

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            self.initial = list(pool.map(put, range(1, N + 1)))
        self.follower = next(i for i in (1, 2, 3) if i != self.leader)

    def expected_at(self, revision, log):
        """The platoon at @revision: id -> (latitude, revision), from every recorded write."""
        state = {}
        for rev, vid, lat in sorted(self.initial + log):
            if rev > revision:
                break
            if lat is None:
                state.pop(vid, None)
            else:
                state[vid] = (lat, rev)
        return state

    def list_pages(self, node, page_size, between=None, **first):
        client = self.node(node).client
        pages = [self.retry(lambda: client.call("GetPlatoon", timeout=5.0, page_size=page_size,
                                                **first))]
        while pages[-1].next_page_token:
            if between is not None:
                between()
            pages.append(client.call("GetPlatoon", timeout=5.0, page_size=page_size,
                                     page_token=pages[-1].next_page_token))
        return pages

    def writing(self):
        w = Writer(self.node(self.leader).client)
        w.start()
        self.addCleanup(w.join, 10)
        self.addCleanup(w.stop.set)
        return w

    def check_listing(self, revision, vehicles, log):
        ids = [v[0] for v in vehicles]
        self.assertEqual(ids, sorted(set(ids)), "every vehicle once, in id order")
        got = {vid: (lat, rev) for vid, lat, rev in vehicles}
        self.assertEqual(got, self.expected_at(revision, log))

    def test_pages_over_rpc_are_one_revision_while_writes_go_on(self):
        w = self.writing()
        seen_revisions = set()
        log = []  # every writer's writes, the earlier ones too
        leader = self.node(self.leader).client
        mark = [70.5]  # a latitude no other write uses (they are whole), one per listing

        def between():
            # A write the reader's next pages would see, were they not frozen: the last
            # vehicle, which is on the last page.
            r = leader.call("UpdateVehicle", timeout=5.0, vehicle=api.vehicle(N, mark[0]))
            log.append((r.vehicle.revision, N, mark[0]))

        for node, size in ((self.follower, 97), (self.leader, 1000)):
            pages = self.list_pages(node, size, between)
            revs = {p.revision for p in pages}
            self.assertEqual(len(revs), 1, "every page at the revision of the first")
            self.assertGreater(len(pages), N // size - 1)
            self.assertTrue(all(len(p.vehicles) <= size for p in pages))
            self.assertEqual(pages[-1].next_page_token, "")
            seen_revisions |= revs
            vehicles = [(v.id, v.latitude, v.revision) for p in pages for v in p.vehicles]
            self.assertNotEqual(dict((v[0], v[1]) for v in vehicles).get(N), mark[0])
            mark[0] += 1
            w.stop.set()
            w.join(10)
            self.assertIsNone(w.error)
            log += w.log
            self.check_listing(pages[0].revision, vehicles, log)
            w = self.writing()
        # The writes went on between pages: the platoon moved on past the listings.
        last = self.node(self.leader).client.call("GetPlatoon", page_size=1)
        self.assertGreater(last.revision, max(seen_revisions))

    def test_platoonctl_lists_every_page_at_one_revision(self):
        w = self.writing()
        ctl = [os.path.join(testing.BIN, "platoonctl"), "--endpoints",
               self.cluster.nodes[self.follower].address, "--timeout", "10", "--json",
               "vehicle", "list", "--page-size", "50"]
        env = dict(os.environ, **self.cluster.ctl_env())
        r = subprocess.run(ctl, capture_output=True, text=True, timeout=60, env=env)
        w.stop.set()
        w.join(10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIsNone(w.error)
        out = json.loads(r.stdout)
        vehicles = [(v["id"], v["latitude"], v["revision"]) for v in out["vehicles"]]
        self.assertGreater(len(vehicles), N // 2)
        self.check_listing(out["revision"], vehicles, w.log)
        # --page-size is checked before anything is sent.
        bad = subprocess.run(ctl[:-1] + ["0"], capture_output=True, text=True, timeout=60,
                             env=env)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("--page-size", bad.stderr)

    def expect(self, code, words, fn):
        with self.assertRaises(grpc.RpcError) as cm:
            fn()
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        for w in words:
            self.assertIn(w, cm.exception.details())

    def test_page_sizes_tokens_and_bounds(self):
        a = self.node(self.follower).client
        other = next(i for i in (1, 2, 3) if i not in (self.follower, self.leader))
        b = self.node(other).client
        # page_size 0: the whole (small) platoon in one answer, as before paging; a page_size
        # above the maximum is lowered to it.
        whole = self.retry(lambda: a.call("GetPlatoon", timeout=5.0))
        self.assertEqual((len(whole.vehicles), whole.next_page_token), (N, ""))
        big = a.call("GetPlatoon", timeout=5.0, page_size=1000000)
        self.assertEqual((len(big.vehicles), big.next_page_token), (N, ""))

        first = a.call("GetPlatoon", page_size=10)
        token = first.next_page_token
        self.assertTrue(token)
        self.expect(grpc.StatusCode.INVALID_ARGUMENT, ["page_token", "malformed"],
                    lambda: a.call("GetPlatoon", page_token="zz"))
        forged = token[:60] + ("0" if token[60] != "0" else "1") + token[61:]
        self.expect(grpc.StatusCode.INVALID_ARGUMENT, ["page_token"],
                    lambda: a.call("GetPlatoon", page_token=forged))
        self.expect(grpc.StatusCode.FAILED_PRECONDITION,
                    ["node %d" % self.follower, "without page_token"],
                    lambda: b.call("GetPlatoon", page_token=token))
        # The same page again (a retry), then to the end: the listing is then gone.
        again = a.call("GetPlatoon", page_size=10, page_token=token)
        retry = a.call("GetPlatoon", page_size=10, page_token=token)
        self.assertEqual((again.vehicles, again.revision, again.next_page_token),
                         (retry.vehicles, retry.revision, retry.next_page_token))
        self.assertEqual(again.revision, first.revision)
        self.assertEqual(again.vehicles[0].id, first.vehicles[-1].id + 1)
        rest = a.call("GetPlatoon", page_size=10000, page_token=token)
        self.assertEqual(rest.next_page_token, "")
        self.assertEqual(len(first.vehicles) + len(rest.vehicles), N)
        self.expect(grpc.StatusCode.FAILED_PRECONDITION, ["expired", "without page_token"],
                    lambda: a.call("GetPlatoon", page_token=token))

        # At most 2 listings in progress per client on one node, and 8 in all; the other
        # nodes are not affected.
        for _ in range(2):
            self.assertTrue(a.call("GetPlatoon", page_size=1).next_page_token)
        self.expect(grpc.StatusCode.RESOURCE_EXHAUSTED, ["this client already has 2 listings"],
                    lambda: a.call("GetPlatoon", page_size=1))
        node_a = a.endpoint
        for k in range(3):
            reader = self.cluster.client(self.node_id_of(node_a), "reader-%d" % k, "reader")
            for _ in range(2):
                self.assertTrue(reader.call("GetPlatoon", page_size=1).next_page_token)
        other = self.cluster.client(self.node_id_of(node_a), "reader-x", "reader")
        self.expect(grpc.StatusCode.RESOURCE_EXHAUSTED, ["8 listings"],
                    lambda: other.call("GetPlatoon", page_size=1))
        self.assertTrue(b.call("GetPlatoon", page_size=1).next_page_token)

    def node_id_of(self, endpoint):
        return next(i for i, n in self.cluster.nodes.items() if n.address == endpoint)


if __name__ == "__main__":
    testing.main()
