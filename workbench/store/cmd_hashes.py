"""Hash commands: a key holding a dict of fields to values."""

from __future__ import annotations

from decimal import Decimal

from ..resp import OK, Map, Pairs, ReplyError
from .cmd_strings import NOT_FLOAT, OVERFLOW, add_floats, float_text, parse_float
from .keyspace import NOT_INTEGER, SYNTAX
from .table import command
from .values import LLONG_MAX, LLONG_MIN, negatable_count, parse_int


def _hash_for_write(ctx, key: bytes) -> dict:
    """The hash at ``key``, created empty if missing."""
    h = ctx.lookup_typed(key, dict)
    if h is None:
        h = {}
        ctx.set_value(key, h)
    return h


def _set_fields(ctx, argv, name: str) -> int:
    if len(argv) % 2:
        raise ReplyError(f"ERR wrong number of arguments for '{name}' command")
    key = argv[1]
    h = _hash_for_write(ctx, key)
    before = len(h)
    for i in range(2, len(argv), 2):
        h[argv[i]] = argv[i + 1]
    ctx.changed(key, "h", "hset")
    return len(h) - before


@command("HSET", -4, "write denyoom fast", 1, 1, 1, group="hash", since="2.0.0")
def hset(ctx, argv):
    """Set fields of a hash; return how many fields were new."""
    return _set_fields(ctx, argv, "hset")


@command("HMSET", -4, "write denyoom fast", 1, 1, 1, group="hash", since="2.0.0")
def hmset(ctx, argv):
    """Set fields of a hash (the older form of HSET, replying OK)."""
    _set_fields(ctx, argv, "hmset")
    return OK


@command("HSETNX", 4, "write denyoom fast", 1, 1, 1, group="hash", since="2.0.0")
def hsetnx(ctx, argv):
    """Set a field of a hash only when the field does not exist."""
    key, field = argv[1], argv[2]
    h = ctx.lookup_typed(key, dict)
    if h is not None and field in h:
        return 0
    _hash_for_write(ctx, key)[field] = argv[3]
    ctx.changed(key, "h", "hset")
    return 1


@command("HGET", 3, "readonly fast", 1, 1, 1, group="hash", since="2.0.0")
def hget(ctx, argv):
    """The value of a field of a hash."""
    h = ctx.lookup_typed(argv[1], dict)
    return None if h is None else h.get(argv[2])


@command("HMGET", -3, "readonly fast", 1, 1, 1, group="hash", since="2.0.0")
def hmget(ctx, argv):
    """The values of several fields of a hash (nil for missing ones)."""
    h = ctx.lookup_typed(argv[1], dict) or {}
    return [h.get(field) for field in argv[2:]]


@command("HDEL", -3, "write fast", 1, 1, 1, group="hash", since="2.0.0")
def hdel(ctx, argv):
    """Delete fields of a hash; return how many existed."""
    key = argv[1]
    h = ctx.lookup_typed(key, dict)
    if h is None:
        return 0
    removed = 0
    for field in argv[2:]:
        if h.pop(field, None) is not None:
            removed += 1
    if removed:
        ctx.changed(key, "h", "hdel")
        ctx.delete_if_empty(key, h)
    return removed


@command("HGETALL", 2, "readonly", 1, 1, 1, group="hash", since="2.0.0")
def hgetall(ctx, argv):
    """All fields and values of a hash."""
    return Map(ctx.lookup_typed(argv[1], dict) or ())


@command("HKEYS", 2, "readonly", 1, 1, 1, group="hash", since="2.0.0")
def hkeys(ctx, argv):
    """All field names of a hash."""
    return list(ctx.lookup_typed(argv[1], dict) or ())


@command("HVALS", 2, "readonly", 1, 1, 1, group="hash", since="2.0.0")
def hvals(ctx, argv):
    """All values of a hash."""
    h = ctx.lookup_typed(argv[1], dict)
    return [] if h is None else list(h.values())


@command("HLEN", 2, "readonly fast", 1, 1, 1, group="hash", since="2.0.0")
def hlen(ctx, argv):
    """The number of fields of a hash."""
    h = ctx.lookup_typed(argv[1], dict)
    return 0 if h is None else len(h)


@command("HEXISTS", 3, "readonly fast", 1, 1, 1, group="hash", since="2.0.0")
def hexists(ctx, argv):
    """Whether a field exists in a hash."""
    h = ctx.lookup_typed(argv[1], dict)
    return int(h is not None and argv[2] in h)


@command("HSTRLEN", 3, "readonly fast", 1, 1, 1, group="hash", since="3.2.0")
def hstrlen(ctx, argv):
    """The length of the value of a field of a hash."""
    h = ctx.lookup_typed(argv[1], dict)
    return 0 if h is None else len(h.get(argv[2], b""))


@command("HINCRBY", 4, "write denyoom fast", 1, 1, 1, group="hash", since="2.0.0")
def hincrby(ctx, argv):
    """Increment the integer value of a field of a hash."""
    key, field = argv[1], argv[2]
    delta = parse_int(argv[3])
    if delta is None:
        raise NOT_INTEGER
    h = ctx.lookup_typed(key, dict)
    old = None if h is None else h.get(field)
    n = 0 if old is None else parse_int(old)
    if n is None:
        raise ReplyError("ERR hash value is not an integer")
    n += delta
    if not LLONG_MIN <= n <= LLONG_MAX:
        raise OVERFLOW
    _hash_for_write(ctx, key)[field] = b"%d" % n
    ctx.changed(key, "h", "hincrby")
    return n


@command("HINCRBYFLOAT", 4, "write denyoom fast", 1, 1, 1, group="hash", since="2.6.0")
def hincrbyfloat(ctx, argv):
    """Increment the floating point value of a field of a hash."""
    key, field = argv[1], argv[2]
    delta = parse_float(argv[3])
    if delta is None:
        raise NOT_FLOAT
    h = ctx.lookup_typed(key, dict)
    old = None if h is None else h.get(field)
    base = Decimal(0) if old is None else parse_float(old)
    if base is None:
        raise ReplyError("ERR hash value is not a float")
    text = float_text(add_floats(base, delta))
    _hash_for_write(ctx, key)[field] = text
    ctx.changed(key, "h", "hincrbyfloat")
    ctx.rewrite_as([b"HSET", key, field, text])
    return text


@command("HRANDFIELD", -2, "readonly", 1, 1, 1, group="hash", since="6.2.0")
def hrandfield(ctx, argv):
    """Random fields of a hash: distinct for a positive count, repeating for a negative one."""
    key = argv[1]
    count = None
    if len(argv) > 2:
        count = negatable_count(argv[2])
        if len(argv) > 4 or (len(argv) == 4 and argv[3].upper() != b"WITHVALUES"):
            raise SYNTAX
        if len(argv) == 4 and abs(count) > LLONG_MAX // 2:
            raise ReplyError("ERR value is out of range")
    h = ctx.lookup_typed(key, dict)
    if not h:
        return None if count is None else []
    rng = ctx.rng(key)
    fields = list(h)
    if count is None:
        return rng.choice(fields)
    if count >= len(fields):
        picked = fields                 # the whole hash, in its own order, as Valkey
    elif count >= 0:
        picked = rng.sample(fields, count)
    else:
        picked = rng.choices(fields, k=-count)
    if len(argv) == 4:      # WITHVALUES: [field, value] pairs (flat in RESP2)
        return Pairs([(field, h[field]) for field in picked])
    return picked
