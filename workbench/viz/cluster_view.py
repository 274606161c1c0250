"""The panel a replay and a live view share: who serves writes and the faults in force,
a table of the nodes, and the progress chart.

It draws a cluster *state* (``ClusterState.as_dict()``, see :mod:`workbench.clusterstate`)
and knows nothing of where it came from: :class:`~workbench.viz.replay.Replay` moves
through the states of a recording, :class:`~workbench.viz.live_view.LiveView` folds
events as they arrive. Touch it from the kernel's thread only.
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from .bokehjs import ChartWidget, display_with_bokehjs
from .charts import label, node_colour
from .replay_chart import ProgressFigure
from .state_table import COLUMNS, node_row, summary

STATUS_COLOURS = {"running": "#1b7a1b", "killed": "#c62828", "lost power": "#c62828",
                  "removed": "#757575", "closed": "#616161"}
FAULT_COLOUR = "#c62828"


class NodeTable(widgets.GridBox):
    """One row per node, one column per :data:`~workbench.clusterstate.COLUMNS`; each
    cell is a Label with the classes ``wb-view-<column>`` and ``wb-view-<column>-<node>``."""

    def __init__(self):
        self.rows: dict[str, dict[str, widgets.Widget]] = {}
        self.heads = []
        for text, tooltip in COLUMNS:
            head = label(text)
            head.tooltip = tooltip
            head.style.font_weight = "bold"
            self.heads.append(head)
        super().__init__(self.heads, layout=widgets.Layout(
            grid_template_columns="3.5em 6.5em 11em 6em 6em 3.5em 6em auto", grid_gap="0 8px"))
        self.add_class("wb-view-nodes")

    def _add_row(self, name: str) -> None:
        row = {"node": widgets.HTML(f"<b style='color:{node_colour(name)}'>{name}</b>")}
        for key, _ in COLUMNS[1:]:
            row[key] = label("–", f"wb-view-{key}", f"wb-view-{key}-{name}")
        self.rows[name] = row
        self.children = tuple(self.heads) + tuple(cell for r in self.rows.values()
                                                  for cell in r.values())

    def show(self, state: dict) -> None:
        for name in state["nodes"]:
            if name not in self.rows:
                self._add_row(name)
            cells = node_row(state, name)
            row = self.rows[name]
            for key, _ in COLUMNS[1:]:
                row[key].value = cells[key]
            status = cells["status"].split(" (", 1)[0]
            row["status"].style.text_color = STATUS_COLOURS.get(status, "black")


class ClusterView(widgets.VBox):
    """A summary line, the node table and the progress chart of one cluster."""

    def __init__(self, names=(), mode: str | None = None, *, width: int = 760,
                 height: int = 260, history: int | None = None):
        self.summary = widgets.HTML("<i>no state yet</i>")
        self.summary.add_class("wb-view-summary")
        self.table = NodeTable()
        self.chart = ProgressFigure(names, mode, width=width, height=height, history=history)
        self.chart_widget = ChartWidget(self.chart.figure)
        self.chart_widget.add_class("wb-view-chart")
        self.state: dict | None = None
        super().__init__([self.summary, self.table, self.chart_widget])
        self.add_class("wb-cluster-view")

    def show(self, state: dict) -> None:
        """Draw ``state`` (an ``as_dict()``) in the summary line and the table."""
        self.state = state
        text = html.escape(summary(state))
        colour = FAULT_COLOUR if state.get("faults") else "black"
        self.summary.value = f"<span style='color:{colour}'>{text}</span>"
        self.table.show(state)

    def _ipython_display_(self, **kwargs) -> None:
        display_with_bokehjs(self)
