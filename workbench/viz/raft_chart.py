"""The Raft panel's live chart: roles, terms and commit indexes of every node over wall
time, streamed from the samples :class:`~workbench.viz.raft_live.RaftPanel` takes.

It draws what the simulator's :mod:`~workbench.viz.raft_timeline` draws, in the same
colours, but grows as the shard runs: a bounded number of samples, role segments, marks
and partition windows, the oldest rolled over.
"""

from __future__ import annotations

import math

from bokeh.layouts import column
from bokeh.models import (BasicTicker, ColumnDataSource, CustomJSTickFormatter, HoverTool,
                          LabelSet)
from bokeh.plotting import figure

from .bokehjs import ChartWidget
from .charts import PARTITION_FILL, node_colour
from .raft_timeline import DOWN, ROLE_COLOURS

LEARNER = "learner"
# The simulator's colours, and one for a learner: it copies the log but has no vote.
ROLE_FILL = {**ROLE_COLOURS, LEARNER: "#dadaeb"}
HISTORY = 900                 # samples kept per node in the chart (3 minutes at 5 Hz)
MAX_SEGMENTS = 400            # role segments kept in the lanes (a new one per role change)
MAX_MARKS = 80                # marked events kept on the chart
MAX_WINDOWS = 40              # partition windows kept


class RaftChart:
    """Roles, terms and commit indexes of every node over wall time, streamed.

    Three figures share the time axis, as in the simulator's timeline: a lane per node
    coloured by role, then each node's term and commit index as step lines. Nodes are
    rows of one data source each (not columns), so a node added later just appears.
    Every change is a stream or a patch of the newest rows; the oldest roll over.
    """

    def __init__(self, started: float, *, history: int = HISTORY, width: int = 820):
        self.started = started
        self.history = history
        self.lanes = ColumnDataSource({"y": [], "node": [], "start": [], "end": [],
                                       "role": [], "colour": []})
        self.steps = ColumnDataSource({"node": [], "t0": [], "t1": [], "term0": [],
                                       "term1": [], "commit0": [], "commit1": [],
                                       "colour": [], "width": []})
        self.partitions = ColumnDataSource({"start": [], "end": []})
        self.marks = ColumnDataSource({"t": [], "text": [], "colour": []})
        self._open: dict[str, int] = {}          # node -> the row of its open lane segment
        self._partition_row: int | None = None
        self._last: dict[str, tuple] = {}        # node -> (t, term, commit) of its last point

        roles = figure(width=width, height=200, title="role of each node",
                       tools="xpan,xwheel_zoom,reset,save", toolbar_location="right",
                       min_border_left=60)
        self._shade(roles)
        bars = roles.hbar(y="y", left="start", right="end", height=0.7, color="colour",
                          line_color=None, legend_field="role", source=self.lanes)
        roles.add_tools(HoverTool(renderers=[bars], tooltips=[
            ("node", "@node"), ("role", "@role"), ("from", "@start{0.0} s"),
            ("to", "@end{0.0} s")]))
        # Lanes are numbered by the node's number: a node added later needs no new axis.
        roles.yaxis.ticker = BasicTicker(min_interval=1, num_minor_ticks=0)
        roles.yaxis.formatter = CustomJSTickFormatter(code="return 'n' + tick")
        roles.y_range.flipped = True
        roles.y_range.range_padding = 0.3
        roles.ygrid.grid_line_color = None
        roles.legend.orientation = "horizontal"
        roles.legend.label_text_font_size = "11px"
        roles.legend.padding = roles.legend.margin = 2
        roles.add_layout(roles.legend[0], "above")
        roles.vspan(x="t", source=self.marks, line_color="colour", line_width=1.5,
                    line_alpha=0.8)
        roles.add_layout(LabelSet(x="t", y=2, y_units="screen", text="text", source=self.marks,
                                  x_offset=2, text_font_size="10px", text_color="colour",
                                  angle=math.pi / 2))
        terms = self._steps(roles, "term", "term", width)
        commits = self._steps(roles, "commit", "commit index", width)
        commits.xaxis.axis_label = "seconds since the panel started"
        self.figure = column(roles, terms, commits)
        self.widget = ChartWidget(self.figure)
        self.widget.add_class("wb-raft-chart")

    def _steps(self, roles, field: str, label: str, width: int):
        fig = figure(x_range=roles.x_range, width=width, height=160, title=f"{label} of each node",
                     y_axis_label=label, tools="xpan,xwheel_zoom,reset,save",
                     toolbar_location="right", min_border_left=60)
        self._shade(fig)
        fig.segment(x0="t0", y0=f"{field}0", x1="t1", y1=f"{field}0", source=self.steps,
                    color="colour", line_width="width", legend_field="node")
        fig.segment(x0="t1", y0=f"{field}0", x1="t1", y1=f"{field}1", source=self.steps,
                    color="colour", line_width="width")
        fig.vspan(x="t", source=self.marks, line_color="colour", line_width=1.5, line_alpha=0.8)
        fig.yaxis.ticker = BasicTicker(min_interval=1)       # terms and indexes are whole
        fig.y_range.start = 0
        fig.legend.location = "top_left"
        fig.legend.orientation = "horizontal"
        return fig

    def _shade(self, fig) -> None:
        fig.vstrip(x0="start", x1="end", source=self.partitions, fill_color=PARTITION_FILL,
                   fill_alpha=0.25, line_alpha=0)

    def seconds(self, wall_time: float) -> float:
        return round(wall_time - self.started, 3)

    # -- one sample: lanes and steps -------------------------------------------------------
    def add_sample(self, at: float, rows: dict) -> None:
        """Extend every node's lane to ``at`` (a new segment where its role changed) and
        add a step to its term and commit lines (none while it is down: a gap)."""
        # First stretch or close the open segments, then open new ones: a stream that
        # rolls old rows over shifts the row numbers a patch refers to.
        patches, opening = [], []
        for name in [n for n in self._open if n not in rows]:   # removed: its lane ends
            patches.append((self._open.pop(name), at))
        for name, row in rows.items():
            open_row = self._open.get(name)
            if open_row is not None:
                patches.append((open_row, at))
                if self.lanes.data["role"][open_row] == row["role"]:
                    continue
            opening.append(name)
        if patches:
            self.lanes.patch({"end": patches})
        if opening:
            self._open_segments(at, {name: rows[name]["role"] for name in opening})
        step = {column: [] for column in self.steps.data}
        names = list(rows)
        for index, name in enumerate(names):
            row = rows[name]
            if row["term"] is None:
                self._last.pop(name, None)
                continue
            t0, term0, commit0 = self._last.get(name, (at, row["term"], row["commit"]))
            self._last[name] = (at, row["term"], row["commit"])
            for key, value in (("node", name), ("t0", t0), ("t1", at), ("term0", term0),
                               ("term1", row["term"]), ("commit0", commit0),
                               ("commit1", row["commit"]), ("colour", node_colour(name)),
                               # thicker lines underneath: nodes that agree show as stripes
                               ("width", 2 + 2 * (len(names) - 1 - index))):
                step[key].append(value)
        if step["node"]:
            self.steps.stream(step, rollover=self.history * max(1, len(names)))
        if self._partition_row is not None:
            self.partitions.patch({"end": [(self._partition_row, at)]})

    def _open_segments(self, at: float, roles: dict[str, str]) -> None:
        before = len(self.lanes.data["start"])
        names = list(roles)
        self.lanes.stream({"y": [_lane(n) for n in names], "node": names,
                           "start": [at] * len(names), "end": [at] * len(names),
                           "role": [roles[n] for n in names],
                           "colour": [ROLE_FILL.get(roles[n], ROLE_FILL[DOWN]) for n in names]},
                          rollover=MAX_SEGMENTS)
        after = len(self.lanes.data["start"])
        self._open = _shifted(self._open, before + len(names) - after)
        for offset, name in enumerate(names):
            row = after - len(names) + offset
            if row >= 0:
                self._open[name] = row

    # -- events: partitions and marks ------------------------------------------------------
    def partition_begins(self, at: float) -> None:
        self.partition_ends(at)
        before = len(self.partitions.data["start"])
        self.partitions.stream({"start": [at], "end": [at]}, rollover=MAX_WINDOWS)
        dropped = before + 1 - len(self.partitions.data["start"])
        self._partition_row = before - dropped

    def partition_ends(self, at: float) -> None:
        if self._partition_row is not None:
            self.partitions.patch({"end": [(self._partition_row, at)]})
            self._partition_row = None

    def mark(self, at: float, text: str, colour: str) -> None:
        self.marks.stream({"t": [at], "text": [text], "colour": [colour]}, rollover=MAX_MARKS)


def _lane(name: str) -> int:
    digits = "".join(ch for ch in name if ch.isdigit())
    return int(digits) if digits else 0


def _shifted(rows: dict[str, int], dropped: int) -> dict[str, int]:
    """Row numbers after ``dropped`` rows rolled off the front (gone rows are forgotten)."""
    if dropped <= 0:
        return rows
    return {name: row - dropped for name, row in rows.items() if row >= dropped}
