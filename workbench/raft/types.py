"""The values the Raft core, its storage and its simulator exchange.

All of them are small frozen dataclasses: the core hands them out, the shell persists or
sends them, and nothing downstream can change what the core decided.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class EntryKind(IntEnum):
    """What a log entry carries."""

    NOOP = 0      # appended by every new leader, so entries of older terms can commit (Figure 8)
    COMMAND = 1   # a client's command, opaque bytes to Raft
    CONFIG = 2    # a single-server membership change, encoded by ``ConfigChange.encode``


@dataclass(frozen=True, slots=True)
class Entry:
    index: int
    term: int
    kind: EntryKind = EntryKind.COMMAND
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class HardState:
    """What Figure 2 calls persistent state, less the log: it must be on disk before a
    message that depends on it leaves the node. ``commit`` is kept too (as etcd does) so a
    restarted node can re-apply what it already knew to be committed."""

    term: int = 0
    voted_for: str | None = None
    commit: int = 0


@dataclass(frozen=True, slots=True)
class Membership:
    """Who votes and who only listens (learners catch up, then may be promoted)."""

    voters: frozenset[str]
    learners: frozenset[str] = frozenset()

    def __repr__(self) -> str:      # sorted: a repr must not depend on the hash seed
        return f"Membership(voters={sorted(self.voters)}, learners={sorted(self.learners)})"

    @property
    def members(self) -> frozenset[str]:
        return self.voters | self.learners

    def quorum(self) -> int:
        return len(self.voters) // 2 + 1


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """The last entry a snapshot covers and the membership in force at that entry."""

    index: int
    term: int
    membership: Membership

    def replaces(self, entries) -> int:
        """How many leading ``entries`` (consecutive, as a log stores them) this snapshot
        replaces. The suffix after its index survives only if the log holds the snapshot's
        own entry: same index and term mean the same history up to there (Log Matching);
        otherwise none survive."""
        if not entries or entries[0].index > self.index:
            return 0
        k = self.index - entries[0].index
        if k < len(entries) and entries[k].term == self.term:
            return k + 1
        return len(entries)


@dataclass(frozen=True, slots=True)
class Snapshot:
    meta: SnapshotMeta
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """One membership step: ``add_learner``, ``promote`` (learner -> voter) or ``remove``."""

    action: str
    node: str

    ACTIONS = ("add_learner", "promote", "remove")

    def encode(self) -> bytes:
        return f"{self.action} {self.node}".encode()

    @classmethod
    def decode(cls, data: bytes) -> "ConfigChange":
        action, node = data.decode().split(" ", 1)
        if action not in cls.ACTIONS:
            raise ValueError(f"unknown membership change {action!r}")
        return cls(action, node)

    def apply(self, membership: Membership) -> Membership:
        voters, learners = set(membership.voters), set(membership.learners)
        if self.action == "add_learner":
            learners.add(self.node)
        elif self.action == "promote":
            learners.discard(self.node)
            voters.add(self.node)
        else:
            voters.discard(self.node)
            learners.discard(self.node)
        return Membership(frozenset(voters), frozenset(learners))


@dataclass(frozen=True, slots=True)
class PersistedState:
    """Everything a node reads back from disk when it (re)starts."""

    hard_state: HardState = field(default_factory=HardState)
    snapshot: Snapshot | None = None
    entries: tuple[Entry, ...] = ()
