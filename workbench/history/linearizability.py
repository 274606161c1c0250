"""Linearizability of register histories: a Wing-Gong / Porcupine search, per key.

Split out of :mod:`checkers` because the search is the one subtle algorithm of the
verdict layer; :func:`checkers.summary` runs it with the others.
"""

from __future__ import annotations

import math
import time
from typing import Any

from .model import FAIL, OK, WRITE, History, Operation
from .verdict import REGISTER, UNREAD, Verdict, anomaly, by_key, key_kind, make_verdict, ok_reads

# -- linearizability ------------------------------------------------------------------------

def linearizable(history: History, time_limit_s: float = 10.0) -> Verdict:
    """Is every register key linearizable? (per key: P-compositionality).

    ``valid`` is None when a key's search did not finish within ``time_limit_s`` (the budget
    for the whole history) and no other key was found non-linearizable.
    """
    deadline = time.perf_counter() + time_limit_s
    anomalies, unknown, checked = [], [], 0
    for key, ops in sorted(by_key(history).items()):
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
    return make_verdict("linearizable", anomalies, details, valid=valid)


def _register_calls(ops: list[Operation]) -> list[tuple[float, float, bool, Any, Operation]]:
    """The register operations the search must order: (start, end, is_write, value, op).

    Failed writes and reads that did not end ok are left out. An info write may take effect
    at any time after its invoke, or never (Knossos: it completes at +infinity). With unique
    values this is exact and much cheaper: a write nobody read can be dropped (as if it
    never happened), and one that was read must take effect before the first read of it
    returned.
    """
    reads = ok_reads(ops)
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
    return anomaly("not-linearizable", key, window,
                    f"{key!r}: after linearizing {depth} operation(s) the register holds "
                    f"{state!r}, and the {what} (op {s_op.invoke.index}) cannot take effect "
                    "before it returned", stuck=s_op.invoke.index, depth=depth)
