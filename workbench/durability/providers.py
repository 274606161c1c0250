"""Durability providers: each reports the highest replication offset it made durable.

The commit gate takes the minimum over a mode's providers. ``aof`` mode has one, the
AOF provider; ``sync`` will add the replicas' acknowledgements and ``raft`` the log's
commit index -- a new mode is a new provider, not a new pipeline.
"""

from __future__ import annotations


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
