"""What every checker returns, and the small helpers they share.

A :class:`Verdict` says ``valid`` True, False or None (unknown) and lists the anomalies
found, each pointing at op indices of the history.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from .model import (ADD, CAS, FINAL_READ, INCR, OK, READS, REGISTER_UPDATES, WRITE, History,
                    Operation)

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


def make_verdict(name: str, anomalies: list[dict], details: dict | None = None,
             valid: bool | None = None) -> Verdict:
    if valid is None and not (details or {}).get("unknown"):
        valid = not anomalies
    return Verdict(name, valid, len(anomalies), anomalies, details or {})


def anomaly(kind: str, key: str, ops: list[Operation], message: str, **extra) -> dict:
    indices = [i for op in ops for i in op.indices]
    return {"type": kind, "key": key, "ops": indices, "message": message, **extra}


def by_key(history: History) -> dict[str, list[Operation]]:
    keys: dict[str, list[Operation]] = defaultdict(list)
    for op in history.pairs():
        keys[op.key].append(op)
    return keys


def key_kind(ops: list[Operation]) -> str:
    """What a key is, by what was done to it; a key nobody updated, by what its reads saw.

    A never-updated key still has a kind: an empty set read back after a run without
    clients is an empty set, not a register value nobody wrote.
    """
    fs = {op.f for op in ops}
    if ADD in fs:
        return SET
    if INCR in fs:
        return COUNTER
    if fs.intersection(REGISTER_UPDATES):
        return REGISTER
    seen = [op.value for op in ops if op.f in READS and op.type == OK and op.value is not None]
    if any(isinstance(v, (tuple, list, set, frozenset)) for v in seen):
        return SET
    if seen and all(isinstance(v, int) and not isinstance(v, bool) for v in seen):
        return COUNTER
    return REGISTER


def final_state(history: History) -> dict[str, Any] | None:
    """The value of each key's last ok ``final-read``; None if the history has none."""
    final = {op.key: op.value for op in history.pairs() if op.f == FINAL_READ and op.type == OK}
    return final or None


def updates_by_value(ops: list[Operation]) -> dict[Any, Operation]:
    """Value (or element) -> the update that wrote it; values are unique per key."""
    return {op.written: op for op in ops if op.f in (WRITE, CAS, ADD)}


def ok_reads(ops: list[Operation]) -> list[Operation]:
    return [op for op in ops if op.f in READS and op.type == OK]
