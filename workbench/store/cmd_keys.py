"""Generic key commands: existence, types, enumeration, renames, flushes and expiry."""

from __future__ import annotations

import heapq
import random
import zlib
from itertools import islice

from ..resp import OK, ReplyError, Simple
from .cmd_strings import invalid_expire
from .glob import compile_glob
from .keyspace import NOT_INTEGER, SYNTAX, TYPE_NAMES
from .table import command
from .values import LLONG_MAX, parse_int

NO_SUCH_KEY = ReplyError("ERR no such key")
TYPE_REPLIES = {kind: Simple(name.decode()) for kind, name in TYPE_NAMES.items()}
NONE = Simple("none")


def _live(db, key: bytes, now_ms: int) -> bool:
    """Whether ``key`` is present and not expired; never deletes (enumerations only read)."""
    when = db.expires.get(key)
    return when is None or when > now_ms


# -- existence and types ---------------------------------------------------------------
def _delete_keys(ctx, keys) -> int:
    removed = 0
    for key in keys:
        if ctx.lookup(key) is not None:
            ctx.delete(key)
            ctx.changed(key, "g", "del")
            removed += 1
    return removed


@command("DEL", -2, "write", 1, -1, 1)
def del_(ctx, argv):
    """Delete keys; return how many existed."""
    return _delete_keys(ctx, argv[1:])


@command("UNLINK", -2, "write fast", 1, -1, 1, since="4.0.0")
def unlink(ctx, argv):
    """Delete keys (Valkey frees them in the background); return how many existed."""
    return _delete_keys(ctx, argv[1:])


@command("EXISTS", -2, "readonly fast", 1, -1, 1)
def exists(ctx, argv):
    """Count the given keys that exist (a key named twice counts twice)."""
    return sum(1 for key in argv[1:] if ctx.lookup(key) is not None)


@command("TOUCH", -2, "readonly fast", 1, -1, 1, since="3.2.1")
def touch(ctx, argv):
    """Count the given keys that exist (and would refresh their access time)."""
    return sum(1 for key in argv[1:] if ctx.lookup(key) is not None)


@command("TYPE", 2, "readonly fast", 1, 1, 1)
def type_(ctx, argv):
    """The type of the value stored at a key, or none."""
    value = ctx.lookup(argv[1])
    return NONE if value is None else TYPE_REPLIES[type(value)]


# -- the whole keyspace ----------------------------------------------------------------
@command("KEYS", 2, "readonly keyspace", 0, 0, 0)
def keys(ctx, argv):
    """All keys matching a glob-style pattern."""
    matches = compile_glob(argv[1])
    db, now = ctx.db, ctx.now_ms
    if not db.expires:
        return [key for key in db.data if matches(key)]
    return [key for key in db.data if matches(key) and _live(db, key, now)]


def _scan_position(key: bytes) -> int:
    # A key's place in the scan order depends on the key alone, so keys added or
    # removed between calls cannot shift it: a key present throughout is always seen.
    return zlib.crc32(key)


def scan_step(elements, cursor: int, count: int):
    """The next cursor (0 at the end) and the elements at ``count`` places from ``cursor``."""
    ahead = [(place, e) for e in elements if (place := _scan_position(e)) >= cursor]
    if not ahead:
        return 0, []
    places = [place for place, _ in ahead]
    if count >= len(places):
        return 0, [e for _, e in ahead]
    # elements sharing a place are returned together, so the next cursor can skip past it
    last = heapq.nsmallest(count, places)[-1]
    more = any(place > last for place in places)
    return (last + 1 if more else 0), [e for place, e in ahead if place <= last]


@command("SCAN", -2, "readonly keyspace", 0, 0, 0, since="2.8.0")
def scan(ctx, argv):
    """Iterate the keys incrementally: a cursor, then up to COUNT keys' worth of work."""
    raw = argv[1]
    if not raw.isdigit() or int(raw) >= 2**64:
        raise ReplyError("ERR invalid cursor")
    cursor = int(raw)
    count, matches, want_type = 10, None, None
    i = 2
    while i < len(argv):
        opt = argv[i].lower()
        if i + 1 >= len(argv):
            raise SYNTAX
        if opt == b"count":
            count = parse_int(argv[i + 1])
            if count is None:
                raise NOT_INTEGER
            if count < 1:
                raise SYNTAX
        elif opt == b"match":
            matches = None if argv[i + 1] == b"*" else compile_glob(argv[i + 1])
        elif opt == b"type":
            want_type = argv[i + 1].lower()
        else:
            raise SYNTAX
        i += 2
    db, now = ctx.db, ctx.now_ms
    cursor, batch = scan_step(db.data, cursor, count)
    found = [key for key in batch
             if (matches is None or matches(key)) and _live(db, key, now)
             and (want_type is None or TYPE_NAMES[type(db.data[key])] == want_type)]
    return [b"%d" % cursor, found]


@command("DBSIZE", 1, "readonly fast keyspace", 0, 0, 0, group="server")
def dbsize(ctx, argv):
    """The number of keys in the selected database (expired ones not yet removed count)."""
    return len(ctx.db.data)


@command("RANDOMKEY", 1, "readonly keyspace", 0, 0, 0)
def randomkey(ctx, argv):
    """A random key of the selected database (deterministic for a given time and size)."""
    db, now = ctx.db, ctx.now_ms
    if not db.data:
        return None
    rng = random.Random(now * 1_000_003 + len(db.data))
    if not db.expires:
        return next(islice(db.data, rng.randrange(len(db.data)), None))
    live = [key for key in db.data if _live(db, key, now)]
    return rng.choice(live) if live else None


def _flush_mode(argv) -> None:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].upper() not in (b"ASYNC", b"SYNC")):
        raise SYNTAX


@command("FLUSHDB", -1, "write", 0, 0, 0, group="server")
def flushdb(ctx, argv):
    """Remove every key of the selected database."""
    _flush_mode(argv)
    ctx.db.data.clear()
    ctx.db.expires.clear()
    ctx.flushed = [ctx.db.id]
    return OK


@command("FLUSHALL", -1, "write", 0, 0, 0, group="server")
def flushall(ctx, argv):
    """Remove every key of every database."""
    _flush_mode(argv)
    for db in ctx.keyspace.dbs:
        db.data.clear()
        db.expires.clear()
    ctx.flushed = [db.id for db in ctx.keyspace.dbs]
    return OK


# -- renames ---------------------------------------------------------------------------
def _rename(ctx, argv, nx: bool):
    src, dst = argv[1], argv[2]
    value = ctx.lookup(src)
    if value is None:
        raise NO_SUCH_KEY
    if src == dst:
        return 0 if nx else OK
    if ctx.lookup(dst) is not None and nx:
        return 0
    db = ctx.db
    expire_at = db.expires.get(src)
    ctx.delete(src)
    ctx.set_value(dst, value)
    if expire_at is not None:
        db.expires[dst] = expire_at
    ctx.changed(src, "g", "rename_from")
    ctx.changed(dst, "g", "rename_to")
    return 1 if nx else OK


@command("RENAME", 3, "write", 1, 2, 1)
def rename(ctx, argv):
    """Rename a key, replacing the destination."""
    return _rename(ctx, argv, nx=False)


@command("RENAMENX", 3, "write fast", 1, 2, 1)
def renamenx(ctx, argv):
    """Rename a key only when the destination does not exist."""
    return _rename(ctx, argv, nx=True)


# -- expiry ----------------------------------------------------------------------------
def _expire_conditions(argv) -> set:
    conditions = set()
    for raw in argv[3:]:
        opt = raw.upper()
        if opt not in (b"NX", b"XX", b"GT", b"LT"):
            raise ReplyError("ERR Unsupported option " + raw.decode("utf-8", "replace"))
        conditions.add(opt)
    if b"NX" in conditions and len(conditions) > 1:
        raise ReplyError("ERR NX and XX, GT or LT options at the same time are not compatible")
    if b"GT" in conditions and b"LT" in conditions:
        raise ReplyError("ERR GT and LT options at the same time are not compatible")
    return conditions


def _expire(ctx, argv, name: str, in_seconds: bool, relative: bool):
    """EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT; propagated as ``PEXPIREAT`` or ``DEL``."""
    conditions = _expire_conditions(argv) if len(argv) > 3 else ()
    when = parse_int(argv[2])
    if when is None:
        raise NOT_INTEGER
    if in_seconds:
        if not -(LLONG_MAX // 1000) <= when <= LLONG_MAX // 1000:
            raise invalid_expire(name)
        when *= 1000
    if relative:
        if when > LLONG_MAX - ctx.now_ms:
            raise invalid_expire(name)
        when += ctx.now_ms
    key = argv[1]
    if ctx.lookup(key) is None:
        return 0
    if conditions:
        current = ctx.db.expires.get(key)
        if (b"NX" in conditions and current is not None) \
                or (b"XX" in conditions and current is None) \
                or (b"GT" in conditions and (current is None or when <= current)) \
                or (b"LT" in conditions and current is not None and when >= current):
            return 0
    if when <= ctx.now_ms and not ctx.replica:
        # already in the past: the key goes now (a replica waits for the primary's DEL)
        ctx.delete(key)
        ctx.changed(key, "g", "del")
        ctx.rewrite_as([b"DEL", key])
        return 1
    ctx.db.expires[key] = when
    ctx.changed(key, "g", "expire")
    ctx.rewrite_as([b"PEXPIREAT", key, b"%d" % when])
    return 1


@command("EXPIRE", -3, "write fast", 1, 1, 1)
def expire(ctx, argv):
    """Set a key's time to live in seconds."""
    return _expire(ctx, argv, "expire", in_seconds=True, relative=True)


@command("PEXPIRE", -3, "write fast", 1, 1, 1, since="2.6.0")
def pexpire(ctx, argv):
    """Set a key's time to live in milliseconds."""
    return _expire(ctx, argv, "pexpire", in_seconds=False, relative=True)


@command("EXPIREAT", -3, "write fast", 1, 1, 1, since="1.2.0")
def expireat(ctx, argv):
    """Set the expiry of a key as a Unix time in seconds."""
    return _expire(ctx, argv, "expireat", in_seconds=True, relative=False)


@command("PEXPIREAT", -3, "write fast", 1, 1, 1, since="2.6.0")
def pexpireat(ctx, argv):
    """Set the expiry of a key as a Unix time in milliseconds."""
    return _expire(ctx, argv, "pexpireat", in_seconds=False, relative=False)


def _ttl(ctx, key: bytes, in_ms: bool, absolute: bool) -> int:
    if ctx.lookup(key) is None:
        return -2
    when = ctx.db.expires.get(key)
    if when is None:
        return -1
    ms = when if absolute else max(when - ctx.now_ms, 0)
    return ms if in_ms else (ms + 500) // 1000


@command("TTL", 2, "readonly fast", 1, 1, 1)
def ttl(ctx, argv):
    """Seconds a key has left to live (-1 no expiry, -2 no key)."""
    return _ttl(ctx, argv[1], in_ms=False, absolute=False)


@command("PTTL", 2, "readonly fast", 1, 1, 1, since="2.6.0")
def pttl(ctx, argv):
    """Milliseconds a key has left to live (-1 no expiry, -2 no key)."""
    return _ttl(ctx, argv[1], in_ms=True, absolute=False)


@command("EXPIRETIME", 2, "readonly fast", 1, 1, 1, since="7.0.0")
def expiretime(ctx, argv):
    """The Unix time in seconds at which a key expires (-1 no expiry, -2 no key)."""
    return _ttl(ctx, argv[1], in_ms=False, absolute=True)


@command("PEXPIRETIME", 2, "readonly fast", 1, 1, 1, since="7.0.0")
def pexpiretime(ctx, argv):
    """The Unix time in milliseconds at which a key expires (-1 no expiry, -2 no key)."""
    return _ttl(ctx, argv[1], in_ms=True, absolute=True)


@command("PERSIST", 2, "write fast", 1, 1, 1, since="2.2.0")
def persist(ctx, argv):
    """Remove the expiry of a key."""
    key = argv[1]
    if ctx.lookup(key) is None or key not in ctx.db.expires:
        return 0
    del ctx.db.expires[key]
    ctx.changed(key, "g", "persist")
    return 1
