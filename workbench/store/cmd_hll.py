"""HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, on Valkey's own string format.

A HyperLogLog is an ordinary string (TYPE says ``string``, GET returns its bytes) laid
out as Valkey lays it out, so a value copied from Valkey works here and back::

    "HYLL" | encoding (0 dense, 1 sparse) | 3 unused | cached cardinality (8 bytes LE,
    top bit set = stale) | registers

Dense registers are 16384 counters of 6 bits each, packed least significant bit first
(12288 bytes). An element goes to register ``hash & 16383`` and raises it to the length
of the run of zeros (plus one) in the rest of its 64-bit MurmurHash64A (seed
``0xadc83b19``), exactly as Valkey's ``hllPatLen``; the count is Valkey's ``hllCount``
(Ertl's improved estimator). The same inputs give the same registers and the same
count as Valkey.

What differs: we always write the dense encoding (Valkey starts sparse and turns
dense past ``hll-sparse-max-bytes``); sparse values are read, and become dense on the
next write. PFCOUNT never writes its cache back: Valkey's PFCOUNT may update the
cached cardinality (and so propagates), here it is a pure read, as its ``readonly``
flag says. A still-valid cache in a value copied from Valkey is honoured.
"""

from __future__ import annotations

import math
import struct

from ..resp import OK, ReplyError
from .keyspace import WRONGTYPE
from .table import command

P = 14                              # register index bits
REGISTERS = 1 << P                  # 16384
Q = 64 - P                          # bits left for the run of zeros
HEADER = 16
DENSE_SIZE = HEADER + REGISTERS * 6 // 8
DENSE, SPARSE = 0, 1
STALE = 0x80                        # top bit of the cached cardinality's last byte
ALPHA_INF = 0.721347520444481703680  # 0.5 / ln(2)

NOT_HLL = ReplyError("WRONGTYPE Key is not a valid HyperLogLog string value.")
CORRUPT = ReplyError("INVALIDOBJ Corrupted HLL object detected")

# -- the hash --------------------------------------------------------------------------
_M, _MASK = 0xC6A4A7935BD1E995, (1 << 64) - 1


def murmurhash64a(data: bytes, seed: int = 0xADC83B19) -> int:
    """MurmurHash2, 64-bit version, endian neutral (as Valkey's ``MurmurHash64A``)."""
    h = (seed ^ (len(data) * _M)) & _MASK
    body = len(data) & ~7
    for (k,) in struct.iter_unpack("<Q", data[:body]):
        k = (k * _M) & _MASK
        k ^= k >> 47
        h ^= (k * _M) & _MASK
        h = (h * _M) & _MASK
    if body != len(data):
        h ^= int.from_bytes(data[body:], "little")
        h = (h * _M) & _MASK
    h ^= h >> 47
    h = (h * _M) & _MASK
    return h ^ (h >> 47)


def register_and_run(element: bytes) -> tuple[int, int]:
    """(register index, length of the ``000..1`` pattern) for ``element`` (``hllPatLen``)."""
    h = murmurhash64a(element)
    rest = (h >> P) | (1 << Q)      # the sentinel keeps the run at most Q + 1
    return h & (REGISTERS - 1), (rest & -rest).bit_length()


# -- dense <-> one byte per register -----------------------------------------------------
# Four 6-bit registers fill three bytes: a = b0[0:6], b = b0[6:8]+b1[0:4],
# c = b1[4:8]+b2[0:2], d = b2[2:8]. The lanes are unpacked for all 4096 groups at once
# with big-integer arithmetic, one byte per lane (masks repeat per byte).
_GROUPS = REGISTERS // 4


def _lanes(byte: int) -> int:
    return int.from_bytes(bytes([byte]) * _GROUPS, "little")


_L03, _L0F, _L30, _L3C, _L3F, _LC0, _LF0, _LFC = map(
    _lanes, (0x03, 0x0F, 0x30, 0x3C, 0x3F, 0xC0, 0xF0, 0xFC))


def dense_to_raw(dense: bytes) -> bytearray:
    """The 16384 registers of a dense encoding, one per byte."""
    b0, b1, b2 = (int.from_bytes(dense[i::3], "little") for i in range(3))
    raw = bytearray(REGISTERS)
    raw[0::4] = (b0 & _L3F).to_bytes(_GROUPS, "little")
    raw[1::4] = (((b0 >> 6) & _L03) | ((b1 << 2) & _L3C)).to_bytes(_GROUPS, "little")
    raw[2::4] = (((b1 >> 4) & _L0F) | ((b2 << 4) & _L30)).to_bytes(_GROUPS, "little")
    raw[3::4] = ((b2 >> 2) & _L3F).to_bytes(_GROUPS, "little")
    return raw


def raw_to_dense(raw) -> bytes:
    """The dense encoding (without header) of 16384 one-byte registers."""
    r0, r1, r2, r3 = (int.from_bytes(raw[i::4], "little") for i in range(4))
    dense = bytearray(REGISTERS * 6 // 8)
    dense[0::3] = (r0 | ((r1 << 6) & _LC0)).to_bytes(_GROUPS, "little")
    dense[1::3] = (((r1 >> 2) & _L0F) | ((r2 << 4) & _LF0)).to_bytes(_GROUPS, "little")
    dense[2::3] = (((r2 >> 4) & _L03) | ((r3 << 2) & _LFC)).to_bytes(_GROUPS, "little")
    return bytes(dense)


def sparse_to_raw(body: bytes) -> bytearray:
    """Registers of Valkey's sparse encoding: ZERO ``00xxxxxx`` (1..64 zeros), XZERO
    ``01xxxxxx yyyyyyyy`` (1..16384 zeros), VAL ``1vvvvvxx`` (1..4 registers = 1..32)."""
    raw = bytearray(REGISTERS)
    i = pos = 0
    while pos < len(body):
        op = body[pos]
        if op & 0xC0 == 0:
            i += (op & 0x3F) + 1
            pos += 1
        elif op & 0xC0 == 0x40:
            if pos + 1 >= len(body):
                raise CORRUPT
            i += (((op & 0x3F) << 8) | body[pos + 1]) + 1
            pos += 2
        else:
            run = (op & 0x3) + 1
            if i + run > REGISTERS:
                raise CORRUPT
            raw[i:i + run] = bytes([((op >> 2) & 0x1F) + 1]) * run
            i += run
            pos += 1
        if i > REGISTERS:
            raise CORRUPT
    if i != REGISTERS:
        raise CORRUPT
    return raw


# -- values ----------------------------------------------------------------------------
def _checked(value) -> bytes:
    """``value`` if it is a valid HyperLogLog string (``isHLLObjectOrReply``)."""
    if type(value) is not bytes:
        raise WRONGTYPE
    if len(value) < HEADER or value[:4] != b"HYLL" or value[4] > SPARSE \
            or (value[4] == DENSE and len(value) != DENSE_SIZE):
        raise NOT_HLL
    return value


def registers(value: bytes) -> bytearray:
    """The registers of a checked HyperLogLog value, one per byte."""
    if value[4] == DENSE:
        return dense_to_raw(value[HEADER:])
    return sparse_to_raw(value[HEADER:])


def dense_value(raw, cached: int | None = None) -> bytes:
    """A dense HyperLogLog string; the cached cardinality is stale unless given."""
    card = (cached if cached is not None else 1 << 63).to_bytes(8, "little")
    return b"HYLL" + bytes([DENSE, 0, 0, 0]) + card + raw_to_dense(raw)


# -- the estimator ---------------------------------------------------------------------
def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        z_prime = z
        z += x * y
        y += y
        if z_prime == z:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y, z = 1.0, 1 - x
    while True:
        x = math.sqrt(x)
        z_prime = z
        y *= 0.5
        z -= math.pow(1 - x, 2) * y
        if z_prime == z:
            return z / 3


def estimate(raw) -> int:
    """The cardinality from the registers: Valkey's ``hllCount`` (Ertl, arXiv:1702.01284)."""
    m = float(REGISTERS)
    histogram = [raw.count(v) for v in range(Q + 2)]
    z = m * _tau((m - histogram[Q + 1]) / m)
    for j in range(Q, 0, -1):
        z += histogram[j]
        z *= 0.5
    z += m * _sigma(histogram[0] / m)
    e = ALPHA_INF * m * m / z
    return int(math.floor(e + 0.5))          # llroundl: halves away from zero (e >= 0)


# -- commands --------------------------------------------------------------------------
def _register(buf: bytearray, index: int) -> int:
    """Register ``index`` of a dense value (``HLL_DENSE_GET_REGISTER``)."""
    bit = HEADER * 8 + index * 6
    byte, shift = bit >> 3, bit & 7
    word = buf[byte] | (buf[byte + 1] << 8 if byte + 1 < len(buf) else 0)
    return (word >> shift) & 63


def _set_register(buf: bytearray, index: int, count: int) -> None:
    """Set register ``index`` of a dense value (``HLL_DENSE_SET_REGISTER``)."""
    bit = HEADER * 8 + index * 6
    byte, shift = bit >> 3, bit & 7
    buf[byte] = (buf[byte] & ~(63 << shift) & 0xFF) | ((count << shift) & 0xFF)
    if shift > 2:                       # the register runs into the next byte
        buf[byte + 1] = (buf[byte + 1] & ~(63 >> (8 - shift)) & 0xFF) | (count >> (8 - shift))


@command("PFADD", -2, "write denyoom fast", 1, 1, 1, group="hyperloglog", since="2.8.9")
def pfadd(ctx, argv):
    """Add elements to a HyperLogLog (creating it); 1 if its estimate may have changed."""
    key = argv[1]
    old = ctx.lookup(key)
    if old is None:
        buf, updated = bytearray(dense_value(bytearray(REGISTERS))), True
    else:
        old = _checked(old)
        # a dense value is updated in place (one register per element); sparse turns dense
        buf = bytearray(old if old[4] == DENSE else dense_value(registers(old)))
        updated = False
    for element in argv[2:]:
        index, run = register_and_run(element)
        if run > _register(buf, index):
            _set_register(buf, index, run)
            updated = True
    if updated:
        buf[15] |= STALE                # the cached cardinality no longer holds
        ctx.set_value(key, bytes(buf), keep_ttl=True)
        ctx.changed(key, "$", "pfadd")
    return int(updated)


def _union(ctx, keys) -> bytearray:
    """Register-wise maximum of the HyperLogLogs at ``keys`` (missing keys are empty)."""
    union = None
    for key in keys:
        value = ctx.lookup(key)
        if value is None:
            continue
        raw = registers(_checked(value))
        union = raw if union is None else bytearray(map(max, union, raw))
    return union if union is not None else bytearray(REGISTERS)


@command("PFCOUNT", -2, "readonly", 1, -1, 1, group="hyperloglog", since="2.8.9")
def pfcount(ctx, argv):
    """The estimated number of distinct elements added (of the union, for several keys)."""
    if len(argv) == 2:
        value = ctx.lookup(argv[1])
        if value is None:
            return 0
        value = _checked(value)
        if not value[15] & STALE:           # a fresh cache, from a value made by Valkey
            return int.from_bytes(value[8:16], "little")
        return estimate(registers(value))
    return estimate(_union(ctx, argv[1:]))


@command("PFMERGE", -2, "write denyoom", 1, -1, 1, group="hyperloglog", since="2.8.9")
def pfmerge(ctx, argv):
    """Merge HyperLogLogs into the destination (itself included in the union)."""
    destination = argv[1]
    union = _union(ctx, argv[1:])
    ctx.set_value(destination, dense_value(union), keep_ttl=True)
    ctx.changed(destination, "$", "pfadd")  # Valkey fires pfadd: a merge is a mass add
    return OK
