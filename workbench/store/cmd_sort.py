"""SORT and SORT_RO: the elements of a list, set or sorted set, sorted, picked, stored.

``SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
[STORE destination]``. A pattern's first ``*`` is replaced by the element to name
another key (``weight_*``), or a hash field with ``->`` (``obj_*->weight``); ``GET #``
is the element itself; ``BY`` without ``*`` (``BY nosort``) keeps the native order.

Deviations from Valkey, for determinism (replicas and the AOF must agree, and so must
two runs): a set under ``BY nosort`` comes out sorted (Valkey returns its hash order,
and already sorts when storing or in a script); elements whose ``BY`` values tie under
``ALPHA`` are ordered by the element itself (Valkey leaves them in qsort's order).

``SORT ... STORE`` reads keys by pattern that the command table cannot name, so
replaying it could read different ones: it propagates its result instead, as
``DEL destination`` plus ``RPUSH destination elements..``.
"""

from __future__ import annotations

import math
import re
from collections import deque

from ..resp import ReplyError
from .keyspace import SYNTAX, WRONGTYPE
from .table import command
from .values import parse_int

NOT_A_SCORE = ReplyError("ERR One or more scores can't be converted into double")


def sort_keys(argv) -> list:
    """The key and the (last) STORE destination, as Valkey's ``sortGetKeys`` finds them."""
    keys, store, i = [argv[1]], None, 2
    while i < len(argv):
        word = argv[i].lower()
        if word == b"limit":
            i += 2
        elif word in (b"get", b"by"):
            i += 1
        elif word == b"store" and i + 1 < len(argv):
            store = argv[i + 1]
        i += 1
    return keys + ([store] if store is not None else [])


# strtod's decimal and hexadecimal forms, and inf/infinity (nan is refused anyway)
_STRTOD = re.compile(
    rb"[ \t\n\v\f\r]*([+-]?)(?:(0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)"
    rb"(?:[pP][+-]?[0-9]+)?)|((?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    rb"|(inf(?:inity)?))", re.IGNORECASE)


def sort_score(raw: bytes) -> float | None:
    """``raw`` as C's ``strtod`` reads it, whole; ``None`` where Valkey reports an error
    (trailing text, out of range, NaN). An empty string is 0, as strtod makes it."""
    if raw == b"":
        return 0.0
    m = _STRTOD.fullmatch(raw)
    if m is None:
        return None
    sign, hexa, decimal, infinite = m.groups()
    if infinite:
        value = math.inf
    elif hexa:
        try:
            value = float.fromhex(hexa.decode())
        except OverflowError:
            return None
    else:
        value = float(decimal)
        mantissa = re.split(rb"[eE]", decimal)[0]
        if math.isinf(value) or (value == 0.0 and mantissa.strip(b"0.")):
            return None                 # ERANGE: overflow, or underflow to zero
        if value != 0.0 and abs(value) < 2.2250738585072014e-308:
            return None                 # ERANGE: a subnormal result
    return -value if sign == b"-" else value


def lookup_by_pattern(ctx, pattern: bytes, element: bytes):
    """The string (or hash field) a ``BY``/``GET`` pattern names for ``element``; None if
    it does not exist or has another type."""
    if pattern == b"#":
        return element
    star = pattern.find(b"*")
    if star < 0:
        return None
    arrow = pattern.find(b"->", star + 1)
    field = None
    if arrow >= 0 and arrow + 2 < len(pattern):
        field, pattern = pattern[arrow + 2:], pattern[:arrow]
    key = pattern[:star] + element + pattern[star + 1:]
    value = ctx.lookup(key)
    # a key the command's own key list does not name: the commit gate must still hold
    # the reply while it is uncommitted (a dirty read otherwise)
    ctx.read_elsewhere.append((ctx.db.id, key))
    if field is not None:
        return value.get(field) if type(value) is dict else None
    return value if type(value) is bytes else None


def _long(raw: bytes) -> int:
    n = parse_int(raw)
    if n is None:
        raise ReplyError("ERR value is not an integer or out of range")
    return n


def _parse(argv, readonly: bool):
    opts = {"desc": False, "alpha": False, "by": None, "gets": [], "store": None,
            "start": 0, "count": -1}
    i = 2
    while i < len(argv):
        word, left = argv[i].lower(), len(argv) - i - 1
        if word == b"asc":
            opts["desc"] = False
        elif word == b"desc":
            opts["desc"] = True
        elif word == b"alpha":
            opts["alpha"] = True
        elif word == b"limit" and left >= 2:
            opts["start"], opts["count"] = _long(argv[i + 1]), _long(argv[i + 2])
            i += 2
        elif word == b"store" and left >= 1 and not readonly:
            opts["store"] = argv[i + 1]
            i += 1
        elif word == b"by" and left >= 1:
            opts["by"] = argv[i + 1]
            i += 1
        elif word == b"get" and left >= 1:
            opts["gets"].append(argv[i + 1])
            i += 1
        else:
            raise SYNTAX
        i += 1
    return opts


def _elements(value) -> tuple[list, str]:
    """The elements of the value to sort, in native order, and its kind."""
    if value is None:
        return [], "list"
    if type(value) is deque:
        return list(value), "list"
    if type(value) is set:
        return sorted(value), "set"
    from .zset import ZSet          # imported here: the sorted-set module loads after us
    if type(value) is ZSet:
        return [member for member, _ in value.items()], "zset"
    raise WRONGTYPE


def _window(start: int, count: int, size: int) -> tuple[int, int]:
    """LIMIT as Valkey clamps it: (start, end) inclusive, end < start when empty."""
    start = min(max(start, 0), size)
    count = min(max(count, -1), size)
    end = size - 1 if count < 0 else start + count - 1
    if start >= size:
        start, end = size - 1, size - 2
    return start, min(end, size - 1)


def _sorted(ctx, elements: list, opts) -> list:
    by, alpha = opts["by"], opts["alpha"]
    if by is None and alpha:
        order = sorted(elements)
    elif by is None:
        scores = [sort_score(e) for e in elements]
        if any(s is None for s in scores):
            raise NOT_A_SCORE
        order = [e for _, e in sorted(zip(scores, elements))]
    elif alpha:
        # a missing BY value sorts first; ties fall back to the element (deterministic)
        keyed = [(v is not None, v or b"", e) for e, v in
                 ((e, lookup_by_pattern(ctx, by, e)) for e in elements)]
        order = [e for *_, e in sorted(keyed)]
    else:
        scores = []
        for e in elements:
            raw = lookup_by_pattern(ctx, by, e)
            score = 0.0 if raw is None else sort_score(raw)
            if score is None:
                raise NOT_A_SCORE
            scores.append(score)
        order = [e for _, e in sorted(zip(scores, elements))]
    if opts["desc"]:
        order.reverse()
    return order


def _sort(ctx, argv, readonly: bool):
    opts = _parse(argv, readonly)
    elements, kind = _elements(ctx.lookup(argv[1]))
    by = opts["by"]
    dont_sort = by is not None and b"*" not in by
    if dont_sort and kind == "set":
        opts["by"], opts["alpha"] = None, True      # sets have no native order: sort them
        dont_sort = False
    if dont_sort:
        if opts["desc"]:
            elements.reverse()
    else:
        elements = _sorted(ctx, elements, opts)
    start, end = _window(opts["start"], opts["count"], len(elements))
    picked = elements[start:end + 1] if end >= start else []
    gets = opts["gets"]
    if not gets:
        rows = picked
    else:
        rows = [lookup_by_pattern(ctx, pattern, e) for e in picked for pattern in gets]
    destination = opts["store"]
    if destination is None:
        return rows
    stored = [b"" if row is None else row for row in rows]
    if stored:
        ctx.lookup(destination)          # an expired destination fires expired, as setKey does
        ctx.set_value(destination, deque(stored))
        ctx.changed(destination, "l", "sortstore")
        ctx.rewrite_as([b"DEL", destination], [b"RPUSH", destination, *stored])
    elif ctx.delete(destination):
        ctx.changed(destination, "g", "del")
        ctx.rewrite_as([b"DEL", destination])
    return len(stored)


@command("SORT", -2, "write denyoom movablekeys", 1, 1, 1, group="generic",
         find_keys=sort_keys)
def sort(ctx, argv):
    """Sort a list, set or sorted set; optionally look values up by pattern, or store."""
    return _sort(ctx, argv, readonly=False)


@command("SORT_RO", -2, "readonly movablekeys", 1, 1, 1, group="generic", since="7.0.0")
def sort_ro(ctx, argv):
    """SORT without STORE: a read-only command, allowed on replicas."""
    return _sort(ctx, argv, readonly=True)
