"""List commands: a key holding a deque of elements, head on the left."""

from __future__ import annotations

from collections import deque
from itertools import islice

from ..resp import NULL_ARRAY, ReplyError
from .keyspace import NOT_INTEGER
from .table import command
from .values import parse_int


def _push(ctx, argv, left: bool, only_existing: bool) -> int:
    key = argv[1]
    items = ctx.lookup_typed(key, deque)
    if items is None:
        if only_existing:
            return 0
        items = deque()
        ctx.set_value(key, items)
    if left:
        items.extendleft(argv[2:])      # each goes to the head in turn, as in Valkey
    else:
        items.extend(argv[2:])
    ctx.changed(key, "l", "lpush" if left else "rpush")
    return len(items)


@command("LPUSH", -3, "write denyoom fast", 1, 1, 1, group="list")
def lpush(ctx, argv):
    """Prepend elements to a list (creating it); return its new length."""
    return _push(ctx, argv, left=True, only_existing=False)


@command("RPUSH", -3, "write denyoom fast", 1, 1, 1, group="list")
def rpush(ctx, argv):
    """Append elements to a list (creating it); return its new length."""
    return _push(ctx, argv, left=False, only_existing=False)


@command("LPUSHX", -3, "write denyoom fast", 1, 1, 1, group="list", since="2.2.0")
def lpushx(ctx, argv):
    """Prepend elements to a list only when it exists."""
    return _push(ctx, argv, left=True, only_existing=True)


@command("RPUSHX", -3, "write denyoom fast", 1, 1, 1, group="list", since="2.2.0")
def rpushx(ctx, argv):
    """Append elements to a list only when it exists."""
    return _push(ctx, argv, left=False, only_existing=True)


def _pop(ctx, argv, left: bool):
    name = "lpop" if left else "rpop"
    if len(argv) > 3:
        raise ReplyError(f"ERR wrong number of arguments for '{name}' command")
    count = None
    if len(argv) == 3:
        count = parse_int(argv[2])
        if count is None:
            raise NOT_INTEGER
        if count < 0:
            raise ReplyError("ERR value is out of range, must be positive")
    key = argv[1]
    items = ctx.lookup_typed(key, deque)
    if items is None:
        return None if count is None else NULL_ARRAY
    if count == 0:
        return []
    take = items.popleft if left else items.pop
    reply = take() if count is None else [take() for _ in range(min(count, len(items)))]
    ctx.changed(key, "l", name)
    ctx.delete_if_empty(key, items)
    return reply


@command("LPOP", -2, "write fast", 1, 1, 1, group="list")
def lpop(ctx, argv):
    """Remove and return the first element(s) of a list."""
    return _pop(ctx, argv, left=True)


@command("RPOP", -2, "write fast", 1, 1, 1, group="list")
def rpop(ctx, argv):
    """Remove and return the last element(s) of a list."""
    return _pop(ctx, argv, left=False)


def _index_arg(raw: bytes) -> int:
    n = parse_int(raw)
    if n is None:
        raise NOT_INTEGER
    return n


@command("LRANGE", 4, "readonly", 1, 1, 1, group="list")
def lrange(ctx, argv):
    """Elements of a list between two inclusive indexes (negative from the tail)."""
    start, stop = _index_arg(argv[2]), _index_arg(argv[3])
    items = ctx.lookup_typed(argv[1], deque)
    if items is None:
        return []
    n = len(items)
    if start < 0:
        start = max(start + n, 0)
    if stop < 0:
        stop += n
    stop = min(stop, n - 1)
    if start > stop:
        return []
    return list(islice(items, start, stop + 1))


@command("LLEN", 2, "readonly fast", 1, 1, 1, group="list")
def llen(ctx, argv):
    """The length of a list."""
    items = ctx.lookup_typed(argv[1], deque)
    return 0 if items is None else len(items)


@command("LINDEX", 3, "readonly", 1, 1, 1, group="list")
def lindex(ctx, argv):
    """The element of a list at an index (negative from the tail)."""
    items = ctx.lookup_typed(argv[1], deque)
    if items is None:
        return None
    index = _index_arg(argv[2])
    if not -len(items) <= index < len(items):
        return None
    return items[index]
