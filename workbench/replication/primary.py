"""The primary's side of replication: the stream, its replicas, their acks, and WAIT.

Every write the primary executes is appended to the replication stream; its position
in bytes is the **replication offset**. A replica connects with ``PSYNC``, gets either
the backlog since the offset it already has (``+CONTINUE``) or a full snapshot
(``+FULLRESYNC <replid> <offset>``), then the live stream. Replicas report how far they
got with ``REPLCONF ACK <offset> [FACK <aof offset>]``. ``WAIT n t`` blocks a client
until ``n`` replicas acked the offset of that client's last write -- and returns the
count anyway when ``t`` runs out. That is all ``WAIT`` promises: the write was
*received* by n replicas, not that it will survive a failover.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

from ..resp import encode_command
from .backlog import Backlog

GETACK = encode_command([b"REPLCONF", b"GETACK", b"*"])
PING = encode_command([b"PING"])


def new_replid() -> str:
    return os.urandom(20).hex()


@dataclass(eq=False)
class ReplicaPeer:
    """One connected replica, as its primary sees it."""

    conn: object
    ip: str
    port: int
    name: str
    state: str = "wait_bgsave"      # wait_bgsave -> send_bulk -> online
    ack_offset: int = 0
    aof_offset: int = 0
    ack_time: float = field(default_factory=time.monotonic)


@dataclass(eq=False)
class _Waiter:
    offset: int
    numreplicas: int
    future: asyncio.Future
    aof_local: int = -1             # WAITAOF: 1 when the local fsync is required
    handle: asyncio.TimerHandle | None = None


class ReplicationState:
    """Stream, offset, backlog, replicas and waiters of one node (in either role)."""

    def __init__(self, backlog_size: int):
        self.replid = new_replid()
        self.replid2 = "0" * 40
        self.second_offset = -1
        self.backlog = Backlog(backlog_size)
        self.replicas: list[ReplicaPeer] = []
        self.waiters: list[_Waiter] = []
        self.stream_db = -1
        self._getack_pending = False

    @property
    def offset(self) -> int:
        return self.backlog.offset

    # -- the stream ------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        self.backlog.append(data)
        if self.replicas:                  # skip the loop on a primary without replicas
            for r in self.replicas:
                if r.state == "online":
                    r.conn.write_raw(data)

    def shift_history(self) -> None:
        """A promotion starts a new history, remembering the old one for PSYNC."""
        self.replid2 = self.replid
        self.second_offset = self.offset + 1
        self.replid = new_replid()
        self.stream_db = -1

    def adopt(self, replid: str, offset: int) -> None:
        """A replica takes on its primary's history after a full sync."""
        self.replid = replid
        self.replid2 = "0" * 40
        self.second_offset = -1
        self.backlog.reset(offset)
        self.stream_db = -1

    def can_continue(self, replid: str, wanted: int) -> bool:
        if replid == self.replid or (replid == self.replid2 and wanted <= self.second_offset):
            return self.backlog.can_continue_from(wanted)
        return False

    # -- acks and WAIT --------------------------------------------------------------
    def count_acks(self, offset: int, aof: bool = False) -> int:
        return sum(1 for r in self.replicas if r.state == "online"
                   and (r.aof_offset if aof else r.ack_offset) >= offset)

    def good_replicas(self, max_lag: float) -> int:
        now = time.monotonic()
        return sum(1 for r in self.replicas
                   if r.state == "online" and now - r.ack_time <= max_lag)

    def on_ack(self, peer: ReplicaPeer, offset: int, aof_offset: int | None,
               fsynced_offset: int) -> None:
        peer.ack_offset = max(peer.ack_offset, offset)
        if aof_offset is not None:
            peer.aof_offset = max(peer.aof_offset, aof_offset)
        peer.ack_time = time.monotonic()
        self.check_waiters(fsynced_offset)

    def add_waiter(self, offset: int, numreplicas: int, timeout_ms: int, *,
                   aof_local: int = -1, fsynced_offset: int = -1) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        waiter = _Waiter(offset, numreplicas, loop.create_future(), aof_local)
        if timeout_ms > 0:
            waiter.handle = loop.call_later(timeout_ms / 1000, self._time_out, waiter,
                                            fsynced_offset)
        self.waiters.append(waiter)
        self.request_acks()
        return waiter.future

    def _reply_for(self, w: _Waiter, fsynced_offset: int):
        if w.aof_local < 0:
            return self.count_acks(w.offset)
        return [1 if fsynced_offset >= w.offset else 0, self.count_acks(w.offset, aof=True)]

    def _time_out(self, w: _Waiter, fsynced_offset: int) -> None:
        if w in self.waiters:
            self.waiters.remove(w)
            if not w.future.done():
                w.future.set_result(self._reply_for(w, self._fsynced_now(fsynced_offset)))

    fsynced_source = None   # set by the server: a callable giving the local fsynced offset

    def _fsynced_now(self, fallback: int) -> int:
        return self.fsynced_source() if self.fsynced_source else fallback

    def check_waiters(self, fsynced_offset: int | None = None) -> None:
        if not self.waiters:
            return
        if fsynced_offset is None:
            fsynced_offset = self._fsynced_now(-1)
        for w in list(self.waiters):
            if w.aof_local < 0:
                done = self.count_acks(w.offset) >= w.numreplicas
            else:
                done = ((w.aof_local == 0 or fsynced_offset >= w.offset)
                        and self.count_acks(w.offset, aof=True) >= w.numreplicas)
            if done:
                self.waiters.remove(w)
                if w.handle:
                    w.handle.cancel()
                if not w.future.done():
                    w.future.set_result(self._reply_for(w, fsynced_offset))

    def request_acks(self) -> None:
        """Send one ``REPLCONF GETACK *`` through the stream, at the end of this loop turn."""
        if not self._getack_pending and self.replicas:
            self._getack_pending = True
            asyncio.get_running_loop().call_soon(self._send_getack)

    def _send_getack(self) -> None:
        self._getack_pending = False
        if self.waiters and any(r.state == "online" for r in self.replicas):
            self.feed(GETACK)

    def fail_waiters(self, error) -> None:
        """The node is no longer a primary: every blocked WAIT gets ``error``."""
        for w in self.waiters:
            if w.handle:
                w.handle.cancel()
            if not w.future.done():
                w.future.set_result(error)
        self.waiters.clear()

    def drop_replica(self, peer: ReplicaPeer) -> None:
        if peer in self.replicas:
            self.replicas.remove(peer)

    # -- what INFO and ROLE show ----------------------------------------------------
    def role_entries(self) -> list:
        return [[r.ip.encode(), str(r.port).encode(), str(r.ack_offset).encode()]
                for r in self.replicas if r.state == "online"]

    def info_lines(self, is_eligible=None) -> list[str]:
        """``is_eligible(name)`` (sync) adds ``eligible=1|0`` to each replica's line."""
        now = time.monotonic()
        lines = [f"connected_slaves:{len(self.replicas)}"]
        for i, r in enumerate(self.replicas):
            lag = int(now - r.ack_time) if r.state == "online" else 0
            eligible = "" if is_eligible is None else f",eligible={int(is_eligible(r.name))}"
            lines.append(f"slave{i}:ip={r.ip},port={r.port},state={r.state},"
                         f"offset={r.ack_offset},lag={lag},type=replica{eligible}")
        return lines
