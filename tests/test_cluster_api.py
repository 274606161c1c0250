"""The public facade: construction errors, node handles, events."""

from __future__ import annotations

import threading
import time

import pytest
import redis

import workbench as wb
from workbench import events as ev
from conftest import wait_for


def test_unknown_mode_and_config_are_clear_value_errors():
    with pytest.raises(ValueError, match="unknown mode 'quorum'; accepted: 'async'"):
        wb.Cluster(mode="quorum")
    with pytest.raises(ValueError, match="unknown config 'apendfsync'; accepted: .*appendfsync"):
        wb.Cluster(apendfsync="always")
    with pytest.raises(ValueError, match="must be one of the following: always, everysec, no"):
        wb.Cluster(appendfsync="sometimes")
    with pytest.raises(ValueError, match="nodes must be an integer"):
        wb.Cluster(nodes=0)


def test_aof_with_replicas_is_refused_and_points_to_the_modes_that_keep_the_promise():
    """Reproduction: ``wb.Cluster(mode="aof", nodes=3)``, partition the primary, write 30
    keys, heal: 30 of 40 acknowledged writes were gone (async replication and a failover
    under the gate), while the notebooks said `aof` never loses an acknowledged write.
    The mode is a single node's promise; with replicas it is refused, with advice."""
    with pytest.raises(ValueError) as refused:
        wb.Cluster(mode="aof", nodes=3)
    message = str(refused.value)
    assert "single node" in message and "'sync'" in message and "'raft'" in message
    assert "appendfsync='always'" in message and "mode='async'" in message
    with wb.Cluster(mode="aof") as c:                  # the mode's own size: one node
        assert [n.name for n in c.nodes] == ["n1"]
        assert c.client().set("k", "v") is True


def test_nodes_are_real_servers_on_loopback(cluster3):
    assert [n.name for n in cluster3.nodes] == ["n1", "n2", "n3"]
    assert len({n.port for n in cluster3.nodes}) == 3
    assert [n.role for n in cluster3.nodes] == ["primary", "replica", "replica"]
    assert all(n.alive for n in cluster3.nodes)
    assert cluster3.primary().name == "n1"
    for node in cluster3.nodes:
        assert cluster3.client(node).ping() is True


def test_kill_closes_sockets_and_restart_uses_the_same_port(node1):
    node = node1.nodes[0]
    port = node.port
    r = node1.client()
    r.set("k", "v")
    node.kill()
    assert node.role == "down" and not node.alive
    with pytest.raises(redis.ConnectionError):
        node1.client(node).ping()
    node.restart()
    assert node.port == port and node1.client(node).get("k") == "v"


def test_events_are_typed_and_delivered_on_their_own_thread(node1):
    seen, threads = [], set()

    def on_event(event):
        seen.append(event)
        threads.add(threading.current_thread().name)

    node1.events.subscribe(on_event)
    r = node1.client()
    r.set("a", "1")
    node1.nodes[0].kill()
    node1.nodes[0].restart()
    wait_for(lambda: any(isinstance(e, ev.NodeRestarted) for e in seen), what="restart event")
    executed = [e for e in seen if isinstance(e, ev.CommandExecuted)]
    assert executed and executed[0].command == "SET" and executed[0].keys == (b"a",)
    assert executed[0].offset > 0 and executed[0].node == "n1"
    assert any(isinstance(e, ev.NodeKilled) and not e.power_loss for e in seen)
    assert threading.current_thread().name not in threads


def test_a_slow_subscriber_loses_oldest_events_and_is_told(node1):
    release = threading.Event()
    seen = []

    def slow(event):
        release.wait(5)
        seen.append(event)

    node1.events.subscribe(slow, max_queue=10)
    r = node1.client()
    for i in range(100):
        r.set(f"k{i}", i)
    release.set()
    dropped = wait_for(lambda: [e for e in seen if isinstance(e, ev.EventsDropped)],
                       what="an EventsDropped notice")
    assert dropped[0].count > 0
    wait_for(lambda: any(isinstance(e, ev.CommandExecuted) and e.keys == (b"k99",) for e in seen),
             what="the newest event")


def test_snapshot_is_plain_data(cluster3):
    cluster3.client().set("x", "1")
    snap = cluster3.snapshot()
    assert snap["n1"]["role"] == "primary" and snap["n2"]["link"] in ("connected", "sync",
                                                                       "handshake")
    assert snap["_partition"] == ()
    cluster3.partition(["n1"], ["n2", "n3"])
    assert cluster3.snapshot()["_partition"] == (("n1",), ("n2", "n3"))
    cluster3.heal()
    started = time.monotonic()
    cluster3.close()
    assert time.monotonic() - started < 10


def test_pause_stops_processing_without_closing_sockets(node1):
    node = node1.nodes[0]
    r = node1.client(socket_timeout=0.5)
    r.set("k", "v")
    node.pause()
    with pytest.raises(redis.TimeoutError):
        r.get("k")                     # the connection stays open; nothing answers
    node.resume()
    assert node1.client().get("k") == "v"
