"""Set commands: a key holding a Python set of members."""

from __future__ import annotations

import random
import zlib

from ..resp import ReplyError, SetReply
from .keyspace import NOT_INTEGER, SYNTAX
from .table import command
from .values import LLONG_MIN, parse_int


@command("SADD", -3, "write denyoom fast", 1, 1, 1, group="set")
def sadd(ctx, argv):
    """Add members to a set (creating it); return how many were new."""
    key = argv[1]
    members = ctx.lookup_typed(key, set)
    if members is None:
        members = set()
        ctx.set_value(key, members)
    before = len(members)
    members.update(argv[2:])
    added = len(members) - before
    if added:
        ctx.changed(key, "s", "sadd")
    return added


@command("SREM", -3, "write fast", 1, 1, 1, group="set")
def srem(ctx, argv):
    """Remove members from a set; return how many were there."""
    key = argv[1]
    members = ctx.lookup_typed(key, set)
    if members is None:
        return 0
    before = len(members)
    members.difference_update(argv[2:])
    removed = before - len(members)
    if removed:
        ctx.changed(key, "s", "srem")
        ctx.delete_if_empty(key, members)
    return removed


@command("SMEMBERS", 2, "readonly", 1, 1, 1, group="set")
def smembers(ctx, argv):
    """All members of a set."""
    return SetReply(ctx.lookup_typed(argv[1], set) or ())


@command("SISMEMBER", 3, "readonly fast", 1, 1, 1, group="set")
def sismember(ctx, argv):
    """Whether a value is a member of a set."""
    members = ctx.lookup_typed(argv[1], set)
    return int(members is not None and argv[2] in members)


@command("SMISMEMBER", -3, "readonly fast", 1, 1, 1, group="set", since="6.2.0")
def smismember(ctx, argv):
    """Whether each of several values is a member of a set."""
    members = ctx.lookup_typed(argv[1], set) or ()
    return [int(m in members) for m in argv[2:]]


@command("SCARD", 2, "readonly fast", 1, 1, 1, group="set")
def scard(ctx, argv):
    """The number of members of a set."""
    members = ctx.lookup_typed(argv[1], set)
    return 0 if members is None else len(members)


def _positive_count(raw: bytes) -> int:
    count = parse_int(raw)
    if count is None:
        raise NOT_INTEGER
    if count < 0:
        raise ReplyError("ERR value is out of range, must be positive")
    return count


@command("SPOP", -2, "write fast", 1, 1, 1, group="set")
def spop(ctx, argv):
    """Remove and return arbitrary members of a set; propagated as the SREM it amounted to."""
    if len(argv) > 3:
        raise SYNTAX
    key = argv[1]
    if len(argv) == 2:
        members = ctx.lookup_typed(key, set)
        if members is None:
            return None
        popped = members.pop()
        ctx.changed(key, "s", "spop")
        ctx.rewrite_as([b"SREM", key, popped])
        ctx.delete_if_empty(key, members)
        return popped
    count = _positive_count(argv[2])
    members = ctx.lookup_typed(key, set)
    if members is None or count == 0:
        return SetReply()
    if count >= len(members):
        popped = SetReply(members)
        members.clear()
        ctx.rewrite_as([b"DEL", key])
    else:
        popped = SetReply(members.pop() for _ in range(count))
        ctx.rewrite_as([b"SREM", key, *popped])
    ctx.changed(key, "s", "spop")
    ctx.delete_if_empty(key, members)
    return popped


@command("SRANDMEMBER", -2, "readonly", 1, 1, 1, group="set")
def srandmember(ctx, argv):
    """Random members of a set: distinct for a positive count, repeating for a negative one."""
    if len(argv) > 3:
        raise SYNTAX
    key = argv[1]
    count = None
    if len(argv) == 3:
        count = parse_int(argv[2])
        if count is None:
            raise NOT_INTEGER
        if count == LLONG_MIN:
            raise ReplyError("ERR value is out of range, value must between "
                             "-9223372036854775807 and 9223372036854775807")
    members = ctx.lookup_typed(key, set)
    if not members:
        return None if count is None else []
    rng = random.Random((zlib.crc32(key) << 40) ^ ctx.now_ms)   # same key and time, same pick
    pool = list(members)
    if count is None:
        return rng.choice(pool)
    if count >= 0:
        return rng.sample(pool, min(count, len(pool)))
    return [rng.choice(pool) for _ in range(-count)]
