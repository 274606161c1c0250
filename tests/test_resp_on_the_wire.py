"""The protocol layer's fixes seen from a real client socket of a running node."""

from __future__ import annotations

import pytest

from workbench.resp import encode_command


@pytest.mark.parametrize("payload, error", [
    (b"*1\r\n\n", b"-ERR Protocol error: expected '$', got ' '\r\n"),
    (b"*1\r\n\r\n", b"-ERR Protocol error: expected '$', got ' '\r\n"),
])
def test_a_protocol_error_quoting_cr_or_lf_is_one_line(node1, raw, payload, error):
    """Repro: ``*1\\r\\n\\n`` was answered ``-ERR Protocol error: expected '$', got '\\n'\\r\\n``:
    the raw LF split the error line, and the client read a broken reply. Valkey sends a
    space in its place."""
    bad = raw()
    bad.send(b"*1\r\n$4\r\nPING\r\n" + payload)
    assert bad.read_until_closed() == b"+PONG\r\n" + error


def test_a_large_request_trickled_in_small_pieces_is_served_whole(node1, raw):
    """A 20,000-argument RPUSH sent 4 KB at a time, with another client served between
    the pieces: the request is read once, piece by piece, and answered whole."""
    values = [b"%d" % i for i in range(20_000)]
    request = encode_command([b"RPUSH", b"trickled"] + values)
    slow = raw()
    other = node1.client(decode_responses=False)
    for at in range(0, len(request), 4096):
        slow.send(request[at:at + 4096])
        assert other.ping() is True
    assert slow.read_exactly_reply(len(b":20000\r\n")) == b":20000\r\n"
    assert other.lrange(b"trickled", 0, -1) == values
