"""Small value helpers shared by the command handlers."""

from __future__ import annotations

from ..resp import strict_int

LLONG_MIN, LLONG_MAX = -(2**63), 2**63 - 1


def parse_int(raw: bytes) -> int | None:
    """A 64-bit signed integer spelled as Valkey accepts it, else ``None``."""
    n = strict_int(raw)
    if n is None or not LLONG_MIN <= n <= LLONG_MAX:
        return None
    return n
