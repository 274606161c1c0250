"""Set commands: a key holding a Python set of members."""

from __future__ import annotations

from ..resp import ReplyError, SetReply
from .keyspace import NOT_INTEGER, SYNTAX, WRONGTYPE
from .table import command
from .values import negatable_count, parse_int


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
        count = negatable_count(argv[2])
    members = ctx.lookup_typed(key, set)
    if not members:
        return None if count is None else []
    rng = ctx.rng(key)
    pool = list(members)
    if count is None:
        return rng.choice(pool)
    if count >= 0:
        return rng.sample(pool, min(count, len(pool)))
    return [rng.choice(pool) for _ in range(-count)]


@command("SMOVE", 4, "write fast", 1, 2, 1, group="set")
def smove(ctx, argv):
    """Move a member from one set to another; 0 if the source does not hold it."""
    source, destination, member = argv[1], argv[2], argv[3]
    members = ctx.lookup(source)
    target = ctx.lookup(destination)     # looked up even when the source is missing, as Valkey
    if members is None:
        return 0
    if type(members) is not set or (target is not None and type(target) is not set):
        raise WRONGTYPE
    if source == destination:
        return int(member in members)
    if member not in members:
        return 0
    members.remove(member)
    ctx.changed(source, "s", "srem")
    ctx.delete_if_empty(source, members)
    if target is None:
        target = set()
        ctx.set_value(destination, target)
    if member not in target:
        target.add(member)
        ctx.changed(destination, "s", "sadd")
    return 1


# -- intersection, union and difference ------------------------------------------------------

def _sources(ctx, keys) -> list:
    """The set under each key (``None`` if missing), in order: WRONGTYPE at the first non-set."""
    return [ctx.lookup_typed(key, set) for key in keys]


def _intersection(sources) -> set:
    if not all(sources):
        return set()
    return set.intersection(*sorted(sources, key=len))


def _union(sources) -> set:
    return set().union(*(s for s in sources if s))


def _difference(sources) -> set:
    first = sources[0]
    return set() if first is None else first.difference(*(s for s in sources[1:] if s))


def _store(ctx, destination: bytes, result: set, event: str) -> int:
    """Replace ``destination`` with ``result``, or delete it when ``result`` is empty."""
    if result:
        ctx.lookup(destination)          # an expired destination fires expired, as setKey does
        ctx.set_value(destination, result)
        ctx.changed(destination, "s", event)
    elif ctx.delete(destination):        # Valkey deletes without a lookup: del, even if expired
        ctx.changed(destination, "g", "del")
    return len(result)


@command("SINTER", -2, "readonly", 1, -1, 1, group="set")
def sinter(ctx, argv):
    """The members present in every given set."""
    return SetReply(_intersection(_sources(ctx, argv[1:])))


@command("SUNION", -2, "readonly", 1, -1, 1, group="set")
def sunion(ctx, argv):
    """The members present in any given set."""
    return SetReply(_union(_sources(ctx, argv[1:])))


@command("SDIFF", -2, "readonly", 1, -1, 1, group="set")
def sdiff(ctx, argv):
    """The members of the first set that are in none of the others."""
    return SetReply(_difference(_sources(ctx, argv[1:])))


@command("SINTERSTORE", -3, "write denyoom", 1, -1, 1, group="set")
def sinterstore(ctx, argv):
    """Store the intersection of sets in a key; return its size."""
    return _store(ctx, argv[1], _intersection(_sources(ctx, argv[2:])), "sinterstore")


@command("SUNIONSTORE", -3, "write denyoom", 1, -1, 1, group="set")
def sunionstore(ctx, argv):
    """Store the union of sets in a key; return its size."""
    return _store(ctx, argv[1], _union(_sources(ctx, argv[2:])), "sunionstore")


@command("SDIFFSTORE", -3, "write denyoom", 1, -1, 1, group="set")
def sdiffstore(ctx, argv):
    """Store the difference of sets in a key; return its size."""
    return _store(ctx, argv[1], _difference(_sources(ctx, argv[2:])), "sdiffstore")


# Valkey finds the keys through numkeys (first/last/step 0 0 0, movablekeys); the triple
# 2..-1 also lists the LIMIT tokens, which only makes the commit gate more cautious.
@command("SINTERCARD", -3, "readonly movablekeys", 2, -1, 1, group="set", since="7.0.0")
def sintercard(ctx, argv):
    """The size of the intersection of sets, counted up to LIMIT (0: no limit)."""
    numkeys = parse_int(argv[1])
    if numkeys is None or numkeys < 1:
        raise ReplyError("ERR numkeys should be greater than 0")
    if numkeys > len(argv) - 2:
        raise ReplyError("ERR Number of keys can't be greater than number of args")
    limit, i = 0, 2 + numkeys
    while i < len(argv):
        if argv[i].upper() != b"LIMIT" or i + 1 == len(argv):
            raise SYNTAX
        limit = parse_int(argv[i + 1])
        if limit is None or limit < 0:
            raise ReplyError("ERR LIMIT can't be negative")
        i += 2
    count = len(_intersection(_sources(ctx, argv[2:2 + numkeys])))
    return min(count, limit) if limit else count
