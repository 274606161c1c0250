"""The link proxies between nodes: bytes flow, a cut stops them, a crash drops connections.

Real sockets on the loop the nodes use (uvloop), an echo server standing in for a node.
"""

from __future__ import annotations

import asyncio

from workbench.faults.network import LinkProxy
from workbench.runtime import new_event_loop


async def _echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
    writer.close()


async def _wait_for(condition, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


def _run(scenario):
    loop = new_event_loop()
    errors = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()
    return errors


def test_bytes_flow_and_a_cut_holds_them_until_heal():
    async def scenario():
        server = await asyncio.start_server(_echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        link = LinkProxy("n1", "n2", lambda _name: port)
        await link.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
        link.set_cut(True)
        writer.write(b"held")
        await writer.drain()
        try:
            await asyncio.wait_for(reader.read(4), 0.2)
            raise AssertionError("bytes crossed a cut link")
        except asyncio.TimeoutError:
            pass
        link.set_cut(False)
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"held"
        writer.close()
        await link.close()
        server.close()

    assert _run(scenario) == []


def test_bytes_for_a_crashed_peer_are_dropped_without_an_error():
    """A node crashing aborts its proxied connections; bytes the other side delivers in
    the same loop turn must be dropped, not written to the closed transport (uvloop
    raises on that, and the loop logs a fatal transport error)."""
    async def scenario():
        server = await asyncio.start_server(_echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        link = LinkProxy("n1", "n2", lambda _name: port)
        await link.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
        downstream = next(p for p in link.pipes if p.downstream)
        upstream = downstream.peer
        downstream.close()                    # the crash: the caller's side is aborted
        await _wait_for(lambda: downstream not in link.pipes)   # its connection_lost ran
        # bytes the destination sent in the same loop turn still reach the other end
        upstream.data_received(b"late reply")
        await _wait_for(lambda: not link.pipes)
        assert await asyncio.wait_for(reader.read(), 5) == b""   # the caller sees the close
        writer.close()
        await link.close()
        server.close()

    assert _run(scenario) == []
