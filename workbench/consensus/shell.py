"""The raft mode's shell: one node's Raft core wired to its keyspace, disk, peers and gate.

Theory of operation
-------------------
The core (``workbench/raft``) decides; this shell does what it asks, in the order of its
``Ready`` contract, inline on the event loop (an fsync here costs ~50 us; a thread hop
would cost more than it saves):

1. persist -- ``RaftStorage.save`` fsyncs the snapshot, the entries, and the term and
   vote. The commit index is volatile state in Figure 2: it is written with the next term
   or vote change, not on every commit, so a commit costs no fsync;
2. send the messages (they may promise what step 1 made durable);
3. restore a snapshot the leader sent, then apply the committed entries;
4. serve the reads whose leadership round a quorum confirmed.

Everything that happens in one loop turn -- messages from peers, client writes, ticks --
is handled by one drain at the turn's end, so one fsync covers all of it (group commit).

**The write path (write-behind, the design seed's choice).** The leader executes a write
at once; what the write propagates is buffered, and the turn's buffer becomes one log
entry whose end offset the :class:`~workbench.durability.RaftProvider` remembers. The
commit gate holds the write's reply, and reads of the keys it changed, until that entry
commits. Followers execute entries only once committed, so their keyspace never holds an
uncommitted write. The replication offset counts the entries' bytes, so it is the same
number on every node for the same committed prefix.

**A leader serves only once it is sure of its log.** A new leader's keyspace lacks the
entries of earlier terms it holds but has not seen committed; it executes no client
command until its own first entry (the NOOP) commits and everything before it is applied.
Writes meanwhile get ``-CLUSTERDOWN`` (nothing ran), and ``Node.role`` says "replica".

**Step-down with executed, uncommitted writes** (the seed's con of write-behind). A leader
that loses its leadership may have executed writes that will never commit. Its keyspace
goes back to exactly the committed state: the last snapshot is loaded and the log's
applied entries after it are replayed (compaction keeps that replay short). An undo log
would be cheaper per step-down but costs on every write; step-downs are rare. The clients
whose replies were held are disconnected: for them the outcome is unknown, never a
definite error.

**Reads.** ``leader``: the leader answers from its keyspace, dirty keys held by the gate,
while it holds a *lease*: a quorum answered a heartbeat round it began at time t, and no
voter grants a vote within an election timeout of hearing from its leader (check-quorum;
a restarted node waits one election timeout before voting), so nobody else can lead
before t + that timeout (we count 80% of it: timers fire late, never early). Without a
lease, and always in ``readindex``, a read waits for a quorum round that began after it
arrived (the core's ReadIndex; the reads of one turn share a round). ``follower``: a
follower answers clients that sent ``READONLY`` from its applied state -- committed, but
possibly stale.
"""

from __future__ import annotations

import asyncio
import random
import struct
import time
from dataclasses import dataclass, field

from .. import events as ev
from ..durability import RaftProvider
from ..raft import (ConfigChange, EntryKind, Membership, NotLeader, RaftConfig, RaftNode,
                    Role, VoteRequest)
from ..resp import ReplyError, RequestParser
from ..server import dataset, gating
from ..storage.raft_log import RaftStorage
from ..server.persistence import StreamClient
from .transport import PeerTransport

# A Raft snapshot's data: this header (format, replication offset at its index), then the
# keyspace as commands (store/snapshot.py).
_SNAPSHOT_HEADER = struct.Struct(">4sQ")
_SNAPSHOT_MAGIC = b"WBK1"
LEASE_FRACTION = 0.8


@dataclass(eq=False)
class ReadRound:
    """One ReadIndex request: the reads that arrived in one loop turn (maybe none: a
    lease renewal), and when it was asked -- the quorum round starts after this."""

    asked_at: float
    reads: list = field(default_factory=list)      # (future, connection, argv)


class StorageFailed(Exception):
    pass


class RaftShell:
    def __init__(self, server, sock=None):
        self.server = server
        self.node = server.node
        self.name = server.name
        self.config = server.config
        self.events: ev.EventBus = server.events
        self.loop = asyncio.get_running_loop()
        self.tick_s = self.config["heartbeat-ms"] / 1000
        election_ticks = max(2, round(self.config["election-timeout-ms"] / self.config["heartbeat-ms"]))
        self.election_s = election_ticks * self.tick_s
        self.lever_reads = self.config["raft-bug-read-before-noop"]
        self.storage = RaftStorage.open(server.data_dir)
        persisted = self.storage.load()
        for warning in self.storage.warnings:
            server.log(f"Raft log: {warning}")
        self.bootstrap = Membership(frozenset(name for name, _, _ in self.config["shard-nodes"]))
        self.core = RaftNode(
            self.name, membership=self.bootstrap, persisted=persisted, rng=random.Random(),
            config=RaftConfig(election_ticks=election_ticks, heartbeat_ticks=1,
                              check_quorum=not self.lever_reads))
        self._stored_vote = (persisted.hard_state.term, persisted.hard_state.voted_for)
        self.fresh = persisted.snapshot is None and not persisted.entries
        self.transport = PeerTransport(self.name, self.node.raft_address_of, self.step, server.log)
        self._sock = sock
        self.provider: RaftProvider | None = None
        self.ready_term: int | None = None          # the term this node serves in as leader
        self.applied_index = 0
        self.executed_through = 0                   # the last entry whose effects are in the keyspace
        self.pending: list[bytes] = []              # this turn's writes, not yet an entry
        self.applying = False
        self.apply_client = StreamClient()        # runs committed entries; replies go nowhere
        self.reads: ReadRound | None = None         # this turn's reads, not yet asked
        self.lease_until = 0.0
        self.lease_asked = False
        self.paused = False
        self.stopped = False
        self.compacting = False
        self._admitted = None
        self._drain_handle: asyncio.Handle | None = None
        self._tick_handle: asyncio.TimerHandle | None = None
        self._votes_from = self.loop.time() + self.election_s
        self._last_soft = (Role.FOLLOWER, None, self.core.term)
        self.stats = {"elections_won": 0, "step_downs": 0, "rolled_back_writes": 0,
                      "rollback_ms": 0.0, "snapshots": 0, "snapshots_installed": 0,
                      "read_rounds": 0, "lease_reads": 0, "barrier_reads": 0}
        self._restore(persisted.snapshot.data if persisted.snapshot else b"")
        self.applied_index = self.executed_through = self.core.applied_index

    async def start(self) -> None:
        await self.transport.start(self.config["raft-port"], sock=self._sock)
        self._sock = None
        self._tick_handle = self.loop.call_later(self.tick_s, self._tick)
        self._drain()                   # entries committed before a restart apply now
        self.server.log(f"Raft: node {self.name} in term {self.core.term}, log "
                        f"{self.core.log.first_index}..{self.core.last_index}, "
                        f"voters {', '.join(sorted(self.core.membership.voters))}")

    @property
    def port(self) -> int:
        return self.transport.port

    # -- what the node is ------------------------------------------------------------
    @property
    def leading(self) -> bool:
        """The core is leader (it may not serve yet)."""
        return self.core.role is Role.LEADER

    @property
    def serving(self) -> bool:
        """This node executes client writes: the leader, sure of its log, not handing over."""
        core = self.core
        return (core.role is Role.LEADER and self.ready_term == core.term
                and core.transferee is None and not self.stopped)

    @property
    def role_name(self) -> str:
        if self.core.is_learner:
            return "learner"
        return {Role.LEADER: "leader", Role.FOLLOWER: "follower"}.get(self.core.role, "candidate")

    def leader_address(self) -> tuple[str | None, int]:
        """The leader's name and client port, as far as this node knows."""
        leader = self.core.leader_id
        if leader is None:
            return None, 0
        return leader, self.node.client_port_of(leader)

    # -- inputs ------------------------------------------------------------------------
    def step(self, message) -> None:
        if self.stopped:
            return
        if (isinstance(message, VoteRequest) and not message.transfer
                and self.loop.time() < self._votes_from):
            return                      # restarted: our lease memory is gone; vote later
        self.core.step(message)
        self._schedule_drain()

    def _tick(self) -> None:
        if self.stopped:
            return
        self._tick_handle = self.loop.call_later(self.tick_s, self._tick)
        if self.paused:
            return
        # Keep a connection open to every member, not only to those we talk to now:
        # followers never write to each other until an election, and a vote request
        # dropped for want of a connection would cost a whole election timeout.
        connected = self.transport.connected()
        for peer in self.core.membership.members - connected - {self.name}:
            self.transport.dial(peer)
        if not self._may_start():
            return
        self.core.tick()
        if (self.serving and not self.lease_asked and not self.lever_reads
                and self.config["raft-read-mode"] == "leader"):
            self.lease_asked = True
            self._ask_round(ReadRound(self.loop.time()))
        self._drain()

    def _may_start(self) -> bool:
        """A node of a new shard starts the initial configuration only once it is connected
        to a majority of it (the design seed's bootstrap rule)."""
        if not self.fresh:
            return True
        connected = len(self.transport.connected() & self.bootstrap.voters) + 1
        if connected >= self.bootstrap.quorum():
            self.fresh = False
            return True
        return False

    def buffer(self, data: bytes) -> None:
        """The serving leader executed a write: its propagated bytes join this turn's entry."""
        self.pending.append(data)
        self._schedule_drain()

    def _schedule_drain(self) -> None:
        if self._drain_handle is None and not self.stopped:
            self._drain_handle = self.loop.call_soon(self._drain)

    # -- the Ready loop ----------------------------------------------------------------
    def _drain(self) -> None:
        self._drain_handle = None
        if self.stopped:
            return
        core = self.core
        if self.pending:
            self._propose()
        if self.reads is not None:
            round_, self.reads = self.reads, None
            self._ask_round(round_)
        try:
            while core.has_ready():
                self._handle(core.ready())
        except StorageFailed:
            return
        if core.role is Role.LEADER and self.ready_term != core.term:
            self._maybe_start_serving()
        self._maybe_compact()

    def _propose(self) -> None:
        data = b"".join(self.pending)
        self.pending = []
        try:
            index = self.core.propose(data)
        except NotLeader:
            return                      # leadership is lost: the step-down rolls these back
        self.executed_through = index
        self.provider.proposed(index, self.server.repl.offset)
        self.server.repl.stream_db = -1  # every entry starts with its own SELECT

    def _ask_round(self, round_: ReadRound) -> None:
        try:
            self.core.read_index(round_)
            self.stats["read_rounds"] += 1
        except NotLeader:
            self._fail_reads(round_.reads)

    def _handle(self, ready) -> None:
        core = self.core
        self._persist(ready)
        if ready.messages:
            self.transport.send(ready.messages)
        if ready.soft_state is not None or self._last_soft[2] != core.term:
            self._soft_state_changed()
        if ready.snapshot is not None and ready.restore_snapshot:
            self._restore(ready.snapshot.data)
            self.applied_index = self.executed_through = ready.snapshot.meta.index
            self.stats["snapshots_installed"] += 1
            self.events.publish(ev.RaftSnapshotInstalled(self.name, index=ready.snapshot.meta.index,
                                                         bytes=len(ready.snapshot.data)))
        if ready.committed_entries:
            for entry in ready.committed_entries:
                self._apply(entry)
            self.applied_index = ready.committed_entries[-1].index
            if self.events.active:
                self.events.publish(ev.RaftCommitted(self.name, commit_index=core.commit_index,
                                                     entries=len(ready.committed_entries),
                                                     term=core.term))
            if self.provider is not None:
                self.provider.committed(core.commit_index)
                gating.progress(self.server)
        for state in ready.read_states:
            self._serve_reads(state.context)

    def _persist(self, ready) -> None:
        hard = ready.hard_state
        vote_changed = hard is not None and (hard.term, hard.voted_for) != self._stored_vote
        if not (ready.snapshot is not None or ready.entries or vote_changed):
            return
        try:
            self.storage.save(hard_state=hard if vote_changed else None, entries=ready.entries,
                              snapshot=ready.snapshot)
        except OSError as err:
            self._storage_failed(err)
            raise StorageFailed() from err
        if vote_changed:
            self._stored_vote = (hard.term, hard.voted_for)

    def _storage_failed(self, err: OSError) -> None:
        """The Raft log cannot be written: nothing may be sent that promises it was, so
        the node stops, as a real one would on a failed fsync."""
        self.server.log(f"Raft log write failed ({err}): the node stops")
        self.stopped = True
        self.loop.create_task(self.node._kill(False))

    # -- leadership ------------------------------------------------------------------
    def _soft_state_changed(self) -> None:
        core = self.core
        soft = (core.role, core.leader_id, core.term)
        was_leader, old_term = self._last_soft[0] is Role.LEADER, self._last_soft[2]
        self._last_soft = soft
        if was_leader and (core.role is not Role.LEADER or core.term != old_term):
            self._step_down()           # (leading again in a newer term is a new leadership)
            was_leader = False
        if core.role is Role.LEADER and not was_leader:
            self.stats["elections_won"] += 1
        self.events.publish(ev.RaftRoleChanged(self.name, role=self.role_name, term=core.term,
                                               leader=core.leader_id))

    def _maybe_start_serving(self) -> None:
        """The leader's own first entry committed and everything before it is applied."""
        core = self.core
        if core.log.term_at(core.commit_index) != core.term or self.applied_index < core.commit_index:
            return
        server = self.server
        self.ready_term = core.term
        self.executed_through = self.applied_index
        self.provider = RaftProvider(server.repl.offset)
        self.lease_until, self.lease_asked = 0.0, False
        server.repl.stream_db = -1
        gating.reconcile(server)
        server.log(f"Raft: leading term {core.term} from index {core.commit_index}")
        self.events.publish(ev.RoleChanged(self.name, role="master", primary=None))

    def _step_down(self) -> None:
        server = self.server
        held = len(server.gate.waiting) if server.gate is not None else 0
        if self.reads is not None:
            self._fail_reads(self.reads.reads)
            self.reads = None
        discarded = max(0, self.executed_through - self.applied_index) + (1 if self.pending else 0)
        self.pending = []
        self.provider = None
        self.ready_term = None
        self.lease_until, self.lease_asked = 0.0, False
        if self.compacting:
            self.compacting = False
            server.pause_writers(False)
        if server.gate is not None:
            server.gate.drop_deferred()   # notifications of writes that may never commit
            gating.disable(server, disconnect=True)
        rolled_back_ms = 0.0
        if discarded:
            started = time.perf_counter()
            self._roll_back()
            rolled_back_ms = (time.perf_counter() - started) * 1000
            self.stats["rolled_back_writes"] += discarded
            self.stats["rollback_ms"] += rolled_back_ms
        self.stats["step_downs"] += 1
        server.log(f"Raft: stepped down in term {self.core.term}; {held} clients with held "
                   f"replies disconnected, {discarded} uncommitted entries rolled back "
                   f"({rolled_back_ms:.1f} ms)")
        self.events.publish(ev.RaftSteppedDown(self.name, term=self.core.term,
                                               disconnected_clients=held,
                                               discarded_entries=discarded,
                                               rollback_ms=round(rolled_back_ms, 3)))
        self.events.publish(ev.RoleChanged(self.name, role="slave", primary=self.core.leader_id))

    def _roll_back(self) -> None:
        """Back to exactly the committed state: the snapshot, then the applied entries."""
        snapshot = self.core.log.snapshot
        self._restore(snapshot.data)
        for entry in self.core.log.slice(snapshot.meta.index + 1, self.applied_index + 1):
            self._run(entry)
        self.executed_through = self.applied_index

    # -- the state machine -------------------------------------------------------------
    def _apply(self, entry) -> None:
        if entry.kind is EntryKind.COMMAND:
            if entry.index > self.executed_through:
                self._run(entry)
                self.executed_through = entry.index
        elif entry.kind is EntryKind.CONFIG:
            change = ConfigChange.decode(entry.data)
            membership = self.core.membership
            self.server.log(f"Raft: membership change committed: {change.action} {change.node}")
            self.events.publish(ev.RaftMembershipChanged(
                self.name, action=change.action, member=change.node,
                voters=tuple(sorted(membership.voters)), learners=tuple(sorted(membership.learners))))

    def _run(self, entry) -> None:
        """Execute a committed entry's commands (their replies go nowhere)."""
        server = self.server
        client = self.apply_client
        client.db, client.multi = 0, None       # every entry starts with its own SELECT
        self.applying = True
        try:
            for argv in RequestParser().feed(entry.data):
                if type(argv) is list:
                    server.execute(client, argv)
        finally:
            self.applying = False
        server.repl.feed(entry.data)

    def _restore(self, data: bytes) -> None:
        """Replace the keyspace by a snapshot's (empty for the bootstrap snapshot)."""
        server = self.server
        server.keyspace.flush()
        server.touch_db(None)
        offset = 0
        if data:
            magic, offset = _SNAPSHOT_HEADER.unpack_from(data)
            if magic != _SNAPSHOT_MAGIC:
                raise ValueError(f"not a workbench keyspace snapshot (magic {magic!r})")
            dataset.load(server, data[_SNAPSHOT_HEADER.size:], int(time.time() * 1000))
        server.repl.backlog.reset(offset)
        server.repl.stream_db = -1

    def _maybe_compact(self) -> None:
        """Fold the applied log into a snapshot once it is long. The keyspace must hold
        exactly the applied state: on a leader, with writes in flight, it holds more, so
        the leader stops reading clients until they committed (one round trip)."""
        core = self.core
        since = self.applied_index - core.log.snapshot.meta.index
        limit = self.config["raft-snapshot-entries"]
        if since < limit:
            return
        clean = self.executed_through <= self.applied_index and not self.pending
        if not clean:
            if core.role is Role.LEADER and not self.compacting and since >= 2 * limit:
                self.compacting = True
                self.server.pause_writers(True)
            return
        data = (_SNAPSHOT_HEADER.pack(_SNAPSHOT_MAGIC, self.server.repl.offset)
                + dataset.dump(self.server, int(time.time() * 1000)))
        core.compact(self.applied_index, data)
        self.stats["snapshots"] += 1
        if self.compacting:
            self.compacting = False
            self.server.pause_writers(False)
        self._schedule_drain()          # the snapshot is persisted by the next Ready

    # -- reads ---------------------------------------------------------------------------
    def admit_read(self, conn, argv):
        """May this keyspace read run now? None: yes. A ReplyError: refused. Otherwise
        an awaitable Future of its reply: it runs once a quorum round confirms we lead."""
        if conn is self._admitted:
            return None
        core = self.core
        if self.lever_reads and core.role is Role.LEADER:
            return None                  # the bug: no proof that we still lead
        if self.serving:
            if (self.config["raft-read-mode"] == "leader" and self.loop.time() < self.lease_until):
                self.stats["lease_reads"] += 1
                return None
            self.stats["barrier_reads"] += 1
            future = self.loop.create_future()
            if self.reads is None:
                self.reads = ReadRound(self.loop.time())
            self.reads.reads.append((future, conn, argv))
            self._schedule_drain()
            return future
        if self.config["raft-read-mode"] == "follower" and getattr(conn, "readonly", False):
            return None
        return self.not_leader_error("reads")

    def _serve_reads(self, round_) -> None:
        if not isinstance(round_, ReadRound):
            return
        if not round_.reads:
            self.lease_asked = False
        if self.config["raft-read-mode"] == "leader" and self.serving:
            self.lease_until = max(self.lease_until, round_.asked_at + self.election_s * LEASE_FRACTION)
        for future, conn, argv in round_.reads:
            if future.done() or conn.closing:
                continue
            self._admitted = conn
            try:
                reply = self.server.execute(conn, argv)
            finally:
                self._admitted = None
            future.set_result(reply)

    def _fail_reads(self, reads) -> None:
        error = self.not_leader_error("reads")
        for future, _, _ in reads:
            if not future.done():
                future.set_result(error)

    # -- refusals ------------------------------------------------------------------------
    def not_leader_error(self, what: str = "writes") -> ReplyError:
        """Why this node does not take ``what`` now, and where to go instead."""
        core = self.core
        if core.role is Role.LEADER:
            if core.transferee is not None:
                return ReplyError(f"CLUSTERDOWN Leadership is being handed over to "
                                  f"{core.transferee}; retry shortly")
            return ReplyError(f"CLUSTERDOWN {self.name} was just elected and has not yet "
                              f"committed an entry of term {core.term}; retry shortly")
        leader, port = self.leader_address()
        if leader is None:
            return ReplyError("CLUSTERDOWN The Raft shard has no leader right now (an election "
                              "is in progress, or a majority is unreachable)")
        if what == "writes":
            return ReplyError("READONLY You can't write against a read only replica.")
        return ReplyError(f"NOTLEADER {self.name} is a Raft follower: {what} are served by the "
                          f"leader {leader} (127.0.0.1:{port}); for stale reads here, set "
                          "raft-read-mode follower and send READONLY")

    def write_refusal(self) -> ReplyError | None:
        if self.serving:
            return None
        return self.not_leader_error("writes")

    # -- membership and leadership commands ----------------------------------------------
    def propose_change(self, action: str, member: str) -> int:
        """Propose one membership step; raises NotLeader or ValueError."""
        index = self.core.propose_membership(ConfigChange(action, member))
        self._schedule_drain()
        return index

    def transfer(self, target: str) -> None:
        self.core.transfer_leadership(target)
        self.lease_until = 0.0           # the transferee may lead before any lease ends
        self._schedule_drain()

    # -- faults ----------------------------------------------------------------------------
    def pause(self, paused: bool) -> None:
        self.paused = paused
        self.transport.pause(paused)

    def stop(self) -> None:
        """Crash: no more sending, ticking or writing."""
        self.stopped = True
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        if self._drain_handle is not None:
            self._drain_handle.cancel()
        if self.reads is not None:
            for future, _, _ in self.reads.reads:
                future.cancel()
        self.transport.close()
        self.storage.close()

    # -- what viewers and INFO read ------------------------------------------------------
    def info(self) -> dict:
        core = self.core
        leader, port = self.leader_address()
        membership = core.membership
        return {
            "raft_role": self.role_name, "raft_term": core.term,
            "raft_commit_index": core.commit_index, "raft_applied_index": self.applied_index,
            "raft_last_index": core.last_index, "raft_first_index": core.log.first_index,
            "raft_leader": leader or "", "raft_leader_port": port,
            "raft_voters": len(membership.voters), "raft_learners": len(membership.learners),
            "raft_voter_names": ",".join(sorted(membership.voters)),
            "raft_learner_names": ",".join(sorted(membership.learners)),
            "raft_read_mode": self.config["raft-read-mode"],
            "raft_serving": int(self.serving), "raft_peer_port": self.port,
            "raft_snapshot_index": core.log.snapshot.meta.index,
            "raft_entries_in_flight": self.provider.in_flight if self.provider else 0,
            "raft_messages_sent": self.transport.sent,
            "raft_messages_received": self.transport.received,
            "raft_messages_dropped": self.transport.dropped,
            **{f"raft_{k}": (round(v, 3) if isinstance(v, float) else v)
               for k, v in self.stats.items()},
        }

    def match_indexes(self) -> dict[str, int]:
        """On the leader: the last index each other member is known to store ({} elsewhere)."""
        core = self.core
        if core.role is not Role.LEADER:
            return {}
        return {peer: core.progress(peer)[0]
                for peer in sorted(core.membership.members - {self.name})}

    def snapshot_for_viewers(self) -> dict:
        core = self.core
        progress = self.match_indexes()
        return {"role": self.role_name, "term": core.term, "leader": core.leader_id,
                "commit_index": core.commit_index, "applied_index": self.applied_index,
                "last_index": core.last_index, "first_index": core.log.first_index,
                "voters": sorted(core.membership.voters),
                "learners": sorted(core.membership.learners),
                "serving": self.serving, "match": progress,
                "log_terms": [(e.index, e.term, e.kind.name) for e in
                              core.log.slice(max(core.log.first_index, core.last_index - 39),
                                             core.last_index + 1)]}
