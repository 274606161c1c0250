"""Small value helpers shared by the command handlers."""

from __future__ import annotations

from ..resp import ReplyError, strict_int

LLONG_MIN, LLONG_MAX = -(2**63), 2**63 - 1


def parse_int(raw: bytes) -> int | None:
    """A 64-bit signed integer spelled as Valkey accepts it, else ``None``."""
    n = strict_int(raw)
    if n is None or not LLONG_MIN <= n <= LLONG_MAX:
        return None
    return n


def negatable_count(raw: bytes) -> int:
    """A count whose sign chooses a direction or repetition (LREM, LPOS RANK, SRANDMEMBER,
    HRANDFIELD): Valkey takes -LLONG_MAX..LLONG_MAX, so that it can be negated."""
    n = parse_int(raw)
    if n is None:
        raise ReplyError("ERR value is not an integer or out of range")
    if n == LLONG_MIN:
        raise ReplyError(f"ERR value is out of range, value must between {-LLONG_MAX} and "
                         f"{LLONG_MAX}")
    return n


def parse_multi_pop(argv, numkeys_at: int, ends: tuple):
    """``numkeys key.. END [COUNT n]`` of LMPOP/ZMPOP (and their blocking forms), checked
    in Valkey's order: (keys, whether END is ``ends[0]``, count)."""
    numkeys = parse_int(argv[numkeys_at])
    if numkeys is None or numkeys < 1:
        raise ReplyError("ERR numkeys should be greater than 0")
    where_at = numkeys_at + numkeys + 1
    if where_at >= len(argv):
        raise ReplyError("ERR syntax error")
    end = argv[where_at].upper()
    if end not in ends:
        raise ReplyError("ERR syntax error")
    count = None
    j = where_at + 1
    while j < len(argv):
        if count is None and argv[j].upper() == b"COUNT" and j + 1 < len(argv):
            count = parse_int(argv[j + 1])
            if count is None or count < 1:
                raise ReplyError("ERR count should be greater than 0")
            j += 2
        else:
            raise ReplyError("ERR syntax error")
    return argv[numkeys_at + 1:where_at], end == ends[0], count or 1
