"""The ``sync`` mode on real nodes: eligibility granted after catch-up and revoked through
the monitors, writes (and reads of their keys) held until every eligible replica
acknowledged them, the indefinite timeout, the definite NOREPLICAS, and elections that
only promote an eligible replica."""

from __future__ import annotations

import socket

import pytest
import redis

import workbench as wb
from conftest import wait_for
from workbench import events as ev
from workbench.history.workloads import classify

SET_K = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n"
GET_K = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
TIMED_OUT = (b"-NOREPLICAS Timed out waiting for the eligible replicas to acknowledge the "
             b"write; it was executed and may still become durable (outcome unknown)\r\n")


def replication(c, node) -> dict:
    return c.client(node).info("replication")


def eligible_on_primary(c) -> list[str]:
    primary = c.primary()
    return c.runtime.call(lambda: primary.server.eligibility.eligible)


def agreed(c, node) -> list[str]:
    return c.runtime.call(lambda: list(c.node(node).monitor.eligible))


def recv_reply(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    try:
        return sock.recv(65536)
    except socket.timeout:
        return b""


@pytest.fixture
def sync3():
    with wb.Cluster(mode="sync", nodes=3, down_after_ms=400, repl_timeout=60) as c:
        yield c


def test_a_started_cluster_has_every_replica_eligible_and_says_so_in_info(sync3):
    c = sync3
    r = c.client()
    assert r.set("k", "v") is True
    info = replication(c, "n1")
    assert info["durability_mode"] == "sync" and info["durability_replicas"] == 1
    assert info["eligible_replicas"] == 2
    assert [info[f"slave{i}"]["eligible"] for i in range(2)] == [1, 1]
    assert info["committed_offset"] == info["master_repl_offset"]
    assert replication(c, "n2")["replica_eligible"] == 1
    wait_for(lambda: agreed(c, "n3") == ["n2", "n3"], what="the monitors to record both grants")


def test_a_write_and_reads_of_its_key_wait_for_every_eligible_replica(sync3):
    """A paused eligible replica holds the write's reply, and a read of the same key from
    another client (no dirty read); both leave when the replica acknowledges."""
    c = sync3
    c.node("n3").pause()
    writer = socket.create_connection(("127.0.0.1", c.node("n1").port))
    reader = socket.create_connection(("127.0.0.1", c.node("n1").port))
    writer.sendall(SET_K)
    reader.sendall(GET_K)
    assert recv_reply(writer, 0.3) == b"" and recv_reply(reader, 0.1) == b""
    assert c.client().get("other") is None            # a read of a committed key answers
    c.node("n3").resume()
    assert recv_reply(writer, 5) == b"+OK\r\n"
    assert recv_reply(reader, 5) == b"$1\r\n1\r\n"
    writer.close()
    reader.close()


def test_a_write_not_committed_in_time_gets_the_indefinite_error_and_its_key_stays_held():
    """The replica stays silent past durability-timeout-ms: the write ran, so the error
    says the outcome is unknown (a history records it as ``info``), and a read of the key
    waits until the write commits."""
    with wb.Cluster(mode="sync", nodes=2, durability_timeout_ms=300, repl_timeout=60) as c:
        timed_out = []
        sub = c.events.subscribe(lambda e: timed_out.append(e)
                                 if isinstance(e, ev.WriteTimedOut) else None)
        c.node("n2").pause()
        writer = socket.create_connection(("127.0.0.1", c.node("n1").port))
        writer.sendall(SET_K + GET_K)
        assert recv_reply(writer, 5) == TIMED_OUT
        assert recv_reply(writer, 0.2) == b""          # the pipelined GET k still waits
        assert classify(redis.ResponseError(TIMED_OUT[1:-2].decode())) == "info"
        c.node("n2").resume()
        assert recv_reply(writer, 5) == b"$1\r\n1\r\n"  # committed after all
        assert c.client().info("reply_blocking")["reply_blocking_write_timeouts"] == 1
        wait_for(lambda: timed_out, what="a WriteTimedOut event")
        sub.close()
        writer.close()


def test_too_few_eligible_replicas_refuse_writes_at_once_with_the_definite_error():
    with wb.Cluster(mode="sync", nodes=3, durability_replicas=2, down_after_ms=400) as c:
        r = c.client()
        r.set("before", "1")
        c.node("n3").kill()
        wait_for(lambda: eligible_on_primary(c) == ["n2"], what="n3's agreed revocation")
        with pytest.raises(redis.ResponseError) as refused:
            r.set("after", "1")
        assert str(refused.value) == "NOREPLICAS Not enough good replicas to write."
        assert classify(refused.value) == "fail"
        assert r.get("after") is None                    # nothing ran
        assert r.get("before") == "1"


def test_a_dropped_replica_is_revoked_only_once_the_monitors_recorded_it(sync3):
    c = sync3
    seen = []
    sub = c.events.subscribe(lambda e: seen.append(e) if isinstance(
        e, (ev.EligibilityRevoked, ev.EligibilityGranted)) else None)
    r = c.client()
    c.node("n3").kill()
    wait_for(lambda: eligible_on_primary(c) == ["n2"], what="n3's revocation")
    assert agreed(c, "n1") == ["n2"] and agreed(c, "n2") == ["n2"]
    assert r.set("k", "after the revocation") is True   # n2's acknowledgement suffices
    c.node("n3").restart()
    wait_for(lambda: eligible_on_primary(c) == ["n2", "n3"], what="n3 to earn it again")
    wait_for(lambda: [(type(e).__name__, e.replica) for e in seen if e.node == "n1"][-2:]
             == [("EligibilityRevoked", "n3"), ("EligibilityGranted", "n3")],
             what="the revoke and grant events")
    revoked = next(e for e in seen if isinstance(e, ev.EligibilityRevoked) and e.node == "n1")
    assert revoked.reason == "disconnected" and revoked.agreed is True
    assert c.client("n3").get("k") == "after the revocation"
    sub.close()


def test_a_silent_replica_is_dropped_after_the_write_timeout_and_writes_go_on():
    """Paused (not disconnected): the primary drops it once a write waited for it longer
    than durability-timeout-ms; after the monitors agree, writes commit again."""
    with wb.Cluster(mode="sync", nodes=3, durability_timeout_ms=300, down_after_ms=400) as c:
        c.node("n3").pause()
        r = c.client()
        with pytest.raises(redis.ResponseError, match="outcome unknown"):
            r.set("k", "1")
        wait_for(lambda: eligible_on_primary(c) == ["n2"], what="n3 dropped as timed out")
        assert any("Disconnecting timedout replica" in line for line in c.node("n1").log_lines)
        assert r.set("k", "2") is True
        c.node("n3").resume()
        wait_for(lambda: eligible_on_primary(c) == ["n2", "n3"], what="n3 granted again")


def test_a_restarted_replica_is_ineligible_until_granted_again(sync3):
    c = sync3
    c.node("n1").pause()                 # the primary cannot grant anything meanwhile
    c.node("n2").kill()
    c.node("n2").restart()
    assert replication(c, "n2")["replica_eligible"] == 0
    c.node("n1").resume()
    wait_for(lambda: replication(c, "n2")["replica_eligible"] == 1, what="the new grant")


def test_the_primary_refuses_no_one_from_an_ineligible_replica_unless_forced(sync3):
    c = sync3
    c.node("n1").pause()
    c.node("n3").kill()
    c.node("n3").restart()
    r3 = c.client("n3")
    with pytest.raises(redis.ResponseError, match="not eligible for promotion"):
        r3.execute_command("REPLICAOF", "NO", "ONE")
    assert replication(c, "n3")["role"] == "slave"
    c.node("n1").resume()


def test_failover_promotes_only_an_eligible_replica(sync3):
    """n3 restarts while the primary is frozen, so it cannot be granted again; the
    primary then dies: the monitors promote n2 (eligible), never n3 -- even though n3
    is in the agreed set and reachable."""
    c = sync3
    r = c.client()
    for i in range(20):
        r.set(f"k{i}", i)
    c.node("n1").pause()
    c.node("n3").kill()
    c.node("n3").restart()
    c.node("n1").kill()
    new = c.primary(timeout=15)
    assert new.name == "n2"
    assert all(c.client("n2").get(f"k{i}") == str(i) for i in range(20))
    wait_for(lambda: c.client("n2").set("after", "1"), what="n3 granted by n2, writes again")


def test_full_shard_outage_waits_for_the_old_primary_and_keeps_every_write():
    """Every node loses power. The replicas come back first: restarts revoked their
    eligibility, so no monitor can promote either of them and the shard stays without
    a primary. The old primary comes back and leads, with every acknowledged write."""
    with wb.Cluster(mode="sync", nodes=3, appendonly=True, down_after_ms=300) as c:
        r = c.client()
        acknowledged = [f"k{i}" for i in range(50) if r.set(f"k{i}", i)]
        for name in ("n2", "n3", "n1"):
            c.node(name).kill(power_loss=True)
        c.node("n2").restart()
        c.node("n3").restart()
        wait_for(lambda: any("no eligible replica can replace it" in line
                             for name in ("n2", "n3") for line in c.node(name).log_lines),
                 what="a monitor to give up on promoting an ineligible replica")
        assert [n.role for n in c.nodes[1:]] == ["replica", "replica"]
        c.node("n1").restart()
        assert c.primary(timeout=10).name == "n1"
        r = c.client()
        assert all(r.get(k) is not None for k in acknowledged)
        wait_for(lambda: eligible_on_primary(c) == ["n2", "n3"], what="grants after the outage")


def test_a_sync_cluster_needs_a_replica():
    with pytest.raises(ValueError, match="at least one replica"):
        wb.Cluster(mode="sync", nodes=1)


def test_an_in_memory_primary_that_restarts_empty_does_not_lead_again(sync3):
    """Reproduction: without an AOF a restarted primary has nothing, yet its saved role
    and the monitors' configuration still named it primary; it came back leading an
    empty dataset, the replicas resynced from it and every acknowledged write was gone
    (random shootout seeds 4, 5 and 7). Now it rejoins as a replica, the monitors see
    that the configured primary is not one and promote an eligible replica."""
    c = sync3
    r = c.client()
    acknowledged = [f"k{i}" for i in range(30) if r.set(f"k{i}", i)]
    c.node("n1").kill()
    c.node("n1").restart()
    assert replication(c, "n1")["role"] == "slave"
    new = wait_for(lambda: next((n for n in c.nodes if n.role == "primary"), None),
                   what="a failover to an eligible replica")
    assert new.name in ("n2", "n3")
    assert all(c.client(new).get(k) is not None for k in acknowledged)
    wait_for(lambda: c.client("n1").get("k0") == "0", what="n1 to copy the new primary")
