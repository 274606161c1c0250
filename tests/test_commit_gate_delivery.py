"""Held replies reach a client that half-closes or ends with a protocol error (``aof`` mode).

The client is a bare socket: ``shutdown(SHUT_WR)`` sends end-of-file while the client
keeps reading, which no well-behaved client library does on its own.
"""

from __future__ import annotations

import socket

import pytest

import workbench as wb
from conftest import RawClient, reply_blocking_info, wait_for

SET = b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\n1\r\n"


def set_command(key: bytes) -> bytes:
    return SET % (len(key), key)


def still_open_and_silent(raw: RawClient) -> bool:
    """Nothing has arrived and the server has not closed the socket."""
    raw.sock.setblocking(False)
    try:
        raw.sock.recv(1, socket.MSG_PEEK)       # b"" (closed) or a byte: either is wrong
        return False
    except BlockingIOError:
        return True
    finally:
        raw.sock.settimeout(5)


def test_a_half_closed_client_gets_its_held_reply_then_the_close(aof_node):
    """Reproduction: ``SET hc 1`` then ``shutdown(SHUT_WR)`` got no reply in ``aof`` mode:
    the end-of-file closed the connection while the +OK was still held for its fsync
    (Valkey and ``async`` mode answer +OK). Now the socket stays open until every held
    reply has left, then closes."""
    writer = RawClient(aof_node.nodes[0].port)
    writer.send(set_command(b"hc"))
    writer.sock.shutdown(socket.SHUT_WR)
    assert writer.read_until_closed() == b"+OK\r\n"
    assert aof_node.client().get("hc") == "1"


def test_a_half_closed_client_waits_for_a_paused_gate(aof_node):
    """The same with the gate paused: the held reply outlives the end-of-file for as long
    as the gate holds it, and leaves -- followed by the close -- when it is released."""
    r = aof_node.client()
    r.execute_command("DEBUG", "reply-blocking-pause", "aof")
    writer = RawClient(aof_node.nodes[0].port)
    writer.send(set_command(b"hc") + b"PING\r\n")
    writer.sock.shutdown(socket.SHUT_WR)
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_clients_waiting_ack"] == 1, what="hold")
    assert still_open_and_silent(writer)
    r.execute_command("DEBUG", "reply-blocking-resume", "aof")
    assert writer.read_until_closed() == b"+OK\r\n+PONG\r\n"


def test_a_protocol_error_is_queued_behind_held_replies(aof_node):
    """Reproduction: ``SET pe 1\\r\\n*1\\r\\n$x\\r\\n`` got only the protocol error in
    ``aof`` mode -- the error was written at once and the connection closed, so the held
    +OK of the SET before it was lost (and the order broken). Valkey answers +OK, then
    the error, then closes."""
    r = aof_node.client()
    r.execute_command("DEBUG", "reply-blocking-pause", "aof")
    c = RawClient(aof_node.nodes[0].port)
    c.send(set_command(b"pe") + b"*1\r\n$x\r\n")
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_clients_waiting_ack"] == 1, what="hold")
    assert still_open_and_silent(c)
    r.execute_command("DEBUG", "reply-blocking-resume", "aof")
    assert c.read_until_closed() == b"+OK\r\n-ERR Protocol error: invalid bulk length\r\n"

    unpaused = RawClient(aof_node.nodes[0].port)           # the exact sequence
    unpaused.send(set_command(b"pe") + b"*1\r\n$x\r\n")
    assert unpaused.read_until_closed() == b"+OK\r\n-ERR Protocol error: invalid bulk length\r\n"


def test_quit_after_a_held_write_answers_both(aof_node):
    """``QUIT`` closes the connection -- after the held reply before it, not instead of it."""
    c = RawClient(aof_node.nodes[0].port)
    c.send(set_command(b"q") + b"QUIT\r\n")
    assert c.read_until_closed() == b"+OK\r\n+OK\r\n"


def test_a_half_closed_pipeline_held_back_by_the_budget_is_answered_in_full(tmp_path):
    """A pipeline the pinned-bytes budget held back (the rest of it waiting, unread or
    unexecuted) and then end-of-file: every command still runs and is answered, in
    order, before the close."""
    with wb.Cluster(mode="aof", nodes=1, data_dir=str(tmp_path),
                    reply_blocking_max_pinned_bytes="4kb") as c:
        r = c.client()
        r.execute_command("DEBUG", "reply-blocking-pause", "aof")
        writes = 300
        writer = RawClient(c.nodes[0].port)
        writer.send(b"".join(set_command(b"k%d" % i) for i in range(writes)))
        writer.sock.shutdown(socket.SHUT_WR)
        wait_for(lambda: reply_blocking_info(c)["reply_blocking_held_back_clients"] == 1, what="held back")
        assert r.info("keyspace")["db0"]["keys"] < writes   # the rest waits, unexecuted
        r.execute_command("DEBUG", "reply-blocking-resume", "aof")
        assert writer.read_until_closed() == b"+OK\r\n" * writes
        assert r.dbsize() == writes


def test_a_half_closed_client_gets_the_reply_of_a_blocking_command(node1):
    """End-of-file while ``WAIT`` blocks (any mode): the client still gets WAIT's answer
    and the command after it, then the close (before, the end-of-file closed at once)."""
    c = RawClient(node1.nodes[0].port)
    c.send(b"WAIT 1 200\r\nPING\r\n")
    c.sock.shutdown(socket.SHUT_WR)
    assert c.read_until_closed() == b":0\r\n+PONG\r\n"
