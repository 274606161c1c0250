"""String commands."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

from ..resp import OK, ReplyError
from .keyspace import NOT_INTEGER, SYNTAX, WRONGTYPE
from .table import command
from .values import LLONG_MAX, LLONG_MIN, parse_int

_MAX_EXPIRE_MS = 2**63 - 1
_MAX_STRING = 512 * 1024 * 1024     # proto-max-bulk-len
OVERFLOW = ReplyError("ERR increment or decrement would overflow")
NOT_FLOAT = ReplyError("ERR value is not a valid float")
NAN_OR_INF = ReplyError("ERR increment would produce NaN or Infinity")
STRING_TOO_LONG = ReplyError("ERR string exceeds maximum allowed size (proto-max-bulk-len)")


def invalid_expire(name: str) -> ReplyError:
    return ReplyError(f"ERR invalid expire time in '{name}' command")


def _expire_arg(ctx, unit: bytes, raw: bytes, name: str = "set") -> int:
    """Absolute expiry in ms for ``EX|PX|EXAT|PXAT raw``, with Valkey's errors."""
    n = parse_int(raw)
    if n is None:
        raise NOT_INTEGER
    if n <= 0:
        raise invalid_expire(name)
    unit = unit.upper()
    if unit in (b"EX", b"EXAT"):
        if n > _MAX_EXPIRE_MS // 1000:
            raise invalid_expire(name)
        n *= 1000
    if unit in (b"EX", b"PX"):
        if n > _MAX_EXPIRE_MS - ctx.now_ms:
            raise invalid_expire(name)
        n += ctx.now_ms
    return n


@command("GET", 2, "readonly fast", 1, 1, 1, group="string")
def get(ctx, argv):
    """Get the value of a key."""
    return ctx.lookup_typed(argv[1], bytes)


@command("SET", -3, "write denyoom", 1, 1, 1, group="string")
def set_(ctx, argv):
    """Set the string value of a key, optionally only if (not) present, with an expiry."""
    key, value = argv[1], argv[2]
    nx = xx = get_old = keep_ttl = False
    expire_at = None
    i = 3
    while i < len(argv):
        opt = argv[i].upper()
        if opt == b"NX" and not xx:
            nx = True
        elif opt == b"XX" and not nx:
            xx = True
        elif opt == b"GET":
            get_old = True
        elif opt == b"KEEPTTL" and expire_at is None:
            keep_ttl = True
        elif opt in (b"EX", b"PX", b"EXAT", b"PXAT") and expire_at is None and not keep_ttl \
                and i + 1 < len(argv):
            expire_at = _expire_arg(ctx, opt, argv[i + 1])
            i += 1
        else:
            raise SYNTAX
        i += 1
    old = ctx.lookup(key)
    if get_old and old is not None and type(old) is not bytes:
        raise WRONGTYPE
    if (nx and old is not None) or (xx and old is None):
        return old if get_old else None
    ctx.set_value(key, value, keep_ttl=keep_ttl)
    if expire_at is not None:
        ctx.db.expires[key] = expire_at
    ctx.changed(key, "$", "set")
    if expire_at is not None:
        ctx.events.append(("g", "expire", ctx.db.id, key))
        ctx.rewrite_as([b"SET", key, value, b"PXAT", b"%d" % expire_at])
    elif get_old:
        ctx.rewrite_as([b"SET", key, value] + ([b"KEEPTTL"] if keep_ttl else []))
    return old if get_old else OK


def _set_expiring(ctx, key, value, expire_at):
    ctx.set_value(key, value)
    ctx.db.expires[key] = expire_at
    ctx.changed(key, "$", "set")
    ctx.events.append(("g", "expire", ctx.db.id, key))
    ctx.rewrite_as([b"SET", key, value, b"PXAT", b"%d" % expire_at])
    return OK


@command("SETEX", 4, "write denyoom", 1, 1, 1, group="string", since="2.0.0")
def setex(ctx, argv):
    """Set the string value and the expiry in seconds of a key."""
    return _set_expiring(ctx, argv[1], argv[3], _expire_arg(ctx, b"EX", argv[2], "setex"))


@command("PSETEX", 4, "write denyoom", 1, 1, 1, group="string", since="2.6.0")
def psetex(ctx, argv):
    """Set the string value and the expiry in milliseconds of a key."""
    return _set_expiring(ctx, argv[1], argv[3], _expire_arg(ctx, b"PX", argv[2], "psetex"))


@command("SETNX", 3, "write denyoom fast", 1, 1, 1, group="string")
def setnx(ctx, argv):
    """Set the string value of a key only when the key does not exist."""
    key = argv[1]
    if ctx.lookup(key) is not None:
        return 0
    ctx.set_value(key, argv[2])
    ctx.changed(key, "$", "set")
    return 1


@command("GETSET", 3, "write denyoom fast", 1, 1, 1, group="string")
def getset(ctx, argv):
    """Set the string value of a key and return its old value."""
    key, value = argv[1], argv[2]
    old = ctx.lookup_typed(key, bytes)
    ctx.set_value(key, value)
    ctx.changed(key, "$", "set")
    ctx.rewrite_as([b"SET", key, value])
    return old


@command("GETDEL", 2, "write fast", 1, 1, 1, group="string", since="6.2.0")
def getdel(ctx, argv):
    """Get the value of a key and delete the key."""
    key = argv[1]
    old = ctx.lookup_typed(key, bytes)
    if old is not None:
        ctx.delete(key)
        ctx.changed(key, "g", "del")
        ctx.rewrite_as([b"DEL", key])
    return old


@command("GETEX", -2, "write fast", 1, 1, 1, group="string", since="6.2.0")
def getex(ctx, argv):
    """Get the value of a key and set or remove its expiry (as PEXPIREAT, DEL or PERSIST)."""
    unit = raw = None
    persist = False
    i = 2
    while i < len(argv):
        opt = argv[i].upper()
        if opt == b"PERSIST" and unit is None:
            persist = True
        elif opt in (b"EX", b"PX", b"EXAT", b"PXAT") and unit in (None, opt) and not persist \
                and i + 1 < len(argv):
            unit, raw = opt, argv[i + 1]    # Valkey lets a repeated unit override the first
            i += 1
        else:
            raise SYNTAX
        i += 1
    key = argv[1]
    value = ctx.lookup_typed(key, bytes)
    if value is None:
        return None
    if unit is not None:
        when = _expire_arg(ctx, unit, raw, "getex")
        if when <= ctx.now_ms and not ctx.replica:     # EXAT/PXAT in the past: the key goes
            ctx.delete(key)
            ctx.changed(key, "g", "del")
            ctx.rewrite_as([b"DEL", key])
        else:
            ctx.db.expires[key] = when
            ctx.changed(key, "g", "expire")
            ctx.rewrite_as([b"PEXPIREAT", key, b"%d" % when])
    elif persist and ctx.db.expires.pop(key, None) is not None:
        ctx.changed(key, "g", "persist")
        ctx.rewrite_as([b"PERSIST", key])
    return value


@command("MGET", -2, "readonly fast", 1, -1, 1, group="string")
def mget(ctx, argv):
    """Get the values of all the given keys (nil for a missing or non-string key)."""
    out = []
    for key in argv[1:]:
        value = ctx.lookup(key)
        out.append(value if type(value) is bytes else None)
    return out


def _pairs(argv, name: str):
    if len(argv) % 2 == 0:
        raise ReplyError(f"ERR wrong number of arguments for '{name}' command")
    return zip(argv[1::2], argv[2::2])


@command("MSET", -3, "write denyoom", 1, -1, 2, group="string", since="1.0.1")
def mset(ctx, argv):
    """Set the string values of several keys at once."""
    for key, value in _pairs(argv, "mset"):
        ctx.set_value(key, value)
        ctx.changed(key, "$", "set")
    return OK


@command("MSETNX", -3, "write denyoom", 1, -1, 2, group="string", since="1.0.1")
def msetnx(ctx, argv):
    """Set several keys at once, only when none of them exists."""
    pairs = list(_pairs(argv, "msetnx"))
    if any(ctx.lookup(key) is not None for key, _ in pairs):
        return 0
    for key, value in pairs:
        ctx.set_value(key, value)
        ctx.changed(key, "$", "set")
    return 1


def _add_to_integer(ctx, key: bytes, delta: int) -> int:
    """The shared body of INCR/DECR/INCRBY/DECRBY; the key keeps its expiry."""
    old = ctx.lookup(key)
    if old is None:
        n = delta
    elif type(old) is not bytes:
        raise WRONGTYPE
    else:
        n = parse_int(old)
        if n is None:
            raise NOT_INTEGER
        n += delta
        if not LLONG_MIN <= n <= LLONG_MAX:
            raise OVERFLOW
    ctx.db.data[key] = b"%d" % n
    ctx.changed(key, "$", "incrby")
    return n


def _int_arg(raw: bytes) -> int:
    n = parse_int(raw)
    if n is None:
        raise NOT_INTEGER
    return n


@command("INCR", 2, "write denyoom fast", 1, 1, 1, group="string")
def incr(ctx, argv):
    """Increment the integer value of a key by one."""
    return _add_to_integer(ctx, argv[1], 1)


@command("DECR", 2, "write denyoom fast", 1, 1, 1, group="string")
def decr(ctx, argv):
    """Decrement the integer value of a key by one."""
    return _add_to_integer(ctx, argv[1], -1)


@command("INCRBY", 3, "write denyoom fast", 1, 1, 1, group="string")
def incrby(ctx, argv):
    """Increment the integer value of a key by the given amount."""
    return _add_to_integer(ctx, argv[1], _int_arg(argv[2]))


@command("DECRBY", 3, "write denyoom fast", 1, 1, 1, group="string")
def decrby(ctx, argv):
    """Decrement the integer value of a key by the given amount."""
    delta = _int_arg(argv[2])
    if delta == LLONG_MIN:
        raise ReplyError("ERR decrement would overflow")
    return _add_to_integer(ctx, argv[1], -delta)


# -- floats, as Valkey's long doubles ----------------------------------------------------
# Valkey adds in long double (about 19 significant digits) and prints "%.17Lf" without
# trailing zeros; exact decimals rounded the same way give the same "non surprising"
# text (10.5 + 0.1 -> "10.6", where binary floats would say 10.600000000000001).
_LONG_DOUBLE = Context(prec=19, rounding=ROUND_HALF_EVEN)
_WIDE = Context(prec=6000)
_DIGITS_17 = Decimal("1e-17")
_LD_MAX = Decimal("1.18973149535723176502e4932")
_LD_TINY = Decimal("3.6e-4951")


def parse_float(raw: bytes) -> Decimal | None:
    """A number as Valkey's ``string2ld`` accepts it (``inf`` yes, ``nan`` no), else None."""
    if not raw or len(raw) >= 5 * 1024 or raw[:1].isspace() or raw[-1:].isspace() \
            or b"_" in raw:
        return None
    try:
        d = Decimal(raw.decode("ascii"))
    except (InvalidOperation, UnicodeDecodeError):
        return None
    if d.is_nan():
        return None
    if d.is_finite() and d and not _LD_TINY <= abs(d) <= _LD_MAX:
        return None     # strtold would report ERANGE
    return d


def add_floats(a: Decimal, b: Decimal) -> Decimal:
    """``a + b`` as a long double; raises the NaN-or-Infinity error Valkey gives."""
    total = _LONG_DOUBLE.add(a, b) if a.is_finite() and b.is_finite() else None
    if total is None or abs(total) > _LD_MAX:
        raise NAN_OR_INF
    return total


def float_text(d: Decimal) -> bytes:
    """``d`` printed as Valkey's ``ld2string(..., LD_STR_HUMAN)`` does."""
    text = format(d.quantize(_DIGITS_17, context=_WIDE), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return b"0" if text == "-0" else text.encode()


@command("INCRBYFLOAT", 3, "write denyoom fast", 1, 1, 1, group="string", since="2.6.0")
def incrbyfloat(ctx, argv):
    """Increment the floating point value of a key by the given amount."""
    key = argv[1]
    old = ctx.lookup_typed(key, bytes)
    base = Decimal(0) if old is None else parse_float(old)
    delta = parse_float(argv[2])
    if base is None or delta is None:
        raise NOT_FLOAT
    text = float_text(add_floats(base, delta))
    ctx.set_value(key, text, keep_ttl=True)
    ctx.changed(key, "$", "incrbyfloat")
    # replaying the addition elsewhere could round differently: propagate the result
    ctx.rewrite_as([b"SET", key, text, b"KEEPTTL"])
    return text


@command("APPEND", 3, "write denyoom fast", 1, 1, 1, group="string", since="2.0.0")
def append(ctx, argv):
    """Append a value to the string of a key (creating it); return the new length."""
    key = argv[1]
    old = ctx.lookup_typed(key, bytes)
    new = argv[2] if old is None else old + argv[2]
    if len(new) > _MAX_STRING:
        raise STRING_TOO_LONG
    ctx.set_value(key, new, keep_ttl=True)
    ctx.changed(key, "$", "append")
    return len(new)


@command("STRLEN", 2, "readonly fast", 1, 1, 1, group="string", since="2.2.0")
def strlen(ctx, argv):
    """The length of the string value of a key (0 when missing)."""
    value = ctx.lookup_typed(argv[1], bytes)
    return 0 if value is None else len(value)


@command("SUBSTR", 4, "readonly", 1, 1, 1, group="string")
@command("GETRANGE", 4, "readonly", 1, 1, 1, group="string", since="2.4.0")
def getrange(ctx, argv):
    """A substring of the string of a key, by inclusive offsets (negative count from the end)."""
    start, end = _int_arg(argv[2]), _int_arg(argv[3])
    value = ctx.lookup_typed(argv[1], bytes)
    if not value or (start < 0 and end < 0 and start > end):
        return b""
    size = len(value)
    start = max(start + size if start < 0 else start, 0)
    end = max(end + size if end < 0 else end, 0)
    return value[start:end + 1]


@command("SETRANGE", 4, "write denyoom", 1, 1, 1, group="string", since="2.2.0")
def setrange(ctx, argv):
    """Overwrite a string from an offset on, padding with zero bytes; return the new length."""
    key, patch = argv[1], argv[3]
    offset = _int_arg(argv[2])
    if offset < 0:
        raise ReplyError("ERR offset is out of range")
    old = ctx.lookup_typed(key, bytes)
    if not patch:
        return 0 if old is None else len(old)
    if offset + len(patch) > _MAX_STRING:
        raise STRING_TOO_LONG
    old = old or b""
    new = old[:offset].ljust(offset, b"\0") + patch + old[offset + len(patch):]
    ctx.set_value(key, new, keep_ttl=True)
    ctx.changed(key, "$", "setrange")
    return len(new)
