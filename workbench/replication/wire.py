"""Reading whole RESP replies off an asyncio stream, and authenticating: shared by every
node-to-node client (the replica's handshake with its primary, the failover monitors'
peer connections)."""

from __future__ import annotations

import asyncio

from ..resp import NEED_MORE, ReplyError, ReplyReader, encode_command


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


async def authenticate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       replies: ReplyReader, password: str, timeout: float | None = None):
    """Send ``AUTH <password>`` on a fresh node-to-node connection (Valkey's
    ``masterauth``, Sentinel's ``auth-pass``); return ``None``, or the error reply."""
    writer.write(encode_command([b"AUTH", password.encode()]))
    reply = await next_reply(reader, replies, timeout)
    return reply if isinstance(reply, ReplyError) else None
