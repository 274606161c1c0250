"""MONITOR and PUBSUB on a node, side by side with redis-server where replies compare."""

from __future__ import annotations

import socket
import time

import pytest
import redis

import workbench as wb
from conftest import RawClient
from differential_helpers import both, redis_server, run_side_by_side  # noqa: F401

pytestmark = pytest.mark.compat


def _lines_until(sock, count: int = 0, timeout: float = 5.0, ending: bytes = b"") -> list[bytes]:
    """The first ``count`` lines from ``sock``, or the lines through one ending ``ending``."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while (ending + b"\r\n" not in data) if ending else data.count(b"\r\n") < count:
        assert time.monotonic() < deadline, data
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    lines = data.split(b"\r\n")
    return lines[:count] if not ending else lines[:-1]


@pytest.mark.parametrize("mode", ["async", "aof"])
def test_monitor_streams_every_other_clients_commands(mode):
    with wb.Cluster(mode=mode, nodes=1, record=False) as cluster:
        port = cluster.nodes[0].port
        watcher = socket.create_connection(("127.0.0.1", port))
        watcher.sendall(b"MONITOR\r\n")
        assert _lines_until(watcher, 1) == [b"+OK"]
        client = RawClient(port)
        client.send(b'*3\r\n$3\r\nSET\r\n$3\r\na b\r\n$5\r\nx"y\nz\r\n')
        client.send(b"SELECT 3\r\n")
        client.send(b"CONFIG GET appendonly\r\n")          # admin: not shown
        client.send(b"AUTH secret\r\n")
        client.send(b"*2\r\n$3\r\nGET\r\n$2\r\nk\x01\r\n")
        lines = _lines_until(watcher, 4)
        assert lines[0].startswith(b"+") and lines[0].endswith(b'"SET" "a b" "x\\"y\\nz"')
        assert b" [0 127.0.0.1:" in lines[0]
        assert lines[1].endswith(b'"SELECT" "3"')
        assert lines[2].endswith(b'"AUTH" "(redacted)"') and b"[3 127.0.0.1:" in lines[2]
        assert lines[3].endswith(b'"GET" "k\\x01"')
        stamp = float(lines[0][1:].split(b" ")[0])
        assert abs(stamp - time.time()) < 60
        watcher.close()
        client.close()


def test_monitor_on_a_replica_shows_the_primarys_stream():
    with wb.Cluster(mode="async", nodes=2, record=False) as cluster:
        primary, replica = cluster.primary(timeout=10), cluster.node("n2")
        watcher = socket.create_connection(("127.0.0.1", replica.port))
        watcher.sendall(b"MONITOR\r\n")
        assert _lines_until(watcher, 1) == [b"+OK"]
        redis.Redis(port=primary.port, socket_timeout=5).set("k", "v")
        lines = _lines_until(watcher, 2, timeout=10)
        assert any(b"[0 master]" in line and line.endswith(b'"SET" "k" "v"') for line in lines), lines
        watcher.close()


def test_pubsub_introspection_side_by_side(both):
    ours, theirs = both
    subscribers = []
    for conn in (ours, theirs):
        pool_kwargs = conn.connection_pool.connection_kwargs
        sub = redis.Redis(port=pool_kwargs["port"], socket_timeout=5).pubsub()
        sub.subscribe("news", "sport")
        sub.psubscribe("n*")
        for _ in range(3):
            assert sub.get_message(timeout=5) is not None
        subscribers.append(sub)
    run_side_by_side(ours, theirs, [
        "PUBSUB", "PUBSUB NUMPAT", "PUBSUB NUMPAT x", "PUBSUB NUMSUB", "PUBSUB NUMSUB news x",
        "PUBSUB CHANNELS n*", "PUBSUB CHANNELS a b", "PUBSUB SHARDCHANNELS",
        "PUBSUB SHARDNUMSUB news", "PUBSUB FOO", "PUBSUB HELP"])
    for sub in subscribers:
        sub.close()
