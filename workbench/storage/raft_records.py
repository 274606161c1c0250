"""The bytes of the Raft files: one checksummed frame per log entry, hard state, snapshot.

Theory of operation
-------------------
Everything the Raft storage writes is a **frame**::

    magic (4 bytes) | payload length (u32) | crc32 of the payload (u32) | payload

(integers big-endian). The magic says what the payload is and which format version wrote
it: ``RLE1`` a log entry, ``RHS1`` the hard state, ``RSN1`` a snapshot. The log file is
a run of entry frames; the hard-state and snapshot files hold exactly one frame each.

Payloads::

    entry       index u64 | term u64 | kind u8 | data
    hard state  term u64 | commit u64 | has_vote u8 | voted_for (utf-8)
    snapshot    index u64 | term u64 | voters | learners | data
                (a name list is count u32, then per name: length u16 | utf-8; sorted,
                so the same snapshot always encodes to the same bytes)

Torn tail or corruption?
------------------------
:func:`scan_log` walks the log frame by frame. A frame is *whole* when its magic is
right, its length stays inside the file and its checksum matches. At the first frame
that is not whole, the scan asks one question: **is there a whole frame anywhere after
this point?**

* No: the damage is the last thing in the file. That is what an interrupted append or a
  power cut leaves (a partial frame, a frame whose length runs past the end, or a
  complete-looking frame whose bytes never all reached the disk). Status ``torn``; the
  storage cuts the file back to the last whole frame and warns.
* Yes: good records follow the bad one, so no crash made this. Status ``corrupt``; the
  storage refuses to start and leaves the file alone for a human.

A whole frame whose content is impossible (an unknown entry kind, an index that does
not follow the previous one) is always ``corrupt``: no crash writes a valid checksum
around the wrong bytes. The rule's one blind spot is on the safe side: a torn entry
whose *data* happens to contain a whole frame is reported as corrupt, not cut.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from ..raft.types import Entry, EntryKind, HardState, Membership, Snapshot, SnapshotMeta

__all__ = ["RaftLogCorrupt", "LogScan", "scan_log", "encode_entry", "encode_hard_state",
           "decode_hard_state", "encode_snapshot", "decode_snapshot",
           "ENTRY_MAGIC", "HARD_STATE_MAGIC", "SNAPSHOT_MAGIC", "FRAME_HEADER_SIZE"]

ENTRY_MAGIC = b"RLE1"
HARD_STATE_MAGIC = b"RHS1"
SNAPSHOT_MAGIC = b"RSN1"

_HEADER = struct.Struct(">4sII")
FRAME_HEADER_SIZE = _HEADER.size                       # 12
_ENTRY_HEAD = struct.Struct(">QQB")
_HARD_STATE_HEAD = struct.Struct(">QQB")
_SNAPSHOT_HEAD = struct.Struct(">QQ")
_COUNT = struct.Struct(">I")
_NAME_LEN = struct.Struct(">H")
_MAX_PAYLOAD = 2**32 - 1


class RaftLogCorrupt(Exception):
    """A Raft file holds damage no crash explains; the node must not start on it.

    ``path`` and ``offset`` say where the damage starts; the file is left untouched.
    """

    def __init__(self, message: str, *, path: str, offset: int, reason: str = ""):
        super().__init__(message)
        self.path, self.offset, self.reason = path, offset, reason


# -- frames ------------------------------------------------------------------------------

def _frame(magic: bytes, payload: bytes) -> bytes:
    if len(payload) > _MAX_PAYLOAD:
        raise ValueError(f"a Raft record holds at most {_MAX_PAYLOAD} bytes, "
                         f"got {len(payload)}")
    return _HEADER.pack(magic, len(payload), zlib.crc32(payload)) + payload


class _NotWhole(Exception):
    """The bytes at this offset are not a whole frame (torn, or damaged)."""


def _read_frame(data: bytes, pos: int, magic: bytes) -> tuple[bytes, int]:
    """The payload of the whole frame at ``pos`` and the offset after it; or _NotWhole."""
    left = len(data) - pos
    if left < FRAME_HEADER_SIZE:
        raise _NotWhole(f"partial record header ({left} of {FRAME_HEADER_SIZE} bytes)")
    found, length, crc = _HEADER.unpack_from(data, pos)
    if found != magic:
        raise _NotWhole(f"bad record magic {found!r} (expected {magic!r})")
    end = pos + FRAME_HEADER_SIZE + length
    if end > len(data):
        raise _NotWhole(f"record of {length} bytes runs past the end of the file "
                        f"({len(data) - pos - FRAME_HEADER_SIZE} there)")
    payload = data[pos + FRAME_HEADER_SIZE:end]
    if zlib.crc32(payload) != crc:
        raise _NotWhole("checksum mismatch")
    return payload, end


def _next_whole_frame(data: bytes, start: int, magic: bytes) -> int | None:
    """Offset of the first whole frame at or after ``start``, or None."""
    pos = data.find(magic, start)
    while pos >= 0:
        try:
            _read_frame(data, pos, magic)
            return pos
        except _NotWhole:
            pos = data.find(magic, pos + 1)
    return None


# -- log entries -------------------------------------------------------------------------

def encode_entry(entry: Entry) -> bytes:
    """One log record: the frame of ``entry``."""
    head = _ENTRY_HEAD.pack(entry.index, entry.term, int(entry.kind))
    return _frame(ENTRY_MAGIC, head + bytes(entry.data))


def _decode_entry(payload: bytes) -> Entry:
    if len(payload) < _ENTRY_HEAD.size:
        raise ValueError(f"entry payload of {len(payload)} bytes is too short")
    index, term, kind = _ENTRY_HEAD.unpack_from(payload)
    if index < 1:
        raise ValueError("entry index 0 (Raft log indices start at 1)")
    try:
        kind = EntryKind(kind)
    except ValueError:
        raise ValueError(f"unknown entry kind {kind}") from None
    return Entry(index, term, kind, payload[_ENTRY_HEAD.size:])


@dataclass
class LogScan:
    """What the bytes of a Raft log hold.

    ``status`` is ``ok``, ``torn`` or ``corrupt``. ``entries[i]`` starts at byte
    ``offsets[i]``; ``good_end`` is the end of the last whole, valid record (where a
    torn file is cut). ``error_offset`` is where the bad record starts; for ``corrupt``
    caused by a damaged frame, ``next_whole`` is the whole frame found after it.
    """
    entries: list = field(default_factory=list)
    offsets: list = field(default_factory=list)
    good_end: int = 0
    status: str = "ok"
    error_offset: int | None = None
    next_whole: int | None = None
    reason: str = ""


def scan_log(data: bytes) -> LogScan:
    """Walk the log's bytes: its entries, and whether the damage (if any) is a tail."""
    scan = LogScan()
    pos = 0
    while pos < len(data):
        try:
            payload, end = _read_frame(data, pos, ENTRY_MAGIC)
        except _NotWhole as bad:
            scan.next_whole = _next_whole_frame(data, pos + 1, ENTRY_MAGIC)
            scan.status = "torn" if scan.next_whole is None else "corrupt"
            scan.error_offset, scan.reason = pos, bad.args[0]
            break
        try:
            entry = _decode_entry(payload)
        except ValueError as e:
            scan.status, scan.error_offset, scan.reason = "corrupt", pos, str(e)
            break
        if scan.entries and entry.index != scan.entries[-1].index + 1:
            scan.status, scan.error_offset = "corrupt", pos
            scan.reason = (f"entry {entry.index} follows entry {scan.entries[-1].index} "
                           "(indices must be consecutive)")
            break
        scan.entries.append(entry)
        scan.offsets.append(pos)
        pos = end
    scan.good_end = pos
    return scan


# -- single-frame files: hard state and snapshot ------------------------------------------

def _read_only_frame(data: bytes, magic: bytes, path: str, what: str) -> bytes:
    """The payload of a file that must be exactly one whole frame."""
    def corrupt(offset: int, reason: str) -> RaftLogCorrupt:
        # atomic_write never exposes a half-written file, so damage here is not a crash.
        return RaftLogCorrupt(
            f"Bad {what} file {path} at offset {offset}: {reason}. It is replaced "
            "atomically, so no crash leaves it like this; the file was left untouched "
            "(restore it from a backup, or rebuild this node from its peers)",
            path=path, offset=offset, reason=reason)
    try:
        payload, end = _read_frame(data, 0, magic)
    except _NotWhole as bad:
        raise corrupt(0, bad.args[0]) from None
    if end != len(data):
        raise corrupt(end, f"{len(data) - end} unexpected bytes after the record")
    return payload


def encode_hard_state(hard_state: HardState) -> bytes:
    """The hard-state file's bytes."""
    vote = hard_state.voted_for
    payload = _HARD_STATE_HEAD.pack(hard_state.term, hard_state.commit, vote is not None)
    return _frame(HARD_STATE_MAGIC, payload + (vote or "").encode())


def decode_hard_state(data: bytes, path: str = "<hard state>") -> HardState:
    """Read a hard-state file's bytes; RaftLogCorrupt if they are damaged."""
    payload = _read_only_frame(data, HARD_STATE_MAGIC, path, "hard state")
    try:
        if len(payload) < _HARD_STATE_HEAD.size:
            raise ValueError("payload too short")
        term, commit, has_vote = _HARD_STATE_HEAD.unpack_from(payload)
        vote = payload[_HARD_STATE_HEAD.size:].decode()
        if has_vote not in (0, 1) or (not has_vote and vote):
            raise ValueError("inconsistent vote field")
    except (ValueError, UnicodeDecodeError) as e:
        raise RaftLogCorrupt(f"Bad hard state file {path} at offset {FRAME_HEADER_SIZE}: "
                             f"{e}; the file was left untouched",
                             path=path, offset=FRAME_HEADER_SIZE, reason=str(e)) from None
    return HardState(term, vote if has_vote else None, commit)


def _encode_names(names) -> bytes:
    out = [_COUNT.pack(len(names))]
    for name in sorted(names):
        raw = name.encode()
        out.append(_NAME_LEN.pack(len(raw)) + raw)
    return b"".join(out)


def _decode_names(payload: bytes, pos: int) -> tuple[frozenset, int]:
    (count,), pos = _COUNT.unpack_from(payload, pos), pos + _COUNT.size
    names = []
    for _ in range(count):
        (length,), pos = _NAME_LEN.unpack_from(payload, pos), pos + _NAME_LEN.size
        if pos + length > len(payload):
            raise ValueError("member name runs past the end of the record")
        names.append(payload[pos:pos + length].decode())
        pos += length
    return frozenset(names), pos


def encode_snapshot(snapshot: Snapshot) -> bytes:
    """The snapshot file's bytes: meta (with membership) and data, in one frame."""
    meta = snapshot.meta
    payload = b"".join((_SNAPSHOT_HEAD.pack(meta.index, meta.term),
                        _encode_names(meta.membership.voters),
                        _encode_names(meta.membership.learners), bytes(snapshot.data)))
    return _frame(SNAPSHOT_MAGIC, payload)


def decode_snapshot(data: bytes, path: str = "<snapshot>") -> Snapshot:
    """Read a snapshot file's bytes; RaftLogCorrupt if they are damaged."""
    payload = _read_only_frame(data, SNAPSHOT_MAGIC, path, "snapshot")
    try:
        index, term = _SNAPSHOT_HEAD.unpack_from(payload)
        voters, pos = _decode_names(payload, _SNAPSHOT_HEAD.size)
        learners, pos = _decode_names(payload, pos)
    except (ValueError, UnicodeDecodeError, struct.error) as e:
        raise RaftLogCorrupt(f"Bad snapshot file {path} at offset {FRAME_HEADER_SIZE}: "
                             f"{e}; the file was left untouched",
                             path=path, offset=FRAME_HEADER_SIZE, reason=str(e)) from None
    return Snapshot(SnapshotMeta(index, term, Membership(voters, learners)), payload[pos:])
