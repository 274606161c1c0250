"""Cluster membership in the modes with replicas: ``add_node`` starts a replica of the
primary that every monitor and the network know (in ``sync``: ineligible, and not voting,
until its primary grants it), ``remove_node`` has the primary stop counting a replica
(in ``sync``: an agreed revocation) before it stops and is forgotten."""

from __future__ import annotations

import types

import pytest

import workbench as wb
from conftest import wait_for
from workbench import events as ev
from workbench.failover.monitor import Monitor


def membership(c) -> dict:
    """Each live monitor's members and quorum, read on the loop thread."""
    return c.runtime.call(lambda: {n.name: (sorted(n.monitor.names), n.monitor.quorum)
                                   for n in c.nodes if n.monitor is not None})


def eligible_on_primary(c) -> list[str]:
    primary = c.primary()
    return c.runtime.call(lambda: primary.server.eligibility.eligible)


def recorder(c, *kinds):
    seen = []
    sub = c.events.subscribe(lambda e: seen.append(e) if isinstance(e, kinds) else None)
    return seen, sub


def test_a_node_added_to_an_async_cluster_replicates_and_joins_monitors_and_network():
    with wb.Cluster(mode="async", nodes=3, down_after_ms=300) as c:
        seen, sub = recorder(c, ev.NodeAdded)
        r = c.client()
        r.set("before", "1")
        n4 = c.add_node()
        assert n4.name == "n4" and n4.role == "replica" and c.names == ["n1", "n2", "n3", "n4"]
        assert c.client(n4).get("before") == "1"               # the first sync brought it
        r.set("after", "2")
        assert r.wait(3, 2000) == 3
        assert c.client(n4).get("after") == "2"                # and the stream goes on
        members = ["n1", "n2", "n3", "n4"]
        assert membership(c) == {n: (members, 3) for n in members}
        c.partition(["n4"], ["n1", "n2", "n3"])                 # the network has its links
        assert c.snapshot()["_partition"] == (("n4",), ("n1", "n2", "n3"))
        c.heal()
        wait_for(lambda: [(e.node, e.primary, e.port) for e in seen]
                 == [("n4", "n1", n4.port)], what="the NodeAdded event")
        sub.close()


def test_an_added_async_node_holding_the_latest_writes_is_promoted_when_the_primary_dies():
    """The new replica alone stays with the primary through a partition, so when the
    primary dies it is the most up-to-date: the other three monitors (a majority of 4)
    promote it. Reproduction: the monitors ranked replicas by ``ROLE``'s offset, -1 on
    every replica whose link to the dead primary is down, so all tied and n2 won by name
    -- losing the writes that ``WAIT 1`` had confirmed."""
    with wb.Cluster(mode="async", nodes=3, down_after_ms=300) as c:
        n4 = c.add_node()
        r = c.client()
        c.partition(["n1", "n4"], ["n2", "n3"])
        for i in range(20):
            r.set(f"k{i}", i)
        assert r.wait(1, 2000) == 1                            # n4 has them, n2 and n3 not
        c.node("n1").kill()
        # n1's stream to n2 and n3 stays cut (a heal would deliver the bytes it queued)
        c.partition(["n1"], ["n2", "n3", "n4"])
        new = wait_for(lambda: c.current_primary(), timeout=10, what="a new primary")
        assert new is n4
        assert c.client(n4).get("k19") == "19"
        wait_for(lambda: c.client("n2").get("k19") == "19", what="n2 to follow n4")


def test_a_node_added_to_a_sync_cluster_becomes_eligible_and_the_quorum_grows():
    with wb.Cluster(mode="sync", nodes=3, down_after_ms=300) as c:
        seen, sub = recorder(c, ev.NodeAdded, ev.EligibilityGranted)
        r = c.client()
        r.set("before", "1")
        assert membership(c)["n1"] == (["n1", "n2", "n3"], 2)
        n4 = c.add_node()
        info = c.client().info("replication")
        assert info["eligible_replicas"] == 3
        assert c.client(n4).info("replication")["replica_eligible"] == 1
        assert eligible_on_primary(c) == ["n2", "n3", "n4"]
        members = ["n1", "n2", "n3", "n4"]
        assert membership(c) == {n: (members, 3) for n in members}
        assert c.client(n4).get("before") == "1"
        r.set("after", "2")                    # committed: acknowledged by n4 as well
        assert c.client(n4).get("after") == "2"
        wait_for(lambda: [type(e).__name__ for e in seen if "n4" in (e.node, getattr(
            e, "replica", None))] == ["NodeAdded", "EligibilityGranted"],
            what="NodeAdded, then n4's grant")
        sub.close()


def test_a_removed_sync_replica_is_revoked_the_agreed_way_first_and_writes_go_on():
    with wb.Cluster(mode="sync", nodes=3, down_after_ms=300) as c:
        seen, sub = recorder(c, ev.NodeRemoved, ev.EligibilityRevoked, ev.NodeKilled)
        r = c.client()
        r.set("before", "1")
        n3 = c.node("n3")
        c.remove_node("n3")
        assert c.names == ["n1", "n2"] and n3 not in c.nodes and not n3.alive
        assert c.client().info("replication")["eligible_replicas"] == 1
        assert eligible_on_primary(c) == ["n2"]
        assert r.set("after", "2") is True                    # n2's acknowledgement suffices
        assert c.client("n2").get("after") == "2"
        assert membership(c) == {"n1": (["n1", "n2"], 2), "n2": (["n1", "n2"], 2)}
        assert c.runtime.call(lambda: sorted(c.network.names)) == ["n1", "n2"]
        assert not any("n3" in link for link in c.network.links)
        with pytest.raises(KeyError, match="no node 'n3'"):
            c.partition(["n3"])
        with pytest.raises(ValueError, match="was removed"):
            n3.restart()
        wait_for(lambda: [(type(e).__name__, e.node) for e in seen]
                 == [("EligibilityRevoked", "n1"), ("NodeRemoved", "n3")],
                 what="the agreed revocation, then NodeRemoved (and no NodeKilled)")
        revoked, removed = seen
        assert revoked.replica == "n3" and revoked.reason == "removed" and revoked.agreed
        assert removed.was_eligible is True
        with pytest.raises(ValueError, match="needs a primary and at least one replica"):
            c.remove_node("n2")
        sub.close()


def test_an_added_sync_node_can_be_promoted_once_the_primary_is_killed():
    """Add n4, remove n2, lose n3 (its revocation is agreed by n1 and n4): the agreed set
    is {n4}. Then the primary dies; n3 comes back to lend its monitor's vote, and n4 --
    the only replica the monitors agreed on -- is promoted with every committed write."""
    with wb.Cluster(mode="sync", nodes=3, down_after_ms=300) as c:
        n4 = c.add_node()
        c.remove_node("n2")
        r = c.client()
        for i in range(20):
            assert r.set(f"k{i}", i) is True
        c.node("n3").kill()
        wait_for(lambda: eligible_on_primary(c) == ["n4"], what="n3's agreed revocation")
        assert r.set("last", "1") is True                     # committed on n4 alone
        c.node("n1").kill()
        c.node("n3").restart()
        new = wait_for(lambda: c.current_primary(), timeout=10, what="a new primary")
        assert new is n4
        assert c.client(n4).get("last") == "1" and c.client(n4).get("k19") == "19"
        wait_for(lambda: c.node("n3").role == "replica"
                 and c.client("n3").get("last") == "1", what="n3 to follow n4")


def test_removing_an_async_replica_keeps_writes_committing():
    with wb.Cluster(mode="async", nodes=3, down_after_ms=300) as c:
        seen, sub = recorder(c, ev.NodeRemoved)
        r = c.client()
        c.remove_node(c.node("n2"))                            # a Node is accepted too
        assert c.names == ["n1", "n3"]
        assert r.set("k", "v") is True and r.wait(1, 2000) == 1
        assert c.client("n3").get("k") == "v"
        assert membership(c) == {"n1": (["n1", "n3"], 2), "n3": (["n1", "n3"], 2)}
        assert c.add_node().name == "n4"                       # a removed name is not reused
        wait_for(lambda: [(e.node, e.was_eligible) for e in seen] == [("n2", False)],
                 what="the NodeRemoved event")
        sub.close()


def test_removing_the_primary_an_unknown_node_or_in_aof_mode_is_refused():
    with wb.Cluster(mode="sync", nodes=3, down_after_ms=300) as c:
        with pytest.raises(ValueError, match="cannot remove n1: it is the primary. Fail over first"):
            c.remove_node("n1")
        with pytest.raises(ValueError, match="no node 'n7' to remove"):
            c.remove_node("n7")
        assert c.names == ["n1", "n2", "n3"] and c.node("n1").role == "primary"
        assert c.client().info("replication")["eligible_replicas"] == 2
    with wb.Cluster(mode="aof") as c:
        with pytest.raises(ValueError, match="cannot add a node in mode 'aof': .*single node"):
            c.add_node()
        with pytest.raises(ValueError, match="cannot remove a node in mode 'aof'"):
            c.remove_node("n1")
        assert c.names == ["n1"]


def test_a_learner_counts_for_no_quorum_until_the_agreed_set_grants_it(tmp_path):
    """Monitor bookkeeping alone: a non-voting member joins the quorum with its grant."""
    node = types.SimpleNamespace(name="n1", data_dir=str(tmp_path), server=None,
                                 config={"masterauth": "", "durability-mode": "sync"},
                                 address_of=lambda n: ("127.0.0.1", 1), log=lambda line: None)
    m = Monitor(node, ["n1", "n2", "n3"], down_after_ms=300)
    m.add_member("n4", voter=False)
    assert m.names == ["n1", "n2", "n3", "n4"] and m.quorum == 2 and m.learners == {"n4"}
    m.adopt(1, "n1", ["n2", "n3"])
    assert m.quorum == 2                                   # not granted yet
    m.adopt(2, "n1", ["n2", "n3", "n4"])
    assert m.quorum == 3 and m.learners == set()
    m.remove_member("n2")
    assert m.names == ["n1", "n3", "n4"] and m.quorum == 2 and "n2" not in m.peers
    reloaded = Monitor(node, ["n1", "n3", "n4", "n5"], down_after_ms=300)
    assert reloaded.epoch == 2 and reloaded.quorum == 3
