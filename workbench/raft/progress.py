"""What a leader knows about each follower's log, and how fast it may send to it.

Theory of operation
-------------------
Figure 2 gives the leader two numbers per follower: ``match``, the highest index known
to be replicated there, and ``next``, the index of the next entry to send. How ``next``
moves is flow control, which the paper leaves open; we use etcd's three states:

* **PROBE** -- the leader does not know where the follower's log stops agreeing with its
  own. It sends one AppendEntries and waits for an answer (any answer: a heartbeat
  reply will do if the append was lost) before sending another. Rejections move
  ``next`` back, a whole term at a time.
* **REPLICATE** -- the follower accepted the last append, so the leader streams: each
  append advances ``next`` past what it carries before any reply comes back
  (pipelining), with at most ``max_inflight`` appends unacknowledged. A rejection drops
  the follower back to PROBE.
* **SNAPSHOT** -- what the follower needs was compacted away; the leader has sent an
  InstallSnapshot and sends nothing else until the follower reports it installed.
  If an election timeout passes without that, the snapshot is presumed lost and the
  follower is probed again (which leads to a fresh snapshot).

Whatever the state, ``match`` only grows and ``next`` never drops to ``match`` or below:
an index the follower acknowledged stays acknowledged.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import Iterable, Mapping


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class Progress:
    __slots__ = ("match", "next", "state", "probe_sent", "inflight", "max_inflight",
                 "pending_snapshot", "snapshot_ticks", "recent_active", "resync", "resync_allowed",
                 "commit_sent")

    def __init__(self, next_index: int, max_inflight: int):
        self.match = 0
        self.next = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.inflight: deque[int] = deque()     # last index carried by each unacknowledged append
        self.max_inflight = max_inflight
        self.pending_snapshot = 0               # index of the snapshot sent in SNAPSHOT state
        self.snapshot_ticks = 0
        self.recent_active = False              # heard from since the last CheckQuorum
        self.resync = False                     # answered a heartbeat but still lacks entries we sent
        self.resync_allowed = True              # no resync since the last heartbeat
        self.commit_sent = 0                    # highest commit index the follower can have learned

    def __repr__(self) -> str:
        return (f"Progress({self.state.value}, match={self.match}, next={self.next}, "
                f"inflight={len(self.inflight)})")

    def is_paused(self) -> bool:
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return len(self.inflight) >= self.max_inflight and not self.resync
        return True

    # -- transitions -------------------------------------------------------------------------

    def become_probe(self) -> None:
        self.state = ProgressState.PROBE
        self.next = self.match + 1
        self.probe_sent = False
        self.inflight.clear()
        self.resync = False

    def become_replicate(self) -> None:
        self.state = ProgressState.REPLICATE
        self.next = self.match + 1
        self.inflight.clear()
        self.resync = False

    def become_snapshot(self, index: int) -> None:
        self.state = ProgressState.SNAPSHOT
        self.pending_snapshot = index
        self.snapshot_ticks = 0
        self.inflight.clear()
        self.resync = False

    # -- events ------------------------------------------------------------------------------

    def sent_append(self, last_index: int) -> None:
        """An AppendEntries carrying entries up to ``last_index`` went out."""
        if self.state is ProgressState.REPLICATE:
            if last_index >= self.next:
                self.next = last_index + 1
                self.inflight.append(last_index)
            self.resync = False
        else:
            self.probe_sent = True

    def acknowledged(self, match_index: int, first_index: int) -> bool:
        """A success reply: the follower's log matches ours up to ``match_index``. Returns
        whether that is news (``match`` grew)."""
        if match_index <= self.match:
            return False
        self.match = match_index
        self.next = max(self.next, match_index + 1)
        self.probe_sent = False
        if self.state is ProgressState.PROBE:
            self.become_replicate()
        elif self.state is ProgressState.REPLICATE:
            while self.inflight and self.inflight[0] <= match_index:
                self.inflight.popleft()
        elif match_index + 1 >= first_index:
            # The follower installed the snapshot (or turned out not to need it).
            self.become_replicate()
        return True

    def heard_without_progress(self, last_index: int) -> None:
        """A success reply that taught us nothing new (typically a heartbeat's): the
        follower is reachable, so unpause a probe. If we are streaming and the follower
        still lacks entries we sent, some appends may have been lost: send one more,
        whose consistency check will tell (etcd does the same). At most once per
        heartbeat interval: under load entries are always in flight, and re-checking on
        every reply would answer each reply with another empty append."""
        if self.state is ProgressState.PROBE:
            self.probe_sent = False
        elif (self.state is ProgressState.REPLICATE and self.match < last_index
              and self.resync_allowed):
            self.resync, self.resync_allowed = True, False

    def heartbeat_sent(self) -> None:
        self.resync_allowed = True

    def rejected(self, rejected_index: int, hint: int) -> bool:
        """A rejection of the append whose prev_log_index was ``rejected_index``; ``hint``
        is where the leader computed the logs may agree again. Returns False for stale
        rejections (answers to appends sent before something newer was learned)."""
        if self.state is ProgressState.REPLICATE:
            if rejected_index <= self.match:
                return False
            self.become_probe()
        elif self.state is ProgressState.PROBE:
            if rejected_index != self.next - 1:
                return False
        else:
            return False
        self.next = max(self.match + 1, min(hint, rejected_index))
        self.probe_sent = False
        return True


def quorum_value(values: Mapping[str, int], voters: Iterable[str]) -> int:
    """The highest value that a majority of ``voters`` have reached (a voter missing from
    ``values`` counts as 0). With match indexes this is the index a quorum has
    replicated; with ReadIndex rounds, the round a quorum has confirmed."""
    reached = sorted((values.get(voter, 0) for voter in voters), reverse=True)
    return reached[len(reached) // 2] if reached else 0
