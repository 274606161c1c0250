"""The Raft safety properties (Figure 3 of the paper), checked as a run goes.

The simulator reports each thing a node does -- a Ready persisted, an entry applied, a
snapshot restored, a term led -- and this checker compares it with what every other node
did before. The first contradiction raises :class:`SafetyViolation`.

* **Election safety**: at most one leader per term.
* **Log matching**: two logs holding an entry with the same index and term hold the same
  entry and agree on everything before it. Checked inductively: the first time any node
  stores (index, term) we remember the entry and the term before it; every later copy
  must match both.
* **Leader completeness**: a leader's log holds every entry committed before its term.
  Checked the moment a node becomes leader, against every index anyone has applied.
* **State-machine safety**: no two nodes apply different entries at one index; a state
  machine rebuilt from a snapshot equals the one that applied the entries (a digest).
* **Applied in order**: each node applies index ``i`` right after ``i - 1``.
"""

from __future__ import annotations

import hashlib

from .types import Entry, EntryKind


class SafetyViolation(AssertionError):
    """A safety property failed. ``seed`` reproduces the run; ``trace`` is its tail."""

    def __init__(self, prop: str, detail: str, *, seed=None, trace: str = ""):
        self.prop, self.detail, self.seed, self.trace = prop, detail, seed, trace
        super().__init__(f"{prop} violated: {detail} (seed {seed!r})\n"
                         f"last events:\n{trace}")


def chain_digest(previous: bytes, entry: Entry) -> bytes:
    """The state machine's fingerprint after applying ``entry`` on top of ``previous``."""
    if entry.kind != EntryKind.COMMAND:
        return previous
    return hashlib.blake2b(previous + entry.data, digest_size=8).digest()


class SafetyChecker:
    def __init__(self):
        self.leader_of_term: dict[int, str] = {}
        self.stored: dict[tuple[int, int], tuple[int, bytes, int | None]] = {}
        self.committed: dict[int, Entry] = {}        # index -> the entry applied there
        self.digest_at: dict[int, bytes] = {0: b""}

    def became_leader(self, node: str, term: int, log) -> None:
        holder = self.leader_of_term.setdefault(term, node)
        if holder != node:
            raise SafetyViolation("election safety", f"{holder} and {node} both lead term {term}")
        first = log.first_index
        for index, entry in self.committed.items():
            if index < first:
                continue          # inside the leader's snapshot, checked when it was applied
            if log.term_at(index) != entry.term:
                raise SafetyViolation(
                    "leader completeness",
                    f"{node} leads term {term} without committed entry {index} "
                    f"(term {entry.term}); its log has term {log.term_at(index)} there")

    def holds_what_it_committed(self, node: str, log, commit_index: int) -> None:
        """After a (re)start or a snapshot install: every entry the node's log holds up to
        its commit index is the entry that was committed there (nothing it applied before
        was lost or replaced on the way through its disk)."""
        for index in range(log.first_index, min(commit_index, log.last_index) + 1):
            entry = self.committed.get(index)
            if entry is not None and log.term_at(index) != entry.term:
                raise SafetyViolation(
                    "state-machine safety",
                    f"{node} holds term {log.term_at(index)} at committed index {index} "
                    f"(committed: term {entry.term}) after a restart or snapshot install")

    def stored_entries(self, node: str, entries, log) -> None:
        for entry in entries:
            previous_term = log.term_at(entry.index - 1)
            key = (entry.index, entry.term)
            seen = self.stored.get(key)
            if seen is None or seen[2] is None:   # None: the term before sits in a snapshot
                self.stored[key] = (entry.kind, entry.data, previous_term)
            if seen is None:
                continue
            if seen[:2] != (entry.kind, entry.data) or \
                    None not in (previous_term, seen[2]) and previous_term != seen[2]:
                raise SafetyViolation(
                    "log matching",
                    f"{node} stores entry {key} as {entry.kind.name} {entry.data!r} after term "
                    f"{previous_term}; another node stored {seen[0].name} {seen[1]!r} after "
                    f"term {seen[2]}")

    def applied(self, node: str, entry: Entry, previous_index: int, digest: bytes) -> None:
        if entry.index != previous_index + 1:
            raise SafetyViolation("applied in order",
                                  f"{node} applied {entry.index} after {previous_index}")
        first = self.committed.setdefault(entry.index, entry)
        if (first.term, first.kind, first.data) != (entry.term, entry.kind, entry.data):
            raise SafetyViolation(
                "state-machine safety",
                f"{node} applied {entry.kind.name} {entry.data!r} (term {entry.term}) at "
                f"{entry.index}; another node applied {first.data!r} (term {first.term})")
        self.check_digest(node, entry.index, digest)

    def check_digest(self, node: str, index: int, digest: bytes) -> None:
        known = self.digest_at.setdefault(index, digest)
        if known != digest:
            raise SafetyViolation("state-machine safety",
                                  f"{node}'s state machine at index {index} differs from "
                                  "another node's at the same index")
