"""CLIENT and COMMAND as client libraries use them: side by side with a real redis-server
for the replies and error texts, and on real workbench nodes for what only they show
(CLIENT REPLY under the commit gate, CLIENT PAUSE, CLIENT UNBLOCK of a WAIT)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis

import workbench as wb
from conftest import wait_for
from differential_helpers import both, outcome, redis_server, run_side_by_side  # noqa: F401
from workbench.store import COMMANDS

pytestmark = pytest.mark.compat


def test_client_errors_as_redis_server(both):
    ours, theirs = both
    run_side_by_side(ours, theirs, [
        "CLIENT", "CLIENT foo", "CLIENT ID x", "CLIENT PAUSE x", "CLIENT PAUSE -1",
        "CLIENT PAUSE 10 foo", "CLIENT PAUSE 10 WRITE x", "CLIENT UNPAUSE",
        "CLIENT UNBLOCK x", "CLIENT UNBLOCK 999999", "CLIENT UNBLOCK 1 foo",
        "CLIENT REPLY foo", "CLIENT REPLY", "CLIENT NO-EVICT x", "CLIENT NO-EVICT on",
        "CLIENT NO-EVICT OFF", "CLIENT TRACKING foo", "CLIENT TRACKING off",
        "CLIENT CACHING yes", "CLIENT CACHING foo", "CLIENT GETREDIR",
        "CLIENT KILL 1.2.3.4:5", "CLIENT KILL ID x", "CLIENT KILL ID 999999",
        "CLIENT KILL foo bar", "CLIENT KILL ADDR 1.2.3.4:5 SKIPME x",
        "CLIENT KILL TYPE foo", "CLIENT KILL TYPE pubsub", "CLIENT KILL ADDR 1.2.3.4:5 ID",
        "CLIENT LIST ID x", "CLIENT LIST ID", "CLIENT LIST TYPE foo", "CLIENT LIST foo bar",
        "CLIENT LIST ID 999999", "CLIENT LIST TYPE replica", "CLIENT SETNAME a\tb",
        "CLIENT SETNAME ok-name", "CLIENT GETNAME", "CLIENT TRACKINGINFO x"])


def test_client_setinfo_validation(both):
    """CLIENT SETINFO came in Redis 7.2 / Valkey 7.2: Valkey's texts, checked here alone."""
    ours, _ = both
    assert ours.execute_command("CLIENT", "SETINFO", "lib-name", "my-lib") == b"OK"
    assert ours.execute_command("CLIENT", "SETINFO", "LIB-VER", "1.2") == b"OK"
    for attr, value, text in [
            ("lib-name", "a b", "lib-name cannot contain spaces, newlines or special characters."),
            ("LIB-VER", "x\ny", "LIB-VER cannot contain spaces, newlines or special characters."),
            ("lib-foo", "x", "Unrecognized option 'lib-foo'")]:
        assert outcome(ours, " ".join(["CLIENT", "SETINFO", attr, value])) != ("error", "")
        with pytest.raises(redis.ResponseError) as err:
            ours.execute_command("CLIENT", "SETINFO", attr, value)
        assert str(err.value) == text
    info = ours.client_info()
    assert info["lib-name"] == "my-lib" and info["lib-ver"] == "1.2"
    assert ours.execute_command("CLIENT", "NO-TOUCH", "ON") == b"OK"
    with pytest.raises(redis.ResponseError, match="syntax error"):
        ours.execute_command("CLIENT", "NO-TOUCH", "maybe")


def test_client_tracking_on_is_refused_clearly(both):
    ours, _ = both
    with pytest.raises(redis.ResponseError, match="not supported.*client-side caching"):
        ours.execute_command("CLIENT", "TRACKING", "ON")
    help_lines = ours.execute_command("CLIENT", "HELP")
    assert b"NO-TOUCH (ON|OFF)" in help_lines and b"SETINFO <option> <value>" in help_lines


def _raw(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s


def _read_until(s: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    return data


@pytest.mark.parametrize("mode", ["async", "aof"])
def test_client_reply_off_skip_on(mode):
    """OFF drops every reply until ON; SKIP drops its own and the next. In aof mode the
    dropped replies of writes were held by the commit gate: they must not stay pinned."""
    with wb.Cluster(mode=mode, nodes=1) as c:
        s = _raw(c.nodes[0].port)
        s.sendall(b"CLIENT REPLY OFF\r\nSET a 1\r\nINCR a\r\nGET a\r\nCLIENT REPLY ON\r\n"
                  b"CLIENT REPLY SKIP\r\nINCR a\r\nECHO shown\r\nGET a\r\n")
        data = _read_until(s, b"$1\r\n3\r\n")
        assert data == b"+OK\r\n$5\r\nshown\r\n$1\r\n3\r\n"
        s.close()
        if mode == "aof":
            gate = c.nodes[0].server.gate
            wait_for(lambda: gate.replies_pinned == 0 and not gate.waiting,
                     what="no reply left pinned")
            assert c.client().get("a") == "3"


def test_client_pause_write_postpones_writes_not_reads():
    with wb.Cluster(nodes=1) as c:
        admin, writer, reader = c.client(), c.client(), c.client()
        writer.set("k", "before")
        assert admin.execute_command("CLIENT", "PAUSE", "20000", "WRITE") == "OK"
        done = []
        t = threading.Thread(target=lambda: done.append(writer.set("k", "after")))
        t.start()
        assert reader.get("k") == "before"                       # reads go on
        wait_for(lambda: any("cmd=set" in line for line in
                             admin.execute_command("CLIENT", "LIST").splitlines()),
                 what="the write to arrive")
        assert not done and reader.get("k") == "before"         # the write waits
        assert admin.execute_command("CLIENT", "UNPAUSE") == "OK"
        t.join(5)
        assert done == [True] and reader.get("k") == "after"


def test_client_pause_all_ends_by_itself():
    with wb.Cluster(nodes=1) as c:
        admin, other = c.client(), c.client()
        started = time.monotonic()
        admin.execute_command("CLIENT", "PAUSE", "300")
        assert other.ping() is True                              # answered once it ends
        assert time.monotonic() - started >= 0.25


def test_client_unblock_a_wait_as_redis_server(both):
    """A WAIT with no replicas blocks; CLIENT UNBLOCK ends it as a timeout (the count so
    far) or with the UNBLOCKED error -- on both servers alike."""
    results = []
    for client in both:
        port = client.connection_pool.connection_kwargs["port"]
        for how in ("TIMEOUT", "ERROR"):
            waiter = redis.Redis(port=port, single_connection_client=True, socket_timeout=10)
            waiter_id = waiter.client_id()
            got = []
            t = threading.Thread(target=lambda: got.append(outcome(waiter, "WAIT 1 0")))
            t.start()
            wait_for(lambda: client.execute_command("CLIENT", "UNBLOCK", waiter_id, how) == 1,
                     what="the WAIT to block and be unblocked")
            t.join(5)
            results.append(got)
            waiter.close()
        assert client.execute_command("CLIENT", "UNBLOCK", client.client_id()) == 0
    assert results[:2] == results[2:]
    assert results[0] == [0] and results[1] == [("error", "UNBLOCKED client unblocked via CLIENT UNBLOCK")]


def test_client_kill_and_list_filters():
    with wb.Cluster(nodes=1) as c:
        me, victim = c.client(), c.client()
        vid = victim.client_id()
        mine = me.client_id()
        lines = me.execute_command("CLIENT", "LIST", "ID", vid, mine).splitlines()
        assert sorted(int(line.split()[0][3:]) for line in lines) == sorted([vid, mine])
        assert me.execute_command("CLIENT", "KILL", "ID", mine) == 0          # SKIPME yes
        assert me.execute_command("CLIENT", "KILL", "ID", vid, "SKIPME", "no") == 1
        wait_for(lambda: f"id={vid} " not in me.execute_command("CLIENT", "LIST"),
                 what="the killed client to leave")
        laddr = me.client_info()["laddr"]
        assert me.execute_command("CLIENT", "KILL", "LADDR", laddr) >= 0


def test_command_as_redis_server(both):
    ours, theirs = both

    def getkeys(client, *args):
        try:
            return client.command_getkeys(*args)
        except redis.ResponseError as err:
            return ("error", str(err))

    for args in [("SET", "a", "b"), ("MSET", "a", "1", "b", "2"), ("foo", "x"), ("GET", "a", "b"),
                 ("PING", "x"), ("LPUSH", "l", "x"), ("RENAME", "a", "b")]:
        assert getkeys(ours, *args) == getkeys(theirs, *args), args
    run_side_by_side(ours, theirs, [
        "COMMAND COUNT x", "COMMAND foo", "COMMAND LIST FILTERBY", "COMMAND LIST FILTERBY foo x",
        "COMMAND LIST FILTERBY MODULE x"])


def _plain(client, *args):
    """The reply to ``args`` without redis-py's parsing of COMMAND replies."""
    conn = client.connection_pool.get_connection()
    try:
        conn.send_command(*args)
        return conn.read_response()
    finally:
        client.connection_pool.release(conn)


def test_command_count_list_docs_are_consistent(both):
    ours, _ = both
    everything = _plain(ours, "COMMAND")
    names = {entry[0] for entry in everything}
    assert _plain(ours, "COMMAND", "COUNT") == len(everything) == len(COMMANDS)
    assert set(_plain(ours, "COMMAND", "LIST")) == names
    for new in [b"time", b"lastsave", b"object", b"memory", b"latency", b"slowlog", b"dump",
                b"restore", b"client", b"command", b"debug"]:
        assert new in names
    assert set(_plain(ours, "COMMAND", "LIST", "FILTERBY", "PATTERN", "slow*")) == {b"slowlog"}
    assert b"get" in _plain(ours, "COMMAND", "LIST", "FILTERBY", "ACLCAT", "string")
    docs = _plain(ours, "COMMAND", "DOCS", "get")
    docs = docs if isinstance(docs, dict) else dict(zip(docs[::2], docs[1::2]))
    get_docs = docs[b"get"]
    get_docs = get_docs if isinstance(get_docs, dict) else dict(zip(get_docs[::2], get_docs[1::2]))
    assert get_docs[b"group"] == b"string" and b"summary" in get_docs
    keys_and_flags = _plain(ours, "COMMAND", "GETKEYSANDFLAGS", "SET", "a", "b")
    assert keys_and_flags[0][0] == b"a"
