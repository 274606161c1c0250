"""XREADGROUP's read: hand a consumer new entries (``>``) or its own pending ones again.

XREADGROUP itself is a server command (it may BLOCK: ``workbench/server/blocking_streams.py``);
this is the non-blocking read it runs through the keyspace path, with the unregistered
:data:`XREADGROUP_NOW`. What it changes is propagated as ``cmd_streams_groups`` explains.
"""

from __future__ import annotations

from ..resp import NULL_ARRAY, ReplyError
from .cmd_streams import (entries_reply, entry_reply, lookup_stream, next_id, parse_id,
                          parse_read, read_keys)
from .cmd_streams_groups import _claim_command, _consumer, _nogroup, _setid_command
from .stream import MAX_ID, UNKNOWN, Pending, id_text
from .table import CommandSpec


def resolve_group_ids(ctx, args) -> list:
    """Each stream's group and ID (``MAX_ID`` standing for ``>``), in Valkey's order."""
    out = []
    for key, raw in zip(args.keys, args.ids):
        stream = lookup_stream(ctx, key)
        if stream is None or args.group not in stream.groups:
            raise _nogroup(key, args.group, " in XREADGROUP with GROUP option")
        if raw == b"$":
            raise ReplyError("ERR The $ ID is meaningless in the context of XREADGROUP: you "
                             "want to read the history of this consumer by specifying a "
                             "proper ID, or use the > ID to get new messages. The $ ID would "
                             "just return an empty result set.")
        out.append(MAX_ID if raw == b">" else parse_id(raw, strict=True))
    return out


def _deliver_new(ctx, key, stream, group, consumer, args, after, propagate):
    """Hand the entries after ``after`` to ``consumer`` (``streamReplyWithRange``)."""
    start = next_id(after)
    delivered = stream.range(start, MAX_ID, args.count) if start is not None else []
    moved = False
    for entry_id, _ in delivered:
        if entry_id > group.last_id:
            if group.entries_read != UNKNOWN and not stream.has_tombstones(entry_id):
                group.entries_read += 1
            elif stream.entries_added:
                group.entries_read = stream.estimate_read_counter(entry_id)
            group.last_id = entry_id
            moved = True
        if args.noack:
            continue
        pending = group.pel.get(entry_id)
        if pending is None:
            pending = group.pel[entry_id] = Pending(consumer.name, ctx.now_ms, 1)
            consumer.pel[entry_id] = pending
        else:                                    # delivered before (XGROUP SETID went back)
            del group.consumers[pending.consumer].pel[entry_id]
            pending.consumer, pending.delivery_time = consumer.name, ctx.now_ms
            pending.delivery_count = 1
            consumer.pel[entry_id] = pending
        propagate.append(_claim_command(key, args.group, entry_id, pending, group))
    if moved:               # Valkey 7.2+ propagates it always (Redis 7.0 only with NOACK)
        propagate.append(_setid_command(key, args.group, group))
    return entries_reply(delivered)


def _deliver_history(ctx, key, stream, group, consumer, args, after, propagate):
    """The consumer's own pending entries after ``after``: delivered again."""
    out = []
    for entry_id in consumer.pel.irange(after, None, inclusive=(False, True)):
        fields = stream.entries.get(entry_id)
        if fields is None:
            out.append([id_text(entry_id), NULL_ARRAY])
        else:
            out.append(entry_reply(entry_id, fields))
            pending = consumer.pel[entry_id]
            pending.delivery_time = ctx.now_ms
            pending.delivery_count += 1
            propagate.append(_claim_command(key, args.group, entry_id, pending, group))
        if args.count and len(out) == args.count:
            break
    return out


def xreadgroup_now(ctx, argv):
    """XREADGROUP without waiting: ``[[key, entries], ...]`` or a null array."""
    args = parse_read(argv, group=True)
    ids = resolve_group_ids(ctx, args)
    out, propagate = [], []
    for key, after in zip(args.keys, ids):
        stream = lookup_stream(ctx, key)
        group = stream.groups[args.group]
        history = after != MAX_ID
        if not history:
            if not len(stream) or stream.last_entry_id() <= group.last_id:
                continue
            after = group.last_id
        consumer, created = _consumer(ctx, key, group, args.consumer)
        if created:         # Redis 7.0 may not propagate this; a replica must know it too
            propagate.append([b"XGROUP", b"CREATECONSUMER", key, args.group, args.consumer])
        deliver = _deliver_history if history else _deliver_new
        entries = deliver(ctx, key, stream, group, consumer, args, after, propagate)
        if not history and entries:
            consumer.active_time = ctx.now_ms
        ctx.changed(key)
        out.append([key, entries])
    ctx.rewrite_as(*propagate)
    return out or NULL_ARRAY


XREADGROUP_NOW = CommandSpec(
    name="XREADGROUP", arity=-7, flags=frozenset({"write", "movablekeys"}), group="stream",
    since="5.0.0", handler=xreadgroup_now, find_keys=read_keys, is_write=True)
