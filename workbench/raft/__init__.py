"""Raft consensus as a pure state machine: feed it ticks, messages and proposals; it
answers with a ``Ready`` saying what to persist, send and apply (see core.py)."""

from .core import NotLeader, RaftConfig, RaftNode
from .log import RaftLog
from .messages import (AppendEntries, AppendResponse, InstallSnapshot, Message, TimeoutNow,
                       VoteRequest, VoteResponse, is_request)
from .progress import Progress, ProgressState
from .read_index import ReadState
from .ready import Ready, Role, SoftState
from .types import (ConfigChange, Entry, EntryKind, HardState, Membership, PersistedState,
                    Snapshot, SnapshotMeta)

__all__ = [
    "AppendEntries", "AppendResponse", "ConfigChange", "Entry", "EntryKind", "HardState",
    "InstallSnapshot", "Membership", "Message", "NotLeader", "PersistedState", "Progress",
    "ProgressState", "RaftConfig", "RaftLog", "RaftNode", "ReadState", "Ready", "Role",
    "Snapshot", "SnapshotMeta", "SoftState", "TimeoutNow", "VoteRequest", "VoteResponse",
    "is_request",
]
