"""Bitmap commands: a string value read as a row of bits.

Bit 0 is the most significant bit of the first byte, as in Valkey, so ``SETBIT k 7 1``
on an empty key makes the string ``b"\\x01"``. Strings stay immutable ``bytes`` in the
keyspace: a write builds the new string once (``bytearray`` then ``bytes``), and reads
count and search whole byte runs (``int.bit_count``, ``bytes.lstrip``), never bit by bit.

Writes past the end grow the string with zero bytes, up to ``proto-max-bulk-len``
(512 MB, offsets below 2**32 bits) as Valkey allows; such a string really takes 512 MB
here too. If Python cannot allocate it, the command fails with an ``OOM`` error instead
of taking the node down.

Valkey 8 parses every argument of BITCOUNT/BITPOS before looking up the key (Redis 7.0
answered a missing key before checking them) and accepts ``BITCOUNT key start``
without ``end``; we follow Valkey.
"""

from __future__ import annotations

from ..resp import ReplyError
from .keyspace import NOT_INTEGER, SYNTAX
from .table import command
from .values import parse_int

_MAX_BULK = 512 * 1024 * 1024           # proto-max-bulk-len, in bytes
BAD_OFFSET = ReplyError("ERR bit offset is not an integer or out of range")
BAD_BIT = ReplyError("ERR bit is not an integer or out of range")
OOM = ReplyError("OOM command not allowed when used memory > 'maxmemory'.")


def bit_offset(raw: bytes, bits: int = 0) -> int:
    """A bit offset as ``getBitOffsetFromArgument`` reads it; ``#N`` means ``N * bits``
    when ``bits`` is given (BITFIELD)."""
    by_width = bits > 0 and raw[:1] == b"#"
    n = parse_int(raw[1:] if by_width else raw)
    if n is None:
        raise BAD_OFFSET
    if by_width:
        n *= bits
    if n < 0 or (n >> 3) >= _MAX_BULK:
        raise BAD_OFFSET
    return n


def grown(value: bytes | None, size: int) -> bytearray:
    """A writable copy of ``value`` at least ``size`` bytes long (zero padded)."""
    try:
        buf = bytearray(max(size, len(value or b"")))
    except MemoryError:
        raise OOM from None
    if value:
        buf[:len(value)] = value
    return buf


def _int_arg(raw: bytes) -> int:
    n = parse_int(raw)
    if n is None:
        raise NOT_INTEGER
    return n


@command("SETBIT", 4, "write denyoom", 1, 1, 1, group="bitmap", since="2.2.0")
def setbit(ctx, argv):
    """Set or clear one bit of a string (growing it); return the bit's old value."""
    key = argv[1]
    offset = bit_offset(argv[2])
    on = parse_int(argv[3])
    if on is None or on not in (0, 1):
        raise BAD_BIT
    old = ctx.lookup_typed(key, bytes)
    byte, mask = offset >> 3, 0x80 >> (offset & 7)
    was = int(old is not None and byte < len(old) and bool(old[byte] & mask))
    grows = old is None or byte >= len(old)
    if grows or was != on:          # Valkey fires setbit only if the string changed
        buf = grown(old, byte + 1)
        buf[byte] = (buf[byte] | mask) if on else (buf[byte] & ~mask)
        ctx.set_value(key, bytes(buf), keep_ttl=True)
        ctx.changed(key, "$", "setbit")
    return was


@command("GETBIT", 3, "readonly fast", 1, 1, 1, group="bitmap", since="2.2.0")
def getbit(ctx, argv):
    """The value of one bit of a string (0 past its end)."""
    offset = bit_offset(argv[2])
    value = ctx.lookup_typed(argv[1], bytes)
    byte = offset >> 3
    if value is None or byte >= len(value):
        return 0
    return int(bool(value[byte] & (0x80 >> (offset & 7))))


def _bit_unit(raw: bytes) -> bool:
    """True for BIT, False for BYTE."""
    unit = raw.upper()
    if unit not in (b"BIT", b"BYTE"):
        raise SYNTAX
    return unit == b"BIT"


def _clamp(start: int, end: int, total: int) -> tuple[int, int]:
    """Negative indexes from the end, then clipped to ``0..total-1`` (Valkey's order)."""
    if start < 0:
        start += total
    if end < 0:
        end += total
    start, end = max(start, 0), max(end, 0)
    return start, min(end, total - 1)


def _bit_range(start: int, end: int, in_bits: bool) -> tuple[int, int]:
    """A (start, end) range in bytes or bits, as a range of bit positions, both inclusive."""
    return (start, end) if in_bits else (start * 8, end * 8 + 7)


def _segment(value: bytes, first_bit: int, last_bit: int, fill: int) -> bytearray:
    """The bytes covering bits ``first_bit..last_bit``, the bits outside set to ``fill``."""
    seg = bytearray(value[first_bit >> 3:(last_bit >> 3) + 1])
    head = 0xFF00 >> (first_bit & 7) & 0xFF        # bits before first_bit in the first byte
    tail = 0xFF >> ((last_bit & 7) + 1)             # bits after last_bit in the last byte
    if fill:
        seg[0] |= head
        seg[-1] |= tail
    else:
        seg[0] &= ~head & 0xFF
        seg[-1] &= ~tail & 0xFF
    return seg


@command("BITCOUNT", -2, "readonly", 1, 1, 1, group="bitmap", since="2.6.0")
def bitcount(ctx, argv):
    """The number of set bits of a string, optionally within a byte or bit range."""
    argc = len(argv)
    if argc > 5:
        raise SYNTAX
    in_bits = False
    start = end = None
    if argc >= 3:
        start = _int_arg(argv[2])
        if argc == 5:
            in_bits = _bit_unit(argv[4])
        if argc >= 4:
            end = _int_arg(argv[3])
    value = ctx.lookup_typed(argv[1], bytes)
    if value is None:
        return 0
    if start is None:
        return int.from_bytes(value, "big").bit_count()
    total = len(value)
    if end is None:
        end = total - 1
    if start < 0 and end < 0 and start > end:
        return 0
    start, end = _clamp(start, end, total * 8 if in_bits else total)
    if start > end:
        return 0
    first, last = _bit_range(start, end, in_bits)
    return int.from_bytes(_segment(value, first, last, 0), "big").bit_count()


@command("BITPOS", -3, "readonly", 1, 1, 1, group="bitmap", since="2.8.7")
def bitpos(ctx, argv):
    """The position of the first bit set to 1 or 0 in a string, optionally within a range.

    Looking for a 0 with no ``end`` given, the string counts as padded with zeros on the
    right: all ones answer the first bit past the end. With ``end`` given, -1.
    """
    argc = len(argv)
    bit = parse_int(argv[2])
    if bit is None:
        raise NOT_INTEGER
    if bit not in (0, 1):
        raise ReplyError("ERR The bit argument must be 1 or 0.")
    if argc > 6:
        raise SYNTAX
    in_bits = end_given = False
    start, end = 0, None
    if argc >= 4:
        start = _int_arg(argv[3])
        if argc == 6:
            in_bits = _bit_unit(argv[5])
        if argc >= 5:
            end = _int_arg(argv[4])
            end_given = True
    value = ctx.lookup_typed(argv[1], bytes)
    if value is None:
        return -1 if bit else 0
    total = len(value)
    if end is None:
        end = total - 1
    start, end = _clamp(start, end, total * 8 if in_bits else total)
    if start > end:
        return -1
    first, last = _bit_range(start, end, in_bits)
    seg = _segment(value, first, last, 0 if bit else 1)
    skip = b"\x00" if bit else b"\xff"
    rest = seg.lstrip(skip)
    if not rest:                    # no such bit in the range
        return -1 if bit or end_given else last + 1
    byte_at = len(seg) - len(rest)
    byte = rest[0] if bit else rest[0] ^ 0xFF
    return ((first >> 3) + byte_at) * 8 + (8 - byte.bit_length())


_BITOPS = {b"AND": int.__and__, b"OR": int.__or__, b"XOR": int.__xor__, b"NOT": None}


@command("BITOP", -4, "write denyoom", 2, -1, 1, group="bitmap", since="2.6.0")
def bitop(ctx, argv):
    """AND, OR, XOR of strings (or NOT of one) into a destination; return its length.

    Shorter and missing sources count as zero bytes up to the longest; an empty result
    deletes the destination.
    """
    op = argv[1].upper()
    if op not in _BITOPS:
        raise SYNTAX
    if op == b"NOT" and len(argv) != 4:
        raise ReplyError("ERR BITOP NOT must be called with a single source key.")
    destination = argv[2]
    sources = [ctx.lookup_typed(key, bytes) or b"" for key in argv[3:]]
    size = max(len(s) for s in sources)
    if size:
        if op == b"NOT":
            result = (~int.from_bytes(sources[0], "big") & ((1 << (8 * size)) - 1))
        else:
            combine = _BITOPS[op]
            result = int.from_bytes(sources[0].ljust(size, b"\0"), "big")
            for s in sources[1:]:
                result = combine(result, int.from_bytes(s.ljust(size, b"\0"), "big"))
        ctx.lookup(destination)         # an expired destination fires expired, as setKey does
        ctx.set_value(destination, result.to_bytes(size, "big"))
        ctx.changed(destination, "$", "set")
    elif ctx.delete(destination):
        ctx.changed(destination, "g", "del")
    return size


# -- BITFIELD --------------------------------------------------------------------------

_WRAP, _SAT, _FAIL = "wrap", "sat", "fail"
BAD_TYPE = ReplyError("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is "
                      "not supported but i64 is.")


def _field_type(raw: bytes) -> tuple[bool, int]:
    """(signed, bits) of ``i<bits>`` (1..64) or ``u<bits>`` (1..63); lowercase only."""
    signed = raw[:1] == b"i"
    if not signed and raw[:1] != b"u":
        raise BAD_TYPE
    bits = parse_int(raw[1:])
    if bits is None or bits < 1 or bits > (64 if signed else 63):
        raise BAD_TYPE
    return signed, bits


def _get_field(value: bytes, offset: int, bits: int, signed: bool) -> int:
    first, last = offset >> 3, (offset + bits - 1) >> 3
    chunk = value[first:last + 1].ljust(last - first + 1, b"\0")
    n = int.from_bytes(chunk, "big") >> (7 - ((offset + bits - 1) & 7)) & ((1 << bits) - 1)
    if signed and n >> (bits - 1):
        n -= 1 << bits
    return n


def _set_field(buf: bytearray, offset: int, bits: int, n: int) -> None:
    first, last = offset >> 3, (offset + bits - 1) >> 3
    shift = 7 - ((offset + bits - 1) & 7)
    mask = ((1 << bits) - 1) << shift
    width = last - first + 1
    old = int.from_bytes(buf[first:last + 1], "big")
    new = (old & ~mask) | ((n << shift) & mask)
    buf[first:last + 1] = new.to_bytes(width, "big")


def _fit(n: int, signed: bool, bits: int, overflow: str):
    """``n`` stored in a field: (value, overflowed). WRAP wraps around, SAT clamps;
    FAIL leaves the value to the caller."""
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if low <= n <= high:
        return n, False
    if overflow == _SAT:
        return (high if n > high else low), True
    wrapped = n & ((1 << bits) - 1)
    if signed and wrapped > high:
        wrapped -= 1 << bits
    return wrapped, True


def _bitfield_ops(argv) -> list:
    """Parse all the subcommands first, as Valkey does: any error refuses the command."""
    ops, overflow, i = [], _WRAP, 2
    while i < len(argv):
        left = len(argv) - i - 1
        sub = argv[i].upper()
        if sub == b"OVERFLOW" and left >= 1:
            kind = argv[i + 1].upper()
            if kind not in (b"WRAP", b"SAT", b"FAIL"):
                raise ReplyError("ERR Invalid OVERFLOW type specified")
            overflow = kind.decode().lower()
            i += 2
            continue
        if not ((sub == b"GET" and left >= 2) or (sub in (b"SET", b"INCRBY") and left >= 3)):
            raise SYNTAX
        signed, bits = _field_type(argv[i + 1])
        offset = bit_offset(argv[i + 2], bits)
        amount = 0
        if sub != b"GET":
            amount = _int_arg(argv[i + 3])
        ops.append((sub, signed, bits, offset, amount, overflow))
        i += 3 if sub == b"GET" else 4
    return ops


def _bitfield(ctx, argv, readonly_command: bool):
    key = argv[1]
    ops = _bitfield_ops(argv)
    writes = [op for op in ops if op[0] != b"GET"]
    if not writes:
        value = ctx.lookup_typed(key, bytes) or b""
        return [_get_field(value, offset, bits, signed) for _, signed, bits, offset, _, _ in ops]
    if readonly_command:
        raise ReplyError("ERR BITFIELD_RO only supports the GET subcommand")
    old = ctx.lookup_typed(key, bytes)
    size = max((offset + bits - 1) >> 3 for _, _, bits, offset, _, _ in writes) + 1
    grew = old is None or size > len(old)
    buf = grown(old, size)
    replies, changes = [], 0
    for sub, signed, bits, offset, amount, overflow in ops:
        current = _get_field(buf, offset, bits, signed)
        if sub == b"GET":
            replies.append(current)
            continue
        if sub == b"SET":
            # the value is a 64-bit integer read as the field's type first
            target = amount if signed else amount & (2**64 - 1)
        else:
            target = current + amount
        new, overflowed = _fit(target, signed, bits, overflow)
        if overflowed and overflow == _FAIL:
            replies.append(None)
            continue
        replies.append(current if sub == b"SET" else new)
        _set_field(buf, offset, bits, new)
        if grew or new != current:
            changes += 1
    if changes:
        ctx.set_value(key, bytes(buf), keep_ttl=True)
        ctx.changed(key, "$", "setbit")
    elif grew:
        # Valkey keeps the zero-padded string without an event or propagation, which
        # would leave a replica without the key: we keep it and propagate it, quietly.
        ctx.set_value(key, bytes(buf), keep_ttl=True)
        ctx.changed(key, "$", None)
    return replies


@command("BITFIELD", -2, "write denyoom", 1, 1, 1, group="bitmap", since="3.2.0")
def bitfield(ctx, argv):
    """Get, set and increment integer fields of any width (i1..i64, u1..u63) in a string."""
    return _bitfield(ctx, argv, readonly_command=False)


@command("BITFIELD_RO", -2, "readonly fast", 1, 1, 1, group="bitmap", since="6.0.0")
def bitfield_ro(ctx, argv):
    """BITFIELD limited to GET: a read-only command, allowed on replicas."""
    return _bitfield(ctx, argv, readonly_command=True)

