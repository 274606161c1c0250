"""Fault schedules are data: presets and seeded generation are deterministic."""

from __future__ import annotations

import pytest

from workbench.faults.schedule import Fault, generate, preset


def test_the_same_seed_gives_the_same_schedule():
    assert generate(7, 5) == generate(7, 5)
    assert generate(7, 5) != generate(8, 5)
    assert generate(7, 5).seed == 7


def test_generated_faults_are_undone_before_the_next_begins():
    for seed in range(50):
        schedule = generate(seed, 3, duration=10, faults=4)
        times = [f.at for f in schedule.faults]
        assert times == sorted(times) and times[-1] < 10
        assert len(schedule.faults) == 8            # each fault and its undo


def test_presets_and_errors():
    assert [f.action for f in preset("split-brain", 5).faults] == ["partition", "heal"]
    assert preset("split-brain", 5).faults[0].groups[0] == ("primary", "replica")
    assert preset("split-brain", 3).faults[0].groups[0] == ("primary",)
    assert "power-kill" in preset("power-loss", 3).describe()
    with pytest.raises(ValueError, match="presets: split-brain"):
        preset("meteor", 3)
    with pytest.raises(ValueError, match="unknown fault 'explode'"):
        Fault(1.0, "explode")
