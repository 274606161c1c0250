"""The sorted set value: members with scores, ordered by (score, member).

Valkey keeps a hash table (member -> score) beside a skip list ordered by score, then by
member bytes (``memcmp``), so that a lookup is O(1) and a rank, an insert or a range
start is O(log n). Here the same two views are a ``dict`` and a
``sortedcontainers.SortedList`` of ``(score, member)`` tuples: a balanced list of
sorted lists with the same complexities, and no skip list written by hand.

The two views always hold the same pairs; every change goes through :meth:`ZSet.add`,
:meth:`ZSet.remove`, :meth:`ZSet.pop` or :meth:`ZSet.remove_span`. Positions
("spans") are half-open index ranges ``[lo, hi)`` in (score, member) order.

:func:`score_text` spells a score as Valkey's ``d2string`` does (what ``ZSCAN`` shows
and what a snapshot writes): integral values as integers, others in the shortest form
that reads back to the very same double, ``inf``/``-inf``; so replaying it rebuilds
identical doubles.
"""

from __future__ import annotations

from sortedcontainers import SortedList

_INTEGRAL_LIMIT = float(2**62)      # Valkey's double2ll range: |d| <= LLONG_MAX / 2


def score_text(score: float) -> bytes:
    """``score`` as Valkey's ``d2string`` writes it: exact, and as short as possible."""
    if score != score:
        return b"nan"
    if score in (float("inf"), float("-inf")):
        return b"inf" if score > 0 else b"-inf"
    if score == 0:
        return b"-0" if str(score)[0] == "-" else b"0"
    if score.is_integer() and -_INTEGRAL_LIMIT <= score <= _INTEGRAL_LIMIT:
        return b"%d" % int(score)
    return repr(score).encode()     # shortest round-trip form, as fpconv_dtoa


class _Above:
    """Sorts after every member: ``(s, ABOVE)`` is just past all entries with score ``s``."""

    __slots__ = ()

    def __lt__(self, other):
        return False

    def __gt__(self, other):
        return True

    __le__, __ge__ = __lt__, __gt__


ABOVE = _Above()

# Lex range bounds: "-" and "+" are below and above every member.
LEX_MIN, LEX_MAX = "-", "+"


class ZSet:
    """A sorted set: ``member (bytes) -> score (float)``, iterated in (score, member) order."""

    __slots__ = ("_scores", "_entries")

    def __init__(self, pairs=()):
        """An empty set, a copy of another :class:`ZSet`, or the given (member, score) pairs."""
        if isinstance(pairs, ZSet):
            self._scores = dict(pairs._scores)
            self._entries = pairs._entries.copy()
            return
        self._scores: dict = {}
        self._entries = SortedList()
        for member, score in pairs:
            self.add(member, score)

    # -- the public API other modules rely on ---------------------------------------
    def __len__(self) -> int:
        return len(self._scores)

    def __contains__(self, member) -> bool:
        return member in self._scores

    def __iter__(self):
        """The members, in (score, member) order."""
        return (member for _, member in self._entries)

    def __eq__(self, other) -> bool:
        return isinstance(other, ZSet) and self._scores == other._scores

    __hash__ = None

    def __repr__(self) -> str:
        return f"ZSet({list(self.items())!r})"

    def score(self, member: bytes) -> float | None:
        return self._scores.get(member)

    def add(self, member: bytes, score: float) -> None:
        """Insert ``member`` or move it to ``score`` (NaN is the caller's to refuse)."""
        old = self._scores.get(member)
        if old is not None:
            self._entries.remove((old, member))
        self._scores[member] = score
        self._entries.add((score, member))

    def remove(self, member: bytes) -> bool:
        score = self._scores.pop(member, None)
        if score is None:
            return False
        self._entries.remove((score, member))
        return True

    def items(self, lo: int = 0, hi: int | None = None, reverse: bool = False):
        """(member, score) pairs of positions ``[lo, hi)``, ascending or descending."""
        for score, member in self._entries.islice(lo, hi, reverse=reverse):
            yield member, score

    # -- ranks and positions ---------------------------------------------------------
    def rank(self, member: bytes) -> int | None:
        """The 0-based position of ``member`` in ascending order, or ``None``."""
        score = self._scores.get(member)
        if score is None:
            return None
        return self._entries.bisect_left((score, member))

    def at(self, index: int):
        """The (member, score) at a position (negative counts from the end)."""
        score, member = self._entries[index]
        return member, score

    def pop(self, highest: bool = False):
        """Remove and return the (member, score) with the lowest (or highest) score."""
        score, member = self._entries.pop(-1 if highest else 0)
        del self._scores[member]
        return member, score

    def remove_span(self, lo: int, hi: int) -> int:
        """Remove the entries at positions ``[lo, hi)``; return how many went."""
        if hi <= lo:
            return 0
        for _, member in self._entries.islice(lo, hi):
            del self._scores[member]
        del self._entries[lo:hi]
        return hi - lo

    def score_span(self, low: float, low_open: bool, high: float, high_open: bool):
        """Positions ``[lo, hi)`` of the entries with ``low <(=) score <(=) high``."""
        entries = self._entries
        lo = entries.bisect_right((low, ABOVE)) if low_open else entries.bisect_left((low,))
        hi = entries.bisect_left((high,)) if high_open else entries.bisect_right((high, ABOVE))
        return lo, max(lo, hi)

    # -- lexicographic ranges ----------------------------------------------------------
    # Valkey defines BYLEX ranges for sets whose members all share one score; then the
    # (score, member) order is the member order and a bisection finds the ends. With
    # mixed scores the result is "unspecified": we walk as Valkey's compact (listpack)
    # encoding does -- from the first member >= min while members stay <= max.
    def _lex_position(self, score: float, bound, after: bool) -> int:
        """Where ``bound`` falls among members of score ``score``: before or after equals."""
        if bound == LEX_MIN:
            return 0
        if bound == LEX_MAX:
            return len(self._entries)
        if after:
            return self._entries.bisect_right((score, bound))
        return self._entries.bisect_left((score, bound))

    def lex_span(self, low, low_open: bool, high, high_open: bool, reverse: bool = False):
        """Positions ``[lo, hi)`` of the members in a lex range (``LEX_MIN``/``LEX_MAX``
        or bytes bounds); ``reverse`` finds them from the top, as ZREVRANGEBYLEX does."""
        entries, n = self._entries, len(self._entries)
        if n == 0 or _lex_empty(low, low_open, high, high_open):
            return 0, 0
        first_score, last_score = entries[0][0], entries[-1][0]
        if first_score == last_score:
            lo = self._lex_position(first_score, low, after=low_open)
            hi = self._lex_position(first_score, high, after=not high_open)
            return lo, max(lo, hi)
        members = [member for _, member in entries]
        if reverse:
            hi = n
            while hi > 0 and not _lex_lte_max(members[hi - 1], high, high_open):
                hi -= 1
            lo = hi
            while lo > 0 and _lex_gte_min(members[lo - 1], low, low_open):
                lo -= 1
            return lo, hi
        lo = 0
        while lo < n and not _lex_gte_min(members[lo], low, low_open):
            lo += 1
        hi = lo
        while hi < n and _lex_lte_max(members[hi], high, high_open):
            hi += 1
        return lo, hi


def _lex_cmp(a, b) -> int:
    """Compare lex bounds or members, ``LEX_MIN``/``LEX_MAX`` being -inf/+inf."""
    if a is b or a == b:
        return 0
    if a == LEX_MIN or b == LEX_MAX:
        return -1
    if a == LEX_MAX or b == LEX_MIN:
        return 1
    return -1 if a < b else 1


def _lex_gte_min(member: bytes, low, low_open: bool) -> bool:
    c = _lex_cmp(member, low)
    return c > 0 if low_open else c >= 0


def _lex_lte_max(member: bytes, high, high_open: bool) -> bool:
    c = _lex_cmp(member, high)
    return c < 0 if high_open else c <= 0


def _lex_empty(low, low_open, high, high_open) -> bool:
    """Ranges that are empty whatever the set holds (Valkey's ``zslIsInLexRange`` test)."""
    c = _lex_cmp(low, high)
    return c > 0 or (c == 0 and (low_open or high_open))
