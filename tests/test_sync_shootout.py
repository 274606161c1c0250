"""The shootout's verdicts on the ``sync`` mode: no acknowledged write lost and no dirty
read under every preset and under random schedules -- and the unsafe lever that shows
why revocations must be agreed.

``WORKBENCH_SYNC_SEEDS`` sizes the random campaign (default 20 seeds of 2 s each)."""

from __future__ import annotations

import os

import pytest

from workbench.faults.schedule import PRESETS
from workbench.history import shootout

SEEDS = int(os.environ.get("WORKBENCH_SYNC_SEEDS", "20"))


def verdict(result) -> tuple:
    assert result.get("error") is None, result.get("error")
    return result["lost_acknowledged_writes"], result["dirty_reads"]


@pytest.mark.parametrize("schedule", sorted(PRESETS))
def test_sync_keeps_every_acknowledged_write_under_every_preset(schedule):
    nodes = 5 if schedule == "wait-then-failover" else 3
    result, = shootout.run(["sync"], schedule, seed=7, duration=3, nodes=nodes, progress=False)
    assert result["ok"] > 0
    assert verdict(result) == (0, 0)


@pytest.mark.parametrize("seed", range(SEEDS))
def test_sync_keeps_every_acknowledged_write_under_random_faults(seed):
    result, = shootout.run(["sync"], "random", seed=seed, duration=2, progress=False)
    assert result["ok"] > 0
    assert verdict(result) == (0, 0)


@pytest.mark.parametrize("unilateral, loses", [("yes", True), ("no", False)])
def test_a_unilateral_revocation_loses_writes_in_a_split_brain(unilateral, loses):
    """Five nodes, the primary and one replica cut off. With ``sync-unilateral-revoke``
    the primary stops waiting for the majority side on its own, commits with its one
    replica, the majority promotes another eligible replica, and the heal erases what
    the minority acknowledged. Agreed revocations make the minority's writes time out
    instead (indefinite), and nothing acknowledged is lost.

    A short write timeout makes the minority primary drop the majority side before its
    clients give up on it and move to the majority's new primary (with the default 1 s
    they sometimes move first, and then there is nothing left to lose)."""
    result, = shootout.run(["sync"], "split-brain", seed=7, duration=5, nodes=5,
                           progress=False, configs={"sync_unilateral_revoke": unilateral,
                                                    "durability_timeout_ms": 300})
    lost, dirty = verdict(result)
    assert (lost > 0) is loses
    assert (dirty > 0) is loses
