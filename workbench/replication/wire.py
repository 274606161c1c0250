"""Reading whole RESP replies off an asyncio stream: shared by every node-to-node client
(the replica's handshake with its primary, the failover monitors' peer connections)."""

from __future__ import annotations

import asyncio

from ..resp import NEED_MORE, ReplyReader


async def next_reply(reader: asyncio.StreamReader, replies: ReplyReader,
                     timeout: float | None = None):
    """The next whole reply, reading more from ``reader`` as needed (each read bounded
    by ``timeout`` seconds). Raises ``EOFError`` when the other side closes."""
    while True:
        value = replies.get()
        if value is not NEED_MORE:
            return value
        data = await asyncio.wait_for(reader.read(65536), timeout)
        if not data:
            raise EOFError("the peer closed the connection")
        replies.feed(data)
