"""Sorted set commands: a key holding a :class:`~workbench.store.zset.ZSet`.

Arguments are checked in Valkey's order (options, then numbers, then the key and its
type), with Valkey's error texts. Scores are doubles: replies carry them as
:class:`~workbench.resp.Double` (a bulk string in RESP2, a double in RESP3).

Everything here is deterministic, so the commands propagate as they are (ZADD INCR and
ZINCRBY too: the replica adds the same doubles in the same order), except ZMPOP, which
Valkey propagates as the ZPOPMIN/ZPOPMAX with COUNT it amounted to. Ranges (ZRANGE and
its relatives, ZCOUNT, ZREMRANGEBY*) are in ``cmd_zsets_ranges``; the set algebra
(ZUNION, ZINTER, ZDIFF and their STORE forms, ZINTERCARD) in ``cmd_zsets_algebra``.
"""

from __future__ import annotations

import math
import re

from ..resp import NULL_ARRAY, Double, Pairs, ReplyError
from .keyspace import NOT_INTEGER, SYNTAX, wrong_arity
from .table import command
from .values import LLONG_MAX, negatable_count, parse_int, parse_multi_pop
from .zset import ZSet


NOT_FLOAT = ReplyError("ERR value is not a valid float")
NAN_SCORE = ReplyError("ERR resulting score is not a number (NaN)")
NOT_POSITIVE = ReplyError("ERR value is out of range, must be positive")

# -- numbers as Valkey's strtod reads them ----------------------------------------------
_DECIMAL = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_HEX = re.compile(rb"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?")
_INFINITY = re.compile(rb"[+-]?inf(?:inity)?", re.IGNORECASE)
_WHITESPACE = b" \t\n\v\f\r"


def strtod(text: bytes):
    """(value, overflowed, underflowed) of a whole number spelled as C's ``strtod`` reads
    it (decimal, hex, ``inf``), or ``None`` when it is not one (NaN counts as not one)."""
    if _DECIMAL.fullmatch(text):
        value = float(text)
        mantissa = text.split(b"e")[0].split(b"E")[0]
        return (value, math.isinf(value),
                value == 0 and any(c in b"123456789" for c in mantissa))
    if _INFINITY.fullmatch(text):
        return (float("-inf") if text[:1] == b"-" else float("inf")), False, False
    if _HEX.fullmatch(text):
        raw = text.decode()
        sign = -1.0 if raw[0] == "-" else 1.0
        try:
            value = float.fromhex(raw.lstrip("+-"))
        except OverflowError:
            return sign * float("inf"), True, False
        return sign * value, False, False
    return None


def parse_score(raw: bytes) -> float | None:
    """A score or weight as Valkey's ``getDoubleFromObject`` takes it: the whole argument,
    no leading space, no overflow or underflow to zero, not NaN; else ``None``."""
    if not raw or raw[:1] in _WHITESPACE:
        return None
    parsed = strtod(raw)
    if parsed is None or parsed[1] or parsed[2]:
        return None
    return parsed[0]


def _score_arg(raw: bytes) -> float:
    value = parse_score(raw)
    if value is None:
        raise NOT_FLOAT
    return value


def long_arg(raw: bytes) -> int:
    value = parse_int(raw)
    if value is None:
        raise NOT_INTEGER
    return value


# -- replies --------------------------------------------------------------------------------
def scored(pairs, withscores: bool = True):
    """(member, score) pairs as a reply: members only, or members with their scores."""
    if not withscores:
        return [member for member, _ in pairs]
    return Pairs([member, Double(score)] for member, score in pairs)


def store_zset(ctx, destination: bytes, result: ZSet, event: str) -> int:
    """Replace ``destination`` with ``result``, or delete it when ``result`` is empty."""
    if result:
        ctx.lookup(destination)          # an expired destination fires expired, as setKey does
        ctx.set_value(destination, result)
        ctx.changed(destination, "z", event)
    elif ctx.delete(destination):        # Valkey deletes without a lookup: del, even if expired
        ctx.changed(destination, "g", "del")
    return len(result)


# -- adding and removing ----------------------------------------------------------------------
def _zadd(ctx, argv, incr: bool):
    """ZADD and ZINCRBY (which is ZADD INCR), as Valkey's ``zaddGenericCommand``."""
    nx = xx = gt = lt = ch = False
    i = 2
    while i < len(argv):
        opt = argv[i].upper()
        if opt == b"NX":
            nx = True
        elif opt == b"XX":
            xx = True
        elif opt == b"CH":
            ch = True
        elif opt == b"INCR":
            incr = True
        elif opt == b"GT":
            gt = True
        elif opt == b"LT":
            lt = True
        else:
            break
        i += 1
    elements = len(argv) - i
    if elements % 2 or not elements:
        raise SYNTAX
    if nx and xx:
        raise ReplyError("ERR XX and NX options at the same time are not compatible")
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise ReplyError("ERR GT, LT, and/or NX options at the same time are not compatible")
    if incr and elements > 2:
        raise ReplyError("ERR INCR option supports a single increment-element pair")
    pairs = [(_score_arg(argv[j]), argv[j + 1]) for j in range(i, len(argv), 2)]
    key = argv[1]
    z = ctx.lookup_typed(key, ZSet)
    if z is None:
        if xx:
            return None if incr else 0
        z = ZSet()
        ctx.set_value(key, z)
    added = updated = processed = 0
    score = None
    for score, member in pairs:
        current = z.score(member)
        if current is not None:
            if nx:
                continue
            if incr:
                score += current
                if score != score:          # inf + -inf; INCR has one pair: nothing done yet
                    raise NAN_SCORE
            if (lt and score >= current) or (gt and score <= current):
                continue
            if score != current:
                z.add(member, score)
                updated += 1
            processed += 1
        elif not xx:
            z.add(member, score)
            added += 1
            processed += 1
    if added or updated:
        ctx.changed(key, "z", "zincr" if incr else "zadd")
    if incr:
        return Double(score) if processed else None
    return added + updated if ch else added


@command("ZADD", -4, "write denyoom fast", 1, 1, 1, group="sorted-set", since="1.2.0")
def zadd(ctx, argv):
    """Add members with scores (or update their scores): NX, XX, GT, LT, CH, INCR."""
    return _zadd(ctx, argv, incr=False)


@command("ZINCRBY", 4, "write denyoom fast", 1, 1, 1, group="sorted-set", since="1.2.0")
def zincrby(ctx, argv):
    """Add an increment to a member's score (from 0 for a new member); the new score."""
    return _zadd(ctx, argv, incr=True)


@command("ZREM", -3, "write fast", 1, 1, 1, group="sorted-set", since="1.2.0")
def zrem(ctx, argv):
    """Remove members; return how many were there."""
    key = argv[1]
    z = ctx.lookup_typed(key, ZSet)
    if z is None:
        return 0
    removed = 0
    for member in argv[2:]:
        removed += z.remove(member)
        if not z:
            break
    if removed:
        ctx.changed(key, "z", "zrem")
        ctx.delete_if_empty(key, z)
    return removed


# -- reading single members -------------------------------------------------------------------
@command("ZCARD", 2, "readonly fast", 1, 1, 1, group="sorted-set", since="1.2.0")
def zcard(ctx, argv):
    """The number of members."""
    z = ctx.lookup_typed(argv[1], ZSet)
    return 0 if z is None else len(z)


@command("ZSCORE", 3, "readonly fast", 1, 1, 1, group="sorted-set", since="1.2.0")
def zscore(ctx, argv):
    """A member's score, or nil."""
    z = ctx.lookup_typed(argv[1], ZSet)
    score = None if z is None else z.score(argv[2])
    return None if score is None else Double(score)


@command("ZMSCORE", -3, "readonly fast", 1, 1, 1, group="sorted-set", since="6.2.0")
def zmscore(ctx, argv):
    """The scores of several members (nil for each one missing)."""
    z = ctx.lookup_typed(argv[1], ZSet)
    scores = [None if z is None else z.score(m) for m in argv[2:]]
    return [None if s is None else Double(s) for s in scores]


def _zrank(ctx, argv, reverse: bool):
    if len(argv) > 4:
        raise wrong_arity(argv[0].decode("utf-8", "replace"))
    withscore = len(argv) == 4
    if withscore and argv[3].upper() != b"WITHSCORE":
        raise SYNTAX
    z = ctx.lookup_typed(argv[1], ZSet)
    rank = None if z is None else z.rank(argv[2])
    if rank is None:
        return NULL_ARRAY if withscore else None
    if reverse:
        rank = len(z) - 1 - rank
    return [rank, Double(z.score(argv[2]))] if withscore else rank


# Valkey 7.2 added WITHSCORE (arity -3); Redis 7.0 has arity 3 and no option.
@command("ZRANK", -3, "readonly fast", 1, 1, 1, group="sorted-set", since="2.0.0")
def zrank(ctx, argv):
    """A member's 0-based position by ascending score [WITHSCORE], or nil."""
    return _zrank(ctx, argv, reverse=False)


@command("ZREVRANK", -3, "readonly fast", 1, 1, 1, group="sorted-set", since="2.0.0")
def zrevrank(ctx, argv):
    """A member's 0-based position by descending score [WITHSCORE], or nil."""
    return _zrank(ctx, argv, reverse=True)


# -- popping and random picks -----------------------------------------------------------------
def pop_members(ctx, key: bytes, z: ZSet, highest: bool, count: int) -> list:
    """Pop up to ``count`` lowest (or highest) members of the set at ``key``, firing
    ``zpopmin``/``zpopmax`` (and ``del`` when it empties). Shared with the blocking pops."""
    popped = [z.pop(highest) for _ in range(min(count, len(z)))]
    ctx.changed(key, "z", "zpopmax" if highest else "zpopmin")
    ctx.delete_if_empty(key, z)
    return popped


def _zpop(ctx, argv, highest: bool):
    if len(argv) > 3:
        raise SYNTAX
    count = None
    if len(argv) == 3:
        count = parse_int(argv[2])
        if count is None or count < 0:
            raise NOT_POSITIVE
    key = argv[1]
    z = ctx.lookup_typed(key, ZSet)
    if z is None or count == 0:
        return []
    popped = pop_members(ctx, key, z, highest, 1 if count is None else count)
    if count is None:                    # one pair, flat in both protocols
        member, score = popped[0]
        return [member, Double(score)]
    return scored(popped)


@command("ZPOPMIN", -2, "write fast", 1, 1, 1, group="sorted-set", since="5.0.0")
def zpopmin(ctx, argv):
    """Remove and return the members with the lowest scores [count]."""
    return _zpop(ctx, argv, highest=False)


@command("ZPOPMAX", -2, "write fast", 1, 1, 1, group="sorted-set", since="5.0.0")
def zpopmax(ctx, argv):
    """Remove and return the members with the highest scores [count]."""
    return _zpop(ctx, argv, highest=True)


def parse_mpop(argv, numkeys_at: int):
    """ZMPOP's (and BZMPOP's) arguments: (keys, the highest scores?, count)."""
    return parse_multi_pop(argv, numkeys_at, (b"MAX", b"MIN"))


def mpop_keys(argv, numkeys_at: int = 1) -> list:
    return list(argv[numkeys_at + 1:numkeys_at + 1 + int(argv[numkeys_at])])


@command("ZMPOP", -4, "write movablekeys", 0, 0, 0, group="sorted-set", since="7.0.0",
         find_keys=mpop_keys)
def zmpop(ctx, argv):
    """Pop from the first non-empty of several sorted sets: [key, [[member, score]..]];
    propagated as the ZPOPMIN/ZPOPMAX with COUNT it amounted to, as Valkey does."""
    keys, highest, count = parse_mpop(argv, 1)
    for key in keys:
        z = ctx.lookup_typed(key, ZSet)
        if z is None:
            continue
        popped = pop_members(ctx, key, z, highest, count)
        ctx.rewrite_as([b"ZPOPMAX" if highest else b"ZPOPMIN", key, b"%d" % len(popped)])
        return [key, [[member, Double(score)] for member, score in popped]]
    return NULL_ARRAY


@command("ZRANDMEMBER", -2, "readonly", 1, 1, 1, group="sorted-set", since="6.2.0")
def zrandmember(ctx, argv):
    """Random members: distinct for a positive count, repeating for a negative one."""
    key = argv[1]
    if len(argv) == 2:
        z = ctx.lookup_typed(key, ZSet)
        if not z:
            return None
        return z.at(ctx.rng(key).randrange(len(z)))[0]
    count = negatable_count(argv[2])
    if len(argv) > 4 or (len(argv) == 4 and argv[3].upper() != b"WITHSCORES"):
        raise SYNTAX
    withscores = len(argv) == 4
    if withscores and not -(LLONG_MAX // 2) <= count <= LLONG_MAX // 2:
        raise ReplyError("ERR value is out of range")
    z = ctx.lookup_typed(key, ZSet)
    if not z or count == 0:
        return []
    rng, n = ctx.rng(key), len(z)
    if count < 0 or count == 1:
        pairs = [z.at(rng.randrange(n)) for _ in range(abs(count))]
    elif count >= n:                 # the whole set, as Valkey walks it: from the top
        pairs = list(z.items(reverse=True))
    else:
        pairs = [z.at(i) for i in rng.sample(range(n), count)]
    return scored(pairs, withscores)
