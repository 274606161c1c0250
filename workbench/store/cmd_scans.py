"""Cursor scans inside one collection: HSCAN, SSCAN and ZSCAN.

They work as the keyspace ``SCAN`` does (see ``cmd_keys``): an element's place in the
scan order depends on the element alone, and the cursor is the next place to visit, so
an element present from the first call to the last is returned at least once however
the collection changes in between; one added or removed meanwhile may or may not be.
Valkey promises the same; it differs in order and batch size (a small collection in its
compact encoding comes back whole, whatever the cursor).

As in Valkey, the cursor is checked first, then the key and its type, then the options:
a missing key answers an empty scan whatever follows its cursor.
"""

from __future__ import annotations

from ..resp import ReplyError
from .cmd_keys import scan_step
from .glob import compile_glob
from .keyspace import NOT_INTEGER, SYNTAX
from .table import command
from .values import parse_int
from .zset import ZSet, score_text

INVALID_CURSOR = ReplyError("ERR invalid cursor")
_CURSOR_LIMIT = 2**64


def parse_cursor(raw: bytes) -> int:
    """A cursor as Valkey's ``strtoul`` reads it: a sign, decimal digits, modulo 2**64."""
    if not raw:
        return 0            # strtoul reads nothing and stops at the end: cursor 0
    digits = raw[1:] if raw[:1] in (b"+", b"-") else raw
    if not digits.isdigit() or int(digits) >= _CURSOR_LIMIT:
        raise INVALID_CURSOR
    return -int(digits) % _CURSOR_LIMIT if raw[:1] == b"-" else int(digits)


def scan_options(argv, first: int):
    """``COUNT`` (a positive integer, 10 by default) and ``MATCH`` (``None`` = everything)."""
    count, matches = 10, None
    for i in range(first, len(argv), 2):
        opt = argv[i].upper()
        if opt not in (b"COUNT", b"MATCH") or i + 1 >= len(argv):
            raise SYNTAX
        if opt == b"COUNT":
            count = parse_int(argv[i + 1])
            if count is None:
                raise NOT_INTEGER
            if count < 1:
                raise SYNTAX
        else:
            matches = None if argv[i + 1] == b"*" else compile_glob(argv[i + 1])
    return count, matches


def _scan(ctx, argv, kind: type):
    """The next cursor, the collection at the key and the matching elements of this step."""
    cursor = parse_cursor(argv[2])
    collection = ctx.lookup_typed(argv[1], kind)
    if collection is None:
        return b"0", None, []
    count, matches = scan_options(argv, 3)
    cursor, batch = scan_step(collection, cursor, count)
    return b"%d" % cursor, collection, [e for e in batch if matches is None or matches(e)]


@command("HSCAN", -3, "readonly", 1, 1, 1, group="hash", since="2.8.0")
def hscan(ctx, argv):
    """Iterate the fields and values of a hash incrementally, from a cursor."""
    cursor, h, fields = _scan(ctx, argv, dict)
    return [cursor, [x for field in fields for x in (field, h[field])]]


@command("SSCAN", -3, "readonly", 1, 1, 1, group="set", since="2.8.0")
def sscan(ctx, argv):
    """Iterate the members of a set incrementally, from a cursor."""
    cursor, _, members = _scan(ctx, argv, set)
    return [cursor, members]


@command("ZSCAN", -3, "readonly", 1, 1, 1, group="sorted-set", since="2.8.0")
def zscan(ctx, argv):
    """Iterate the members and scores of a sorted set incrementally, from a cursor."""
    cursor, z, members = _scan(ctx, argv, ZSet)
    return [cursor, [x for member in members for x in (member, score_text(z.score(member)))]]
