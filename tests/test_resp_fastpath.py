"""The request parser's fast reader (hiredis + canonical check) against its careful reader.

Every input must give the same commands and the same protocol error through both. Feeding
one byte at a time always takes the careful reader (the fast one needs a whole request
in an empty buffer), so it is the reference.
"""

from __future__ import annotations

import random

import pytest

from workbench.resp import ProtocolError, RequestParser, encode_command
from resp_helpers import feed_bytewise


def summary(items) -> list:
    """Commands as lists of bytes, errors as their reason (ProtocolError has no __eq__)."""
    return [("error", i.reason, i.reply) if isinstance(i, ProtocolError) else i for i in items]


def feed_careful(data: bytes, monkeypatch, **kw) -> list:
    with monkeypatch.context() as m:
        m.setattr(RequestParser, "_read_fast", lambda self, data: None)
        return RequestParser(**kw).feed(data)


# -- generators --------------------------------------------------------------------------
_ALPHABET = [b"a", b"Z", b"0", b"9", b"\r", b"\n", b"\r\n", b"$", b"*", b"+", b"-", b":",
             b" ", b"\x00", b"\xff", b'"', b"'"]


def random_arg(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.1:
        return b""
    if kind < 0.15:
        return bytes(rng.randrange(256) for _ in range(rng.choice([1022, 1023, 1024, 1025])))
    return b"".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(1, 12)))


def random_command(rng: random.Random) -> list:
    return [rng.choice([b"SET", b"GET", b"PING", b"set"])] + [
        random_arg(rng) for _ in range(rng.randrange(0, 4))]


# Pieces that are not canonical multibulk: hiredis accepts some of them, Valkey none.
_ODD_ELEMENTS = [b"+PING\r\n", b":1\r\n", b"$-1\r\n", b"$03\r\nabc\r\n", b"$+3\r\nabc\r\n",
                 b"=8\r\ntxt:abcd\r\n", b"(123\r\n", b",1.5\r\n", b"#t\r\n", b"_\r\n",
                 b"%1\r\n$1\r\na\r\n$1\r\nb\r\n", b"~1\r\n$1\r\na\r\n", b"*1\r\n$1\r\na\r\n",
                 b"-ERR x\r\n", b"!3\r\nabc\r\n", b"$3\r\nabcXY", b"$ 3\r\nabc\r\n",
                 b"|1\r\n+a\r\n+b\r\n$1\r\nc\r\n", b"$3\nabc\r\n", b"$-0\r\n", b"$1\r\n"]
_ODD_REQUESTS = [b"*0\r\n", b"*-1\r\n", b"*01\r\n$1\r\na\r\n", b"PING\r\n", b"SET a 'b c'\r\n",
                 b"\r\n", b"*1\n$1\r\na\r\n", b"*2\r\n$1\r\na\r\n", b"*300\r\n", b"$1\r\na\r\n",
                 b"*1\r\n$600000000\r\n", b"*3000000000\r\n", b"*x\r\n",
                 # huge counts: hiredis would allocate them before seeing any element
                 b"*2000000000\r\n", b"*1\r\n>200000000\r\n", b"*1\r\n~1000\r\n",
                 b"*1\r\n|99999999\r\n", b"*1\r\n%5000\r\n"]


def random_input(rng: random.Random) -> bytes:
    parts = []
    for _ in range(rng.randrange(1, 5)):
        r = rng.random()
        if r < 0.6:
            parts.append(encode_command(random_command(rng)))
        elif r < 0.8:
            argv = random_command(rng)
            elements = [encode_command([a])[4 if len(argv) < 10 else 5:] for a in argv]
            elements.insert(rng.randrange(len(elements) + 1), rng.choice(_ODD_ELEMENTS))
            parts.append(b"*%d\r\n" % len(elements) + b"".join(elements))
        else:
            parts.append(rng.choice(_ODD_REQUESTS))
    data = b"".join(parts)
    r = rng.random()
    if r < 0.15 and data:                       # truncated
        data = data[:rng.randrange(len(data))]
    elif r < 0.3 and data:                      # one byte changed
        i = rng.randrange(len(data))
        data = data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]
    return data


# -- the differential tests ----------------------------------------------------------------
@pytest.mark.parametrize("seed", range(8))
def test_fast_and_careful_readers_agree_on_random_input(seed, monkeypatch):
    rng = random.Random(seed)
    for _ in range(1500):
        data = random_input(rng)
        if not data:
            continue
        parser = RequestParser()
        fast = summary(parser.feed(data))
        assert fast == summary(feed_careful(data, monkeypatch)), data
        assert fast == summary(feed_bytewise(data)), data
        if parser.canonical:
            assert b"".join(encode_command(c) for c in fast) == data
            assert parser.encodings == [encode_command(c) for c in fast]
        else:
            assert parser.encodings == ()


@pytest.mark.parametrize("seed", range(4))
def test_a_parser_stays_correct_across_fallbacks(seed, monkeypatch):
    """The fast reader's hiredis state is dropped when it gives up: later feeds agree."""
    rng = random.Random(1000 + seed)
    stream = b"".join(random_input(rng) for _ in range(60))
    chunks, pos = [], 0
    while pos < len(stream):
        step = rng.choice([1, 3, 17, 64, 500, 5000])
        chunks.append(stream[pos:pos + step])
        pos += step
    fast_parser = RequestParser()
    fast = []
    for chunk in chunks:
        fast.extend(fast_parser.feed(chunk))
    with monkeypatch.context() as m:
        m.setattr(RequestParser, "_read_fast", lambda self, data: None)
        careful_parser = RequestParser()
        careful = []
        for chunk in chunks:
            careful.extend(careful_parser.feed(chunk))
    assert summary(fast) == summary(careful)


@pytest.mark.parametrize("data, reason", [
    (b"*1\r\n+PING\r\n", "expected '$', got '+'"),
    (b"*1\r\n:1\r\n", "expected '$', got ':'"),
    (b"*1\r\n=8\r\ntxt:abcd\r\n", "expected '$', got '='"),
    (b"*1\r\n(123\r\n", "expected '$', got '('"),
    (b"*1\r\n*1\r\n$1\r\na\r\n", "expected '$', got '*'"),
    (b"*1\r\n$03\r\nabc\r\n", "invalid bulk length"),
    (b"*01\r\n$1\r\na\r\n", "invalid multibulk length"),
])
def test_elements_hiredis_accepts_are_still_refused(data, reason):
    items = RequestParser().feed(data)
    assert len(items) == 1 and items[0].reason == reason


def test_proto_max_bulk_len_applies_to_whole_requests():
    data = encode_command([b"SET", b"k", b"x" * 2000])
    items = RequestParser(max_bulk_len=1500).feed(data)
    assert [i.reason for i in items] == ["invalid bulk length"]
    small = encode_command([b"SET", b"k", b"x" * 20])
    assert [i.reason for i in RequestParser(max_bulk_len=10).feed(small)] == [
        "invalid bulk length"]
    assert RequestParser().feed(data) == [[b"SET", b"k", b"x" * 2000]]


def test_canonical_flag_marks_verbatim_batches():
    parser = RequestParser()
    data = encode_command([b"SET", b"k", b"v"]) * 3
    assert parser.feed(data) == [[b"SET", b"k", b"v"]] * 3 and parser.canonical
    assert parser.feed(b"PING\r\n") == [[b"PING"]] and not parser.canonical
    assert parser.feed(b"*1\r\n$4\r\nPI") == [] and not parser.canonical
    assert parser.feed(b"NG\r\n") == [[b"PING"]] and not parser.canonical


def test_encodings_are_each_commands_own_bytes():
    """A pipelined write is propagated as ``encodings[i]``: it must be exactly its bytes."""
    parser = RequestParser()
    cmds = [[b"SET", b"k", b"v"], [b"GET", b"k"], [b"SET", b"big", b"x" * 5000],
            [b"MSET", b"a", b"\x00\r\n*1\r\n", b"", b"y" * 1023, b"z" * 1024]]
    data = b"".join(encode_command(c) for c in cmds)
    assert parser.feed(data) == cmds and parser.canonical
    assert parser.encodings == [encode_command(c) for c in cmds]
    assert b"".join(parser.encodings) == data
    parser.feed(b"PING\r\n")
    assert parser.encodings == () and not parser.canonical


@pytest.mark.parametrize("limit", [5, 1022, 1023, 1024, 4999, 5000])
def test_encodings_with_a_small_bulk_limit(limit, monkeypatch):
    """Below the header table's size every argument takes the long-spelling path."""
    data = encode_command([b"SET", b"k", b"x" * 1000]) + encode_command([b"SET", b"k", b"y" * 5000])
    parser = RequestParser(max_bulk_len=limit)
    items = parser.feed(data)
    assert summary(items) == summary(feed_careful(data, monkeypatch, max_bulk_len=limit))
    if limit >= 5000:
        assert parser.canonical and b"".join(parser.encodings) == data
    else:
        assert not parser.canonical and parser.encodings == ()
