"""Checkers: a history (and the state read back after healing) in, verdicts out.

Theory of operation. A history records, for every client operation, an ``invoke`` and one
completion (see ``model.py``). Jepsen's three outcomes are the heart of every rule here:

    ok    the operation definitely happened, somewhere between its invoke and its completion;
    fail  it definitely did not happen: it must leave no trace anywhere;
    info  unknown: it may take effect at any time after its invoke, or never. A checker must
          accept both possibilities and must never count an info operation as lost.

Keys are typed by what was done to them: a key with ``add`` operations is a set (or list)
of unique elements, one with ``incr`` a counter, one with ``write``/``cas`` a register of
unique strings; a key nobody updated is typed by what its reads returned (an empty set
read back is a set, not a register value nobody wrote).
``final`` maps each key to its value read back after the faults healed (a missing key is
empty); without it, the last ok ``final-read`` of each key in the history is used.

The anomalies:

    lost write      an ok write is not in the final state: an ok add whose element is
                    missing, a register whose final value was written before the ok write
                    (or cas) even began (or is empty), a counter below its ok increments;
    aborted read    a read saw the effect of a failed write (Jepsen's G1a; Redis-Raft #23);
    dirty read      a read saw a value that never durably existed: written by a failed
                    write, by no write at all, or erased later (an element missing from the
                    final state, acknowledged or not; a register value written after the
                    final value's write completed; a counter above its final value);
    stale read      a register read returned a value already overwritten, in real time,
                    by a write that completed before the read began;
    not linearizable  no total order of the register operations (read, write, cas)
                    respects real time and register semantics (a Wing-Gong / Porcupine
                    search, in ``linearizability.py``).

What is checked, by kind of key:

    register  lost writes, aborted / dirty / stale reads, linearizability;
    set/list  lost acknowledged adds, aborted reads, dirty reads. Not linearizability, and
              not the order of a list: only which elements each read saw;
    counter   lost increments (final below the ok ones), dirty reads (above every
              increment that did not fail, or above the final value).

Every verdict says ``valid`` True, False, or None (unknown: e.g. the search ran out of time),
and points at op indices of the history. The checkers are pure; the only clock read is the
linearizability search's time budget.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from typing import Any

from .linearizability import linearizable
from .model import FAIL, INCR, INFO, OK, REGISTER_UPDATES, UPDATES, History, Operation
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
            if op.f in UPDATES:
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
        if w.f not in REGISTER_UPDATES or w.type != OK or w is writer:
            continue
        if writer is None:
            why = "the key is empty"
        elif writer.type == OK and writer.end < w.start:
            why = f"it holds {value!r}, written before this write began"
        else:
            continue            # the final writer may have legitimately overwritten w
        found.append(anomaly("lost-write", key, [w] + ([writer] if writer else []),
                              f"{w.f} {w.written!r} was acknowledged, but in the final "
                              f"state {why}", value=w.written))
    return found


# -- reads ----------------------------------------------------------------------------------

def _read_values(op: Operation, kind: str):
    """What a read observed, as values/elements (registers: the value, if any)."""
    if kind == SET:
        return op.value or ()
    return () if op.value is None else (op.value,)


def _observed(history: History) -> list[tuple]:
    """(key, kind, writers, reads, {value: how many reads saw it}) per register and set key.

    Counting (in C, through ``Counter.update``) rather than listing the reads of every
    element keeps this linear in what was read: a set read sees thousands of elements.
    Still the costliest pass over a set history: :func:`summary` counts once for both
    read checkers.
    """
    observed = []
    for key, ops in sorted(by_key(history).items()):
        kind = key_kind(ops)
        if kind not in (REGISTER, SET):
            continue
        reads = ok_reads(ops)
        seen: Counter = Counter()
        for read in reads:
            seen.update(_read_values(read, kind))
        observed.append((key, kind, updates_by_value(ops), reads, seen))
    return observed


def _read_anomalies(name, key, kind, reads, seen, found: dict[Any, tuple]) -> list[dict]:
    """One anomaly per value in ``found`` (value -> (writer or None, why)), each pointing at
    the writer and the first five reads that saw the value."""
    if not found:
        return []
    first: dict[Any, list[Operation]] = {value: [] for value in found}
    suspects = set(found)
    for read in reads:
        for value in suspects.intersection(_read_values(read, kind)):
            first[value].append(read)
            if len(first[value]) == 5:
                suspects.discard(value)
        if not suspects:
            break
    out = []
    for value, (writer, why) in found.items():
        writes = [writer] if writer is not None else []
        out.append(anomaly(name, key, writes + first[value], f"{seen[value]} read(s) of "
                           f"{key!r} saw {value!r}, {why}", value=value, reads=seen[value]))
    return out


def aborted_reads(history: History) -> Verdict:
    """Reads that saw the effect of a failed write (G1a)."""
    return _aborted_reads(_observed(history))


def _aborted_reads(observed: list[tuple]) -> Verdict:
    anomalies = []
    for key, kind, writers, reads, seen in observed:
        found = {value: (writers[value], "written by a write that failed")
                 for value in seen if value in writers and writers[value].type == FAIL}
        anomalies += _read_anomalies("aborted-read", key, kind, reads, seen, found)
    return make_verdict("aborted-reads", anomalies)


def dirty_reads(history: History, final: dict[str, Any] | None = None) -> Verdict:
    """Reads of values that never durably existed: written by a failed write, by no write,
    or erased later -- a set element missing from the final state, a register value
    written after the final value's write had completed, a counter above its final value.

    The erased ones need a final state (``final``, or final reads in the history), and a
    read that reached the node which later lost the writes (e.g. the cut-off primary of a
    split brain) while it still held them.
    """
    return _dirty_reads(history, final, _observed(history))


def _dirty_reads(history: History, final: dict[str, Any] | None,
                 observed: list[tuple]) -> Verdict:
    final = final if final is not None else final_state(history)
    anomalies = []
    for key, kind, writers, reads, seen in observed:
        erased = _erased(kind, key, writers, final)
        found = {}
        for value in seen:
            w = writers.get(value)
            if w is None:
                found[value] = (None, "which no write ever wrote")
            elif w.type == FAIL:
                found[value] = (w, "written by a write that failed")
            elif erased(value, w):
                how = "an acknowledged" if w.type == OK else "an unacknowledged"
                found[value] = (w, f"from {how} {w.f} that is gone from the final state")
        anomalies += _read_anomalies("dirty-read", key, kind, reads, seen, found)
    for key, ops in sorted(by_key(history).items()):
        if key_kind(ops) == COUNTER:
            anomalies += _counter_dirty(key, ops, final)
    return make_verdict("dirty-reads", anomalies, {"final": final is not None})


def _erased(kind, key, writers, final):
    """``erased(value, writer)``: did the final state lose this read value?"""
    if final is None:
        return lambda value, w: False
    if kind == SET:
        present = set(final.get(key) or ())
        return lambda value, w: value not in present
    last = final.get(key)
    last_writer = writers.get(last)
    if last is None:                       # the register is empty: every value was erased
        return lambda value, w: True
    if last_writer is None or last_writer.type != OK:
        return lambda value, w: False      # the final value's own story is unclear
    # written after the final value's write completed, yet not final: rolled back
    return lambda value, w: value != last and last_writer.end < w.start


def _counter_dirty(key, ops, final) -> list[dict]:
    increments = [op.value or 1 for op in ops if op.f == INCR and op.type != FAIL]
    high = sum(max(d, 0) for d in increments)
    last = final.get(key, 0) if final is not None else None
    monotonic = all(d >= 0 for d in increments)
    found = []
    for read in ok_reads(ops):
        if read.value is None:
            continue
        if read.value > high:
            why = f"more than every increment that did not fail ({high})"
        elif last is not None and monotonic and read.value > last:
            why = f"more than the final value {last}: increments it saw were erased"
        else:
            continue
        found.append(anomaly("dirty-read", key, [read], f"read of {key!r} saw {read.value}, "
                             f"{why}", value=read.value))
    return found


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
        writes = sorted((op for op in ops if op.f in REGISTER_UPDATES and op.type == OK),
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
                    f"read of {key!r} returned {read.value!r}, but {later.f} {later.written!r} "
                    f"had already replaced it (completed at {later.end:.6g}, read began at "
                    f"{read.start:.6g})", value=read.value, overwritten_by=later.written))
    return make_verdict("stale-reads", anomalies)


# -- availability ---------------------------------------------------------------------------

def unavailability(history: History) -> Verdict:
    """The longest window without an acknowledged update (a measurement, always valid)."""
    ops = history.pairs()
    if not ops:
        return make_verdict("unavailability", [], {"longest_s": 0.0, "start": None, "end": None})
    done = sorted(op.completion.time for op in ops if op.f in UPDATES and op.type == OK)
    marks = [history.start_time()] + done + [history.end_time()]
    length, start, end = max((b - a, a, b) for a, b in zip(marks, marks[1:]))
    details = {"longest_s": length, "start": start, "end": end, "ok_writes": len(done),
               "duration_s": history.end_time() - history.start_time()}
    return make_verdict("unavailability", [], details, valid=True)


def summary(history: History, final: dict[str, Any] | None = None,
            time_limit_s: float = 10.0) -> dict[str, Verdict]:
    """Every applicable checker, by name: ``linearizable`` and ``stale-reads`` only when the
    history has register keys (see the table at the top of this module)."""
    kinds = {key_kind(ops) for ops in by_key(history).values()}
    observed = _observed(history)
    verdicts = [lost_writes(history, final), _dirty_reads(history, final, observed),
                _aborted_reads(observed)]
    if REGISTER in kinds:
        verdicts += [stale_reads(history), linearizable(history, time_limit_s)]
    verdicts.append(unavailability(history))
    return {v.name: v for v in verdicts}

