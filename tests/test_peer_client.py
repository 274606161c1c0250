"""The monitors' node-to-node client: a connection the peer reset is dialled again."""

from __future__ import annotations

import socket
import struct

import workbench as wb
from conftest import wait_for
from workbench.failover.peer import PeerClient


def test_a_call_after_the_peer_reset_the_connection_dials_again():
    """Reproduction: a peer that resets a monitor's connection (RST: it died with unread
    bytes, or a link was cut hard) leaves the client's transport closed. The next
    ``call`` wrote on it and uvloop raised ``RuntimeError: unable to perform operation
    on <TCPTransport closed=True ...>; the handler is closed`` -- not an ``OSError``, so
    the connection was never dropped: every later call raised the same, the monitor
    logged it each round and never reached that peer again."""
    with wb.Cluster(nodes=1) as c:
        server = c.nodes[0].server
        peer = PeerClient(lambda: ("127.0.0.1", c.nodes[0].port))
        call = lambda: c.runtime.run(peer.call("PING", timeout=2))   # noqa: E731
        assert call() == "PONG"

        def reset_every_client():
            for conn in list(server.clients):
                sock = conn.transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.transport.abort()                        # linger 0: an RST, not a FIN
        c.runtime.call(reset_every_client)
        wait_for(lambda: c.runtime.call(lambda: peer._writer.transport.is_closing()))

        assert call() == "PONG"                               # a fresh connection
        assert call() == "PONG"
        c.runtime.call(peer.close)
