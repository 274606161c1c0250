"""The stream value: an append-only log of entries with IDs, and its consumer groups.

Theory of operation
-------------------
An entry ID is a pair ``(ms, seq)`` of unsigned 64-bit integers, compared as a tuple;
``entries`` maps each live ID to its flat ``(field, value, ...)`` tuple in a
``SortedDict``, so a range lookup is O(log n). ``last_id`` is the highest ID ever
generated (it never goes back, even when entries are deleted), ``entries_added`` counts
every XADD ever made, ``max_deleted_id`` is the highest ID XDEL removed: together they
let a consumer group tell how far behind it is (its *lag*).

Valkey keeps entries in *nodes* (listpacks of up to ``stream-node-max-entries`` = 100
entries, ``stream-node-max-bytes`` = 4096 bytes) and approximate trimming (``MAXLEN ~``)
removes only whole nodes. :class:`Stream` keeps the node boundaries too, as
``[first id, last id, live entries, entries ever put in]``, so that ``~`` trims exactly
what Valkey would. (The byte size of a node is estimated, not a real listpack's.)

A consumer group has a ``last_id`` (the last entry delivered with ``>``),
``entries_read`` (-1 when unknown), a pending entries list (PEL: delivered, not yet
acknowledged, each with its owner, delivery time and delivery count) and consumers, each
with its own PEL sharing the same :class:`Pending` records.
"""

from __future__ import annotations

from bisect import bisect_right

from sortedcontainers import SortedDict

MAX_ID = (2**64 - 1, 2**64 - 1)
NODE_MAX_ENTRIES = 100     # stream-node-max-entries
NODE_MAX_BYTES = 4096      # stream-node-max-bytes
UNKNOWN = -1               # SCG_INVALID_ENTRIES_READ


def id_text(entry_id) -> bytes:
    return b"%d-%d" % entry_id


class Pending:
    """A delivered, unacknowledged entry: who has it, since when (absolute ms), how often."""

    __slots__ = ("consumer", "delivery_time", "delivery_count")

    def __init__(self, consumer: bytes, delivery_time: int, delivery_count: int = 1):
        self.consumer = consumer
        self.delivery_time = delivery_time
        self.delivery_count = delivery_count

    def state(self):
        return (self.consumer, self.delivery_time, self.delivery_count)


class Consumer:
    __slots__ = ("name", "seen_time", "active_time", "pel")

    def __init__(self, name: bytes, now_ms: int):
        self.name = name
        self.seen_time = now_ms      # last attempted interaction
        self.active_time = -1        # last successful one (Valkey 7.2+)
        self.pel: SortedDict = SortedDict()


class Group:
    __slots__ = ("last_id", "entries_read", "pel", "consumers")

    def __init__(self, last_id, entries_read: int = UNKNOWN):
        self.last_id = last_id
        self.entries_read = entries_read
        self.pel: SortedDict = SortedDict()        # id -> Pending
        self.consumers: dict[bytes, Consumer] = {}

    def consumer(self, name: bytes, now_ms: int) -> tuple[Consumer, bool]:
        """The consumer ``name`` and whether it was just created."""
        found = self.consumers.get(name)
        if found is not None:
            return found, False
        found = self.consumers[name] = Consumer(name, now_ms)
        return found, True

    def state(self):
        """What replicas must agree on (seen/active times are each node's own clock)."""
        return (self.last_id, self.entries_read,
                [(i, p.state()) for i, p in self.pel.items()],
                sorted((n, list(c.pel)) for n, c in self.consumers.items()))


class Stream:
    __slots__ = ("entries", "nodes", "last_id", "max_deleted_id", "entries_added", "groups")

    def __init__(self):
        self.entries: SortedDict = SortedDict()
        self.nodes: list = []          # [first id, last id, live, put in, est. bytes]
        self.last_id = (0, 0)
        self.max_deleted_id = (0, 0)
        self.entries_added = 0
        self.groups: dict[bytes, Group] = {}

    def __len__(self):
        return len(self.entries)

    def __bool__(self):             # an empty stream is still a key (unlike a list)
        return True

    def __eq__(self, other):
        return type(other) is Stream and self.state() == other.state()

    __hash__ = None

    def state(self):
        return (list(self.entries.items()), self.last_id, self.max_deleted_id,
                self.entries_added, sorted((n, g.state()) for n, g in self.groups.items()))

    @property
    def first_id(self):
        return self.entries.peekitem(0)[0] if self.entries else (0, 0)

    def last_entry_id(self):
        return self.entries.peekitem(-1)[0] if self.entries else (0, 0)

    # -- writing ---------------------------------------------------------------------
    def append(self, entry_id, fields: tuple) -> None:
        size = 4 + sum(len(f) + 2 for f in fields)
        node = self.nodes[-1] if self.nodes else None
        if node is None or node[4] + size >= NODE_MAX_BYTES or node[3] >= NODE_MAX_ENTRIES:
            # a new node: its master entry names the fields
            self.nodes.append([entry_id, entry_id, 1, 1, 16 + size + sum(map(len, fields[::2]))])
        else:
            node[1] = entry_id
            node[2] += 1
            node[3] += 1
            node[4] += size
        self.entries[entry_id] = fields
        self.last_id = entry_id
        self.entries_added += 1

    def _node_index(self, entry_id) -> int:
        return bisect_right(self.nodes, entry_id, key=lambda n: n[0]) - 1

    def delete(self, entry_id) -> bool:
        """Remove one entry (XDEL, exact trimming): a node left empty goes too."""
        if self.entries.pop(entry_id, None) is None:
            return False
        at = self._node_index(entry_id)
        self.nodes[at][2] -= 1
        if not self.nodes[at][2]:
            del self.nodes[at]
        return True

    def _drop_first_node(self) -> int:
        first, last, live, _, _ = self.nodes.pop(0)
        for entry_id in list(self.entries.irange(first, last)):
            del self.entries[entry_id]
        return live

    def trim(self, maxlen: int | None, minid, approx: bool, limit: int) -> int:
        """Valkey's ``streamTrim``: whole nodes from the head while they may all go, then
        (unless ``approx``) single entries; ``limit`` (0 = none) bounds the work."""
        deleted = 0
        while self.nodes:
            if maxlen is not None and len(self.entries) <= maxlen:
                break
            node = self.nodes[0]
            live = node[2]
            if limit and deleted + live > limit:
                break
            whole = (len(self.entries) - live >= maxlen if maxlen is not None
                     else node[1] < minid)
            if whole:
                deleted += self._drop_first_node()
                continue
            if approx:
                break
            for entry_id in list(self.entries.irange(node[0], node[1])):
                if maxlen is not None and len(self.entries) <= maxlen:
                    break
                if maxlen is None and entry_id >= minid:
                    break
                self.delete(entry_id)
                deleted += 1
            break
        return deleted

    # -- reading ---------------------------------------------------------------------
    def range(self, start, end, count: int = 0, reverse: bool = False):
        """Entries with start <= id <= end, oldest first (newest first if ``reverse``);
        at most ``count`` of them unless ``count`` is 0."""
        if start > end:
            return []
        ids = self.entries.irange(start, end, reverse=reverse)
        out = []
        for entry_id in ids:
            out.append((entry_id, self.entries[entry_id]))
            if count and len(out) == count:
                break
        return out

    def has_tombstones(self, start=(0, 0), end=MAX_ID) -> bool:
        """Whether an XDEL may have left a hole in [start, end] (``streamRangeHasTombstones``)."""
        if not self.entries or self.max_deleted_id == (0, 0):
            return False
        if self.first_id > self.max_deleted_id:
            return False
        return start <= self.max_deleted_id <= end

    def estimate_read_counter(self, entry_id) -> int:
        """How many entries were added up to ``entry_id``, or UNKNOWN
        (``streamEstimateDistanceFromFirstEverEntry``)."""
        if not self.entries_added:
            return 0
        if not self.entries and entry_id <= self.last_id:
            return self.entries_added
        if entry_id == self.last_id:
            return self.entries_added
        if entry_id > self.last_id:
            return UNKNOWN
        first = self.first_id
        if self.max_deleted_id == (0, 0) or self.max_deleted_id < first:
            if entry_id < first:
                return self.entries_added - len(self.entries)
            if entry_id == first:
                return self.entries_added - len(self.entries) + 1
        return UNKNOWN

    def lag(self, group: Group):
        """How many entries the group has not read yet, or ``None`` when unknown."""
        if not self.entries_added:
            return 0
        if group.entries_read != UNKNOWN and not self.has_tombstones(group.last_id):
            return self.entries_added - group.entries_read
        read = self.estimate_read_counter(group.last_id)
        return None if read == UNKNOWN else self.entries_added - read

    def copy(self) -> "Stream":
        """A deep copy (COPY): entries, nodes, groups and their PELs."""
        twin = Stream()
        twin.entries = SortedDict(self.entries)
        twin.nodes = [list(n) for n in self.nodes]
        twin.last_id, twin.max_deleted_id = self.last_id, self.max_deleted_id
        twin.entries_added = self.entries_added
        for name, group in self.groups.items():
            g = twin.groups[name] = Group(group.last_id, group.entries_read)
            for cname, c in group.consumers.items():
                twin_c = g.consumers[cname] = Consumer(cname, c.seen_time)
                twin_c.active_time = c.active_time
            for entry_id, p in group.pel.items():
                q = g.pel[entry_id] = Pending(p.consumer, p.delivery_time, p.delivery_count)
                g.consumers[p.consumer].pel[entry_id] = q
        return twin

    def memory_estimate(self) -> int:
        """Bytes Valkey would roughly use: a 48-byte stream header; per node its listpack
        and a radix-tree key (~32); per group ~64 and its name; per pending entry a NACK
        (32) in two radix trees (~2 x 24); per consumer ~48 and its name."""
        size = 48 + sum(node[4] + 32 for node in self.nodes)
        for name, group in self.groups.items():
            size += 64 + len(name) + 80 * len(group.pel)
            size += sum(48 + len(c) for c in group.consumers)
        return size
