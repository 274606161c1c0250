"""A keyspace as the commands that rebuild it: the payload of a full sync and an AOF rewrite.

``dump`` writes, for every non-empty database, ``SELECT <db>`` and then one command per
key (``SET``, ``RPUSH``, ``HSET``, ``SADD``, ``ZADD``; big containers in chunks of
:data:`CHUNK` elements) followed by ``PEXPIREAT`` for a key with an expiry. Keys already
expired at ``now_ms`` are left out. ``load`` replays such bytes through
:meth:`Keyspace.execute` as a replica applies its primary's stream (expired keys are
kept until a ``DEL`` comes, as Valkey keeps them while loading), following ``SELECT``
itself since that is a server command. ``load(dump(ks))`` into an empty keyspace gives
the same data and expiries.
"""

from __future__ import annotations

from collections import deque
from itertools import islice

from ..resp import ReplyError, RequestParser, encode_command
from .keyspace import Keyspace
from .table import lookup
from .stream import Stream, id_text
from .zset import ZSet, score_text

CHUNK = 128     # elements per rebuilding command (Valkey's AOF rewrite uses 64)


def _chunks(items, size: int):
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def key_commands(key: bytes, value):
    """The commands that recreate one key's value."""
    kind = type(value)
    if kind is bytes:
        yield [b"SET", key, value]
    elif kind is deque:
        for chunk in _chunks(value, CHUNK):
            yield [b"RPUSH", key, *chunk]
    elif kind is dict:
        for chunk in _chunks(value.items(), CHUNK):
            yield [b"HSET", key, *(part for pair in chunk for part in pair)]
    elif kind is set:
        for chunk in _chunks(value, CHUNK):
            yield [b"SADD", key, *chunk]
    elif kind is ZSet:      # scores spelled exactly: replay rebuilds the very same doubles
        for chunk in _chunks(value.items(), CHUNK):
            yield [b"ZADD", key, *(part for member, score in chunk
                                   for part in (score_text(score), member))]
    elif kind is Stream:
        yield from stream_commands(key, value)
    else:
        raise TypeError(f"cannot dump a {kind.__name__} value")


def stream_commands(key: bytes, stream: Stream):
    """A stream as Valkey's AOF rewrite spells it: its entries by XADD (an empty stream
    by ``XADD .. MAXLEN 0``), its counters by XSETID, each group by XGROUP CREATE ..
    ENTRIESREAD, its pending entries by XCLAIM .. FORCE and its idle consumers by XGROUP
    CREATECONSUMER."""
    if len(stream):
        for entry_id, fields in stream.entries.items():
            yield [b"XADD", key, id_text(entry_id), *fields]
    else:
        yield [b"XADD", key, b"MAXLEN", b"0", b"0-1", b"x", b"y"]
    yield [b"XSETID", key, id_text(stream.last_id), b"ENTRIESADDED",
           b"%d" % stream.entries_added, b"MAXDELETEDID", id_text(stream.max_deleted_id)]
    for name, group in stream.groups.items():
        yield [b"XGROUP", b"CREATE", key, name, id_text(group.last_id), b"ENTRIESREAD",
               b"%d" % group.entries_read]
        for entry_id, pending in group.pel.items():
            yield [b"XCLAIM", key, name, pending.consumer, b"0", id_text(entry_id), b"TIME",
                   b"%d" % pending.delivery_time, b"RETRYCOUNT",
                   b"%d" % pending.delivery_count, b"JUSTID", b"FORCE"]
        for consumer in group.consumers:
            if not group.consumers[consumer].pel:
                yield [b"XGROUP", b"CREATECONSUMER", key, name, consumer]


def dump_commands(keyspace: Keyspace, now_ms: int):
    """Yield the argv lists that rebuild ``keyspace`` as it is at ``now_ms``."""
    for db in keyspace.dbs:
        if not db.data:
            continue
        yield [b"SELECT", b"%d" % db.id]
        expires = db.expires
        for key, value in db.data.items():
            when = expires.get(key)
            if when is not None and when <= now_ms:
                continue
            yield from key_commands(key, value)
            if when is not None:
                yield [b"PEXPIREAT", key, b"%d" % when]


def dump(keyspace: Keyspace, now_ms: int) -> bytes:
    """The whole keyspace as RESP-encoded commands (see the module docstring)."""
    return b"".join(encode_command(argv) for argv in dump_commands(keyspace, now_ms))


def load(keyspace: Keyspace, data: bytes, now_ms: int, server_command=None) -> int:
    """Replay dumped (or AOF) commands into ``keyspace``; return how many ran.

    A command the keyspace does not run (a server's ``FUNCTION LOAD`` ahead of the keys)
    goes to ``server_command(argv)``. Raises :class:`ValueError` on malformed bytes or a
    command that fails.
    """
    parser = RequestParser()
    db = 0
    ran = 0
    for argv in parser.feed(data):
        if isinstance(argv, Exception):
            raise ValueError(f"malformed snapshot after {ran} commands: {argv}")
        if argv[0].upper() == b"SELECT":
            db = int(argv[1])
            if not 0 <= db < len(keyspace.dbs):
                raise ValueError(f"snapshot selects db {db}, out of range")
            continue
        if server_command is not None and _is_server_command(argv[0]):
            server_command(argv)
            ran += 1
            continue
        outcome = keyspace.execute(argv, db=db, now_ms=now_ms, replica=True)
        if isinstance(outcome.reply, ReplyError):
            raise ValueError(f"snapshot command {argv[0]!r} failed: {outcome.reply.text}")
        ran += 1
    if parser.buffered:
        raise ValueError(f"snapshot truncated after {ran} commands")
    return ran


def _is_server_command(name: bytes) -> bool:
    spec = lookup(name)
    return spec is not None and spec.is_server
