"""Linearizability checking of recorded client histories, per key.

The model is one register per vehicle id: either absent or holding the state written by one
update. Every update in a test writes a value no other update writes, so a read names the write
it observed. A register may also be a string that appends extend (examples/kv): with every
appended piece unique, a read names the appends it observed and their order. The search is Wing & Gong's, with Lowe's memoisation of (linearized set, state):
repeatedly pick an operation that may take effect first (one invoked before every pending
operation's completion), apply it to the model if it fits, and backtrack when nothing fits.

Operations whose outcome is unknown (a timeout, UNAVAILABLE) may or may not have taken effect:
they never need to be linearized, but may be, at any point after their invocation. Failed
operations (a definite error) did not take effect and are left out before the search.

Histories are partitioned per key (linearizability is compositional, Herlihy & Wing 1990), which
keeps each search small.
"""

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

ABSENT = None

# Outcomes of a recorded operation.
OK = "ok"
FAIL = "fail"
UNKNOWN = "unknown"


@dataclass
class Op:
    """One client operation on one key.

    kind: "write" (value: the new state), "append" (value: a string added to the end of the
    state, an absent one counting as ""), "delete" (value ignored), or "read" (value: the state
    observed, ABSENT for not found). For a delete, `existed` is the answer when known.
    """

    key: Any
    kind: str
    value: Any
    invoke: float
    complete: float
    outcome: str
    existed: Optional[bool] = None
    client: Any = None
    ident: int = field(default=0, compare=False)


@dataclass
class Verdict:
    ok: bool
    key: Any = None
    reason: str = ""
    ops_checked: int = 0


def _fits(op: Op, state: Any) -> Optional[Any]:
    """The state after applying op to state, or the sentinel _NO if op cannot happen here."""
    if op.kind == "write":
        return op.value
    if op.kind == "append":
        # A string appended to the key's value; an absent key counts as empty.
        return (state if state is not ABSENT else "") + op.value
    if op.kind == "delete":
        if op.outcome == OK and op.existed is not None and op.existed != (state is not ABSENT):
            return _NO
        return ABSENT
    if op.kind == "read":
        return state if op.value == state else _NO
    raise ValueError("unknown operation kind %r" % op.kind)


class _No:
    pass


_NO = _No()


def check_key(ops: List[Op], initial: Any = ABSENT, budget: int = 2_000_000) -> Verdict:
    """Checks the operations on one key. `budget` bounds the search steps (a history that
    exhausts it is reported as not proven, never as linearizable)."""
    ops = [o for o in ops if o.outcome != FAIL]
    # An unknown read tells nothing and constrains nothing.
    ops = [o for o in ops if not (o.kind == "read" and o.outcome == UNKNOWN)]
    ops.sort(key=lambda o: o.invoke)
    # Bit i of a mask is the i-th operation by invocation time.
    for i, o in enumerate(ops):
        o.ident = i
        if o.outcome == UNKNOWN:
            o.complete = math.inf
    n = len(ops)
    required = 0
    for o in ops:
        if o.outcome == OK:
            required |= 1 << o.ident
    if required == 0:
        return Verdict(True, ops_checked=n)
    not_required = ((1 << n) - 1) & ~required
    unknown = [o for o in ops if o.outcome == UNKNOWN]

    seen = set()
    steps = 0
    deepest = 0  # the first operation the search never got past, for the explanation
    # Iterative DFS: a stack of (linearized mask, state).
    stack = [(0, initial)]
    while stack:
        mask, state = stack.pop()
        if mask & required == required:
            return Verdict(True, ops_checked=n)
        memo = (mask, _freeze(state))
        if memo in seen:
            continue
        seen.add(memo)
        steps += 1
        if steps > budget:
            return Verdict(False, reason="search budget exhausted (%d steps)" % budget, ops_checked=n)
        # The first acknowledged operation not yet linearized (the lowest clear bit), then the
        # earliest completion among those not yet linearized bounds which may go next. Later
        # operations in invocation order cannot lower it (each completes after it is invoked),
        # so the scan stops at the first one invoked past the bound: the work per step is the
        # width of the concurrency window, not the length of the history.
        filled = mask | not_required
        lo = (~filled & (filled + 1)).bit_length() - 1
        deepest = max(deepest, lo)
        horizon = math.inf
        candidates = []
        for o in ops[lo:]:
            if o.invoke > horizon:
                break
            if o.outcome == OK and not mask & (1 << o.ident):
                horizon = min(horizon, o.complete)
                candidates.append(o)
        # Unknown outcomes never bound the others and stay candidates from their invocation on.
        candidates += [o for o in unknown if o.invoke <= horizon and not mask & (1 << o.ident)]
        candidates.sort(key=lambda o: o.ident)
        for o in candidates:
            if o.invoke > horizon:
                continue
            nxt = _fits(o, state)
            if nxt is _NO:
                continue
            stack.append((mask | (1 << o.ident), nxt))
    return Verdict(False, reason=_explain(ops, deepest), ops_checked=n)


def _freeze(state: Any) -> Any:
    if isinstance(state, dict):
        return tuple(sorted(state.items()))
    if isinstance(state, list):
        return tuple(state)
    return state


def _explain(ops: List[Op], stuck: int = 0) -> str:
    """The operations around the first one no linearization got past."""
    first = max(0, stuck - 10)
    lines = ["no linearization exists past operation %d of %d; operations by invocation time "
             "from %d:" % (stuck, len(ops), first)]
    for o in ops[first:first + 40]:
        extra = "" if o.existed is None else " existed=%s" % o.existed
        lines.append(
            "  client=%s %s %r [%.6f, %.6f] %s%s"
            % (o.client, o.kind, o.value, o.invoke, o.complete, o.outcome, extra)
        )
    return "\n".join(lines)


def check_history(ops: List[Op]) -> Verdict:
    """Partitions by key and checks each; returns the first failure or overall success."""
    by_key: Dict[Any, List[Op]] = {}
    for o in ops:
        by_key.setdefault(o.key, []).append(o)
    total = 0
    for key in sorted(by_key, key=repr):
        v = check_key(by_key[key])
        total += v.ops_checked
        if not v.ok:
            v.key = key
            return v
    return Verdict(True, ops_checked=total)
