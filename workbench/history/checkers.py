"""Checkers: a history (and the state read back after healing) in, verdicts out.

Theory of operation. A history records, for every client operation, an ``invoke`` and one
completion (see ``model.py``). Jepsen's three outcomes are the heart of every rule here:

    ok    the operation definitely happened, somewhere between its invoke and its completion;
    fail  it definitely did not happen: it must leave no trace anywhere;
    info  unknown: it may take effect at any time after its invoke, or never. A checker must
          accept both possibilities and must never count an info operation as lost.

Keys are typed by what was done to them: a key with ``add`` operations is a set (or list)
of unique elements, one with ``incr`` a counter, any other a register of unique strings.
``final`` maps each key to its value read back after the faults healed (a missing key is
empty); without it, the last ok ``final-read`` of each key in the history is used.

The anomalies:

    lost write      an ok write is not in the final state: an ok add whose element is
                    missing, a register whose final value was written before the ok write
                    even began (or is empty), a counter below the sum of its ok increments;
    aborted read    a read saw the effect of a failed write (Jepsen's G1a; Redis-Raft #23);
    dirty read      a read saw a value that never durably existed: written by a failed
                    write, by no write at all, or an unacknowledged element that later
                    vanished from the final state;
    stale read      a register read returned a value already overwritten, in real time,
                    by a write that completed before the read began;
    not linearizable  no total order of the register operations respects real time and
                    register semantics (a Wing-Gong / Porcupine search, below).

Every verdict says ``valid`` True, False, or None (unknown: e.g. the search ran out of time),
and points at op indices of the history. The checkers are pure; the only clock read is the
linearizability search's time budget.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_right
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from .model import ADD, FAIL, FINAL_READ, INCR, INFO, OK, READS, WRITE, History, Operation

REGISTER, SET, COUNTER = "register", "set", "counter"


class _Unread:
    """The one state standing for every value no read returned (they are indistinguishable)."""

    def __repr__(self) -> str:
        return "a value no read returned"


UNREAD = _Unread()


@dataclass(frozen=True)
class Verdict:
    """One checker's answer: valid True / False / None (unknown), and the anomalies found."""

    name: str
    valid: bool | None
    count: int = 0
    anomalies: list[dict] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _verdict(name: str, anomalies: list[dict], details: dict | None = None,
             valid: bool | None = None) -> Verdict:
    if valid is None and not (details or {}).get("unknown"):
        valid = not anomalies
    return Verdict(name, valid, len(anomalies), anomalies, details or {})


def _anomaly(kind: str, key: str, ops: list[Operation], message: str, **extra) -> dict:
    indices = [i for op in ops for i in op.indices]
    return {"type": kind, "key": key, "ops": indices, "message": message, **extra}


def _by_key(history: History) -> dict[str, list[Operation]]:
    keys: dict[str, list[Operation]] = defaultdict(list)
    for op in history.pairs():
        keys[op.key].append(op)
    return keys


def key_kind(ops: list[Operation]) -> str:
    fs = {op.f for op in ops}
    return SET if ADD in fs else COUNTER if INCR in fs else REGISTER


def final_state(history: History) -> dict[str, Any] | None:
    """The value of each key's last ok ``final-read``; None if the history has none."""
    final = {op.key: op.value for op in history.pairs() if op.f == FINAL_READ and op.type == OK}
    return final or None


def _writers(ops: list[Operation]) -> dict[Any, Operation]:
    """Value (or element) -> the update that wrote it; values are unique per key."""
    return {op.value: op for op in ops if op.f in (WRITE, ADD)}


def _ok_reads(ops: list[Operation]) -> list[Operation]:
    return [op for op in ops if op.f in READS and op.type == OK]


# -- lost writes ----------------------------------------------------------------------------

def lost_writes(history: History, final: dict[str, Any] | None = None) -> Verdict:
    """Ok updates missing from the final state.

    Failed updates found in the final state go to ``details["aborted"]`` and values nobody
    wrote to ``details["unexpected"]``; either also makes the verdict invalid.
    """
    final = final if final is not None else final_state(history)
    if final is None:
        return _verdict("lost-writes", [], {"unknown": "no final state to compare with"})
    found: list[dict] = []
    counts = {"ok": 0, "info": 0, "fail": 0, "recovered": 0}
    for key, ops in sorted(_by_key(history).items()):
        for op in ops:
            if op.f in (WRITE, ADD, INCR):
                counts[op.type] += 1
        check = {SET: _set_lost, COUNTER: _counter_lost}.get(key_kind(ops), _register_lost)
        found += check(key, ops, final.get(key), counts)
    lost = [a for a in found if a["type"] == "lost-write"]
    details = {**counts, "lost": len(lost),
               "aborted": [a for a in found if a["type"] == "aborted-write"],
               "unexpected": [a for a in found if a["type"] == "unexpected"]}
    return _verdict("lost-writes", lost, details, valid=not found)


def _set_lost(key, ops, final, counts) -> list[dict]:
    present, added, found = set(final or ()), _writers(ops), []
    for element, op in added.items():
        if op.type == OK and element not in present:
            found.append(_anomaly("lost-write", key, [op], f"add {element!r} was acknowledged "
                                  f"but is missing from the final {key!r}", value=element))
        elif op.type == FAIL and element in present:
            found.append(_anomaly("aborted-write", key, [op], f"add {element!r} failed but is "
                                  f"present in the final {key!r}", value=element))
        elif op.type == INFO and element in present:
            counts["recovered"] += 1
    return found + [_anomaly("unexpected", key, [], f"{element!r} is in the final {key!r} "
                             "but was never added", value=element)
                    for element in present - added.keys()]


def _counter_lost(key, ops, final, counts) -> list[dict]:
    value = final or 0
    oks = sum(op.value or 1 for op in ops if op.f == INCR and op.type == OK)
    infos = [op.value or 1 for op in ops if op.f == INCR and op.type == INFO]
    low, high = oks + sum(d for d in infos if d < 0), oks + sum(d for d in infos if d > 0)
    if value < low:
        return [_anomaly("lost-write", key, [], f"final {key!r} is {value}, but acknowledged "
                         f"increments add up to at least {low}", value=value)]
    if value > high:
        return [_anomaly("unexpected", key, [], f"final {key!r} is {value}, more than every "
                         f"attempted increment ({high})", value=value)]
    return []


def _register_lost(key, ops, value, counts) -> list[dict]:
    writer = _writers(ops).get(value)
    if value is not None and writer is None:
        return [_anomaly("unexpected", key, [], f"final {key!r} = {value!r} was never written",
                         value=value)]
    if writer is not None and writer.type == FAIL:
        return [_anomaly("aborted-write", key, [writer], f"final {key!r} = {value!r} comes "
                         "from a write that failed", value=value)]
    found = []
    for w in ops:
        if w.f != WRITE or w.type != OK or w is writer:
            continue
        if writer is None:
            why = "the key is empty"
        elif writer.type == OK and writer.end < w.start:
            why = f"it holds {value!r}, written before this write began"
        else:
            continue            # the final writer may have legitimately overwritten w
        found.append(_anomaly("lost-write", key, [w] + ([writer] if writer else []),
                              f"write {w.value!r} was acknowledged, but in the final "
                              f"state {why}", value=w.value))
    return found


# -- reads ----------------------------------------------------------------------------------

def _read_values(op: Operation, kind: str) -> tuple:
    """What a read observed, as a tuple of values/elements (registers: the value, if any)."""
    if kind == SET:
        return tuple(op.value or ())
    return () if op.value is None else (op.value,)


def _observed(history: History, kinds=(REGISTER, SET)):
    """Yield (key, kind, writers, {value: [reads that saw it]}) for keys of the given kinds."""
    for key, ops in sorted(_by_key(history).items()):
        kind = key_kind(ops)
        if kind not in kinds:
            continue
        seen: dict[Any, list[Operation]] = defaultdict(list)
        for read in _ok_reads(ops):
            for v in _read_values(read, kind):
                seen[v].append(read)
        yield key, kind, _writers(ops), seen


def _read_anomaly(kind, key, value, writes, reads, message) -> dict:
    return _anomaly(kind, key, writes + reads[:5], message, value=value, reads=len(reads))


def aborted_reads(history: History) -> Verdict:
    """Reads that saw the effect of a failed write (G1a)."""
    anomalies = []
    for key, _, writers, seen in _observed(history):
        for value, reads in seen.items():
            w = writers.get(value)
            if w is not None and w.type == FAIL:
                anomalies.append(_read_anomaly("aborted-read", key, value, [w], reads,
                                               f"{len(reads)} read(s) of {key!r} saw {value!r}, "
                                               "written by a write that failed"))
    return _verdict("aborted-reads", anomalies)


def dirty_reads(history: History, final: dict[str, Any] | None = None) -> Verdict:
    """Reads of values that never durably existed (failed, never written, or vanished)."""
    final = final if final is not None else final_state(history)
    anomalies = []
    for key, kind, writers, seen in _observed(history):
        present = set(final.get(key) or ()) if final is not None and kind == SET else None
        for value, reads in seen.items():
            w = writers.get(value)
            if w is None:
                why = "which no write ever wrote"
            elif w.type == FAIL:
                why = "written by a write that failed"
            elif w.type == INFO and present is not None and value not in present:
                why = "from an unacknowledged add that is gone from the final state"
            else:
                continue
            anomalies.append(_read_anomaly("dirty-read", key, value, [w] if w else [], reads,
                                           f"{len(reads)} read(s) of {key!r} saw {value!r}, "
                                           f"{why}"))
    for key, ops in sorted(_by_key(history).items()):
        if key_kind(ops) == COUNTER:
            high = sum(max(op.value or 1, 0) for op in ops if op.f == INCR and op.type != FAIL)
            for read in _ok_reads(ops):
                if read.value is not None and read.value > high:
                    anomalies.append(_anomaly("dirty-read", key, [read], f"read of {key!r} "
                                              f"saw {read.value}, more than every increment "
                                              f"that did not fail ({high})", value=read.value))
    return _verdict("dirty-reads", anomalies, {"final": final is not None})


def stale_reads(history: History) -> Verdict:
    """Register reads of a value overwritten by a write that completed before the read began.

    A read of ``v`` is stale when some ok write ``w2`` completed before the read was invoked
    and the write of ``v`` completed before ``w2`` was invoked: in real time ``v`` was gone.
    (A read of the initial empty value is stale once any ok write completed before it.)
    """
    anomalies = []
    for key, ops in sorted(_by_key(history).items()):
        if key_kind(ops) != REGISTER:
            continue
        writes = sorted((op for op in ops if op.f == WRITE and op.type == OK),
                        key=lambda op: op.start)
        starts = [w.start for w in writes]
        # first_done[i]: the write among writes[i:] that completed first
        first_done: list[Operation | None] = [None] * (len(writes) + 1)
        for i in range(len(writes) - 1, -1, -1):
            nxt = first_done[i + 1]
            first_done[i] = writes[i] if nxt is None or writes[i].end < nxt.end else nxt
        writers = _writers(ops)
        for read in _ok_reads(ops):
            w = writers.get(read.value)
            if read.value is None:
                later = first_done[0]
            elif w is not None and w.type == OK:
                later = first_done[bisect_right(starts, w.end)]
            else:
                continue        # phantom, aborted or info values: other checkers' business
            if later is not None and later.end < read.start:
                anomalies.append(_anomaly(
                    "stale-read", key, [read, later] + ([w] if w else []),
                    f"read of {key!r} returned {read.value!r}, but write {later.value!r} "
                    f"had already replaced it (completed at {later.end:.6g}, read began at "
                    f"{read.start:.6g})", value=read.value, overwritten_by=later.value))
    return _verdict("stale-reads", anomalies)


# -- linearizability ------------------------------------------------------------------------

def linearizable(history: History, time_limit_s: float = 10.0) -> Verdict:
    """Is every register key linearizable? (per key: P-compositionality).

    ``valid`` is None when a key's search did not finish within ``time_limit_s`` (the budget
    for the whole history) and no other key was found non-linearizable.
    """
    deadline = time.perf_counter() + time_limit_s
    anomalies, unknown, checked = [], [], 0
    for key, ops in sorted(_by_key(history).items()):
        if key_kind(ops) != REGISTER:
            continue
        checked += 1
        calls = _register_calls(ops)
        result = _search(calls, deadline) if time.perf_counter() <= deadline else None
        if result is None:
            unknown.append(key)
        elif result is not True:
            anomalies.append(_explain(key, calls, *result))
    details = {"keys": checked, "unknown_keys": unknown, "unknown": bool(unknown)}
    valid = False if anomalies else (None if unknown else True)
    return _verdict("linearizable", anomalies, details, valid=valid)


def _register_calls(ops: list[Operation]) -> list[tuple[float, float, bool, Any, Operation]]:
    """The register operations the search must order: (start, end, is_write, value, op).

    Failed writes and reads that did not end ok are left out. An info write may take effect
    at any time after its invoke, or never (Knossos: it completes at +infinity). With unique
    values this is exact and much cheaper: a write nobody read can be dropped (as if it
    never happened), and one that was read must take effect before the first read of it
    returned.
    """
    reads = _ok_reads(ops)
    writes = [op for op in ops if op.f == WRITE and op.type != FAIL]
    unique = len({w.value for w in writes}) == len(writes)
    first_read_end: dict[Any, float] = {}
    for r in reads:
        first_read_end[r.value] = min(r.end, first_read_end.get(r.value, math.inf))
    calls = [(r.start, r.end, False, r.value, r) for r in reads]
    for w in writes:
        end = w.end
        if w.type != OK:
            if w.value not in first_read_end:
                continue
            end = max(w.start, first_read_end[w.value]) if unique else math.inf
        calls.append((w.start, end, True, w.value, w))
    return calls


def _search(calls, deadline: float):
    """Wing-Gong search with Lowe's memoization, Porcupine-style; True, None or a failure.

    Events (calls and returns) sit in a doubly linked list in time order, calls before
    returns at equal times. Walking from the head, a call may be linearized now if the
    register allows it: it and its return are lifted out and the walk restarts. Meeting a
    return means that operation was not linearized before it returned: backtrack. Each
    (set of linearized ops, register state) is explored at most once; both are packed in one
    int (the ops' bits above the state's id) so the cache holds no containers.

    Three register-specific reductions keep high concurrency tractable; each is a forced
    move (no branching) because any linearization from here can be rearranged to start
    with it. Values no read ever returned are one state, "unread" (no read can tell them
    apart). A pending read of the current value is linearized at once: it changes nothing,
    so moving it earlier breaks no order. Otherwise all pending "unread" writes are
    linearized at once: in any linearization each is followed by a write or by nothing
    (no read can follow it), so moving it earlier, ahead of the next write, is harmless.
    A call is pending when no return of an op not yet linearized precedes it.
    """
    n = len(calls)
    events = sorted([(c[0], 0, i) for i, c in enumerate(calls)] +
                    [(c[1], 1, i) for i, c in enumerate(calls)])
    size = 2 * n + 1                              # node 0 is the head; -1 ends the list
    nxt = list(range(1, size)) + [-1]
    prv = [-1] + list(range(size - 1))
    op_of, is_call, ret = [-1] * size, [False] * size, [0] * size
    call_node = [0] * n
    for node, (_, kind, i) in enumerate(events, start=1):
        op_of[node] = i
        if kind == 0:
            is_call[node], call_node[i] = True, node
        else:
            ret[call_node[i]] = node
    values = [UNREAD] + list(dict.fromkeys(c[3] for c in calls if not c[2]))
    state_id = {v: sid for sid, v in enumerate(values) if sid}
    sid = [state_id.get(c[3], 0) for c in calls]  # writes: state produced; reads: required
    is_write = [c[2] for c in calls]
    shift = len(values).bit_length()
    bit = [1 << (i + shift) for i in range(n)]
    cache: set[int] = set()
    stack: list[tuple[int, int, bool]] = []       # (call node, state before, forced?)
    state, linearized, remaining, steps = state_id.get(None, 0), 0, n, 0
    best = (-1, 0, 0, ())
    fresh, node = True, 0
    while remaining:
        steps += 1
        if not steps & 1023 and time.perf_counter() > deadline:
            return None
        dead_end = False
        if fresh:                                 # a new configuration: a forced move?
            fresh, node = False, nxt[0]
            forced, unread, x = [], [], node
            while x != -1 and is_call[x]:         # the pending calls: before any return
                i = op_of[x]
                if not is_write[i] and sid[i] == state:
                    forced = [x]
                    break
                if is_write[i] and not sid[i]:
                    unread.append(x)
                x = nxt[x]
            forced = forced or unread             # a read of the state, else unread writes
            if forced:
                bits = 0
                for x in forced:
                    bits |= bit[op_of[x]]
                new_state = state if not is_write[op_of[forced[0]]] else 0
                key = linearized | bits | new_state
                if key in cache:
                    dead_end = True
                else:
                    cache.add(key)
                    for x in forced:
                        stack.append((x, state, True))
                        state = new_state
                        _lift(x, ret[x], nxt, prv)
                    linearized |= bits
                    remaining -= len(forced)
                    fresh = True
                    continue
        if not dead_end and is_call[node]:
            i = op_of[node]
            if is_write[i]:
                key = linearized | bit[i] | sid[i]
                if key not in cache:
                    cache.add(key)
                    stack.append((node, state, False))
                    state, linearized = sid[i], linearized | bit[i]
                    remaining -= 1
                    _lift(node, ret[node], nxt, prv)
                    fresh = True
                    continue
            node = nxt[node]
            continue
        if not dead_end and len(stack) > best[0]:   # a return: its op was never linearized
            best = (len(stack), op_of[node], state, tuple(op_of[s] for s, _, _ in stack[-3:]))
        while True:                               # backtrack, past forced moves
            if not stack:
                return best[0], best[1], values[best[2]], best[3]
            x, state, forced = stack.pop()
            linearized ^= bit[op_of[x]]
            remaining += 1
            _unlift(x, ret[x], nxt, prv)
            if not forced:
                node = nxt[x]
                break
    return True


def _lift(call: int, ret: int, nxt: list[int], prv: list[int]) -> None:
    """Unlink a call and its return from the event list (dancing links)."""
    for x in (call, ret):
        p, q = prv[x], nxt[x]
        nxt[p] = q
        if q != -1:
            prv[q] = p


def _unlift(call: int, ret: int, nxt: list[int], prv: list[int]) -> None:
    """Relink them, in the reverse order of ``_lift``."""
    for x in (ret, call):
        p, q = prv[x], nxt[x]
        nxt[p] = x
        if q != -1:
            prv[q] = x


def _explain(key, calls, depth, stuck, state, prefix) -> dict:
    """A small window around where the longest linearizable prefix got stuck."""
    s_start, s_end, s_write, s_value, s_op = calls[stuck]
    overlapping = [c[4] for i, c in enumerate(calls)
                   if i != stuck and c[0] <= s_end and c[1] >= s_start][:8]
    window = [calls[i][4] for i in prefix] + [s_op] + overlapping
    window = sorted({id(op): op for op in window}.values(), key=lambda op: op.start)
    what = f"write {s_value!r}" if s_write else f"read returning {s_value!r}"
    return _anomaly("not-linearizable", key, window,
                    f"{key!r}: after linearizing {depth} operation(s) the register holds "
                    f"{state!r}, and the {what} (op {s_op.invoke.index}) cannot take effect "
                    "before it returned", stuck=s_op.invoke.index, depth=depth)


# -- availability ---------------------------------------------------------------------------

def unavailability(history: History) -> Verdict:
    """The longest window without an acknowledged update (a measurement, always valid)."""
    ops = history.pairs()
    if not ops:
        return _verdict("unavailability", [], {"longest_s": 0.0, "start": None, "end": None})
    done = sorted(op.completion.time for op in ops if op.f in (WRITE, ADD, INCR)
                  and op.type == OK)
    marks = [history.start_time()] + done + [history.end_time()]
    length, start, end = max((b - a, a, b) for a, b in zip(marks, marks[1:]))
    details = {"longest_s": length, "start": start, "end": end, "ok_writes": len(done),
               "duration_s": history.end_time() - history.start_time()}
    return _verdict("unavailability", [], details, valid=True)


def summary(history: History, final: dict[str, Any] | None = None,
            time_limit_s: float = 10.0) -> dict[str, Verdict]:
    """Every applicable checker, by name."""
    kinds = {key_kind(ops) for ops in _by_key(history).values()}
    verdicts = [lost_writes(history, final), dirty_reads(history, final),
                aborted_reads(history)]
    if REGISTER in kinds:
        verdicts += [stale_reads(history), linearizable(history, time_limit_s)]
    verdicts.append(unavailability(history))
    return {v.name: v for v in verdicts}
