"""The commit gate: replies leave only when what they depend on is durable.

Theory of operation
-------------------
Every write the node executes gets a replication offset. Each durability *provider*
(the fsynced AOF, a quorum of replicas, a Raft majority) reports the highest offset it
has made durable; the **committed offset** is the smallest of those reports. The gate
compares every reply with it:

* a write's reply depends on the offset of the write itself;
* a read's reply depends on the newest uncommitted change of any key it touches -- a
  client must not see a value that a crash could still take back (a *dirty read*);
* a keyspace-informational command (``KEYS``, ``SCAN``, ``DBSIZE`` ...) reveals the
  whole keyspace, so it depends on the newest uncommitted change of any key;
* ``FLUSHDB``/``FLUSHALL`` dirty a whole database at once.

A reply whose offset is not yet committed is *held* in its client's output, behind
a byte boundary; the replies before it in a pipeline go out at once, the ones after it
wait behind it, so a connection's order is never broken. When the committed offset
advances, held replies up to it are released, committed keys are forgotten and the
deferred side effects (keyspace notifications) run.

Everything held waits in memory, so the gate also counts what it pins -- each held
reply and each uncommitted change, with its bookkeeping, in bytes -- for the server's
back-pressure (a node-wide budget of pinned bytes; see ``server/gating.py``).

Everything here is pure bookkeeping -- offsets in, releases out; the server owns the
sockets and the clock.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from typing import Callable

NOT_HELD = -1

# What one entry costs in memory besides its own bytes (CPython 3.11, 64-bit, measured
# with tracemalloc): a held reply's (offset, bytes) tuple, its offset and its deque slot;
# an uncommitted change's (offset, db, key) tuple, its offset, its slot and the key's
# bytes header; a deferred notification's closure.
HELD_REPLY_OVERHEAD = 96
UNCOMMITTED_CHANGE_OVERHEAD = 112
DEFERRED_EFFECT_COST = 200


class UncommittedKeys:
    """Key -> offset of its last not-yet-durable change, per database."""

    __slots__ = ("_by_db", "_order", "_db_dirty", "newest", "pinned")

    def __init__(self):
        self._by_db: dict[int, dict] = {}
        self._order: deque = deque()          # (offset, db, key) in offset order
        self._db_dirty: dict[int, int] = {}   # db -> offset of a flush not yet durable
        self.newest = NOT_HELD                # newest uncommitted offset of anything
        self.pinned = 0                       # bytes the changes in _order keep in memory

    def __len__(self) -> int:
        return sum(len(keys) for keys in self._by_db.values())

    def mark(self, db: int, keys, offset: int) -> None:
        """``keys`` of ``db`` changed at ``offset``."""
        dirty = self._by_db.get(db)
        if dirty is None:
            dirty = self._by_db[db] = {}
        order = self._order
        pinned = 0
        for key in keys:
            dirty[key] = offset
            order.append((offset, db, key))
            pinned += UNCOMMITTED_CHANGE_OVERHEAD + len(key)
        self.pinned += pinned
        if offset > self.newest:
            self.newest = offset

    def mark_db(self, db: int, offset: int) -> None:
        self._db_dirty[db] = offset
        if offset > self.newest:
            self.newest = offset

    def offset_for(self, db: int, keys) -> int:
        """The offset a read of ``keys`` in ``db`` must wait for (NOT_HELD if none)."""
        wanted = self._db_dirty.get(db, NOT_HELD)
        dirty = self._by_db.get(db)
        if dirty:
            for key in keys:
                offset = dirty.get(key, NOT_HELD)
                if offset > wanted:
                    wanted = offset
        return wanted

    def drain(self, committed: int) -> int:
        """Forget changes at or below ``committed``; return how many keys became clean."""
        cleaned = 0
        order = self._order
        unpinned = 0
        while order and order[0][0] <= committed:
            offset, db, key = order.popleft()
            unpinned += UNCOMMITTED_CHANGE_OVERHEAD + len(key)
            keys = self._by_db.get(db)
            # a later change of the same key keeps it dirty under its newer offset
            if keys is not None and keys.get(key, NOT_HELD) <= committed and key in keys:
                del keys[key]
                cleaned += 1
        self.pinned -= unpinned
        for db in [db for db, off in self._db_dirty.items() if off <= committed]:
            del self._db_dirty[db]
        if self.newest <= committed:
            self.newest = NOT_HELD
        return cleaned

    def clear(self) -> None:
        self._by_db.clear()
        self._order.clear()
        self._db_dirty.clear()
        self.newest = NOT_HELD
        self.pinned = 0


class HeldReplies:
    """One client's output: byte chunks, each tagged with the offset it waits for.

    ``held_bytes`` counts the replies' bytes (the per-client limit); ``pinned`` adds
    what holding them costs (the node-wide budget)."""

    __slots__ = ("_chunks", "held_bytes", "pinned")

    def __init__(self):
        self._chunks: deque = deque()   # [offset, bytes]
        self.held_bytes = 0
        self.pinned = 0

    def __len__(self) -> int:
        return len(self._chunks)

    def add(self, data: bytes, offset: int) -> int:
        """Hold ``data`` until ``offset`` is committed; return the bytes it pins."""
        self._chunks.append((offset, data))
        self.held_bytes += len(data)
        cost = len(data) + HELD_REPLY_OVERHEAD
        self.pinned += cost
        return cost

    def release(self, committed: int) -> list[bytes]:
        """The chunks that may leave now: the leading ones whose offset is committed."""
        out = []
        chunks = self._chunks
        while chunks and chunks[0][0] <= committed:
            _, data = chunks.popleft()
            self.held_bytes -= len(data)
            self.pinned -= len(data) + HELD_REPLY_OVERHEAD
            out.append(data)
        return out

    def first_offset(self) -> int:
        return self._chunks[0][0] if self._chunks else NOT_HELD

    def replace_first(self, offset: int, data: bytes) -> bool:
        """The first reply waiting for ``offset`` becomes ``data`` and may leave as soon
        as the replies before it do (a write that timed out gets its error)."""
        chunks = self._chunks
        for i, (waits_for, old) in enumerate(chunks):
            if waits_for == offset:
                chunks[i] = (NOT_HELD, data)
                self.held_bytes += len(data) - len(old)
                self.pinned += len(data) - len(old)
                return True
        return False

    def clear(self) -> int:
        dropped = len(self._chunks)
        self._chunks.clear()
        self.held_bytes = 0
        self.pinned = 0
        return dropped


class CommitGate:
    """Committed offset, uncommitted keys, waiting clients and deferred effects.

    ``providers`` are objects with a ``durable_offset`` attribute (or property); the
    gate takes their minimum. The server calls :meth:`advance` whenever a provider
    may have moved, and sends what it returns.
    """

    def __init__(self, providers: list):
        self.providers = list(providers)
        self.committed_offset = min((p.durable_offset for p in self.providers), default=0)
        self.uncommitted = UncommittedKeys()
        self.waiting: set = set()                 # clients with held replies
        # when each waiting client's first held reply may leave: a heap of
        # (offset, tiebreak, client), so an advance touches only the clients it frees
        self._due: list = []
        self._tiebreak = itertools.count()
        self._deferred: deque = deque()           # (offset, callable) in offset order
        self.replies_pinned = 0                   # what the waiting clients' held replies pin
        self.read_blocked_count = 0
        self.write_blocked_count = 0
        self.clients_disconnected_before_unblocking = 0

    # -- deciding ---------------------------------------------------------------------
    def offset_for_reply(self, *, wrote_offset: int, db: int, keys, keyspace_wide: bool) -> int:
        """The offset a reply must wait for, or NOT_HELD if it may leave now.

        ``wrote_offset`` is the replication offset after the command if it propagated
        anything (a write that changed the keyspace), else NOT_HELD.
        """
        committed = self.committed_offset
        if wrote_offset > committed:
            self.write_blocked_count += 1
            return wrote_offset
        if keyspace_wide:
            wanted = self.uncommitted.newest
        else:
            wanted = self.uncommitted.offset_for(db, keys)
        if wanted > committed:
            self.read_blocked_count += 1
            return wanted
        return NOT_HELD

    def record_write(self, db: int, keys, offset: int) -> None:
        self.uncommitted.mark(db, keys, offset)

    def record_flush(self, dbs, offset: int) -> None:
        for db in dbs:
            self.uncommitted.mark_db(db, offset)

    def wait(self, client, first_offset: int) -> None:
        """``client`` holds replies; the first one waits for ``first_offset``."""
        self.waiting.add(client)
        heapq.heappush(self._due, (first_offset, next(self._tiebreak), client))

    def due(self) -> list:
        """The waiting clients whose first held reply the committed offset now covers.
        (A client may come back later for its next reply: :meth:`wait` again.)"""
        due, heap, committed = [], self._due, self.committed_offset
        while heap and heap[0][0] <= committed:
            client = heapq.heappop(heap)[2]
            if client in self.waiting:           # not failed, released or gone since
                due.append(client)
        return due

    def defer(self, offset: int, effect: Callable[[], None]) -> None:
        """Run ``effect`` once ``offset`` is committed (at once if it already is)."""
        if offset <= self.committed_offset:
            effect()
        else:
            self._deferred.append((offset, effect))

    @property
    def pinned_bytes(self) -> int:
        """Bytes held replies, uncommitted changes and deferred effects keep in memory."""
        return (self.replies_pinned + self.uncommitted.pinned
                + len(self._deferred) * DEFERRED_EFFECT_COST)

    # -- advancing -------------------------------------------------------------------
    def current_offset(self) -> int:
        offset = None
        for provider in self.providers:
            durable = provider.durable_offset
            if offset is None or durable < offset:
                offset = durable
        return self.committed_offset if offset is None else offset

    def advance(self) -> list:
        """Take the providers' newest minimum; return the deferred effects now due.

        The caller then releases the clients :meth:`due` returns. The committed offset
        never moves backwards.
        """
        offset = self.current_offset()
        if offset <= self.committed_offset:
            return []
        self.committed_offset = offset
        self.uncommitted.drain(offset)
        due = []
        deferred = self._deferred
        while deferred and deferred[0][0] <= offset:
            due.append(deferred.popleft()[1])
        return due

    def release_everything(self) -> list:
        """Gating turned off: every held reply and deferred effect may go."""
        self.uncommitted.clear()
        self._due.clear()
        due = [effect for _, effect in self._deferred]
        self._deferred.clear()
        return due

    def drop_deferred(self) -> None:
        self._deferred.clear()
