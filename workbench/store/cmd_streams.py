"""Stream commands: XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM, XSETID, and XREAD's read.

IDs are parsed as Valkey's ``streamGenericParseIDOrReply`` does (``ms-seq``, ``ms``,
``-``/``+`` where a range allows them, ``ms-*`` in XADD). Every write propagates a
deterministic form: XADD with ``*`` or ``ms-*`` names the ID it generated, and an
approximate trim (``~``) names what it actually kept (``MAXLEN = <length>`` or
``MINID = <first id>``), as Valkey rewrites it, so a replica trims exactly alike.

XREAD and XREADGROUP are server commands (they may block: see
``workbench/server/blocking_streams.py``); their reading half is here as
:func:`xread_now`, run through the keyspace path with the unregistered :data:`XREAD_NOW`.
"""

from __future__ import annotations

import re

from ..resp import NULL_ARRAY, OK, ReplyError
from .keyspace import NOT_INTEGER, SYNTAX
from .stream import MAX_ID, Stream, id_text
from .table import CommandSpec, command
from .values import parse_int

INVALID_ID = ReplyError("ERR Invalid stream ID specified as stream command argument")
ULLONG_MAX = 2**64 - 1
_STRTOULL = re.compile(rb"[ \t\n\v\f\r]*([+-]?)(\d+)\Z")


def _ull(text: bytes) -> int | None:
    """Valkey's ``string2ull``: a strict long long >= 0, else what C's strtoull takes."""
    n = parse_int(text)
    if n is not None:
        return n if n >= 0 else None
    m = _STRTOULL.match(text)
    if m is None:
        return None
    value = int(m.group(2))
    if value > ULLONG_MAX:
        return None
    return (-value) % 2**64 if m.group(1) == b"-" else value


def parse_id(raw: bytes, *, strict: bool = False, missing_seq: int = 0, star: bool = False):
    """An entry ID: ``(ms, seq)``, or ``(ms, None)`` for XADD's ``ms-*`` (when ``star``).
    ``strict`` refuses the range ends ``-`` and ``+``."""
    if len(raw) > 127:
        raise INVALID_ID
    if raw in (b"-", b"+"):
        if strict:
            raise INVALID_ID
        return (0, 0) if raw == b"-" else MAX_ID
    ms_text, dash, seq_text = raw.partition(b"-")
    ms = _ull(ms_text)
    if ms is None:
        raise INVALID_ID
    if not dash:
        return ms, missing_seq
    if star and seq_text == b"*":
        return ms, None
    seq = _ull(seq_text)
    if seq is None:
        raise INVALID_ID
    return ms, seq


def next_id(entry_id):
    """The ID right after ``entry_id``, or ``None`` past the last possible one."""
    ms, seq = entry_id
    if seq < ULLONG_MAX:
        return ms, seq + 1
    return None if ms == ULLONG_MAX else (ms + 1, 0)


def previous_id(entry_id):
    ms, seq = entry_id
    if seq:
        return ms, seq - 1
    return None if not ms else (ms - 1, ULLONG_MAX)


def entry_reply(entry_id, fields) -> list:
    return [id_text(entry_id), list(fields)]


def entries_reply(entries) -> list:
    return [[id_text(i), list(f)] for i, f in entries]


def lookup_stream(ctx, key: bytes) -> Stream | None:
    return ctx.lookup_typed(key, Stream)


# -- trimming arguments, shared by XADD and XTRIM -------------------------------------------
class TrimArgs:
    __slots__ = ("maxlen", "minid", "approx", "limit", "strategy_at", "nomkstream", "id",
                 "id_at")

    def __init__(self):
        self.maxlen = self.minid = None
        self.approx = False
        self.limit = 0
        self.strategy_at = 0
        self.nomkstream = False
        self.id = None          # XADD: None for '*', else (ms, seq or None)
        self.id_at = 0

    @property
    def trims(self) -> bool:
        return self.maxlen is not None or self.minid is not None


def parse_add_or_trim(ctx, argv, xadd: bool) -> TrimArgs:
    """Valkey's ``streamParseAddOrTrimArgsOrReply``, in its order of checks."""
    args = TrimArgs()
    limit_given = False
    i = 2
    while i < len(argv):
        more = len(argv) - 1 - i
        opt = argv[i].upper()
        if xadd and argv[i] == b"*":
            break
        if opt in (b"MAXLEN", b"MINID") and more:
            args.approx = False
            if more >= 2 and argv[i + 1] in (b"~", b"="):
                args.approx = argv[i + 1] == b"~"
                i += 1
            if opt == b"MAXLEN":
                args.minid = None
                args.maxlen = parse_int(argv[i + 1])
                if args.maxlen is None:
                    raise NOT_INTEGER
                if args.maxlen < 0:
                    raise ReplyError("ERR The MAXLEN argument must be >= 0.")
            else:
                args.maxlen = None
                args.minid = parse_id(argv[i + 1], strict=True)
            i += 1
            args.strategy_at = i
        elif opt == b"LIMIT" and more:
            args.limit = parse_int(argv[i + 1])
            if args.limit is None:
                raise NOT_INTEGER
            if args.limit < 0:
                raise ReplyError("ERR The LIMIT argument must be >= 0.")
            limit_given = True
            i += 1
        elif xadd and opt == b"NOMKSTREAM":
            args.nomkstream = True
        elif xadd:
            args.id = parse_id(argv[i], strict=True, star=True)
            break
        else:
            raise SYNTAX
        i += 1
    args.id_at = i
    if args.limit and not args.trims:
        raise ReplyError("ERR syntax error, LIMIT cannot be used without specifying a "
                         "trimming strategy")
    if not xadd and not args.trims:
        raise ReplyError("ERR syntax error, XTRIM must be called with a trimming strategy")
    if ctx.applying:                    # a primary's (or the AOF's) command: trim as told
        args.limit = 0
    elif limit_given:
        if not args.approx:
            raise ReplyError("ERR syntax error, LIMIT cannot be used without the special ~ "
                             "option")
    else:
        args.limit = 100 * 100 if args.approx else 0    # 100 * stream-node-max-entries
    return args


def _trim(stream: Stream, args: TrimArgs) -> int:
    return stream.trim(args.maxlen, args.minid, args.approx, args.limit)


def _trim_spelling(stream: Stream, args: TrimArgs) -> list:
    """The exact trimming clause to propagate (what the trim amounted to)."""
    if not args.trims:
        return []
    if args.maxlen is not None:
        return [b"MAXLEN", b"=", b"%d" % (len(stream) if args.approx else args.maxlen)]
    return [b"MINID", b"=", id_text(stream.first_id if args.approx else args.minid)]


# -- the commands ----------------------------------------------------------------------------
@command("XADD", -5, "write denyoom fast", 1, 1, 1, group="stream", since="5.0.0")
def xadd(ctx, argv):
    """Append an entry to a stream (creating it), trimming it if asked; return its ID."""
    key = argv[1]
    args = parse_add_or_trim(ctx, argv, xadd=True)
    fields_at = args.id_at + 1
    if len(argv) - fields_at < 2 or (len(argv) - fields_at) % 2:
        raise ReplyError("ERR wrong number of arguments for 'xadd' command")
    if args.id == (0, 0):
        raise ReplyError("ERR The ID specified in XADD must be greater than 0-0")
    stream = lookup_stream(ctx, key)
    if stream is None:
        if args.nomkstream:
            return None
        stream = Stream()
        created = True
    else:
        created = False
    if stream.last_id == MAX_ID:
        raise ReplyError("ERR The stream has exhausted the last possible ID, unable to add "
                         "more items")
    last = stream.last_id
    if args.id is None:                     # '*': the command's time, or just after the last
        entry_id = (ctx.now_ms, 0) if ctx.now_ms > last[0] else next_id(last)
    elif args.id[1] is None:                # 'ms-*'
        if args.id[0] == last[0]:
            if last[1] == ULLONG_MAX:
                raise _TOO_SMALL
            entry_id = (last[0], last[1] + 1)
        else:
            entry_id = (args.id[0], 0)
    else:
        entry_id = args.id
    if entry_id <= last:
        raise _TOO_SMALL
    if created:
        ctx.set_value(key, stream)
    stream.append(entry_id, tuple(argv[fields_at:]))
    ctx.changed(key, "t", "xadd")
    if args.trims and _trim(stream, args):
        ctx.events.append(("t", "xtrim", ctx.db.id, key))
    if args.approx or args.id is None or args.id[1] is None or args.limit:
        ctx.rewrite_as([b"XADD", key, *([b"NOMKSTREAM"] if args.nomkstream else []),
                        *_trim_spelling(stream, args), id_text(entry_id), *argv[fields_at:]])
    return id_text(entry_id)


_TOO_SMALL = ReplyError("ERR The ID specified in XADD is equal or smaller than the target "
                        "stream top item")


def _range(ctx, argv, reverse: bool):
    start_raw, end_raw = (argv[3], argv[2]) if reverse else (argv[2], argv[3])
    start = _interval_id(start_raw, 0)
    if start_raw[:1] == b"(" and len(start_raw) > 1:
        start = next_id(start)
        if start is None:
            raise ReplyError("ERR invalid start ID for the interval")
    end = _interval_id(end_raw, ULLONG_MAX)
    if end_raw[:1] == b"(" and len(end_raw) > 1:
        end = previous_id(end)
        if end is None:
            raise ReplyError("ERR invalid end ID for the interval")
    count = -1
    j = 4
    while j < len(argv):
        if argv[j].upper() == b"COUNT" and j + 1 < len(argv):
            count = parse_int(argv[j + 1])
            if count is None:
                raise NOT_INTEGER
            count = max(count, 0)
            j += 2
        else:
            raise SYNTAX
    stream = lookup_stream(ctx, argv[1])
    if stream is None:
        return []
    if count == 0:
        return NULL_ARRAY
    return entries_reply(stream.range(start, end, max(count, 0), reverse))


def _interval_id(raw: bytes, missing_seq: int):
    if len(raw) > 1 and raw[:1] == b"(":
        return parse_id(raw[1:], strict=True, missing_seq=missing_seq)
    return parse_id(raw, missing_seq=missing_seq)


@command("XRANGE", -4, "readonly", 1, 1, 1, group="stream", since="5.0.0")
def xrange(ctx, argv):
    """Entries with IDs between start and end (``-``, ``+``, ``(`` exclusive), oldest first."""
    return _range(ctx, argv, reverse=False)


@command("XREVRANGE", -4, "readonly", 1, 1, 1, group="stream", since="5.0.0")
def xrevrange(ctx, argv):
    """Entries with IDs between end and start, newest first."""
    return _range(ctx, argv, reverse=True)


@command("XLEN", 2, "readonly fast", 1, 1, 1, group="stream", since="5.0.0")
def xlen(ctx, argv):
    """The number of entries in a stream."""
    stream = lookup_stream(ctx, argv[1])
    return 0 if stream is None else len(stream)


@command("XDEL", -3, "write fast", 1, 1, 1, group="stream", since="5.0.0")
def xdel(ctx, argv):
    """Delete entries by ID; return how many were there. The stream stays, even empty."""
    key = argv[1]
    stream = lookup_stream(ctx, key)
    if stream is None:
        return 0
    ids = [parse_id(raw, strict=True) for raw in argv[2:]]
    deleted = 0
    for entry_id in ids:
        if stream.delete(entry_id):
            stream.max_deleted_id = max(stream.max_deleted_id, entry_id)
            deleted += 1
    if deleted:
        ctx.changed(key, "t", "xdel")
    return deleted


@command("XTRIM", -4, "write", 1, 1, 1, group="stream", since="6.2.0")
def xtrim(ctx, argv):
    """Trim a stream to a length (MAXLEN) or to IDs from a minimum (MINID)."""
    key = argv[1]
    args = parse_add_or_trim(ctx, argv, xadd=False)
    stream = lookup_stream(ctx, key)
    if stream is None:
        return 0
    deleted = _trim(stream, args)
    if deleted:
        ctx.changed(key, "t", "xtrim")
        if args.approx or args.limit:
            ctx.rewrite_as([b"XTRIM", key, *_trim_spelling(stream, args)])
    return deleted


@command("XSETID", -3, "write denyoom fast", 1, 1, 1, group="stream", since="5.0.0")
def xsetid(ctx, argv):
    """Set a stream's last generated ID (and its entries-added counter, max deleted ID)."""
    key = argv[1]
    new_last = parse_id(argv[2], strict=True)
    entries_added, max_deleted = -1, (0, 0)
    i = 3
    while i < len(argv):
        more = len(argv) - 1 - i
        opt = argv[i].upper()
        if opt == b"ENTRIESADDED" and more:
            entries_added = parse_int(argv[i + 1])
            if entries_added is None:
                raise NOT_INTEGER
            if entries_added < 0:
                raise ReplyError("ERR entries_added must be positive")
        elif opt == b"MAXDELETEDID" and more:
            max_deleted = parse_id(argv[i + 1], strict=True)
            if new_last < max_deleted:
                raise ReplyError("ERR The ID specified in XSETID is smaller than the provided "
                                 "max_deleted_entry_id")
        else:
            raise SYNTAX
        i += 2
    stream = lookup_stream(ctx, key)
    if stream is None:
        raise ReplyError("ERR no such key")
    if len(stream):
        if new_last < stream.last_entry_id():
            raise ReplyError("ERR The ID specified in XSETID is smaller than the target "
                             "stream top item")
        if entries_added != -1 and len(stream) > entries_added:
            raise ReplyError("ERR The entries_added specified in XSETID is smaller than the "
                             "target stream length")
    if new_last < stream.max_deleted_id:
        raise ReplyError("ERR The ID specified in XSETID is smaller than current "
                         "max_deleted_entry_id")
    stream.last_id = new_last
    if entries_added != -1:
        stream.entries_added = entries_added
    if max_deleted != (0, 0):
        stream.max_deleted_id = max_deleted
    ctx.changed(key, "t", "xsetid")
    return OK


# -- XREAD / XREADGROUP: the arguments, and the non-blocking read ---------------------------
class ReadArgs:
    __slots__ = ("count", "block_ms", "noack", "group", "consumer", "keys", "ids")

    def __init__(self):
        self.count = 0
        self.block_ms = None
        self.noack = False
        self.group = self.consumer = None
        self.keys: list = []
        self.ids: list = []         # raw ID arguments


def parse_read(argv, group: bool) -> ReadArgs:
    """XREAD/XREADGROUP's options, in Valkey's order of checks (IDs are resolved later)."""
    args = ReadArgs()
    name = b"xreadgroup" if group else b"xread"
    streams_at = 0
    i = 1
    while i < len(argv):
        more = len(argv) - i - 1
        opt = argv[i].upper()
        if opt == b"BLOCK" and more:
            i += 1
            timeout = parse_int(argv[i])
            if timeout is None:
                raise ReplyError("ERR timeout is not an integer or out of range")
            if timeout < 0:
                raise ReplyError("ERR timeout is negative")
            args.block_ms = timeout
        elif opt == b"COUNT" and more:
            i += 1
            count = parse_int(argv[i])
            if count is None:
                raise NOT_INTEGER
            args.count = max(count, 0)
        elif opt == b"STREAMS" and more:
            streams_at = i + 1
            n = len(argv) - streams_at
            if n % 2:
                raise ReplyError(f"ERR Unbalanced '{name.decode()}' list of streams: for each "
                                 f"stream key an ID or '{'>' if group else '$'}' must be "
                                 "specified.")
            half = n // 2
            args.keys = argv[streams_at:streams_at + half]
            args.ids = argv[streams_at + half:]
            break
        elif opt == b"GROUP" and more >= 2:
            if not group:
                raise ReplyError("ERR The GROUP option is only supported by XREADGROUP. You "
                                 "called XREAD instead.")
            args.group, args.consumer = argv[i + 1], argv[i + 2]
            i += 2
        elif opt == b"NOACK":
            if not group:
                raise ReplyError("ERR The NOACK option is only supported by XREADGROUP. You "
                                 "called XREAD instead.")
            args.noack = True
        else:
            raise SYNTAX
        i += 1
    if not streams_at:
        raise SYNTAX
    if group and args.group is None:
        raise ReplyError("ERR Missing GROUP option for XREADGROUP")
    return args


def read_keys(argv) -> list:
    """The keys of XREAD/XREADGROUP: the first half of what follows STREAMS."""
    for i in range(1, len(argv)):
        if argv[i].upper() == b"STREAMS":
            rest = argv[i + 1:]
            return list(rest[:len(rest) // 2])
    return []


def resolve_ids(ctx, args: ReadArgs) -> list:
    """XREAD's IDs: ``$`` becomes the stream's last ID (0-0 for a missing key)."""
    ids = []
    for key, raw in zip(args.keys, args.ids):
        stream = lookup_stream(ctx, key)
        if raw == b"$":
            ids.append(stream.last_id if stream is not None else (0, 0))
        elif raw == b">":
            raise ReplyError("ERR The > ID can be specified only when calling XREADGROUP "
                             "using the GROUP <group> <consumer> option.")
        else:
            ids.append(parse_id(raw, strict=True))
    return ids


def read_new(ctx, args: ReadArgs, ids) -> list:
    """``[[key, entries], ...]`` for every stream with entries after its ID (may be empty)."""
    out = []
    for key, after in zip(args.keys, ids):
        stream = lookup_stream(ctx, key)
        if stream is None or not len(stream) or stream.last_entry_id() <= after:
            continue
        start = next_id(after)
        out.append([key, entries_reply(stream.range(start, MAX_ID, args.count))])
    return out


def xread_now(ctx, argv):
    """XREAD without waiting: the new entries, or a null array when there are none."""
    args = parse_read(argv, group=False)
    return read_new(ctx, args, resolve_ids(ctx, args)) or NULL_ARRAY


XREAD_NOW = CommandSpec(name="XREAD", arity=-4, flags=frozenset({"readonly", "movablekeys"}),
                        group="stream", since="5.0.0", handler=xread_now, find_keys=read_keys,
                        is_readonly=True)
