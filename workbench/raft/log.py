"""The replicated log as one server holds it in memory: a snapshot prefix, then entries.

Theory of operation
-------------------
Indexes start at 1. Compaction (paper §7) replaces a prefix of the log by a snapshot of
the state machine; the snapshot's metadata keeps the index and term of the last entry
it covers, which is all the consistency check needs at that boundary. Entries after it
sit in a list, ``entries[i].index == snapshot.index + 1 + i``. A log that was never
compacted has an empty snapshot at index 0, term 0 -- "before the first entry" -- whose
membership is the shard's bootstrap configuration.

Three more things live here because they are properties of the log itself:

* **Membership.** A configuration entry takes effect as soon as it is in a server's log,
  committed or not (dissertation §4.1). So the membership in force is the snapshot's,
  changed by every CONFIG entry in log order -- and when a conflicting suffix is
  truncated away, the changes in it are undone with it.
* **What storage still lacks.** ``unstable_entries`` are the entries changed since the
  last ``Ready`` (from the lowest index appended or overwritten since then); the node
  hands them to storage and then calls ``mark_stable``.
* **Where logs disagree.** ``conflict_hint`` and ``last_index_of_term`` let a leader skip
  a whole term of conflicting entries per round trip instead of one entry.
"""

from __future__ import annotations

from typing import Iterable

from .types import ConfigChange, Entry, EntryKind, Membership, Snapshot


class RaftLog:
    def __init__(self, snapshot: Snapshot, entries: Iterable[Entry] = ()):
        self.snapshot = snapshot
        self._entries: list[Entry] = []
        self._configs: list[tuple[int, Membership]] = []   # (index of CONFIG entry, membership after it)
        for entry in entries:
            if entry.index != self.last_index + 1:
                raise ValueError(f"log entries are not contiguous at index {entry.index}")
            self._push(entry)
        self._unstable_from = self.last_index + 1          # what we were given is on disk already

    # -- reading -------------------------------------------------------------------------

    @property
    def first_index(self) -> int:
        """The first index still held as an entry (one past the snapshot)."""
        return self.snapshot.meta.index + 1

    @property
    def last_index(self) -> int:
        return self.snapshot.meta.index + len(self._entries)

    @property
    def last_term(self) -> int:
        return self._entries[-1].term if self._entries else self.snapshot.meta.term

    def term_at(self, index: int) -> int | None:
        """The term of the entry at ``index``; None when it was compacted away or is not
        in the log yet."""
        offset = index - self.first_index
        if offset == -1:
            return self.snapshot.meta.term
        if 0 <= offset < len(self._entries):
            return self._entries[offset].term
        return None

    def slice(self, start: int, stop: int) -> tuple[Entry, ...]:
        """Entries with ``start <= index < stop``; ``start`` must not be compacted."""
        if start < self.first_index:
            raise IndexError(f"entries before {self.first_index} were compacted")
        first = self.first_index
        return tuple(self._entries[start - first:stop - first])

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """The election restriction (§5.4.1): is a log ending at (last_index, last_term) at
        least as up-to-date as this one? The later last term wins; with equal last terms,
        the longer log."""
        return last_term > self.last_term or (last_term == self.last_term and last_index >= self.last_index)

    def conflict_hint(self, index: int) -> tuple[int, int | None]:
        """For a rejected AppendEntries whose ``prev_log_index`` is ``index``: the term we
        hold there and the first index of that term in our log, or (last index + 1, None)
        when our log does not reach ``index``."""
        if index > self.last_index:
            return self.last_index + 1, None
        term = self.term_at(index)
        if term is None:                       # compacted: everything there is committed
            return self.first_index, None
        while index - 1 >= self.first_index and self.term_at(index - 1) == term:
            index -= 1
        return index, term

    def last_index_of_term(self, term: int) -> int | None:
        """The index of our last entry of ``term``, or None if we have none (as far as
        the log still shows: terms never decrease along a log, so we stop at an older
        term)."""
        index = self.last_index
        while index >= self.snapshot.meta.index:
            found = self.term_at(index)
            if found == term:
                return index
            if found is None or found < term:
                return None
            index -= 1
        return None

    # -- membership ----------------------------------------------------------------------

    @property
    def membership(self) -> Membership:
        """The membership in force: set by the last CONFIG entry in the log, committed or not."""
        return self._configs[-1][1] if self._configs else self.snapshot.meta.membership

    @property
    def last_config_index(self) -> int:
        """Index of the last CONFIG entry still in the log (0 if there is none)."""
        return self._configs[-1][0] if self._configs else 0

    def membership_at(self, index: int) -> Membership:
        for config_index, membership in reversed(self._configs):
            if config_index <= index:
                return membership
        return self.snapshot.meta.membership

    # -- changing --------------------------------------------------------------------------

    def append(self, entry: Entry) -> None:
        """A leader adds a new entry at the end of its log."""
        if entry.index != self.last_index + 1:
            raise ValueError(f"entry {entry.index} does not follow the last index {self.last_index}")
        self._push(entry)

    def merge(self, entries: tuple[Entry, ...]) -> None:
        """Take entries from a leader whose first entry follows a matching prefix.

        Figure 2, AppendEntries receiver, steps 3 and 4: an entry we already hold with the
        same term is kept (a late duplicate of an old AppendEntries must not cut the log
        short); at the first entry whose term differs, our entry and all after it go, and
        the leader's entries from there are appended."""
        for position, entry in enumerate(entries):
            held = self.term_at(entry.index)
            if held == entry.term:
                continue
            if held is not None:
                self._truncate_from(entry.index)
            for new in entries[position:]:
                self._push(new)
            return

    def compact(self, snapshot: Snapshot) -> None:
        """Drop the entries the snapshot covers; the suffix after it stays."""
        index = snapshot.meta.index
        del self._entries[:index - self.snapshot.meta.index]
        self._configs = [(i, m) for i, m in self._configs if i > index]
        self.snapshot = snapshot

    def install(self, snapshot: Snapshot) -> bool:
        """Install a leader's snapshot (Figure 5.3): if our log has the snapshot's last
        entry, the entries after it agree with the leader's history and are kept;
        otherwise the whole log is discarded. Returns whether the suffix was kept."""
        meta = snapshot.meta
        if self.term_at(meta.index) == meta.term:
            self.compact(snapshot)
            return True
        self._entries = []
        self._configs = []
        self.snapshot = snapshot
        self._unstable_from = meta.index + 1
        return False

    # -- persistence bookkeeping -----------------------------------------------------------

    def unstable_entries(self) -> tuple[Entry, ...]:
        """Entries storage does not have yet; the first of them also says where storage
        must cut off an older suffix."""
        return self.slice(max(self._unstable_from, self.first_index), self.last_index + 1)

    def has_unstable(self) -> bool:
        return self._unstable_from <= self.last_index

    def mark_stable(self) -> None:
        self._unstable_from = self.last_index + 1

    # -- internals -------------------------------------------------------------------------

    def _push(self, entry: Entry) -> None:
        self._entries.append(entry)
        if entry.kind == EntryKind.CONFIG:
            change = ConfigChange.decode(entry.data)
            self._configs.append((entry.index, change.apply(self.membership)))

    def _truncate_from(self, index: int) -> None:
        del self._entries[index - self.first_index:]
        while self._configs and self._configs[-1][0] >= index:
            self._configs.pop()
        self._unstable_from = min(self._unstable_from, index)
