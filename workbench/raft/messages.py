"""What Raft servers say to each other.

Theory of operation
-------------------
Figure 2 of the Raft paper has two RPCs, RequestVote and AppendEntries. Here each RPC is
a pair of one-way messages (a request and its response): the core never blocks waiting
for a reply, so a reply that is lost, late, duplicated or reordered is simply one more
input it has to judge on its own. Three extensions follow the dissertation:

* **pre-votes** (§9.6) are RequestVotes with ``pre_vote`` set, asking "would you vote for
  me in the next term?" without anyone changing term;
* **InstallSnapshot** (§5, Figure 5.3) sends a whole snapshot in one message (no chunks);
* **TimeoutNow** (§3.10) tells a caught-up follower to start an election at once, which
  is how leadership is handed over.

Every message carries ``src``, ``dst`` and the sender's ``term``: a receiver compares
terms before anything else (a newer term makes it a follower; an older one marks the
message stale). Heartbeats are AppendEntries with no entries, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .types import Entry, Snapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    src: str
    dst: str
    term: int


@dataclass(frozen=True, slots=True, kw_only=True)
class VoteRequest(Message):
    """RequestVote. ``term`` is the term the candidate runs in (for a pre-vote: the term
    it *would* run in, its own plus one). ``transfer`` marks an election started by
    TimeoutNow: voters answer it even while they trust a leader (their lease)."""

    pre_vote: bool = False
    last_log_index: int
    last_log_term: int
    transfer: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class VoteResponse(Message):
    """A granted vote carries the term it was granted for (for a pre-vote that is the
    candidate's future term); a refusal carries the voter's own term."""

    pre_vote: bool = False
    granted: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendEntries(Message):
    """Replicates ``entries``, which follow the entry at ``prev_log_index`` with term
    ``prev_log_term`` (the consistency check). ``read_context`` is set on the heartbeats
    that confirm leadership for ReadIndex: a leader-chosen round number the follower
    echoes back."""

    prev_log_index: int
    prev_log_term: int
    entries: tuple[Entry, ...] = ()
    leader_commit: int
    read_context: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendResponse(Message):
    """The answer to AppendEntries and to InstallSnapshot.

    On success ``match_index`` is the last index the follower now knows to match the
    leader's log. On rejection ``rejected_index`` is the ``prev_log_index`` that failed the
    check, so the leader can tell a stale rejection from a fresh one, and the conflict
    fields let it skip a whole term of conflicting entries per round trip:
    ``conflict_term`` is the term of the follower's entry at that index and
    ``conflict_index`` the first index of that term in the follower's log; if the
    follower's log is too short, ``conflict_term`` is None and ``conflict_index`` is the
    follower's last index + 1."""

    success: bool
    match_index: int = 0
    conflict_index: int = 0
    conflict_term: int | None = None
    read_context: Any = None
    rejected_index: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class InstallSnapshot(Message):
    """Sent instead of AppendEntries when the entries a follower needs were compacted
    into the leader's snapshot. Answered with an AppendResponse."""

    snapshot: Snapshot


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeoutNow(Message):
    """From a leader handing over leadership: campaign now, skipping the pre-vote."""


_REQUESTS = (VoteRequest, AppendEntries, InstallSnapshot, TimeoutNow)


def is_request(message: Message) -> bool:
    """True for the messages that start an exchange; False for responses. (Counting only
    requests is how the MIT 6.824 labs count RPCs.)"""
    return isinstance(message, _REQUESTS)
