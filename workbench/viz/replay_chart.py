"""A recorded run, drawn with Bokeh: the progress chart and the static replay.

A recording (:mod:`workbench.recording`) is cut into *steps*, at most ``max_steps``
instants from its start to its end; the state at each step is folded once
(:func:`~workbench.clusterstate.states_over`). Everything here is drawn from those
states, the fault windows and the history, with no live cluster:

* :class:`ProgressFigure` -- each node's replication offset (``raft``: commit index)
  over time, fault windows shaded, crashes and new primaries / leaders marked, and a
  cursor at the instant shown. ``viz.Replay`` and ``viz.LiveView`` draw with it.
* :func:`static_replay` -- the same chart with a slider, a play button and the node
  table at the slider's instant, in Bokeh alone (a ``CustomJS`` callback, no kernel):
  what the shootout's HTML report (:mod:`workbench.history.report`) embeds per mode.
* :func:`history_rows` / :class:`OpsIndex` -- the clients' operations up to an instant.

Times on the charts are seconds since the recording started.
"""

from __future__ import annotations

import bisect
import html
import math
from dataclasses import dataclass

from ..history.model import FINAL_READ, INFO
from .charts import node_colour
from .state_table import COLUMNS, node_row, progress_of, summary

MAX_STEPS = 300            # of a static replay: its size grows with them
MIN_STEP_S = 0.05          # finer than the recording's samples shows nothing more
TICKS_PER_S = 10           # the most slider moves a second a replay plays at
SPEEDS = (1, 4, 16)
FAULT_FILL = "#9e9e9e"
CURSOR_COLOUR = "#d62728"
MARK_COLOURS = {"crash": "#c62828", "primary": "#1b7a1b"}
RECENT_OPS = 8
OUTCOME_WORDS = {"ok": "ok", "fail": "fail", "info": "info (unknown)", None: "pending"}


# -- steps and pace ------------------------------------------------------------------------

def step_times(start: float, end: float, max_steps: int = MAX_STEPS) -> tuple[list[float], float]:
    """Instants from ``start`` to ``end`` (both included), at most ``max_steps + 1``, at
    least MIN_STEP_S apart; and the step in seconds."""
    span = max(0.0, end - start)
    step = max(MIN_STEP_S, span / max(1, max_steps))
    count = max(1, math.ceil(span / step - 1e-9))
    return [start + i * step for i in range(count)] + [max(end, start)], step


def play_pace(speed: float, step_s: float) -> tuple[int, int]:
    """``(interval_ms, steps_per_tick)`` to play at ``speed`` times real time, with at
    most TICKS_PER_S ticks a second."""
    steps_per_s = speed / step_s
    steps = max(1, math.ceil(steps_per_s / TICKS_PER_S - 1e-9))
    return int(round(1000 * steps / steps_per_s)), steps


def node_names(states: list[dict]) -> list[str]:
    """Every node any of ``states`` knows, in the order they first appear."""
    names: dict[str, None] = {}
    for state in states:
        names.update(dict.fromkeys(state["nodes"]))
    return list(names)


def marks(entries, t0: float) -> list[tuple[float, str, str]]:
    """``(seconds, text, colour)`` for crashes and for each new primary or leader."""
    out = []
    for event, _ in entries:
        kind = event.kind
        if kind == "NodeKilled":
            what = "lost power" if event.power_loss else "killed"
            out.append((event.time - t0, f"{event.node} {what}", MARK_COLOURS["crash"]))
        elif kind == "FailoverDone":
            out.append((event.time - t0, f"{event.new_primary} promoted", MARK_COLOURS["primary"]))
        elif kind == "RaftRoleChanged" and event.role == "leader":
            out.append((event.time - t0, f"{event.node} leads term {event.term}",
                        MARK_COLOURS["primary"]))
    return out


# -- the chart ---------------------------------------------------------------------------------

class ProgressFigure:
    """Each node's progress over time, fault windows shaded, marks, and a cursor.

    ``figure`` is the Bokeh figure; ``set_*`` replace what it draws, :meth:`add_point`
    streams one more instant (a live view). Call it from one thread only.
    """

    def __init__(self, names, mode: str | None, *, width: int = 760, height: int = 280,
                 history: int | None = None):
        from bokeh.models import ColumnDataSource, HoverTool, Span
        from bokeh.plotting import figure

        self.names: list[str] = []
        self.mode = mode
        self.history = history
        self.source = ColumnDataSource({"t": []})
        self.windows = ColumnDataSource({"start": [], "end": [], "label": []})
        self.marks = ColumnDataSource({"t": [], "text": [], "colour": []})
        what = "commit index" if mode == "raft" else "replication offset (bytes)"
        self.figure = figure(width=width, height=height, title=f"{what} per node",
                             x_axis_label="seconds since the recording started",
                             y_axis_label=what, tools="pan,box_zoom,reset,save",
                             toolbar_location="right")
        self.figure.toolbar.logo = None
        shaded = self.figure.vstrip(x0="start", x1="end", source=self.windows,
                                    fill_color=FAULT_FILL, fill_alpha=0.2, line_alpha=0,
                                    legend_label="fault in force")
        self.figure.add_tools(HoverTool(renderers=[shaded], tooltips=[("fault", "@label")]))
        self.figure.vspan(x="t", source=self.marks, line_color="colour", line_dash="dotted",
                          line_width=2)
        self.figure.text(x="t", y=0, text="text", source=self.marks, text_color="colour",
                         text_font_size="10px", angle=math.pi / 2, x_offset=-3,
                         text_baseline="bottom")
        self.cursor = Span(location=0, dimension="height", line_color=CURSOR_COLOUR,
                           line_width=2)
        self.figure.add_layout(self.cursor)
        self.figure.legend.location = "top_left"
        self.figure.legend.click_policy = "hide"
        for name in names:
            self.add_node(name)

    def add_node(self, name: str) -> None:
        """A line for one more node (NaN before it was known)."""
        if name in self.names:
            return
        data = dict(self.source.data)
        data[name] = [math.nan] * len(data["t"])
        self.source.data = data
        # Thicker lines under thinner ones: nodes at the same offset stay visible.
        width_px = max(2, 8 - 2 * len(self.names))
        self.figure.line("t", name, source=self.source, line_width=width_px,
                         color=node_colour(name), legend_label=name)
        self.names.append(name)

    def set_series(self, times: list[float], states: list[dict], t0: float) -> None:
        for state in states:
            for name in state["nodes"]:
                self.add_node(name)
        data = {"t": [round(t - t0, 3) for t in times]}
        for name in self.names:
            data[name] = [_value(progress_of(state, name)) for state in states]
        self.source.data = data

    def add_point(self, t: float, state: dict) -> None:
        for name in state["nodes"]:
            self.add_node(name)
        point = {"t": [round(t, 3)]}
        for name in self.names:
            point[name] = [_value(progress_of(state, name))]
        self.source.stream(point, rollover=self.history)

    def set_windows(self, windows, t0: float) -> None:
        data = {"start": [round(s - t0, 3) for s, _, _ in windows],
                "end": [round(e - t0, 3) for _, e, _ in windows],
                "label": [label for _, _, label in windows]}
        if data != {k: list(v) for k, v in self.windows.data.items()}:
            self.windows.data = data

    def set_marks(self, marks_: list[tuple[float, str, str]]) -> None:
        data = {"t": [round(t, 3) for t, _, _ in marks_], "text": [m[1] for m in marks_],
                "colour": [m[2] for m in marks_]}
        if data != {k: list(v) for k, v in self.marks.data.items()}:
            self.marks.data = data

    def set_cursor(self, seconds: float) -> None:
        self.cursor.location = round(seconds, 3)


def _value(value) -> float:
    return math.nan if value is None else value


# -- the history up to an instant ------------------------------------------------------------

@dataclass(frozen=True)
class OpRow:
    start: float              # wall-clock seconds
    end: float | None         # when its outcome became known; None: never
    process: int
    what: str
    outcome: str | None       # ok, fail, info


def history_rows(history, clock_offset: float) -> list[OpRow]:
    """The client operations of ``history`` (final reads left out), in wall-clock time
    (``clock_offset``: wall minus monotonic, as the recording's header says)."""
    rows = []
    for op in history.pairs():
        if op.f == FINAL_READ:
            continue
        value = op.value
        text = f"{op.f} {op.key}" + ("" if value is None else f" {_short(value)}")
        end = op.completion.time + clock_offset if op.completion is not None else None
        outcome = op.completion.type if op.completion is not None else INFO
        rows.append(OpRow(op.start + clock_offset, end, op.process, text, outcome))
    rows.sort(key=lambda row: row.start)
    return rows


def _short(value, limit: int = 28) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class OpsIndex:
    """Answers "what had the clients done by ``t``?" with bisects, not scans."""

    def __init__(self, rows: list[OpRow]):
        self.rows = rows
        self.starts = [row.start for row in rows]
        self.ends = {outcome: sorted(r.end for r in rows if r.outcome == outcome
                                     and r.end is not None)
                     for outcome in ("ok", "fail", "info")}

    def at(self, t: float, recent: int = RECENT_OPS) -> dict:
        invoked = bisect.bisect_right(self.starts, t)
        done = {outcome: bisect.bisect_right(ends, t) for outcome, ends in self.ends.items()}
        last = []
        for row in self.rows[max(0, invoked - recent):invoked]:
            known = row.end is not None and row.end <= t
            last.append({"at": row.start, "process": row.process, "what": row.what,
                         "outcome": OUTCOME_WORDS[row.outcome if known else None]})
        return {"invoked": invoked, **done, "pending": invoked - sum(done.values()),
                "recent": last[::-1]}


def ops_text(counts: dict) -> str:
    return (f"{counts['invoked']} operations invoked: {counts['ok']} ok, {counts['fail']} "
            f"fail, {counts['info']} info (unknown), {counts['pending']} without an outcome yet")


# -- the static replay ---------------------------------------------------------------------------

def static_replay(recording, *, max_steps: int = MAX_STEPS, width: int = 600,
                  title: str | None = None):
    """A Bokeh layout replaying ``recording`` in a page with no kernel: a slider and a
    play button (1x / 4x / 16x), the node table and the faults at the slider's instant,
    the progress chart with a cursor, and the clients' operations counted so far."""
    from bokeh.layouts import column, row
    from bokeh.models import CustomJS, Div, InlineStyleSheet, Select, Slider, Toggle

    entries = recording.entries
    start, end = recording.start_time(), recording.end_time()
    times, step_s = step_times(start, end, max_steps)
    states = recording.states(times)
    names = node_names(states)

    # Each step's table as HTML, each distinct one once: the page swaps them in. (A Bokeh
    # DataTable would be smaller, but BokehJS 3.9 does not redraw one changed from
    # CustomJS: bokeh/bokeh#15328.)
    tables, which, seen = [], [], {}
    for state in states:
        page = table_html([node_row(state, name) for name in names if name in state["nodes"]])
        if page not in seen:
            seen[page] = len(tables)
            tables.append(page)
        which.append(seen[page])
    summaries = [_escape(f"t = {t - start:.2f} s: {summary(state)}")
                 for t, state in zip(times, states)]
    ops = None
    if recording.history is not None:
        index = OpsIndex(history_rows(recording.history, recording.clock_offset))
        ops = [_escape(ops_text(index.at(t))) for t in times]

    chart = ProgressFigure(names, recording.mode, width=width, height=260)
    chart.set_series(times, states, start)
    chart.set_windows(recording.fault_windows(), start)
    chart.set_marks(marks(entries, start))
    table = Div(text=tables[which[0]], width=width,
                stylesheets=[InlineStyleSheet(css=TABLE_CSS)])
    heading = Div(text=f"<b>{recording.mode or 'cluster'}: replay of the recording</b>"
                  if title is None else title, width=width)
    said = Div(text=summaries[0], width=width)
    counted = Div(text=ops[0] if ops else "", width=width)
    slider = Slider(start=0, end=len(times) - 1, value=0, step=1, width=width,
                    title=f"instant (steps of {step_s:.2f} s)", show_value=False)
    play = Toggle(label="▶ play", active=False, width=90)
    speed = Select(value="1x", options=[f"{s}x" for s in SPEEDS], width=80)
    paces = {f"{s}x": play_pace(s, step_s) for s in SPEEDS}
    slider.js_on_change("value", CustomJS(
        args=dict(table=table, tables=tables, which=which, said=said, summaries=summaries,
                  counted=counted, ops=ops or [], cursor=chart.cursor,
                  seconds=[round(t - start, 3) for t in times]),
        code="""
        const i = cb_obj.value;
        table.text = tables[which[i]];
        said.text = summaries[i];
        if (ops.length) counted.text = ops[i];
        cursor.location = seconds[i];
    """))
    run = CustomJS(args=dict(slider=slider, play=play, speed=speed, paces=paces), code="""
        const key = '_wb_replay_' + slider.id;
        if (window[key]) { clearInterval(window[key]); window[key] = null; }
        play.label = play.active ? '❚❚ pause' : '▶ play';
        if (!play.active) return;
        if (slider.value >= slider.end) slider.value = slider.start;
        const [interval, steps] = paces[speed.value];
        window[key] = setInterval(() => {
            const next = Math.min(slider.end, slider.value + steps);
            slider.value = next;
            if (next >= slider.end) { play.active = false; }
        }, interval);
    """)
    play.js_on_change("active", run)
    speed.js_on_change("value", run)
    return column(heading, row(play, speed, slider), said, table, counted, chart.figure)


TABLE_CSS = (".wb-replay-table td, .wb-replay-table th {padding: 1px 8px; text-align: left; "
             "font: 12px monospace; border-bottom: 1px solid #ddd}")


def table_html(rows: list[dict[str, str]]) -> str:
    """The node table as a compact HTML table (cells escaped)."""
    head = "".join(f"<th title='{_escape(tip)}'>{key}</th>" for key, tip in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{_escape(row[key])}</td>" for key, _ in COLUMNS)
                   + "</tr>" for row in rows)
    return f"<table class='wb-replay-table'><tr>{head}</tr>{body}</table>"


def _escape(text: str) -> str:
    return html.escape(text)
