"""Blocking pops: BLPOP, BRPOP, BRPOPLPUSH, BLMOVE, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP.

Theory of operation
-------------------
A blocking pop first *tries*: the first of its keys that holds something is popped at
once, exactly as the non-blocking form would pop it (a key of the wrong type answers
``WRONGTYPE``). When every key is empty:

* inside ``MULTI``/``EXEC`` or a script it does not block (Valkey's ``deny_blocking``):
  it answers the non-blocking form's null;
* otherwise the client *waits*: a :class:`Waiter` joins the queue of each of its keys,
  in arrival order, and the connection executes nothing more until it is answered.

A write that changes a key somebody waits on *signals* it ready
(``NodeServer.run_keyspace`` calls :meth:`BlockedClients.signal`). Once the current
top-level command has finished -- a whole ``EXEC``, a whole script --
:meth:`BlockedClients.serve` goes through the ready keys in the order they were
signalled and through each key's waiters first come, first served, and *tries* each
again, as Valkey 8 re-processes a blocked command. A waiter whose keys are empty again
(someone came first, or a transaction pushed and popped) keeps its place; a key that
now holds another type serves nobody.

**A served pop is a write like any other.** It runs through the node's keyspace path
(``run_keyspace``) with the waiter's own connection, so it is propagated to the AOF,
the replicas and the Raft log as Valkey propagates it (``LPOP``, ``RPOP``, ``LMOVE``,
``RPOPLPUSH``, ``LPOP key n``, ``ZPOPMIN key`` ...), and the commit gate holds the
waiter's reply until that pop is durable: a client is never told of an element that a
failover could still give back. A pop that pushes (``BLMOVE``) signals its destination,
whose waiters are served in the same round.

Waiting ends in one of four ways besides being served: the timeout (a null reply);
``CLIENT UNBLOCK`` (:meth:`Waiter.unblock`: as a timeout, or ``-UNBLOCKED``); the node
stops taking writes -- a demotion or a Raft step-down -- (``-UNBLOCKED force unblock
...``, then the connection closes, as in Valkey); or the client disconnects (it just
leaves the queues).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from contextlib import contextmanager

from ..durability import NOT_HELD
from ..resp import NULL_ARRAY, ReplyError
from ..store import lookup
from ..store.cmd_lists import parse_lmpop
from ..store.keyspace import SYNTAX, WRONGTYPE
from ..store.values import LLONG_MAX
from ..store.zset import ZSet
from ..store.cmd_zsets import parse_mpop
from .connection import Blocked
from .registry import handles

UNBLOCKED_BY_CLIENT = ReplyError("UNBLOCKED client unblocked via CLIENT UNBLOCK")
UNBLOCKED_ROLE = ReplyError("UNBLOCKED force unblock from blocking operation, instance state "
                            "changed (master -> replica?)")


# -- the timeout argument ------------------------------------------------------------------
# What C's strtold accepts, minus leading blanks (Valkey's string2ld): decimal or hex
# floats, "inf"/"infinity"; not "nan", not Python's "1_000".
_DECIMAL = re.compile(rb"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity)\Z", re.I)
_HEX = re.compile(rb"[+-]?0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[+-]?\d+)?\Z", re.I)


def parse_timeout(raw: bytes, now_ms: int) -> int:
    """A timeout in seconds (a double) as milliseconds, rounded up; 0 means forever.

    Valkey's ``getTimeoutFromObjectOrReply``. One deviation from Redis 7.0, which says
    "timeout is negative" for ``inf`` or ``1e20`` (its long long overflows): Valkey
    checks the range first and says "timeout is out of range", as here."""
    if _DECIMAL.match(raw):
        seconds = float(raw)
        if math.isinf(seconds) and b"inf" not in raw.lower():
            raise ReplyError("ERR timeout is not a float or out of range")   # strtold's ERANGE
    elif _HEX.match(raw):
        seconds = float.fromhex(raw.decode())
    else:
        raise ReplyError("ERR timeout is not a float or out of range")
    ms = seconds * 1000
    if ms > LLONG_MAX:
        raise ReplyError("ERR timeout is out of range")
    if ms == -math.inf or math.ceil(ms) < 0:
        raise ReplyError("ERR timeout is negative")
    ms = math.ceil(ms)
    if ms > LLONG_MAX - now_ms:
        raise ReplyError("ERR timeout is out of range")
    return ms


# -- trying a pop: what the non-blocking form would do now ----------------------------------
def _peek(server, db: int, key: bytes, now_ms: int):
    """The live value of ``key``, without the side effects of a lookup."""
    database = server.keyspace.dbs[db]
    value = database.data.get(key)
    if value is not None and database.expires:
        when = database.expires.get(key)
        if when is not None and when <= now_ms:
            return None
    return value


def _first_filled(server, conn, keys, kind: type):
    """The first of ``keys`` that holds a value: (key, None), or (None, WRONGTYPE) when
    that value is of another type, or (None, None) when every key is empty."""
    now_ms = int(time.time() * 1000)
    for key in keys:
        value = _peek(server, conn.db, key, now_ms)
        if value is not None:
            return (key, None) if type(value) is kind else (None, WRONGTYPE)
    return None, None


def _run(server, conn, argv: list):
    """Run a non-blocking pop for ``conn`` through the node's keyspace path: propagated,
    its keys signalled, its reply held by the commit gate like any write's."""
    return server.run_keyspace(conn, lookup(argv[0]), argv)


class Attempt:
    """One blocking command, reduced to what it takes to try it: ``try_(server, conn)``
    returns its reply, or ``None`` while its keys are empty."""

    __slots__ = ("keys", "kind", "try_", "deny_null")

    def __init__(self, keys, kind: type, try_, deny_null=NULL_ARRAY):
        self.keys = keys
        self.kind = kind
        self.try_ = try_
        self.deny_null = deny_null       # the reply inside MULTI or a script


def _pop_one(keys, left: bool):
    def try_(server, conn):
        key, error = _first_filled(server, conn, keys, deque)
        if key is None:
            return error
        element = _run(server, conn, [b"LPOP" if left else b"RPOP", key])
        return element if isinstance(element, ReplyError) else [key, element]
    return Attempt(keys, deque, try_)


def _move(source: bytes, destination: bytes, from_left: bool, to_left: bool, legacy: bool):
    if legacy:
        argv = [b"RPOPLPUSH", source, destination]
    else:                                         # the spelling Valkey propagates
        argv = [b"LMOVE", source, destination, b"left" if from_left else b"right",
                b"left" if to_left else b"right"]

    def try_(server, conn):
        key, error = _first_filled(server, conn, [source], deque)
        return error if key is None else _run(server, conn, argv)
    return Attempt([source], deque, try_, deny_null=None)


def _pop_many(keys, left: bool, count: int):
    def try_(server, conn):
        key, error = _first_filled(server, conn, keys, deque)
        if key is None:
            return error
        return _run(server, conn, [b"LMPOP", b"1", key, b"LEFT" if left else b"RIGHT",
                                   b"COUNT", b"%d" % count])
    return Attempt(keys, deque, try_)


def _zpop_one(keys, highest: bool):
    def try_(server, conn):
        key, error = _first_filled(server, conn, keys, ZSet)
        if key is None:
            return error
        pair = _run(server, conn, [b"ZPOPMAX" if highest else b"ZPOPMIN", key])
        return pair if isinstance(pair, ReplyError) else [key, *pair]
    return Attempt(keys, ZSet, try_)


def _zpop_many(keys, highest: bool, count: int):
    def try_(server, conn):
        key, error = _first_filled(server, conn, keys, ZSet)
        if key is None:
            return error
        return _run(server, conn, [b"ZMPOP", b"1", key, b"MAX" if highest else b"MIN",
                                   b"COUNT", b"%d" % count])
    return Attempt(keys, ZSet, try_)


# -- the waiting room ---------------------------------------------------------------------
class Waiter:
    """One blocked client: what it waits for, its place in the keys' queues, its timer.

    ``conn.blocked_on`` points here while it waits (``CLIENT UNBLOCK`` finds it there)."""

    __slots__ = ("room", "conn", "db", "attempt", "future", "timer")

    def __init__(self, room: "BlockedClients", conn, attempt: Attempt, future):
        self.room = room
        self.conn = conn
        self.db = conn.db
        self.attempt = attempt
        self.future = future
        self.timer: asyncio.TimerHandle | None = None

    @property
    def done(self) -> bool:
        return self.future.done()

    def unblock(self, error: bool) -> bool:
        """CLIENT UNBLOCK: answer as a timeout, or with ``-UNBLOCKED`` when ``error``."""
        if self.done:
            return False
        self.room.finish(self, UNBLOCKED_BY_CLIENT if error else NULL_ARRAY)
        return True

    def time_out(self) -> None:
        self.timer = None
        if not self.done:
            self.room.finish(self, NULL_ARRAY)


class BlockedClients:
    """The node's clients blocked on keys: a FIFO queue per (db, key), and the keys
    signalled ready since the last :meth:`serve`."""

    def __init__(self, server):
        self.server = server
        self.waiting: dict[tuple, deque] = {}     # (db, key) -> waiters, oldest first
        self.ready: dict[tuple, None] = {}        # (db, key), in the order signalled
        self.serving = False
        self.deferred = 0                         # > 0: a script runs; serve after it

    def __len__(self) -> int:
        return len({id(w) for queue in self.waiting.values() for w in queue})

    # -- blocking and leaving -----------------------------------------------------------
    def block(self, conn, attempt: Attempt, timeout_ms: int) -> Blocked:
        loop = asyncio.get_running_loop()
        waiter = Waiter(self, conn, attempt, loop.create_future())
        for key in dict.fromkeys(attempt.keys):
            self.waiting.setdefault((waiter.db, key), deque()).append(waiter)
        if timeout_ms:
            waiter.timer = loop.call_later(timeout_ms / 1000, waiter.time_out)
        conn.blocked_on = waiter
        return Blocked(waiter.future)

    def leave(self, waiter: Waiter) -> None:
        """Take ``waiter`` out of every queue (it is answered, or gone)."""
        for key in dict.fromkeys(waiter.attempt.keys):
            queue = self.waiting.get((waiter.db, key))
            if queue is not None:
                try:
                    queue.remove(waiter)
                except ValueError:
                    pass
                if not queue:
                    del self.waiting[(waiter.db, key)]
        if waiter.timer is not None:
            waiter.timer.cancel()
            waiter.timer = None
        if getattr(waiter.conn, "blocked_on", None) is waiter:
            waiter.conn.blocked_on = None

    def finish(self, waiter: Waiter, reply, *, close: bool = False) -> None:
        """Answer ``waiter`` (a timeout, an unblock, an error: nothing it must wait for)."""
        self.leave(waiter)
        waiter.conn.hold_until = NOT_HELD
        self._answer(waiter, reply)
        if close:
            waiter.future.add_done_callback(lambda _: waiter.conn.close())

    def disconnected(self, conn) -> None:
        waiter = conn.blocked_on
        if waiter is not None:
            self.leave(waiter)
            waiter.future.cancel()

    def unblock_all(self, reply, *, close: bool = False) -> None:
        waiters = {id(w): w for queue in self.waiting.values() for w in queue}
        for waiter in waiters.values():
            self.finish(waiter, reply, close=close)
        self.ready.clear()

    def check_role(self) -> None:
        """The node stopped taking writes (demoted, stepped down): nobody it holds can be
        served here any more; Valkey answers them ``-UNBLOCKED`` and closes them."""
        server = self.server
        if self.waiting and not server.leads and server.write_refusal() is not None:
            self.unblock_all(UNBLOCKED_ROLE, close=True)

    # -- serving --------------------------------------------------------------------
    def signal(self, db: int, keys, elsewhere=(), flushed=()) -> None:
        """A write changed ``keys`` of ``db`` (and (db, key) pairs ``elsewhere``; whole
        databases ``flushed`` or swapped): the ones with waiters are ready."""
        waiting, ready = self.waiting, self.ready
        for key in keys:
            if (db, key) in waiting:
                ready[(db, key)] = None
        for item in elsewhere:
            if item in waiting:
                ready[item] = None
        for item in waiting:
            if item[0] in flushed:
                ready[item] = None

    @contextmanager
    def serving_deferred(self):
        """For a script: keys it readies are served once it has finished, not between
        its ``redis.call``s."""
        self.deferred += 1
        try:
            yield
        finally:
            self.deferred -= 1
        if not self.deferred and self.ready and self.server._in_exec is None:
            self.serve()

    def serve(self) -> None:
        """Serve the waiters of the keys signalled ready (Valkey's
        ``handleClientsBlockedOnKeys``): keys in the order signalled, each key's waiters
        in arrival order; keys a served pop readies (BLMOVE's destination) join the round."""
        if self.serving or self.deferred:
            return
        server = self.server
        if not server.leads and server.write_refusal() is not None:
            self.check_role()
            return
        self.serving = True
        try:
            while self.ready:
                item = next(iter(self.ready))
                del self.ready[item]
                queue = self.waiting.get(item)
                if queue:
                    self._serve_key(item, list(queue))
        finally:
            self.serving = False

    def _serve_key(self, item: tuple, waiters: list) -> None:
        database = self.server.keyspace.dbs[item[0]]
        for waiter in waiters:
            if waiter.done:
                continue
            value = database.data.get(item[1])
            if value is None or type(value) is not waiter.attempt.kind:
                continue                          # emptied, or another type: not served
            conn = waiter.conn
            if conn.closing or conn.transport is None or conn.transport.is_closing():
                self.leave(waiter)
                waiter.future.cancel()
                continue
            reply = waiter.attempt.try_(self.server, conn)
            if reply is None:
                conn.hold_until = NOT_HELD        # still nothing for it: it keeps its place
                continue
            self.leave(waiter)                    # conn.hold_until: the pop's own offset
            self._answer(waiter, reply)

    def _answer(self, waiter: Waiter, reply) -> None:
        if waiter.done:
            return
        waiter.future.set_result(reply)
        # the connection emits the reply on its next turn; should the gate have passed
        # the pop's offset meanwhile, nothing would come back to release it: look again
        waiter.future.add_done_callback(lambda _: _release_if_committed(self.server, waiter.conn))


def _release_if_committed(server, conn) -> None:
    gate = server.gate
    if gate is not None and conn in gate.waiting and conn.held \
            and conn.held.first_offset() <= gate.committed_offset:
        conn.release_held(gate.committed_offset)


def deny_blocking(server, conn) -> bool:
    """Inside EXEC or a script a blocking command answers at once (Valkey's
    ``deny_blocking``): a script's client sets ``conn.deny_blocking``."""
    return server._in_exec is not None or getattr(conn, "deny_blocking", False)


def _pop_or_block(server, conn, attempt: Attempt, timeout_ms: int):
    reply = attempt.try_(server, conn)
    if reply is not None:
        return reply
    if deny_blocking(server, conn):
        return attempt.deny_null
    conn.hold_until = NOT_HELD
    return server.blocked_clients.block(conn, attempt, timeout_ms)


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- the commands ----------------------------------------------------------------------------
# Flags as in Valkey 8 (Redis 7.0 also has noscript on BLPOP/BRPOP/BLMOVE/BRPOPLPUSH/BZPOP*,
# and "slow" on BLPOP/BRPOP): inside a script they do not block.
def _keys_then_timeout(server, conn, argv, attempt_on):
    """``CMD key [key ...] timeout`` (BLPOP, BRPOP, BZPOPMIN, BZPOPMAX): try, or block;
    ``attempt_on(keys)`` is the command's :class:`Attempt`."""
    try:
        timeout_ms = parse_timeout(argv[-1], _now_ms())
    except ReplyError as err:
        return err
    return _pop_or_block(server, conn, attempt_on(argv[1:-1]), timeout_ms)


@handles("BLPOP", -3, "write fast blocking", 1, -2, 1, group="list", since="2.0.0")
def blpop(server, conn, argv):
    """Pop the first element of the first non-empty list, or block until there is one."""
    return _keys_then_timeout(server, conn, argv, lambda keys: _pop_one(keys, left=True))


@handles("BRPOP", -3, "write fast blocking", 1, -2, 1, group="list", since="2.0.0")
def brpop(server, conn, argv):
    """Pop the last element of the first non-empty list, or block until there is one."""
    return _keys_then_timeout(server, conn, argv, lambda keys: _pop_one(keys, left=False))


def _end(raw: bytes) -> bool:
    end = raw.upper()
    if end not in (b"LEFT", b"RIGHT"):
        raise SYNTAX
    return end == b"LEFT"


@handles("BLMOVE", 6, "write denyoom blocking", 1, 2, 1, group="list", since="6.2.0")
def blmove(server, conn, argv):
    """Move an element from one list to another, or block until the source has one."""
    try:
        from_left, to_left = _end(argv[3]), _end(argv[4])
        timeout_ms = parse_timeout(argv[5], _now_ms())
    except ReplyError as err:
        return err
    return _pop_or_block(server, conn, _move(argv[1], argv[2], from_left, to_left, False),
                         timeout_ms)


@handles("BRPOPLPUSH", 4, "write denyoom blocking", 1, 2, 1, group="list", since="2.2.0")
def brpoplpush(server, conn, argv):
    """Move the last element of a list to the head of another, or block until there is one."""
    try:
        timeout_ms = parse_timeout(argv[3], _now_ms())
    except ReplyError as err:
        return err
    return _pop_or_block(server, conn, _move(argv[1], argv[2], False, True, True), timeout_ms)


def _mpop_keys(argv) -> list:
    return list(argv[3:3 + int(argv[2])])


@handles("BLMPOP", -5, "write blocking movablekeys", 0, 0, 0, group="list", since="7.0.0",
         find_keys=_mpop_keys)
def blmpop(server, conn, argv):
    """Pop elements from the first non-empty list, or block until there is one."""
    try:
        keys, left, count = parse_lmpop(argv, 2)
        timeout_ms = parse_timeout(argv[1], _now_ms())
    except ReplyError as err:
        return err
    return _pop_or_block(server, conn, _pop_many(keys, left, count), timeout_ms)


@handles("BZPOPMIN", -3, "write fast blocking", 1, -2, 1, group="sorted-set", since="5.0.0")
def bzpopmin(server, conn, argv):
    """Pop the lowest-scored member of the first non-empty sorted set, or block."""
    return _keys_then_timeout(server, conn, argv, lambda keys: _zpop_one(keys, highest=False))


@handles("BZPOPMAX", -3, "write fast blocking", 1, -2, 1, group="sorted-set", since="5.0.0")
def bzpopmax(server, conn, argv):
    """Pop the highest-scored member of the first non-empty sorted set, or block."""
    return _keys_then_timeout(server, conn, argv, lambda keys: _zpop_one(keys, highest=True))


@handles("BZMPOP", -5, "write blocking movablekeys", 0, 0, 0, group="sorted-set",
         since="7.0.0", find_keys=_mpop_keys)
def bzmpop(server, conn, argv):
    """Pop members from the first non-empty sorted set, or block until there is one."""
    try:
        keys, highest, count = parse_mpop(argv, 2)
        timeout_ms = parse_timeout(argv[1], _now_ms())
    except ReplyError as err:
        return err
    return _pop_or_block(server, conn, _zpop_many(keys, highest, count), timeout_ms)
