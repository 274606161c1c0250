"""List commands: a key holding a deque of elements, head on the left."""

from __future__ import annotations

from collections import deque
from itertools import islice

from ..resp import NULL_ARRAY, OK, ReplyError
from .keyspace import NOT_INTEGER, SYNTAX
from .table import command
from .values import negatable_count, parse_int, parse_multi_pop

NO_SUCH_KEY = ReplyError("ERR no such key")
INDEX_OUT_OF_RANGE = ReplyError("ERR index out of range")
RANK_ZERO = ReplyError("ERR RANK can't be zero: use 1 to start from the first match, 2 from the "
                       "second ... or use negative to start from the end of the list")


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


def _slice(start: int, stop: int, n: int) -> tuple[int, int]:
    """Inclusive indexes (negative from the tail) as the slice [begin, end) they select."""
    begin = max(start + n, 0) if start < 0 else start
    end = min(stop + n if stop < 0 else stop, n - 1) + 1
    return (begin, end) if begin < end else (n, n)


@command("LRANGE", 4, "readonly", 1, 1, 1, group="list")
def lrange(ctx, argv):
    """Elements of a list between two inclusive indexes (negative from the tail)."""
    start, stop = _index_arg(argv[2]), _index_arg(argv[3])
    items = ctx.lookup_typed(argv[1], deque)
    if items is None:
        return []
    return list(islice(items, *_slice(start, stop, len(items))))


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


@command("LSET", 4, "write denyoom", 1, 1, 1, group="list")
def lset(ctx, argv):
    """Replace the element of a list at an index (negative from the tail)."""
    items = ctx.lookup_typed(argv[1], deque)
    if items is None:
        raise NO_SUCH_KEY
    index = _index_arg(argv[2])
    if not -len(items) <= index < len(items):
        raise INDEX_OUT_OF_RANGE
    items[index] = argv[3]
    ctx.changed(argv[1], "l", "lset")
    return OK


@command("LTRIM", 4, "write", 1, 1, 1, group="list")
def ltrim(ctx, argv):
    """Keep only the elements of a list between two inclusive indexes."""
    key = argv[1]
    start, stop = _index_arg(argv[2]), _index_arg(argv[3])
    items = ctx.lookup_typed(key, deque)
    if items is None:
        return OK
    begin, end = _slice(start, stop, len(items))
    from_head, from_tail = begin, len(items) - end
    for _ in range(from_head):
        items.popleft()
    for _ in range(from_tail):
        items.pop()
    if from_head or from_tail:
        ctx.changed(key, "l", "ltrim")
    else:       # Valkey fires the event even when nothing goes, but counts no change
        ctx.events.append(("l", "ltrim", ctx.db.id, key))
    ctx.delete_if_empty(key, items)
    return OK


@command("LREM", 4, "write", 1, 1, 1, group="list")
def lrem(ctx, argv):
    """Remove count occurrences of an element (from the tail if negative, all if 0)."""
    key, element = argv[1], argv[3]
    count = negatable_count(argv[2])
    items = ctx.lookup_typed(key, deque)
    if items is None:
        return 0
    limit = abs(count) or len(items)
    scan = reversed(items) if count < 0 else items
    kept, removed = [], 0
    for item in scan:
        if item == element and removed < limit:
            removed += 1
        else:
            kept.append(item)
    if not removed:
        return 0
    items.clear()
    items.extend(reversed(kept) if count < 0 else kept)
    ctx.changed(key, "l", "lrem")
    ctx.delete_if_empty(key, items)
    return removed


@command("LINSERT", 5, "write denyoom", 1, 1, 1, group="list", since="2.2.0")
def linsert(ctx, argv):
    """Insert an element before or after the first occurrence of a pivot element."""
    where = argv[2].upper()
    if where not in (b"BEFORE", b"AFTER"):
        raise SYNTAX
    items = ctx.lookup_typed(argv[1], deque)
    if items is None:
        return 0
    try:
        index = items.index(argv[3])
    except ValueError:
        return -1
    items.insert(index if where == b"BEFORE" else index + 1, argv[4])
    ctx.changed(argv[1], "l", "linsert")
    return len(items)


def _non_negative(raw: bytes, name: str) -> int:
    n = parse_int(raw)
    if n is None or n < 0:
        raise ReplyError(f"ERR {name} can't be negative")
    return n


@command("LPOS", -3, "readonly", 1, 1, 1, group="list", since="6.0.6")
def lpos(ctx, argv):
    """Indexes of the matches of an element in a list, by RANK, COUNT and MAXLEN."""
    rank, count, maxlen = 1, None, 0
    i = 3
    while i < len(argv):
        option = argv[i].upper()
        if i + 1 >= len(argv) or option not in (b"RANK", b"COUNT", b"MAXLEN"):
            raise SYNTAX
        if option == b"RANK":
            rank = negatable_count(argv[i + 1])
            if rank == 0:
                raise RANK_ZERO
        elif option == b"COUNT":
            count = _non_negative(argv[i + 1], "COUNT")
        else:
            maxlen = _non_negative(argv[i + 1], "MAXLEN")
        i += 2
    items = ctx.lookup_typed(argv[1], deque)
    if items is None:
        return None if count is None else []
    n, element = len(items), argv[2]
    scan = enumerate(reversed(items) if rank < 0 else items)
    found, skip = [], abs(rank) - 1
    for scanned, item in islice(scan, maxlen or None):
        if item != element:
            continue
        if skip:
            skip -= 1
            continue
        found.append(n - scanned - 1 if rank < 0 else scanned)
        if count is None or len(found) == count:
            break
    if count is None:
        return found[0] if found else None
    return found


def _end(raw: bytes) -> bool:
    """LEFT (the head) or RIGHT (the tail); true for LEFT."""
    end = raw.upper()
    if end not in (b"LEFT", b"RIGHT"):
        raise SYNTAX
    return end == b"LEFT"


def _move(ctx, argv, from_left: bool, to_left: bool):
    source, destination = argv[1], argv[2]
    items = ctx.lookup_typed(source, deque)
    if items is None:
        return None
    target = ctx.lookup_typed(destination, deque)
    if target is None:
        target = deque()
        ctx.set_value(destination, target)
    element = items.popleft() if from_left else items.pop()
    if to_left:
        target.appendleft(element)
    else:
        target.append(element)
    ctx.changed(destination, "l", "lpush" if to_left else "rpush")
    ctx.changed(source, "l", "lpop" if from_left else "rpop")
    ctx.delete_if_empty(source, items)
    return element


@command("LMOVE", 5, "write denyoom", 1, 2, 1, group="list", since="6.2.0")
def lmove(ctx, argv):
    """Pop an element from one end of a list and push it onto an end of another."""
    return _move(ctx, argv, _end(argv[3]), _end(argv[4]))


@command("RPOPLPUSH", 3, "write denyoom", 1, 2, 1, group="list", since="1.2.0")
def rpoplpush(ctx, argv):
    """Pop the last element of a list and push it onto the head of another."""
    return _move(ctx, argv, from_left=False, to_left=True)


def parse_lmpop(argv, numkeys_at: int):
    """LMPOP's (and BLMPOP's) arguments: (keys, from the head?, count)."""
    return parse_multi_pop(argv, numkeys_at, (b"LEFT", b"RIGHT"))


def lmpop_keys(argv, numkeys_at: int = 1) -> list:
    """The keys of ``LMPOP numkeys key..`` (Valkey finds them through numkeys)."""
    return list(argv[numkeys_at + 1:numkeys_at + 1 + int(argv[numkeys_at])])


def pop_from(ctx, key: bytes, items: deque, left: bool, count: int) -> list:
    """Pop up to ``count`` elements of the list at ``key`` from one end; propagated as the
    ``LPOP``/``RPOP key n`` it amounted to, as Valkey propagates LMPOP and BLMPOP."""
    take = items.popleft if left else items.pop
    popped = [take() for _ in range(min(count, len(items)))]
    ctx.changed(key, "l", "lpop" if left else "rpop")
    ctx.delete_if_empty(key, items)
    ctx.rewrite_as([b"LPOP" if left else b"RPOP", key, b"%d" % len(popped)])
    return popped


@command("LMPOP", -4, "write movablekeys", 0, 0, 0, group="list", since="7.0.0",
         find_keys=lmpop_keys)
def lmpop(ctx, argv):
    """Pop elements from the first non-empty of several lists: [key, [element..]]."""
    keys, left, count = parse_lmpop(argv, 1)
    for key in keys:
        items = ctx.lookup_typed(key, deque)
        if items is not None:
            return [key, pop_from(ctx, key, items, left, count)]
    return NULL_ARRAY
