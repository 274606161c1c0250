"""The write-behind log: AOF writes and fsyncs on a worker thread, in batches.

With ``appendfsync always`` done inline, the event loop stops for every fsync (tens of
microseconds to milliseconds) and every client waits. Valkey's write-behind proposal
moves the ``write`` + ``fsync`` to a background thread (its "BIO"): commands run at once
on the loop and hand their bytes over with :meth:`WriteBehindLog.submit`; the worker
takes *everything* submitted since its last fsync as one batch -- group commit -- writes
it, fsyncs it, and reports the replication offset the batch reached. The more clients
write at once, the more writes share one fsync.

The worker never decides what a client is told; it only reports ``on_durable(offset)``,
``on_error(error)`` and ``on_recovered()``. After an error it keeps the batch and
retries, so when the disk comes back the node catches up by itself.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from .aof import AppendOnlyFile


class WriteBehindLog:
    RETRY_INTERVAL = 0.1

    def __init__(self, aof: AppendOnlyFile, *, on_durable: Callable[[int, float], None],
                 on_error: Callable[[OSError], None], on_recovered: Callable[[], None],
                 on_started: Callable[[int], None] | None = None, name: str = "bio-aof"):
        self.aof = aof
        self._on_started = on_started
        self._on_durable = on_durable
        self._on_error = on_error
        self._on_recovered = on_recovered
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: list[bytes] = []
        self._pending_offset = -1
        self._stopped = False
        self._draining = False
        self.failing = False
        self.batches = 0
        self.batched_writes = 0
        self._pending_writes = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, data: bytes, offset: int, writes: int = 1) -> None:
        """Hand over the bytes of writes up to replication offset ``offset`` (loop thread)."""
        with self._lock:
            self._pending.append(data)
            self._pending_offset = offset
            self._pending_writes += writes
            self._wake.notify()

    def _take_batch(self):
        with self._lock:
            while not self._pending and not self._stopped and not self._draining:
                self._wake.wait()
            if self._stopped or not self._pending:
                return None
            batch, self._pending = self._pending, []
            writes, self._pending_writes = self._pending_writes, 0
            return b"".join(batch), self._pending_offset, writes

    def _run(self) -> None:
        while True:
            taken = self._take_batch()
            if taken is None:
                return
            data, offset, writes = taken
            if self._on_started is not None:
                self._on_started(offset)
            self.aof.feed(data)
            started = time.perf_counter()
            while not self._stopped:
                try:
                    self.aof.flush()
                    self.aof.fsync()
                    break
                except (OSError, ValueError) as err:   # ValueError: file closed under us
                    if isinstance(err, ValueError) or self.aof.closed:
                        return
                    if not self.failing:
                        self.failing = True
                        self._on_error(err)
                    time.sleep(self.RETRY_INTERVAL)
            else:
                return
            if self.failing:
                self.failing = False
                self._on_recovered()
            self.batches += 1
            self.batched_writes += writes
            self._on_durable(offset, (time.perf_counter() - started) * 1000)

    def stop(self) -> None:
        """Stop at once, as a crash would: whatever was not fsynced stays unsynced."""
        with self._lock:
            self._stopped = True
            self._wake.notify()

    def drain_and_stop(self, timeout: float = 10.0) -> None:
        """Write and fsync everything submitted so far, then stop (a clean switch-off)."""
        with self._lock:
            self._draining = True
            self._wake.notify()
        self._thread.join(timeout)
