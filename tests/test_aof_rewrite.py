"""BGREWRITEAOF: the AOF rewritten from the keyspace is smaller and rebuilds the same data."""

from __future__ import annotations

import os
import time

import pytest
import redis

import workbench as wb
from differential_helpers import both, redis_server, run_side_by_side  # noqa: F401


def _aof_size(node) -> int:
    return os.path.getsize(os.path.join(node.data_dir, node.config["appendfilename"]))


def _digests(r) -> dict:
    """Each key's value digest: equal values, equal digests, whatever a set's order."""
    return {key: r.execute_command("DEBUG", "DIGEST-VALUE", key) for key in r.keys("*")}


def test_rewrite_then_restart_rebuilds_every_type():
    with wb.Cluster(mode="async", nodes=1, appendfsync="always", record=False) as cluster:
        node = cluster.nodes[0]
        r = cluster.client()
        for i in range(2_000):                     # a history much longer than the data
            r.set("counter", i)
        r.zadd("board", {"ann": 1.5, "bob": 0.1, "cy": float("inf")})
        r.pfadd("visitors", *[f"v{i}" for i in range(50)])
        r.setbit("flags", 77, 1)
        r.rpush("list", "a", "b")
        r.hset("hash", mapping={"f": "v"})
        r.sadd("set", "x", "y")
        r.set("ttl", "v", px=600_000)
        before = _aof_size(node)
        assert r.bgrewriteaof()
        assert _aof_size(node) < before
        r.set("after", "rewrite")                  # appended behind the rewritten base
        expected = _digests(r)
        node.kill(power_loss=True)
        node.restart()
        r = cluster.client()
        assert _digests(r) == expected
        assert r.zscore("board", "bob") == 0.1 and r.pfcount("visitors") == 50
        assert 0 < r.pttl("ttl") <= 600_000


def test_rewrite_is_refused_where_the_aof_is_not_the_nodes_to_rewrite():
    with wb.Cluster(mode="async", nodes=1, appendonly=False, record=False) as cluster:
        with pytest.raises(redis.ResponseError, match="appendonly is off"):
            cluster.client().bgrewriteaof()
    with wb.Cluster(mode="aof", nodes=1, record=False) as cluster:
        with pytest.raises(redis.ResponseError, match="write-behind log owns the AOF"):
            cluster.client().bgrewriteaof()
    with wb.Cluster(mode="raft", nodes=3, record=False) as cluster:
        cluster.primary(timeout=20)
        with pytest.raises(redis.ResponseError, match="not supported on a raft node"):
            cluster.client().bgrewriteaof()


def test_config_help_and_arity_side_by_side(both):
    run_side_by_side(*both, ["CONFIG HELP", "CONFIG HELP x", "BGREWRITEAOF x", "LOLWUT VERSION x"])


LIBRARY = "#!lua name=counters\nredis.register_function('bump', function(keys) return redis.call('INCR', keys[1]) end)"


def _library_names(client) -> list:
    libraries = client.function_list()          # maps in RESP3, flat pairs in RESP2
    return [(lib if isinstance(lib, dict) else dict(zip(lib[::2], lib[1::2])))["library_name"]
            for lib in libraries]


def test_function_libraries_survive_a_rewrite_and_a_restart():
    """A library is data: an AOF rewritten from the dataset must carry it (as Valkey's
    RDB does), or a restart would lose it."""
    with wb.Cluster(mode="async", nodes=1, appendfsync="always", record=False) as cluster:
        node, r = cluster.nodes[0], cluster.client()
        assert r.function_load(LIBRARY) == "counters"
        assert r.fcall("bump", 1, "n") == 1
        assert r.bgrewriteaof()
        node.kill(power_loss=True)
        node.restart()
        r = cluster.client()
        assert r.fcall("bump", 1, "n") == 2
        assert _library_names(r) == ["counters"]


def test_a_replica_full_sync_brings_the_libraries():
    with wb.Cluster(mode="async", nodes=1, record=False) as cluster:
        r = cluster.client()
        r.function_load(LIBRARY)
        r.fcall("bump", 1, "n")
        replica = cluster.add_node()                 # joins with a full sync
        client = cluster.client(replica)
        deadline = time.monotonic() + 10
        while client.get("n") != "1":
            assert time.monotonic() < deadline, "the replica never synced"
            time.sleep(0.02)
        assert _library_names(client) == ["counters"]
