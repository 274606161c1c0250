"""Raft messages between the nodes of a shard, over TCP on each node's Raft peer port.

Theory of operation
-------------------
Raft's messages are one-way (``raft/messages.py``): a request and its response are two
separate messages, each of which may be lost. So each node keeps **one outgoing
connection per peer** and only ever writes to it; what a peer says back arrives on the
peer's own outgoing connection, accepted by our Raft port. Cutting the link ``n1 -> n2``
(the cluster's fault proxies sit on every directed pair) therefore silences exactly what
``n1`` says to ``n2``: a one-way partition comes for free.

Sending never waits. A message for a peer without a connection is dropped (Raft resends
what matters: heartbeats every tick, appends until acknowledged) and a dial starts, at
most one at a time per peer, with a growing pause between failures. A peer that stops
reading -- its link is cut, it is paused -- fills our send buffer; past
:data:`MAX_BUFFERED` bytes further messages to it are dropped rather than queued without
bound.

Frames are checksummed (``wire.py``); a frame that fails the check means the byte stream
cannot be trusted any more, so that connection is closed and the peer redials.
"""

from __future__ import annotations

import asyncio
import socket
from collections import defaultdict
from typing import Callable

from .wire import FrameReader, WireError, encode_message

MAX_BUFFERED = 8 * 1024 * 1024        # bytes queued for one peer before messages are dropped
_DIAL_TIMEOUT = 1.0
_FIRST_RETRY = 0.05
_LAST_RETRY = 1.0


def reserve_port() -> socket.socket:
    """A listening socket on a free loopback port, kept until the node's first start, so
    the port can be named in ``shard-nodes`` before any node runs (and nobody takes it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    return sock


class _Inbound(asyncio.Protocol):
    """A peer's outgoing connection, accepted here: frames in, nothing out."""

    def __init__(self, transport: "PeerTransport"):
        self.owner = transport
        self.reader = FrameReader()
        self.transport = None
        self.stalled: list[bytes] = []

    def connection_made(self, transport):
        self.transport = transport
        self.owner.inbound.add(self)
        if self.owner.paused:
            transport.pause_reading()

    def data_received(self, data):
        if self.owner.paused:           # (uvloop reads a new connection whatever we asked)
            self.stalled.append(data)
            self.transport.pause_reading()
            return
        try:
            messages = self.reader.feed(data)
        except WireError as err:
            self.owner.log(f"Closing a Raft peer connection that sent a bad frame: {err}")
            self.owner.bad_frames += 1
            self.transport.abort()
            return
        for message in messages:
            self.owner.received += 1
            self.owner.on_message(message)

    def connection_lost(self, exc):
        self.owner.inbound.discard(self)


class _Outbound(asyncio.Protocol):
    def __init__(self, transport: "PeerTransport", peer: str):
        self.owner, self.peer = transport, peer
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):      # peers never answer on this connection
        pass

    def connection_lost(self, exc):
        if self.owner.outbound.get(self.peer) is self:
            del self.owner.outbound[self.peer]


class PeerTransport:
    """Listens on ``port`` and delivers every decoded message to ``on_message``;
    ``address_of(peer)`` says where to dial a peer (through its link proxy)."""

    def __init__(self, name: str, address_of: Callable[[str], tuple[str, int]],
                 on_message: Callable, log: Callable[[str], None]):
        self.name = name
        self.address_of = address_of
        self.on_message = on_message
        self.log = log
        self.port = 0
        self.inbound: set[_Inbound] = set()
        self.outbound: dict[str, _Outbound] = {}
        self.paused = False
        self.sent = self.received = self.dropped = self.bad_frames = 0
        self._server: asyncio.AbstractServer | None = None
        self._dialing: set[str] = set()
        self._retry_after: dict[str, float] = {}
        self._retry_pause: dict[str, float] = defaultdict(lambda: _FIRST_RETRY)
        self._tasks: set[asyncio.Task] = set()
        self._closed = False

    async def start(self, port: int = 0, sock: socket.socket | None = None) -> None:
        loop = asyncio.get_running_loop()
        make = lambda: _Inbound(self)       # noqa: E731
        if sock is not None:
            self._server = await loop.create_server(make, sock=sock)
        else:
            self._server = await loop.create_server(make, "127.0.0.1", port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    def connected(self) -> set[str]:
        """Peers our outgoing connection to is open to."""
        return set(self.outbound)

    def send(self, messages) -> None:
        """Send ``messages`` (one write per peer); drop those no connection can take now."""
        by_peer: dict[str, list[bytes]] = defaultdict(list)
        for message in messages:
            by_peer[message.dst].append(encode_message(message))
        for peer, frames in by_peer.items():
            out = self.outbound.get(peer)
            if out is None or out.transport is None or out.transport.is_closing():
                self.dropped += len(frames)
                self.dial(peer)
                continue
            if out.transport.get_write_buffer_size() > MAX_BUFFERED:
                self.dropped += len(frames)
                continue
            out.transport.write(b"".join(frames) if len(frames) > 1 else frames[0])
            self.sent += len(frames)

    def dial(self, peer: str) -> None:
        """Open our connection to ``peer`` unless one is being opened or a retry is not due."""
        loop = asyncio.get_running_loop()
        if self._closed or peer in self._dialing or loop.time() < self._retry_after.get(peer, 0):
            return
        self._dialing.add(peer)
        task = loop.create_task(self._connect(peer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, peer: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            host, port = self.address_of(peer)
            _, protocol = await asyncio.wait_for(
                loop.create_connection(lambda: _Outbound(self, peer), host, port), _DIAL_TIMEOUT)
        except (OSError, asyncio.TimeoutError, KeyError, ValueError):
            pause = self._retry_pause[peer]
            self._retry_after[peer] = loop.time() + pause
            self._retry_pause[peer] = min(_LAST_RETRY, pause * 2)
            return
        finally:
            self._dialing.discard(peer)
        if self._closed:
            protocol.transport.abort()
            return
        self._retry_pause.pop(peer, None)
        old = self.outbound.get(peer)
        self.outbound[peer] = protocol
        if old is not None and old.transport is not None:
            old.transport.abort()

    def forget(self, peer: str) -> None:
        """``peer`` left the shard: close our connection to it."""
        out = self.outbound.pop(peer, None)
        if out is not None and out.transport is not None:
            out.transport.abort()

    def pause(self, paused: bool) -> None:
        """Stop (or resume) reading peers, as a SIGSTOPped process would."""
        self.paused = paused
        for conn in list(self.inbound):
            if conn.transport is not None and not conn.transport.is_closing():
                if paused:
                    conn.transport.pause_reading()
                else:
                    stalled, conn.stalled = b"".join(conn.stalled), []
                    if stalled:
                        conn.data_received(stalled)
                    if not conn.transport.is_closing():
                        conn.transport.resume_reading()

    def close(self) -> None:
        """Crash-stop: every connection aborts, nothing more is sent."""
        self._closed = True
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for conn in list(self.inbound):
            if conn.transport is not None:
                conn.transport.abort()
        for out in list(self.outbound.values()):
            if out.transport is not None:
                out.transport.abort()
        self.outbound.clear()
