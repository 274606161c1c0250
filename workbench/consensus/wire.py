"""Raft messages as bytes: one checksummed frame per message, sans I/O.

Theory of operation
-------------------
A message travels as the same kind of **frame** the Raft storage writes
(``storage.raft_records``)::

    magic "RMS1" | payload length (u32) | crc32 of the payload (u32) | payload

The payload is a type code (u8), the fields every message has, then the fields of its
class, in the order below (integers big-endian; a *name* is length u16 | utf-8; an
*optional* is present u8, then a u64 only when present; a *bool* is u8 0 or 1)::

    every message     type u8 | src name | dst name | term u64
    1 VoteRequest     pre_vote bool | last_log_index u64 | last_log_term u64 | transfer bool
    2 VoteResponse    pre_vote bool | granted bool
    3 AppendEntries   prev_log_index u64 | prev_log_term u64 | leader_commit u64 |
                      read_context optional | count u32 |
                      per entry: index u64 | term u64 | kind u8 | length u32 | data
    4 AppendResponse  success bool | match_index u64 | conflict_index u64 |
                      conflict_term optional | read_context optional | rejected_index u64
    5 InstallSnapshot index u64 | term u64 | voters | learners | length u64 | data
                      (a name list is count u32, then the names sorted, as in the
                      snapshot file)
    6 TimeoutNow      nothing more

``read_context`` is a ReadIndex round number, so only None or an int in u64 range can be
sent; anything else is refused when encoding rather than silently changed on the way.

Bytes from a peer are trusted no further than their checksum and their grammar: every
field is bounds-checked and any flaw is a :class:`WireError`. A TCP stream has no record
marks to find the next frame by, so after a bad frame the connection must be closed (the
peer reconnects, and Raft treats what was in flight as lost messages). A length over
:data:`MAX_MESSAGE_BYTES` is refused as soon as the header arrives, before a hostile or
corrupt peer can make the reader hold that much.

:class:`FrameReader` turns a stream into messages. A snapshot of hundreds of megabytes
arrives in many small reads; each read is appended once and only the 12-byte header is
looked at until the frame is complete, so the work stays linear in the bytes received.
The bytes of whole frames leave the buffer at the end of each feed (what stays behind
arrived in that same feed, so this copying is linear too).
"""

from __future__ import annotations

import struct
import zlib

from ..raft.messages import (AppendEntries, AppendResponse, InstallSnapshot, Message,
                             TimeoutNow, VoteRequest, VoteResponse)
from ..raft.types import Entry, EntryKind, Membership, Snapshot, SnapshotMeta
from ..storage.raft_records import (FRAME_HEADER_SIZE, _HEADER, _decode_names,
                                    _encode_names, _frame)

__all__ = ["MESSAGE_MAGIC", "MAX_MESSAGE_BYTES", "WireError", "encode_message",
           "decode_message", "FrameReader"]

MESSAGE_MAGIC = b"RMS1"
MAX_MESSAGE_BYTES = 512 * 1024 * 1024

_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_ENTRY_HEAD = struct.Struct(">QQBI")

_TYPE_CODES = {VoteRequest: 1, VoteResponse: 2, AppendEntries: 3, AppendResponse: 4,
               InstallSnapshot: 5, TimeoutNow: 6}


class WireError(ValueError):
    """Bytes from a peer that are not a valid message frame (bad magic, checksum, length
    over the limit, unknown message type, truncated fields). The connection that sent
    them must be closed: a byte stream cannot be resynchronised."""


# -- encoding ----------------------------------------------------------------------------

def _name(name: str) -> bytes:
    raw = name.encode()
    return _U16.pack(len(raw)) + raw


def _optional(value: int | None) -> bytes:
    return b"\x00" if value is None else b"\x01" + _U64.pack(value)


def _read_context(value) -> bytes:
    if value is not None and (type(value) is not int or not 0 <= value < 2**64):
        raise ValueError(f"read_context must be None or an int in u64 range, got {value!r}")
    return _optional(value)


def _bool(value: bool) -> bytes:
    return b"\x01" if value else b"\x00"


def _body(m: Message) -> list[bytes]:
    match m:
        case VoteRequest():
            return [_bool(m.pre_vote), _U64.pack(m.last_log_index), _U64.pack(m.last_log_term),
                    _bool(m.transfer)]
        case VoteResponse():
            return [_bool(m.pre_vote), _bool(m.granted)]
        case AppendEntries():
            parts = [_U64.pack(m.prev_log_index), _U64.pack(m.prev_log_term),
                     _U64.pack(m.leader_commit), _read_context(m.read_context),
                     _U32.pack(len(m.entries))]
            for entry in m.entries:
                data = bytes(entry.data)
                parts += [_ENTRY_HEAD.pack(entry.index, entry.term, int(entry.kind), len(data)),
                          data]
            return parts
        case AppendResponse():
            return [_bool(m.success), _U64.pack(m.match_index), _U64.pack(m.conflict_index),
                    _optional(m.conflict_term), _read_context(m.read_context),
                    _U64.pack(m.rejected_index)]
        case InstallSnapshot():
            meta, data = m.snapshot.meta, bytes(m.snapshot.data)
            return [_U64.pack(meta.index), _U64.pack(meta.term),
                    _encode_names(meta.membership.voters),
                    _encode_names(meta.membership.learners), _U64.pack(len(data)), data]
        case TimeoutNow():
            return []


def encode_message(message: Message) -> bytes:
    """One whole frame carrying ``message``. ValueError if a field cannot be sent (a
    number outside u64, a name over 65535 bytes, a frame over MAX_MESSAGE_BYTES, ...)."""
    code = _TYPE_CODES.get(type(message))
    if code is None:
        raise ValueError(f"not a Raft message: {message!r}")
    try:
        payload = b"".join([_U8.pack(code), _name(message.src), _name(message.dst),
                            _U64.pack(message.term), *_body(message)])
    except struct.error as e:
        raise ValueError(f"cannot encode {type(message).__name__}: {e}") from None
    if len(payload) > MAX_MESSAGE_BYTES:
        raise ValueError(f"a message holds at most {MAX_MESSAGE_BYTES} bytes, "
                         f"got {len(payload)}")
    return _frame(MESSAGE_MAGIC, payload)


# -- decoding ----------------------------------------------------------------------------

class _Fields:
    """Reads a payload's fields in order; every shortfall is a WireError."""

    def __init__(self, payload: bytes):
        self.payload, self.pos = payload, 0

    def take(self, size: int, what: str) -> bytes:
        end = self.pos + size
        if end > len(self.payload):
            raise WireError(f"{what} runs past the end of the message "
                            f"({size} bytes at offset {self.pos} of {len(self.payload)})")
        raw, self.pos = self.payload[self.pos:end], end
        return raw

    def unpack(self, shape: struct.Struct, what: str) -> tuple:
        return shape.unpack(self.take(shape.size, what))

    def u64(self, what: str) -> int:
        return self.unpack(_U64, what)[0]

    def flag(self, what: str) -> bool:
        (value,) = self.unpack(_U8, what)
        if value > 1:
            raise WireError(f"{what} is {value}, not a boolean (0 or 1)")
        return value == 1

    def optional(self, what: str) -> int | None:
        return self.u64(what) if self.flag(f"{what} presence") else None

    def name(self, what: str) -> str:
        (length,) = self.unpack(_U16, f"{what} length")
        try:
            return self.take(length, what).decode()
        except UnicodeDecodeError:
            raise WireError(f"{what} is not utf-8") from None

    def names(self, what: str) -> frozenset[str]:
        try:
            names, self.pos = _decode_names(self.payload, self.pos)
        except (ValueError, struct.error) as e:
            raise WireError(f"bad {what} list: {e}") from None
        return names

    def end(self) -> None:
        if self.pos != len(self.payload):
            raise WireError(f"{len(self.payload) - self.pos} unexpected bytes after the "
                            "last field")


def _entry(fields: _Fields) -> Entry:
    index, term, kind, length = fields.unpack(_ENTRY_HEAD, "entry header")
    try:
        kind = EntryKind(kind)
    except ValueError:
        raise WireError(f"unknown entry kind {kind}") from None
    return Entry(index, term, kind, fields.take(length, f"data of entry {index}"))


def _vote_request(common: dict, f: _Fields) -> VoteRequest:
    return VoteRequest(**common, pre_vote=f.flag("pre_vote"),
                       last_log_index=f.u64("last_log_index"),
                       last_log_term=f.u64("last_log_term"), transfer=f.flag("transfer"))


def _vote_response(common: dict, f: _Fields) -> VoteResponse:
    return VoteResponse(**common, pre_vote=f.flag("pre_vote"), granted=f.flag("granted"))


def _append_entries(common: dict, f: _Fields) -> AppendEntries:
    prev_log_index, prev_log_term = f.u64("prev_log_index"), f.u64("prev_log_term")
    leader_commit, read_context = f.u64("leader_commit"), f.optional("read_context")
    (count,) = f.unpack(_U32, "entry count")
    entries = tuple(_entry(f) for _ in range(count))
    return AppendEntries(**common, prev_log_index=prev_log_index, prev_log_term=prev_log_term,
                         entries=entries, leader_commit=leader_commit,
                         read_context=read_context)


def _append_response(common: dict, f: _Fields) -> AppendResponse:
    return AppendResponse(**common, success=f.flag("success"), match_index=f.u64("match_index"),
                          conflict_index=f.u64("conflict_index"),
                          conflict_term=f.optional("conflict_term"),
                          read_context=f.optional("read_context"),
                          rejected_index=f.u64("rejected_index"))


def _install_snapshot(common: dict, f: _Fields) -> InstallSnapshot:
    index, term = f.u64("snapshot index"), f.u64("snapshot term")
    membership = Membership(f.names("voters"), f.names("learners"))
    data = f.take(f.u64("snapshot data length"), "snapshot data")
    return InstallSnapshot(**common, snapshot=Snapshot(SnapshotMeta(index, term, membership), data))


def _timeout_now(common: dict, f: _Fields) -> TimeoutNow:
    return TimeoutNow(**common)


_DECODERS = {_TYPE_CODES[VoteRequest]: _vote_request, _TYPE_CODES[VoteResponse]: _vote_response,
             _TYPE_CODES[AppendEntries]: _append_entries,
             _TYPE_CODES[AppendResponse]: _append_response,
             _TYPE_CODES[InstallSnapshot]: _install_snapshot,
             _TYPE_CODES[TimeoutNow]: _timeout_now}


def decode_message(payload: bytes) -> Message:
    """The message in a frame's ``payload`` (its header and checksum already checked).
    WireError if the bytes are not exactly one message."""
    f = _Fields(bytes(payload))
    (code,) = f.unpack(_U8, "message type")
    decoder = _DECODERS.get(code)
    if decoder is None:
        raise WireError(f"unknown message type {code}")
    common = {"src": f.name("src"), "dst": f.name("dst"), "term": f.u64("term")}
    message = decoder(common, f)
    f.end()
    return message


# -- streams -----------------------------------------------------------------------------

class FrameReader:
    """Incremental: feed() bytes as they arrive from a socket, get whole messages back.

    After a WireError the reader refuses all further input: the stream is lost and its
    connection must be closed. Messages that came whole in the same feed as the bad frame
    are dropped with it (to Raft, lost messages)."""

    __slots__ = ("_buffer", "_broken")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._broken: WireError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        """The messages completed by ``data``, in order; WireError on a bad frame."""
        if self._broken is not None:
            raise WireError(f"the stream already failed: {self._broken}")
        buffer = self._buffer
        buffer += data
        messages, pos = [], 0
        try:
            while len(buffer) - pos >= FRAME_HEADER_SIZE:
                magic, length, crc = _HEADER.unpack_from(buffer, pos)
                if magic != MESSAGE_MAGIC:
                    raise WireError(f"bad frame magic {magic!r} (expected {MESSAGE_MAGIC!r})")
                if length > MAX_MESSAGE_BYTES:
                    raise WireError(f"frame announces {length} bytes, over the limit of "
                                    f"{MAX_MESSAGE_BYTES}")
                end = pos + FRAME_HEADER_SIZE + length
                if end > len(buffer):
                    break
                with memoryview(buffer) as view, view[pos + FRAME_HEADER_SIZE:end] as body:
                    payload = bytes(body)
                if zlib.crc32(payload) != crc:
                    raise WireError("frame checksum mismatch")
                messages.append(decode_message(payload))
                pos = end
        except WireError as e:
            self._broken, self._buffer = e, bytearray()
            raise
        if pos:
            self._buffer = buffer[pos:]
        return messages
