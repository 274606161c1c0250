"""XREAD and XREADGROUP, which may BLOCK until a stream has new entries.

They use the waiting room of ``blocking.py``: an :class:`Attempt` tries the read, and a
write to one of the streams (XADD, or XGROUP DESTROY for a group's readers) signals it
ready, after which the waiter tries again in arrival order. Two things are fixed when the
client blocks, as in Valkey: XREAD's ``$`` becomes the stream's last ID *then* (so an
entry added meanwhile is the one it gets), and XREADGROUP keeps ``>`` (it gets what the
group has not delivered yet when it is served).

XREAD is a read; a served XREADGROUP is a write -- it moves the group's last ID and adds
the entries to the consumer's pending list -- so it runs through ``run_keyspace`` like a
served pop: propagated (as XCLAIM ... and XGROUP SETID), its reply held by the commit gate
until that is durable. Inside MULTI or a script they never wait (a null array); a script
may not even ask (``BLOCK`` from a script is an error, as in Valkey).
"""

from __future__ import annotations

import time

from ..resp import NULL_ARRAY, Map, ReplyError
from ..store.cmd_streams import XREAD_NOW, parse_read, read_keys, resolve_ids
from ..store.cmd_streams_readgroup import XREADGROUP_NOW
from ..store.keyspace import Context
from ..store.stream import Stream, id_text
from ..store.values import LLONG_MAX
from .blocking import Attempt, _pop_or_block
from .registry import handles

GROUP_GONE = ReplyError("NOGROUP the consumer group this client was blocked on no longer "
                        "exists")


def _by_protocol(conn, reply):
    """``[[key, entries], ...]`` is RESP2's form; RESP3 gets a map key -> entries."""
    if type(reply) is list and getattr(conn, "proto", 2) == 3:
        return Map((key, entries) for key, entries in reply)
    return reply


def _in_script(conn) -> bool:
    return type(conn).__name__ == "ScriptClient"


def _read(server, conn, spec, argv):
    reply = server.run_keyspace(conn, spec, argv)
    return None if reply is NULL_ARRAY else _by_protocol(conn, reply)


def _block_ms(server, conn, argv, args):
    """The BLOCK timeout in ms (0 = forever), ``None`` without BLOCK, or the error."""
    if args.block_ms is None:
        return None
    if _in_script(conn):
        return ReplyError(f"ERR {argv[0].decode(errors='replace')} command is not allowed "
                          "with BLOCK option from scripts")
    if args.block_ms > LLONG_MAX - int(time.time() * 1000):
        return ReplyError("ERR timeout is out of range")
    return args.block_ms


def _serve_or_block(server, conn, attempt: Attempt, timeout_ms):
    if timeout_ms is None:                         # no BLOCK: answer now
        reply = attempt.try_(server, conn)
        return NULL_ARRAY if reply is None else reply
    return _pop_or_block(server, conn, attempt, timeout_ms)


@handles("XREAD", -4, "readonly blocking movablekeys", 0, 0, 0, group="stream",
         since="5.0.0", find_keys=read_keys)
def xread(server, conn, argv):
    """Read entries after given IDs from one or more streams, or BLOCK until there are."""
    try:
        args = parse_read(argv, group=False)
        timeout_ms = _block_ms(server, conn, argv, args)
        if isinstance(timeout_ms, ReplyError):
            return timeout_ms
        # '$' is the last ID now: resolved (and type-checked) before any waiting
        ctx = Context(server.keyspace, server.keyspace.dbs[conn.db], int(time.time() * 1000),
                      replica=not server.leads)
        ids = resolve_ids(ctx, args)
    except ReplyError as err:
        return err
    fixed = list(argv[:len(argv) - len(ids)]) + [id_text(i) for i in ids]

    def try_(server, conn):
        return _read(server, conn, XREAD_NOW, fixed)
    return _serve_or_block(server, conn, Attempt(list(args.keys), Stream, try_), timeout_ms)


@handles("XREADGROUP", -7, "write blocking movablekeys", 0, 0, 0, group="stream",
         since="5.0.0", find_keys=read_keys)
def xreadgroup(server, conn, argv):
    """Read entries for a consumer of a group (new ones with ``>``), or BLOCK until there are."""
    try:
        args = parse_read(argv, group=True)
        timeout_ms = _block_ms(server, conn, argv, args)
    except ReplyError as err:
        return err
    if isinstance(timeout_ms, ReplyError):
        return timeout_ms
    first = [True]

    def try_(server, conn):
        if not first[0]:                         # woken: is the group still there?
            for key in args.keys:
                value = server.keyspace.dbs[conn.db].data.get(key)
                if type(value) is Stream and args.group not in value.groups:
                    return GROUP_GONE
        first[0] = False
        return _read(server, conn, XREADGROUP_NOW, argv)
    return _serve_or_block(server, conn, Attempt(list(args.keys), Stream, try_), timeout_ms)
