"""Scripts and the commit gate: a script is one unit for durability as for atomicity.

* ``aof``: a writing script's reply is held until its writes are fsynced; a read-only
  script that reads an uncommitted key is held too, one that reads a clean key is not.
* ``sync``: scripts that each SET three keys run while the primary crashes (power
  loss); after the failover every acknowledged script's three keys are there, and an
  unacknowledged one left all three or none -- never a part (its effects travel as one
  MULTI/EXEC in the replication stream).
* ``raft``: a script's writes are one entry; the followers end with the same keys.
"""

from __future__ import annotations

import threading

import pytest
import redis

import workbench as wb
from conftest import RawClient, reply_blocking_info, wait_for
from test_commit_gate import nothing_arrived

SET3 = ("redis.call('set', KEYS[1], ARGV[1]); redis.call('set', KEYS[2], ARGV[1]); "
        "redis.call('set', KEYS[3], ARGV[1]); return 1")


def eval_request(script: str, *args, command: bytes = b"EVAL") -> bytes:
    parts = [command, script.encode()] + [str(a).encode() for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def test_a_writing_scripts_reply_waits_for_the_fsync(aof_node):
    r = aof_node.client()
    r.set("clean", "1")
    r.execute_command("DEBUG", "reply-blocking-pause", "aof")
    writer = RawClient(aof_node.nodes[0].port)
    writer.send(eval_request(SET3, 3, "x", "y", "z", "v"))
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_uncommitted_keys"] == 3,
             what="the script's three keys to be dirty")
    assert nothing_arrived(writer)
    # a read-only script of a dirty key waits as well; of a clean key, it answers now
    reader = RawClient(aof_node.nodes[0].port)
    reader.send(eval_request("return redis.call('get', KEYS[1])", 1, "x", command=b"EVAL_RO"))
    assert r.eval_ro("return redis.call('get', KEYS[1])", 1, "clean") == "1"
    assert nothing_arrived(reader)
    r.execute_command("DEBUG", "reply-blocking-resume", "aof")
    assert writer.read_exactly_reply(4) == b":1\r\n"
    assert reader.read_exactly_reply(7) == b"$1\r\nv\r\n"
    writer.close()
    reader.close()


def test_a_script_that_fails_after_a_write_is_held_too(aof_node):
    """The write before the error stays (scripts do not roll back), so its error reply
    may only leave once that write is durable."""
    r = aof_node.client()
    r.set("s", "text")
    r.execute_command("DEBUG", "reply-blocking-pause", "aof")
    writer = RawClient(aof_node.nodes[0].port)
    writer.send(eval_request("redis.call('set', 'w', 1); return redis.call('incr', 's')", 0))
    wait_for(lambda: reply_blocking_info(aof_node)["reply_blocking_clients_waiting_ack"] == 1,
             what="the failing script's reply to be held")
    assert nothing_arrived(writer)
    r.execute_command("DEBUG", "reply-blocking-resume", "aof")
    assert writer.read_exactly_reply(5).startswith(b"-ERR value is not an integer")
    writer.close()


def run_scripts_until_failure(client, start: int, acked: list, unknown: list,
                              stop: threading.Event) -> None:
    i = start
    while not stop.is_set():
        try:
            client.eval(SET3, 3, f"a:{i}", f"b:{i}", f"c:{i}", i)
            acked.append(i)
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            unknown.append(i)           # no reply, or the indefinite timeout: outcome unknown
            return
        i += 1


def test_acknowledged_scripts_survive_a_failover_whole_in_sync_mode():
    with wb.Cluster(mode="sync", nodes=3, down_after_ms=400, repl_timeout=60) as c:
        primary = c.primary(timeout=10)
        acked, unknown, stop = [], [], threading.Event()
        for i in range(20):                                   # plainly acknowledged
            c.client().eval(SET3, 3, f"a:{i}", f"b:{i}", f"c:{i}", i)
            acked.append(i)
        writers = []
        for w in range(2):
            client = redis.Redis(port=primary.port, socket_timeout=5, decode_responses=True)
            writers.append(threading.Thread(target=run_scripts_until_failure,
                                            args=(client, 1000 * (w + 1), acked, unknown, stop)))
        for t in writers:
            t.start()
        wait_for(lambda: len(acked) >= 60, what="scripts acknowledged under load")
        primary.kill(power_loss=True)
        stop.set()
        for t in writers:
            t.join(15)
        new = c.primary(timeout=15)
        assert new.name != primary.name
        r = c.client(new)
        for i in acked:
            assert r.mget(f"a:{i}", f"b:{i}", f"c:{i}") == [str(i)] * 3, i
        for i in unknown:
            values = r.mget(f"a:{i}", f"b:{i}", f"c:{i}")
            assert values in ([str(i)] * 3, [None] * 3), (i, values)


@pytest.mark.timeout(60)
def test_a_raft_scripts_writes_reach_every_follower_as_one_unit():
    with wb.Cluster(mode="raft", nodes=3) as c:
        leader = c.primary(timeout=15)
        r = c.client(leader)
        for i in range(10):
            assert r.eval(SET3, 3, f"a:{i}", f"b:{i}", f"c:{i}", i) == 1
        r.eval("redis.call('sadd', 'pool', 1, 2, 3, 4); "
               "return redis.call('set', 'popped', redis.call('spop', 'pool'))", 0)
        expected = {k: r.get(k) for k in r.keys("*") if r.type(k) == "string"}
        expected_pool = r.smembers("pool")
        for node in c.nodes:
            if node.name == leader.name:
                continue
            follower = c.client(node)
            follower.execute_command("READONLY")
            wait_for(lambda: follower.execute_command("INFO", "raft")["raft_commit_index"]
                     >= r.execute_command("INFO", "raft")["raft_commit_index"],
                     what="the follower to apply the leader's entries")
        # a follower's keyspace holds what it applied from the committed log
        for node in c.nodes:
            if node.name != leader.name:
                assert node_strings(c, node) == {k.encode(): v.encode() for k, v in expected.items()}
        assert len(expected_pool) == 3


def node_strings(c, node) -> dict:
    """The string keys of ``node``'s db 0, read on the node's loop."""
    def read():
        data = node.server.keyspace.dbs[0].data
        return {k: v for k, v in data.items() if isinstance(v, (bytes, bytearray))}
    return c.runtime.call(read)
