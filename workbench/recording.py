"""A cluster's event stream, recorded: bounded, coalesced, and saved as JSON lines.

A :class:`Recording` subscribes to ``cluster.events`` (``Cluster(record=True)`` does it
before the first node starts) and keeps what a replay needs to redraw the run without
the cluster (see :mod:`workbench.clusterstate` and ``viz.Replay``).

Theory of operation. Every write publishes several events (the command, the replicas'
acks, the fsync, the held reply and its release...): recording each would cost memory
and throughput in proportion to the load. The kinds in :data:`SAMPLED_EVENTS` are
therefore *sampled*: per node and kind (per replica, for acks) at most one entry every
``sample_s`` seconds, standing for every event of its window -- the latest one's fields
(offsets, commit indexes and counts are absolute), with the window's deltas summed
(released clients, applied entries), the highest offset a held reply waits for, and the
keys the window's writes changed; the entry says how many events it stands for. Every
other event is kept exactly, and a non-sampled event first flushes the open windows, so
a crash or a partition always lands after the last offsets before it.

The recording is bounded by ``max_events`` entries: past it the oldest are dropped and
counted, and folded into :attr:`initial_state`, so a replay of what is left still starts
from the right state.

The file is JSON lines: a header (``schema`` -- the events' :data:`EVENT_SCHEMA` --
``mode``, ``nodes``, ``started``, ``dropped``, ``initial_state``...), then one
``event_to_dict`` line per entry (with ``"coalesced": n`` when it stands for ``n > 1``
events), then, if a history was attached, one ``{"op": ...}`` line per operation.
History times are ``time.monotonic()`` seconds; the header's ``clock_offset`` turns them
into the events' wall-clock time. A set workload's reads return the whole set, so a
history saved whole grows with the square of the run's length: by default a read of
more than :data:`SAVED_ELEMENTS` elements is saved as its size (``"<523 elements>"``), the
header says so (``history_values``), and a loaded history is then for replays only
(``history_complete`` is False), not for the checkers.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections import deque
from dataclasses import replace

from .clusterstate import ClusterState, fault_windows, state_at, states_over
from .events import EVENT_SCHEMA, PER_WRITE_EVENTS, Event, event_from_dict, event_to_dict

RECORDING_FORMAT = 1
SAMPLED_EVENTS = PER_WRITE_EVENTS
SAMPLE_S = 0.05
MAX_EVENTS = 100_000         # entries kept (a few tens of MB at most)
MAX_SAMPLE_KEYS = 64         # keys of one CommandExecuted sample
SUBSCRIBER_QUEUE = 50_000    # events waiting for the recorder thread before the bus drops
SAVED_ELEMENTS = 32          # a longer read value is saved as its size (save(full_history=False))
FULL, SUMMARIZED = "full", "long reads summarized"


def running_in_kernel() -> bool:
    """True inside an IPython kernel (a notebook), where recordings are on by default."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    shell = get() if get is not None else None
    return getattr(shell, "kernel", None) is not None


def _text(key):
    return key.decode("utf-8", "backslashreplace") if isinstance(key, bytes) else key


class _Window:
    """The events of one node and kind since its last entry: the newest one, how many,
    and what the entry must sum or keep (plain attributes: this runs once per event)."""

    __slots__ = ("latest", "count", "clients", "entries", "offset", "keys")

    def __init__(self, event: Event, wrote: bool):
        self.latest, self.count = event, 1
        self.clients = getattr(event, "clients", 0)          # RepliesReleased
        self.entries = getattr(event, "entries", 0)          # RaftCommitted
        self.offset = getattr(event, "offset", 0)            # the highest, for ReplyHeld
        self.keys = dict.fromkeys(event.keys) if wrote and event.kind == "CommandExecuted" \
            else {}

    def add(self, event: Event, wrote: bool) -> None:
        self.latest = event
        self.count += 1
        kind = event.kind
        if kind == "RepliesReleased":
            self.clients += event.clients
        elif kind == "RaftCommitted":
            self.entries += event.entries
        elif kind == "ReplyHeld":
            self.offset = max(self.offset, event.offset)
        elif kind == "CommandExecuted" and wrote and len(self.keys) < MAX_SAMPLE_KEYS:
            self.keys.update(dict.fromkeys(event.keys))

    def entry(self) -> Event:
        """The one event that stands for the window."""
        event, kind = self.latest, self.latest.kind
        if self.count == 1:
            return _tidy(event)
        if kind == "RepliesReleased":
            return replace(event, clients=self.clients)
        if kind == "RaftCommitted":
            return replace(event, entries=self.entries)
        if kind == "ReplyHeld":
            return replace(event, offset=self.offset)
        if kind == "CommandExecuted":
            return replace(event, keys=tuple(map(_text, list(self.keys)[:MAX_SAMPLE_KEYS])))
        return event


def _tidy(event: Event) -> Event:
    """Keys as text (they arrive as the client's bytes): an entry is JSON-ready."""
    if event.kind == "CommandExecuted" and any(isinstance(k, bytes) for k in event.keys):
        return replace(event, keys=tuple(map(_text, event.keys)))
    return event


class Recording:
    """A cluster's events, kept for a replay: ``record(event)`` from any thread."""

    def __init__(self, mode: str | None = None, nodes=(), *, max_events: int = MAX_EVENTS,
                 sample_s: float = SAMPLE_S):
        if int(max_events) < 1:
            raise ValueError(f"max_events must be at least 1, not {max_events!r}")
        self.mode = mode
        self.nodes = list(nodes)
        self.max_events = int(max_events)
        self.sample_s = float(sample_s)
        self.started = time.time()
        self.ended: float | None = None
        self.clock_offset = time.time() - time.monotonic()   # wall minus monotonic
        self.dropped = 0            # events dropped for the bound (folded into initial_state)
        self.coalesced = 0          # events that went into a sample instead of an entry
        self.history = None
        self.history_complete = True   # False: loaded with long reads summarized
        self._lock = threading.Lock()
        self._entries: deque = deque()
        self._base: ClusterState | None = None
        self._pending: dict[tuple, _Window] = {}
        self._last_sample: dict[tuple, float] = {}
        self._last_offset: dict[str, int] = {}
        self._bus = None
        self._subscription = None

    # -- recording ----------------------------------------------------------------------
    @classmethod
    def of(cls, cluster, **kwargs) -> "Recording":
        """A recording of ``cluster``'s events from now on."""
        recording = cls(cluster.mode, cluster.names, **kwargs)
        recording.follow(cluster.events)
        return recording

    def follow(self, bus) -> None:
        """Record every event ``bus`` publishes from now on, until :meth:`stop`."""
        if self._subscription is not None:
            raise RuntimeError("this recording already follows an event bus")
        self._bus = bus
        self._subscription = bus.subscribe(self.record, max_queue=SUBSCRIBER_QUEUE)

    def stop(self) -> None:
        """Record nothing more (what was recorded stays)."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            self._bus.unsubscribe(subscription)

    def settle(self, timeout: float = 2.0) -> bool:
        """Wait up to ``timeout`` seconds for the events published so far to reach the
        recording (they travel on the bus's thread); True once they have."""
        subscription = self._subscription
        if subscription is None:
            return True
        deadline = time.monotonic() + timeout
        while True:
            while subscription.pending:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.002)
            with self._lock:        # the event being recorded, if any, is in
                if not subscription.pending:
                    return True

    def record(self, event: Event) -> None:
        """Keep ``event`` (sampled if its kind is in SAMPLED_EVENTS); thread-safe."""
        with self._lock:
            if event.kind in SAMPLED_EVENTS:
                self._sample(event)
            else:
                if self._pending:
                    self._flush_pending()
                self._push(event, 1)
                if event.kind == "ClusterClosed":
                    self.ended = event.time

    def _sample(self, event: Event) -> None:
        kind = event.kind
        key = (event.node, kind, event.replica) if kind == "ReplicaAcked" else (event.node, kind)
        wrote = False
        if kind == "CommandExecuted":
            # a window keeps the keys its writes changed: the commands that moved the offset
            wrote = event.offset > self._last_offset.get(event.node, -1)
            if wrote:
                self._last_offset[event.node] = event.offset
        window = self._pending.get(key)
        if window is None:
            window = _Window(event, wrote)
        else:
            window.add(event, wrote)
        if event.time - self._last_sample.get(key, -math.inf) >= self.sample_s:
            self._last_sample[key] = event.time
            self._pending.pop(key, None)
            self._push(window.entry(), window.count)
        else:
            self._pending[key] = window

    def _flush_pending(self) -> None:
        pending = sorted(self._pending.items(), key=lambda item: item[1].latest.time)
        self._pending.clear()
        for key, window in pending:
            self._last_sample[key] = window.latest.time
            self._push(window.entry(), window.count)

    def _push(self, event: Event, count: int) -> None:
        self._entries.append((event, count))
        self.coalesced += count - 1
        if len(self._entries) > self.max_events:
            oldest = self._entries.popleft()
            if self._base is None:
                self._base = ClusterState(self.mode, self.nodes)
            self._base.apply(*oldest)
            self.dropped += oldest[1]

    def attach_history(self, history) -> None:
        """Keep a :class:`~workbench.history.model.History` with the events, for replays
        that show the clients' operations too (saved with the recording)."""
        self.history = history

    # -- reading --------------------------------------------------------------------------
    @property
    def entries(self) -> list[tuple[Event, int]]:
        """``(event, count)`` in time order; ``count``: how many events the entry stands for."""
        with self._lock:
            if self._pending:
                self._flush_pending()
            entries = list(self._entries)
        entries.sort(key=lambda entry: entry[0].time)
        return entries

    @property
    def events(self) -> list[Event]:
        return [event for event, _ in self.entries]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries) + len(self._pending)

    @property
    def initial_state(self) -> ClusterState:
        """The state the recording starts from: empty, or what the dropped entries made."""
        with self._lock:
            base = self._base.copy() if self._base is not None else None
        return base if base is not None else ClusterState(self.mode, self.nodes)

    @property
    def missed(self) -> int:
        """Events the bus dropped before they reached the recording (it fell behind)."""
        return sum(event.count for event, _ in self.entries if event.kind == "EventsDropped")

    def start_time(self) -> float:
        entries = self.entries
        first = entries[0][0].time if entries else self.started
        return min(first, self.started)

    def end_time(self) -> float:
        entries = self.entries
        last = entries[-1][0].time if entries else self.started
        return max(last, self.ended or last)

    def state_at(self, t: float) -> ClusterState:
        """The cluster's state at wall-clock time ``t``."""
        return state_at(self.entries, t, start=self.initial_state)

    def states(self, times) -> list[dict]:
        """``as_dict()`` of the state at each of ``times`` (ascending)."""
        return states_over(self.entries, times, start=self.initial_state)

    def fault_windows(self) -> list[tuple[float, float, str]]:
        """``(start, end, label)`` of every fault, in wall-clock time."""
        return fault_windows(self.entries, self.end_time(), start=self.initial_state)

    def history_time(self, monotonic: float) -> float:
        """A history operation's time (``time.monotonic()``) as wall-clock time."""
        return monotonic + self.clock_offset

    # -- files ----------------------------------------------------------------------------
    def header(self) -> dict:
        entries = self.entries
        return {"schema": EVENT_SCHEMA, "format": RECORDING_FORMAT, "mode": self.mode,
                "nodes": list(self.nodes), "started": self.started, "ended": self.ended,
                "clock_offset": self.clock_offset, "sample_s": self.sample_s,
                "max_events": self.max_events, "events": len(entries),
                "dropped": self.dropped, "coalesced": self.coalesced,
                "history_ops": len(self.history) if self.history is not None else 0,
                "initial_state": self._base_dict()}

    def _base_dict(self) -> dict | None:
        with self._lock:
            return self._base.as_dict() if self._base is not None else None

    def save(self, path, *, full_history: bool = False) -> str:
        """Write the recording (and its history, if attached) as JSON lines; return path.
        ``full_history``: keep long read values whole (see the module's docstring)."""
        entries = self.entries
        header = self.header()
        header["history_values"] = FULL if full_history and self.history_complete else SUMMARIZED
        with open(path, "w", encoding="utf-8") as f:
            f.write(json.dumps(header, default=_json_default) + "\n")
            for event, count in entries:
                line = event_to_dict(event)
                if count > 1:
                    line["coalesced"] = count
                f.write(json.dumps(line, default=_json_default) + "\n")
            if self.history is not None:
                for op in self.history:
                    data = op.to_dict()
                    if not full_history:
                        data["value"] = _summarized(data["value"])
                    f.write(json.dumps({"op": data}, default=_json_default) + "\n")
        return str(path)

    @classmethod
    def load(cls, path) -> "Recording":
        """A recording saved by :meth:`save`; ValueError naming the line for a bad file."""
        with open(path, encoding="utf-8") as f:
            return cls.from_lines(f, name=str(path))

    @classmethod
    def from_lines(cls, lines, name: str = "recording") -> "Recording":
        from .history.model import History, Op

        recording, ops = None, []
        for number, text in enumerate(lines, 1):
            if not text.strip():
                continue
            try:
                data = json.loads(text)
                if not isinstance(data, dict):
                    raise ValueError("not a JSON object")
                if recording is None:
                    recording = cls._from_header(data)
                elif "op" in data:
                    ops.append(Op.from_dict(data["op"]))
                else:
                    count = int(data.pop("coalesced", 1))
                    recording._entries.append((event_from_dict(data), count))
            except (ValueError, TypeError, KeyError) as err:
                raise ValueError(f"{name}, line {number}: {err}") from None
        if recording is None:
            raise ValueError(f"{name}: empty, not a recording")
        if ops:
            try:
                recording.history = History(ops)
            except ValueError as err:
                raise ValueError(f"{name}: its history does not hold together: {err}") from None
        return recording

    @classmethod
    def _from_header(cls, header: dict) -> "Recording":
        if header.get("schema") != EVENT_SCHEMA or "format" not in header:
            raise ValueError(f"not a recording of event schema {EVENT_SCHEMA} (header says "
                             f"schema {header.get('schema')!r})")
        recording = cls(header.get("mode"), header.get("nodes") or (),
                        max_events=max(1, int(header.get("max_events") or MAX_EVENTS)),
                        sample_s=float(header.get("sample_s") or SAMPLE_S))
        recording.started = float(header["started"])
        recording.ended = header.get("ended")
        recording.clock_offset = float(header.get("clock_offset") or 0.0)
        recording.dropped = int(header.get("dropped") or 0)
        recording.coalesced = int(header.get("coalesced") or 0)
        recording.history_complete = header.get("history_values", FULL) == FULL
        if header.get("initial_state"):
            recording._base = ClusterState.from_dict(header["initial_state"])
        return recording

    @classmethod
    def from_events(cls, events, mode: str | None = None, nodes=()) -> "Recording":
        """A recording of events (or ``(event, count)`` pairs) already at hand, each kept
        as it is, none sampled."""
        recording = cls(mode, nodes)
        for item in events:
            if isinstance(item, Event):
                item = (item, 1)
            elif not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Event)):
                raise TypeError(f"not an event nor an (event, count) pair: {item!r}")
            recording._entries.append(item)
        entries = recording.entries
        if entries:
            recording.started = entries[0][0].time
        return recording

    def __repr__(self) -> str:
        return (f"Recording(mode={self.mode!r}, {len(self)} entries, dropped={self.dropped}, "
                f"coalesced={self.coalesced})")


def _summarized(value):
    """A read value of more than SAVED_ELEMENTS elements as its size, else itself."""
    elements = value.get("set") if isinstance(value, dict) else value
    if isinstance(elements, list) and len(elements) > SAVED_ELEMENTS:
        return f"<{len(elements)} elements>"
    return value


def _json_default(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON data")
