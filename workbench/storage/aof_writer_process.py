"""The AOF writer process: the write-behind log's "BIO", as a process of its own.

Valkey hands the AOF ``write`` + ``fsync`` to a background *thread*. A Python thread can
do the same without blocking the event loop (both syscalls release the GIL), but every
hand-over and every report needs the GIL back while the loop is busy serving clients:
measured here, a report reached the loop ~300 µs after the fsync ended, longer than the
fsync. And the ``write`` cannot simply stay on the loop: on Linux a write into a page the
disk is still flushing waits for that flush ("stable pages"), so the loop would stall
behind every fsync anyway. A separate process has its own interpreter: the node streams
it the bytes over a socket pair, it appends and fsyncs them (see :mod:`._aof_writer_child`
for the protocol), and its replies arrive on a socket the event loop already polls.

No asyncio here: the owner registers :meth:`fileno` with its loop, calls :meth:`replies`
when it is readable and, while :attr:`unsent` holds frames the socket could not take
(the disk is behind), :meth:`flush` when it is writable. Nothing here blocks the loop.
Unsent frames are kept as the caller's own ``bytes`` (sent with one ``sendmsg``), not
copied: the write-behind log already holds them until they are durable, and a second
copy would double what a slow disk makes the node hold.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
from collections import deque

from ._aof_writer_child import APPEND, FAULT, FRAME, OPEN, REPLY

_CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_aof_writer_child.py")
SEND_BUFFER = 1 << 20     # the kernel's share of the queue to the writer


class AofWriterProcess:
    """One writer process. :meth:`open` a file, :meth:`append` to it, read :meth:`replies`."""

    def __init__(self, name: str = "aof-writer"):
        self.name = name
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", _CHILD, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        ours.setblocking(False)          # never toggled: each toggle is a system call
        self._sock = ours
        self._inbox = bytearray()
        self.unsent: deque = deque()     # frame parts the socket could not take yet (disk behind)

    @property
    def pid(self) -> int:
        return self.process.pid

    def fileno(self) -> int:
        return self._sock.fileno()

    def open(self, path: str) -> None:
        """Append to ``path`` (the first frame, once)."""
        self._send(OPEN, 0, os.fsencode(path))

    def append(self, token: int, data: bytes) -> None:
        """Hand over ``data``; a reply with a token >= ``token`` will say it is durable.
        Never blocks: what the socket cannot take waits in :attr:`unsent` (see
        :meth:`flush`)."""
        self._send(APPEND, token, data)

    def inject_fault(self, errno_value: int) -> None:
        """Make the writer's writes and fsyncs fail with ``errno_value``; 0 heals."""
        self._send(FAULT, errno_value, b"")

    def _send(self, kind: int, token: int, payload: bytes) -> None:
        self.unsent.append(FRAME.pack(kind, token, len(payload)))
        if payload:
            self.unsent.append(payload)
        self.flush()

    def flush(self) -> bool:
        """Send what the socket takes now; True when nothing is left unsent. Raises
        ``ConnectionError`` when the writer is gone."""
        unsent = self.unsent
        while unsent:
            try:
                sent = self._sock.sendmsg(list(unsent) if len(unsent) <= 64
                                          else [unsent[i] for i in range(64)])
            except BlockingIOError:
                return False
            while sent:
                part = unsent[0]
                if sent < len(part):
                    unsent[0] = memoryview(part)[sent:]
                    break
                sent -= len(part)
                unsent.popleft()
        return True

    def replies(self) -> list[tuple[int, int, float, int]]:
        """The replies that have arrived: ``(token, errno or 0, fsync ms, fsynced size)``.
        One ``recv``: if more is waiting, the socket stays readable and the loop calls
        again. Raises ``ConnectionError`` when the writer is gone."""
        try:
            data = self._sock.recv(1 << 16)
        except BlockingIOError:
            return []
        if not data:
            raise ConnectionError(f"the {self.name} process exited")
        self._inbox += data
        return self._parse()

    def wait_reply(self, timeout: float) -> list[tuple[int, int, float, int]]:
        """Wait up to ``timeout`` seconds for replies (a clean shutdown's last fsync)."""
        if not select.select([self._sock], [], [], timeout)[0]:
            return []
        return self.replies()

    def _parse(self):
        out = []
        while len(self._inbox) >= REPLY.size:
            token, error, micros, size = REPLY.unpack_from(self._inbox)
            del self._inbox[:REPLY.size]
            out.append((token, error, micros / 1000.0, size))
        return out

    def stop(self) -> None:
        """Close our end; the writer sees end-of-file and exits. Reap it by its PID."""
        if self._sock.fileno() != -1:
            self._sock.close()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:             # stuck in a very slow fsync
            os.kill(self.process.pid, signal.SIGKILL)
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:         # in an uninterruptible disk wait;
                pass                                  # subprocess reaps it later
