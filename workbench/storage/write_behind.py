"""The write-behind log: the AOF's writes and fsyncs run behind the event loop, in batches.

With ``appendfsync always`` done inline, the event loop stops for every fsync (tens of
microseconds to milliseconds) and every client waits. Valkey's write-behind proposal
takes the write + fsync off the loop: commands run at once, their bytes are handed over
with :meth:`WriteBehindLog.submit`, and while one fsync runs everything handed over
meanwhile piles up to share the *next* one -- group commit. The more clients write at
once, the more writes share an fsync.

The writer is a separate process (:mod:`.aof_writer_process` says why not a thread). The
log numbers each hand-over with a token and keeps ``(token, offset, bytes, writes)``
until the writer reports the token durable; then it tells its owner
``on_durable(offset, ms)``. It never decides what a client is told; on a failing disk it
reports ``on_error(error)`` and, if the writer got the bytes down after all,
``on_recovered()``. Bytes it still holds when it is switched off are given back
(:meth:`drain_and_stop`), so nothing the node executed goes missing from the file.
What it holds until the writer reports it durable is its owner's to bound:
:attr:`queued_bytes` says how much that is.

Everything here runs on the event-loop thread; ``loop`` is anything with ``add_reader``,
``remove_reader``, ``add_writer`` and ``remove_writer`` (an asyncio loop).
"""

from __future__ import annotations

import errno
import os
import time
from collections import deque
from typing import Callable

from .aof import AppendOnlyFile
from .aof_writer_process import AofWriterProcess


class WriteBehindLog:
    def __init__(self, aof: AppendOnlyFile, loop, *, on_durable: Callable[[int, float], None],
                 on_error: Callable[[OSError], None], on_recovered: Callable[[], None],
                 on_started: Callable[[int], None] | None = None, name: str = "aof-writer"):
        self.aof = aof
        self._loop = loop
        self._on_started = on_started
        self._on_durable = on_durable
        self._on_error = on_error
        self._on_recovered = on_recovered
        self._writer = AofWriterProcess(name)
        self._writer.open(aof.path)
        self._generation = aof.generation
        aof.fault_listener = self._fault_changed
        if aof.injected_fault is not None:
            self._fault_changed(aof.injected_fault)
        self._fd = self._writer.fileno()
        loop.add_reader(self._fd, self._replies_arrived)
        self._waiting_for_socket = False
        self._handed_over: deque[tuple[int, int, bytes, int]] = deque()  # token, offset, data, writes
        self._handed_over_bytes = 0
        self._tokens = 0
        self._stopped = False
        self.failing = False
        self.batches = 0
        self.batched_writes = 0

    @property
    def idle(self) -> bool:
        """True when the writer has nothing to write or fsync: what comes next starts at once."""
        return not self._handed_over

    @property
    def queued_bytes(self) -> int:
        """Bytes held here until the writer reports them durable (the frames waiting for
        the writer's socket are these same bytes, not a copy)."""
        return self._handed_over_bytes

    @property
    def writer_pid(self) -> int:
        return self._writer.pid

    def submit(self, data: bytes, offset: int, writes: int = 1) -> None:
        """Hand over the bytes of writes up to replication offset ``offset``."""
        if self._stopped:               # a crashed node's last turn: nothing more is written
            return
        if self._generation != self.aof.generation:
            # Rewrites happen with gating off (CONFIG SET appendonly yes, a replica's full
            # sync); the log is created afterwards and must never see one.
            raise RuntimeError("the AOF was rewritten under the write-behind log")
        self._tokens += 1
        self._handed_over.append((self._tokens, offset, data, writes))
        self._handed_over_bytes += len(data)
        self.aof.handed_over(len(data))
        try:
            self._writer.append(self._tokens, data)
        except OSError as err:                 # the writer is gone
            self._writer_lost(err)
            return
        self._watch_socket()
        if self._on_started is not None and len(self._handed_over) == 1:
            self._on_started(offset)

    def _watch_socket(self) -> None:
        """While frames wait for room in the socket, send them when it is writable."""
        if self._writer.unsent and not self._waiting_for_socket:
            self._waiting_for_socket = True
            self._loop.add_writer(self._fd, self._socket_writable)

    def _socket_writable(self) -> None:
        try:
            done = self._writer.flush()
        except OSError as err:
            self._writer_lost(err)
            return
        if done:
            self._waiting_for_socket = False
            self._loop.remove_writer(self._fd)

    def _fault_changed(self, fault: OSError | None) -> None:
        try:
            self._writer.inject_fault((fault.errno or errno.EIO) if fault is not None else 0)
            self._watch_socket()
        except OSError as err:
            self._writer_lost(err)

    def _replies_arrived(self) -> None:
        try:
            replies = self._writer.replies()
        except OSError as err:
            self._writer_lost(err)
            return
        self._handle(replies)

    def _writer_lost(self, err: OSError) -> None:
        """The writer process died: nothing more becomes durable. Stop listening, reap
        it, and report a failing disk (the node refuses writes; its held replies fail)."""
        self._loop.remove_reader(self._fd)
        if self._waiting_for_socket:
            self._loop.remove_writer(self._fd)
            self._waiting_for_socket = False
        self._writer.process.poll()
        self._failed(OSError(errno.EIO, f"the AOF writer process is gone ({err})"))

    def _handle(self, replies) -> None:
        for token, error, duration_ms, fsynced_size in replies:
            if error:
                err = OSError(error, os.strerror(error))
                self.aof.fsync_failed(err)
                self._failed(err)
                continue
            offset, writes = None, 0
            while self._handed_over and self._handed_over[0][0] <= token:
                _, offset, data, count = self._handed_over.popleft()
                self._handed_over_bytes -= len(data)
                writes += count
            self.aof.fsync_completed(fsynced_size, duration_ms)
            self.batches += 1
            self.batched_writes += writes
            if self.failing:
                self.failing = False
                self._on_recovered()
            if offset is not None:
                self._on_durable(offset, duration_ms)
            if self._handed_over and self._on_started is not None:
                self._on_started(self._handed_over[-1][1])

    def _failed(self, err: OSError) -> None:
        if not self._stopped and not self.failing:
            self.failing = True
            self._on_error(err)

    def stop(self) -> None:
        """Stop at once, as a crash would: whatever was not fsynced stays unsynced."""
        if self._stopped:
            return
        self._stopped = True
        if self.aof.fault_listener == self._fault_changed:
            self.aof.fault_listener = None
        if self._writer.fileno() != -1:
            self._loop.remove_reader(self._fd)
            if self._waiting_for_socket:
                self._loop.remove_writer(self._fd)
        self._writer.stop()

    def drain_and_stop(self, timeout: float = 5.0) -> list[bytes]:
        """Wait (up to ``timeout`` seconds, less if the disk is failing) until everything
        handed over is fsynced, then stop. Returns the bytes that were not reported
        durable, in order, for the caller to write again (after cutting the file back to
        its fsynced size): a clean switch-off must not leave a hole in the file."""
        deadline = time.monotonic() + timeout
        try:
            while self._handed_over and not self.failing and time.monotonic() < deadline:
                self._writer.flush()
                self._handle(self._writer.wait_reply(max(0.001, deadline - time.monotonic())))
        except OSError:
            pass
        self.stop()
        return [data for _, _, data, _ in self._handed_over]
