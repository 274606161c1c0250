"""Async replication between real nodes: the stream, acks, WAIT, WAITAOF, write gating."""

from __future__ import annotations

import threading
import time

import pytest
import redis

import workbench as wb
from conftest import wait_for


def offsets(cluster):
    return {n: s["offset"] for n, s in cluster.snapshot().items() if not n.startswith("_")}


def test_replicas_copy_every_write_and_report_offsets(cluster3):
    r = cluster3.client()
    for i in range(200):
        r.set(f"k{i}", i)
    r.rpush("list", *range(10))
    wait_for(lambda: len(set(offsets(cluster3).values())) == 1, what="replicas to catch up")
    for name in ("n2", "n3"):
        replica = cluster3.client(name)
        assert replica.get("k199") == "199"
        assert replica.lrange("list", 0, -1) == [str(i) for i in range(10)]
        info = replica.info("replication")
        assert info["role"] == "slave" and info["master_link_status"] == "up"
    role = r.execute_command("ROLE")
    assert role[0] == "master" and len(role[2]) == 2


def test_replica_refuses_writes_with_valkeys_error(cluster3):
    replica = cluster3.client("n2")
    with pytest.raises(redis.ReadOnlyError, match="You can't write against a read only replica."):
        replica.set("x", "1")
    assert replica.get("x") is None


def test_wait_counts_replicas_that_acked_the_clients_last_write(cluster3):
    r = cluster3.client()
    r.set("a", "1")
    assert r.wait(2, 2000) == 2
    assert r.wait(0, 0) == 2              # satisfied at once; the count is still reported


def test_wait_times_out_with_the_count_not_an_error(cluster3):
    r = cluster3.client()
    r.set("warm", "1")
    assert r.wait(2, 2000) == 2
    cluster3.partition(["n1", "n2"], ["n3"])
    r.set("b", "1")
    started = time.monotonic()
    assert r.wait(2, 300) == 1            # n3 cannot ack: WAIT says so when time runs out
    assert time.monotonic() - started >= 0.29
    cluster3.heal()


def test_wait_errors(cluster3):
    with pytest.raises(redis.ResponseError, match="WAIT cannot be used with replica instances"):
        cluster3.client("n2").wait(1, 10)
    r = cluster3.client()
    with pytest.raises(redis.ResponseError, match="timeout is negative"):
        r.wait(1, -1)
    with pytest.raises(redis.ResponseError, match="timeout is not an integer or out of range"):
        r.execute_command("WAIT", 1, "soon")


def test_waitaof_reports_local_fsync_and_replica_fsyncs(cluster3):
    r = cluster3.client()
    r.set("durable", "1")
    # everysec: the local fsync and the replicas' fsyncs come within about a second
    assert r.execute_command("WAITAOF", 1, 2, 5000) == [1, 2]
    with pytest.raises(redis.ResponseError, match="value must between 0 and 1"):
        r.execute_command("WAITAOF", 2, 0, 0)
    with pytest.raises(redis.ResponseError, match="WAITAOF cannot be used with replica"):
        cluster3.client("n3").execute_command("WAITAOF", 0, 1, 10)


def test_waitaof_refuses_numlocal_without_aof():
    with wb.Cluster(nodes=1, appendonly="no") as c:
        r = c.client()
        r.set("x", "1")
        with pytest.raises(redis.ResponseError, match="numlocal is set but appendonly is disabled"):
            r.execute_command("WAITAOF", 1, 0, 0)


def test_min_replicas_to_write_gives_noreplicas(cluster3):
    r = cluster3.client()
    r.config_set("min-replicas-to-write", 3)
    with pytest.raises(redis.ResponseError, match="NOREPLICAS Not enough good replicas to write."):
        r.set("x", "1")
    r.config_set("min-replicas-to-write", 2)
    assert r.set("x", "1") is True


def test_a_healed_link_continues_from_the_backlog(cluster3):
    r = cluster3.client()
    r.set("before", "1")
    cluster3.partition(["n1", "n2"], ["n3"])
    for i in range(50):
        r.set(f"during{i}", i)
    cluster3.heal()
    wait_for(lambda: cluster3.client("n3").get("during49") == "49", what="n3 to catch up")
    log = "\n".join(cluster3.node("n1").log_lines)
    assert "Partial resynchronization request" in log or "Full resync" in log


def test_demotion_unblocks_wait_with_an_error():
    with wb.Cluster(nodes=2, down_after_ms=60_000) as c:
        r = c.client("n1")
        r.set("x", "1")
        c.partition(["n1"], ["n2"])
        r.set("y", "1")
        outcome = {}

        def blocked_wait():
            try:
                outcome["reply"] = r.wait(1, 0)
            except redis.RedisError as err:
                outcome["error"] = err
        t = threading.Thread(target=blocked_wait)
        t.start()
        wait_for(lambda: c.runtime.call(lambda: bool(c.node("n1").server.repl.waiters)),
                 what="WAIT to block")
        c.client("n1").execute_command("REPLICAOF", "127.0.0.1", c.node("n2").port)
        t.join(5)
        assert "UNBLOCKED" in str(outcome.get("error"))
        c.heal()
