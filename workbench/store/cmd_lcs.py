"""LCS: the longest common subsequence of two strings, its length, or where it matches.

Valkey fills the classic dynamic-programming table ``L[i][j]`` (the LCS length of the
first ``i`` bytes of ``a`` and the first ``j`` bytes of ``b``), then walks back from the
corner. A Python loop over every cell would take seconds for strings of a few thousand
bytes, so each row is kept as one big integer instead, with the bit-parallel recurrence
of Allison-Dix / Hyyrö: bit ``j`` of row ``i`` is clear exactly when ``L[i][j+1] =
L[i][j] + 1``, so ``L[i][j] = j - popcount(row_i & (2**j - 1))``. That is O(len(a) *
len(b) / 64) work and len(a) * len(b) / 8 bytes; the walk back then reads the cells it
needs and breaks ties as Valkey does, so the string and the ranges are Valkey's.
"""

from __future__ import annotations

from ..resp import Map, ReplyError
from .keyspace import SYNTAX
from .table import command
from .values import parse_int

_MAX_BULK = 512 * 1024 * 1024       # proto-max-bulk-len


def lcs_rows(a: bytes, b: bytes, keep: bool = True) -> list[int]:
    """Row ``i`` (0..len(a)) of the LCS table of ``a`` and ``b``, as a bit vector (only
    the last row unless ``keep``)."""
    full = (1 << len(b)) - 1
    positions: dict[int, int] = {}
    for j, byte in enumerate(b):
        positions[byte] = positions.get(byte, 0) | (1 << j)
    row, rows = full, [full]
    for byte in a:
        matches = row & positions.get(byte, 0)
        row = ((row + matches) | (row - matches)) & full
        if keep:
            rows.append(row)
    return rows if keep else [row]


def lcs_length(a: bytes, b: bytes) -> int:
    return len(b) - lcs_rows(a, b, keep=False)[-1].bit_count()


def _cell(rows, i: int, j: int) -> int:
    return j - (rows[i] & ((1 << j) - 1)).bit_count()


def lcs_walk(a: bytes, b: bytes, rows) -> tuple[bytes, list]:
    """The LCS string and its matching ranges, walking back from the end as Valkey does:
    ranges ``((a_start, a_end), (b_start, b_end), length)`` from the last match to the
    first."""
    i, j = len(a), len(b)
    picked = bytearray()
    ranges = []
    current = None                  # [a_start, a_end, b_start, b_end] being extended
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            picked.append(a[i - 1])
            if current is None:
                current = [i - 1, i - 1, j - 1, j - 1]
            elif current[0] == i and current[2] == j:
                current[0] -= 1
                current[2] -= 1
            else:
                emit = True
            if current[0] == 0 or current[2] == 0:
                emit = True
            i -= 1
            j -= 1
        else:
            if _cell(rows, i - 1, j) > _cell(rows, i, j - 1):
                i -= 1
            else:
                j -= 1
            emit = current is not None
        if emit:
            ranges.append(((current[0], current[1]), (current[2], current[3]),
                           current[1] - current[0] + 1))
            current = None
    picked.reverse()
    return bytes(picked), ranges


@command("LCS", -3, "readonly", 1, 2, 1, group="string", since="7.0.0")
def lcs(ctx, argv):
    """The longest common subsequence of two strings (LEN: its length; IDX: the ranges)."""
    a, b = ctx.lookup(argv[1]), ctx.lookup(argv[2])
    if (a is not None and type(a) is not bytes) or (b is not None and type(b) is not bytes):
        raise ReplyError("ERR The specified keys must contain string values")
    a, b = a or b"", b or b""
    get_len = get_idx = with_match_len = False
    min_match_len = 0
    i = 3
    while i < len(argv):
        opt = argv[i].upper()
        if opt == b"IDX":
            get_idx = True
        elif opt == b"LEN":
            get_len = True
        elif opt == b"WITHMATCHLEN":
            with_match_len = True
        elif opt == b"MINMATCHLEN" and i + 1 < len(argv):
            n = parse_int(argv[i + 1])
            if n is None:
                raise ReplyError("ERR value is not an integer or out of range")
            min_match_len = max(n, 0)
            i += 1
        else:
            raise SYNTAX
        i += 1
    if get_idx and get_len:
        raise ReplyError("ERR If you want both the length and indexes, please just use IDX.")
    if (len(a) + 1) * (len(b) + 1) * 4 > _MAX_BULK:       # Valkey's table would not fit
        raise ReplyError("ERR Insufficient memory, transient memory for LCS exceeds "
                         "proto-max-bulk-len")
    if get_len:
        return lcs_length(a, b)
    rows = lcs_rows(a, b)
    common, ranges = lcs_walk(a, b, rows)
    if not get_idx:
        return common
    matches = [[list(ra), list(rb)] + ([n] if with_match_len else [])
               for ra, rb, n in ranges if min_match_len == 0 or n >= min_match_len]
    return Map({b"matches": matches, b"len": len(common)})
