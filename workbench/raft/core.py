"""RaftNode: one server's Raft, as a deterministic state machine (in the manner of etcd's raft).

Theory of operation
-------------------
The node does no I/O and keeps no clock. Three kinds of input drive it:

* ``tick()`` -- time passing; elections and heartbeats are counted in ticks, and the
  only randomness (the election timeout) comes from the injected ``rng``;
* ``step(message)`` -- a message from another server (messages.py);
* ``propose`` / ``propose_membership`` / ``read_index`` / ``transfer_leadership`` /
  ``compact`` -- requests from the application on this server.

Its one output is ``ready()``, which drains everything pending into a ``Ready``: state
to persist, messages to send, committed entries to apply, confirmed reads.

**The caller's contract**, for every Ready, in order: persist (and fsync) the snapshot,
then the entries, then the hard state; only then send the messages; then restore the
snapshot if asked and apply the committed entries. Feed the node nothing else until
the Ready is persisted. This is what makes Figure 2's "respond to RPCs only after
updating stable storage" hold: a vote or an acknowledged entry never leaves the server
before it is on disk. It is also why the leader may count its own new entries as
stored when it counts replicas for commitment -- nothing that depends on them becomes
visible before the Ready that carries them is durable.

On restart, build the node from what storage loaded (``persisted``); the application
restores its state machine from ``persisted.snapshot`` itself, and the first Readies
hand it the committed entries after it again.

The paper's Figure 2 is the specification; where it leaves room (batching, flow
control, heartbeats, ReadIndex rounds) the choices mostly follow etcd and are explained
where they are made:

* election.py -- timeouts, pre-vote, votes, the leader lease;
* replication.py -- AppendEntries / InstallSnapshot on both sides, commitment;
* progress.py -- the leader's view of each follower (probe / replicate / snapshot);
* read_index.py -- linearizable reads; membership.py -- configuration changes;
* log.py -- the in-memory log with its snapshot prefix and membership in force.

Terms come first (Figure 2, "Rules for Servers"): any message with a newer term makes
the node a follower in that term -- except a request for a (pre-)vote that the node
ignores because it trusts its leader (the lease), and a pre-vote, which changes nobody's
term. A request with an older term is refused, with the node's term in the answer so
the stale sender learns it; a stale response is dropped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from .election import Elections
from .log import RaftLog
from .membership import check_change
from .messages import (AppendEntries, AppendResponse, InstallSnapshot, Message, TimeoutNow,
                       VoteRequest, VoteResponse)
from .read_index import ReadIndexQueue, ReadState
from .ready import Ready, Role, SoftState
from .replication import Replication
from .types import (ConfigChange, EntryKind, HardState, Membership, PersistedState, Snapshot,
                    SnapshotMeta)


@dataclass(frozen=True, slots=True)
class RaftConfig:
    election_ticks: int = 10            # election timeout drawn from [election_ticks, 2 * election_ticks)
    heartbeat_ticks: int = 1
    pre_vote: bool = True
    check_quorum: bool = True
    max_entries_per_message: int = 64
    max_inflight_messages: int = 8      # pipelined appends per follower in replicate state

    def __post_init__(self):
        if not 0 < self.heartbeat_ticks < self.election_ticks:
            raise ValueError("need 0 < heartbeat_ticks < election_ticks")
        if self.max_entries_per_message < 1 or self.max_inflight_messages < 1:
            raise ValueError("max_entries_per_message and max_inflight_messages must be >= 1")


class NotLeader(Exception):
    """This node cannot take the request; ``leader_id`` is where to try instead (None if
    unknown; during a leadership transfer, the transfer's target)."""

    def __init__(self, leader_id: str | None, reason: str = "not the leader"):
        super().__init__(f"{reason} (leader: {leader_id})")
        self.leader_id = leader_id


class RaftNode(Elections, Replication):
    def __init__(self, node_id: str, *, membership: Membership | None = None,
                 persisted: PersistedState | None = None, rng: random.Random,
                 config: RaftConfig = RaftConfig()):
        """``persisted``: what storage loaded on restart. ``membership``: the shard's
        bootstrap configuration -- the membership "before the first entry". Every server
        of the shard, including one added later, is given the same one (CONFIG entries
        are changes relative to it); it is not needed when ``persisted`` has a snapshot,
        whose membership replaces it."""
        persisted = persisted or PersistedState()
        snapshot = persisted.snapshot
        if snapshot is None:
            if membership is None:
                raise ValueError("a node without a snapshot needs the bootstrap membership")
            snapshot = Snapshot(SnapshotMeta(0, 0, membership))
        self._id = node_id
        self._config = config
        self._rng = rng
        self._log = RaftLog(snapshot, [e for e in persisted.entries if e.index > snapshot.meta.index])
        hard = persisted.hard_state
        self._term = hard.term
        self._voted_for = hard.voted_for
        self._commit = max(hard.commit, snapshot.meta.index)
        if self._commit > self._log.last_index:
            raise ValueError(f"commit index {self._commit} is past the last entry {self._log.last_index}:"
                             " storage lost committed entries")
        self._applied = snapshot.meta.index     # the application restores the snapshot itself
        self._role = Role.FOLLOWER
        self._leader_id: str | None = None
        self._votes: dict[str, bool] = {}
        self._progress = {}
        self._reads = ReadIndexQueue()
        self._transferee: str | None = None
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_timeout = 0
        self._msgs: list[Message] = []
        self._read_states: list[ReadState] = []
        self._pending_snapshot: Snapshot | None = None
        self._restore_snapshot = False
        self._prev_hard_state = hard
        self._prev_soft_state = SoftState(Role.FOLLOWER, None)
        self._reset_election_timer()

    def __repr__(self) -> str:
        return (f"RaftNode({self._id}, {self._role.value}, term={self._term}, "
                f"commit={self._commit}, last={self._log.last_index})")

    # -- what the node is ----------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._id

    @property
    def role(self) -> Role:
        return self._role

    @property
    def term(self) -> int:
        return self._term

    @property
    def leader_id(self) -> str | None:
        return self._leader_id

    @property
    def voted_for(self) -> str | None:
        return self._voted_for

    @property
    def commit_index(self) -> int:
        return self._commit

    @property
    def applied_index(self) -> int:
        """The last index handed to the application (committed entries or a snapshot)."""
        return self._applied

    @property
    def last_index(self) -> int:
        return self._log.last_index

    @property
    def membership(self) -> Membership:
        """The configuration in force: the last one in the log, committed or not."""
        return self._log.membership

    @property
    def is_learner(self) -> bool:
        return self._id in self._log.membership.learners

    @property
    def log(self) -> RaftLog:
        """The in-memory log, for reading (tests, viewers); change it only through the node."""
        return self._log

    @property
    def transferee(self) -> str | None:
        """The target of a leadership transfer in progress."""
        return self._transferee

    def progress(self, peer: str) -> tuple[int, int]:
        """A leader's (match, next) for ``peer``."""
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader_id)
        progress = self._progress[peer]
        return progress.match, progress.next

    # -- inputs ----------------------------------------------------------------------------

    def tick(self) -> None:
        if self._role is Role.LEADER:
            self._tick_leader()
        else:
            self._tick_election()

    def step(self, message: Message) -> None:
        m = message
        if not isinstance(m, Message) or m.dst != self._id or m.src == self._id:
            return
        if m.term > self._term:
            if isinstance(m, VoteRequest):
                if self._in_lease() and not m.transfer:
                    return              # we trust a live leader: do not even raise our term
                if not m.pre_vote:
                    self._become_follower(m.term, None)
            elif isinstance(m, VoteResponse) and m.pre_vote and m.granted:
                pass                    # granted for the term we would run in; ours is unchanged
            elif isinstance(m, (AppendEntries, InstallSnapshot, TimeoutNow)):
                self._become_follower(m.term, m.src)
            else:
                self._become_follower(m.term, None)
        elif m.term < self._term:
            self._answer_stale(m)
            return
        match m:
            case VoteRequest():
                self._on_vote_request(m)
            case VoteResponse():
                self._on_vote_response(m)
            case AppendEntries():
                self._on_append_entries(m)
            case InstallSnapshot():
                self._on_install_snapshot(m)
            case AppendResponse():
                self._on_append_response(m)
            case TimeoutNow():
                self._on_timeout_now(m)

    def _answer_stale(self, m: Message) -> None:
        """Refuse a request from an older term, telling the sender our term."""
        if isinstance(m, (AppendEntries, InstallSnapshot)):
            self._send(AppendResponse(src=self._id, dst=m.src, term=self._term, success=False,
                                      rejected_index=getattr(m, "prev_log_index", 0)))
        elif isinstance(m, VoteRequest):
            self._send(VoteResponse(src=self._id, dst=m.src, term=self._term,
                                    pre_vote=m.pre_vote, granted=False))

    def propose(self, data: bytes) -> int:
        """Append a command to the leader's log; returns its index (it is committed when
        it shows up in ``committed_entries``)."""
        self._require_leader()
        return self._append_new(EntryKind.COMMAND, bytes(data))

    def propose_membership(self, change: ConfigChange) -> int:
        """Append a single-server membership change (rules in membership.py)."""
        self._require_leader()
        check_change(change, self._log.membership,
                     previous_committed=self._log.last_config_index <= self._commit,
                     term_committed=self._term_committed())
        return self._append_new(EntryKind.CONFIG, change.encode())

    def read_index(self, context: Any) -> None:
        """Ask for a linearizable read; a later Ready carries ``ReadState(context, index)``.
        Requests are dropped if the node stops being leader first: retry elsewhere."""
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader_id)
        self._reads.request(context, self._commit, self._term_committed())

    def transfer_leadership(self, target: str) -> None:
        """Hand leadership to ``target`` (dissertation §3.10): stop taking proposals, bring
        the target's log up to date, then send it TimeoutNow. Aborted if it has not
        happened within an election timeout."""
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader_id)
        if target == self._id or target == self._transferee:
            return
        if target not in self._log.membership.voters:
            raise ValueError(f"{target} is not a voter")
        self._transferee = target
        self._election_elapsed = 0
        if self._progress[target].match == self._log.last_index:
            self._send_timeout_now(target)

    def campaign(self) -> None:
        """Start an election now (with a pre-vote if configured); a no-op for a leader or
        a node that is not a voter in its own configuration."""
        self._hup()

    def compact(self, index: int, data: bytes) -> None:
        """The application's snapshot of its state machine at applied index ``index``:
        the log before it is dropped, and the next Ready carries the snapshot to persist."""
        if index > self._applied:
            raise ValueError(f"cannot compact at {index}: only {self._applied} is applied")
        if index <= self._log.snapshot.meta.index:
            return
        meta = SnapshotMeta(index, self._log.term_at(index), self._log.membership_at(index))
        snapshot = Snapshot(meta, bytes(data))
        self._log.compact(snapshot)
        self._pending_snapshot, self._restore_snapshot = snapshot, False

    # -- output ----------------------------------------------------------------------------

    def has_ready(self) -> bool:
        return bool(self._msgs or self._read_states or self._pending_snapshot is not None
                    or self._log.has_unstable() or self._commit > self._applied
                    or self._hard_state() != self._prev_hard_state
                    or self._soft_state() != self._prev_soft_state
                    or self._has_lazy_messages())

    def ready(self) -> Ready:
        """Drain everything pending. The node assumes the caller handles it as the
        contract says (module docstring) before calling anything else."""
        self._flush()
        hard, soft = self._hard_state(), self._soft_state()
        ready = Ready(
            hard_state=hard if hard != self._prev_hard_state else None,
            snapshot=self._pending_snapshot,
            entries=self._log.unstable_entries(),
            messages=tuple(self._msgs),
            committed_entries=self._log.slice(self._applied + 1, self._commit + 1),
            read_states=tuple(self._read_states),
            soft_state=soft if soft != self._prev_soft_state else None,
            restore_snapshot=self._restore_snapshot,
        )
        self._prev_hard_state, self._prev_soft_state = hard, soft
        self._log.mark_stable()
        self._msgs, self._read_states = [], []
        self._pending_snapshot, self._restore_snapshot = None, False
        self._applied = self._commit
        return ready

    # -- shared internals ------------------------------------------------------------------

    def _send(self, message: Message) -> None:
        self._msgs.append(message)

    def _hard_state(self) -> HardState:
        return HardState(self._term, self._voted_for, self._commit)

    def _soft_state(self) -> SoftState:
        return SoftState(self._role, self._leader_id)

    def _term_committed(self) -> bool:
        return self._log.term_at(self._commit) == self._term

    def _require_leader(self) -> None:
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader_id)
        if self._transferee is not None:
            raise NotLeader(self._transferee, "leadership transfer in progress")

    def _become_follower(self, term: int, leader_id: str | None) -> None:
        if term > self._term:
            self._term = term
            self._voted_for = None
        self._role = Role.FOLLOWER
        self._leader_id = leader_id
        self._votes = {}
        self._progress = {}
        self._reads = ReadIndexQueue()      # pending reads die with the leadership
        self._transferee = None
        self._reset_election_timer()

    def _on_membership_change(self) -> None:
        """A CONFIG entry entered or left the log, or a snapshot brought a membership."""
        if self._role is Role.LEADER:
            self._sync_progress()
            self._maybe_commit()        # a smaller quorum may already hold more
