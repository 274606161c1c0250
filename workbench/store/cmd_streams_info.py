"""XINFO: a stream's state as maps (flat arrays in RESP2), as Valkey 8 reports it.

Valkey 7.2+ also reports when a consumer last *succeeded* in reading (``active-time``
in XINFO STREAM FULL, ``inactive`` in XINFO CONSUMERS), which Redis 7.0 does not; the
workbench follows Valkey. ``radix-tree-nodes`` counts Valkey's radix tree's inner
nodes, which the workbench does not build: it reports one per entry node, plus one.
"""

from __future__ import annotations

from ..resp import Map, ReplyError
from .cmd_streams import entries_reply, entry_reply
from .cmd_streams_groups import _subcommand_check, _syntax
from .keyspace import NOT_INTEGER
from .stream import Stream, id_text
from .table import command
from .values import parse_int

XINFO_HELP = [
    b"XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"CONSUMERS <key> <groupname>",
    b"    Show consumers of <groupname>.",
    b"GROUPS <key>",
    b"    Show the stream consumer groups.",
    b"STREAM <key> [FULL [COUNT <count>]",
    b"    Show information about the stream.",
    b"HELP",
    b"    Print this help.",
]
_ARITY = {b"CONSUMERS": 4, b"GROUPS": 3, b"STREAM": -3, b"HELP": 2}


def _xinfo_keys(argv) -> list:
    return [argv[2]] if len(argv) > 2 and argv[1].upper() != b"HELP" else []


@command("XINFO", -2, "readonly", 0, 0, 0, group="stream", since="5.0.0",
         find_keys=_xinfo_keys)
def xinfo(ctx, argv):
    """A stream's length, IDs and groups (STREAM), its groups (GROUPS), their consumers."""
    sub = _subcommand_check(argv, _ARITY, "XINFO")
    if sub == b"HELP":
        return XINFO_HELP
    key = argv[2]
    stream = ctx.lookup_typed(key, Stream)
    if stream is None:
        raise ReplyError("ERR no such key")
    if sub == b"CONSUMERS":
        group = stream.groups.get(argv[3])
        if group is None:
            raise ReplyError(f"NOGROUP No such consumer group "
                             f"'{argv[3].decode(errors='replace')}' for key name "
                             f"'{key.decode(errors='replace')}'")
        now = ctx.now_ms
        return [Map({b"name": name, b"pending": len(c.pel), b"idle": max(now - c.seen_time, 0),
                     b"inactive": -1 if c.active_time == -1 else max(now - c.active_time, 0)})
                for name, c in sorted(group.consumers.items())]
    if sub == b"GROUPS":
        return [Map({b"name": name, b"consumers": len(g.consumers), b"pending": len(g.pel),
                     b"last-delivered-id": id_text(g.last_id),
                     b"entries-read": None if g.entries_read == -1 else g.entries_read,
                     b"lag": stream.lag(g)})
                for name, g in sorted(stream.groups.items())]
    return _stream_info(stream, argv)


def _stream_info(stream: Stream, argv):
    full, count = False, 10
    if len(argv) > 3:
        if len(argv) not in (4, 6) or argv[3].upper() != b"FULL":
            raise _syntax(argv, "XINFO")
        full = True
        if len(argv) == 6:
            if argv[4].upper() != b"COUNT":
                raise _syntax(argv, "XINFO")
            count = parse_int(argv[5])
            if count is None:
                raise NOT_INTEGER
            if count < 0:
                count = 10
    info = Map({b"length": len(stream), b"radix-tree-keys": len(stream.nodes),
                b"radix-tree-nodes": len(stream.nodes) + 1,
                b"last-generated-id": id_text(stream.last_id),
                b"max-deleted-entry-id": id_text(stream.max_deleted_id),
                b"entries-added": stream.entries_added,
                b"recorded-first-entry-id": id_text(stream.first_id)})
    if not full:
        info[b"groups"] = len(stream.groups)
        first = stream.range((0, 0), stream.last_id, 1)
        last = stream.range((0, 0), stream.last_id, 1, reverse=True)
        info[b"first-entry"] = entry_reply(*first[0]) if first else None
        info[b"last-entry"] = entry_reply(*last[0]) if last else None
        return info
    info[b"entries"] = entries_reply(stream.range((0, 0), stream.last_id, count))
    groups = []
    for name, g in sorted(stream.groups.items()):
        pel = list(g.pel.items())[:count] if count else list(g.pel.items())
        consumers = []
        for cname, c in sorted(g.consumers.items()):
            cpel = list(c.pel.items())[:count] if count else list(c.pel.items())
            consumers.append(Map({
                b"name": cname, b"seen-time": c.seen_time, b"active-time": c.active_time,
                b"pel-count": len(c.pel),
                b"pending": [[id_text(i), p.delivery_time, p.delivery_count]
                             for i, p in cpel]}))
        groups.append(Map({
            b"name": name, b"last-delivered-id": id_text(g.last_id),
            b"entries-read": None if g.entries_read == -1 else g.entries_read,
            b"lag": stream.lag(g), b"pel-count": len(g.pel),
            b"pending": [[id_text(i), p.consumer, p.delivery_time, p.delivery_count]
                         for i, p in pel],
            b"consumers": consumers}))
    info[b"groups"] = groups
    return info
