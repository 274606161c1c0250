"""Sentinel-style failover in async mode, and the acknowledged writes it loses."""

from __future__ import annotations

import redis

import workbench as wb
from conftest import wait_for


def acknowledged_writes(client, prefix: str, count: int) -> list[str]:
    """Write ``count`` unique keys; return those whose write the server acknowledged."""
    acked = []
    for i in range(count):
        key = f"{prefix}{i}"
        try:
            if client.set(key, i):
                acked.append(key)
        except redis.RedisError:
            pass
    return acked


def missing(client, keys) -> list[str]:
    return [k for k, v in zip(keys, client.mget(keys)) if v is None]


def test_split_brain_loses_acknowledged_writes(cluster3):
    old = cluster3.primary()
    assert old.name == "n1"
    r_old = cluster3.client(old)
    before = acknowledged_writes(r_old, "before", 20)
    assert r_old.wait(2, 2000) == 2
    cluster3.partition(["n1"], ["n2", "n3"])
    # The isolated primary has no idea: it keeps acknowledging writes.
    during = acknowledged_writes(r_old, "during", 50)
    assert len(during) == 50
    new = wait_for(lambda: (p := cluster3.current_primary()) and p.name != "n1" and p,
                   timeout=10, what="the majority to promote a replica")
    cluster3.heal()
    wait_for(lambda: old.role == "replica", timeout=10, what="the old primary to be demoted")
    r_new = cluster3.client(new)
    wait_for(lambda: cluster3.client(old).get("before0") == "0", what="old primary resync")
    lost = missing(r_new, during)
    assert lost == during, "every write acknowledged by the minority primary is gone"
    assert missing(r_new, before) == []
    assert missing(cluster3.client(old), during) == during   # the old primary lost them too
    log = "\n".join(new.log_lines)
    assert "failover epoch" in log or "monitor adopts epoch" in log


def test_crashed_primary_is_replaced_and_rejoins_as_replica(cluster3):
    r = cluster3.client()
    acked = acknowledged_writes(r, "k", 30)
    assert r.wait(2, 2000) == 2                # every write reached both replicas
    cluster3.node("n1").kill()
    new = cluster3.primary(timeout=10)
    assert new.name in ("n2", "n3")
    assert missing(cluster3.client(new), acked) == []      # WAITed writes survived this time
    cluster3.client(new).set("after", "1")
    cluster3.node("n1").restart()
    wait_for(lambda: cluster3.node("n1").role == "replica", timeout=10,
             what="the restarted node to follow the new primary")
    wait_for(lambda: cluster3.client("n1").get("after") == "1", what="n1 to catch up")


def test_five_nodes_primary_and_one_replica_cut_off():
    """Jepsen 2013: the primary and one replica on the minority side of a 5-node cluster."""
    with wb.Cluster(mode="async", nodes=5, down_after_ms=500) as c:
        old = c.primary()
        c.partition(["n1", "n2"], ["n3", "n4", "n5"])
        during = acknowledged_writes(c.client(old), "minority", 30)
        new = wait_for(lambda: (p := c.current_primary()) and p.name in ("n3", "n4", "n5") and p,
                       timeout=10, what="the majority to promote")
        c.heal()
        wait_for(lambda: old.role == "replica", timeout=10, what="demotion of n1")
        assert missing(c.client(new), during) == during


def test_a_minority_cannot_fail_over():
    with wb.Cluster(mode="async", nodes=3, down_after_ms=300) as c:
        c.partition(["n1", "n2"], ["n3"])
        # n3 alone sees the primary down but cannot gather a majority: it must not promote.
        wait_for(lambda: c.runtime.call(lambda: not c.node("n3").monitor.reachable("n1")),
                 what="n3's monitor to lose sight of n1")
        wait_for(lambda: "agree n1 is down" in "\n".join(c.node("n3").log_lines), timeout=5,
                 what="n3 to try and fail to get agreement")
        assert c.node("n3").role == "replica" and c.node("n1").role == "primary"
        c.heal()
