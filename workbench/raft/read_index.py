"""ReadIndex: linearizable reads that do not go through the log (dissertation §6.4).

Theory of operation
-------------------
A leader may serve a read from its state machine only if no newer leader can have
committed anything it has not applied. Writing the read into the log would prove that,
at the price of a disk write; ReadIndex proves it with one round of heartbeats:

1. The leader must have committed an entry of its own term (its NOOP). Before that it
   may not even know which entries are committed, so requests wait in
   ``waiting_for_term``.
2. The leader records its commit index as the request's *read index*.
3. It confirms it is still the leader: it sends a heartbeat round tagged with a round
   number (the ``read_context`` of AppendEntries). Once a majority of voters, itself
   included, answered that round or a later one in the leader's term, no newer leader
   was elected before the request was recorded: it would have needed a majority of
   its own, the two majorities share a server, and that server's answer would have
   carried the newer term instead.
4. The request becomes a ``ReadState(context, index)``; the application serves the read
   once it has applied up to ``index``.

Requests recorded between two ``ready()`` calls share one round, the way proposals
share one AppendEntries.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ReadState:
    """A confirmed read: serve ``context`` once the state machine has applied ``index``."""

    context: Any
    index: int


class ReadIndexQueue:
    """One leadership's pending reads; a new leader (or a new term) starts a new queue."""

    def __init__(self):
        self.waiting_for_term: list[Any] = []            # contexts, before the term's first commit
        self._unsent: list[tuple[Any, int]] = []          # (context, read index), no round yet
        self._in_round: deque[tuple[int, Any, int]] = deque()   # (round, context, read index)
        self.round = 0                                     # the last round started
        self.acks: dict[str, int] = {}                     # voter -> highest round it answered

    def request(self, context: Any, commit_index: int, term_committed: bool) -> None:
        if term_committed:
            self._unsent.append((context, commit_index))
        else:
            self.waiting_for_term.append(context)

    def term_committed(self, commit_index: int) -> None:
        """The leader just committed its first entry of the term: the waiting requests get
        this commit index as their read index."""
        self._unsent.extend((context, commit_index) for context in self.waiting_for_term)
        self.waiting_for_term.clear()

    def has_unsent(self) -> bool:
        return bool(self._unsent)

    def start_round(self) -> int | None:
        """Tag the unsent requests with a new round; the caller sends its heartbeats."""
        if not self._unsent:
            return None
        self.round += 1
        self._in_round.extend((self.round, context, index) for context, index in self._unsent)
        self._unsent.clear()
        return self.round

    def pending_round(self) -> int | None:
        """The round a periodic heartbeat should carry (so a lost round is retried)."""
        return self.round if self._in_round else None

    def acknowledge(self, voter: str, round_: int) -> None:
        if round_ > self.acks.get(voter, 0):
            self.acks[voter] = round_

    def confirm(self, confirmed_round: int) -> list[ReadState]:
        """Release every request of a round a quorum has confirmed."""
        released = []
        while self._in_round and self._in_round[0][0] <= confirmed_round:
            _, context, index = self._in_round.popleft()
            released.append(ReadState(context, index))
        return released
