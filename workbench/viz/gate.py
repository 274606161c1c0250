"""The commit gate of one node, live: executed vs committed offset, held replies, a lever.

In ``aof`` mode a node runs every command at once but keeps each reply until the
write it depends on is fsynced (see :mod:`workbench.durability.gate`). This panel shows
the two offsets racing, the clients whose replies are held, the keys a read must not
see yet, and a button that freezes the committed offset (``DEBUG
reply-blocking-pause aof``) so that you can watch replies wait.

Like every viewer it is fed only by its :class:`~workbench.viz.pump.UiPump`: a sampler
reads the gate on the node loop and hands a plain dict over; widgets change on the
kernel thread.
"""

from __future__ import annotations

import html
import math
import time

import ipywidgets as widgets
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

from .bokehjs import ChartWidget, display_with_bokehjs
from .charts import CLOSED_COLOUR
from .pump import EVENTS, UiPump

EXECUTED_COLOUR = "#1f77b4"
COMMITTED_COLOUR = "#2ca02c"
PAUSED_COLOUR = "#c62828"
CLOSED_NOTE = "the cluster is closed: its node is stopped, so there is no gate to pause"


class GatePanel(widgets.VBox):
    """One node's commit gate: two offsets, a chart of both, held replies, Pause/Resume."""

    def __init__(self, cluster, node=None, pump: UiPump | None = None, *,
                 history: int = 600, width: int = 620, height: int = 220):
        self.cluster = cluster
        self.node = cluster.node(node) if isinstance(node, str) else node or cluster.nodes[0]
        self.started = time.time()
        self.history = history
        self._showing = False        # True while a snapshot (not a click) sets the toggle
        self.closed = False
        self.status = self._label("waiting for the first snapshot…", "wb-gate-status")
        self.executed_offset = self._label("–", "wb-gate-executed")
        self.committed_offset = self._label("–", "wb-gate-committed")
        self.aof_fsynced = self._label("–", "wb-gate-fsynced")
        self.uncommitted_keys = self._label("–", "wb-gate-uncommitted")
        self.group_commit = self._label("–", "wb-gate-group-commit")
        facts = widgets.GridBox(
            [self._label("executed offset"), self.executed_offset,
             self._label("committed (durable) offset"), self.committed_offset,
             self._label("AOF fsynced"), self.aof_fsynced,
             self._label("uncommitted keys"), self.uncommitted_keys,
             self._label("group commit"), self.group_commit],
            layout=widgets.Layout(grid_template_columns="14em auto", grid_gap="0 8px"))
        self.pause = widgets.ToggleButton(
            description="Pause the committed offset", icon="pause",
            tooltip="DEBUG reply-blocking-pause aof: fsyncs go on, replies stay held",
            layout=widgets.Layout(width="auto"))
        self.pause.add_class("wb-gate-pause")
        self.pause.observe(self._on_toggle, names="value")
        self.held_replies = widgets.HTML(render_held([]))
        self.held_replies.add_class("wb-gate-held")
        self.source = ColumnDataSource({"t": [], "executed": [], "committed": []})
        self.figure = figure(width=width, height=height, toolbar_location=None,
                             title=f"{self.node.name}: executed vs committed offset",
                             x_axis_label="seconds since the panel started",
                             y_axis_label="replication offset (bytes)")
        self.figure.step("t", "executed", source=self.source, mode="after", line_width=4,
                         color=EXECUTED_COLOUR, legend_label="executed")
        self.figure.step("t", "committed", source=self.source, mode="after", line_width=2,
                         color=COMMITTED_COLOUR, legend_label="committed (durable)")
        self.figure.legend.location = "top_left"
        self.chart = ChartWidget(self.figure)
        self.chart.add_class("wb-gate-chart")
        title = widgets.HTML(f"<b>Commit gate of {self.node.name}</b> "
                             f"<span style='color:#666'>127.0.0.1:{self.node.port}</span>")
        super().__init__([
            widgets.HBox([title, self.status], layout=widgets.Layout(grid_gap="12px")),
            widgets.HBox([facts, self.pause], layout=widgets.Layout(align_items="flex-start",
                                                                      grid_gap="16px")),
            self.held_replies, self.chart,
        ], layout=widgets.Layout(border="1px solid #ccc", padding="6px"))
        self.add_class("wb-gate-panel")
        self.key = f"gate:{self.node.name}"
        self.pump = pump or UiPump.for_cluster(cluster)
        self.pump.on(self.key, self._apply_gate)
        self.pump.on(EVENTS, self._apply_events)
        self.pump.sample(self.key, self.node.gate_snapshot)

    def _ipython_display_(self, **kwargs) -> None:
        display_with_bokehjs(self)

    @staticmethod
    def _label(value: str, css_class: str | None = None):
        label = widgets.Label(value)
        if css_class:
            label.add_class(css_class)
        return label

    # -- the lever (kernel thread, from a click) -------------------------------------------
    def _on_toggle(self, change) -> None:
        if self._showing:
            return
        if self.closed or self.cluster.closed:
            self.show_closed()
            return
        lever = "reply-blocking-pause" if change["new"] else "reply-blocking-resume"
        try:
            with self.cluster.client(self.node) as client:
                client.execute_command("DEBUG", lever, "aof")
        except Exception as err:     # a click must never raise into the void
            self.status.value = f"DEBUG {lever} failed: {err}"
        self.pump.sample_now()       # what the node now reports comes back through the pump

    # -- the appliers (kernel thread, called by the pump) ----------------------------------
    def show_closed(self) -> None:
        """The cluster is closed: say so plainly, and turn the lever off."""
        self.closed = True
        self.status.value = CLOSED_NOTE
        self.status.style.text_color = CLOSED_COLOUR
        self._showing = True
        try:
            self.pause.value = False
            self.pause.disabled = True
            self.pause.tooltip = CLOSED_NOTE
        finally:
            self._showing = False
        self.held_replies.value = render_held([])

    def _apply_events(self, events: list) -> None:
        if any(event.kind == "ClusterClosed" for event in events):
            self.show_closed()

    def _apply_gate(self, state: dict) -> None:
        if self.closed:
            return
        now = round(time.time() - self.started, 3)
        if not state["alive"]:
            self.status.value = "node down"
            self.status.style.text_color = PAUSED_COLOUR
            self.source.stream({"t": [now], "executed": [math.nan], "committed": [math.nan]},
                               rollover=self.history)
            return
        executed, committed = state["executed_offset"], state["committed_offset"]
        self.executed_offset.value = str(executed)
        if committed is None:
            self.committed_offset.value = "no gate (replies leave at once)"
        else:
            behind = executed - committed
            self.committed_offset.value = (f"{committed}" if behind == 0
                                           else f"{committed}  ({behind} bytes behind)")
        if state["aof_fsynced_bytes"] is None:     # sync in memory: no AOF to fsync
            self.aof_fsynced.value = "AOF off"
        else:
            self.aof_fsynced.value = (f"{state['aof_fsynced_bytes']} bytes, up to offset "
                                      f"{state['aof_fsynced_offset']}")
        self.uncommitted_keys.value = str(state["uncommitted_keys"])
        batches, writes = state["group_commit_batches"], state["group_commit_writes"]
        self.group_commit.value = (f"{writes} writes in {batches} fsyncs "
                                   f"({writes / batches:.1f} per fsync)" if batches else "–")
        if not state["gated"]:
            self.status.value, colour = "not gated", "black"
        elif state["paused"]:
            self.status.value, colour = "PAUSED: replies wait", PAUSED_COLOUR
        else:
            self.status.value, colour = "replies leave when fsynced", COMMITTED_COLOUR
        self.status.style.text_color = colour
        self._showing = True
        try:
            self.pause.value = state["paused"]
            self.pause.disabled = not state["gated"]
            self.pause.description = ("Resume the committed offset" if state["paused"]
                                      else "Pause the committed offset")
            self.pause.icon = "play" if state["paused"] else "pause"
        finally:
            self._showing = False
        self.held_replies.value = render_held(state["held_replies"])
        self.source.stream({"t": [now], "executed": [executed],
                            "committed": [math.nan if committed is None else committed]},
                           rollover=self.history)


def render_held(clients: list) -> str:
    """The table of clients whose replies a commit gate holds (``held_replies`` of
    ``node.gate_snapshot()``), as HTML."""
    head = ("<tr><th>client</th><th>name</th><th>last command</th><th>held replies</th>"
            "<th>held bytes</th><th>waits for offset</th></tr>")
    rows = "".join(
        f"<tr><td>{c['client']}</td><td>{html.escape(c['name']) or '–'}</td>"
        f"<td>{html.escape(c['command'])}</td><td>{c['replies']}</td>"
        f"<td>{c['bytes']}</td><td>{c['waits_for']}</td></tr>" for c in clients)
    body = rows or "<tr><td colspan='6'><i>no client is waiting</i></td></tr>"
    return (f"<b>clients with held replies: {len(clients)}</b>"
            "<table style='font-family:monospace;font-size:12px;border-collapse:collapse'"
            f" cellpadding='3'>{head}{body}</table>")
