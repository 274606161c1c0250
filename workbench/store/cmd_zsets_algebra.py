"""Sorted set algebra: ZUNION, ZINTER, ZDIFF, their STORE forms, and ZINTERCARD.

As in Valkey (``zunionInterDiffGenericCommand``): the inputs may be sorted sets or plain
sets (a set member counts with score 1); each input's scores are multiplied by its
WEIGHT (1 by default) and a member's scores are combined by AGGREGATE SUM (default), MIN
or MAX. A product or a sum that is NaN (``0 * inf``, ``inf + -inf``) counts as 0. The
inputs are taken smallest first (a stable sort by size), which fixes the order in which
doubles are added, so a replica running the same STORE command computes the same scores.
"""

from __future__ import annotations

from ..resp import ReplyError
from .cmd_zsets import long_arg, parse_score, scored, store_zset
from .keyspace import SYNTAX, WRONGTYPE
from .table import command
from .values import parse_int
from .zset import ZSet

WEIGHT_NOT_FLOAT = ReplyError("ERR weight value is not a float")
UNION, INTER, DIFF = "union", "inter", "diff"


def _size(source) -> int:
    return 0 if source is None else len(source)


def _pairs(source):
    """(member, score) of an input: a set's members score 1."""
    if source is None:
        return ()
    if type(source) is set:
        return ((member, 1.0) for member in source)
    return source.items()


def _score_in(source, member: bytes):
    if type(source) is set:
        return 1.0 if member in source else None
    return source.score(member)


def _aggregate(total: float, value: float, how: bytes) -> float:
    if how == b"SUM":
        total += value
        return 0.0 if total != total else total
    if how == b"MIN":
        return value if value < total else total
    return value if value > total else total


def _weighted(score: float, weight: float) -> float:
    value = score * weight
    return 0.0 if value != value else value


def _parse(ctx, argv, numkeys_at: int, op: str, store: bool, cardinality: bool):
    """Sources (looked up in order, WRONGTYPE at the first bad one), then the options."""
    setnum = long_arg(argv[numkeys_at])
    if setnum < 1:
        raise ReplyError(f"ERR at least 1 input key is needed for "
                         f"'{argv[0].decode('utf-8', 'replace').lower()}' command")
    first = numkeys_at + 1
    if setnum > len(argv) - first:
        raise SYNTAX
    sources = []
    for key in argv[first:first + setnum]:
        value = ctx.lookup(key)
        if value is not None and type(value) not in (ZSet, set):
            raise WRONGTYPE
        sources.append(value)
    weights, how, withscores, limit = [1.0] * setnum, b"SUM", False, 0
    j = first + setnum
    while j < len(argv):
        remaining = len(argv) - j
        opt = argv[j].upper()
        if op != DIFF and not cardinality and remaining >= setnum + 1 and opt == b"WEIGHTS":
            for i in range(setnum):
                weight = parse_score(argv[j + 1 + i])
                if weight is None:
                    raise WEIGHT_NOT_FLOAT
                weights[i] = weight
            j += 1 + setnum
        elif op != DIFF and not cardinality and remaining >= 2 and opt == b"AGGREGATE":
            how = argv[j + 1].upper()
            if how not in (b"SUM", b"MIN", b"MAX"):
                raise SYNTAX
            j += 2
        elif not store and not cardinality and opt == b"WITHSCORES":
            withscores = True
            j += 1
        elif cardinality and remaining >= 2 and opt == b"LIMIT":
            limit = parse_int(argv[j + 1])
            if limit is None or limit < 0:
                raise ReplyError("ERR LIMIT can't be negative")
            j += 2
        else:
            raise SYNTAX
    return sources, weights, how, withscores, limit


def _inter(sources, weights, how, limit=None):
    """The members in every input with their combined scores (``limit``: count only)."""
    order = sorted(range(len(sources)), key=lambda i: _size(sources[i]))
    smallest = sources[order[0]]
    found, count = {}, 0
    if not _size(smallest):
        return found, count
    for member, score in _pairs(smallest):
        total = _weighted(score, weights[order[0]])
        for i in order[1:]:
            value = _score_in(sources[i], member)
            if value is None:
                break
            total = _aggregate(total, value * weights[i], how)
        else:
            count += 1
            if limit is None:
                found[member] = total
            elif limit and count >= limit:
                break
    return found, count


def _union(sources, weights, how) -> dict:
    found: dict = {}
    for i in sorted(range(len(sources)), key=lambda i: _size(sources[i])):
        for member, score in _pairs(sources[i]):
            value = _weighted(score, weights[i])
            total = found.get(member)
            found[member] = value if total is None else _aggregate(total, value, how)
    return found


def _diff(sources) -> dict:
    first = sources[0]
    return {member: score for member, score in _pairs(first)
            if not any(s is not None and _score_in(s, member) is not None
                       for s in sources[1:])}


def _combine(ctx, argv, numkeys_at: int, op: str, store: bool):
    sources, weights, how, withscores, _ = _parse(ctx, argv, numkeys_at, op, store, False)
    if op == INTER:
        found = _inter(sources, weights, how)[0]
    elif op == UNION:
        found = _union(sources, weights, how)
    else:
        found = _diff(sources)
    result = ZSet(found.items())
    if store:
        return store_zset(ctx, argv[1], result, f"z{op}store")
    return scored(result.items(), withscores)


def _read_keys(argv) -> list:
    return list(argv[2:2 + int(argv[1])])


def _store_keys(argv) -> list:
    return [argv[1], *argv[3:3 + int(argv[2])]]


@command("ZUNION", -3, "readonly movablekeys", 0, 0, 0, group="sorted-set", since="6.2.0",
         find_keys=_read_keys)
def zunion(ctx, argv):
    """The members of any input [WEIGHTS] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]."""
    return _combine(ctx, argv, 1, UNION, False)


@command("ZINTER", -3, "readonly movablekeys", 0, 0, 0, group="sorted-set", since="6.2.0",
         find_keys=_read_keys)
def zinter(ctx, argv):
    """The members of every input [WEIGHTS] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]."""
    return _combine(ctx, argv, 1, INTER, False)


@command("ZDIFF", -3, "readonly movablekeys", 0, 0, 0, group="sorted-set", since="6.2.0",
         find_keys=_read_keys)
def zdiff(ctx, argv):
    """The members of the first input that are in no other [WITHSCORES]."""
    return _combine(ctx, argv, 1, DIFF, False)


@command("ZUNIONSTORE", -4, "write denyoom movablekeys", 1, 1, 1, group="sorted-set",
         since="2.0.0", find_keys=_store_keys)
def zunionstore(ctx, argv):
    """Store the union of inputs in a key; return its size."""
    return _combine(ctx, argv, 2, UNION, True)


@command("ZINTERSTORE", -4, "write denyoom movablekeys", 1, 1, 1, group="sorted-set",
         since="2.0.0", find_keys=_store_keys)
def zinterstore(ctx, argv):
    """Store the intersection of inputs in a key; return its size."""
    return _combine(ctx, argv, 2, INTER, True)


@command("ZDIFFSTORE", -4, "write denyoom movablekeys", 1, 1, 1, group="sorted-set",
         since="6.2.0", find_keys=_store_keys)
def zdiffstore(ctx, argv):
    """Store the difference of inputs in a key; return its size."""
    return _combine(ctx, argv, 2, DIFF, True)


@command("ZINTERCARD", -3, "readonly movablekeys", 0, 0, 0, group="sorted-set",
         since="7.0.0", find_keys=_read_keys)
def zintercard(ctx, argv):
    """The size of the intersection of inputs, counted up to LIMIT (0: no limit)."""
    sources, weights, how, _, limit = _parse(ctx, argv, 1, INTER, False, True)
    return _inter(sources, weights, how, limit)[1]
