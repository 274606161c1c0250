"""Durability providers: each reports the highest replication offset it made durable.

The commit gate takes the minimum over a mode's providers. ``aof`` mode has one, the
AOF provider; ``sync`` has the replicas' acknowledgements (and the AOF's too when it
is on); ``raft`` has the offset of the log's last committed entry -- a new mode is a new
provider, not a new pipeline.
"""

from __future__ import annotations

from collections import deque


class AofProvider:
    """The offset covered by the last completed fsync of the append-only file.

    ``pause()`` freezes the reported offset where it is (fsyncs go on underneath), the
    lever behind ``DEBUG reply-blocking-pause aof``: replies stay held until
    ``resume()``, so a learner can watch them wait.
    """

    name = "aof"

    def __init__(self, fsynced_offset: int = 0):
        self.fsynced_offset = fsynced_offset
        self.paused_at: int | None = None

    @property
    def durable_offset(self) -> int:
        return self.fsynced_offset if self.paused_at is None else self.paused_at

    def fsynced(self, offset: int) -> None:
        if offset > self.fsynced_offset:
            self.fsynced_offset = offset

    def pause(self) -> None:
        if self.paused_at is None:
            self.paused_at = self.fsynced_offset

    def resume(self) -> None:
        self.paused_at = None

    @property
    def paused(self) -> bool:
        return self.paused_at is not None


class ReplicaProvider:
    """The offset every *eligible* replica has acknowledged (synchronous replication).

    ``eligible`` maps each replica the primary waits for to the offset it acknowledged.
    With fewer than ``required`` of them nothing more is durable: the offset stays where
    it is, so held writes wait (and time out) rather than commit on too few copies. With
    ``required == 0`` and nobody eligible, a write is durable once executed.
    """

    name = "replicas"

    def __init__(self, required: int, executed_offset, committed_offset: int = 0):
        self.required = required
        self.executed_offset = executed_offset      # () -> the primary's offset
        self.eligible: dict[str, int] = {}
        self._floor = committed_offset              # the last offset reported

    @property
    def durable_offset(self) -> int:
        if not self.enough():
            return self._floor
        offset = min(self.eligible.values()) if self.eligible else self.executed_offset()
        if offset > self._floor:
            self._floor = offset
        return self._floor

    def acked(self, name: str, offset: int) -> None:
        if name in self.eligible and offset > self.eligible[name]:
            self.eligible[name] = offset

    def grant(self, name: str, offset: int) -> None:
        self.eligible[name] = offset

    def revoke(self, name: str) -> None:
        self.eligible.pop(name, None)

    def enough(self) -> bool:
        return len(self.eligible) >= self.required


class RaftProvider:
    """The replication offset of the last committed log entry (``raft``).

    The leader executes each write at once (write-behind) and proposes one loop turn's
    writes as one log entry; it remembers the offset that entry ends at. When the Raft
    core commits the entry -- a majority of voters fsynced it -- everything up to that
    offset is durable. Offsets of a previous leadership were all committed before this
    leader served its first write, so the provider starts at the offset it took over.
    """

    name = "raft"

    def __init__(self, committed_offset: int = 0):
        self.durable_offset = committed_offset
        self._proposed: deque = deque()      # (entry index, offset it ends at), in order

    def proposed(self, index: int, end_offset: int) -> None:
        self._proposed.append((index, end_offset))

    def committed(self, commit_index: int) -> None:
        proposed = self._proposed
        while proposed and proposed[0][0] <= commit_index:
            self.durable_offset = max(self.durable_offset, proposed.popleft()[1])

    @property
    def in_flight(self) -> int:
        """Entries proposed and not yet committed."""
        return len(self._proposed)
