"""Blocking pops (BLPOP & co.) side by side with a real redis-server: immediate pops,
errors, null shapes, MULTI, arrival order, chains, events; and the node's own rules
(propagation to a replica, disconnects, CLIENT UNBLOCK, replicas refuse)."""

from __future__ import annotations

import socket
import threading

import pytest
import redis

import workbench as wb
from conftest import wait_for
from differential_helpers import both, port_of, redis_server, run_side_by_side  # noqa: F401

pytestmark = pytest.mark.compat


class Blocker:
    """A client on its own connection and thread, sending one (blocking) command."""

    def __init__(self, port: int, *command, proto: int = 2):
        self.client = redis.Redis(port=port, socket_timeout=10, protocol=proto)
        self.client.ping()
        self.reply = None
        self.thread = threading.Thread(target=self._run, args=(command,), daemon=True)
        self.thread.start()

    def _run(self, command):
        self.reply = outcome_of(self.client, command)

    def result(self, timeout: float = 10):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the blocked client was never answered"
        self.client.close()
        return self.reply


def outcome_of(client, command):
    try:
        return client.execute_command(*command)
    except redis.ResponseError as err:
        return ("error", str(err))
    except redis.ConnectionError as err:
        return ("disconnected", str(err))


def blocked(client) -> int:
    return client.info("clients")["blocked_clients"]


def block(client, *command, count: int = 1, proto: int = 2) -> Blocker:
    """Start ``command`` on a new connection; return once the server counts ``count``
    blocked clients (so arrival order is the order of the calls)."""
    b = Blocker(port_of(client), *command, proto=proto)
    wait_for(lambda: blocked(client) >= count, what=f"{command} to block")
    return b


def raw(port: int, data: bytes, expected: int, until: bytes | None = None) -> bytes:
    """Send ``data``; read ``expected`` bytes (or until the reply ends with ``until``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        buf = b""
        while (not buf.endswith(until)) if until else len(buf) < expected:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf


def on_both(both, scenario):                                      # noqa: F811
    ours, theirs = both
    return scenario(ours), scenario(theirs)


# -- at once: replies, errors, argument-check order ---------------------------------------
def test_immediate_pops_and_errors_match_redis(both):                # noqa: F811
    run_side_by_side(*both, [
        "RPUSH l a b c d e", "BLPOP nokey l 0", "BRPOP l 0", "BLPOP l 1.5",
        "BLMOVE l m LEFT RIGHT 0", "BRPOPLPUSH l m 0", "LRANGE m 0 -1", "EXISTS l",
        "RPUSH l x y z", "BLMPOP 0 2 nokey l RIGHT COUNT 2", "BLMPOP 0 1 l LEFT COUNT 9",
        "RPUSH l p q r", "LMPOP 2 nokey l LEFT", "LMPOP 1 l RIGHT COUNT 5", "LMPOP 1 l LEFT",
        "SET s v", "BLPOP nokey s 0", "BLMOVE s m LEFT LEFT 0", "BLMPOP 0 1 s LEFT",
        "RPUSH l2 a", "BLMOVE l2 s LEFT LEFT 0", "LRANGE l2 0 -1", "LMPOP 2 nokey s LEFT",
        # timeouts: parsed first for BLPOP, after the other arguments for BLMOVE/BLMPOP
        "BLPOP k abc", "BLPOP k -1", "BLPOP k nan", "BLPOP k -inf", "BLPOP s 1x", "BRPOP k ''",
        "BLMOVE a b FOO LEFT abc", "BLMOVE a b LEFT LEFT abc", "BLMOVE a b LEFT FOO -1",
        "BRPOPLPUSH a b x", "BLMPOP x 0 k LEFT", "BLMPOP 0 0 k LEFT", "BLMPOP 0 x k LEFT",
        "BLMPOP 0 2 k LEFT", "BLMPOP 0 1 k FOO", "BLMPOP 0 1 k LEFT COUNT 0",
        "BLMPOP 0 1 k LEFT COUNT -1", "BLMPOP 0 1 k LEFT COUNT", "BLMPOP 0 1 k LEFT FOO 1",
        "BLMPOP -1 1 k LEFT", "BLMPOP x 1 k FOO", "BLMPOP x 1 k LEFT",
        "BLMPOP 0 1 k LEFT COUNT 1 COUNT 2", "LMPOP 0 k LEFT", "LMPOP x k LEFT",
        "LMPOP 2 k LEFT", "LMPOP 1 k MIDDLE", "LMPOP 1 k LEFT COUNT 0", "LMPOP 1 k",
        "BLPOP k", "BLMOVE a b LEFT LEFT", "BLMPOP 0 1 k",
        "BZPOPMIN k x", "BZMPOP x 1 k MIN", "BZMPOP 0 1 k FOO", "BZMPOP x 0 k MIN",
        "BZMPOP 0 1 k MIN COUNT 0", "BZPOPMIN s 0", "BZMPOP 0 1 s MIN",
        "ZADD z 1 a 2 b 3 c 4 d 5 e", "BZPOPMIN nokey z 0", "BZPOPMAX z 0",
        "BZMPOP 0 1 z MIN COUNT 2", "BZMPOP 0 1 z MAX", "EXISTS z", "BZPOPMIN l2 0",
    ])


def test_timeouts_and_multi_answer_with_the_same_null_shapes(both):   # noqa: F811
    ours, theirs = both
    commands = [b"BLPOP k 0.01", b"BRPOP k 0.01", b"BLMOVE k d LEFT LEFT 0.01",
                b"BRPOPLPUSH k d 0.01", b"BLMPOP 0.01 1 k LEFT", b"BZPOPMIN k 0.01",
                b"BZPOPMAX k 0.01", b"BZMPOP 0.01 1 k MIN"]
    for command in commands:                      # a timeout: a null array in RESP2
        for client in both:
            assert raw(port_of(client), command + b"\r\n", 5) == b"*-1\r\n", command
    for command in commands:                      # and RESP3's null
        for client in both:
            assert raw(port_of(client), b"HELLO 3\r\n" + command + b"\r\n", 0,
                       until=b"_\r\n").endswith(b"_\r\n"), command
    transaction = (b"MULTI\r\n" + b"".join(c.replace(b"0.01", b"0") + b"\r\n" for c in commands)
                   + b"EXEC\r\n")
    expected = raw(port_of(theirs), transaction, 70)
    assert expected.endswith(b"*8\r\n*-1\r\n*-1\r\n$-1\r\n$-1\r\n*-1\r\n*-1\r\n*-1\r\n*-1\r\n")
    assert raw(port_of(ours), transaction, len(expected)) == expected
    # a non-empty key inside MULTI: the pop happens, as the non-blocking form's
    run_side_by_side(ours, theirs, ["RPUSH k a b", "MULTI", "BLPOP k 0", "BLMOVE k d LEFT LEFT 0",
                                    "EXEC", "LRANGE d 0 -1", "EXISTS k"])


# -- waiting and being served ---------------------------------------------------------------
def test_waiters_on_one_key_are_served_in_arrival_order(both):      # noqa: F811
    def scenario(client):
        waiters = [block(client, "BLPOP", "q", "5", count=n + 1) for n in range(3)]
        client.rpush("q", "1", "2", "3")
        return [w.result() for w in waiters]
    ours, theirs = on_both(both, scenario)
    assert ours == theirs == [(b"q", b"1"), (b"q", b"2"), (b"q", b"3")]


def test_a_pipelined_pop_after_the_push_comes_after_the_waiter(both):   # noqa: F811
    """The waiter is served when the push's command ends, before the pusher's next one."""
    def scenario(client):
        waiter = block(client, "BLPOP", "g", "5")
        pipe = client.pipeline(transaction=False)
        pipe.rpush("g", "x")
        pipe.lpop("g")
        return pipe.execute(), waiter.result()
    ours, theirs = on_both(both, scenario)
    assert ours == theirs == ([1, None], (b"g", b"x"))


def test_transactions_serve_after_exec_and_an_emptied_key_serves_nobody(both):   # noqa: F811
    def scenario(client):
        waiter = block(client, "BLPOP", "f", "5")
        pipe = client.pipeline()
        pipe.rpush("f", "x", "y")
        pipe.lrange("f", 0, -1)          # inside the transaction the waiter has not popped
        inside = pipe.execute()
        served = waiter.result()
        waiter = block(client, "BLPOP", "e", "0.5")
        pipe = client.pipeline()
        pipe.rpush("e", "x")
        pipe.lpop("e")
        pipe.execute()
        return inside, served, waiter.result(), client.lrange("f", 0, -1)
    ours, theirs = on_both(both, scenario)
    assert ours == theirs == ([2, [b"x", b"y"]], (b"f", b"x"), None, [b"y"])


def test_a_key_of_another_type_leaves_the_waiter_blocked(both):     # noqa: F811
    def scenario(client):
        waiter = block(client, "BLPOP", "w", "0.3")
        client.set("w", "str")
        zwaiter = block(client, "BZPOPMIN", "zw", "0.3", count=2)
        client.rpush("zw", "x")
        return waiter.result(), zwaiter.result(), client.get("w")
    ours, theirs = on_both(both, scenario)
    assert ours == theirs == (None, None, b"str")


def test_blmove_serves_the_destinations_own_waiters(both):          # noqa: F811
    def scenario(client):
        mover = block(client, "BLMOVE", "c1", "c2", "LEFT", "LEFT", "5")
        popper = block(client, "BLPOP", "c2", "5", count=2)
        client.rpush("c1", "z")
        rotator = block(client, "BLMOVE", "s1", "s1", "LEFT", "RIGHT", "5")
        client.rpush("s1", "p", "q")
        zpop = block(client, "BZMPOP", "5", "1", "zq", "MAX", "COUNT", "2")
        client.zadd("zq", {"a": 1, "b": 2, "c": 3})
        return (mover.result(), popper.result(), client.exists("c2"), rotator.result(),
                client.lrange("s1", 0, -1), zpop.result(), client.zrange("zq", 0, -1))
    ours, theirs = on_both(both, scenario)
    assert ours == theirs
    assert ours[:2] == (b"z", (b"c2", b"z"))


def test_served_pops_fire_the_non_blocking_forms_events(both):       # noqa: F811
    def scenario(client):
        client.config_set("notify-keyspace-events", "KEA")
        watcher = redis.Redis(port=port_of(client), socket_timeout=5)
        pubsub = watcher.pubsub()
        pubsub.psubscribe("__keyspace@*")
        pubsub.subscribe("end")
        wait_for(lambda: pubsub.get_message(timeout=0.1) is None, what="subscriptions")
        waiters = [block(client, "BLPOP", "e1", "5"),
                   block(client, "BLMOVE", "e2", "e3", "RIGHT", "LEFT", "5", count=2),
                   block(client, "BZPOPMAX", "e4", "5", count=3)]
        client.rpush("e1", "a")
        client.rpush("e2", "b")
        client.zadd("e4", {"m": 1})
        [w.result() for w in waiters]
        client.publish("end", "x")
        events = []
        while True:
            message = pubsub.get_message(timeout=5)
            assert message is not None, f"the end marker never came: {events}"
            if message["type"] == "message":
                break
            if message["type"] == "pmessage":
                events.append((message["channel"], message["data"]))
        pubsub.close()
        watcher.close()
        return events
    ours, theirs = on_both(both, scenario)
    assert ours == theirs
    assert (b"__keyspace@0__:e1", b"lpop") in ours


def test_several_keys_valkey_retries_the_whole_command(both):        # noqa: F811
    """Valkey 8 re-runs a served blocking command: its keys are tried in order (Redis
    7.0 served the key signalled first, here k2)."""
    ours, _ = both
    waiter = block(ours, "BLPOP", "k1", "k2", "5")
    pipe = ours.pipeline()
    pipe.rpush("k2", "b")
    pipe.rpush("k1", "a")
    pipe.execute()
    assert waiter.result() == (b"k1", b"a")
    assert ours.lrange("k2", 0, -1) == [b"b"]


# -- the node's own rules ---------------------------------------------------------------------
def test_client_unblock_and_disconnects_leave_the_queue(both):      # noqa: F811
    def scenario(client):
        results = []
        for how in ([], ["ERROR"], ["TIMEOUT"]):
            waiter = block(client, "BLMOVE", "u", "d", "LEFT", "LEFT", "0")
            [entry] = [c for c in client.client_list() if c["cmd"] == "blmove"]
            results.append(client.execute_command("CLIENT", "UNBLOCK", entry["id"], *how))
            results.append(waiter.result())
        results.append(client.execute_command("CLIENT", "UNBLOCK", "999999"))
        gone = socket.create_connection(("127.0.0.1", port_of(client)), timeout=5)
        gone.sendall(b"BLPOP v 0\r\n")
        wait_for(lambda: blocked(client) == 1, what="BLPOP to block")
        gone.close()                                       # it goes away while it waits
        wait_for(lambda: blocked(client) == 0, what="the disconnected waiter to leave")
        stays = block(client, "BLPOP", "v", "5")
        client.rpush("v", "1")
        results.append(stays.result())
        results.append(client.lrange("v", 0, -1))
        return results
    ours, theirs = on_both(both, scenario)
    assert ours == theirs
    assert ours[3] == ("error", "UNBLOCKED client unblocked via CLIENT UNBLOCK")


def test_served_pops_reach_the_replica_as_the_non_blocking_forms():
    """A served pop is propagated (LPOP, LMOVE, LPOP key n, ZPOPMIN...): the replica ends
    up with the same data; on the replica itself a blocking pop is a refused write."""
    with wb.Cluster(mode="async", nodes=2) as cluster:
        primary = cluster.primary(timeout=10)
        r = cluster.client()
        replica_node = next(n for n in cluster.nodes if n is not primary)
        replica = cluster.client(replica_node)
        waiters = [block(r, "BLPOP", "a", "5"), block(r, "BLMOVE", "b", "c", "LEFT", "RIGHT", "5", count=2),
                   block(r, "BLMPOP", "5", "2", "x", "d", "RIGHT", "COUNT", "2", count=3),
                   block(r, "BZPOPMIN", "z", "5", count=4), block(r, "BRPOPLPUSH", "e", "c", "5", count=5)]
        r.rpush("a", "1", "2")
        r.rpush("b", "3", "4")
        r.rpush("d", "5", "6", "7")
        r.zadd("z", {"m": 1, "n": 2})
        r.rpush("e", "8", "9")
        assert [w.result() for w in waiters] == [
            (b"a", b"1"), b"3", [b"d", [b"7", b"6"]], (b"z", b"m", 1.0), b"9"]   # (Blocker: bytes)

        def dump(client):
            return {k: client.lrange(k, 0, -1) if client.type(k) in (b"list", "list")
                    else client.zrange(k, 0, -1, withscores=True) for k in sorted(client.keys())}
        r.execute_command("WAIT", "1", "5000")
        assert dump(replica) == dump(r) == {"a": ["2"], "b": ["4"], "c": ["9", "3"],
                                            "d": ["5"], "e": ["8"], "z": [("n", 2.0)]}
        with pytest.raises(redis.exceptions.ReadOnlyError):
            replica.execute_command("BLPOP", "a", "0.1")


def test_a_script_serves_waiters_once_it_has_finished(both):                  # noqa: F811
    """A script is one atomic unit, like EXEC: the waiter is served after it, with the
    list as the whole script left it."""
    script = "redis.call('RPUSH', KEYS[1], 'a'); redis.call('RPUSH', KEYS[1], 'b'); " \
             "return redis.call('LRANGE', KEYS[1], 0, -1)"

    def scenario(client):
        waiter = block(client, "BLPOP", "s", "5")
        inside = client.eval(script, 1, "s")
        return inside, waiter.result(), client.lrange("s", 0, -1)
    ours, theirs = on_both(both, scenario)
    assert ours == theirs == ([b"a", b"b"], (b"s", b"a"), [b"b"])


def test_a_waiter_served_by_a_script_reaches_the_replica_in_order():
    with wb.Cluster(mode="async", nodes=2, record=False) as cluster:
        r = cluster.client()
        replica = cluster.client(cluster.node("n2"))
        waiter = block(r, "BLMOVE", "src", "dst", "LEFT", "LEFT", "5")
        r.eval("redis.call('RPUSH', 'src', 'x', 'y'); redis.call('DEL', 'dst'); return 1", 0)
        assert waiter.result() == b"x"
        r.execute_command("WAIT", "1", "5000")
        for client in (r, replica):
            assert client.lrange("src", 0, -1) == ["y"] and client.lrange("dst", 0, -1) == ["x"]
