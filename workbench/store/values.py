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
