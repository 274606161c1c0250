"""Typed events for every state change, and the bus that delivers them.

Nodes publish from the event-loop thread; each subscriber gets its events on a thread
of its own, so a slow notebook chart never slows a node. A subscriber's queue is
bounded: when it falls behind, the oldest events are dropped and the next delivery is
an :class:`EventsDropped` saying how many.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Callable


@dataclass(frozen=True, slots=True)
class Event:
    node: str
    time: float = field(default_factory=time.time, kw_only=True)

    @property
    def kind(self) -> str:
        return type(self).__name__


@dataclass(frozen=True, slots=True)
class NodeStarted(Event):
    port: int
    role: str


@dataclass(frozen=True, slots=True)
class NodeKilled(Event):
    power_loss: bool
    lost_bytes: int = 0   # bytes of files that were written but not fsynced


@dataclass(frozen=True, slots=True)
class NodeRestarted(Event):
    port: int
    loaded_commands: int


@dataclass(frozen=True, slots=True)
class RoleChanged(Event):
    role: str                 # "master" or "slave", Valkey's words
    primary: str | None       # the node replicated from, for a replica


@dataclass(frozen=True, slots=True)
class CommandExecuted(Event):
    command: str
    db: int
    keys: tuple
    offset: int               # the replication offset after the command


@dataclass(frozen=True, slots=True)
class WriteRejected(Event):
    command: str
    error: str


@dataclass(frozen=True, slots=True)
class ReplicaLinkChanged(Event):
    primary: str
    status: str               # "connecting", "sync", "connected", "down"
    full_sync: bool = False


@dataclass(frozen=True, slots=True)
class ReplicaAcked(Event):
    replica: str
    offset: int


@dataclass(frozen=True, slots=True)
class FsyncDone(Event):
    fsynced_bytes: int
    offset: int               # the replication offset now covered by an fsync
    duration_ms: float


@dataclass(frozen=True, slots=True)
class DiskFault(Event):
    error: str | None         # None: the disk works again


@dataclass(frozen=True, slots=True)
class ReplyHeld(Event):
    client: int
    offset: int               # the replication offset the reply waits for
    read: bool                # a read of uncommitted data (else the write's own reply)


@dataclass(frozen=True, slots=True)
class RepliesReleased(Event):
    committed_offset: int
    clients: int


@dataclass(frozen=True, slots=True)
class KeysCommitted(Event):
    committed_offset: int
    uncommitted_keys: int     # how many remain uncommitted


@dataclass(frozen=True, slots=True)
class FsyncStarted(Event):
    offset: int


@dataclass(frozen=True, slots=True)
class PrimaryDown(Event):
    primary: str
    objective: bool           # True when a majority of monitors agree (ODOWN)


@dataclass(frozen=True, slots=True)
class FailoverBegun(Event):
    old_primary: str
    epoch: int


@dataclass(frozen=True, slots=True)
class FailoverDone(Event):
    old_primary: str
    new_primary: str
    epoch: int


@dataclass(frozen=True, slots=True)
class Partitioned(Event):
    groups: tuple
    one_way: tuple = ()       # (src, dst) links cut in one direction only


@dataclass(frozen=True, slots=True)
class Healed(Event):
    pass


@dataclass(frozen=True, slots=True)
class EligibilityGranted(Event):
    """``sync``: the primary (``node``) now waits for ``replica`` on every write."""
    replica: str
    offset: int               # the primary's offset when the caught-up replica was granted
    epoch: int                # the monitors' config epoch that recorded it (0: not yet agreed)


@dataclass(frozen=True, slots=True)
class EligibilityRevoked(Event):
    """``sync``: ``replica`` is no longer eligible (on the primary, or on the replica itself)."""
    replica: str
    reason: str               # disconnected, timed out, full resync, restarted, ...
    agreed: bool              # recorded by a majority of monitors before taking effect


@dataclass(frozen=True, slots=True)
class WriteTimedOut(Event):
    """``sync``: a held write was not committed within durability-timeout-ms."""
    client: int
    offset: int
    committed_offset: int


@dataclass(frozen=True, slots=True)
class NodeAdded(Event):
    """``node`` joined the cluster as a replica of ``primary`` (``Cluster.add_node``)."""
    port: int
    primary: str


@dataclass(frozen=True, slots=True)
class NodeRemoved(Event):
    """``node`` left the cluster (``Cluster.remove_node``): stopped, and forgotten by the
    primary, the monitors and the network."""
    was_eligible: bool = False   # sync: it was eligible, and its revocation was agreed first


@dataclass(frozen=True, slots=True)
class RaftRoleChanged(Event):
    role: str                 # "leader", "follower", "candidate" or "learner"
    term: int
    leader: str | None


@dataclass(frozen=True, slots=True)
class RaftCommitted(Event):
    commit_index: int
    entries: int              # how many entries this node applied in this batch
    term: int


@dataclass(frozen=True, slots=True)
class RaftSteppedDown(Event):
    term: int
    disconnected_clients: int    # their held replies' outcome is unknown to them
    discarded_entries: int       # executed, never known committed: rolled back
    rollback_ms: float


@dataclass(frozen=True, slots=True)
class RaftMembershipChanged(Event):
    action: str               # "add_learner", "promote" or "remove" (committed)
    member: str
    voters: tuple
    learners: tuple


@dataclass(frozen=True, slots=True)
class RaftSnapshotInstalled(Event):
    index: int
    bytes: int


@dataclass(frozen=True, slots=True)
class ClusterClosed(Event):
    """The cluster was shut down on purpose: every node stopped, no crash. It is the
    last event a subscriber gets; stopping the nodes publishes nothing more."""

    nodes: tuple


@dataclass(frozen=True, slots=True)
class EventsDropped(Event):
    count: int


# Kinds published once per write (or per fsync, per batch): a viewer samples them, a log
# or a stream that kept each one would swamp its reader and slow the nodes.
PER_WRITE_EVENTS = frozenset({"CommandExecuted", "ReplicaAcked", "FsyncStarted", "FsyncDone",
                              "ReplyHeld", "RepliesReleased", "KeysCommitted", "RaftCommitted"})


# -- events as plain data: for recordings on disk and for the MQTT stream -----------------

EVENT_SCHEMA = 1   # bump when a field's meaning changes; readers refuse what they don't know


def _event_kinds() -> dict:
    # From the module's names, not Event.__subclasses__(): a slots dataclass is a new
    # class, and the one it replaced still shows up among the subclasses.
    return {name: obj for name, obj in globals().items()
            if isinstance(obj, type) and issubclass(obj, Event)}


def _as_lists(value):
    return [_as_lists(v) for v in value] if isinstance(value, (tuple, list)) else value


def _as_tuples(value):
    return tuple(_as_tuples(v) for v in value) if isinstance(value, list) else value


def event_to_dict(event: Event) -> dict:
    """``{"kind": "NodeKilled", "node": "n1", "time": ..., ...}``: JSON-ready."""
    data = {"kind": event.kind}
    for f in fields(event):
        data[f.name] = _as_lists(getattr(event, f.name))
    return data


def event_from_dict(data: dict) -> Event:
    """The inverse of :func:`event_to_dict`; ValueError for an unknown kind or field."""
    data = dict(data)
    kind = data.pop("kind", None)
    cls = _event_kinds().get(kind)
    if cls is None:
        raise ValueError(f"unknown event kind {kind!r}")
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{kind} has no field {sorted(unknown)[0]!r}")
    try:
        return cls(**{name: _as_tuples(value) for name, value in data.items()})
    except TypeError as e:
        raise ValueError(f"{kind}: {e}") from None


class Subscription:
    """One subscriber: a bounded queue and a daemon thread calling ``callback``."""

    _ids = itertools.count(1)

    def __init__(self, callback: Callable[[Event], None], max_queue: int):
        self.callback = callback
        self.max_queue = max_queue
        self.dropped = 0
        self._queue: deque = deque()
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"workbench-events-{next(self._ids)}")
        self._thread.start()

    def offer(self, event: Event) -> None:
        if len(self._queue) >= self.max_queue:
            try:
                self._queue.popleft()
                self.dropped += 1
            except IndexError:
                pass
        self._queue.append(event)
        self._wake.set()

    def _run(self) -> None:
        # Events offered before close() are still delivered: the last one may say why.
        while not self._closed or self._queue:
            self._wake.wait()
            self._wake.clear()
            while self._queue:
                if self.dropped:
                    count, self.dropped = self.dropped, 0
                    self._deliver(EventsDropped("bus", count=count))
                try:
                    event = self._queue.popleft()
                except IndexError:
                    break
                self._deliver(event)

    def _deliver(self, event: Event) -> None:
        try:
            self.callback(event)
        except Exception:   # a broken subscriber must not stop the others
            import traceback
            traceback.print_exc()

    @property
    def pending(self) -> int:
        """Events offered and not yet handed to the callback."""
        return len(self._queue)

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the events already offered to be delivered."""
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)


class EventBus:
    """Fan-out of events to subscribers. ``publish`` is cheap when nobody listens."""

    def __init__(self, max_queue: int = 10_000):
        self.max_queue = max_queue
        self._subscriptions: list[Subscription] = []
        self.active = False

    def subscribe(self, callback: Callable[[Event], None], *, max_queue: int | None = None
                  ) -> Subscription:
        sub = Subscription(callback, max_queue or self.max_queue)
        self._subscriptions = self._subscriptions + [sub]
        self.active = True
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.close()
        self._subscriptions = [s for s in self._subscriptions if s is not sub]
        self.active = bool(self._subscriptions)

    def publish(self, event: Event) -> None:
        for sub in self._subscriptions:
            sub.offer(event)

    def close(self, timeout: float = 2.0) -> None:
        """Deliver what was published so far (waiting up to ``timeout`` seconds in all),
        then stop every subscriber."""
        subscriptions, self._subscriptions = self._subscriptions, []
        self.active = False
        for sub in subscriptions:
            sub.close()
        deadline = time.monotonic() + timeout
        for sub in subscriptions:
            sub.join(max(0.0, deadline - time.monotonic()))
