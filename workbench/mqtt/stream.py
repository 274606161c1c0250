"""The two pure halves of the stream's bookkeeping: no sockets, time passed in.

:class:`Coalescer` is the presenter's side. A busy cluster emits several events per write
(the command, each replica's ack, the fsync, the held and released reply ...); sent one
by one they would flood the broker and every viewer. The noisy kinds are kept as the
latest sample per node and kind, with a count of how many it stands for, and go out
together at the next flush; every other event goes out at once, after the samples that
came before it, so that nothing a viewer folds arrives out of order.

:class:`SequenceTracker` is the viewer's side. It takes messages with their seq as they
come and hands back, in seq order, the ones to apply: a duplicate or a message older than
what was applied is *late* and dropped; a message past a hole waits in a bounded buffer
for the hole to fill (brokers may reorder a little); a hole still open after
``reorder_window`` seconds, or a viewer with no state at all, means it must ask for a
state, which it then loads with :meth:`SequenceTracker.snapshot`.
"""

from __future__ import annotations

from typing import Any, Iterable

from ..events import PER_WRITE_EVENTS as NOISY_KINDS   # coalesced on the stream


class Coalescer:
    """Latest-wins samples of the noisy event kinds, per (node, kind)."""

    def __init__(self, noisy: Iterable[str] = NOISY_KINDS):
        self.noisy = frozenset(noisy)
        self._pending: dict[tuple[str, str], list] = {}   # -> [order, event, count]
        self._order = 0

    def offer(self, event) -> bool:
        """Keep ``event`` if it is noisy (True); else the caller sends it now (False),
        after :meth:`drain`."""
        if event.kind not in self.noisy:
            return False
        self._order += 1
        key = (event.node, event.kind)
        sample = self._pending.get(key)
        if sample is None:
            self._pending[key] = [self._order, event, 1]
        else:
            sample[0], sample[1], sample[2] = self._order, event, sample[2] + 1
        return True

    def drain(self) -> list[tuple[Any, int]]:
        """The pending samples as ``(event, count)``, in the order of their latest event."""
        samples = sorted(self._pending.values(), key=lambda s: s[0])
        self._pending.clear()
        return [(event, count) for _, event, count in samples]

    def __len__(self) -> int:
        return len(self._pending)


class SequenceTracker:
    """A viewer's position in the presenter's stream of sequence numbers."""

    def __init__(self, *, reorder_window: float = 0.5, retry_after: float = 2.0,
                 max_buffer: int = 2000, started: float | None = None):
        self.reorder_window = reorder_window
        self.retry_after = retry_after
        self.max_buffer = max_buffer
        self.last_seq: int | None = None    # None: no state yet, nothing can be applied
        self.applied = 0                    # messages handed back to apply
        self.late = 0                       # duplicates and messages older than the state
        self.gaps = 0                       # holes that needed a state to close
        self.missed = 0                     # messages never received, covered by a state
        self.snapshots = 0                  # states loaded
        self._buffer: dict[int, Any] = {}
        self._gap_since: float | None = None
        self._asked_at: float | None = None
        self._started = started             # a newcomer first waits for the retained state

    def event(self, seq: int, item, now: float) -> list:
        """Take one message; return the items now ready to apply, in seq order."""
        if self.last_seq is not None and seq <= self.last_seq or seq in self._buffer:
            self.late += 1
            return []
        if self.last_seq is not None and seq == self.last_seq + 1 and not self._buffer:
            self.last_seq = seq
            self.applied += 1
            return [item]
        self._buffer[seq] = item
        if len(self._buffer) > self.max_buffer:        # keep the newest: a state will cover
            del self._buffer[min(self._buffer)]
        if self.last_seq is None:
            return []
        ready = self._release()
        if self._buffer and self._gap_since is None:
            self._gap_since = now
        return ready

    def snapshot(self, seq: int, now: float) -> tuple[bool, list]:
        """A state as of ``seq`` arrived: ``(loaded, items to apply after it)``. A state no
        newer than what was applied is not loaded (it would go back in time)."""
        if self.last_seq is not None and seq <= self.last_seq:
            return False, []
        if self.last_seq is not None:
            received = sum(1 for s in self._buffer if self.last_seq < s <= seq)
            self.missed += seq - self.last_seq - received
            if self._gap_since is not None:
                self.gaps += 1
        self.snapshots += 1
        self.last_seq = seq
        for stale in [s for s in self._buffer if s <= seq]:
            del self._buffer[stale]
        self._gap_since = None
        self._asked_at = None
        return True, self._release()

    def _release(self) -> list:
        ready = []
        while self.last_seq + 1 in self._buffer:
            self.last_seq += 1
            ready.append(self._buffer.pop(self.last_seq))
        self.applied += len(ready)
        if not self._buffer:
            self._gap_since = None
        return ready

    def needs_state(self, now: float) -> bool:
        """True when the viewer should ask for a state now: it has none (and none came
        within the reorder window of ``started``), or a hole has stayed open past the
        reorder window; not again within ``retry_after``."""
        if self._asked_at is not None and now - self._asked_at < self.retry_after:
            return False
        if self.last_seq is None:
            return self._started is None or now - self._started >= self.reorder_window
        return self._gap_since is not None and now - self._gap_since >= self.reorder_window

    def asked(self, now: float) -> None:
        """Record that a state was asked for at ``now``."""
        self._asked_at = now

    @property
    def waiting(self) -> int:
        """Messages held back behind a hole."""
        return len(self._buffer)

    def stats(self) -> dict:
        return {"seq": self.last_seq, "applied": self.applied, "late": self.late,
                "gaps": self.gaps, "missed": self.missed, "snapshots": self.snapshots,
                "waiting": self.waiting}
