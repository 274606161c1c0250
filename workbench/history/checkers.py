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
                    register semantics (a Wing-Gong / Porcupine search, in ``linearizability.py``).

Every verdict says ``valid`` True, False, or None (unknown: e.g. the search ran out of time),
and points at op indices of the history. The checkers are pure; the only clock read is the
linearizability search's time budget.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from typing import Any

from .linearizability import linearizable
from .model import ADD, FAIL, INCR, INFO, OK, WRITE, History, Operation
from .verdict import (COUNTER, REGISTER, SET, Verdict, anomaly, by_key, final_state,
                      key_kind, make_verdict, ok_reads, updates_by_value)


# -- lost writes ----------------------------------------------------------------------------

def lost_writes(history: History, final: dict[str, Any] | None = None) -> Verdict:
    """Ok updates missing from the final state.

    Failed updates found in the final state go to ``details["aborted"]`` and values nobody
    wrote to ``details["unexpected"]``; either also makes the verdict invalid.
    """
    final = final if final is not None else final_state(history)
    if final is None:
        return make_verdict("lost-writes", [], {"unknown": "no final state to compare with"})
    found: list[dict] = []
    counts = {"ok": 0, "info": 0, "fail": 0, "recovered": 0}
    for key, ops in sorted(by_key(history).items()):
        for op in ops:
            if op.f in (WRITE, ADD, INCR):
                counts[op.type] += 1
        check = {SET: _set_lost, COUNTER: _counter_lost}.get(key_kind(ops), _register_lost)
        found += check(key, ops, final.get(key), counts)
    lost = [a for a in found if a["type"] == "lost-write"]
    details = {**counts, "lost": len(lost),
               "aborted": [a for a in found if a["type"] == "aborted-write"],
               "unexpected": [a for a in found if a["type"] == "unexpected"]}
    return make_verdict("lost-writes", lost, details, valid=not found)


def _set_lost(key, ops, final, counts) -> list[dict]:
    present, added, found = set(final or ()), updates_by_value(ops), []
    for element, op in added.items():
        if op.type == OK and element not in present:
            found.append(anomaly("lost-write", key, [op], f"add {element!r} was acknowledged "
                                  f"but is missing from the final {key!r}", value=element))
        elif op.type == FAIL and element in present:
            found.append(anomaly("aborted-write", key, [op], f"add {element!r} failed but is "
                                  f"present in the final {key!r}", value=element))
        elif op.type == INFO and element in present:
            counts["recovered"] += 1
    return found + [anomaly("unexpected", key, [], f"{element!r} is in the final {key!r} "
                             "but was never added", value=element)
                    for element in present - added.keys()]


def _counter_lost(key, ops, final, counts) -> list[dict]:
    value = final or 0
    oks = sum(op.value or 1 for op in ops if op.f == INCR and op.type == OK)
    infos = [op.value or 1 for op in ops if op.f == INCR and op.type == INFO]
    low, high = oks + sum(d for d in infos if d < 0), oks + sum(d for d in infos if d > 0)
    if value < low:
        return [anomaly("lost-write", key, [], f"final {key!r} is {value}, but acknowledged "
                         f"increments add up to at least {low}", value=value)]
    if value > high:
        return [anomaly("unexpected", key, [], f"final {key!r} is {value}, more than every "
                         f"attempted increment ({high})", value=value)]
    return []


def _register_lost(key, ops, value, counts) -> list[dict]:
    writer = updates_by_value(ops).get(value)
    if value is not None and writer is None:
        return [anomaly("unexpected", key, [], f"final {key!r} = {value!r} was never written",
                         value=value)]
    if writer is not None and writer.type == FAIL:
        return [anomaly("aborted-write", key, [writer], f"final {key!r} = {value!r} comes "
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
        found.append(anomaly("lost-write", key, [w] + ([writer] if writer else []),
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
    for key, ops in sorted(by_key(history).items()):
        kind = key_kind(ops)
        if kind not in kinds:
            continue
        seen: dict[Any, list[Operation]] = defaultdict(list)
        for read in ok_reads(ops):
            for v in _read_values(read, kind):
                seen[v].append(read)
        yield key, kind, updates_by_value(ops), seen


def _read_anomaly(kind, key, value, writes, reads, message) -> dict:
    return anomaly(kind, key, writes + reads[:5], message, value=value, reads=len(reads))


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
    return make_verdict("aborted-reads", anomalies)


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
    for key, ops in sorted(by_key(history).items()):
        if key_kind(ops) == COUNTER:
            high = sum(max(op.value or 1, 0) for op in ops if op.f == INCR and op.type != FAIL)
            for read in ok_reads(ops):
                if read.value is not None and read.value > high:
                    anomalies.append(anomaly("dirty-read", key, [read], f"read of {key!r} "
                                              f"saw {read.value}, more than every increment "
                                              f"that did not fail ({high})", value=read.value))
    return make_verdict("dirty-reads", anomalies, {"final": final is not None})


def stale_reads(history: History) -> Verdict:
    """Register reads of a value overwritten by a write that completed before the read began.

    A read of ``v`` is stale when some ok write ``w2`` completed before the read was invoked
    and the write of ``v`` completed before ``w2`` was invoked: in real time ``v`` was gone.
    (A read of the initial empty value is stale once any ok write completed before it.)
    """
    anomalies = []
    for key, ops in sorted(by_key(history).items()):
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
        writers = updates_by_value(ops)
        for read in ok_reads(ops):
            w = writers.get(read.value)
            if read.value is None:
                later = first_done[0]
            elif w is not None and w.type == OK:
                later = first_done[bisect_right(starts, w.end)]
            else:
                continue        # phantom, aborted or info values: other checkers' business
            if later is not None and later.end < read.start:
                anomalies.append(anomaly(
                    "stale-read", key, [read, later] + ([w] if w else []),
                    f"read of {key!r} returned {read.value!r}, but write {later.value!r} "
                    f"had already replaced it (completed at {later.end:.6g}, read began at "
                    f"{read.start:.6g})", value=read.value, overwritten_by=later.value))
    return make_verdict("stale-reads", anomalies)


# -- availability ---------------------------------------------------------------------------

def unavailability(history: History) -> Verdict:
    """The longest window without an acknowledged update (a measurement, always valid)."""
    ops = history.pairs()
    if not ops:
        return make_verdict("unavailability", [], {"longest_s": 0.0, "start": None, "end": None})
    done = sorted(op.completion.time for op in ops if op.f in (WRITE, ADD, INCR)
                  and op.type == OK)
    marks = [history.start_time()] + done + [history.end_time()]
    length, start, end = max((b - a, a, b) for a, b in zip(marks, marks[1:]))
    details = {"longest_s": length, "start": start, "end": end, "ok_writes": len(done),
               "duration_s": history.end_time() - history.start_time()}
    return make_verdict("unavailability", [], details, valid=True)


def summary(history: History, final: dict[str, Any] | None = None,
            time_limit_s: float = 10.0) -> dict[str, Verdict]:
    """Every applicable checker, by name."""
    kinds = {key_kind(ops) for ops in by_key(history).values()}
    verdicts = [lost_writes(history, final), dirty_reads(history, final),
                aborted_reads(history)]
    if REGISTER in kinds:
        verdicts += [stale_reads(history), linearizable(history, time_limit_s)]
    verdicts.append(unavailability(history))
    return {v.name: v for v in verdicts}

