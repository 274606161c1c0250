"""The state of a cluster at one instant, folded from its events: pure, no I/O, no clocks.

Theory of operation. Every change a cluster makes is published as a typed event
(:mod:`workbench.events`). Folding them in order with :meth:`ClusterState.apply` gives
what a viewer needs to draw the cluster as it was then, with no live cluster at hand:

* per node: running or down (killed, lost power, removed), its role in the mode's words
  (primary / replica; for ``raft`` also leader / follower / candidate / learner, the
  term and the leader it follows), its replication offset, what its AOF has fsynced,
  its committed offset, the offsets its replicas acknowledged, the replies its commit
  gate holds, its uncommitted keys, its eligibility (``sync``) and its Raft commit index;
* for the cluster: the primary the monitors chose (or the newest term's leader), the
  Raft membership, and the faults in force -- partitions, one-way cuts, killed nodes,
  failing disks.

A recording may stand one event for several of the same kind (see
:mod:`workbench.recording`): ``apply(event, count)`` says how many. Held replies are
kept by the offset each waits for, and released when the committed offset reaches it,
so a coalesced stream (or a client that went away) cannot leave the count drifting.
Uncommitted keys are kept the same way, by the offset of each key's last change; the
gate's own count (``KeysCommitted``) is the floor.

:meth:`as_dict` is JSON-ready and :meth:`from_dict` takes it back, so a state can be sent
(MQTT) or stored as the start of a recording whose oldest events were dropped.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields

from .events import Event

STATE_SCHEMA = 1
GATED_MODES = ("aof", "sync", "raft")   # modes whose writes wait behind a commit gate
# How a node went down, in words.
KILLED, POWER_LOSS, REMOVED, CLOSED = "killed", "lost power", "removed", "closed"
MAX_DIRTY_KEYS = 10_000    # uncommitted keys tracked per node; the gate's count is the floor


@dataclass
class NodeState:
    """One node as its events tell it. ``None``: nothing said yet."""

    name: str
    alive: bool = False
    down: str | None = None               # KILLED, POWER_LOSS, REMOVED, CLOSED
    lost_bytes: int = 0                   # un-fsynced bytes its last power loss destroyed
    port: int | None = None
    role: str | None = None               # "primary" or "replica"
    primary: str | None = None            # the node it replicates from (a replica)
    link: str | None = None               # its replica link's status
    offset: int | None = None             # replication offset after its last command
    fsynced_offset: int | None = None     # covered by its AOF's last fsync
    committed_offset: int | None = None   # its commit gate's
    acked: dict = field(default_factory=dict)    # replica -> offset it acknowledged
    held: dict = field(default_factory=dict)     # offset a reply waits for -> replies
    dirty: dict = field(default_factory=dict)    # (db, key) -> offset of its last change
    reported_uncommitted: int = 0         # the gate's own count at its last commit
    eligible: bool | None = None          # sync, a replica: may be promoted / is waited for
    eligible_replicas: list = field(default_factory=list)   # sync, the primary: waits for
    raft_role: str | None = None
    term: int | None = None
    leader: str | None = None
    commit_index: int | None = None
    snapshot_index: int | None = None
    commands: int = 0                     # commands executed
    rejected: int = 0                     # writes refused (READONLY, NOREPLICAS, MISCONF...)
    timed_out: int = 0                    # sync/raft writes not committed in time
    step_downs: int = 0
    member: bool = True

    @property
    def held_replies(self) -> int:
        return sum(self.held.values())

    @property
    def uncommitted_keys(self) -> int:
        return max(len(self.dirty), self.reported_uncommitted)

    def leads(self) -> bool:
        return self.alive and (self.raft_role == "leader" if self.raft_role else
                               self.role == "primary")

    def forget_gate(self) -> None:
        """Its held replies and uncommitted keys are gone (a crash, a step-down)."""
        self.held.clear()
        self.dirty.clear()
        self.reported_uncommitted = 0

    def commit(self, committed_offset: int) -> None:
        self.committed_offset = max(self.committed_offset or 0, committed_offset)
        committed = self.committed_offset
        if self.held:
            self.held = {o: n for o, n in self.held.items() if o > committed}
        if self.dirty:
            self.dirty = {k: o for k, o in self.dirty.items() if o > committed}

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["acked"] = dict(self.acked)
        data["held"] = sorted([o, n] for o, n in self.held.items())
        data["dirty"] = [[db, key, o] for (db, key), o in self.dirty.items()]
        data["eligible_replicas"] = list(self.eligible_replicas)
        data["held_replies"] = self.held_replies
        data["uncommitted_keys"] = self.uncommitted_keys
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "NodeState":
        known = {f.name for f in fields(cls)}
        node = cls(**{k: v for k, v in data.items() if k in known})
        node.acked = dict(node.acked)
        node.held = {int(o): int(n) for o, n in data.get("held", ())}
        node.dirty = {(db, key): int(o) for db, key, o in data.get("dirty", ())}
        node.eligible_replicas = list(node.eligible_replicas)
        return node


class ClusterState:
    """The cluster at an instant: ``apply`` events in order, read ``nodes`` or ``as_dict()``."""

    def __init__(self, mode: str | None = None, nodes=()):
        self.mode = mode
        self.time: float | None = None            # of the last event applied
        self.nodes: dict[str, NodeState] = {name: NodeState(name) for name in nodes}
        self.groups: list[list[str]] = []          # partition: node-to-node links cut between
        self.one_way: list[list[str]] = []         # [src, dst]: what src sends dst is lost
        self.disk_faults: dict[str, str] = {}      # node -> the error its disk gives
        self.epoch = 0                             # the monitors' configuration epoch
        self.chosen_primary: str | None = None     # the primary the last failover chose
        self.failover: dict | None = None          # one in progress: old primary, epoch
        self.voters: list[str] = []
        self.learners: list[str] = []
        self.closed = False
        self.missed_events = 0                     # events the bus dropped on the way
        self.events_applied = 0

    # -- folding -----------------------------------------------------------------------
    def apply(self, event: Event, count: int = 1) -> None:
        """Fold one event in; ``count``: how many events of its kind it stands for.
        Kinds this module does not know are skipped (a newer recording)."""
        self.time = event.time if self.time is None else max(self.time, event.time)
        self.events_applied += count
        handler = _HANDLERS.get(event.kind)
        if handler is not None:
            handler(self, event, count)
        node = self.nodes.get(event.node)
        if node is not None and not node.alive and node.down is None \
                and event.kind not in _NOT_A_SIGN_OF_LIFE:
            node.alive = True      # it publishes, so it runs (a viewer that joined late)

    def node(self, name: str) -> NodeState:
        node = self.nodes.get(name)
        if node is None:
            node = self.nodes[name] = NodeState(name)
        return node

    # -- what a viewer asks -----------------------------------------------------------
    @property
    def primary(self) -> str | None:
        """The node serving writes: the newest term's leader (``raft``), else the primary
        the monitors chose if it runs and says so, else the one running primary."""
        alive = [n for n in self.nodes.values() if n.alive and n.member]
        if self.mode == "raft" or any(n.raft_role for n in alive):
            leaders = [n for n in alive if n.raft_role == "leader"]
            return max(leaders, key=lambda n: n.term or 0).name if leaders else None
        primaries = [n.name for n in alive if n.role == "primary"]
        if self.chosen_primary in primaries:
            return self.chosen_primary
        return primaries[0] if len(primaries) == 1 else None

    def faults(self) -> list[str]:
        """The faults in force, one line each, in words."""
        out = []
        if self.groups:
            out.append("partition " + " | ".join("[" + ", ".join(g) + "]" for g in self.groups))
        out += [f"one-way cut: what {src} sends to {dst} is lost" for src, dst in self.one_way]
        for node in self.nodes.values():
            if not node.alive and node.down in (KILLED, POWER_LOSS):
                out.append(f"{node.name} {node.down}")
        out += [f"{name}'s disk fails: {error}" for name, error in self.disk_faults.items()]
        return out

    def copy(self) -> "ClusterState":
        return copy.deepcopy(self)

    def as_dict(self) -> dict:
        """JSON-ready; :meth:`from_dict` takes it back. ``primary`` and ``faults`` are
        derived, for readers that only look."""
        return {"schema": STATE_SCHEMA, "mode": self.mode, "time": self.time,
                "closed": self.closed, "primary": self.primary, "faults": self.faults(),
                "chosen_primary": self.chosen_primary, "epoch": self.epoch,
                "failover": dict(self.failover) if self.failover else None,
                "partition": {"groups": [list(g) for g in self.groups],
                              "one_way": [list(c) for c in self.one_way]},
                "disk_faults": dict(self.disk_faults),
                "voters": list(self.voters), "learners": list(self.learners),
                "missed_events": self.missed_events, "events_applied": self.events_applied,
                "nodes": {name: node.to_dict() for name, node in self.nodes.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "ClusterState":
        """A state from :meth:`as_dict`'s form; ValueError for a schema it does not know."""
        if data.get("schema") != STATE_SCHEMA:
            raise ValueError(f"cluster state schema {data.get('schema')!r}; this version "
                             f"reads {STATE_SCHEMA}")
        state = cls(data.get("mode"))
        state.time = data.get("time")
        state.closed = bool(data.get("closed"))
        state.chosen_primary = data.get("chosen_primary")
        state.epoch = int(data.get("epoch") or 0)
        state.failover = dict(data["failover"]) if data.get("failover") else None
        partition = data.get("partition") or {}
        state.groups = [list(g) for g in partition.get("groups", ())]
        state.one_way = [list(c) for c in partition.get("one_way", ())]
        state.disk_faults = dict(data.get("disk_faults") or {})
        state.voters = list(data.get("voters") or ())
        state.learners = list(data.get("learners") or ())
        state.missed_events = int(data.get("missed_events") or 0)
        state.events_applied = int(data.get("events_applied") or 0)
        state.nodes = {name: NodeState.from_dict({**node, "name": name})
                       for name, node in (data.get("nodes") or {}).items()}
        return state


# -- one handler per event kind: (state, event, count) ---------------------------------------

def _started(s: ClusterState, e, count) -> None:
    node = s.node(e.node)
    node.alive, node.down, node.port, node.member = True, None, e.port, True
    node.link = None
    node.forget_gate()
    if getattr(e, "role", None):
        node.role = "primary" if e.role == "master" else "replica"


def _restarted(s, e, count) -> None:
    node = s.node(e.node)
    node.alive, node.down, node.port = True, None, e.port


def _killed(s, e, count) -> None:
    node = s.node(e.node)
    node.alive, node.down = False, POWER_LOSS if e.power_loss else KILLED
    node.lost_bytes = e.lost_bytes if e.power_loss else 0
    node.link = node.raft_role = None
    node.forget_gate()


def _role(s, e, count) -> None:
    node = s.node(e.node)
    if e.role == "master":
        node.role, node.primary = "primary", None
    else:
        if node.role == "primary":
            node.forget_gate()
        node.role, node.primary = "replica", e.primary
        node.eligible_replicas = []


def _command(s, e, count) -> None:
    node = s.node(e.node)
    node.commands += count
    wrote = node.offset is None or e.offset > node.offset
    node.offset = e.offset if node.offset is None else max(node.offset, e.offset)
    gated = s.mode in GATED_MODES or node.committed_offset is not None
    if wrote and e.keys and gated and node.leads() and e.offset > (node.committed_offset or 0):
        for key in e.keys:
            key = _key_text(key)
            if len(node.dirty) < MAX_DIRTY_KEYS or (e.db, key) in node.dirty:
                node.dirty[(e.db, key)] = e.offset


def _key_text(key) -> str:
    return key.decode("utf-8", "backslashreplace") if isinstance(key, bytes) else key


def _rejected(s, e, count) -> None:
    s.node(e.node).rejected += count


def _link(s, e, count) -> None:
    node = s.node(e.node)
    node.link, node.primary = e.status, e.primary


def _acked(s, e, count) -> None:
    s.node(e.node).acked[e.replica] = e.offset
    replica = s.node(e.replica)          # it has processed what it acknowledged
    if replica.alive and (replica.offset is None or replica.offset < e.offset):
        replica.offset = e.offset


def _fsynced(s, e, count) -> None:
    node = s.node(e.node)
    node.fsynced_offset = max(node.fsynced_offset or 0, e.offset)


def _disk(s, e, count) -> None:
    if e.error is None:
        s.disk_faults.pop(e.node, None)
    else:
        s.disk_faults[e.node] = e.error


def _held(s, e, count) -> None:
    node = s.node(e.node)
    if node.committed_offset is not None and e.offset <= node.committed_offset:
        return                         # released already (a sample arriving late)
    node.held[e.offset] = node.held.get(e.offset, 0) + count


def _released(s, e, count) -> None:
    s.node(e.node).commit(e.committed_offset)


def _keys_committed(s, e, count) -> None:
    node = s.node(e.node)
    node.commit(e.committed_offset)
    node.reported_uncommitted = e.uncommitted_keys
    if e.uncommitted_keys == 0:
        node.dirty.clear()


def _timed_out(s, e, count) -> None:
    node = s.node(e.node)
    node.timed_out += count
    left = node.held.get(e.offset, 0) - count
    if left > 0:
        node.held[e.offset] = left
    else:
        node.held.pop(e.offset, None)


def _failover_begun(s, e, count) -> None:
    s.failover = {"old_primary": e.old_primary, "epoch": e.epoch, "by": e.node}


def _failover_done(s, e, count) -> None:
    s.failover = None
    s.epoch = max(s.epoch, e.epoch)
    s.chosen_primary = e.new_primary


def _partitioned(s, e, count) -> None:
    if e.one_way:
        for src, dst in e.one_way:
            if [src, dst] not in s.one_way:
                s.one_way.append([src, dst])
    else:          # a partition sets every link: earlier one-way cuts are replaced
        s.groups = [list(g) for g in e.groups]
        s.one_way = []


def _healed(s, e, count) -> None:
    s.groups, s.one_way = [], []


def _granted(s, e, count) -> None:
    primary = s.node(e.node)
    if e.replica not in primary.eligible_replicas:
        primary.eligible_replicas.append(e.replica)
    s.node(e.replica).eligible = True


def _revoked(s, e, count) -> None:
    if e.node != e.replica:
        primary = s.node(e.node)
        primary.eligible_replicas = [r for r in primary.eligible_replicas if r != e.replica]
    s.node(e.replica).eligible = False


def _added(s, e, count) -> None:
    node = s.node(e.node)
    node.alive, node.down, node.member, node.port = True, None, True, e.port
    node.role = node.role or "replica"
    node.primary = node.primary or e.primary


def _removed(s, e, count) -> None:
    node = s.node(e.node)
    node.alive, node.down, node.member = False, REMOVED, False
    node.link = node.raft_role = None
    node.forget_gate()
    for other in s.nodes.values():
        other.acked.pop(e.node, None)
        other.eligible_replicas = [r for r in other.eligible_replicas if r != e.node]


def _raft_role(s, e, count) -> None:
    node = s.node(e.node)
    node.raft_role, node.term, node.leader = e.role, e.term, e.leader


def _raft_committed(s, e, count) -> None:
    node = s.node(e.node)
    node.commit_index = max(node.commit_index or 0, e.commit_index)
    node.term = max(node.term or 0, e.term)


def _stepped_down(s, e, count) -> None:
    node = s.node(e.node)
    node.step_downs += count
    node.forget_gate()


def _membership(s, e, count) -> None:
    s.voters, s.learners = list(e.voters), list(e.learners)


def _snapshot(s, e, count) -> None:
    s.node(e.node).snapshot_index = e.index


def _closed(s, e, count) -> None:
    s.closed = True
    for node in s.nodes.values():
        if node.alive:
            node.alive, node.down = False, CLOSED
            node.forget_gate()


def _dropped(s, e, count) -> None:
    s.missed_events += e.count


_NOT_A_SIGN_OF_LIFE = frozenset({"NodeKilled", "NodeRemoved", "ClusterClosed", "EventsDropped"})

_HANDLERS = {
    "NodeStarted": _started, "NodeRestarted": _restarted, "NodeKilled": _killed,
    "RoleChanged": _role, "CommandExecuted": _command, "WriteRejected": _rejected,
    "ReplicaLinkChanged": _link, "ReplicaAcked": _acked, "FsyncDone": _fsynced,
    "DiskFault": _disk, "ReplyHeld": _held, "RepliesReleased": _released,
    "KeysCommitted": _keys_committed, "WriteTimedOut": _timed_out,
    "FailoverBegun": _failover_begun, "FailoverDone": _failover_done,
    "Partitioned": _partitioned, "Healed": _healed,
    "EligibilityGranted": _granted, "EligibilityRevoked": _revoked,
    "NodeAdded": _added, "NodeRemoved": _removed,
    "RaftRoleChanged": _raft_role, "RaftCommitted": _raft_committed,
    "RaftSteppedDown": _stepped_down, "RaftMembershipChanged": _membership,
    "RaftSnapshotInstalled": _snapshot, "ClusterClosed": _closed, "EventsDropped": _dropped,
}


# -- over a recording -------------------------------------------------------------------------

def _entries(events):
    """``(event, count)`` pairs from events or pairs."""
    for item in events:
        if isinstance(item, Event):
            yield item, 1
        else:
            yield item


def state_at(events, t: float, *, mode: str | None = None, nodes=(),
             start: ClusterState | None = None) -> ClusterState:
    """The state after every event (or ``(event, count)`` pair) up to time ``t``, in
    order, from ``start`` (a fresh state by default; it is not changed)."""
    state = start.copy() if start is not None else ClusterState(mode, nodes)
    for event, count in _entries(events):
        if event.time > t:
            break
        state.apply(event, count)
    return state


def states_over(events, times, *, mode: str | None = None, nodes=(),
                start: ClusterState | None = None) -> list[dict]:
    """``as_dict()`` of the state at each of ``times`` (ascending), in one fold."""
    state = start.copy() if start is not None else ClusterState(mode, nodes)
    pairs = list(_entries(events))
    out, i = [], 0
    for t in times:
        while i < len(pairs) and pairs[i][0].time <= t:
            state.apply(*pairs[i])
            i += 1
        out.append(state.as_dict())
    return out


# Events that may change the faults in force.
FAULT_EVENTS = frozenset({"Partitioned", "Healed", "NodeKilled", "NodeStarted", "NodeRestarted",
                          "NodeAdded", "NodeRemoved", "DiskFault", "ClusterClosed"})


class FaultWindows:
    """The windows of the faults in force: each line of :meth:`ClusterState.faults` opens
    a window when it appears and closes it when it goes. ``max_windows`` bounds the
    closed ones kept (the oldest go)."""

    def __init__(self, max_windows: int | None = None):
        self.max_windows = max_windows
        self.open: dict[str, float] = {}          # label -> when it began
        self.closed: list[tuple[float, float, str]] = []

    def update(self, faults, at: float) -> None:
        now = set(faults)
        for label in [label for label in self.open if label not in now]:
            self.closed.append((self.open.pop(label), at, label))
        for label in faults:
            self.open.setdefault(label, at)
        if self.max_windows is not None and len(self.closed) > self.max_windows:
            del self.closed[:-self.max_windows]

    def windows(self, end: float) -> list[tuple[float, float, str]]:
        """``(start, end, label)``, the windows still open ending at ``end``."""
        still = [(start, max(start, end), label) for label, start in self.open.items()]
        return sorted(self.closed + still)


def fault_windows(events, end: float, *, start: ClusterState | None = None
                  ) -> list[tuple[float, float, str]]:
    """``(start, end, label)`` of each fault a recording shows (a partition, a one-way
    cut, a crash, a failing disk), from when it took effect until it was undone;
    windows still open close at ``end``."""
    state = start.copy() if start is not None else ClusterState()
    tracker = FaultWindows()
    if state.time is not None:
        tracker.update(state.faults(), state.time)
    for event, count in _entries(events):
        state.apply(event, count)
        if event.kind in FAULT_EVENTS:
            tracker.update(state.faults(), event.time)
    return tracker.windows(end)
