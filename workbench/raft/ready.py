"""What a RaftNode hands its caller: one ``Ready`` at a time.

The node decides; the caller does the I/O, in the order the fields are listed in
``Ready``'s docstring. Everything is frozen: nothing downstream can change what the node
decided.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .messages import Message
from .read_index import ReadState
from .types import Entry, HardState, Snapshot


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state worth showing (not persisting): who this node is, who it follows."""

    role: Role
    leader_id: str | None


@dataclass(frozen=True, slots=True)
class Ready:
    """Everything the node has for its caller since the previous ``ready()``.

    Handle it in this order, and feed the node nothing (tick, step, propose ...) until
    step 1 is done:

    1. Persist, and fsync: ``snapshot`` (if any), then ``entries``, then ``hard_state``.
       For ``snapshot``: drop stored entries up to its index, and drop the ones after it
       too unless the stored entry at its index has its term (the rule the node applied
       to its own log). For ``entries``: cut off any stored suffix from
       ``entries[0].index``, then append.
    2. Send ``messages`` (they may promise what step 1 made durable: a vote, an entry).
    3. If ``restore_snapshot``, replace the state machine by ``snapshot.data``. Then apply
       ``committed_entries`` in order (NOOP and CONFIG entries included: skip them).
    4. Serve each read in ``read_states`` once the state machine has applied its index.
    """

    hard_state: HardState | None = None
    snapshot: Snapshot | None = None
    entries: tuple[Entry, ...] = ()
    messages: tuple[Message, ...] = ()
    committed_entries: tuple[Entry, ...] = ()
    read_states: tuple[ReadState, ...] = ()
    soft_state: SoftState | None = None
    # True when ``snapshot`` came from the leader (InstallSnapshot): the state machine
    # must be restored from it. False when it came from ``compact()``: persist only.
    restore_snapshot: bool = False
