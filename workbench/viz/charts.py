"""Bokeh pictures: a live chart of replication offsets, and the verdict's bar chart.

The live chart is fed only by a :class:`~workbench.viz.pump.UiPump`: each drained
snapshot adds one point per node; events shade partition windows and mark failovers,
crashes and the cluster's shutdown. Everything here runs on the kernel thread.
"""

from __future__ import annotations

import math
import time

import ipywidgets as widgets
from bokeh.models import ColumnDataSource
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from .bokehjs import ChartWidget, display_with_bokehjs
from .pump import EVENTS, SNAPSHOT, UiPump

PARTITION_FILL = "#9e9e9e"
# Vertical line style per kind of mark. (BokehJS 3.9 draws every dash pattern of a
# vspan as dots, so failovers are solid rather than dashed.)
MARK_STYLES = {"failover": "solid", "crash": "dotted", "closed": "solid"}
CLOSED_COLOUR = "#616161"
LOST_COLOUR = "#d62728"
KEPT_COLOUR = "#2ca02c"
ACKED_COLOUR = "#7f7f7f"


def node_colour(name: str) -> str:
    """One colour per node, the same in every chart and card ("n1" is blue ...)."""
    digits = "".join(ch for ch in name if ch.isdigit())
    index = int(digits) - 1 if digits else sum(map(ord, name))
    return Category10_10[index % len(Category10_10)]


class OffsetChart:
    """Each node's replication offset over time; partitions shaded, failovers marked.

    Display it like a widget (``display(chart)``); ``chart.widget`` is the
    ``BokehModel``, ``chart.figure`` the Bokeh figure. Once the cluster is closed the
    chart keeps what it drew and takes nothing more.
    """

    def __init__(self, cluster, pump: UiPump | None = None, *, history: int = 1500,
                 width: int = 760, height: int = 280):
        self.names = [node.name for node in cluster.nodes]
        self.history = history               # points kept per line (5 minutes at 5 Hz)
        self.started = time.time()
        # Every live change is a stream into a data source -- the one path of a live
        # Bokeh document that stays reliable at several updates a second.
        self.source = ColumnDataSource({"t": [], **{name: [] for name in self.names}})
        self.partitions = ColumnDataSource({"start": [], "end": []})
        self.marks = {style: ColumnDataSource({"t": [], "text": [], "colour": []})
                      for style in MARK_STYLES}
        self.figure = figure(width=width, height=height, title="Replication offset per node",
                             x_axis_label="seconds since the chart started",
                             y_axis_label="replication offset (bytes)",
                             tools="pan,box_zoom,reset,save", toolbar_location="right")
        self.figure.vstrip(x0="start", x1="end", source=self.partitions,
                           fill_color=PARTITION_FILL, fill_alpha=0.18, line_alpha=0,
                           legend_label="partition")
        for index, name in enumerate(self.names):
            # Thicker lines underneath: nodes with equal offsets stay visible as stripes.
            width_px = 2 + 2 * (len(self.names) - 1 - index)
            self.figure.line("t", name, source=self.source, line_width=width_px,
                             color=node_colour(name), legend_label=name)
        for style, dash in MARK_STYLES.items():
            self.figure.vspan(x="t", source=self.marks[style], line_color="colour",
                              line_dash=dash, line_width=2)
            self.figure.text(x="t", y=0, text="text", source=self.marks[style],
                             text_color="colour", text_font_size="10px", angle=math.pi / 2,
                             x_offset=-3, text_baseline="bottom")
        self.figure.legend.location = "top_left"
        self.figure.legend.click_policy = "hide"
        self._partition_row: int | None = None   # the row of the window still open
        self.closed = False
        self.widget = ChartWidget(self.figure)
        self.widget.add_class("wb-offset-chart")
        self.pump = pump or UiPump.for_cluster(cluster)
        self.pump.on(SNAPSHOT, self._apply_snapshot)
        self.pump.on(EVENTS, self._apply_events)

    def _ipython_display_(self, **kwargs) -> None:
        display_with_bokehjs(self.widget)

    def _seconds(self, wall_time: float) -> float:
        return round(wall_time - self.started, 3)

    # -- appliers (kernel thread, called by the pump) -----------------------------------
    def _apply_snapshot(self, snapshot: dict) -> None:
        if self.closed:
            return
        now = self._seconds(snapshot["_time"])
        point = {"t": [now]}
        for name in self.names:
            offset = snapshot[name]["offset"]
            # NaN breaks the line: a killed node has no offset, not an offset of 0.
            point[name] = [math.nan if offset is None else offset]
        self.source.stream(point, rollover=self.history)
        if self._partition_row is not None:
            self.partitions.patch({"end": [(self._partition_row, now)]})

    def _apply_events(self, events: list) -> None:
        for event in events:
            if self.closed:
                return
            at = self._seconds(event.time)
            if event.kind == "Partitioned":
                self._end_partition(at)
                self._partition_row = len(self.partitions.data["start"])
                self.partitions.stream({"start": [at], "end": [at]})
            elif event.kind == "Healed":
                self._end_partition(at)
            elif event.kind == "FailoverDone":
                self._mark("failover", at, f"{event.new_primary} promoted",
                           node_colour(event.new_primary))
            elif event.kind == "NodeKilled":
                what = "lost power" if event.power_loss else "killed"
                self._mark("crash", at, f"{event.node} {what}", node_colour(event.node))
            elif event.kind == "ClusterClosed":
                self._end_partition(at)
                self._mark("closed", at, "cluster closed", CLOSED_COLOUR)
                self.closed = True

    def _end_partition(self, at: float) -> None:
        if self._partition_row is not None:
            self.partitions.patch({"end": [(self._partition_row, at)]})
            self._partition_row = None

    def _mark(self, style: str, at: float, text: str, colour: str) -> None:
        self.marks[style].stream({"t": [at], "text": [text], "colour": [colour]})


def lost_writes_figure(acknowledged: int, survived: int, *, title: str | None = None):
    """A static bar chart for a verdict: writes acknowledged, still there, and lost."""
    lost = acknowledged - survived
    labels = ["acknowledged", "survived", "lost"]
    source = ColumnDataSource({"what": labels, "count": [acknowledged, survived, lost],
                               "colour": [ACKED_COLOUR, KEPT_COLOUR, LOST_COLOUR]})
    fig = figure(y_range=list(reversed(labels)), width=560, height=200, toolbar_location=None,
                 title=title or f"{lost} of {acknowledged} acknowledged writes were lost",
                 x_axis_label="writes")
    fig.hbar(y="what", right="count", height=0.7, color="colour", source=source)
    fig.x_range.start = 0
    fig.ygrid.grid_line_color = None
    return fig


def label(value: str, *css_classes: str) -> widgets.Label:
    """A text cell of a viewer's table, with the CSS classes tests and pages find it by."""
    cell = widgets.Label(value)
    for css_class in css_classes:
        cell.add_class(css_class)
    return cell
