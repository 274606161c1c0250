"""The switchboard: pick the durability, break the primary, watch the price and the loss.

One row of toggles chooses what acknowledges a write -- ``async``, ``async`` with ``WAIT
n`` after every write, ``aof``, ``sync``, ``raft`` -- and rebuilds the cluster in that
mode while the workload keeps running. The same four fault buttons work in every mode.
The numbers (acknowledged writes per second, write latency p50/p99, held replies,
uncommitted keys, acknowledged writes lost and dirty reads so far) and two live charts
follow the run; each finished run adds a row to the scoreboard with the checkers' final
verdict, so the modes can be set side by side on the same faults.

The engine is :class:`workbench.switchboard.Switchboard`; its worker thread never
touches a widget, it hands plain data to a :class:`UiPump`.
"""

from __future__ import annotations

import asyncio
import html
import math
import os

import ipywidgets as widgets
from bokeh.layouts import column
from bokeh.models import ColumnDataSource, LabelSet
from bokeh.plotting import figure

from ..switchboard import Switchboard, verdict_line
from .bokehjs import ChartWidget, display_with_bokehjs
from .charts import KEPT_COLOUR, LOST_COLOUR, label
from .pump import UiPump

DURABILITIES = ("async", "async + WAIT", "aof", "sync", "raft")
FAULT_BUTTONS = (  # (fault, text, tooltip)
    ("cut", "Cut the primary off", "partition the node serving writes from every other node"),
    ("crash", "Crash the primary", "kill the node serving writes (its files stay)"),
    ("power-cut", "Power-cut the primary",
     "kill the node serving writes; what it had not fsynced is gone"),
    ("heal", "Heal and restart", "heal the network and restart every stopped node"),
)
# The scripted comparison: cut the primary off for 3 s, heal, then a power cut.
SAME_FAULTS = (("cut", 3.0), ("heal", 1.5), ("power-cut", 1.5))
BAND_REACH_S = 100_000     # a run's band reaches past any chart; the next one covers it
MODE_FILLS = {"async": "#fdecea", "async + WAIT": "#fff4e5", "aof": "#e8f4fd",
              "sync": "#edf7ed", "raft": "#f3e5f5"}
NUMBERS = (  # (key, what the reader sees)
    ("writes_per_s", "acknowledged writes / s"),
    ("write_p50_ms", "write latency p50 (ms)"),
    ("write_p99_ms", "write latency p99 (ms)"),
    ("waiting_s", "seconds since the last ack"),
    ("held_replies", "held replies (primary)"),
    ("uncommitted_keys", "uncommitted keys (primary)"),
    ("acked_writes", "acknowledged writes"),
    ("lost_so_far", "acknowledged writes lost so far"),
    ("dirty_so_far", "dirty reads so far"),
)


class SwitchboardPanel(widgets.VBox):
    """The widget face of a :class:`Switchboard` (a fresh one unless given)."""

    def __init__(self, board: Switchboard | None = None, *, start: str | None = "async",
                 width: int = 760):
        self.board = board or Switchboard()
        self.pump = UiPump()
        self._choosing = False            # True while code, not a click, moves the toggle
        self.durability = widgets.ToggleButtons(options=DURABILITIES, value=None,
                                                description="durability",
                                                tooltips=["the primary acknowledges at once",
                                                          "WAIT n after every write",
                                                          "fsynced write-behind log, one node",
                                                          "every eligible replica has it",
                                                          "a majority of the Raft log has it"])
        self.durability.add_class("wb-switch-durability")
        self.durability.observe(self._on_choose, names="value")
        self.wait_n = widgets.IntSlider(value=1, min=1, max=2, description="WAIT n",
                                        disabled=True, continuous_update=False,
                                        layout=widgets.Layout(width="260px"))
        self.wait_n.add_class("wb-switch-wait")
        self.wait_n.observe(self._on_wait_n, names="value")
        self.fault_buttons = {}
        for fault, text, tooltip in FAULT_BUTTONS:
            button = widgets.Button(description=text, tooltip=tooltip,
                                    layout=widgets.Layout(width="auto"),
                                    button_style="success" if fault == "heal" else "danger")
            button.add_class(f"wb-switch-{fault}")
            button.on_click(lambda _, f=fault: self._ask(self.board.fault, f))
            self.fault_buttons[fault] = button
        self.check_now = widgets.Button(description="Check now", icon="check",
                                        tooltip="end this run: undo the faults, read every "
                                                "key back, final verdict; then run again",
                                        layout=widgets.Layout(width="auto"))
        self.check_now.add_class("wb-switch-check")
        self.check_now.on_click(lambda _: self._ask(self.board.restart_run))
        self.status = label("choose a durability", "wb-switch-status")
        self.numbers = {key: label("–", f"wb-switch-{key.replace('_', '-')}")
                        for key, _ in NUMBERS}
        grid = widgets.GridBox(
            [cell for key, text in NUMBERS for cell in (label(text), self.numbers[key])],
            layout=widgets.Layout(grid_template_columns="repeat(3, 17em 5em)",
                                  grid_gap="0 8px"))
        self.scoreboard = widgets.HTML(render_scoreboard([]))
        self.scoreboard.add_class("wb-switch-scoreboard")
        self.log_view = widgets.HTML("")
        self.log_view.add_class("wb-switch-log")
        self._lines: list[str] = []
        self._build_charts(width)
        super().__init__([
            widgets.HTML("<b>Durability switchboard</b> — one workload, your choice of what "
                         "acknowledges a write, the same faults for every mode"),
            widgets.HBox([self.durability, self.wait_n]),
            widgets.HBox([*self.fault_buttons.values(), self.check_now]),
            self.status, grid, self.chart, self.scoreboard, self.log_view,
        ], layout=widgets.Layout(border="1px solid #ccc", padding="6px"))
        self.add_class("wb-switchboard")
        self.pump.on("stats", self._apply_stats)
        self.pump.on("log", self._apply_log)
        self.pump.on("marks", self._apply_marks)
        self.pump.on("results", self._apply_results)
        self.board.on_update(self._from_worker)
        self._set_enabled(False)
        if start is not None:
            self.choose(start)

    def _ipython_display_(self, **kwargs) -> None:
        display_with_bokehjs(self)

    def _build_charts(self, width: int) -> None:
        # Every mark is a row of a data source, only ever streamed (never patched), like the
        # points: the figures' models never change after display (models added later race
        # with the page), and a page that connected late (a dashboard) and missed the
        # first rows stays consistent. A run's band reaches far right; the next run's band,
        # drawn over it, ends it. The x axis follows the lines only.
        self.source = ColumnDataSource({"t": [], "writes": [], "p50": [], "p99": []})
        self.bands = ColumnDataSource({"left": [], "right": [], "fill": [], "text": []})
        self.faults = ColumnDataSource({"at": [], "colour": []})
        common = dict(width=width, toolbar_location=None, x_axis_label="seconds")
        self.throughput = figure(height=170, title="acknowledged writes per second", **common)
        self.latency = figure(height=190, title="write latency (ms, log scale)",
                              y_axis_type="log", x_range=self.throughput.x_range, **common)
        for fig in (self.throughput, self.latency):
            fig.vstrip(x0="left", x1="right", fill_color="fill", fill_alpha=1.0,
                       line_alpha=0, source=self.bands, level="underlay")
            fig.vspan(x="at", line_color="colour", line_width=2, source=self.faults)
        self.throughput.add_layout(LabelSet(x="left", y=4, y_units="screen", text="text",
                                            text_font_size="10px", source=self.bands))
        followed = [self.throughput.line("t", "writes", source=self.source, line_width=2,
                                         color="#1f77b4")]
        self.throughput.y_range.start = 0
        followed.append(self.latency.line("t", "p50", source=self.source, line_width=2,
                                          color=KEPT_COLOUR, legend_label="p50"))
        self.latency.line("t", "p99", source=self.source, line_width=2, color=LOST_COLOUR,
                          legend_label="p99")
        self.throughput.x_range.renderers = followed
        self.latency.legend.location = "top_left"
        self.chart = ChartWidget(column(self.throughput, self.latency))
        self.chart.add_class("wb-switch-chart")

    # -- clicks (kernel thread) -----------------------------------------------------------
    def choose(self, durability: str, wait_n: int | None = None) -> None:
        """Pick a durability as a click would (``"async + WAIT"`` uses the slider's n)."""
        if wait_n is not None:
            self.wait_n.value = wait_n
        if self.durability.value == durability:
            self._on_choose({"new": durability})
        else:
            self.durability.value = durability

    def _on_choose(self, change) -> None:
        choice = change["new"]
        if choice is None or self._choosing:
            return
        self.wait_n.disabled = choice != "async + WAIT"
        if choice == "async + WAIT":
            self._ask(self.board.use, "async", self.wait_n.value)
        else:
            self._ask(self.board.use, choice)

    def _on_wait_n(self, change) -> None:
        if self.durability.value == "async + WAIT":
            self._ask(self.board.use, "async", change["new"])

    def _ask(self, request, *args):
        try:
            future = request(*args)
        except Exception as err:          # a click never raises into the void
            self.status.value = f"refused: {err}"
            return None
        self.status.value = "working…"
        return future

    def _set_enabled(self, running: bool) -> None:
        for button in self.fault_buttons.values():
            button.disabled = not running
        self.check_now.disabled = self.board.run is None

    # -- the worker's news (worker thread -> pump) ----------------------------------------
    def _from_worker(self, kind: str, value) -> None:
        if kind == "stats":
            self.pump.publish("stats", value)
        elif kind == "log":
            self.pump.append("log", value)
        elif kind in ("run", "fault"):
            self.pump.append("marks", (kind, value))
        elif kind == "result":
            self.pump.publish("results", list(self.board.results))

    # -- appliers (kernel thread) ----------------------------------------------------------
    def _apply_stats(self, stats: dict) -> None:
        for key, _ in NUMBERS:
            self.numbers[key].value = _number(stats.get(key))
        lost, dirty = stats.get("lost_so_far") or 0, stats.get("dirty_so_far") or 0
        for key, bad in (("lost_so_far", lost), ("dirty_so_far", dirty)):
            self.numbers[key].style.text_color = LOST_COLOUR if bad else KEPT_COLOUR
        primary = stats.get("primary") or "nobody (election or failover under way)"
        state = "running" if stats.get("running") else "finished"
        self.status.value = (f"{stats['durability']}: {state} {stats['elapsed_s']:.0f} s; "
                             f"writes go to {primary}; lost and dirty counts are provisional "
                             "until 'Check now' or the next switch reads every key back")
        self._set_enabled(bool(stats.get("running")))
        if stats.get("running"):
            self.source.stream({"t": [stats["at"]], "writes": [stats["writes_per_s"]],
                                "p50": [_positive(stats["write_p50_ms"])],
                                "p99": [_positive(stats["write_p99_ms"])]}, rollover=2400)

    def _apply_marks(self, marks: list) -> None:
        for kind, value in marks:
            at = value["at"]
            if kind == "run":
                what = value["durability"]
                fill = MODE_FILLS["async + WAIT" if "WAIT" in what else what]
                self.bands.stream({"left": [at], "right": [at + BAND_REACH_S], "fill": [fill],
                                   "text": [what]})
            else:
                colour = KEPT_COLOUR if value["what"] == "heal" else LOST_COLOUR
                self.faults.stream({"at": [at], "colour": [colour]})

    def _apply_log(self, lines: list) -> None:
        self._lines += [f"{at:7.1f} s  {html.escape(text)}" for at, text in lines]
        self._lines = self._lines[-12:]
        self.log_view.value = ("<pre style='font-size:11px;margin:0'>" + "\n".join(self._lines)
                          + "</pre>")

    def _apply_results(self, results: list) -> None:
        self.scoreboard.value = render_scoreboard(results)

    # -- for notebooks and tests ----------------------------------------------------------
    async def settle(self, future, timeout: float = 90) -> object:
        """Await a request's future while the page keeps updating (drains run)."""
        result = await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        self.pump.flush()
        return result

    async def compare(self, choices=DURABILITIES, schedule=SAME_FAULTS, *, wait_n: int = 1,
                      warm_up: float = 2.0) -> list[dict]:
        """Each durability in turn under the same fault ``schedule`` (``(fault, seconds to
        watch after it)`` pairs), then its final verdict; returns the rows."""
        from tqdm.auto import tqdm

        rows = []
        for choice in tqdm(choices, desc="durabilities", unit="mode"):
            mode, n = ("async", wait_n) if choice == "async + WAIT" else (choice, 0)
            self._choosing = True
            try:
                self.wait_n.value = wait_n
                self.durability.value = choice       # shows the choice; the click handler
            finally:                                 # is skipped: we ask ourselves below
                self._choosing = False
            self.wait_n.disabled = choice != "async + WAIT"
            await self.settle(self.board.use(mode, n))
            await asyncio.sleep(warm_up)
            for fault, watch in schedule:
                await self.settle(self.board.fault(fault))
                await asyncio.sleep(watch)
            rows.append(await self.settle(self.board.finish()))
        return rows

    def compare_in_background(self, *args, **kwargs) -> asyncio.Task:
        """:meth:`compare` as a task on the kernel's loop: the cell ends at once and the
        switchboard plays the comparison by itself (a dashboard's page opens at once)."""
        return asyncio.get_event_loop().create_task(self.compare(*args, **kwargs))

    def shut_down(self) -> None:
        """Finish the run (its verdict joins the scoreboard), stop the cluster, turn the
        controls off. The panel stays on the page, saying so."""
        self.board.close()
        self.pump.flush()
        self._set_enabled(False)
        self.check_now.disabled = True
        self.durability.disabled = self.wait_n.disabled = True
        self.status.value = "closed: the cluster is shut down"

    def shut_down_button(self) -> widgets.Button:
        """The notebook's clean-up, pressed by the reader when done (not by Run All)."""
        button = widgets.Button(description="Shut the switchboard down", icon="power-off",
                                layout=widgets.Layout(width="auto"))
        button.add_class("wb-switch-shut-down")

        def press(_):
            button.disabled = True
            self.shut_down()
            button.description = "The switchboard is shut down"
        button.on_click(press)
        return button


def in_dashboard() -> bool:
    """True in a kernel that Voila started (it names itself in the CGI-style environment
    it gives the kernel): a dashboard should not make its reader wait for long cells."""
    return os.environ.get("SERVER_SOFTWARE", "").startswith("voila/")


def _number(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    return str(value)


def _positive(value):
    return value if value else math.nan


def render_scoreboard(results: list[dict]) -> str:
    """One row per finished run: what it cost and what it kept, with the final verdict."""
    head = ("<tr><th>durability</th><th>faults</th><th>acked writes</th><th>lost</th>"
            "<th>dirty reads</th><th>p50 ms</th><th>p99 ms</th><th>longest wait s</th>"
            "<th>verdict</th></tr>")
    rows = []
    for r in results:
        if r.get("error"):
            rows.append(f"<tr><td>{html.escape(r['durability'])}</td>"
                        f"<td colspan='8'>{html.escape(verdict_line(r))}</td></tr>")
            continue
        bad = r["lost_acknowledged_writes"] or r["dirty_reads"]
        colour = LOST_COLOUR if bad else KEPT_COLOUR
        faults = ", ".join(f.split(":")[0] for f in r["faults"]) or "none"
        rows.append(
            f"<tr><td><b>{html.escape(r['durability'])}</b></td>"
            f"<td style='font-size:11px'>{html.escape(faults)}</td>"
            f"<td>{r['acked_writes']}</td><td>{r['lost_acknowledged_writes']}</td>"
            f"<td>{r['dirty_reads']}</td><td>{_number(r['write_p50_ms'])}</td>"
            f"<td>{_number(r['write_p99_ms'])}</td>"
            f"<td>{_number(r['longest_unavailability_s'])}</td>"
            f"<td style='color:{colour}'>{'NOT SAFE' if bad else 'safe'}</td></tr>")
    body = "".join(rows) or "<tr><td colspan='9'><i>no run finished yet</i></td></tr>"
    return ("<b>scoreboard: the checkers' final verdict of each run</b>"
            "<table class='wb-scoreboard' style='font-family:monospace;font-size:12px;"
            f"border-collapse:collapse' cellpadding='3'>{head}{body}</table>")
