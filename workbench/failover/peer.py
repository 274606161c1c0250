"""A minimal RESP client for node-to-node talk (monitors' pings, votes and orders)."""

from __future__ import annotations

import asyncio

from ..replication.wire import authenticate, next_reply
from ..resp import ReplyReader, encode_command


class PeerClient:
    """One connection to a peer, re-dialled after any failure. Calls are serialized.

    Every new connection first authenticates with ``password_fn()`` when it is set (as
    Sentinel does with ``auth-pass``), so a reconnect is never left unauthenticated.
    A refused ``AUTH`` is the call's reply, and the connection is dropped so that the
    next call tries again (with the password as it is then).
    """

    def __init__(self, address_fn, password_fn=lambda: ""):
        self._address_fn = address_fn        # () -> (host, port), re-read at each dial
        self._password_fn = password_fn      # () -> str, re-read at each dial
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._replies = ReplyReader()
        self._lock = asyncio.Lock()

    async def call(self, *argv, timeout: float):
        """Send one command and return its reply; raise OSError or TimeoutError."""
        args = [a if isinstance(a, bytes) else str(a).encode() for a in argv]
        async with self._lock:
            try:
                return await asyncio.wait_for(self._call(args), timeout)
            except (OSError, asyncio.TimeoutError, EOFError):
                self.close()
                raise

    async def _call(self, argv):
        if self._writer is not None and self._writer.transport.is_closing():
            self.close()     # reset by the peer since the last call: writing would raise
        if self._writer is None:
            host, port = self._address_fn()
            self._reader, self._writer = await asyncio.open_connection(host, port)
            self._replies = ReplyReader()
            password = self._password_fn()
            if password:
                refused = await authenticate(self._reader, self._writer, self._replies, password)
                if refused is not None:
                    self.close()
                    return refused
        self._writer.write(encode_command(argv))
        return await next_reply(self._reader, self._replies)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.transport.abort()
        self._reader = self._writer = None
