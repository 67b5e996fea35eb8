"""The checks over one run's history (see workload.py for the records).

Every check returns a list of problems, each a line of text naming what is wrong; an empty list
means the check passed. Revisions are log indices, so they give a total order of writes that
every node must agree on: "the write at index i" is the same on every node and in every answer,
which is what makes the checks below possible without trusting any single node.

- linearizable: every key's history of updates, deletes and linearizable reads (a GetPlatoon is
  a read of every key: listed or absent) has a linearization (harness/linearizability.py);
  unknown outcomes may or may not have taken effect.
- monotonic: a linearizable GetPlatoon never reflects an older revision than any write or
  linearizable read that completed before it began.
- unique: each write (client, sequence) was applied at one revision only (never twice), and each
  revision holds one write only (no two nodes applied different entries at one index).
- states: a GetPlatoon at revision R, linearizable or stale, from any node, shows for every key
  exactly the latest known write at or below R: the state of some prefix of the one log.
- lost: every acknowledged write is reflected in the final linearizable read (or overwritten by
  a later write).
"""

import bisect
from collections import defaultdict

from harness import linearizability as lin

UPDATES = ("update",)
MUTATIONS = ("update", "delete")


def _ident(value):
    return None if value is None else (value[0], value[1])


def _outcome(rec):
    # A mutation refused after being retried cannot be known not to have happened: a retry is
    # only sent when the outcome of an earlier attempt was unknown.
    if rec["f"] in MUTATIONS and rec["outcome"] == "fail" and rec["attempts"] > 1:
        return lin.UNKNOWN
    return {"ok": lin.OK, "fail": lin.FAIL, "unknown": lin.UNKNOWN}[rec["outcome"]]


def to_ops(history, keys):
    ops = []
    for r in history:
        if r["f"] == "update":
            ops.append(lin.Op(r["key"], "write", (r["client"], r["seq"]), r["invoke"],
                              r["complete"], _outcome(r), client=r["client"]))
        elif r["f"] == "delete":
            ops.append(lin.Op(r["key"], "delete", None, r["invoke"], r["complete"], _outcome(r),
                              existed=r.get("existed"), client=r["client"]))
        elif r["consistency"] == "lin" and r["outcome"] == "ok":
            if r["f"] == "get":
                ops.append(lin.Op(r["key"], "read", _ident(r["value"]), r["invoke"],
                                  r["complete"], lin.OK, client=r["client"]))
            else:
                for k in keys:
                    ops.append(lin.Op(k, "read", _ident(r["vehicles"].get(str(k))),
                                      r["invoke"], r["complete"], lin.OK, client=r["client"]))
    return ops


def linearizable(history, keys):
    v = lin.check_history(to_ops(history, keys))
    if v.ok:
        return []
    return ["key %s is not linearizable: %s" % (v.key, v.reason)]


def protocol(history, keys):
    """Answers that break the API's own promises, whatever the timing."""
    problems = []
    for r in history:
        if r["f"] in MUTATIONS and r["outcome"] == "fail":
            problems.append("client %s %s seq %d refused: %s (after %d attempts)"
                            % (r["client"], r["f"], r["seq"], r["error"], r["attempts"]))
        if r["f"] == "update" and r["outcome"] == "ok" and _ident(r["echo"]) != (r["client"],
                                                                                 r["seq"]):
            problems.append("client %s update seq %d answered with the vehicle of write %s"
                            % (r["client"], r["seq"], r["echo"]))
        if r["f"] == "platoon" and r["outcome"] == "ok":
            if r["order"] != sorted(r["order"]) or not set(r["order"]) <= set(keys):
                problems.append("GetPlatoon from node %s listed ids %s" % (r["node"], r["order"]))
            for v in r["vehicles"].values():
                if v[2] > r["revision"]:
                    problems.append("GetPlatoon from node %s at revision %d shows a vehicle of "
                                    "revision %d" % (r["node"], r["revision"], v[2]))
    return problems


def _observations(history):
    """(write id, revision, where) of every write seen with its revision."""
    for r in history:
        if r["outcome"] != "ok":
            continue
        if r["f"] in MUTATIONS:
            yield ("w", r["client"], r["seq"]), r["revision"], "ack of %s" % r["f"]
        elif r["f"] == "get" and r["value"] is not None:
            v = r["value"]
            yield ("w", v[0], v[1]), v[2], "%s read on node %s" % (r["consistency"], r["node"])
        elif r["f"] == "platoon":
            for v in r["vehicles"].values():
                yield ("w", v[0], v[1]), v[2], "%s GetPlatoon on node %s" % (r["consistency"],
                                                                           r["node"])


def unique(history):
    problems = []
    revs = defaultdict(set)
    writes = defaultdict(set)
    for ident, rev, where in _observations(history):
        revs[ident].add(rev)
        writes[rev].add(ident)
    for ident, rs in sorted(revs.items()):
        if len(rs) > 1:
            problems.append("write of client %d seq %d applied more than once: revisions %s"
                            % (ident[1], ident[2], sorted(rs)))
    for rev, ids in sorted(writes.items()):
        if len(ids) > 1:
            problems.append("revision %d holds more than one write: %s"
                            % (rev, sorted((i[1], i[2]) for i in ids)))
    issued = {(r["client"], r["seq"]): r for r in history if r["f"] in MUTATIONS}
    for ident, rev, where in _observations(history):
        w = issued.get(ident[1:])
        if where.startswith("ack"):
            continue
        if w is None or w["f"] != "update":
            problems.append("a %s saw write client %d seq %d, which no client issued as an "
                            "update" % ((where,) + ident[1:]))
    return problems


class _Writes:
    """The known writes of each key, ordered by revision."""

    def __init__(self, history):
        by_key = defaultdict(dict)
        issued = {(r["client"], r["seq"]): r for r in history if r["f"] in MUTATIONS}
        self.unplaced_deletes = set()
        for ident, rev, _ in _observations(history):
            w = issued.get(ident[1:])
            if w is not None:
                by_key[w["key"]][rev] = w["f"]
        for r in issued.values():
            if r["f"] == "delete" and r["outcome"] != "ok":
                self.unplaced_deletes.add(r["key"])
        self.revs = {k: sorted(v) for k, v in by_key.items()}
        self.kind = by_key

    def latest(self, key, at):
        """(revision, kind) of the latest known write to key at or below revision `at`."""
        revs = self.revs.get(key, [])
        i = bisect.bisect_right(revs, at)
        if i == 0:
            return None, None
        return revs[i - 1], self.kind[key][revs[i - 1]]

    def latest_update(self, key, at):
        revs = self.revs.get(key, [])
        for rev in reversed(revs[:bisect.bisect_right(revs, at)]):
            if self.kind[key][rev] == "update":
                return rev
        return None


def states(history, keys):
    problems = []
    known = _Writes(history)
    for r in history:
        if r["f"] != "platoon" or r["outcome"] != "ok":
            continue
        at = r["revision"]
        for k in keys:
            v = r["vehicles"].get(str(k))
            rev, kind = known.latest(k, at)
            if v is not None and rev != v[2]:
                problems.append("%s GetPlatoon on node %s at revision %d shows key %d from "
                                "revision %d, but revision %s wrote it last (%s)"
                                % (r["consistency"], r["node"], at, k, v[2], rev, kind))
            elif v is None and kind == "update" and k not in known.unplaced_deletes:
                problems.append("%s GetPlatoon on node %s at revision %d misses key %d, "
                                "written at revision %d" % (r["consistency"], r["node"], at, k,
                                                            rev))
        if len(problems) > 20:
            break
    return problems


def monotonic(history):
    """Linearizable GetPlatoon revisions never go back behind what completed before them."""
    done = sorted((r["complete"], r["revision"]) for r in history
                  if r["outcome"] == "ok" and "revision" in r
                  and (r["f"] in MUTATIONS or (r["f"] == "platoon" and r["consistency"] == "lin")))
    reads = sorted((r for r in history if r["f"] == "platoon" and r["outcome"] == "ok"
                    and r["consistency"] == "lin"), key=lambda r: r["invoke"])
    problems = []
    i, high, high_at = 0, 0, None
    for r in reads:
        while i < len(done) and done[i][0] < r["invoke"]:
            if done[i][1] > high:
                high, high_at = done[i][1], done[i][0]
            i += 1
        if r["revision"] < high:
            problems.append("linearizable GetPlatoon on node %s at %.3f reflects revision %d, "
                            "but revision %d was reached at %.3f before it began"
                            % (r["node"], r["invoke"], r["revision"], high, high_at))
    return problems


def lost(history, final):
    """Acknowledged writes that the final linearizable read does not reflect."""
    known = _Writes(history)
    problems = []
    for r in history:
        if r["f"] not in MUTATIONS or r["outcome"] != "ok":
            continue
        k = r["key"]
        v = final["vehicles"].get(str(k))
        if r["revision"] > final["revision"]:
            problems.append("acknowledged %s of key %d at revision %d is beyond the final "
                            "state's revision %d" % (r["f"], k, r["revision"], final["revision"]))
        elif r["f"] == "update" and (v is None and known.latest(k, final["revision"])[1] ==
                                     "update" and k not in known.unplaced_deletes
                                     or v is not None and v[2] < r["revision"]):
            problems.append("acknowledged update of key %d by client %d seq %d (revision %d) "
                            "is lost: the final state shows %s" % (k, r["client"], r["seq"],
                                                                   r["revision"], v))
        elif r["f"] == "delete" and v is not None and v[2] < r["revision"]:
            problems.append("acknowledged delete of key %d (revision %d) is lost: the final "
                            "state shows %s" % (k, r["revision"], v))
    return problems


def counts(history):
    c = {"ok": 0, "fail": 0, "unknown": 0}
    for r in history:
        c[r["outcome"]] += 1
    return c


def watches(history, segments):
    """Every WatchPlatoon segment (workload.Watch), replayed in order from its full state or
    from where the previous one left off, gives at each revision the platoon that every
    successful GetPlatoon at that revision saw. Also: changes come in increasing revision, a
    DELETE names a vehicle held, a resumption starts after its revision. Returns (problems,
    reads compared)."""
    problems = []
    windows = []  # (lo, hi): the platoon was `state` at every revision in [lo, hi)
    state, rev, frozen = None, None, None

    def close(hi):
        if state is not None and not in_state and rev is not None and hi > rev:
            windows.append((rev, hi, dict(state)))

    in_state = False
    for n, seg in enumerate(segments):
        if seg["frm"] is not None and seg["frm"] != rev:
            problems.append("segment %d resumed from %s, not from %s" % (n, seg["frm"], rev))
        for m in seg["msgs"]:
            if m["i"]:
                if m["b"]:
                    close(rev + 1 if rev is not None else 0)
                    state, in_state = {}, True
                for r, kind, vid, value in m["ev"]:
                    state[str(vid)] = value
                if m["e"]:
                    in_state = False
                    rev = m["r"]
                continue
            for r, kind, vid, value in m["ev"]:
                if in_state or state is None:
                    problems.append("segment %d: a change before a full state" % n)
                    return problems, 0
                if r <= rev:
                    problems.append("segment %d: change %d after %d" % (n, r, rev))
                close(r)
                if kind == "PUT":
                    state[str(vid)] = value
                elif str(vid) in state:
                    del state[str(vid)]
                else:
                    problems.append("segment %d: DELETE of vehicle %d, not held" % (n, vid))
                rev = r
        if seg["end"] is None or not seg["end"].startswith(("DEADLINE", "UNAVAILABLE",
                                                            "CANCELLED", "OUT_OF_RANGE",
                                                            "RESOURCE_EXHAUSTED")):
            if seg["end"] is not None:
                problems.append("segment %d on node %s ended with %s" % (n, seg["node"],
                                                                         seg["end"]))
    close(rev + 1 if rev is not None else 0)
    compared = 0
    for r in history:
        if r["f"] != "platoon" or r["outcome"] != "ok":
            continue
        for lo, hi, st in windows:
            if lo <= r["revision"] < hi:
                compared += 1
                if st != r["vehicles"]:
                    problems.append("%s GetPlatoon on node %s at revision %d saw %s; the watch "
                                    "rebuilt %s" % (r["consistency"], r["node"], r["revision"],
                                                    r["vehicles"], st))
                break
        if len(problems) > 20:
            break
    return problems, compared
