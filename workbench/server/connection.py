"""One client connection: the thin asyncio shell around the RESP parser.

Bytes arrive, the parser turns them into commands, the node executes each one and the
replies are written back in order. Two things make this more than a loop:

* **Blocking commands** (``WAIT``, ``WAITAOF``, ``DEBUG SLEEP``) answer later. Like
  Valkey, a blocked client executes nothing else until it is unblocked: the commands
  behind it wait in ``pending`` and the socket stops being read.
* **Protocol errors** end the connection after one ``-ERR Protocol error`` reply; the
  commands that arrived whole before the bad bytes still run, and their replies -- held
  ones too -- leave before the error. A client that half-closes (sends end-of-file but
  still reads) gets every reply to what it sent, then the connection closes.
* **The commit gate** holds replies in ``held`` until what they depend on is durable.
  When the node's pinned bytes reach their budget (see ``gating.py``), a client whose
  reply was just held is *held back*: its socket stops being read and the rest of its
  pipeline waits in ``pending`` until fsyncs free the budget.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque

from ..durability import NOT_HELD, HeldReplies
from ..resp import ProtocolError, RequestParser, encode
from . import gating

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
        self.readonly = False                 # raft: READONLY sent (follower reads)
        self._stalled: list[bytes] = []       # bytes read while the node was paused
        # flow
        self.pending: deque = deque()
        self.blocked = False
        self.closing = False                  # execute nothing more; close once answered
        self.peer_done = False                # the client half-closed: answer, then close
        # output written at the end of this event-loop turn (see _queue_output)
        self._unsent: list = []
        # the commit gate: the offset the current reply waits for, and the held output
        self.hold_until = NOT_HELD
        self.watched_write = NOT_HELD         # sync: the last write given a durability timeout
        self.held = HeldReplies()
        self.paused_by_gate = False           # its own held output passed its limit
        self.held_back = False                # the node's pinned bytes reached their budget
        # CLIENT REPLY OFF / SKIP: replies are dropped (never held); CLIENT NO-EVICT
        self.reply_off = False
        self.reply_skip = 0                   # replies still to drop (SKIP: its own + the next)
        self.silenced = False                 # reply_off or reply_skip: checked per reply
        self.no_evict = False
        self.blocked_future = None            # what a blocked client waits for (CLIENT UNBLOCK)
        self.blocked_on = None                # its Waiter while blocked on keys (BLPOP ...)

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
        gate = self.node.gate
        if gate is not None and self.held.pinned:
            gate.replies_pinned -= self.held.pinned
        self.held.clear()
        self.node.client_disconnected(self)

    def eof_received(self):
        """The client shut its sending side. It may still be reading: keep the socket
        open until everything it sent is answered (held replies included), then close."""
        self.peer_done = True
        if self.blocked_on is not None:
            self.close()                          # blocked on keys: it leaves, as in Valkey
            return True
        self._close_when_answered()
        return True

    def data_received(self, data):
        if self.closing:
            return
        if self._stopped():
            # uvloop starts reading a new connection after connection_made, whatever it
            # asked: bytes that arrive while the node is paused wait here, unread
            self._stalled.append(data)
            self.pause_reading()
            return
        now = self.last_interaction = time.time()
        parser = self.parser
        items = parser.feed(data)
        if self.blocked or self.pending or self.held_back:
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
            if reply is not _NO_REPLY and not (self.silenced and self._drop_reply()):
                if node.gate is None:
                    out.append(encode(reply, self.proto))
                else:
                    self._emit_gated(reply, out)
            if self.closing:
                break
            if self.held_back:                    # the rest waits for the budget
                self.pending.extend(items[i + 1:])
                break
        self.flush(out)

    # -- helpers -----------------------------------------------------------------------
    def flush(self, out: list) -> None:
        if out:
            self._queue_output(out)
        if self.closing or self.peer_done:
            self._close_when_answered()

    def _close_when_answered(self) -> None:
        """Close once nothing the client sent is left unanswered (held replies leave first)."""
        if self.held or self.blocked or (self.pending and not self.closing):
            return
        if self.transport is not None:
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

    def _drop_reply(self) -> bool:
        """CLIENT REPLY OFF or SKIP: drop this reply. It is not held either (whatever it
        waited for, nobody will read it), so it pins nothing."""
        if self.reply_skip:
            self.reply_skip -= 1
        elif not self.reply_off:
            self.silenced = False
            return False
        self.silenced = self.reply_off or self.reply_skip > 0
        self.hold_until = NOT_HELD
        return True

    def _protocol_error(self, err: ProtocolError, out: list) -> None:
        self.node.log(f"Protocol error ({err.reason}) from client: id={self.id} addr={self.addr}")
        if err.reply:
            if self.held:                         # after the replies still held, in order
                self._hold(err.wire, NOT_HELD)
            else:
                out.append(err.wire)
        self.closing = True

    def _block(self, blocked: Blocked, out: list) -> None:
        self.blocked = True                       # first: a half-closed client stays open
        self.blocked_future = blocked.future
        self.flush(out)
        if self.blocked_on is None:
            self.pause_reading()
        # else blocked on keys (BLPOP...): keep reading, as Valkey does, so that a client
        # that goes away leaves the keys' queues; what it sends waits in ``pending``
        blocked.future.add_done_callback(self._unblocked)

    def _unblocked(self, future: asyncio.Future) -> None:
        self.blocked = False
        if self.closing or self.transport is None or self.transport.is_closing():
            return
        if future.cancelled():
            return
        reply = future.result()
        out = []
        if reply is not _NO_REPLY and not (self.silenced and self._drop_reply()):
            self._emit_gated(reply, out)
        self._drain_pending(out)
        self.resume_reading()

    def _drain_pending(self, out: list) -> None:
        while self.pending and not self.closing and not self.held_back:
            item = self.pending.popleft()
            if type(item) is not list:
                self._protocol_error(item, out)
                break
            reply = self.node.execute(self, item)
            if type(reply) is Blocked:
                self._block(reply, out)
                return
            if reply is not _NO_REPLY and not (self.silenced and self._drop_reply()):
                self._emit_gated(reply, out)
        self.flush(out)

    def pause_reading(self) -> None:
        """Read nothing more for now (a transport that is already closing has nothing to pause)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def _stopped(self) -> bool:
        """The node is paused (a SIGSTOP), or its writers are (this is no replica)."""
        node = self.node
        return node.paused or (node.writers_paused and self.replica is None)

    def resume_reading(self) -> None:
        """Read again, unless something else still says stop."""
        if (self.transport is not None and not self.transport.is_closing() and not self.blocked
                and not self.closing and not self.paused_by_gate and not self.held_back
                and not self.pending and not self._stopped()):
            if self._stalled:
                stalled, self._stalled = b"".join(self._stalled), []
                self.data_received(stalled)
                if self.closing or self.transport.is_closing():
                    return
            self.transport.resume_reading()

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
        node = self.node
        self._hold(data, hold)
        if held.held_bytes > node.config["reply-blocking-max-held-bytes"] \
                and not self.paused_by_gate and self.transport is not None:
            self.paused_by_gate = True            # back-pressure: read nothing more for now
            self.pause_reading()
        if not self.held_back and gating.budget_reached(node):
            gating.hold_back(node, self)

    def _hold(self, data: bytes, offset: int) -> None:
        gate = self.node.gate
        if not self.held:                         # the first held reply: wait for it
            gate.wait(self, offset)
        gate.replies_pinned += self.held.add(data, offset)
        if (offset == self.woff and offset != self.watched_write
                and gating.times_writes(self.node)):
            self.watched_write = offset           # this client's own write (not a read of it)
            gating.watch_write(self.node, self, offset)

    def time_out_write(self, offset: int, error, committed: int) -> None:
        """sync: the write at ``offset`` did not commit in time; its reply becomes
        ``error``. Replies after it (reads of its keys included) keep waiting."""
        before = self.held.pinned
        if self.held.replace_first(offset, error.wire):
            self.node.gate.replies_pinned += self.held.pinned - before
            self.release_held(committed)

    def hold_back(self) -> None:
        """The node is at its pinned-bytes budget: read and execute nothing more for now."""
        self.held_back = True
        self.pause_reading()

    def let_go(self) -> None:
        """The budget has room again: run what waited, then read again."""
        self.held_back = False
        if self.blocked or self.closing or self.transport is None:
            return
        self._drain_pending([])
        self.resume_reading()

    def release_held(self, committed) -> int:
        """Send the held replies the committed offset now covers (``None``: all)."""
        held = self.held
        pinned = held.pinned
        released = held.release(committed if committed is not None else 2**63)
        gate = self.node.gate
        if gate is not None:
            gate.replies_pinned -= pinned - held.pinned
        if released:
            if self._unsent:                      # behind output already queued this turn
                self._queue_output(released)
            elif self.transport is not None and not self.transport.is_closing():
                # all of this client's due replies at once: nothing to wait for
                self.transport.write(b"".join(released) if len(released) > 1 else released[0])
        if held:                                  # more wait, for a later offset
            if gate is not None and committed is not None:
                gate.wait(self, held.first_offset())
            return 1 if released else 0
        if gate is not None:
            gate.waiting.discard(self)
        self._held_drained()
        return 1 if released else 0

    def fail_held(self, error) -> None:
        """The disk failed: every held reply becomes ``error``, one for one, in order."""
        gate = self.node.gate
        if gate is not None:
            gate.replies_pinned -= self.held.pinned
        count = self.held.clear()
        if count:
            self._queue_output([error.wire] * count)
        self._held_drained()

    def _held_drained(self) -> None:
        if self.paused_by_gate:
            self.paused_by_gate = False
            self.resume_reading()
        if self.closing or self.peer_done:
            self._close_when_answered()

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
