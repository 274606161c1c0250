"""Running the same commands on a workbench node and a real redis-server, side by side.

``both`` (a fixture) gives one connection to a fresh workbench node and one to a
``redis-server`` started once per test module (loopback, stopped by its PID, emptied for
each test). :func:`run_side_by_side` sends each command of a script to both and requires
equal replies, errors word for word; :func:`wire_replies` gives the raw reply bytes, for
byte-for-byte comparisons in RESP2 and RESP3; :func:`keyspace_events` records what a
script publishes. Import the fixtures by name into a test module to use them.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import time

import pytest
import redis

import workbench as wb
from workbench.resp import encode_command
from conftest import require_binary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    port = _free_port()
    proc = subprocess.Popen(
        [require_binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path_factory.mktemp("redis"))],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, socket_timeout=5)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                assert proc.poll() is None, "redis-server exited"
                time.sleep(0.05)
        client.close()
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def both(redis_server):
    """One connection to a fresh workbench node and one to the emptied redis-server."""
    with wb.Cluster(mode="async", nodes=1) as cluster:
        ours = redis.Redis(port=cluster.nodes[0].port, single_connection_client=True,
                           socket_timeout=5)
        theirs = redis.Redis(port=redis_server, single_connection_client=True, socket_timeout=5)
        theirs.flushall()
        theirs.config_set("notify-keyspace-events", "")
        yield ours, theirs
        ours.close()
        theirs.close()


def outcome(client, command: str):
    """The reply to ``command`` (split on spaces), or ``("error", text)``."""
    try:
        return client.execute_command(*command.split())
    except redis.ResponseError as err:
        return ("error", str(err))


def run_side_by_side(ours, theirs, script: list[str]) -> None:
    for command in script:
        assert outcome(ours, command) == outcome(theirs, command), command


def keyspace_events(client, script: list[str]) -> list:
    """The keyspace events ``script`` fires, as a second connection receives them."""
    client.config_set("notify-keyspace-events", "KEA")
    watcher = redis.Redis(port=client.connection_pool.connection_kwargs["port"], socket_timeout=5)
    pubsub = watcher.pubsub()
    pubsub.psubscribe("__key*@*")
    pubsub.subscribe("end-of-script")
    for command in script:
        outcome(client, command)
    client.execute_command("PUBLISH", "end-of-script", "x")   # everything before it arrived
    events, deadline = [], time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.5)
            if message is None:
                continue
            if message["type"] == "message":
                return events
            if message["type"] == "pmessage":
                events.append((message["channel"], message["data"]))
        raise AssertionError(f"the end-of-script marker never arrived; got {events}")
    finally:
        pubsub.close()
        watcher.close()


def port_of(client: redis.Redis) -> int:
    return client.connection_pool.connection_kwargs["port"]


def _read_reply(f) -> bytes:
    """One whole reply, as raw bytes."""
    line = f.readline()
    kind = line[:1]
    if kind in b"$=":
        n = int(line[1:])
        return line if n < 0 else line + f.read(n + 2)
    if kind in b"*~%>":
        n = int(line[1:])
        n = 2 * n if kind == b"%" else n
        return line + b"".join(_read_reply(f) for _ in range(max(n, 0)))
    assert kind in b"+-:,_#(", line
    return line


def wire_replies(port: int, script: list[str], proto: int) -> list[bytes]:
    """The raw reply bytes to each command of ``script`` (each split like a shell line),
    in RESP2 or (after ``HELLO 3``) RESP3: for comparing replies byte for byte."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        f = sock.makefile("rb")
        replies = []
        for command in (["HELLO 3"] if proto == 3 else []) + script:
            sock.sendall(encode_command([w.encode() for w in shlex.split(command)]))
            replies.append(_read_reply(f))
        return replies[1:] if proto == 3 else replies
