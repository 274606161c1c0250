"""The Raft timeline: samples of a simulated run, and the Bokeh picture drawn from them."""

from __future__ import annotations

import math

import pytest
from bokeh.models import HBar, LabelSet, Step, VStrip

from workbench.raft.sim import Simulation
from workbench.viz.raft_timeline import DOWN, RaftTimeline, run_sampled


def partitioned_run(seed: int = 3):
    """Elect, cut the leader off for 2 s (marked), heal, crash a follower: sim, timeline,
    the old leader and the marked window."""
    sim = Simulation(3, seed=seed)
    timeline = RaftTimeline(sim)
    assert run_sampled(sim, timeline, 5000, until=lambda: sim.leader() is not None)
    leader = sim.leader()
    start = sim.now_ms
    sim.partition([leader], [n for n in sim.nodes if n != leader])
    run_sampled(sim, timeline, 2000)
    sim.heal()
    window = (start, sim.now_ms)
    timeline.mark(*window, f"{leader} cut off")
    run_sampled(sim, timeline, 500)
    sim.crash(next(n for n in sorted(sim.nodes) if n != sim.leader()))
    run_sampled(sim, timeline, 200)
    return sim, timeline, leader, window


def test_samples_record_each_node_role_term_and_commit_index():
    sim, timeline, old_leader, (start, end) = partitioned_run()

    assert timeline.nodes == ["n1", "n2", "n3"]
    roles = {sample.role for sample in timeline.samples}
    assert {"follower", "leader", DOWN} <= roles
    times = [sample.t_ms for sample in timeline.samples]
    assert times == sorted(times) and times[-1] == sim.now_ms
    # CheckQuorum: the cut-off leader stepped down inside the window; someone else leads.
    assert any(s.role != "leader" for s in timeline.of(old_leader) if start < s.t_ms < end)
    assert sim.leader() != old_leader
    # A down node has a role but no term or commit index.
    down = [s for s in timeline.samples if s.role == DOWN]
    assert down and all(s.term is None and s.commit_index is None and not s.alive for s in down)
    # Segments cover each node's samples without gaps.
    for node in timeline.nodes:
        segments = timeline.segments(node)
        assert segments[0][0] == 0 and segments[-1][1] == sim.now_ms
        assert all(a[1] == b[0] and a[2] != b[2] for a, b in zip(segments, segments[1:]))


def test_figure_draws_lanes_lines_and_the_marked_window():
    _, timeline, old_leader, (start, end) = partitioned_run()

    layout = timeline.figure(title="test")
    roles, terms, commits = layout.children
    [bars] = [r for r in roles.renderers if isinstance(r.glyph, HBar)]
    lanes = bars.data_source.data
    assert "leader" in lanes["role"] and DOWN in lanes["role"]
    for fig in (roles, terms, commits):
        [strip] = [r for r in fig.renderers if isinstance(r.glyph, VStrip)]
        assert strip.data_source.data["start"] == [start]
        assert strip.data_source.data["end"] == [end]
    [labels] = [a for a in roles.center if isinstance(a, LabelSet)]
    assert labels.source.data["label"] == [f"{old_leader} cut off"]
    # One step line per node; the crashed node's line has a gap (NaN), not a zero.
    assert len([r for r in terms.renderers if isinstance(r.glyph, Step)]) == 3
    ys = [y for r in commits.renderers if isinstance(r.glyph, Step)
          for y in r.data_source.data["y"]]
    assert any(math.isnan(y) for y in ys)


def test_the_same_seed_gives_the_same_samples():
    assert partitioned_run(5)[1].samples == partitioned_run(5)[1].samples


def test_nothing_recorded_is_an_error():
    with pytest.raises(ValueError, match="nothing recorded"):
        RaftTimeline(Simulation(3, seed=0)).figure()
