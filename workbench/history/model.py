"""Operation histories, in Jepsen's shape: the single source of truth every checker reads.

A client about to send a command records an ``invoke``; when the outcome is known it records
a completion for the same ``process``:

    ok    the operation definitely happened;
    fail  the operation definitely did not happen (a definite error, e.g. ``NOREPLICAS``);
    info  unknown: it may have happened at any time after the invoke, or never (a timeout,
          a dropped connection). Never turn an ``info`` into a ``fail``.

A process has at most one outstanding operation. An invoke that never got a completion is
treated as ``info``. A process whose operation ended ``info`` may still have that operation
in flight, so a recorder should continue with a fresh process id (as Jepsen does).

Operations (``f``) and their values; :meth:`History.append` refuses any other ``f``:

    write       register write of a unique string          read -> str | None
    cas         compare-and-set ``(expected, new)``: sets the register to ``new`` (a unique
                string) only if it holds ``expected``; ``fail`` when the server said the
                register held something else, ``info`` when nobody knows
    add         add a unique element to a set or list      read -> tuple | frozenset
    incr        add ``value`` (default 1) to a counter      read -> int
    final-read  a read done after the faults healed, as ``read``

A set read may be stored as a sorted tuple of its members rather than a frozenset: the
checkers only look at which elements a read saw, and a tuple costs a fraction of the memory
(see ``workloads.Recorder``).

This module is pure: no clocks, no sockets, no threads. Times are given by the recorder
(``time.monotonic()`` seconds); a recorder with several threads serializes its appends.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass, replace
from typing import Any, Iterator, NamedTuple

INVOKE, OK, FAIL, INFO = "invoke", "ok", "fail", "info"
TYPES = (INVOKE, OK, FAIL, INFO)
WRITE, CAS, READ, ADD, INCR, FINAL_READ = "write", "cas", "read", "add", "incr", "final-read"
READS = (READ, FINAL_READ)
UPDATES = (WRITE, CAS, ADD, INCR)
REGISTER_UPDATES = (WRITE, CAS)
FUNCTIONS = (READ, WRITE, CAS, ADD, INCR, FINAL_READ)


@dataclass(frozen=True)
class Op:
    """One event of a history: an invoke or a completion of one client operation."""

    process: int
    type: str
    f: str
    key: str
    value: Any = None
    time: float = 0.0
    index: int = -1
    error: str | None = None
    node: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["value"] = _encode(self.value)
        return {k: v for k, v in d.items() if v is not None or k == "value"}

    @classmethod
    def from_dict(cls, d: dict) -> Op:
        return cls(**{**d, "value": _decode(d.get("value"))})


class Operation(NamedTuple):
    """An invoke with its completion (``None``: it never completed, which counts as info)."""

    invoke: Op
    completion: Op | None

    @property
    def type(self) -> str:
        return self.completion.type if self.completion is not None else INFO

    @property
    def process(self) -> int:
        return self.invoke.process

    @property
    def f(self) -> str:
        return self.invoke.f

    @property
    def key(self) -> str:
        return self.invoke.key

    @property
    def value(self) -> Any:
        """What was written (updates) or what was read (reads; None unless ok)."""
        if self.invoke.f in UPDATES:
            return self.invoke.value
        return self.completion.value if self.type == OK else None

    @property
    def written(self) -> Any:
        """The value an update leaves behind: a write's or an add's value, a cas's new one."""
        value = self.invoke.value
        return value[1] if self.invoke.f == CAS else value

    @property
    def start(self) -> float:
        return self.invoke.time

    @property
    def end(self) -> float:
        """When the outcome became known; +inf for info (it may take effect any time later)."""
        return self.completion.time if self.type in (OK, FAIL) else math.inf

    @property
    def indices(self) -> list[int]:
        return [self.invoke.index] + ([self.completion.index] if self.completion else [])


class History:
    """An append-only list of ``Op`` with helpers to record and to pair operations."""

    def __init__(self, ops: list[Op] | None = None):
        self._ops: list[Op] = []
        self._pending: dict[int, Op] = {}
        self._pairs: tuple[int, list[Operation]] = (0, [])   # pairs() of the first n ops
        for op in ops or ():
            self.append(op)

    # -- list-like -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._ops)

    def __iter__(self) -> Iterator[Op]:
        return iter(self._ops)

    def __getitem__(self, i):
        return self._ops[i]

    def __eq__(self, other) -> bool:
        return isinstance(other, History) and self._ops == other._ops

    def __repr__(self) -> str:
        return f"History({len(self._ops)} ops)"

    # -- recording -------------------------------------------------------------------
    def append(self, op: Op) -> Op:
        """Add an op, numbering it; a completion must match the process's outstanding invoke."""
        if op.type not in TYPES:
            raise ValueError(f"unknown op type {op.type!r}")
        if op.f not in FUNCTIONS:
            raise ValueError(f"unknown operation f={op.f!r}; accepted: {', '.join(FUNCTIONS)}")
        if op.f == CAS and op.type == INVOKE and not (isinstance(op.value, (tuple, list))
                                                       and len(op.value) == 2):
            raise ValueError(f"a cas invoke's value is (expected, new), not {op.value!r}")
        pending = self._pending.get(op.process)
        if op.type == INVOKE:
            if pending is not None:
                raise ValueError(f"process {op.process} already has an outstanding op "
                                 f"(index {pending.index})")
        elif pending is None:
            raise ValueError(f"process {op.process} completes {op.f!r} without an invoke")
        elif (op.f, op.key) != (pending.f, pending.key):
            raise ValueError(f"completion {op.f} {op.key!r} does not match invoke "
                             f"{pending.f} {pending.key!r} of process {op.process}")
        op = replace(op, index=len(self._ops))
        self._ops.append(op)
        if op.type == INVOKE:
            self._pending[op.process] = op
        else:
            del self._pending[op.process]
        return op

    def invoke(self, process: int, f: str, key: str, value: Any = None, *, time: float,
               node: str | None = None) -> Op:
        return self.append(Op(process, INVOKE, f, key, value, time, node=node))

    def complete(self, process: int, type: str, value: Any = None, *, time: float,
                 error: str | None = None, node: str | None = None) -> Op:
        """Complete the process's outstanding op; an update's value defaults to the invoke's."""
        pending = self._pending.get(process)
        if pending is None:
            raise ValueError(f"process {process} has no outstanding op")
        if value is None and pending.f in UPDATES:
            value = pending.value
        return self.append(Op(process, type, pending.f, pending.key, value, time, error=error,
                              node=node if node is not None else pending.node))

    def ok(self, process: int, value: Any = None, *, time: float, **kw) -> Op:
        return self.complete(process, OK, value, time=time, **kw)

    def fail(self, process: int, *, time: float, error: str | None = None, **kw) -> Op:
        return self.complete(process, FAIL, time=time, error=error, **kw)

    def info(self, process: int, *, time: float, error: str | None = None, **kw) -> Op:
        return self.complete(process, INFO, time=time, error=error, **kw)

    @property
    def outstanding(self) -> dict[int, Op]:
        """Invokes still waiting for a completion, by process."""
        return dict(self._pending)

    # -- reading ---------------------------------------------------------------------
    def pairs(self) -> list[Operation]:
        """Every invoke with its completion, in invoke order; unmatched invokes get None.

        Paired once per length of the history (it only grows) and handed out as a new
        list: every checker of a summary, the measurements and the report read the pairs.
        """
        n = len(self._ops)
        if self._pairs[0] != n:
            self._pairs = (n, _pair(self._ops[:n]))
        return list(self._pairs[1])

    operations = pairs

    def keys(self) -> list[str]:
        return sorted({op.key for op in self._ops})

    def start_time(self) -> float:
        return self._ops[0].time if self._ops else 0.0

    def end_time(self) -> float:
        return max((op.time for op in self._ops), default=0.0)

    # -- JSON ------------------------------------------------------------------------
    def to_json(self, **kw) -> str:
        return json.dumps([op.to_dict() for op in self._ops], **kw)

    @classmethod
    def from_json(cls, text: str) -> History:
        return cls([Op.from_dict(d) for d in json.loads(text)])


def _pair(ops: list[Op]) -> list[Operation]:
    out: list[Operation] = []
    slot: dict[int, int] = {}
    for op in ops:
        if op.type == INVOKE:
            slot[op.process] = len(out)
            out.append(Operation(op, None))
        else:
            i = slot.pop(op.process)
            out[i] = Operation(out[i].invoke, op)
    return out


def _encode(value: Any) -> Any:
    """JSON for values: tuples become lists, frozensets a tagged sorted list."""
    if isinstance(value, (set, frozenset)):
        return {"set": sorted((_encode(v) for v in value), key=repr)}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"set"}:
        return frozenset(_decode(v) for v in value["set"])
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    return value


def simulated_register_history(seed: int, n_ops: int = 200, *, processes: int = 5,
                               keys: int = 2, p_info: float = 0.05, p_fail: float = 0.05,
                               p_read: float = 0.5, p_cas: float = 0.0) -> History:
    """A random history of a linearizable register store, for testing checkers.

    Each process runs operations back to back with random gaps and latencies; each
    operation takes effect at a random instant inside its interval (so the history is
    linearizable by construction). Writes that ``fail`` never take effect; ``info`` writes
    take effect (possibly after the client gave up) or not, at random; info and failed
    reads return nothing. A process whose op ended info continues under a fresh id.
    A fraction ``p_cas`` of the writes are compare-and-sets expecting one of the key's
    last few values (or the empty register); one that finds another value at its instant
    ends ``fail``, as the server would have said, or stays ``info`` without effect.
    """
    rng = random.Random(seed)
    clock = [rng.random() for _ in range(processes)]
    ids = list(range(processes))
    recent: dict[str, list] = {}
    ops = []       # (start, end, effect_time or None, process, f, key, value, type)
    for n in range(n_ops):
        slot = min(range(processes), key=clock.__getitem__)
        start = clock[slot]
        end = start + rng.expovariate(1.0) + 0.01
        clock[slot] = end + rng.expovariate(4.0)
        key, f = f"k{rng.randrange(keys)}", READ if rng.random() < p_read else WRITE
        r = rng.random()
        kind = INFO if r < p_info else FAIL if r < p_info + p_fail else OK
        effect = start + rng.random() * (end - start)
        if kind == FAIL and f != READ or kind == INFO and f != READ and rng.random() < 0.5:
            effect = None
        elif kind == INFO and f != READ:
            effect = start + rng.random() * 3 * (end - start)   # maybe after the timeout
        value = f"{key}-v{n}"
        if f == WRITE and p_cas and rng.random() < p_cas:
            f, value = CAS, (rng.choice(recent.get(key, [None])[-3:]), value)
        if f != READ:
            recent.setdefault(key, [None]).append(value[1] if f == CAS else value)
        ops.append([start, end, effect, ids[slot], f, key, value, kind])
        if kind == INFO:
            ids[slot] += processes
    state: dict[str, Any] = {}
    for op in sorted((o for o in ops if o[2] is not None), key=lambda o: o[2]):
        f, key, value = op[4:7]
        if f == WRITE:
            state[key] = value
        elif f == READ:
            op[6] = state.get(key)
        elif state.get(key) == value[0]:
            state[key] = value[1]
        elif op[7] == OK:
            op[7] = FAIL
    events = []
    for start, end, _, process, f, key, value, kind in ops:
        events.append((start, 0, Op(process, INVOKE, f, key, None if f == READ else value,
                                    start)))
        if f == READ and kind != OK:
            value = None
        events.append((end, 1, Op(process, kind, f, key, value, end)))
    events.sort(key=lambda e: (e[0], e[1]))
    return History([op for _, _, op in events])
