"""Shared fixtures: real clusters on loopback, torn down after each test."""

from __future__ import annotations

import os
import shutil
import socket
import time

import pytest

import workbench as wb


def wait_for(condition, timeout: float = 10.0, what: str = "condition", interval: float = 0.02):
    """Poll ``condition`` until it returns a truthy value; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def require_binary(name: str) -> str:
    """The path of a real binary the test needs; missing is a failure in CI, a skip elsewhere."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required in CI (install it in .ci/run)")
        pytest.skip(f"{name} is not installed")
    return path


@pytest.fixture
def node1():
    """One async-mode node (AOF on, everysec), and its cluster."""
    with wb.Cluster(mode="async", nodes=1) as cluster:
        yield cluster


@pytest.fixture
def aof_node():
    """One aof-mode node (write-behind AOF, commit gate), and its cluster."""
    with wb.Cluster(mode="aof", nodes=1) as cluster:
        yield cluster


def reply_blocking_info(cluster) -> dict:
    """The first node's ``INFO reply_blocking``: what its commit gate holds."""
    return cluster.client(cluster.nodes[0]).info("reply_blocking")


@pytest.fixture
def cluster3():
    with wb.Cluster(mode="async", nodes=3, down_after_ms=500) as cluster:
        yield cluster


class RawClient:
    """A bare socket, for bytes no well-behaved client would send."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_until_closed(self, limit: int = 1 << 20) -> bytes:
        chunks = []
        while True:
            data = self.sock.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)
            if sum(map(len, chunks)) > limit:
                return b"".join(chunks)

    def read_exactly_reply(self, expected_len: int) -> bytes:
        buf = b""
        while len(buf) < expected_len:
            data = self.sock.recv(65536)
            if not data:
                break
            buf += data
        return buf

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(node1):
    clients = []

    def connect(port=None):
        c = RawClient(port or node1.nodes[0].port)
        clients.append(c)
        return c
    yield connect
    for c in clients:
        c.close()


@pytest.fixture
def ks():
    """An empty pure keyspace."""
    from workbench.store import Keyspace
    return Keyspace()
