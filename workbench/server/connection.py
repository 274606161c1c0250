"""One client connection: the thin asyncio shell around the RESP parser.

Bytes arrive, the parser turns them into commands, the node executes each one and the
replies are written back in order. Two things make this more than a loop:

* **Blocking commands** (``WAIT``, ``WAITAOF``, ``DEBUG SLEEP``) answer later. Like
  Valkey, a blocked client executes nothing else until it is unblocked: the commands
  behind it wait in ``pending`` and the socket stops being read.
* **Protocol errors** end the connection after one ``-ERR Protocol error`` reply; the
  commands that arrived whole before the bad bytes still run.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque

from ..durability import NOT_HELD, HeldReplies
from ..resp import ProtocolError, RequestParser, encode

_client_ids = itertools.count(1)


class Blocked:
    """A reply that is not ready yet: the connection waits for ``future``."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future):
        self.future = future


class ClientConnection(asyncio.Protocol):
    def __init__(self, node):
        self.node = node
        self.id = next(_client_ids)
        self.transport = None
        self.addr = "?"
        self.laddr = "?"
        self.parser = RequestParser(
            authenticated=not node.config["requirepass"],
            max_bulk_len=node.config["proto-max-bulk-len"],
            query_buffer_limit=node.config["client-query-buffer-limit"])
        self.proto = 2
        self.db = 0
        self.name = b""
        self.lib_name = b""
        self.lib_ver = b""
        self.authenticated = not node.config["requirepass"]
        self.created = time.time()
        self.last_command = b"NULL"
        self.last_interaction = self.created
        # transactions
        self.multi: list | None = None       # queued argv while in MULTI
        self.multi_error = False             # a queued command was rejected: EXECABORT
        self.watched: set = set()             # (db, key) pairs
        self.watch_dirty = False
        # pub/sub
        self.channels: set = set()
        self.patterns: set = set()
        # replication
        self.woff = 0                         # offset after this client's last write
        self.replica = None                   # ReplicaPeer when this connection is a replica
        self.is_primary_link = False
        # flow
        self.pending: deque = deque()
        self.blocked = False
        self.closing = False
        # output written at the end of this event-loop turn (see _queue_output)
        self._unsent: list = []
        # the commit gate: the offset the current reply waits for, and the held output
        self.hold_until = NOT_HELD
        self.held = HeldReplies()
        self.paused_by_gate = False

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport):
        self.transport = transport
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        if peer:
            self.addr = f"{peer[0]}:{peer[1]}"
        if sock:
            self.laddr = f"{sock[0]}:{sock[1]}"
        self.node.client_connected(self)

    def connection_lost(self, exc):
        self.closing = True
        self.node.client_disconnected(self)

    def data_received(self, data):
        if self.closing:
            return
        now = self.last_interaction = time.time()
        parser = self.parser
        items = parser.feed(data)
        if self.blocked or self.pending:
            self.pending.extend(items)
            return
        node = self.node
        now_ms = int(now * 1000)          # one clock reading for the whole batch
        # canonical requests can be propagated as the bytes they arrived as
        encodings = parser.encodings      # encodings[i] is items[i] in RESP; else empty
        out = []
        for i, item in enumerate(items):
            if type(item) is not list:
                self._protocol_error(item, out)
                break
            reply = node.execute(self, item, now_ms, encodings[i] if encodings else None)
            if type(reply) is Blocked:
                self.pending.extend(items[i + 1:])
                self._block(reply, out)
                return
            if reply is not _NO_REPLY:
                if node.gate is None:
                    out.append(encode(reply, self.proto))
                else:
                    self._emit_gated(reply, out)
            if self.closing:
                break
        self.flush(out)

    # -- helpers -----------------------------------------------------------------------
    def flush(self, out: list) -> None:
        if out:
            self._queue_output(out)
        if self.closing and self.transport is not None:
            self._write_unsent()
            self.transport.close()

    def _queue_output(self, chunks: list) -> None:
        """Hold output until the end of this loop turn, as Valkey writes replies in
        ``beforeSleep``: one write per client per turn, and the peer is woken once per
        turn instead of once per reply (a wakeup costs more than a whole GET)."""
        unsent = self._unsent
        if not unsent:
            asyncio.get_running_loop().call_soon(self._write_unsent)
        unsent.extend(chunks)

    def _write_unsent(self) -> None:
        unsent = self._unsent
        if not unsent:
            return
        self._unsent = []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(unsent) if len(unsent) > 1 else unsent[0])

    def _protocol_error(self, err: ProtocolError, out: list) -> None:
        self.node.log(f"Protocol error ({err.reason}) from client: id={self.id} addr={self.addr}")
        if err.reply:
            out.append(err.wire)
        self.closing = True

    def _block(self, blocked: Blocked, out: list) -> None:
        self.flush(out)
        self.blocked = True
        if self.transport is not None:
            self.transport.pause_reading()
        blocked.future.add_done_callback(self._unblocked)

    def _unblocked(self, future: asyncio.Future) -> None:
        self.blocked = False
        if self.closing or self.transport is None or self.transport.is_closing():
            return
        if future.cancelled():
            return
        reply = future.result()
        out = []
        if reply is not _NO_REPLY:
            self._emit_gated(reply, out)
        if not self.paused_by_gate:
            self.transport.resume_reading()
        self._drain_pending(out)

    def _drain_pending(self, out: list) -> None:
        while self.pending and not self.closing:
            item = self.pending.popleft()
            if type(item) is not list:
                self._protocol_error(item, out)
                break
            reply = self.node.execute(self, item)
            if type(reply) is Blocked:
                self._block(reply, out)
                return
            if reply is not _NO_REPLY:
                self._emit_gated(reply, out)
        self.flush(out)

    # -- the commit gate ------------------------------------------------------------
    def _emit_gated(self, reply, out: list) -> None:
        """Queue a reply, behind the gate when it (or an earlier reply) must wait."""
        data = encode(reply, self.proto)
        hold, self.hold_until = self.hold_until, NOT_HELD
        held = self.held
        if hold == NOT_HELD and not held.held_bytes:
            out.append(data)
            return
        if out:                                   # earlier replies of the batch go first
            self._queue_output(list(out))
            out.clear()
        if not held.held_bytes:                   # the first held reply: wait for it
            self.node.gate.wait(self, hold)
        held.add(data, hold)
        if held.held_bytes > self.node.config["reply-blocking-max-held-bytes"] \
                and not self.paused_by_gate and self.transport is not None:
            self.paused_by_gate = True            # back-pressure: read nothing more for now
            self.transport.pause_reading()

    def release_held(self, committed) -> int:
        """Send the held replies the committed offset now covers (``None``: all)."""
        held = self.held
        released = held.release(committed if committed is not None else 2**63)
        if released:
            if self._unsent:                      # behind output already queued this turn
                self._queue_output(released)
            elif self.transport is not None and not self.transport.is_closing():
                # all of this client's due replies at once: nothing to wait for
                self.transport.write(b"".join(released) if len(released) > 1 else released[0])
        gate = self.node.gate
        if held.held_bytes:                       # more wait, for a later offset
            if gate is not None and committed is not None:
                gate.wait(self, held.first_offset())
            return 1 if released else 0
        if gate is not None:
            gate.waiting.discard(self)
        if self.paused_by_gate:
            self.paused_by_gate = False
            if self.transport is not None and not self.blocked and not self.closing:
                self.transport.resume_reading()
        return 1 if released else 0

    def fail_held(self, error) -> None:
        """The disk failed: every held reply becomes ``error``, one for one, in order."""
        count = self.held.clear()
        if count:
            self._queue_output([error.wire] * count)
        if self.paused_by_gate:
            self.paused_by_gate = False
            if self.transport is not None and not self.blocked and not self.closing:
                self.transport.resume_reading()

    def send(self, reply) -> None:
        """Push an out-of-band reply (a pub/sub message) to this client."""
        if self.transport is not None and not self.transport.is_closing():
            self._queue_output([encode(reply, self.proto)])

    def write_raw(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._queue_output([data])

    def close(self, abort: bool = False) -> None:
        self.closing = True
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self._write_unsent()
                self.transport.close()

    @property
    def flags(self) -> str:
        f = ""
        if self.replica is not None:
            f += "S"
        if self.is_primary_link:
            f += "M"
        if self.multi is not None:
            f += "x"
        if self.blocked:
            f += "b"
        if self.channels or self.patterns:
            f += "P"
        return f or "N"


class _NoReply:
    """Returned by commands that answer nothing (REPLCONF ACK, a replica's PSYNC)."""

    __repr__ = lambda self: "NO_REPLY"   # noqa: E731


_NO_REPLY = NO_REPLY = _NoReply()
