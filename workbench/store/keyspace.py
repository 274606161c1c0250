"""The keyspace: databases of keys, and the pure ``execute`` that changes them.

Values are plain Python containers, one type per Valkey type::

    string -> bytes        list -> collections.deque
    hash   -> dict         set  -> set
    zset   -> zset.ZSet (a dict beside a sorted list of (score, member))

Expiry times are absolute milliseconds in ``Database.expires``. Time is never read here:
every call brings ``now_ms``, so the same commands at the same times give the same state.

``Keyspace.execute(argv, db=..., now_ms=...)`` runs one keyspace command and returns an
:class:`Outcome`: the reply and the *effects* -- which keys it changed, which commands
must be propagated to the AOF and the replicas (in their deterministic form: ``SPOP``
becomes ``SREM``, a relative expiry becomes absolute), and which keyspace events fired.
Replaying the propagated commands on an empty keyspace rebuilds the same state.
"""

from __future__ import annotations

import random
import zlib
from collections import deque

from ..resp import ReplyError
from .table import CommandSpec, lookup
from .stream import Stream
from .zset import ZSet

WRONGTYPE = ReplyError("WRONGTYPE Operation against a key holding the wrong kind of value")
NOT_INTEGER = ReplyError("ERR value is not an integer or out of range")
SYNTAX = ReplyError("ERR syntax error")

TYPE_NAMES = {bytes: b"string", deque: b"list", dict: b"hash", set: b"set", ZSet: b"zset",
              Stream: b"stream"}


class Database:
    __slots__ = ("id", "data", "expires")

    def __init__(self, db_id: int):
        self.id = db_id
        self.data: dict = {}
        self.expires: dict = {}

    def __len__(self):
        return len(self.data)


class Context:
    """What a handler may touch while it runs, and what it leaves behind.

    Handlers read and write ``ctx.db`` and call :meth:`changed` for every key they
    modify (with the keyspace event to fire). The rest is bookkeeping the caller reads
    after the command: ``propagate`` (``None`` = propagate ``argv`` itself if anything
    changed), ``changed_keys`` (of ``db``), ``changed_elsewhere`` and ``read_elsewhere``
    ((database id, key) of other databases that ``MOVE`` or ``COPY ... DB`` changed or
    looked at), ``events``, ``flushed`` (ids of the
    databases replaced wholesale -- ``FLUSHDB``/``FLUSHALL`` emptied, ``SWAPDB``
    exchanged: propagated even when nothing was there).

    ``applying`` is true for a write applied on a replica (the primary's stream, or a
    load): it sees every key as it is, expired or not, exactly as the primary saw it
    when it ran the command; the primary's own ``DEL`` removes the key later.
    """

    __slots__ = ("keyspace", "db", "now_ms", "propagate", "changed_keys", "changed_elsewhere",
                 "read_elsewhere", "events", "expired_dels", "replica", "applying", "flushed",
                 "reply", "propagated")

    def __init__(self, keyspace: "Keyspace", db: Database, now_ms: int, replica: bool = False,
                 applying: bool = False):
        self.keyspace = keyspace
        self.db = db
        self.now_ms = now_ms
        self.propagate = None
        self.changed_keys: list = []
        self.changed_elsewhere: list = []
        self.read_elsewhere: list = []
        self.events: list = []
        self.expired_dels: list = []
        self.replica = replica
        self.applying = applying
        self.flushed = ()           # a flush sets a list of db ids
        # set by Keyspace.run_context once the handler returned (Outcome's fields):
        self.reply = None
        self.propagated: list = []

    # -- reading ---------------------------------------------------------------------
    def lookup(self, key: bytes):
        """The live value of ``key`` or ``None``; an expired key is deleted on the way.

        A replica never deletes on its own: it waits for the primary's ``DEL`` so that
        both stay identical. Its clients are answered as if the key were gone, while the
        primary's writes (``applying``) find the key as the primary did.
        """
        db = self.db
        value = db.data.get(key)
        if value is not None and db.expires:
            when = db.expires.get(key)
            if when is not None and when <= self.now_ms:
                if self.replica:
                    return value if self.applying else None
                del db.data[key]
                del db.expires[key]
                self.expired_dels.append([b"DEL", key])
                self.changed_keys.append(key)
                self.events.append(("x", "expired", db.id, key))
                return None
        return value

    def rng(self, key: bytes) -> random.Random:
        """Randomness for picks from ``key`` (SPOP, SRANDMEMBER, HRANDFIELD): seeded from
        the key and the command's time, so the same command at the same time picks the same."""
        return random.Random((zlib.crc32(key) << 40) ^ self.now_ms)

    def lookup_typed(self, key: bytes, kind: type):
        value = self.lookup(key)
        if value is not None and type(value) is not kind:
            raise WRONGTYPE
        return value

    # -- writing ---------------------------------------------------------------------
    def changed(self, key: bytes, event_class: str = "g", event: str | None = None) -> None:
        self.changed_keys.append(key)
        if event is not None:
            self.events.append((event_class, event, self.db.id, key))

    def set_value(self, key: bytes, value, keep_ttl: bool = False) -> None:
        self.db.data[key] = value
        if not keep_ttl and self.db.expires:
            self.db.expires.pop(key, None)

    def delete(self, key: bytes) -> bool:
        db = self.db
        if key in db.data:
            del db.data[key]
            db.expires.pop(key, None)
            return True
        return False

    def delete_if_empty(self, key: bytes, value) -> None:
        """Valkey removes a list, hash or set key when its last element goes."""
        if not value:
            self.delete(key)
            self.events.append(("g", "del", self.db.id, key))

    def rewrite_as(self, *commands) -> None:
        """Propagate these commands instead of ``argv`` (deterministic replay form)."""
        if self.propagate is None:
            self.propagate = []
        self.propagate.extend(list(c) for c in commands)


class Outcome:
    """The result of executing one command: its reply and its effects."""

    __slots__ = ("reply", "changed_keys", "propagate", "events", "flushed_dbs",
                 "changed_elsewhere")

    def __init__(self, reply, changed_keys, propagate, events, flushed_dbs=(),
                 changed_elsewhere=()):
        self.reply = reply
        self.changed_keys = changed_keys
        self.changed_elsewhere = changed_elsewhere  # (db id, key) in other databases
        self.propagate = propagate      # list of argv, in order; empty if nothing changed
        self.events = events            # (class char, event name, db id, key)
        self.flushed_dbs = flushed_dbs  # ids of the databases a flush emptied

    @property
    def dirty(self) -> bool:
        return bool(self.propagate)

    def __repr__(self):
        return f"Outcome({self.reply!r}, changed={self.changed_keys!r}, propagate={self.propagate!r})"


class Keyspace:
    """All databases of one node."""

    def __init__(self, databases: int = 16):
        self.dbs = [Database(i) for i in range(databases)]

    def run(self, spec: CommandSpec, argv: list, db: int, now_ms: int, replica: bool = False) -> Outcome:
        """Execute a looked-up keyspace command; arity is the caller's to check."""
        ctx = self.run_context(spec, argv, db, now_ms, replica)
        return Outcome(ctx.reply, ctx.changed_keys, ctx.propagated, ctx.events, ctx.flushed,
                       ctx.changed_elsewhere)

    def run_context(self, spec: CommandSpec, argv: list, db: int, now_ms: int,
                    replica: bool = False) -> Context:
        """:meth:`run`, leaving the outcome on the Context (``reply``, ``propagated``,
        ``changed_keys``, ``events``, ``flushed``): the server's per-command path reads
        it there rather than allocating an :class:`Outcome` for every command."""
        ctx = Context(self, self.dbs[db], now_ms, replica, replica and spec.is_write)
        try:
            ctx.reply = spec.handler(ctx, argv)
        except ReplyError as err:
            ctx.reply = err
        if ctx.propagate is not None:
            propagate = ctx.propagate
        elif spec.is_write and (len(ctx.changed_keys) > len(ctx.expired_dels) or ctx.flushed):
            propagate = [argv]
        else:
            propagate = []
        if ctx.expired_dels:
            propagate = ctx.expired_dels + propagate
        ctx.propagated = propagate
        return ctx

    def execute(self, argv: list, *, db: int = 0, now_ms: int, replica: bool = False) -> Outcome:
        """Look up and run one command, with Valkey's errors for unknown commands and arity."""
        spec = lookup(argv[0])
        if spec is None or spec.handler is None:
            return Outcome(unknown_command(argv), [], [], [])
        if not spec.arity_ok(len(argv)):
            return Outcome(wrong_arity(spec.name), [], [], [])
        return self.run(spec, argv, db, now_ms, replica)

    # -- whole-keyspace operations used by the server --------------------------------
    def flush(self, db: int | None = None) -> None:
        for d in self.dbs if db is None else [self.dbs[db]]:
            d.data.clear()
            d.expires.clear()

    def key_count(self) -> int:
        return sum(len(d.data) for d in self.dbs)

    def expired_keys(self, now_ms: int, limit: int = 20):
        """Yield up to ``limit`` (db, key) pairs whose expiry has passed (active expiry)."""
        found = 0
        for d in self.dbs:
            if not d.expires:
                continue
            for key, when in list(d.expires.items()):
                if when <= now_ms:
                    yield d.id, key
                    found += 1
                    if found >= limit:
                        return


def unknown_command(argv) -> ReplyError:
    args = " ".join("'%s'" % a.decode("utf-8", "replace")[:128] for a in argv[1:])
    name = argv[0].decode("utf-8", "replace")[:128]
    return ReplyError(f"ERR unknown command '{name}', with args beginning with: {args}"
                      + (" " if args else ""))


def wrong_arity(name: str) -> ReplyError:
    return ReplyError(f"ERR wrong number of arguments for '{name.lower()}' command")
