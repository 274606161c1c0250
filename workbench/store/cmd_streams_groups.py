"""Consumer groups: XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM and XREADGROUP's read.

A group hands each entry to one consumer and remembers it as *pending* until XACK. What
a delivery changes -- the PEL entry's owner, delivery time and count, the group's last
delivered ID -- is propagated as Valkey propagates it: one ``XCLAIM key group consumer 0
id TIME <ms> RETRYCOUNT <n> FORCE JUSTID LASTID <group's last id>`` per entry, then
``XGROUP SETID key group <last id> ENTRIESREAD <n>``. Delivery times are absolute
milliseconds, so a replica or the AOF rebuilds the very same PEL.
"""

from __future__ import annotations

from ..resp import NULL_ARRAY, OK, ReplyError
from .cmd_streams import (entry_reply, lookup_stream, next_id, parse_id, previous_id,
                          ULLONG_MAX)
from .keyspace import NOT_INTEGER
from .stream import UNKNOWN, Group, Pending, Stream, id_text
from .table import command
from .values import LLONG_MAX, parse_int


def _nogroup(key: bytes, group: bytes, suffix: str = "") -> ReplyError:
    return ReplyError(f"NOGROUP No such key '{key.decode(errors='replace')}' or consumer "
                      f"group '{group.decode(errors='replace')}'{suffix}")


def _stream_and_group(ctx, key, name):
    stream = lookup_stream(ctx, key)
    group = stream.groups.get(name) if stream is not None else None
    if group is None:
        raise _nogroup(key, name)
    return stream, group


def _claim_command(key, name, entry_id, pending: Pending, group: Group) -> list:
    """The XCLAIM that re-creates this PEL entry exactly on a replica."""
    return [b"XCLAIM", key, name, pending.consumer, b"0", id_text(entry_id),
            b"TIME", b"%d" % pending.delivery_time, b"RETRYCOUNT",
            b"%d" % pending.delivery_count, b"FORCE", b"JUSTID", b"LASTID",
            id_text(group.last_id)]


def _setid_command(key, name, group: Group) -> list:
    return [b"XGROUP", b"SETID", key, name, id_text(group.last_id), b"ENTRIESREAD",
            b"%d" % group.entries_read]


def _consumer(ctx, key, group: Group, name: bytes):
    consumer, created = group.consumer(name, ctx.now_ms)
    consumer.seen_time = ctx.now_ms
    if created:
        ctx.events.append(("t", "xgroup-createconsumer", ctx.db.id, key))
    return consumer, created


def _unpend(group: Group, entry_id) -> None:
    pending = group.pel.pop(entry_id)
    del group.consumers[pending.consumer].pel[entry_id]


# -- XGROUP -----------------------------------------------------------------------------
_XGROUP_ARITY = {b"CREATE": -5, b"SETID": -5, b"DESTROY": 4, b"CREATECONSUMER": 5,
                 b"DELCONSUMER": 5, b"HELP": 2}
_NEEDS_GROUP = (b"SETID", b"CREATECONSUMER", b"DELCONSUMER")


def _subcommand_check(argv, arities: dict, command_name: str):
    sub = argv[1].upper()
    if sub not in arities:
        raise ReplyError(f"ERR unknown subcommand '{argv[1].decode(errors='replace')}'. "
                         f"Try {command_name} HELP.")
    arity = arities[sub]
    if (len(argv) != arity) if arity > 0 else (len(argv) < -arity):
        raise ReplyError(f"ERR wrong number of arguments for "
                         f"'{command_name.lower()}|{sub.decode().lower()}' command")
    return sub


def _syntax(argv, command_name: str) -> ReplyError:
    return ReplyError(f"ERR unknown subcommand or wrong number of arguments for "
                      f"'{argv[1].decode(errors='replace')[:128]}'. Try {command_name} HELP.")


def _entries_read_arg(raw: bytes) -> int:
    n = parse_int(raw)
    if n is None:
        raise NOT_INTEGER
    if n < 0 and n != UNKNOWN:
        raise ReplyError("ERR value for ENTRIESREAD must be positive or -1")
    return n


XGROUP_HELP = [
    b"XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"CREATE <key> <groupname> <id|$> [option]",
    b"    Create a new consumer group. Options are:",
    b"    * MKSTREAM",
    b"      Create the empty stream if it does not exist.",
    b"    * ENTRIESREAD entries_read",
    b"      Set the group's entries_read counter (internal use).",
    b"CREATECONSUMER <key> <groupname> <consumer>",
    b"    Create a new consumer in the specified group.",
    b"DELCONSUMER <key> <groupname> <consumer>",
    b"    Remove the specified consumer.",
    b"DESTROY <key> <groupname>",
    b"    Remove the specified group.",
    b"SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    b"    Set the current group ID and entries_read counter.",
    b"HELP",
    b"    Print this help.",
]


def _xgroup_keys(argv) -> list:
    return [argv[2]] if len(argv) > 2 and argv[1].upper() != b"HELP" else []


@command("XGROUP", -2, "write", 0, 0, 0, group="stream", since="5.0.0",
         find_keys=_xgroup_keys)
def xgroup(ctx, argv):
    """Create, destroy and adjust consumer groups and their consumers."""
    sub = _subcommand_check(argv, _XGROUP_ARITY, "XGROUP")
    if sub == b"HELP":
        return XGROUP_HELP
    key, name = argv[2], argv[3]
    mkstream, entries_read = False, UNKNOWN
    if sub == b"CREATE":
        i = 5
        while i < len(argv):
            if argv[i].upper() == b"MKSTREAM":
                mkstream = True
                i += 1
            elif argv[i].upper() == b"ENTRIESREAD" and i + 1 < len(argv):
                entries_read = _entries_read_arg(argv[i + 1])
                i += 2
            else:
                raise _syntax(argv, "XGROUP")
    elif sub == b"SETID":
        if len(argv) == 7:
            if argv[5].upper() != b"ENTRIESREAD":
                raise _syntax(argv, "XGROUP")
            entries_read = _entries_read_arg(argv[6])
        elif len(argv) != 5:
            raise _syntax(argv, "XGROUP")
    stream = lookup_stream(ctx, key)
    group = None
    if not mkstream:
        if stream is None:
            raise ReplyError("ERR The XGROUP subcommand requires the key to exist. Note that "
                             "for CREATE you may want to use the MKSTREAM option to create "
                             "an empty stream automatically.")
        group = stream.groups.get(name)
        if group is None and sub in _NEEDS_GROUP:
            raise ReplyError(f"NOGROUP No such consumer group '{name.decode(errors='replace')}'"
                             f" for key name '{key.decode(errors='replace')}'")
    if sub == b"CREATE":
        if len(argv) > 8:
            raise _syntax(argv, "XGROUP")
        if argv[4] == b"$":
            start = stream.last_id if stream is not None else (0, 0)
        else:
            start = parse_id(argv[4], strict=True)
        if stream is None:
            stream = Stream()
            ctx.set_value(key, stream)
            ctx.changed(key)
        if name in stream.groups:
            raise ReplyError("BUSYGROUP Consumer Group name already exists")
        stream.groups[name] = Group(start, entries_read)
        ctx.changed(key, "t", "xgroup-create")
        if argv[4] == b"$":                       # the ID it meant, for replicas
            ctx.rewrite_as([*argv[:4], id_text(start), *argv[5:]])
        return OK
    if sub == b"SETID":
        group.last_id = stream.last_id if argv[4] == b"$" else parse_id(argv[4])
        group.entries_read = entries_read
        ctx.changed(key, "t", "xgroup-setid")
        if argv[4] == b"$":
            ctx.rewrite_as(_setid_command(key, name, group))
        return OK
    if sub == b"DESTROY":
        if group is None:
            return 0
        del stream.groups[name]
        ctx.changed(key, "t", "xgroup-destroy")
        return 1
    if sub == b"CREATECONSUMER":
        if argv[4] in group.consumers:
            return 0
        group.consumer(argv[4], ctx.now_ms)
        ctx.changed(key, "t", "xgroup-createconsumer")
        return 1
    consumer = group.consumers.get(argv[4])       # DELCONSUMER
    if consumer is None:
        return 0
    pending = len(consumer.pel)
    for entry_id in list(consumer.pel):
        del group.pel[entry_id]
    del group.consumers[argv[4]]
    ctx.changed(key, "t", "xgroup-delconsumer")
    return pending


# -- XACK, XPENDING -------------------------------------------------------------------------
@command("XACK", -4, "write fast", 1, 1, 1, group="stream", since="5.0.0")
def xack(ctx, argv):
    """Acknowledge entries: remove them from the group's pending entries list."""
    key = argv[1]
    stream = lookup_stream(ctx, key)
    group = stream.groups.get(argv[2]) if stream is not None else None
    if group is None:
        return 0
    ids = [parse_id(raw, strict=True) for raw in argv[3:]]
    acknowledged = 0
    for entry_id in ids:
        if entry_id in group.pel:
            _unpend(group, entry_id)
            acknowledged += 1
    if acknowledged:
        ctx.changed(key)
    return acknowledged


def _interval(start_raw: bytes, end_raw: bytes):
    exclusive = len(start_raw) > 1 and start_raw[:1] == b"("
    start = parse_id(start_raw[1:] if exclusive else start_raw, strict=exclusive)
    if exclusive:
        start = next_id(start)
        if start is None:
            raise ReplyError("ERR invalid start ID for the interval")
    if end_raw is None:
        return start, None
    exclusive = len(end_raw) > 1 and end_raw[:1] == b"("
    end = parse_id(end_raw[1:] if exclusive else end_raw, strict=exclusive,
                   missing_seq=ULLONG_MAX)
    if exclusive:
        end = previous_id(end)
        if end is None:
            raise ReplyError("ERR invalid end ID for the interval")
    return start, end


@command("XPENDING", -3, "readonly", 1, 1, 1, group="stream", since="5.0.0")
def xpending(ctx, argv):
    """The pending entries of a group: a summary, or the entries of an ID range."""
    summary = len(argv) == 3
    if not summary and not 6 <= len(argv) <= 9:
        raise ReplyError("ERR syntax error")
    min_idle, consumer_name = 0, None
    if not summary:
        at = 3
        if argv[3].upper() == b"IDLE":
            min_idle = parse_int(argv[4])
            if min_idle is None:
                raise NOT_INTEGER
            if len(argv) < 8:
                raise ReplyError("ERR syntax error")
            at = 5
        count = parse_int(argv[at + 2])
        if count is None:
            raise NOT_INTEGER
        count = max(count, 0)
        start, end = _interval(argv[at], argv[at + 1])
        if at + 3 < len(argv):
            consumer_name = argv[at + 3]
    stream, group = _stream_and_group(ctx, argv[1], argv[2])
    if summary:
        if not group.pel:
            return [0, None, None, NULL_ARRAY]
        owners = sorted((name, len(c.pel)) for name, c in group.consumers.items() if c.pel)
        return [len(group.pel), id_text(group.pel.peekitem(0)[0]),
                id_text(group.pel.peekitem(-1)[0]),
                [[name, b"%d" % n] for name, n in owners]]
    if consumer_name is not None:
        consumer = group.consumers.get(consumer_name)
        if consumer is None:
            return []
        pel = consumer.pel
    else:
        pel = group.pel
    out = []
    if start > end:
        return out
    for entry_id in pel.irange(start, end):
        if not count:
            break
        pending = pel[entry_id]
        idle = ctx.now_ms - pending.delivery_time
        if min_idle and idle < min_idle:
            continue
        count -= 1
        out.append([id_text(entry_id), pending.consumer, max(idle, 0),
                    pending.delivery_count])
    return out


# -- XCLAIM, XAUTOCLAIM ------------------------------------------------------------------
def _option_int(raw: bytes, what: str) -> int:
    n = parse_int(raw)
    if n is None:
        raise ReplyError(f"ERR Invalid {what} argument for XCLAIM")
    return n


def _take(ctx, key, group, consumer_name, consumer, entry_id, pending):
    """Give ``pending`` to the consumer (created on first use)."""
    if consumer is None:
        consumer, _ = _consumer(ctx, key, group, consumer_name)
    if pending.consumer != consumer.name:
        owner = group.consumers.get(pending.consumer)
        if owner is not None:
            owner.pel.pop(entry_id, None)
        consumer.pel[entry_id] = pending
        pending.consumer = consumer.name
    consumer.active_time = ctx.now_ms
    return consumer


def _claimed_reply(stream: Stream, entry_id, justid: bool):
    if justid:
        return id_text(entry_id)
    fields = stream.entries.get(entry_id)
    return None if fields is None else entry_reply(entry_id, fields)


@command("XCLAIM", -6, "write fast", 1, 1, 1, group="stream", since="5.0.0")
def xclaim(ctx, argv):
    """Take pending entries idle for at least min-idle-time over to another consumer."""
    key, name, consumer_name = argv[1], argv[2], argv[3]
    stream = lookup_stream(ctx, key)
    group = stream.groups.get(name) if stream is not None else None
    if group is None:
        raise _nogroup(key, name)
    min_idle = parse_int(argv[4])
    if min_idle is None:
        raise ReplyError("ERR Invalid min-idle-time argument for XCLAIM")
    min_idle = max(min_idle, 0)
    ids, j = [], 5
    while j < len(argv):
        try:
            ids.append(parse_id(argv[j], strict=True))
        except ReplyError:
            break
        j += 1
    now = ctx.now_ms
    force = justid = False
    retrycount, delivery_time, last_id = -1, -1, (0, 0)
    while j < len(argv):
        more = len(argv) - 1 - j
        opt = argv[j].upper()
        if opt == b"FORCE":
            force = True
        elif opt == b"JUSTID":
            justid = True
        elif opt == b"IDLE" and more:
            j += 1
            delivery_time = now - _option_int(argv[j], "IDLE option")
        elif opt == b"TIME" and more:
            j += 1
            delivery_time = _option_int(argv[j], "TIME option")
        elif opt == b"RETRYCOUNT" and more:
            j += 1
            retrycount = _option_int(argv[j], "RETRYCOUNT option")
        elif opt == b"LASTID" and more:
            j += 1
            last_id = parse_id(argv[j], strict=True)
        else:
            raise ReplyError(f"ERR Unrecognized XCLAIM option "
                             f"'{argv[j].decode(errors='replace')}'")
        j += 1
    moved_last_id = last_id > group.last_id
    if moved_last_id:
        group.last_id = last_id
    if delivery_time == -1 or delivery_time < 0 or delivery_time > now:
        delivery_time = now
    propagate, reply, consumer = [], [], None
    for entry_id in ids:
        pending = group.pel.get(entry_id)
        if entry_id not in stream.entries:
            if pending is not None:               # the entry is gone: so is its PEL entry
                propagate.append(_claim_command(key, name, entry_id, pending, group))
                moved_last_id = False
                _unpend(group, entry_id)
                continue
            if not (force and ctx.applying):
                continue
            # a rebuild (AOF rewrite, full sync) restoring a PEL entry whose stream entry
            # was deleted: kept, where Valkey's rewrite would lose it
        if pending is None:
            if not force:
                continue
            pending = group.pel[entry_id] = Pending(None, now, 0)
        elif min_idle and now - pending.delivery_time < min_idle:
            continue
        consumer = _take(ctx, key, group, consumer_name, consumer, entry_id, pending)
        pending.delivery_time = delivery_time
        if retrycount >= 0:
            pending.delivery_count = retrycount
        elif not justid:
            pending.delivery_count += 1
        reply.append(_claimed_reply(stream, entry_id, justid))
        propagate.append(_claim_command(key, name, entry_id, pending, group))
        moved_last_id = False
    if moved_last_id:
        propagate.append(_setid_command(key, name, group))
    if consumer is not None or propagate:
        ctx.changed(key)
    ctx.rewrite_as(*propagate)
    return reply


@command("XAUTOCLAIM", -6, "write fast", 1, 1, 1, group="stream", since="6.2.0")
def xautoclaim(ctx, argv):
    """XCLAIM the pending entries idle long enough, scanning the PEL from a start ID."""
    key, name, consumer_name = argv[1], argv[2], argv[3]
    min_idle = parse_int(argv[4])
    if min_idle is None:
        raise ReplyError("ERR Invalid min-idle-time argument for XAUTOCLAIM")
    min_idle = max(min_idle, 0)
    start, _ = _interval(argv[5], None)
    count, justid, j = 100, False, 6
    while j < len(argv):
        more = len(argv) - 1 - j
        opt = argv[j].upper()
        if opt == b"COUNT" and more:
            count = parse_int(argv[j + 1])
            if count is None or not 1 <= count <= LLONG_MAX // 16:
                raise ReplyError("ERR COUNT must be > 0")
            j += 1
        elif opt == b"JUSTID":
            justid = True
        else:
            raise ReplyError("ERR syntax error")
        j += 1
    stream = lookup_stream(ctx, key)
    group = stream.groups.get(name) if stream is not None else None
    if group is None:
        raise _nogroup(key, name)
    now = ctx.now_ms
    attempts = count * 10
    candidates = list(group.pel.irange(start, None))
    claimed, deleted, propagate, consumer = [], [], [], None
    at = 0
    while attempts and count and at < len(candidates):
        attempts -= 1
        entry_id = candidates[at]
        at += 1
        pending = group.pel[entry_id]
        if entry_id not in stream.entries:
            propagate.append(_claim_command(key, name, entry_id, pending, group))
            _unpend(group, entry_id)
            deleted.append(id_text(entry_id))
            count -= 1
            continue
        if min_idle and now - pending.delivery_time < min_idle:
            continue
        consumer = _take(ctx, key, group, consumer_name, consumer, entry_id, pending)
        pending.delivery_time = now
        if not justid:
            pending.delivery_count += 1
        claimed.append(_claimed_reply(stream, entry_id, justid))
        count -= 1
        propagate.append(_claim_command(key, name, entry_id, pending, group))
    cursor = id_text(candidates[at]) if at < len(candidates) else b"0-0"
    if consumer is not None or propagate:
        ctx.changed(key)
    ctx.rewrite_as(*propagate)
    return [cursor, claimed, deleted]
