"""Blocking pops under the commit gate: a served pop is a write, so its reply waits until
the pop is durable, and a client never receives an element that a failover gives back."""

from __future__ import annotations

import socket
import threading

import pytest
import redis

import workbench as wb
from conftest import RawClient, reply_blocking_info, wait_for


def nothing_arrived(raw: RawClient) -> bool:
    raw.sock.setblocking(False)
    try:
        raw.sock.recv(1, socket.MSG_PEEK)
        return False
    except BlockingIOError:
        return True
    finally:
        raw.sock.settimeout(5)


def blocked(client) -> int:
    return int(client.info("clients")["blocked_clients"])


def test_a_served_blpop_gets_its_reply_only_once_the_pop_is_fsynced(aof_node):
    r = aof_node.client()
    popper = RawClient(aof_node.nodes[0].port)
    popper.send(b"BLPOP q 0\r\n")
    wait_for(lambda: blocked(r) == 1, what="BLPOP to block")
    r.execute_command("DEBUG", "reply-blocking-pause", "aof")
    pusher = RawClient(aof_node.nodes[0].port)
    pusher.send(b"RPUSH q x\r\n")
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_clients_waiting_ack"] == 2,
             what="the push's and the served pop's replies to be held")
    assert blocked(r) == 0                              # served: no longer waiting on q ...
    assert nothing_arrived(popper)                      # ... but told nothing yet
    assert nothing_arrived(pusher)
    r.execute_command("DEBUG", "reply-blocking-resume", "aof")
    assert popper.read_exactly_reply(18) == b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n"
    assert pusher.read_exactly_reply(4) == b":1\r\n"
    assert r.llen("q") == 0
    popper.close()
    pusher.close()


def test_a_timeout_and_a_pop_that_served_nobody_are_not_held(aof_node):
    r = aof_node.client()
    r.execute_command("DEBUG", "reply-blocking-pause", "aof")
    waiter = RawClient(aof_node.nodes[0].port)
    waiter.send(b"BLPOP empty 0.05\r\n")                # nothing written: nothing to wait for
    assert waiter.read_exactly_reply(5) == b"*-1\r\n"
    r.execute_command("DEBUG", "reply-blocking-resume", "aof")
    waiter.close()


class History:
    """What each client was told: (client, op, value, outcome) with outcome ``ok`` (a
    reply), ``info`` (unknown: an error that says so, or the connection went away)."""

    def __init__(self):
        self.ops: list[tuple] = []
        self.lock = threading.Lock()

    def record(self, client: str, op: str, value, outcome: str) -> None:
        with self.lock:
            self.ops.append((client, op, value, outcome))

    def popped_ok(self) -> list:
        return [value for _, op, value, outcome in self.ops if op == "pop" and outcome == "ok"]


def popper(port: int, history: History, name: str, ready: threading.Event):
    client = redis.Redis(port=port, socket_timeout=30, decode_responses=True)
    client.ping()
    ready.set()
    try:
        reply = client.execute_command("BLPOP", "q", "0")
        history.record(name, "pop", reply[1], "ok")
    except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as err:
        history.record(name, "pop", str(err), "info")
    finally:
        client.close()


def start_popper(cluster, node, history, name) -> threading.Thread:
    ready = threading.Event()
    thread = threading.Thread(target=popper, args=(node.port, history, name, ready), daemon=True)
    thread.start()
    ready.wait(5)
    return thread


def check_pops(history: History, final_list: list, pushed: set) -> list:
    """A client told it popped ``e`` must see ``e`` gone for good: not in the new primary's
    list, and once pushed. Returns the violations (an empty list is a pass)."""
    problems = []
    for value in history.popped_ok():
        if value in final_list:
            problems.append(f"popped {value!r} was handed out, yet the new primary still holds it")
        if value not in pushed:
            problems.append(f"popped {value!r} was never pushed")
    if len(set(history.popped_ok())) != len(history.popped_ok()):
        problems.append("an element was handed out twice")
    return problems


def test_sync_a_blocked_client_never_receives_a_pop_that_the_failover_erases():
    """sync, 3 nodes: a pop served while the primary is cut from its replicas stays held;
    the primary dies; the new primary never saw the push nor the pop, and the client was
    never told of the element (its outcome is unknown: the connection went away)."""
    with wb.Cluster(mode="sync", nodes=3, down_after_ms=400, repl_timeout=60,
                    durability_timeout_ms=30000) as c:
        history = History()
        old = c.primary(timeout=10)
        r = c.client()
        # while healthy: a served pop is acknowledged once the replicas have it
        first = start_popper(c, old, history, "p1")
        wait_for(lambda: blocked(r) == 1, what="p1 to block")
        r.rpush("q", "w")
        history.record("pusher", "push", "w", "ok")
        first.join(10)
        assert history.popped_ok() == ["w"]
        # cut the primary off; the next pop is served on it but cannot become durable
        second = start_popper(c, old, history, "p2")
        wait_for(lambda: blocked(r) == 1, what="p2 to block")
        others = [n for n in c.nodes if n is not old]
        c.partition([old.name], [n.name for n in others])
        pusher = RawClient(old.port)
        pusher.send(b"RPUSH q x\r\n")
        wait_for(lambda: c.client(old).info("reply_blocking")["reply_blocking_clients_waiting_ack"] >= 2,
                 what="the push and the served pop to be held on the old primary")
        assert blocked(c.client(old)) == 0               # p2 was served there ...
        assert second.is_alive()                         # p2 has been told nothing
        assert nothing_arrived(pusher)
        old.kill()
        history.record("pusher", "push", "x", "info")
        second.join(10)
        assert not second.is_alive()
        new = c.primary(timeout=15)
        assert new is not old
        final = c.client(new).lrange("q", 0, -1)
        assert final == []                               # w popped (durably); x never arrived
        assert check_pops(history, final, pushed={"w", "x"}) == []
        assert [op for op in history.ops if op[0] == "p2"][0][3] == "info"
        pusher.close()


def test_sync_a_demoted_primary_unblocks_its_waiters_with_valkeys_error():
    with wb.Cluster(mode="sync", nodes=3, down_after_ms=400, repl_timeout=60) as c:
        old = c.primary(timeout=10)
        r = c.client()
        history = History()
        waiter = start_popper(c, old, history, "p")
        wait_for(lambda: blocked(r) == 1, what="BLPOP to block")
        other = next(n for n in c.nodes if n is not old)
        c.runtime.call(lambda: old.server.become_replica("127.0.0.1", other.port))
        waiter.join(10)
        assert history.ops == [("p", "pop", "UNBLOCKED force unblock from blocking operation, "
                                "instance state changed (master -> replica?)", "info")]


@pytest.mark.parametrize("mode", ["raft"])
def test_raft_a_stepped_down_leader_hands_out_nothing_it_rolled_back(mode):
    """raft, 3 nodes: the leader, cut off, serves a pop it can never commit; it steps down
    and rolls back: the client is disconnected (outcome unknown), never told the element;
    the new leader still holds it."""
    with wb.Cluster(mode=mode, nodes=3) as c:
        leader = c.primary(timeout=15)
        r = c.client()
        r.rpush("seed", "1")
        history = History()
        waiter = start_popper(c, leader, history, "p")
        wait_for(lambda: blocked(r) == 1, what="BLPOP to block")
        others = [n for n in c.nodes if n is not leader]
        c.partition([leader.name], [n.name for n in others])
        pusher = RawClient(leader.port)
        pusher.send(b"RPUSH q x\r\n")
        waiter.join(20)
        assert not waiter.is_alive()
        new = wait_for(lambda: next((n for n in others if n.role == "primary"), None),
                       timeout=15, what="a new leader")
        assert history.popped_ok() == []                 # told nothing it could lose
        assert [op[3] for op in history.ops] == ["info"]
        c.heal()
        final = wait_for(lambda: _lrange(c, new), timeout=15, what="the new leader to answer")
        assert check_pops(history, final[1], pushed={"x"}) == []
        pusher.close()


def _lrange(c, node):
    try:
        return ("ok", c.client(node).lrange("q", 0, -1))
    except redis.RedisError:
        return None
