"""The cluster's state at an instant, folded from constructed events (a pure layer: no
cluster, no clock)."""

from __future__ import annotations

import json

import pytest

from workbench import events as ev
from workbench.clusterstate import ClusterState, fault_windows, state_at, states_over
from workbench.viz.state_table import node_row, summary


def fold(*events, mode=None, nodes=()):
    state = ClusterState(mode, nodes)
    for event in events:
        state.apply(event)
    return state


def started(name, at, role="master"):
    return ev.NodeStarted(name, port=7000 + int(name[1:]), role=role, time=at)


def three_async(at=0.0):
    return [started("n1", at), started("n2", at, "slave"), started("n3", at, "slave"),
            ev.RoleChanged("n2", role="slave", primary="n1", time=at),
            ev.RoleChanged("n3", role="slave", primary="n1", time=at)]


def test_a_node_runs_crashes_and_comes_back():
    state = fold(*three_async(), ev.NodeKilled("n1", power_loss=True, lost_bytes=120, time=1.0))
    n1 = state.nodes["n1"]
    assert not n1.alive and n1.down == "lost power" and n1.lost_bytes == 120
    assert state.faults() == ["n1 lost power"]
    assert state.primary is None              # nobody serves writes until a failover

    state.apply(ev.NodeRestarted("n1", port=7001, loaded_commands=3, time=2.0))
    assert state.nodes["n1"].alive and state.faults() == []
    assert node_row(state.as_dict(), "n1")["status"] == "running"


def test_held_replies_wait_for_their_offset_and_leave_when_it_commits():
    state = fold(started("n1", 0.0), mode="aof")
    state.apply(ev.ReplyHeld("n1", client=1, offset=10, read=False, time=0.1))
    state.apply(ev.ReplyHeld("n1", client=2, offset=20, read=False, time=0.1))
    state.apply(ev.ReplyHeld("n1", client=3, offset=20, read=True, time=0.1))
    state.apply(ev.ReplyHeld("n1", client=4, offset=30, read=False, time=0.1), 5)  # a sample
    assert state.nodes["n1"].held_replies == 8

    state.apply(ev.RepliesReleased("n1", committed_offset=15, clients=1, time=0.2))
    assert state.nodes["n1"].held_replies == 7 and state.nodes["n1"].committed_offset == 15
    state.apply(ev.WriteTimedOut("n1", client=2, offset=20, committed_offset=15, time=0.3))
    assert state.nodes["n1"].held_replies == 6 and state.nodes["n1"].timed_out == 1
    # a client that went away without an event still leaves once its offset commits
    state.apply(ev.KeysCommitted("n1", committed_offset=30, uncommitted_keys=0, time=0.4))
    assert state.nodes["n1"].held_replies == 0

    state.apply(ev.ReplyHeld("n1", client=5, offset=40, read=False, time=0.5))
    state.apply(ev.NodeKilled("n1", power_loss=False, time=0.6))
    assert state.nodes["n1"].held_replies == 0     # a crash drops what it held


def test_uncommitted_keys_are_the_writes_past_the_committed_offset():
    state = fold(started("n1", 0.0), mode="aof")
    state.apply(ev.CommandExecuted("n1", command="SET", db=0, keys=(b"a",), offset=10, time=0.1))
    state.apply(ev.CommandExecuted("n1", command="SET", db=0, keys=(b"b",), offset=20, time=0.1))
    state.apply(ev.CommandExecuted("n1", command="GET", db=0, keys=(b"c",), offset=20, time=0.1))
    assert state.nodes["n1"].uncommitted_keys == 2        # the read of c dirtied nothing
    state.apply(ev.RepliesReleased("n1", committed_offset=10, clients=1, time=0.2))
    assert state.nodes["n1"].uncommitted_keys == 1
    assert state.nodes["n1"].commands == 3 and state.nodes["n1"].offset == 20
    json.dumps(state.as_dict())                           # bytes keys became text


def test_no_uncommitted_keys_without_a_commit_gate():
    state = fold(started("n1", 0.0), mode="async")
    state.apply(ev.CommandExecuted("n1", command="SET", db=0, keys=("a",), offset=10, time=0.1))
    assert state.nodes["n1"].uncommitted_keys == 0


def test_partitions_one_way_cuts_and_heals():
    state = fold(*three_async())
    state.apply(ev.Partitioned("network", groups=(("n1",), ("n2", "n3")), time=1.0))
    state.apply(ev.Partitioned("network", groups=(), one_way=(("n2", "n3"),), time=1.1))
    assert state.faults() == ["partition [n1] | [n2, n3]",
                              "one-way cut: what n2 sends to n3 is lost"]
    # a new partition sets every link: the one-way cut is gone with it
    state.apply(ev.Partitioned("network", groups=(("n1", "n2"), ("n3",)), time=1.2))
    assert state.faults() == ["partition [n1, n2] | [n3]"]
    state.apply(ev.Healed("network", time=1.3))
    assert state.faults() == []


def test_failing_disks_are_faults_until_they_work():
    state = fold(started("n1", 0.0), ev.DiskFault("n1", error="[Errno 5] EIO", time=1.0))
    assert state.faults() == ["n1's disk fails: [Errno 5] EIO"]
    assert "DISK FAILING" in node_row(state.as_dict(), "n1")["detail"]
    state.apply(ev.DiskFault("n1", error=None, time=2.0))
    assert state.faults() == []


def test_a_failover_names_the_primary_during_a_split_brain():
    state = fold(*three_async(),
                 ev.Partitioned("network", groups=(("n1",), ("n2", "n3")), time=1.0),
                 ev.FailoverBegun("n2", old_primary="n1", epoch=1, time=2.0))
    assert state.failover == {"old_primary": "n1", "epoch": 1, "by": "n2"}
    state.apply(ev.FailoverDone("n2", old_primary="n1", new_primary="n2", epoch=1, time=2.1))
    state.apply(ev.RoleChanged("n2", role="master", primary=None, time=2.1))
    # n1 still believes it is a primary; the monitors chose n2
    assert [n.name for n in state.nodes.values() if n.role == "primary"] == ["n1", "n2"]
    assert state.primary == "n2" and state.epoch == 1 and state.failover is None


def test_sync_eligibility_granted_and_revoked():
    state = fold(*three_async(), mode="sync")
    state.apply(ev.EligibilityGranted("n1", replica="n2", offset=10, epoch=1, time=1.0))
    state.apply(ev.EligibilityGranted("n1", replica="n3", offset=10, epoch=1, time=1.0))
    assert state.nodes["n1"].eligible_replicas == ["n2", "n3"]
    state.apply(ev.EligibilityRevoked("n1", replica="n3", reason="disconnected", agreed=True,
                                      time=2.0))
    assert state.nodes["n1"].eligible_replicas == ["n2"] and state.nodes["n3"].eligible is False
    state.apply(ev.EligibilityRevoked("n2", replica="n2", reason="restarted", agreed=False,
                                      time=3.0))       # the replica's own word: its grant is gone
    assert state.nodes["n2"].eligible is False and state.nodes["n1"].eligible_replicas == ["n2"]
    row = node_row(state.as_dict(), "n1")
    assert "waits for n2" in row["detail"]


def test_raft_roles_terms_and_the_newest_leader():
    names = ("n1", "n2", "n3")
    state = fold(*[started(n, 0.0, "slave") for n in names], mode="raft", nodes=names)
    state.apply(ev.RaftRoleChanged("n1", role="leader", term=2, leader="n1", time=1.0))
    for n in ("n2", "n3"):
        state.apply(ev.RaftRoleChanged(n, role="follower", term=2, leader="n1", time=1.0))
    state.apply(ev.RaftCommitted("n1", commit_index=7, entries=7, term=2, time=1.1))
    assert state.primary == "n1" and state.nodes["n1"].commit_index == 7
    state.apply(ev.RaftMembershipChanged("n1", action="promote", member="n3",
                                         voters=("n1", "n2", "n3"), learners=(), time=1.2))
    assert state.voters == ["n1", "n2", "n3"]

    # n1 is cut off and still believes it leads term 2; n2 wins term 3
    state.apply(ev.ReplyHeld("n1", client=1, offset=99, read=False, time=2.0))
    state.apply(ev.RaftRoleChanged("n2", role="leader", term=3, leader="n2", time=2.5))
    assert state.primary == "n2"
    state.apply(ev.RaftSteppedDown("n1", term=3, disconnected_clients=1, discarded_entries=1,
                                   rollback_ms=0.2, time=3.0))
    state.apply(ev.RaftRoleChanged("n1", role="follower", term=3, leader="n2", time=3.0))
    assert state.nodes["n1"].held_replies == 0 and state.nodes["n1"].step_downs == 1
    assert node_row(state.as_dict(), "n1")["role"] == "follower, term 3"
    assert node_row(state.as_dict(), "n1")["detail"] == "follows n2"
    assert summary(state.as_dict()).startswith("leader: n2")


def test_membership_added_and_removed():
    state = fold(*three_async(), ev.ReplicaAcked("n1", replica="n3", offset=5, time=0.5))
    state.apply(ev.NodeAdded("n4", port=7004, primary="n1", time=1.0))
    assert state.nodes["n4"].alive and state.nodes["n4"].primary == "n1"
    state.apply(ev.NodeRemoved("n3", was_eligible=False, time=2.0))
    assert not state.nodes["n3"].member and state.nodes["n3"].down == "removed"
    assert "n3" not in state.nodes["n1"].acked
    assert state.faults() == []                 # leaving on purpose is no fault


def test_closing_is_no_fault():
    state = fold(*three_async(), ev.ClusterClosed("cluster", nodes=("n1", "n2", "n3"), time=1.0))
    assert state.closed and state.faults() == []
    assert {node.down for node in state.nodes.values()} == {"closed"}
    assert summary(state.as_dict()).startswith("cluster closed")


def test_as_dict_is_json_and_from_dict_carries_on_folding_the_same_way():
    events = three_async() + [
        ev.CommandExecuted("n1", command="SET", db=0, keys=(b"k",), offset=50, time=0.5),
        ev.ReplyHeld("n1", client=1, offset=50, read=False, time=0.5),
        ev.ReplicaAcked("n1", replica="n2", offset=50, time=0.6),
        ev.Partitioned("network", groups=(("n1",), ("n2", "n3")), time=0.7),
        ev.DiskFault("n2", error="EIO", time=0.8),
    ]
    later = [ev.RepliesReleased("n1", committed_offset=50, clients=1, time=1.0),
             ev.Healed("network", time=1.1)]
    original = fold(*events, mode="sync")
    restored = ClusterState.from_dict(json.loads(json.dumps(original.as_dict())))
    assert restored.as_dict() == original.as_dict()
    assert restored.nodes["n1"].held_replies == 1 and restored.nodes["n2"].offset == 50
    for event in later:
        original.apply(event)
        restored.apply(event)
    assert restored.as_dict() == original.as_dict()
    assert restored.nodes["n1"].held_replies == 0 and restored.faults() == ["n2's disk fails: EIO"]


def test_from_dict_refuses_a_schema_it_does_not_know():
    data = ClusterState("aof").as_dict()
    with pytest.raises(ValueError, match="schema 99"):
        ClusterState.from_dict({**data, "schema": 99})


def test_state_at_an_instant_and_over_many():
    events = three_async(0.0) + [
        ev.NodeKilled("n3", power_loss=False, time=1.0),
        ev.Partitioned("network", groups=(("n1",), ("n2",)), time=2.0),
        ev.Healed("network", time=3.0),
        ev.NodeRestarted("n3", port=7003, loaded_commands=0, time=4.0),
    ]
    assert state_at(events, 0.5).faults() == []
    assert state_at(events, 1.5).faults() == ["n3 killed"]
    assert state_at(events, 2.5).faults() == ["partition [n1] | [n2]", "n3 killed"]
    assert state_at(events, 4.0).faults() == []
    times = [0.5, 1.5, 2.5, 3.5, 4.5]
    assert states_over(events, times) == [state_at(events, t).as_dict() for t in times]


def test_fault_windows_open_and_close_with_the_faults():
    events = three_async(0.0) + [
        ev.NodeKilled("n3", power_loss=True, time=1.0),
        ev.Partitioned("network", groups=(("n1",), ("n2",)), time=2.0),
        ev.Healed("network", time=3.0),
        ev.NodeRestarted("n3", port=7003, loaded_commands=0, time=4.0),
        ev.DiskFault("n1", error="EIO", time=5.0),
    ]
    assert fault_windows(events, end=6.0) == [
        (1.0, 4.0, "n3 lost power"),
        (2.0, 3.0, "partition [n1] | [n2]"),
        (5.0, 6.0, "n1's disk fails: EIO"),           # still failing at the end
    ]
