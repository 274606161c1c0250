"""Linearizability of register histories: a Wing-Gong / Porcupine search, per key.

Split out of :mod:`checkers` because the search is the one subtle algorithm of the
verdict layer; :func:`checkers.summary` runs it with the others.

The model is Knossos' ``cas-register``: ``write v`` sets the register, ``read`` returns it,
``cas (expected, new)`` sets ``new`` only if the register holds ``expected``. A cas that
ended ``fail`` did not happen (the server said the register held something else); one
that ended ``info`` may have happened or not. Only register keys are checked; sets, lists
and counters are left to the other checkers (their keys are listed in the verdict's
``details["not_checked"]``).

Before the search, a pre-check refutes at once what no order could explain: a read (or a
cas expecting a value) of a value that no write that did not fail wrote, or whose every
writer began after the read returned; a read of the empty register after a write
completed. The search would find these too, but only after trying every order.
"""

from __future__ import annotations

import math
import time
from typing import Any

from .model import CAS, FAIL, OK, READ, REGISTER_UPDATES, WRITE, History, Operation
from .verdict import REGISTER, UNREAD, Verdict, anomaly, by_key, key_kind, make_verdict, ok_reads

PRE_CHECK, SEARCH = "pre-check", "search"


def linearizable(history: History, time_limit_s: float = 10.0) -> Verdict:
    """Is every register key linearizable? (per key: P-compositionality).

    ``valid`` is None when a key's search did not finish within ``time_limit_s`` (the budget
    for the whole history) and no other key was found non-linearizable. Each anomaly says
    whether the ``pre-check`` or the ``search`` refuted its key (``found_by``);
    ``details["steps"]`` counts the search's steps per key.
    """
    deadline = time.perf_counter() + time_limit_s
    anomalies, unknown, steps, not_checked = [], [], {}, {}
    for key, ops in sorted(by_key(history).items()):
        kind = key_kind(ops)
        if kind != REGISTER:
            not_checked[key] = kind
            continue
        impossible = _impossible_observation(key, ops)
        if impossible is not None:
            anomalies.append(impossible)
            steps[key] = 0
            continue
        calls = _register_calls(ops)
        result, steps[key] = _search(calls, deadline) if time.perf_counter() <= deadline \
            else (None, 0)
        if result is None:
            unknown.append(key)
        elif result is not True:
            anomalies.append(_explain(key, calls, *result))
    details = {"keys": len(steps), "unknown_keys": unknown, "unknown": bool(unknown),
               "steps": steps, "not_checked": not_checked}
    valid = False if anomalies else (None if unknown else True)
    return make_verdict("linearizable", anomalies, details, valid=valid)


def _observations(ops: list[Operation]):
    """(op, value it saw): ok reads, and ok cas ops (they saw their expected value)."""
    for op in ok_reads(ops):
        yield op, op.value
    for op in ops:
        if op.f == CAS and op.type == OK:
            yield op, op.value[0]


def _impossible_observation(key, ops: list[Operation]) -> dict | None:
    """The first observation that no order of the operations could explain, as an anomaly."""
    writers: dict[Any, list[Operation]] = {}
    for op in ops:
        if op.f in REGISTER_UPDATES and op.type != FAIL:
            writers.setdefault(op.written, []).append(op)
    first_done = min((op.end for op in ops if op.f in REGISTER_UPDATES and op.type == OK),
                     default=math.inf)
    for op, value in sorted(_observations(ops), key=lambda o: o[0].start):
        what = f"{op.f} (op {op.invoke.index}) saw {value!r}"
        if value is None:
            if None not in writers and first_done < op.start:
                return _pre_check_anomaly(key, op, value, f"{what}, but a write had completed "
                                          "before it began and nothing empties the register")
            continue
        candidates = writers.get(value, [])
        if not candidates:
            why = "which no write that did not fail wrote"
        elif all(w.start > op.end for w in candidates):
            why = "written only by writes invoked after it returned"
        else:
            continue
        return _pre_check_anomaly(key, op, value, f"{what}, {why}", candidates)
    return None


def _pre_check_anomaly(key, op, value, message, writers=()) -> dict:
    return anomaly("not-linearizable", key, [op, *writers][:8], f"{key!r}: {message}",
                   stuck=op.invoke.index, depth=0, found_by=PRE_CHECK, value=value)


# A call of the search: (start, end, f, value, op); value is (expected, new) for a cas.
def _register_calls(ops: list[Operation]) -> list[tuple[float, float, str, Any, Operation]]:
    """The register operations the search must order.

    Failed writes and cas ops, and reads that did not end ok, are left out. An info write
    or cas may take effect at any time after its invoke, or never (Knossos: it completes at
    +infinity). With unique values this is exact and much cheaper: one whose value nobody
    could observe (no read returned it, no cas that did not fail expected it) can be
    dropped, as if it never happened -- after it only a write could come -- and one whose
    value an ok read or cas observed must take effect before that observation returned.
    """
    updates = [op for op in ops if op.f in REGISTER_UPDATES and op.type != FAIL]
    unique = len({w.written for w in updates}) == len(updates)
    first_seen: dict[Any, float] = {}
    for op, value in _observations(ops):
        first_seen[value] = min(op.end, first_seen.get(value, math.inf))
    expected = {w.value[0] for w in updates if w.f == CAS}
    calls = [(r.start, r.end, READ, r.value, r) for r in ok_reads(ops)]
    for w in updates:
        end = w.end
        if w.type != OK:
            if w.written not in first_seen and w.written not in expected:
                continue
            end = max(w.start, first_seen.get(w.written, math.inf)) if unique else math.inf
        calls.append((w.start, end, w.f, w.value, w))
    return calls


def _search(calls, deadline: float):
    """Wing-Gong search with Lowe's memoization, Porcupine-style.

    Returns (True, steps), (None, steps) when out of time, or (failure, steps).

    Events (calls and returns) sit in a doubly linked list in time order, calls before
    returns at equal times. Walking from the head, a call may be linearized now if the
    register allows it: it and its return are lifted out and the walk restarts. Meeting a
    return means that operation was not linearized before it returned: backtrack. Each
    (set of linearized ops, register state) is explored at most once; both are packed in one
    int (the ops' bits above the state's id) so the cache holds no containers.

    Three register-specific reductions keep high concurrency tractable; each is a forced
    move (no branching) because any linearization from here can be rearranged to start
    with it. Values nobody observed are one state, "unread" (no read or cas can tell them
    apart). A pending read of the current value is linearized at once: it changes nothing,
    so moving it earlier breaks no order. Otherwise, unless a pending cas expects the
    current value, all pending "unread" writes are linearized at once: a linearization
    from here starts with a write (a read of the current value would be pending, a cas of
    it is excluded), and each unread write is followed by a write or by nothing (no read
    or cas can follow it), so moving it to the front is harmless.
    A call is pending when no return of an op not yet linearized precedes it. An info op
    without a deadline has no return: it may be linearized, or left out (it never happened).
    """
    n = len(calls)
    # an info op with no deadline may never happen: it has no return and is optional
    required = [c[1] != math.inf for c in calls]
    events = sorted([(c[0], 0, i) for i, c in enumerate(calls)] +
                    [(c[1], 1, i) for i, c in enumerate(calls) if required[i]])
    size = len(events) + 1                        # node 0 is the head; -1 ends the list
    nxt = list(range(1, size)) + [-1]
    prv = [-1] + list(range(size - 1))
    op_of, is_call, ret = [-1] * size, [False] * size, [-1] * size
    call_node = [0] * n
    for node, (_, kind, i) in enumerate(events, start=1):
        op_of[node] = i
        if kind == 0:
            is_call[node], call_node[i] = True, node
        else:
            ret[call_node[i]] = node
    observed = [c[3] if c[2] == READ else c[3][0] for c in calls if c[2] != WRITE]
    values = [UNREAD] + list(dict.fromkeys(observed))
    state_id = {v: sid for sid, v in enumerate(values) if sid}
    # per op, as ints for speed: the state a read returns (-1: not a read), the state a
    # cas expects (-1: not a cas), the state a write or cas leaves (-1: a read)
    reads = [state_id[c[3]] if c[2] == READ else -1 for c in calls]
    expects = [state_id[c[3][0]] if c[2] == CAS else -1 for c in calls]
    makes = [-1 if c[2] == READ else state_id.get(c[4].written, 0) for c in calls]
    unread_write = [c[2] == WRITE and not makes[i] for i, c in enumerate(calls)]
    shift = len(values).bit_length()
    bit = [1 << (i + shift) for i in range(n)]
    cache: set[int] = set()
    stack: list[tuple[int, int, bool]] = []       # (call node, state before, forced?)
    state, linearized, remaining, steps = state_id.get(None, 0), 0, sum(required), 0
    best = (-1, 0, 0, ())
    fresh, node = True, 0
    while remaining:
        steps += 1
        if not steps & 1023 and time.perf_counter() > deadline:
            return None, steps
        dead_end = False
        if fresh:                                 # a new configuration: a forced move?
            fresh, node = False, nxt[0]
            forced, unread, cas_here, x = [], [], False, node
            while x != -1 and is_call[x]:         # the pending calls: before any return
                i = op_of[x]
                if reads[i] == state:
                    forced = [x]
                    break
                if unread_write[i]:
                    unread.append(x)
                elif expects[i] == state:
                    cas_here = True
                x = nxt[x]
            if not forced and not cas_here:       # a read of the state, else unread writes
                forced = unread
            if forced:
                bits = 0
                for x in forced:
                    bits |= bit[op_of[x]]
                new_state = state if reads[op_of[forced[0]]] >= 0 else 0
                key = linearized | bits | new_state
                if key in cache:
                    dead_end = True
                else:
                    cache.add(key)
                    for x in forced:
                        stack.append((x, state, True))
                        state = new_state
                        remaining -= required[op_of[x]]
                        _lift(x, ret[x], nxt, prv)
                    linearized |= bits
                    fresh = True
                    continue
        if not dead_end and is_call[node]:
            i = op_of[node]
            if makes[i] >= 0 and (expects[i] < 0 or expects[i] == state):
                key = linearized | bit[i] | makes[i]
                if key not in cache:
                    cache.add(key)
                    stack.append((node, state, False))
                    state, linearized = makes[i], linearized | bit[i]
                    remaining -= required[i]
                    _lift(node, ret[node], nxt, prv)
                    fresh = True
                    continue
            node = nxt[node]
            continue
        if not dead_end and len(stack) > best[0]:   # a return: its op was never linearized
            best = (len(stack), op_of[node], state, tuple(op_of[s] for s, _, _ in stack[-3:]))
        while True:                               # backtrack, past forced moves
            if not stack:
                return (best[0], best[1], values[best[2]], best[3]), steps
            x, state, forced = stack.pop()
            linearized ^= bit[op_of[x]]
            remaining += required[op_of[x]]
            _unlift(x, ret[x], nxt, prv)
            if not forced:
                node = nxt[x]
                break
    return True, steps


def _lift(call: int, ret: int, nxt: list[int], prv: list[int]) -> None:
    """Unlink a call and its return (-1: none) from the event list (dancing links)."""
    for x in (call, ret) if ret != -1 else (call,):
        p, q = prv[x], nxt[x]
        nxt[p] = q
        if q != -1:
            prv[q] = p


def _unlift(call: int, ret: int, nxt: list[int], prv: list[int]) -> None:
    """Relink them, in the reverse order of ``_lift``."""
    for x in (ret, call) if ret != -1 else (call,):
        p, q = prv[x], nxt[x]
        nxt[p] = x
        if q != -1:
            prv[q] = x


def _explain(key, calls, depth, stuck, state, prefix) -> dict:
    """A small window around where the longest linearizable prefix got stuck."""
    s_start, s_end, s_f, s_value, s_op = calls[stuck]
    overlapping = [c[4] for i, c in enumerate(calls)
                   if i != stuck and c[0] <= s_end and c[1] >= s_start][:8]
    window = [calls[i][4] for i in prefix] + [s_op] + overlapping
    window = sorted({id(op): op for op in window}.values(), key=lambda op: op.start)
    if s_f == CAS:
        what = f"cas {s_value[0]!r} -> {s_value[1]!r}"
    else:
        what = f"write {s_value!r}" if s_f == WRITE else f"read returning {s_value!r}"
    return anomaly("not-linearizable", key, window,
                    f"{key!r}: after linearizing {depth} operation(s) the register holds "
                    f"{state!r}, and the {what} (op {s_op.invoke.index}) cannot take effect "
                    "before it returned", stuck=s_op.invoke.index, depth=depth,
                    found_by=SEARCH)
