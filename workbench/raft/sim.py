"""A deterministic simulator: Raft cores on virtual time, over a network that misbehaves.

Theory of operation
-------------------
Every server is a :class:`RaftNode` plus what its disk holds (``SimNode.disk``: hard
state, snapshot, entries -- exactly what the core's Ready said to persist) and a toy state
machine (the index it applied and a digest of the commands). Nothing here reads a
clock or the global ``random``: time is an integer of virtual milliseconds, every choice
(message delays, drops, duplicates, election timeouts) comes from random generators
seeded from the run's ``seed``, and nodes, links and events are visited in sorted order.
So one seed reproduces one run, bit for bit -- :attr:`Simulation.fingerprint` proves it.

One event queue orders everything: each node's ticks (``tick_ms`` apart) and each
message's delivery (sent now, delivered after a random delay, so messages overtake each
other). After every event the node that handled it drains its Ready in the caller's
contract order: persist, send, apply. A crash drops everything not on ``disk``:
:meth:`crash` between events loses nothing persisted; :meth:`crash_while_persisting`
crashes the node with its next Ready unwritten -- its votes and entries were never
durable, and its messages never left.

For a viewer stepping through a run by hand there is a small public surface, pure like the
rest: :meth:`Simulation.step` handles one event and says what it was (a :class:`SimEvent`),
:meth:`Simulation.in_flight` lists the messages on the wire with the virtual times they
were sent and will arrive, :meth:`Simulation.time_out` fires a node's election timer now,
:meth:`Simulation.drop_next` loses the next message from or to a node, and
:meth:`Simulation.node_view` is one node's role, term, timer, commit index and log tail as
plain data. None of them draws from the run's random generators, so a run driven by
hand is as reproducible as any other: the same calls at the same virtual times give the
same run.

:class:`~workbench.raft.safety.SafetyChecker` sees every persist, apply and leadership
and stops the run with a :class:`~workbench.raft.safety.SafetyViolation` (seed and the
last events included) the moment a safety property fails.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Callable, Iterable

from .core import NotLeader, RaftConfig, RaftNode
from .messages import Message, is_request
from .ready import Ready, Role
from .safety import SafetyChecker, SafetyViolation, chain_digest
from .types import ConfigChange, Entry, HardState, Membership, PersistedState, Snapshot


@dataclass
class NetworkFaults:
    """How the network misbehaves. Delays are virtual milliseconds, drawn per message."""

    min_delay_ms: int = 1
    max_delay_ms: int = 10
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    long_delay_rate: float = 0.0       # a message now and then arrives much later...
    long_delay_ms: int = 2000          # ...up to this late (6.824's "long reordering")

    @classmethod
    def unreliable(cls) -> "NetworkFaults":
        return cls(min_delay_ms=1, max_delay_ms=27, drop_rate=0.1, duplicate_rate=0.05)


@dataclass
class Disk:
    """What a node has fsynced, updated by the rules of ``Ready``'s step 1."""

    hard_state: HardState = field(default_factory=HardState)
    snapshot: Snapshot | None = None
    entries: list[Entry] = field(default_factory=list)

    def persist(self, ready: Ready) -> None:
        # Stored entries are consecutive, so an index is a position: no scans, no copies.
        if ready.snapshot is not None:
            del self.entries[:ready.snapshot.meta.replaces(self.entries)]
            self.snapshot = ready.snapshot
        if ready.entries:
            if self.entries:
                del self.entries[max(0, ready.entries[0].index - self.entries[0].index):]
            self.entries.extend(ready.entries)
        if ready.hard_state is not None:
            self.hard_state = ready.hard_state

    def loaded(self) -> PersistedState:
        return PersistedState(self.hard_state, self.snapshot, tuple(self.entries))


@dataclass(frozen=True)
class InFlight:
    """A message on the wire: sent at ``sent_ms``, due at ``deliver_ms`` (virtual time).
    ``lost`` says it will not be delivered as things stand now: its link is cut or its
    receiver is down (both are judged again when it arrives)."""

    message: Message
    sent_ms: int
    deliver_ms: int
    lost: bool = False


@dataclass(frozen=True)
class SimEvent:
    """What one :meth:`Simulation.step` did at ``t_ms``.

    ``kind`` is ``"tick"`` (``node``'s clock ticked), ``"deliver"`` (``message`` reached
    ``node``), ``"lost"`` (it arrived at a cut link or a down node) or ``"dropped"`` (a
    :meth:`~Simulation.drop_next` rule took it). ``changed`` is False for a tick after
    which the node had nothing to persist, send or apply -- a timer counting down."""

    t_ms: int
    kind: str
    node: str
    message: Message | None = None
    changed: bool = True

    @property
    def quiet(self) -> bool:
        return self.kind == "tick" and not self.changed


DIRECTIONS = ("any", "from", "to")


class Livelock(AssertionError):
    """A core kept producing Readies with no new input: ``has_ready()`` must turn False
    once nothing new happens, or its shell would spin forever."""


class SimNode:
    def __init__(self, node_id: str):
        self.id = node_id
        self.disk = Disk()
        self.core: RaftNode | None = None
        self.alive = False
        self.incarnation = 0
        self.applied_index = 0
        self.digest = b""
        self.applied_commands: dict[int, bytes] = {}   # since the last snapshot restore
        self.read_states: list = []
        self.lose_next_ready = False

    def __repr__(self):
        return f"SimNode({self.id}, {'up' if self.alive else 'down'}, {self.core!r})"


def _involves(message: Message, node_id: str, direction: str) -> bool:
    return ((direction != "to" and message.src == node_id)
            or (direction != "from" and message.dst == node_id))


def _election_timer(core: RaftNode) -> tuple[int, int]:
    # The core keeps its timer to itself (its shell must not act on it); the simulator,
    # the core's own test bench, reads it so that a viewer can draw it.
    return core._election_elapsed, core._randomized_timeout


def _encode_state(index: int, digest: bytes) -> bytes:
    return b"%d:" % index + digest.hex().encode()


def _decode_state(data: bytes) -> tuple[int, bytes]:
    index, digest = data.split(b":", 1)
    return int(index), bytes.fromhex(digest.decode())


class Simulation:
    ready_limit = 1000        # Readies in one drain before a core counts as livelocked
    def __init__(self, nodes: int | Iterable[str] = 3, *, seed=0, config: RaftConfig | None = None,
                 network: NetworkFaults | None = None, tick_ms: int = 50,
                 snapshot_every: int | None = None, learners: Iterable[str] = (),
                 trace_length: int = 60):
        ids = [f"n{i}" for i in range(1, nodes + 1)] if isinstance(nodes, int) else list(nodes)
        self.seed = seed
        self.config = config or RaftConfig()
        self.network = network or NetworkFaults()
        self.tick_ms = tick_ms
        self.snapshot_every = snapshot_every
        self.bootstrap = Membership(frozenset(ids), frozenset(learners))
        self.rng = random.Random(f"sim/{seed}")
        self.now_ms = 0
        self.nodes: dict[str, SimNode] = {}
        self.blocked: set[tuple[str, str]] = set()      # (from, to) links that lose everything
        self.disconnected: set[str] = set()             # cut off from all by disconnect() (or partition)
        self.safety = SafetyChecker()
        self.sent = Counter()                           # message type name -> count
        self.requests_sent = 0                          # RPCs as 6.824 counts them
        self.trace: deque = deque(maxlen=trace_length)
        self.observers: list[Callable[[SimNode, Ready], None]] = []   # called after each Ready
        self.events_handled = 0                         # steps taken (ticks and deliveries)
        self.dropped: deque = deque(maxlen=trace_length)   # InFlight taken by drop_next
        self._drop_rules: list[tuple[str, str]] = []    # (node, direction) waiting for a message
        self._queue: list = []
        self._seq = 0
        self._fingerprint = hashlib.blake2b(digest_size=16)
        for node_id in sorted(ids) + sorted(learners):
            self.add_node(node_id)

    # -- building the world ----------------------------------------------------------------
    def add_node(self, node_id: str) -> SimNode:
        """Start a server with an empty disk. Not a member until a CONFIG entry adds it."""
        if node_id in self.nodes:
            raise ValueError(f"{node_id} already exists")
        self.nodes[node_id] = node = SimNode(node_id)
        for other in self.disconnected:         # a disconnected server hears no newcomer either
            self.blocked |= {(node_id, other), (other, node_id)}
        self._boot(node)
        return node

    def _boot(self, node: SimNode) -> None:
        node.incarnation += 1
        rng = random.Random(f"node/{self.seed}/{node.id}/{node.incarnation}")
        node.core = RaftNode(node.id, membership=self.bootstrap, persisted=node.disk.loaded(),
                             rng=rng, config=self.config)
        node.alive = True
        snapshot = node.disk.snapshot
        node.applied_index, node.digest = (_decode_state(snapshot.data) if snapshot and snapshot.data
                                           else (0, b""))
        node.applied_commands = {}
        self._log("boot", node.id, node.incarnation)
        self._guard(self.safety.holds_what_it_committed, node.id, node.core.log,
                    node.core.commit_index)
        self._schedule(self.now_ms + self.rng.randrange(self.tick_ms) + 1,
                       ("tick", node.id, node.incarnation))
        self._drain(node)

    # -- faults ----------------------------------------------------------------------------
    def crash(self, node_id: str) -> None:
        """Stop a server. Its disk keeps what it persisted; messages to it are lost."""
        node = self.nodes[node_id]
        node.alive = False
        node.core = None
        node.lose_next_ready = False
        self._log("crash", node_id)

    def crash_while_persisting(self, node_id: str) -> None:
        """Crash at the node's next Ready, before any of it reaches the disk."""
        self.nodes[node_id].lose_next_ready = True

    def restart(self, node_id: str) -> None:
        node = self.nodes[node_id]
        if node.alive:
            self.crash(node_id)
        self._boot(node)

    def disconnect(self, node_id: str) -> None:
        """Cut ``node_id`` off from every other server (6.824's ``cfg.disconnect``)."""
        self.disconnected.add(node_id)
        for other in self.nodes:
            if other != node_id:
                self.blocked |= {(node_id, other), (other, node_id)}
        self._log("disconnect", node_id)

    def connect(self, node_id: str) -> None:
        """Restore ``node_id``'s links to every server that is not itself disconnected
        (6.824's ``cfg.connect``): reconnecting one server must not reconnect another."""
        self.disconnected.discard(node_id)
        self.blocked = {(a, b) for a, b in self.blocked
                        if node_id not in (a, b) or (b if a == node_id else a) in self.disconnected}
        self._log("connect", node_id)

    def partition(self, *groups: Iterable[str]) -> None:
        """Only nodes within one group hear each other (nodes in no group hear nobody)."""
        home = {n: i for i, group in enumerate(groups) for n in group}
        self.blocked = {(a, b) for a in self.nodes for b in self.nodes
                        if a != b and (home.get(a, -1) != home.get(b, -2))}
        self.disconnected = set(self.nodes) - set(home)
        self._log("partition", *[sorted(g) for g in groups])

    def cut(self, src: str, dst: str) -> None:
        """A one-way cut: ``src`` no longer reaches ``dst`` (the reverse still works)."""
        self.blocked.add((src, dst))
        self._log("cut", src, dst)

    def heal(self) -> None:
        self.blocked.clear()
        self.disconnected.clear()
        self._log("heal")

    def time_out(self, node_id: str) -> bool:
        """Fire ``node_id``'s election timer now: it stands for election (a pre-vote first,
        if configured) as if it had heard no leader for a whole timeout. Returns whether
        it did -- a leader, a learner or a down node does not."""
        node = self.nodes[node_id]
        if not node.alive:
            return False
        before = node.core.role
        self.act(node_id, lambda core: core.campaign())
        started = node.alive and node.core.role is not before
        self._log("time out", node_id, "stands" if started else "does not stand")
        return started

    def drop_next(self, node_id: str, direction: str = "any") -> InFlight | None:
        """Lose exactly one message ``direction`` (``"from"``, ``"to"`` or ``"any"``)
        ``node_id``: the one on the wire that would arrive first or, with none on the
        wire, the first to arrive of those sent later. Returns the message taken now, or
        None when the rule waits (:attr:`dropped` lists what was taken)."""
        if node_id not in self.nodes:
            raise ValueError(f"no node {node_id!r}")
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
        for item, flight in self._wire():
            if not flight.lost and _involves(flight.message, node_id, direction):
                self._queue.remove(item)
                heapq.heapify(self._queue)
                self._took(flight)
                return flight
        self._drop_rules.append((node_id, direction))
        self._log("drop next", direction, node_id)
        return None

    def _took(self, flight: InFlight) -> None:
        self.dropped.append(flight)
        self._log("dropped", flight.message)

    # -- clients ---------------------------------------------------------------------------
    def leaders(self) -> list[str]:
        return [n.id for n in self._alive() if n.core.role is Role.LEADER]

    def leader(self) -> str | None:
        """The live leader with the highest term, if any."""
        best = max((n for n in self._alive() if n.core.role is Role.LEADER),
                   key=lambda n: n.core.term, default=None)
        return best.id if best else None

    def propose(self, data: bytes, node_id: str | None = None) -> int | None:
        """Propose at ``node_id`` (default: the leader); its index, or None if refused."""
        node = self.nodes.get(node_id or self.leader() or "")
        if node is None or not node.alive:
            return None
        try:
            index = node.core.propose(data)
        except NotLeader:
            return None
        self._log("propose", node.id, index, data)
        self._drain(node)
        return index

    def propose_membership(self, change: ConfigChange, node_id: str | None = None) -> int:
        node = self.nodes[node_id or self.leader()]
        index = node.core.propose_membership(change)
        self._log("membership", node.id, index, change)
        self._drain(node)
        return index

    def read_index(self, context, node_id: str | None = None) -> None:
        node = self.nodes[node_id or self.leader()]
        node.core.read_index(context)
        self._drain(node)

    def act(self, node_id: str, action: Callable[[RaftNode], object]):
        """Call something on a node's core (transfer_leadership, campaign...), then drain."""
        node = self.nodes[node_id]
        result = action(node.core)
        self._drain(node)
        return result

    def committed_count(self, index: int) -> tuple[int, bytes | None]:
        """How many live-or-dead nodes applied ``index``, and the command there."""
        entry = self.safety.committed.get(index)
        count = sum(1 for n in self.nodes.values() if n.applied_index >= index)
        return count, entry.data if entry else None

    def one(self, data: bytes, expected: int, *, timeout_ms: int = 10_000,
            retry: bool = True) -> int:
        """Get ``data`` committed on at least ``expected`` nodes (6.824's ``cfg.one``):
        propose it at a leader, wait up to two seconds, and try again (with ``retry``)
        until ``timeout_ms`` has passed. Returns its index; raises TimeoutError. Like
        cfg.one, it proposes only at connected servers: a disconnected server that still
        believes it leads would swallow the proposal."""
        deadline = self.now_ms + timeout_ms
        while self.now_ms < deadline:
            index = None
            for node in self._alive():
                if node.core.role is Role.LEADER and node.id not in self.disconnected:
                    index = self.propose(data, node.id)
                    if index is not None:
                        break
            if index is not None:
                done = self.run_until(lambda: self._committed_as(index, data, expected),
                                      timeout_ms=2000)
                if done:
                    return index
                if not retry:
                    break
            else:
                self.run(50)
        raise TimeoutError(f"{data!r} was not committed on {expected} nodes in {timeout_ms} ms "
                           f"(seed {self.seed!r})")

    def _committed_as(self, index: int, data: bytes, expected: int) -> bool:
        count, there = self.committed_count(index)
        return count >= expected and there == data

    # -- running ---------------------------------------------------------------------------
    def run(self, ms: int) -> None:
        self.run_until(lambda: False, timeout_ms=ms)

    def run_until(self, condition: Callable[[], bool], *, timeout_ms: int) -> bool:
        """Advance virtual time until ``condition()`` holds (checked after every event) or
        ``timeout_ms`` passes. Returns whether it held."""
        end = self.now_ms + timeout_ms
        if condition():
            return True
        while self._queue and self._queue[0][0] <= end:
            self._step()
            if condition():
                return True
        self.now_ms = end
        return condition()

    def step(self) -> SimEvent | None:
        """Handle the next event (a tick or a delivery) and say what it was; None when
        nothing is left to happen. Virtual time jumps to the event's time."""
        while self._queue:
            event = self._step()
            if event is not None:
                return event
        return None

    def _step(self) -> SimEvent | None:
        """One event off the queue; None for a tick of a node that is down or rebooted."""
        when, _, event = heapq.heappop(self._queue)
        self.now_ms = when
        kind = event[0]
        if kind == "tick":
            _, node_id, incarnation = event
            node = self.nodes[node_id]
            if not node.alive or node.incarnation != incarnation:
                return None
            self.events_handled += 1
            self._schedule(when + self.tick_ms, event)
            node.core.tick()
            changed = node.core.has_ready()
            self._drain(node)
            return SimEvent(when, "tick", node_id, changed=changed)
        _, message, sent_ms = event
        self.events_handled += 1
        node = self.nodes.get(message.dst)
        if node is None or not node.alive or (message.src, message.dst) in self.blocked:
            return SimEvent(when, "lost", message.dst, message, changed=False)
        rule = self._drop_rule_for(message)
        if rule is not None:
            self._drop_rules.remove(rule)
            self._took(InFlight(message, sent_ms, when))
            return SimEvent(when, "dropped", message.dst, message, changed=False)
        self._fingerprint.update(repr(message).encode())
        self._log("recv", message)
        node.core.step(message)
        self._drain(node)
        return SimEvent(when, "deliver", message.dst, message)

    def _drop_rule_for(self, message: Message) -> tuple[str, str] | None:
        return next((rule for rule in self._drop_rules if _involves(message, *rule)), None)

    def _drain(self, node: SimNode) -> None:
        readies = 0
        while node.alive and node.core.has_ready():
            readies += 1
            if readies > self.ready_limit:
                self._livelock(node)
            ready = node.core.ready()
            if node.lose_next_ready:
                node.lose_next_ready = False
                self._log("lost unpersisted ready", node.id, len(ready.entries),
                          ready.hard_state)
                self.crash(node.id)
                return
            self._handle(node, ready)

    def _livelock(self, node: SimNode) -> None:
        core = node.core
        progress = ({peer: core.progress(peer) for peer in sorted(core.membership.members - {node.id})}
                    if core.role is Role.LEADER else {})
        raise Livelock(
            f"{node.id} still has a Ready after {self.ready_limit} in a row at {self.now_ms} ms "
            f"(seed {self.seed!r}): {core!r}, first index {core.log.first_index}, "
            f"(match, next) {progress}\nlast events:\n{self.format_trace()}")

    def _handle(self, node: SimNode, ready: Ready) -> None:
        core = node.core
        node.disk.persist(ready)
        if ready.entries:
            self._guard(self.safety.stored_entries, node.id, ready.entries, core.log)
        for message in ready.messages:
            self._send(message)
        if ready.snapshot is not None and ready.restore_snapshot:
            index, digest = _decode_state(ready.snapshot.data)
            self._guard(self.safety.check_digest, node.id, index, digest)
            node.applied_index, node.digest = index, digest
            node.applied_commands = {}
            self._log("restored snapshot", node.id, index)
            self._guard(self.safety.holds_what_it_committed, node.id, core.log, core.commit_index)
        for entry in ready.committed_entries:
            digest = chain_digest(node.digest, entry)
            self._guard(self.safety.applied, node.id, entry, node.applied_index, digest)
            node.applied_index, node.digest = entry.index, digest
            node.applied_commands[entry.index] = entry.data
        node.read_states.extend(ready.read_states)
        if ready.soft_state is not None:
            self._log("soft state", node.id, ready.soft_state.role.value, core.term)
            if ready.soft_state.role is Role.LEADER:
                self._guard(self.safety.became_leader, node.id, core.term, core.log)
        if self.snapshot_every and node.applied_index - core.log.first_index + 1 >= self.snapshot_every:
            core.compact(node.applied_index, _encode_state(node.applied_index, node.digest))
            node.applied_commands = {}
        for observe in self.observers:
            observe(node, ready)

    def _guard(self, check, *args) -> None:
        try:
            check(*args)
        except SafetyViolation as violation:
            raise SafetyViolation(violation.prop, violation.detail, seed=self.seed,
                                  trace=self.format_trace()) from None

    def _send(self, message: Message) -> None:
        self.sent[type(message).__name__] += 1
        if is_request(message):
            self.requests_sent += 1
        net, rng = self.network, self.rng
        if net.drop_rate and rng.random() < net.drop_rate:
            return
        copies = 2 if net.duplicate_rate and rng.random() < net.duplicate_rate else 1
        for _ in range(copies):
            delay = rng.randint(net.min_delay_ms, net.max_delay_ms)
            if net.long_delay_rate and rng.random() < net.long_delay_rate:
                delay += rng.randrange(net.long_delay_ms)
            self._schedule(self.now_ms + delay, ("deliver", message, self.now_ms))

    def _schedule(self, when: int, event) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (when, self._seq, event))

    def _alive(self) -> list[SimNode]:
        return [n for n in self.nodes.values() if n.alive]

    # -- what a viewer sees ----------------------------------------------------------------
    def in_flight(self) -> list[InFlight]:
        """The messages on the wire now, the first to arrive first."""
        return [flight for _, flight in self._wire()]

    def _wire(self):
        """(queue item, InFlight) for every message on the wire, in delivery order."""
        for item in sorted(self._queue, key=lambda item: item[:2]):
            when, _, event = item
            if event[0] != "deliver":
                continue
            _, message, sent_ms = event
            receiver = self.nodes.get(message.dst)
            lost = (receiver is None or not receiver.alive
                    or (message.src, message.dst) in self.blocked)
            yield item, InFlight(message, sent_ms, when, lost)

    def node_view(self, node_id: str, *, log_tail: int = 40) -> dict:
        """One node as plain data: its role, term, vote, leader, indexes, the last
        ``log_tail`` entries of its log as ``(index, term, kind)``, and its election timer
        as ``(elapsed, timeout)`` in ticks (None for a leader or a down node: a leader
        sends heartbeats instead of waiting). A down node shows only what its disk holds."""
        node = self.nodes[node_id]
        cut_off = node_id in self.disconnected
        if not node.alive:
            entries = node.disk.entries[-log_tail:] if log_tail else []
            hard = node.disk.hard_state
            return {"id": node_id, "alive": False, "role": "down", "term": hard.term,
                    "voted_for": hard.voted_for, "leader": None, "commit_index": hard.commit,
                    "applied_index": None, "last_index": entries[-1].index if entries else
                    (node.disk.snapshot.meta.index if node.disk.snapshot else 0),
                    "log": [(e.index, e.term, e.kind.name) for e in entries],
                    "timer": None, "cut_off": cut_off}
        core = node.core
        first = max(core.log.first_index, core.last_index - log_tail + 1)
        return {"id": node_id, "alive": True, "role": core.role.value, "term": core.term,
                "voted_for": core.voted_for, "leader": core.leader_id,
                "commit_index": core.commit_index, "applied_index": node.applied_index,
                "last_index": core.last_index,
                "log": [(e.index, e.term, e.kind.name)
                        for e in core.log.slice(first, core.last_index + 1)],
                "timer": None if core.role is Role.LEADER else _election_timer(core),
                "cut_off": cut_off}

    # -- what happened ---------------------------------------------------------------------
    def _log(self, *what) -> None:
        self.trace.append((self.now_ms, what))

    def format_trace(self) -> str:
        return "\n".join(f"{t:>8} ms  " + " ".join(str(w) for w in what)
                         for t, what in self.trace)

    @property
    def fingerprint(self) -> str:
        """A digest of every message delivered, in order: equal for equal runs."""
        return self._fingerprint.copy().hexdigest()

    def disk_entries(self, node_id: str) -> int:
        return len(self.nodes[node_id].disk.entries)


__all__ = ["DIRECTIONS", "Disk", "InFlight", "Livelock", "NetworkFaults", "SimEvent", "SimNode",
           "Simulation", "SafetyViolation"]
