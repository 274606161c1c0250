"""Glob-style patterns as Valkey's ``stringmatchlen`` reads them (``KEYS``, ``SCAN MATCH``).

``*`` any run of bytes, ``?`` one byte, ``[abc]`` ``[^abc]`` ``[a-z]`` a class (a
reversed range ``[z-a]`` is swapped, an unterminated class ends with the pattern),
``\\x`` the byte ``x`` (a trailing ``\\`` is itself). Matching is on bytes. As in Valkey,
the empty string matches only the empty pattern, except that the pattern ``*`` alone
matches everything (``KEYS`` and ``SCAN`` special-case it the same way).

The pattern is first read into tokens, each matching exactly one byte, or ``STAR``.
Matching then runs in O(len(pattern) * len(string)) with the classic "resume after
the last star" backtracking, so no pattern can make it explode (Valkey bounds the
same danger with its ``skipLongerMatches`` flag).
"""

from __future__ import annotations

STAR = None   # the token for '*'; every other token is a frozenset of the bytes it accepts

_ALL = frozenset(range(256))


def _lower(c: int) -> int:
    return c + 32 if 65 <= c <= 90 else c


def tokenize(pattern: bytes, nocase: bool = False) -> list:
    """The tokens of ``pattern``: ``STAR`` or the set of bytes one position accepts."""
    tokens: list = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == 0x2A:                                   # '*'
            if not tokens or tokens[-1] is not STAR:
                tokens.append(STAR)
        elif c == 0x3F:                                 # '?'
            tokens.append(_ALL)
        elif c == 0x5B:                                 # '['
            i, accepted = _read_class(pattern, i + 1, nocase)
            tokens.append(accepted)
        else:
            if c == 0x5C and i + 1 < n:                 # '\x' escape
                i += 1
                c = pattern[i]
            tokens.append(frozenset({_lower(c)}) if nocase else frozenset({c}))
        i += 1
    return tokens


def _read_class(pattern: bytes, i: int, nocase: bool):
    """Read a class starting after '['; return (index of its last byte, accepted set)."""
    n = len(pattern)
    negate = i < n and pattern[i] == 0x5E              # '^'
    if negate:
        i += 1
    members: set = set()
    while True:
        if i >= n:                                      # unterminated: ends with the pattern
            i = n - 1
            break
        c = pattern[i]
        if c == 0x5C and n - i >= 2:                    # escaped member
            i += 1
            members.add(_lower(pattern[i]) if nocase else pattern[i])
        elif c == 0x5D:                                 # ']'
            break
        elif n - i >= 3 and pattern[i + 1] == 0x2D:     # range 'a-z'
            lo, hi = sorted((pattern[i], pattern[i + 2]))
            if nocase:
                lo, hi = _lower(lo), _lower(hi)
            members.update(range(lo, hi + 1))
            i += 2
        else:
            members.add(_lower(c) if nocase else c)
        i += 1
    accepted = frozenset(members)
    return i, (_ALL - accepted) if negate else accepted


def match_tokens(tokens: list, string: bytes) -> bool:
    """Whether ``string`` matches the tokenized pattern."""
    if not string:
        return not tokens
    t = s = 0
    nt, ns = len(tokens), len(string)
    star_t = -1
    star_s = 0
    while s < ns:
        if t < nt:
            tok = tokens[t]
            if tok is STAR:
                star_t, star_s = t, s
                t += 1
                continue
            if string[s] in tok:
                t += 1
                s += 1
                continue
        if star_t < 0:
            return False
        star_s += 1                     # let the last star swallow one more byte
        t, s = star_t + 1, star_s
    while t < nt and tokens[t] is STAR:
        t += 1
    return t == nt


def compile_glob(pattern: bytes, nocase: bool = False):
    """A predicate ``f(string) -> bool`` for ``pattern``, with fast paths for common shapes."""
    if pattern == b"*":
        return lambda s: True
    tokens = tokenize(pattern, nocase)
    if not nocase and all(tok is not STAR and len(tok) == 1 for tok in tokens):
        literal = bytes(next(iter(tok)) for tok in tokens)
        return literal.__eq__
    if not nocase and len(tokens) >= 2 and tokens[-1] is STAR and all(
            tok is not STAR and len(tok) == 1 for tok in tokens[:-1]):
        prefix = bytes(next(iter(tok)) for tok in tokens[:-1])
        return lambda s: s.startswith(prefix)
    if nocase:
        return lambda s: match_tokens(tokens, s.lower())
    return lambda s: match_tokens(tokens, s)


def glob_match(pattern: bytes, string: bytes, nocase: bool = False) -> bool:
    """Whether ``string`` matches the glob ``pattern`` (Valkey's ``stringmatchlen``)."""
    return compile_glob(pattern, nocase)(string)
