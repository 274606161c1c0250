"""End to end: real clients, a fault schedule, and the checkers' verdict."""

from __future__ import annotations

import pytest

import workbench as wb
from workbench.faults.nemesis import Nemesis
from workbench.faults.schedule import Schedule, Fault, preset
from workbench.history import checkers
from workbench.history.workloads import final_reads, run_clients


def run(cluster, workload, schedule, duration, seed=1):
    nemesis = Nemesis(cluster, schedule)
    recorder = run_clients(cluster, workload, duration=duration, clients=4, keys=3, seed=seed,
                           during=nemesis.step)
    nemesis.finish()
    final = final_reads(cluster, recorder, workload, recorder.keys)
    return recorder.history, final, nemesis


def test_async_split_brain_loses_acknowledged_adds():
    # the partition lasts 3 s: ample for a 300 ms down-after failover, even a split vote
    with wb.Cluster(mode="async", nodes=3, down_after_ms=300) as c:
        schedule = preset("split-brain", 3, duration=6.0)
        history, final, nemesis = run(c, "set", schedule, 6.0)
        verdict = checkers.lost_writes(history, final)
        assert verdict.valid is False and verdict.count > 0, verdict
        assert any("partition" in what for _, what in nemesis.log)


def test_aof_power_loss_loses_no_acknowledged_write():
    with wb.Cluster(mode="aof", nodes=1) as c:
        schedule = preset("power-loss", 1, duration=3.0)
        history, final, _ = run(c, "set", schedule, 3.0)
        assert checkers.lost_writes(history, final).valid is True
        assert checkers.dirty_reads(history, final).valid is True


def test_aof_with_appendfsync_no_is_caught():
    """A configuration broken on purpose: the checker must find what it loses."""
    with wb.Cluster(mode="aof", nodes=1, appendfsync="no") as c:
        schedule = Schedule("power-cut", (Fault(1.5, "power-kill", ("primary",)),
                                          Fault(1.8, "restart", ("killed",))), duration=2.5)
        history, final, _ = run(c, "set", schedule, 2.5)
        verdict = checkers.lost_writes(history, final)
        assert verdict.valid is False and verdict.count > 0


def test_the_checker_finds_a_lost_write_injected_into_a_real_history():
    with wb.Cluster(mode="aof", nodes=1) as c:
        history, final, _ = run(c, "set", Schedule("none", ()), 1.0)
        assert checkers.lost_writes(history, final).valid is True
        key = next(k for k, v in final.items() if v)
        victim = sorted(final[key])[0]
        damaged = dict(final, **{key: frozenset(final[key] - {victim})})
        verdict = checkers.lost_writes(history, damaged)
        assert verdict.valid is False and verdict.count == 1


def test_writes_confirmed_by_wait_are_lost_when_the_acking_replica_is_in_the_minority():
    """WAIT 1 said a replica had the write; a failover promoted a node that did not."""
    with wb.Cluster(mode="async", nodes=5, down_after_ms=300) as c:
        schedule = preset("wait-then-failover", 5, duration=6.0)
        nemesis = Nemesis(c, schedule)
        recorder = run_clients(c, "set", duration=6.0, clients=4, keys=3, seed=3,
                               during=nemesis.step, wait_replicas=1)
        nemesis.finish()
        final = final_reads(c, recorder, "set", recorder.keys)
        verdict = checkers.lost_writes(recorder.history, final)
        assert verdict.valid is False and verdict.count > 0
    with pytest.raises(ValueError, match="needs at least 5 nodes"):
        preset("wait-then-failover", 3)
