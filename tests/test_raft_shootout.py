"""The shootout's verdicts on the ``raft`` mode: no acknowledged write lost, no dirty,
aborted or stale read, and a linearizable register under every preset and under random
schedules, in both read modes -- and the two teaching levers, each caught by the
checkers when it is on and silent when it is off.

``WORKBENCH_RAFT_SEEDS`` sizes the random campaign (default 6 seeds of 3 s each)."""

from __future__ import annotations

import os

import pytest

from workbench.faults.schedule import PRESETS
from workbench.history import shootout

SEEDS = int(os.environ.get("WORKBENCH_RAFT_SEEDS", "6"))
ANOMALIES = ("lost_acknowledged_writes", "dirty_reads", "aborted_reads", "stale_reads")


def anomalies(result) -> dict:
    assert result.get("error") is None, result.get("error")
    assert result["ok"] > 0
    return {name: result[name] for name in ANOMALIES}


CLEAN = dict.fromkeys(ANOMALIES, 0)


@pytest.mark.parametrize("schedule", sorted(PRESETS))
def test_raft_keeps_every_acknowledged_write_under_every_preset(schedule):
    nodes = 5 if schedule == "wait-then-failover" else 3
    result, = shootout.run(["raft"], schedule, seed=7, duration=4, nodes=nodes,
                           workload="register", progress=False)
    assert anomalies(result) == CLEAN
    assert result["linearizable"] is True


@pytest.mark.parametrize("seed", range(SEEDS))
def test_raft_reads_stay_linearizable_under_random_faults(seed):
    read_mode = "readindex" if seed % 2 else "leader"
    result, = shootout.run(["raft"], "random", seed=seed, duration=3, workload="register",
                           progress=False, configs={"raft_read_mode": read_mode})
    assert anomalies(result) == CLEAN
    assert result["linearizable"] is True


@pytest.mark.parametrize("lever", ["yes", "no"])
def test_reads_without_proof_of_leadership_are_stale(lever):
    """Split brain with one reader bound to each node. With the lever, the leader cut off
    in the minority goes on answering reads from its own state while the majority
    elects a new leader and commits newer values: stale reads. Without it, the old
    leader's lease runs out; its reads then wait for a quorum round that never comes
    (the readers give up: indefinite), and nothing stale is served.

    Twelve keys: the minority leader's held writes leave a few keys dirty there, and
    reads of dirty keys wait whatever the lever says."""
    result, = shootout.run(["raft"], "split-brain", seed=7, duration=6, workload="register",
                           progress=False, node_readers=1, keys=12,
                           configs={"raft_bug_read_before_noop": lever})
    found = anomalies(result)
    assert (found["stale_reads"] > 0) is (lever == "yes")
    assert (result["linearizable"] is False) is (lever == "yes")
    assert found["lost_acknowledged_writes"] == 0


@pytest.mark.parametrize("lever", ["yes", "no"])
def test_a_definite_timeout_error_hides_writes_that_commit(lever):
    """The leader is isolated for about a second, again and again, under a long election
    timeout, so it keeps its leadership; its writes time out after 300 ms and commit
    when the link heals. With the lever the timeout is a definite error, so the writes
    count as failed -- and reading their values is an aborted read. Without it the
    error says the outcome is unknown, and the checker finds nothing."""
    result, = shootout.run(["raft"], "flapping-primary", seed=7, duration=6,
                           workload="register", progress=False,
                           configs={"raft_bug_definite_timeout": lever,
                                    "election_timeout_ms": 3000,
                                    "durability_timeout_ms": 300})
    found = anomalies(result)
    assert (found["aborted_reads"] > 0) is (lever == "yes")
    assert found["lost_acknowledged_writes"] == 0
    if lever == "no":
        assert found == CLEAN and result["info"] > 0
