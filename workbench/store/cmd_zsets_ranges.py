"""Sorted set ranges: by rank, by score or by member (lexicographic).

ZRANGE with BYSCORE/BYLEX/REV/LIMIT/WITHSCORES, ZRANGESTORE and the legacy forms
(ZREVRANGE, Z[REV]RANGEBYSCORE, Z[REV]RANGEBYLEX) share one parser, as in Valkey's
``zrangeGenericCommand``; ZCOUNT, ZLEXCOUNT and ZREMRANGEBYRANK/SCORE/LEX use the same
range arguments:

* ranks are 0-based, negative ones count from the end (-1 is the last member);
* a score bound is a double, ``-inf``/``+inf`` included, and ``(`` makes it exclusive;
* a lex bound is ``[member`` (inclusive), ``(member`` (exclusive), ``-`` or ``+``.
"""

from __future__ import annotations

from ..resp import ReplyError
from .cmd_zsets import long_arg, scored, store_zset, strtod
from .keyspace import SYNTAX
from .table import command
from .zset import LEX_MAX, LEX_MIN, ZSet

RANGE_NOT_FLOAT = ReplyError("ERR min or max is not a float")
RANGE_NOT_LEX = ReplyError("ERR min or max not valid string range item")
_WHITESPACE = b" \t\n\v\f\r"


def _range_bound(raw: bytes):
    """One end of a score range, ``(value, open)``: ``(`` makes it open. As Valkey's
    ``zslParseRange`` (plain strtod) leading spaces pass, "" reads as 0, overflow as inf."""
    is_open = raw[:1] == b"("
    text = raw[1:] if is_open else raw
    if text:
        text = text.lstrip(_WHITESPACE)
        parsed = strtod(text) if text else None
        if parsed is None:
            raise RANGE_NOT_FLOAT
        return parsed[0], is_open
    return 0.0, is_open


def score_range(raw_min: bytes, raw_max: bytes):
    low, low_open = _range_bound(raw_min)
    high, high_open = _range_bound(raw_max)
    return low, low_open, high, high_open


def _lex_bound(raw: bytes):
    first = raw[:1]
    if first in (b"+", b"-"):
        if len(raw) != 1:
            raise RANGE_NOT_LEX
        return (LEX_MAX if first == b"+" else LEX_MIN), True
    if first == b"(":
        return raw[1:], True
    if first == b"[":
        return raw[1:], False
    raise RANGE_NOT_LEX


def lex_range(raw_min: bytes, raw_max: bytes):
    low, low_open = _lex_bound(raw_min)
    high, high_open = _lex_bound(raw_max)
    return low, low_open, high, high_open


@command("ZCOUNT", 4, "readonly fast", 1, 1, 1, group="sorted-set", since="2.0.0")
def zcount(ctx, argv):
    """How many members have scores in a range (``(`` excludes an end)."""
    bounds = score_range(argv[2], argv[3])
    z = ctx.lookup_typed(argv[1], ZSet)
    if z is None:
        return 0
    lo, hi = z.score_span(*bounds)
    return hi - lo


@command("ZLEXCOUNT", 4, "readonly fast", 1, 1, 1, group="sorted-set", since="2.8.9")
def zlexcount(ctx, argv):
    """How many members are in a lexicographic range (``[a``, ``(a``, ``-``, ``+``)."""
    bounds = lex_range(argv[2], argv[3])
    z = ctx.lookup_typed(argv[1], ZSet)
    if z is None:
        return 0
    lo, hi = z.lex_span(*bounds)
    return hi - lo


# -- ranges ----------------------------------------------------------------------------------
RANK, SCORE, LEX = "rank", "score", "lex"


def _range_pairs(z: ZSet, rangetype: str, bounds, reverse: bool, offset: int, limit: int):
    """The (member, score) pairs a range selects, in reply order."""
    n = len(z)
    if rangetype == RANK:
        start, end = bounds
        if start < 0:
            start += n
        if end < 0:
            end += n
        start = max(start, 0)
        if start > end or start >= n:
            return []
        end = min(end, n - 1)
        if reverse:
            return list(z.items(n - 1 - end, n - start, reverse=True))
        return list(z.items(start, end + 1))
    if offset < 0 or (rangetype == SCORE and offset > 0 and offset >= n):
        return []        # a negative offset walks off the end in Valkey's loop
    lo, hi = (z.score_span(*bounds) if rangetype == SCORE
              else z.lex_span(*bounds, reverse=reverse))
    take = hi - lo - offset
    if take <= 0:
        return []
    if 0 <= limit < take:
        take = limit
    if reverse:
        return list(z.items(hi - offset - take, hi - offset, reverse=True))
    return list(z.items(lo + offset, lo + offset + take))


def _zrange(ctx, argv, src: int, store: bool, rangetype: str | None = None,
            reverse: bool | None = None):
    """ZRANGE, ZRANGESTORE and the legacy range commands, as Valkey's
    ``zrangeGenericCommand``: ``argv[src]`` is the source key, then min and max."""
    withscores, offset, limit = False, 0, -1
    j = src + 3
    while j < len(argv):
        opt = argv[j].upper()
        if not store and opt == b"WITHSCORES":
            withscores = True
        elif opt == b"LIMIT" and len(argv) - j - 1 >= 2:
            offset, limit = long_arg(argv[j + 1]), long_arg(argv[j + 2])
            j += 2
        elif reverse is None and opt == b"REV":
            reverse = True
        elif rangetype is None and opt == b"BYLEX":
            rangetype = LEX
        elif rangetype is None and opt == b"BYSCORE":
            rangetype = SCORE
        else:
            raise SYNTAX
        j += 1
    reverse = bool(reverse)
    rangetype = rangetype or RANK
    if limit != -1 and rangetype == RANK:
        raise ReplyError("ERR syntax error, LIMIT is only supported in combination with "
                         "either BYSCORE or BYLEX")
    if withscores and rangetype == LEX:
        raise ReplyError("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    low, high = argv[src + 1], argv[src + 2]
    if reverse and rangetype != RANK:
        low, high = high, low                # given as max, min
    if rangetype == RANK:
        bounds = (long_arg(low), long_arg(high))
    elif rangetype == SCORE:
        bounds = score_range(low, high)
    else:
        bounds = lex_range(low, high)
    z = ctx.lookup_typed(argv[src], ZSet)
    pairs = [] if z is None else _range_pairs(z, rangetype, bounds, reverse, offset, limit)
    if store:
        return store_zset(ctx, argv[1], ZSet(pairs), "zrangestore")
    return scored(pairs, withscores)


@command("ZRANGE", -4, "readonly", 1, 1, 1, group="sorted-set", since="1.2.0")
def zrange(ctx, argv):
    """Members in a range of ranks, scores (BYSCORE) or members (BYLEX) [REV] [LIMIT]."""
    return _zrange(ctx, argv, 1, False)


@command("ZRANGESTORE", -5, "write denyoom", 1, 2, 1, group="sorted-set", since="6.2.0")
def zrangestore(ctx, argv):
    """Store a ZRANGE selection in a key; return its size."""
    return _zrange(ctx, argv, 2, True)


@command("ZREVRANGE", -4, "readonly", 1, 1, 1, group="sorted-set", since="1.2.0")
def zrevrange(ctx, argv):
    """Members in a range of ranks, highest score first."""
    return _zrange(ctx, argv, 1, False, RANK, True)


@command("ZRANGEBYSCORE", -4, "readonly", 1, 1, 1, group="sorted-set", since="1.0.5")
def zrangebyscore(ctx, argv):
    """Members with scores in a range, lowest first."""
    return _zrange(ctx, argv, 1, False, SCORE, False)


@command("ZREVRANGEBYSCORE", -4, "readonly", 1, 1, 1, group="sorted-set", since="2.2.0")
def zrevrangebyscore(ctx, argv):
    """Members with scores in a range (given max first), highest first."""
    return _zrange(ctx, argv, 1, False, SCORE, True)


@command("ZRANGEBYLEX", -4, "readonly", 1, 1, 1, group="sorted-set", since="2.8.9")
def zrangebylex(ctx, argv):
    """Members in a lexicographic range (for members sharing one score)."""
    return _zrange(ctx, argv, 1, False, LEX, False)


@command("ZREVRANGEBYLEX", -4, "readonly", 1, 1, 1, group="sorted-set", since="2.8.9")
def zrevrangebylex(ctx, argv):
    """Members in a lexicographic range (given max first), highest first."""
    return _zrange(ctx, argv, 1, False, LEX, True)


def _zremrange(ctx, argv, rangetype: str, event: str):
    if rangetype == RANK:
        bounds = (long_arg(argv[2]), long_arg(argv[3]))
    elif rangetype == SCORE:
        bounds = score_range(argv[2], argv[3])
    else:
        bounds = lex_range(argv[2], argv[3])
    key = argv[1]
    z = ctx.lookup_typed(key, ZSet)
    if z is None:
        return 0
    if rangetype == RANK:
        n = len(z)
        start, end = bounds
        start, end = start + n if start < 0 else start, end + n if end < 0 else end
        start = max(start, 0)
        if start > end or start >= n:
            return 0
        lo, hi = start, min(end, n - 1) + 1
    elif rangetype == SCORE:
        lo, hi = z.score_span(*bounds)
    else:
        lo, hi = z.lex_span(*bounds)
    removed = z.remove_span(lo, hi)
    if removed:
        ctx.changed(key, "z", event)
        ctx.delete_if_empty(key, z)
    return removed


@command("ZREMRANGEBYRANK", 4, "write", 1, 1, 1, group="sorted-set", since="2.0.0")
def zremrangebyrank(ctx, argv):
    """Remove the members in a range of ranks; return how many went."""
    return _zremrange(ctx, argv, RANK, "zremrangebyrank")


@command("ZREMRANGEBYSCORE", 4, "write", 1, 1, 1, group="sorted-set", since="1.2.0")
def zremrangebyscore(ctx, argv):
    """Remove the members with scores in a range; return how many went."""
    return _zremrange(ctx, argv, SCORE, "zremrangebyscore")


@command("ZREMRANGEBYLEX", 4, "write", 1, 1, 1, group="sorted-set", since="2.8.9")
def zremrangebylex(ctx, argv):
    """Remove the members in a lexicographic range; return how many went."""
    return _zremrange(ctx, argv, LEX, "zremrangebylex")
