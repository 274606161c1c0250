"""Commands that reach into another database: MOVE, COPY and SWAPDB.

Everything else works inside the client's selected database, so a command's effects
are "these keys of this database changed". These three also read, change or swap away
a second database, and say so in the Context: ``ctx.read_elsewhere`` and
``ctx.changed_elsewhere`` list the (database, key) pairs MOVE and COPY look at and
change there, ``ctx.flushed`` the two databases SWAPDB exchanges (whole databases, like
a flush). The server dirties the changes for the commit gate and touches them for
``WATCH``; a reply that reveals a key there waits until that key is durable.

A key that has expired in the *other* database is deleted when MOVE or COPY looks at
it, and its ``DEL`` is propagated inside ``SELECT other`` ... ``SELECT back``: a replica
keeps expired keys until told, and must find the destination as empty as the primary
did.
"""

from __future__ import annotations

from collections import deque

from ..resp import OK, ReplyError
from .keyspace import NOT_INTEGER, SYNTAX, Database
from .stream import Stream
from .table import command
from .values import parse_int

DB_OUT_OF_RANGE = ReplyError("ERR DB index is out of range")
SAME_OBJECT = ReplyError("ERR source and destination objects are the same")


def _database(ctx, raw: bytes) -> Database:
    index = parse_int(raw)
    if index is None:
        raise NOT_INTEGER
    if not 0 <= index < len(ctx.keyspace.dbs):
        raise DB_OUT_OF_RANGE
    return ctx.keyspace.dbs[index]


def _lookup_in(ctx, db: Database, key: bytes):
    """The live value of ``key`` in ``db`` (another database than the client's)."""
    ctx.read_elsewhere.append((db.id, key))
    value = db.data.get(key)
    if value is None:
        return None
    when = db.expires.get(key)
    if when is None or when > ctx.now_ms:
        return value
    if ctx.replica:                      # as Context.lookup: a replica waits for the DEL
        return value if ctx.applying else None
    del db.data[key]
    del db.expires[key]
    ctx.expired_dels += ([b"SELECT", b"%d" % db.id], [b"DEL", key],
                         [b"SELECT", b"%d" % ctx.db.id])
    ctx.changed_elsewhere.append((db.id, key))
    ctx.events.append(("x", "expired", db.id, key))
    return None


def _place(ctx, db: Database, key: bytes, value, expire_at: int | None, event: str) -> None:
    """Store ``value`` under ``key`` in ``db`` with ``expire_at`` (or none), as changed."""
    db.data[key] = value
    if expire_at is not None:
        db.expires[key] = expire_at
    else:
        db.expires.pop(key, None)
    if db is ctx.db:
        ctx.changed(key, "g", event)
    else:
        ctx.changed_elsewhere.append((db.id, key))
        ctx.events.append(("g", event, db.id, key))


@command("MOVE", 3, "write fast", 1, 1, 1)
def move(ctx, argv):
    """Move a key to another database; 0 if it is missing here or present there."""
    key = argv[1]
    target = _database(ctx, argv[2])
    if target is ctx.db:
        raise SAME_OBJECT
    value = ctx.lookup(key)
    if value is None or _lookup_in(ctx, target, key) is not None:
        return 0
    expire_at = ctx.db.expires.get(key)
    ctx.delete(key)
    ctx.changed(key, "g", "move_from")
    _place(ctx, target, key, value, expire_at, "move_to")
    ctx.rewrite_as(argv)
    return 1


def _copy_of(value):
    """A value that shares nothing mutable with ``value`` (strings are immutable)."""
    if type(value) is Stream:           # entries, consumer groups and their PELs
        return value.copy()
    return value if type(value) is bytes else (
        deque(value) if type(value) is deque else type(value)(value))


@command("COPY", -3, "write", 1, 2, 1, since="6.2.0")
def copy(ctx, argv):
    """Copy a key's value (and expiry), to another database with ``DB``; 0 if the
    source is missing or the destination exists without ``REPLACE``."""
    source, destination = argv[1], argv[2]
    target, replace = ctx.db, False
    i = 3
    while i < len(argv):
        option = argv[i].upper()
        if option == b"REPLACE":
            replace, i = True, i + 1
        elif option == b"DB" and i + 1 < len(argv):
            target, i = _database(ctx, argv[i + 1]), i + 2
        else:
            raise SYNTAX
    if target is ctx.db and source == destination:
        raise SAME_OBJECT
    value = ctx.lookup(source)
    if value is None:
        return 0
    present = (ctx.lookup(destination) if target is ctx.db
               else _lookup_in(ctx, target, destination))
    if present is not None and not replace:
        return 0
    _place(ctx, target, destination, _copy_of(value), ctx.db.expires.get(source), "copy_to")
    ctx.rewrite_as(argv)
    return 1


def _swap_index(raw: bytes, which: str) -> int:
    index = parse_int(raw)
    if index is None:
        raise ReplyError(f"ERR invalid {which} DB index")
    return index


@command("SWAPDB", 3, "write fast", 0, 0, 0, group="server", since="4.0.0")
def swapdb(ctx, argv):
    """Exchange the contents of two databases; every client sees the other one at once."""
    first, second = _swap_index(argv[1], "first"), _swap_index(argv[2], "second")
    if not (0 <= first < len(ctx.keyspace.dbs) and 0 <= second < len(ctx.keyspace.dbs)):
        raise DB_OUT_OF_RANGE
    a, b = ctx.keyspace.dbs[first], ctx.keyspace.dbs[second]
    a.data, b.data = b.data, a.data
    a.expires, b.expires = b.expires, a.expires
    ctx.flushed = sorted({first, second})
    return OK
