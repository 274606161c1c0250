"""DUMP and RESTORE: one key's value as an opaque payload, and back.

The payload is the workbench's own format, not Valkey's RDB bytes (a payload moves
between workbench nodes, not to or from a real Valkey), built the way Valkey builds its
own -- a type, the value, then a footer of a format version and a checksum::

    payload  = type (1 byte) | value | version (2 bytes, little endian) | CRC-32 (4 bytes, LE)
    type     = 0 string, 1 list, 2 set, 3 sorted set, 4 hash   (Valkey's RDB type numbers),
               15 stream
    value    = string:     blob
               list, set:  count, then count blobs           (a list head to tail)
               sorted set: count, then count (blob, score)   (score: 8-byte IEEE double, BE)
               hash:       count, then count (field blob, value blob)
               stream:     blob of the RESP-encoded commands that rebuild it, as the AOF
                           rewrite spells them (XADD .., XSETID, XGROUP CREATE, XCLAIM ..)
    blob     = length (4 bytes, big endian) | bytes
    count    = 4 bytes, big endian

The CRC-32 covers everything before it. A payload whose version is not
:data:`FORMAT_VERSION` or whose checksum does not match is refused with Valkey's
``DUMP payload version or checksum are wrong``; one that passes but does not parse gets
``Bad data format``.

``RESTORE`` propagates deterministically: a relative TTL becomes an absolute one
(``... <unix ms> ABSTTL``), as Valkey rewrites it, so the AOF and replicas rebuild the
same expiry.
"""

from __future__ import annotations

import struct
import zlib
from collections import deque

from ..resp import OK, ReplyError
from .keyspace import SYNTAX
from .table import command
from .values import parse_int

FORMAT_VERSION = 1
STRING, LIST, SET, ZSET, HASH = 0, 1, 2, 3, 4
STREAM = 15         # added later: payloads of the other types are unchanged

BAD_PAYLOAD = ReplyError("ERR DUMP payload version or checksum are wrong")
BAD_FORMAT = ReplyError("ERR Bad data format")
BUSYKEY = ReplyError("BUSYKEY Target key name already exists.")
_U32 = struct.Struct(">I")
_DOUBLE = struct.Struct(">d")


def _zset_class():
    from .zset import ZSet               # the sorted set type, imported when first needed
    return ZSet


# -- writing a payload ----------------------------------------------------------------------
def _blob(out: list, data: bytes) -> None:
    out.append(_U32.pack(len(data)))
    out.append(data)


def serialize(value) -> bytes:
    """The payload of ``value`` (see the module docstring)."""
    kind = type(value)
    out: list = []
    if kind is bytes:
        out.append(bytes([STRING]))
        _blob(out, value)
    elif kind is deque or kind is set:
        out.append(bytes([LIST if kind is deque else SET]))
        out.append(_U32.pack(len(value)))
        for item in value:
            _blob(out, item)
    elif kind is dict:
        out.append(bytes([HASH]))
        out.append(_U32.pack(len(value)))
        for field, item in value.items():
            _blob(out, field)
            _blob(out, item)
    elif kind is _zset_class():
        out.append(bytes([ZSET]))
        out.append(_U32.pack(len(value)))
        for member, score in value.items():
            _blob(out, member)
            out.append(_DOUBLE.pack(score))
    elif kind.__name__ == "Stream":
        from ..resp import encode_command
        from .snapshot import stream_commands
        out.append(bytes([STREAM]))
        _blob(out, b"".join(encode_command(c) for c in stream_commands(b"s", value)))
    else:
        raise TypeError(f"cannot serialize a {kind.__name__} value")
    body = b"".join(out) + struct.pack("<H", FORMAT_VERSION)
    return body + struct.pack("<I", zlib.crc32(body))


# -- reading one back -----------------------------------------------------------------------
def verify(payload: bytes) -> bool:
    """Valkey's ``verifyDumpPayload``: the footer's version and checksum are right."""
    if len(payload) < 7:
        return False
    body, crc = payload[:-4], struct.unpack("<I", payload[-4:])[0]
    version = struct.unpack("<H", body[-2:])[0]
    return version == FORMAT_VERSION and zlib.crc32(body) == crc


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("payload ends early")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u32(self) -> int:
        return _U32.unpack(self.take(4))[0]

    def blob(self) -> bytes:
        return self.take(self.u32())


def deserialize(payload: bytes):
    """The value a verified payload holds; ``ValueError`` if it does not parse."""
    r = _Reader(payload[:-6])                  # without the version and the checksum
    kind = r.take(1)[0]
    if kind == STRING:
        value = r.blob()
    elif kind in (LIST, SET):
        items = [r.blob() for _ in range(r.u32())]
        value = deque(items) if kind == LIST else set(items)
        if not value or (kind == SET and len(value) != len(items)):
            raise ValueError("empty or repeated elements")
    elif kind == HASH:
        count = r.u32()
        value = {}
        for _ in range(count):
            field = r.blob()
            value[field] = r.blob()
        if not value or len(value) != count:
            raise ValueError("empty hash or repeated fields")
    elif kind == ZSET:
        count = r.u32()
        value = _zset_class()()
        for _ in range(count):
            member = r.blob()
            score = _DOUBLE.unpack(r.take(8))[0]
            if score != score:
                raise ValueError("NaN score")
            value.add(member, score)
        if not len(value) or len(value) != count:
            raise ValueError("empty sorted set or repeated members")
    elif kind == STREAM:
        value = _stream_from(r.blob())
    else:
        raise ValueError(f"unknown type {kind}")
    if r.pos != len(r.data):
        raise ValueError("trailing bytes")
    return value


def _stream_from(commands: bytes):
    """Replay a stream's rebuilding commands into a scratch keyspace (as an AOF loads)."""
    from .keyspace import Keyspace
    from .snapshot import load
    scratch = Keyspace(databases=1)
    load(scratch, commands, now_ms=2**62)      # later than any delivery time it names
    if list(scratch.dbs[0].data) != [b"s"]:
        raise ValueError("not one stream")
    return scratch.dbs[0].data[b"s"]


# -- the commands ---------------------------------------------------------------------------
@command("DUMP", 2, "readonly", 1, 1, 1, group="generic", since="2.6.0")
def dump(ctx, argv):
    """Serialize the value stored at key (the workbench's payload format)."""
    value = ctx.lookup(argv[1])
    return None if value is None else serialize(value)


@command("RESTORE", -4, "write denyoom", 1, 1, 1, group="generic", since="2.6.0")
def restore(ctx, argv):
    """Create a key from a DUMP payload: RESTORE key ttl payload [REPLACE] [ABSTTL]
    [IDLETIME seconds] [FREQ frequency]."""
    key = argv[1]
    replace = absttl = False
    idletime = freq = None
    i = 4
    while i < len(argv):
        opt = argv[i].upper()
        more = len(argv) - i - 1
        if opt == b"REPLACE":
            replace = True
        elif opt == b"ABSTTL":
            absttl = True
        elif opt == b"IDLETIME" and more >= 1 and freq is None:
            idletime = parse_int(argv[i + 1])
            if idletime is None:
                raise ReplyError("ERR value is not an integer or out of range")
            if idletime < 0:
                raise ReplyError("ERR Invalid IDLETIME value, must be >= 0")
            i += 1
        elif opt == b"FREQ" and more >= 1 and idletime is None:
            freq = parse_int(argv[i + 1])
            if freq is None:
                raise ReplyError("ERR value is not an integer or out of range")
            if not 0 <= freq <= 255:
                raise ReplyError("ERR Invalid FREQ value, must be >= 0 and <= 255")
            i += 1
        else:
            raise SYNTAX
        i += 1
    if not replace and ctx.lookup(key) is not None:
        raise BUSYKEY
    ttl = parse_int(argv[2])
    if ttl is None:
        raise ReplyError("ERR value is not an integer or out of range")
    if ttl < 0:
        raise ReplyError("ERR Invalid TTL value, must be >= 0")
    payload = argv[3]
    if not verify(payload):
        raise BAD_PAYLOAD
    try:
        value = deserialize(payload)
    except (ValueError, struct.error, ImportError):
        raise BAD_FORMAT from None
    deleted = replace and ctx.lookup(key) is not None and ctx.delete(key)
    when = ttl if absttl or not ttl else ctx.now_ms + ttl
    if ttl and when <= ctx.now_ms and not ctx.applying:
        # already expired: nothing is created (a replaced key is deleted, as DEL)
        if deleted:
            ctx.changed(key, "g", "del")
            ctx.rewrite_as([b"DEL", key])
        return OK
    ctx.set_value(key, value)
    if ttl:
        ctx.db.expires[key] = when
        if not absttl:
            ctx.rewrite_as([b"RESTORE", key, b"%d" % when, *argv[3:], b"ABSTTL"])
    ctx.changed(key, "g", "restore")
    return OK
