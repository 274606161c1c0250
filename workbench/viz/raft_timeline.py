"""A picture of a simulated Raft run: who led, in which term, and how far each node committed.

:class:`RaftTimeline` records plain samples of a :class:`~workbench.raft.sim.Simulation`
as the caller advances it (``sample()`` after each step, or :func:`run_sampled`), and
:meth:`RaftTimeline.figure` draws them: one lane per node with its role over virtual
time, each node's term, and each node's commit index, with the fault windows the caller
marked shaded in all three. The figure is a pure function of the samples and marks; the
recorder reads only a node's public ``alive`` and ``core.role/term/commit_index``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from bokeh.layouts import column
from bokeh.models import BasicTicker, ColumnDataSource, HoverTool, LabelSet
from bokeh.plotting import figure

from .charts import PARTITION_FILL, node_colour

DOWN = "down"
# Calm for followers, warm while an election runs, strong for the leader, grey when down.
ROLE_COLOURS = {
    "follower": "#c6dbef",
    "pre-candidate": "#fdd49e",
    "candidate": "#fc8d59",
    "leader": "#2ca02c",
    DOWN: "#bdbdbd",
}


@dataclass(frozen=True)
class Sample:
    """One node at one moment of virtual time. A down node has no term or commit index."""

    t_ms: int
    node: str
    role: str
    term: int | None
    commit_index: int | None
    alive: bool


@dataclass(frozen=True)
class Window:
    """A stretch of virtual time the caller wants shaded (a partition, a crash ...)."""

    start_ms: int
    end_ms: int
    label: str


class RaftTimeline:
    """Records a simulation's nodes as it runs; ``figure()`` draws what was recorded."""

    def __init__(self, sim):
        self.sim = sim
        self.samples: list[Sample] = []
        self.windows: list[Window] = []
        self._last: dict[str, tuple] = {}     # node -> its last sample, without the time

    def sample(self, *, if_changed: bool = False) -> bool:
        """Record every node now (nodes added since the last sample included). With
        ``if_changed``, only if some node's role, term, commit index or liveness changed
        since its last sample. Returns whether it recorded."""
        now = self.sim.now_ms
        current = []
        for node_id in sorted(self.sim.nodes):
            node = self.sim.nodes[node_id]
            if node.alive:
                core = node.core
                current.append(Sample(now, node_id, core.role.value, core.term,
                                      core.commit_index, True))
            else:
                current.append(Sample(now, node_id, DOWN, None, None, False))
        state = {s.node: (s.role, s.term, s.commit_index, s.alive) for s in current}
        if if_changed and state == self._last:
            return False
        self.samples.extend(current)
        self._last = state
        return True

    def mark(self, start_ms: int, end_ms: int, label: str) -> None:
        """Shade ``start_ms``..``end_ms`` (virtual time) with ``label`` in the figure."""
        self.windows.append(Window(start_ms, end_ms, label))

    @property
    def nodes(self) -> list[str]:
        return sorted({s.node for s in self.samples})

    def of(self, node: str) -> list[Sample]:
        """``node``'s samples, oldest first."""
        return [s for s in self.samples if s.node == node]

    def segments(self, node: str) -> list[tuple[int, int, str]]:
        """``node``'s roles as (start_ms, end_ms, role): a role holds until the next sample
        that shows another one (the last segment ends at the last sample)."""
        out: list[list] = []
        for s in self.of(node):
            if out and out[-1][2] == s.role:
                out[-1][1] = s.t_ms
            else:
                if out:
                    out[-1][1] = s.t_ms
                out.append([s.t_ms, s.t_ms, s.role])
        return [tuple(segment) for segment in out]

    # -- the picture ----------------------------------------------------------------------
    def figure(self, *, width: int = 820, title: str = "Raft, replayed"):
        """A Bokeh column of three figures sharing the time axis: roles, terms, commit index."""
        nodes = self.nodes
        if not nodes:
            raise ValueError("nothing recorded yet: call sample() while the run advances")
        lanes = {"node": [], "start": [], "end": [], "role": [], "colour": []}
        for node in nodes:
            for start, end, role in self.segments(node):
                for key, value in zip(lanes, (node, start, end, role, ROLE_COLOURS[role])):
                    lanes[key].append(value)
        windows = ColumnDataSource({"start": [w.start_ms for w in self.windows],
                                    "end": [w.end_ms for w in self.windows],
                                    "label": [w.label for w in self.windows]})

        roles = figure(y_range=list(reversed(nodes)), width=width, height=120 + 36 * len(nodes),
                       title=f"{title}: role of each node", tools="xpan,xwheel_zoom,reset,save",
                       toolbar_location="right", min_border_left=60)
        self._shade(roles, windows)
        bars = roles.hbar(y="node", left="start", right="end", height=0.7, color="colour",
                          line_color=None, legend_field="role", source=ColumnDataSource(lanes))
        roles.add_tools(HoverTool(renderers=[bars], tooltips=[
            ("node", "@node"), ("role", "@role"), ("from", "@start ms"), ("to", "@end ms")]))
        # Screen units: the label sits at the foot of its band whatever the lanes.
        roles.add_layout(LabelSet(x="start", y=2, y_units="screen", text="label", source=windows,
                                  x_offset=3, text_font_size="10px", text_color="#424242"))
        roles.y_range.range_padding = 0.25
        roles.legend.orientation = "horizontal"
        roles.legend.label_text_font_size = "11px"
        roles.legend.padding = roles.legend.margin = 2
        roles.add_layout(roles.legend[0], "above")
        roles.ygrid.grid_line_color = None

        terms = self._per_node(nodes, "term", "term", roles.x_range, width, windows)
        commits = self._per_node(nodes, "commit_index", "commit index", roles.x_range, width,
                                 windows)
        commits.xaxis.axis_label = "virtual time (ms)"
        return column(roles, terms, commits)

    def _per_node(self, nodes, field, label, x_range, width, windows):
        """One step line per node for ``field``; a gap where the node was down."""
        fig = figure(x_range=x_range, width=width, height=170, title=f"{label} of each node",
                     y_axis_label=label, tools="xpan,xwheel_zoom,reset,save",
                     toolbar_location="right", min_border_left=60)
        self._shade(fig, windows)
        for index, node in enumerate(nodes):
            samples = self.of(node)
            values = [math.nan if getattr(s, field) is None else getattr(s, field)
                      for s in samples]
            # Thicker lines underneath: nodes that agree stay visible as stripes.
            fig.step([s.t_ms for s in samples], values, mode="after", color=node_colour(node),
                     line_width=2 + 2 * (len(nodes) - 1 - index), legend_label=node)
        fig.yaxis.ticker = BasicTicker(min_interval=1)   # terms and indexes are whole
        fig.y_range.start = 0
        fig.legend.location = "top_left"
        fig.legend.orientation = "horizontal"
        return fig

    @staticmethod
    def _shade(fig, windows: ColumnDataSource) -> None:
        fig.vstrip(x0="start", x1="end", source=windows, fill_color=PARTITION_FILL,
                   fill_alpha=0.25, line_alpha=0)


def run_sampled(sim, timeline: RaftTimeline, ms: int, *, every_ms: int = 25,
                until: Callable[[], bool] | None = None) -> bool:
    """Advance ``sim`` by up to ``ms`` of virtual time, sampling every ``every_ms`` and
    after every event that changed a node (so no election is too short to show). Stops
    early, between two events, once ``until()`` holds; returns whether it held (True
    without ``until``). Virtual time only: the same calls give the same samples."""
    def changed_or_done() -> bool:
        timeline.sample(if_changed=True)
        return until is not None and until()

    end = sim.now_ms + ms
    if changed_or_done():
        return True
    while sim.now_ms < end:
        if sim.run_until(changed_or_done, timeout_ms=min(every_ms, end - sim.now_ms)):
            timeline.sample()
            return True
        timeline.sample()
    return until is None or until()


__all__ = ["ROLE_COLOURS", "RaftTimeline", "Sample", "Window", "run_sampled"]
