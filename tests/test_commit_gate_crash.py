"""A crash of an ``aof``-mode node leaves no callback behind to run on its closed AOF."""

from __future__ import annotations

import socket
import threading

import pytest

import workbench as wb
from conftest import wait_for
from workbench.server import gating


@pytest.fixture
def loop_errors(request):
    """Start a one-node ``aof`` cluster whose event loop records every exception a
    callback raised (instead of only logging "Exception in callback ...")."""
    errors: list[str] = []
    with wb.Cluster(mode="aof", nodes=1, data_dir=str(request.getfixturevalue("tmp_path"))) as c:
        def record(loop, context):
            errors.append(f"{context.get('message')}: {context.get('exception')!r}")
        c.runtime.call(lambda: c.runtime.loop.set_exception_handler(record))
        yield c, errors


def test_a_kill_between_a_write_and_its_hand_over_runs_nothing_on_the_closed_aof(loop_errors):
    """Reproduction: the writes of one loop turn reach the AOF writer in one hand-over,
    scheduled for the turn's end with ``call_soon``. A node killed earlier in that turn
    closed its AOF first, and the hand-over then raised "Exception in callback
    _hand_over ... ValueError: I/O operation on closed DurableFile" (12-16 times in 15
    kill/restart cycles). Here the kill lands exactly there, every time."""
    c, errors = loop_errors
    node = c.nodes[0]
    c.client().set("before", "1")

    async def write_then_crash():
        server = node.server
        server.write_behind.submit(b"", server.repl.offset)   # busy: the next waits
        gating.submit(server, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
        assert server.wb_pending                              # handed over at the turn's end
        await node._kill(power_loss=True)                     # ... and the node dies first

    c.runtime.run(write_then_crash())
    c.runtime.call(lambda: None)                              # a later turn: callbacks ran
    node.restart()
    assert c.client().get("before") == "1"
    assert errors == []


def test_kill_restart_cycles_under_writers_leave_no_callback_errors(loop_errors):
    """The issue's run: kill (crash or power cut) and restart, again and again, while
    clients pipeline writes; the loop must report no exception from any callback."""
    c, errors = loop_errors
    node = c.nodes[0]
    for cycle in range(8):
        stop = threading.Event()
        sent = [0]

        def writer(w):
            try:
                sock = socket.create_connection(("127.0.0.1", node.port), timeout=2)
                batch = b"".join(b"SET w%d:%d %d\r\n" % (w, i, i) for i in range(50))
                while not stop.is_set():
                    sock.sendall(batch)
                    sent[0] += 1
                    sock.recv(1 << 16)
            except OSError:
                return                                        # the node died under us

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
        for t in threads:
            t.start()
        wait_for(lambda: sent[0] >= 10 + cycle, what="writes in flight")
        node.kill(power_loss=cycle % 2 == 0)
        stop.set()
        for t in threads:
            t.join(5)
        node.restart()
    c.runtime.call(lambda: None)
    assert errors == []
