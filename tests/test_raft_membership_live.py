"""Raft membership and snapshots on a live shard, through ``Cluster.add_node`` /
``remove_node`` over real sockets: a new node joins as a learner and is promoted once
caught up; a follower, or the leader itself (after handing leadership over), leaves
while writes go on; a follower that fell behind the leader's compaction catches up by
an InstallSnapshot. Every write the test sends is recorded (``test_raft_mode.Ops``)
and the checkers judge the history after the change.
"""

from __future__ import annotations

import threading

import pytest

import workbench as wb
from conftest import wait_for
from test_raft_mode import (Ops, agreed, assert_clean, caught_up, converged, events_of,
                            keyspace, raft_info)
from workbench import events as ev


def members(c, node) -> tuple[int, int]:
    info = raft_info(c, node)
    return info["raft_voters"], info["raft_learners"]


def test_an_added_node_is_a_learner_then_a_voter_and_holds_every_write():
    with wb.Cluster(mode="raft", nodes=3) as c:
        ops = Ops(c)
        changes, sub = events_of(c, ev.RaftMembershipChanged, ev.NodeAdded)
        leader = c.primary()
        for i in range(20):
            assert ops.write(leader, f"k{i}") == ("ok", None)
        n4 = c.add_node()
        assert n4.name == "n4" and c.names == ["n1", "n2", "n3", "n4"]
        wait_for(lambda: all(members(c, n) == (4, 0) for n in c.nodes),
                 what="every node to count four voters")
        assert raft_info(c, n4)["raft_role"] == "follower"
        assert ops.write(c.primary(), "after") == ("ok", None)
        wait_for(lambda: converged(c), what="n4 to apply everything")
        assert keyspace(c, n4) == ops.acknowledged
        # every member applied the two steps, in order; the first one named n4 a learner
        steps = lambda: {n.name: [(e.action, e.learners, e.voters) for e in changes
                                  if isinstance(e, ev.RaftMembershipChanged) and e.node == n.name]
                         for n in c.nodes}
        wait_for(lambda: all(len(s) == 2 for s in steps().values()), what="both steps everywhere")
        expected = [("add_learner", ("n4",), ("n1", "n2", "n3")),
                    ("promote", (), ("n1", "n2", "n3", "n4"))]
        assert steps() == {n.name: expected for n in c.nodes}
        # the node started first, then the leader committed the two steps
        assert [type(e).__name__ for e in changes
                if isinstance(e, ev.NodeAdded) or e.node == leader.name] \
            == ["NodeAdded", "RaftMembershipChanged", "RaftMembershipChanged"]
        sub.close()
        assert_clean(ops.verdicts())


def test_a_removed_follower_leaves_and_the_two_left_still_commit():
    with wb.Cluster(mode="raft", nodes=3) as c:
        ops = Ops(c)
        removed, sub = events_of(c, ev.NodeRemoved, ev.RaftMembershipChanged)
        leader = c.primary()
        gone = next(n for n in c.nodes if n is not leader)
        assert ops.write(leader, "before") == ("ok", None)
        c.remove_node(gone.name)
        assert gone not in c.nodes and gone.name not in c.names and not gone.alive
        assert c.primary() is leader
        wait_for(lambda: all(members(c, n) == (2, 0) for n in c.nodes),
                 what="the two left to count two voters")
        assert raft_info(c, leader)["raft_voter_names"] == sorted(n.name for n in c.nodes)
        for i in range(10):                         # a quorum of two: both must have it
            assert ops.write(leader, f"k{i}") == ("ok", None)
        wait_for(lambda: converged(c), what="the other voter to apply the writes")
        with pytest.raises(ValueError, match="was removed"):
            gone.restart()
        wait_for(lambda: any(isinstance(e, ev.NodeRemoved) for e in removed),
                 what="NodeRemoved")
        assert [e.node for e in removed if isinstance(e, ev.NodeRemoved)] == [gone.name]
        assert [(e.action, e.member) for e in removed
                if isinstance(e, ev.RaftMembershipChanged) and e.node == leader.name] \
            == [("remove", gone.name)]
        sub.close()
        assert_clean(ops.verdicts())


def test_removing_the_leader_hands_leadership_over_first_and_writes_go_on():
    """A writer thread keeps writing to whoever leads while the leader is removed: the
    leader transfers leadership (a RaftRoleChanged to leader on another node comes
    before the removal commits), the writes move to the new leader, and no acknowledged
    write is lost."""
    with wb.Cluster(mode="raft", nodes=3) as c:
        ops = Ops(c)
        seen, sub = events_of(c, ev.RaftRoleChanged, ev.RaftMembershipChanged, ev.NodeRemoved)
        old = c.primary()
        term = raft_info(c, old)["raft_term"]
        stop = threading.Event()
        outcomes = []

        def writer():
            i = 0
            while not stop.is_set():
                leader = c.current_primary()
                if leader is None:
                    stop.wait(0.01)
                    continue
                outcomes.append(ops.write(leader, f"k{i % 7}", timeout=3)[0])
                i += 1
        thread = threading.Thread(target=writer)
        thread.start()
        try:
            wait_for(lambda: outcomes.count("ok") >= 10, what="writes before the removal")
            c.remove_node(old.name)
            acked = outcomes.count("ok")
            wait_for(lambda: outcomes.count("ok") >= acked + 10, what="writes after the removal")
        finally:
            stop.set()
            thread.join(10)
        assert old not in c.nodes and len(c.nodes) == 2
        new = c.primary()
        assert new is not old
        new_term, name = wait_for(lambda: agreed(c), what="the two left to agree")
        assert name == new.name and new_term > term
        wait_for(lambda: converged(c), what="the two left to converge")
        assert all(members(c, n) == (2, 0) for n in c.nodes)
        wait_for(lambda: any(isinstance(e, ev.NodeRemoved) for e in seen), what="NodeRemoved")
        order = [(type(e).__name__, e.node) for e in seen
                 if (isinstance(e, ev.RaftRoleChanged) and e.role == "leader" and e.node == new.name)
                 or (isinstance(e, ev.RaftMembershipChanged) and e.node == new.name)
                 or isinstance(e, ev.NodeRemoved)]
        assert order == [("RaftRoleChanged", new.name), ("RaftMembershipChanged", new.name),
                         ("NodeRemoved", old.name)]
        sub.close()
        assert_clean(ops.verdicts())


def test_a_follower_behind_the_leaders_snapshot_catches_up_by_installing_it():
    """raft-snapshot-entries 20: while a follower is down the leader writes 100 entries
    and compacts past the follower's last index, so there is no log to send it: at the
    restart it installs the leader's snapshot, then applies what follows it."""
    with wb.Cluster(mode="raft", nodes=3, raft_snapshot_entries=20) as c:
        ops = Ops(c)
        installed, sub = events_of(c, ev.RaftSnapshotInstalled)
        leader = c.primary()
        follower = next(n for n in c.nodes if n is not leader)
        for i in range(10):
            assert ops.write(leader, f"early{i}") == ("ok", None)
        wait_for(lambda: caught_up(c, follower), what="the follower to hold the early writes")
        behind = raft_info(c, follower)["raft_last_index"]
        follower.kill()
        for i in range(100):
            assert ops.write(leader, f"k{i}") == ("ok", None)
        info = raft_info(c, leader)
        assert info["raft_snapshots"] >= 1 and info["raft_first_index"] > behind + 1
        follower.restart()
        wait_for(lambda: caught_up(c, follower), what="the follower to catch up")
        assert raft_info(c, follower)["raft_snapshots_installed"] == 1
        wait_for(lambda: [e.node for e in installed] == [follower.name],
                 what="one RaftSnapshotInstalled")
        assert installed[0].index > behind and installed[0].bytes > 0
        assert ops.write(leader, "after") == ("ok", None)
        wait_for(lambda: converged(c), what="the follower to apply the last write")
        assert keyspace(c, follower) == ops.acknowledged
        sub.close()
        assert_clean(ops.verdicts())
