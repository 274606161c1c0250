"""Reports of a mode shootout: a text table, JSON, and a self-contained HTML page.

* :func:`table`   -- one row per mode, the comparable numbers side by side (a terminal);
* :func:`to_json` -- ``{"runs": [...], "notes": [...]}``: the fields of :data:`FIELDS`,
  the config every node was given, and the error of a mode that failed;
  :func:`write_json` writes it with each run's recording beside it
  (``results.<mode>.recording.jsonl``, named in the run's ``"recording"``);
* :func:`html`    -- one column per mode: a timeline of the client operations (one row
  per client process, coloured by outcome, acknowledged writes that were later lost and
  anomalous reads marked) with the fault windows shaded, the latency of acknowledged
  writes over time, and the checkers' findings with the op indices to look up in the
  history, and a replay of the run's recording (a slider and a play button over the
  node table and each node's progress, see :mod:`workbench.viz.replay_chart`). Bokeh's
  JavaScript is inlined, so the file opens offline.
* :func:`layout`  -- the same columns as a Bokeh layout, for ``bokeh.io.show`` in a
  notebook (``notebooks/03-shootout.ipynb``).

A long run has tens of thousands of operations; one bar and one dot each would make a
page of tens of megabytes. Past :data:`MAX_BARS` operations the timeline draws, per
client process, one bar per stretch of operations with the same outcome (a stretch that
mixes outcomes within one of :data:`BUCKETS` slices of the run takes the colour of the
worst), and past :data:`MAX_DOTS` writes the latency chart keeps the median and the
slowest write of each slice. Every anomaly stays visible: a marked operation colours
its bar, and the findings list them with their op indices.

Times in the charts are seconds since the first operation of the run; the nemesis log
counts from the start of the workload, which is the same instant to within milliseconds.
"""

from __future__ import annotations

import html as html_escape
import json
import os

from .checkers import summary
from .model import FAIL, FINAL_READ, INFO, INVOKE, OK, READS, UPDATES
from .shootout import FIELDS, notes

LOST, BAD_READ = "ok, later lost", "anomalous read"
# What a timeline bar can say about its operations, mildest first, and its colour.
OUTCOME_COLOURS = {OK: "#2ca02c", FAIL: "#d62728", INFO: "#ff7f0e", LOST: "#9467bd",
                   BAD_READ: "#111111"}
SEVERITY = {outcome: rank for rank, outcome in enumerate(OUTCOME_COLOURS)}
READ_CHECKERS = ("dirty-reads", "aborted-reads", "stale-reads")
FAULT_FILL = "#9e9e9e"
MAX_FINDINGS = 25           # per checker, in the HTML: the rest are summarized as a count
MAX_BARS = 2000             # operations drawn one bar each; more are drawn as stretches
MAX_DOTS = 2000             # write latencies drawn one dot each; more are summarized
BUCKETS = 300               # slices of the run for stretches and latency summaries
WIDTH = 600                 # of one mode's column, in pixels

# Which nemesis action ends the window another one opened.
ENDED_BY = {"partition": "heal", "isolate": "heal", "kill": "restart", "power-kill": "restart",
            "pause": "resume", "fail-disk": "heal-disk"}


# -- text and JSON ----------------------------------------------------------------------

def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


TEXT_FIELDS = ("mode", "schedule", "workload")      # left-aligned; numbers right-aligned


def table(results: list[dict]) -> str:
    """A fixed-width table, one row per mode and one column per field, then the notes
    (single-node modes, unchecked columns, failed modes)."""
    rows = [[_cell(r.get(f)) for f in FIELDS] for r in results]
    widths = [max([len(f)] + [len(row[i]) for row in rows]) for i, f in enumerate(FIELDS)]

    def line(cells):
        return "  ".join(c.ljust(w) if f in TEXT_FIELDS else c.rjust(w)
                         for f, c, w in zip(FIELDS, cells, widths)).rstrip()

    lines = [line(FIELDS), line("-" * w for w in widths)] + [line(r) for r in rows]
    return "\n".join(lines + [f"note: {n}" for n in notes(results)])


def to_json(results: list[dict]) -> dict:
    """``{"runs": [...], "notes": [...]}``: each run has the fields of FIELDS, the
    ``config`` its nodes were given, and ``error`` if it failed (no history, no log)."""
    runs = []
    for r in results:
        run = {f: r.get(f) for f in FIELDS}
        run["config"] = dict(r.get("config") or {})
        if "error" in r:
            run["error"] = r["error"]
        runs.append(run)
    return {"runs": runs, "notes": notes(results)}


def recording_path(json_path: str, mode: str) -> str:
    """Where :func:`write_json` puts ``mode``'s recording: beside ``json_path``."""
    base, ext = os.path.splitext(json_path)
    return f"{base if ext == '.json' else json_path}.{mode}.recording.jsonl"


def write_json(results: list[dict], path: str) -> list[str]:
    """Write :func:`to_json` to ``path`` and each run's recording (with its history)
    beside it, named in the run's ``"recording"``; return the recordings' paths."""
    doc = to_json(results)
    written = []
    for run, result in zip(doc["runs"], results):
        if result.get("recording") is not None:
            target = result["recording"].save(recording_path(path, result["mode"]))
            run["recording"] = os.path.basename(target)
            written.append(target)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
    return written


# -- HTML -------------------------------------------------------------------------------

def fault_windows(fault_log: list[tuple[float, str]], end: float) -> list[tuple[float, float, str]]:
    """``(start, end, label)`` for every fault, from the nemesis log: a partition lasts
    until the next heal, a kill until a restart, and so on; "heal all" ends everything."""
    open_, windows = [], []
    for at, what in fault_log:
        action = what.split(" ", 1)[0]
        if what.startswith("heal all"):
            windows += [(start, at, label) for start, _, label in open_]
            open_ = []
        elif action in ENDED_BY:
            open_.append((at, ENDED_BY[action], what))
        else:
            windows += [(start, at, label) for start, closer, label in open_ if closer == action]
            open_ = [w for w in open_ if w[1] != action]
    return windows + [(start, end, label) for start, _, label in open_]


def _short(value, limit: int = 60) -> str:
    if isinstance(value, (frozenset, set)):
        text = "{" + ", ".join(sorted(map(str, value))) + "}"
    else:
        text = "" if value is None else str(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def verdicts_of(result: dict) -> dict:
    """The checkers' verdicts of a run: those the shootout kept, or computed again."""
    return result.get("verdicts") or summary(result["history"])


def marked_operations(result: dict) -> dict[int, str]:
    """Invoke index -> LOST or BAD_READ, for every operation a checker found fault with:
    the acknowledged write a lost-write finding is about, every read a read finding cites."""
    history, verdicts = result["history"], verdicts_of(result)
    marks = {}
    lost = verdicts.get("lost-writes")
    for anomaly in (lost.anomalies if lost else []):
        if anomaly["type"] == "lost-write" and anomaly["ops"]:
            marks[anomaly["ops"][0]] = LOST
    for name in READ_CHECKERS:
        for anomaly in (verdicts[name].anomalies if name in verdicts else []):
            for i in anomaly["ops"]:
                op = history[i] if 0 <= i < len(history) else None
                if op is not None and op.type == INVOKE and op.f in READS:
                    marks[i] = BAD_READ
    return marks


def _error(op) -> str:
    return (op.completion.error if op.completion else None) or ""


def _bar(op, mark: str, left: float, right: float) -> dict:
    return {"process": op.process, "left": left, "right": right, "outcome": mark,
            "counts": {mark: 1}, "what": f"{op.f} {op.key} {_short(op.value)}",
            "error": _error(op), "first": op.invoke.index, "last": op.invoke.index}


def timeline_bars(result: dict, t0: float, end: float) -> list[dict]:
    """The timeline's bars: one per operation, or past MAX_BARS one per stretch of a
    process's operations (see the module's docstring). Each bar knows its worst outcome
    and how many operations of each outcome it stands for."""
    ops = [op for op in result["history"].pairs() if op.f != FINAL_READ]
    marks = marked_operations(result)
    one_each = len(ops) <= MAX_BARS
    slice_s = max(end, 0.1) / BUCKETS
    bars, last_of = [], {}
    for op in sorted(ops, key=lambda op: (op.process, op.start)):
        mark = marks.get(op.invoke.index, op.type)
        left = op.start - t0
        done = op.completion.time - t0 if op.completion is not None else end
        right = max(done, left + 0.002)                         # visible when instant
        bar = last_of.get(op.process)
        if not one_each and bar is not None and (
                mark == bar["outcome"] or int(left / slice_s) == int(bar["left"] / slice_s)):
            bar["right"] = max(bar["right"], right)
            bar["counts"][mark] = bar["counts"].get(mark, 0) + 1
            bar["last"] = op.invoke.index
            if SEVERITY[mark] > SEVERITY[bar["outcome"]]:
                bar["outcome"], bar["error"] = mark, _error(op)
            continue
        last_of[op.process] = _bar(op, mark, left, right)
        bars.append(last_of[op.process])
    for bar in bars:
        n = sum(bar["counts"].values())
        if n > 1:
            bar["what"] = f"{n} operations: " + ", ".join(
                f"{count} {outcome}" for outcome, count in sorted(
                    bar["counts"].items(), key=lambda item: -SEVERITY[item[0]]))
    return bars


def _shade_faults(fig, windows) -> None:
    from bokeh.models import BoxAnnotation
    for start, end, _ in windows:
        fig.add_layout(BoxAnnotation(left=start, right=end, fill_color=FAULT_FILL,
                                     fill_alpha=0.25, line_alpha=0))


def _figure(title: str, height: int, **kw):
    from bokeh.plotting import figure
    fig = figure(title=title, height=height, width=WIDTH, x_axis_label="seconds",
                 tools="xpan,xwheel_zoom,reset", **kw)
    fig.toolbar.logo = None
    fig.min_border_left, fig.min_border_right = 60, 24
    return fig


def _timeline(result: dict, t0: float, end: float, windows):
    """The bars of :func:`timeline_bars`, from invoke to completion, on their process's row."""
    from bokeh.models import ColumnDataSource, HoverTool

    bars = timeline_bars(result, t0, end)
    processes = sorted({bar["process"] for bar in bars})
    data = {"process": [b["process"] for b in bars],
            "left": [round(b["left"], 4) for b in bars],
            "right": [round(b["right"], 4) for b in bars],
            "colour": [OUTCOME_COLOURS[b["outcome"]] for b in bars],
            "outcome": [b["outcome"] for b in bars],
            "what": [b["what"] for b in bars],
            "error": [b["error"] for b in bars],
            "ops": [str(b["first"]) if b["first"] == b["last"] else f"{b['first']}..{b['last']}"
                    for b in bars]}
    title = f"{result['mode']}: operations per client process"
    if sum(sum(b["counts"].values()) for b in bars) > len(bars):
        title = f"{result['mode']}: operations per process, in stretches"
    fig = _figure(title, height=min(700, 200 + 22 * max(len(processes), 4)),
                  y_axis_label="process", x_range=(0, max(end, 0.1)))
    _shade_faults(fig, windows)
    source = ColumnDataSource(data)
    drawn = fig.hbar(y="process", left="left", right="right", height=0.7, color="colour",
                     legend_field="outcome", source=source)
    fig.add_tools(HoverTool(renderers=[drawn], tooltips=[
        ("op", "@what"), ("outcome", "@outcome"), ("error", "@error"),
        ("invoke index", "@ops")]))
    fig.legend.orientation = "horizontal"
    fig.add_layout(fig.legend[0], "above")
    fig.y_range.flipped = True
    return fig


def latency_dots(result: dict, t0: float, end: float) -> dict:
    """The latency chart's data: every acknowledged update, or past MAX_DOTS the median
    and the slowest of each slice of the run."""
    ops = [op for op in result["history"].pairs() if op.f in UPDATES and op.type == OK]
    dots = [(op.start - t0, (op.end - op.start) * 1000, f"{op.f} {op.key} {_short(op.value)}")
            for op in ops]
    if len(dots) > MAX_DOTS:
        slice_s, slices = max(end, 0.1) / BUCKETS, {}
        for dot in dots:
            slices.setdefault(int(dot[0] / slice_s), []).append(dot)
        dots = []
        for group in slices.values():
            group.sort(key=lambda dot: dot[1])
            middle, slowest = group[len(group) // 2], group[-1]
            dots.append((middle[0], middle[1], f"median of {len(group)} writes"))
            if slowest is not middle:
                dots.append((slowest[0], slowest[1], f"slowest of {len(group)}: {slowest[2]}"))
    return {"t": [round(d[0], 4) for d in dots], "ms": [round(d[1], 3) for d in dots],
            "what": [d[2] for d in dots], "summarized": len(ops) > MAX_DOTS}


def _latency(result: dict, t0: float, end: float, windows, x_range):
    """Latency of acknowledged updates, at the time each was invoked."""
    from bokeh.models import ColumnDataSource, HoverTool

    data = latency_dots(result, t0, end)
    summarized = data.pop("summarized")
    title = f"{result['mode']}: latency of acknowledged writes" + (
        ", median and slowest" if summarized else "")
    fig = _figure(title, height=240, y_axis_label="ms", x_range=x_range,
                  y_axis_type="log" if data["t"] else "linear")
    _shade_faults(fig, windows)
    dots = fig.scatter("t", "ms", source=ColumnDataSource(data), size=4, alpha=0.6,
                       color="#1f77b4")
    fig.add_tools(HoverTool(renderers=[dots], tooltips=[("op", "@what"), ("ms", "@ms{0.00}")]))
    return fig


def _numbers(result: dict) -> str:
    """The run's comparable numbers as a small two-column table, under the mode's name."""
    esc = html_escape.escape
    rows = "".join(f"<tr><td>{esc(f)}</td><td style='text-align:right'>{esc(_cell(result.get(f)))}"
                   "</td></tr>" for f in FIELDS[1:])
    config = result.get("config") or {}
    given = ("<p>config: " + esc(", ".join(f"{k}={v}" for k, v in config.items())) + "</p>"
             if config else "")
    failed = (f"<p style='color:#d62728'><b>FAILED</b>: {esc(result['error'])}</p>"
              if "error" in result else "")
    return (f"<h3>{esc(result['mode'])}</h3>{failed}{given}"
            f"<table style='font-family:monospace'>{rows}</table>")


def _findings(result: dict, windows) -> str:
    """The fault windows and the checkers' findings, as an HTML fragment."""
    esc = html_escape.escape
    parts = [f"<h4>{esc(result['mode'])} -- faults</h4><ul>"]
    parts += [f"<li>{start:.2f}s - {end:.2f}s: {esc(label)}</li>" for start, end, label in windows]
    parts.append("</ul><h4>Checker findings</h4>")
    for name, verdict in verdicts_of(result).items():
        word = {True: "valid", False: "INVALID", None: "unknown"}[verdict.valid]
        parts.append(f"<p><b>{esc(name)}</b>: {word}, {verdict.count} anomal"
                     f"{'y' if verdict.count == 1 else 'ies'}</p>")
        if verdict.anomalies:
            parts.append("<ul>")
            parts += [f"<li>{esc(a['message'])} <i>(ops {esc(str(a['ops'][:8]))})</i></li>"
                      for a in verdict.anomalies[:MAX_FINDINGS]]
            if verdict.count > MAX_FINDINGS:
                parts.append(f"<li>... and {verdict.count - MAX_FINDINGS} more</li>")
            parts.append("</ul>")
    return "".join(parts)


def _jump_to_findings(result: dict, t0: float, timeline):
    """A menu of the findings; choosing one zooms the timeline onto its operations."""
    from bokeh.models import CustomJS, Select

    history = result["history"]
    options, windows = [("", "jump to a finding...")], {}
    for name, verdict in verdicts_of(result).items():
        for anomaly in verdict.anomalies[:MAX_FINDINGS]:
            times = [history[i].time - t0 for i in anomaly["ops"] if 0 <= i < len(history)]
            if not times:
                continue
            key = str(len(windows))
            windows[key] = (min(times) - 0.05, max(times) + 0.05)
            options.append((key, f"{name}: {_short(anomaly['message'], 70)}"))
    if not windows:
        return None
    menu = Select(title="Findings on the timeline", value="", options=options, width=WIDTH)
    menu.js_on_change("value", CustomJS(args=dict(r=timeline.x_range, windows=windows), code="""
        const w = windows[cb_obj.value];
        if (w) { r.start = w[0]; r.end = w[1]; }
    """))
    return menu


def _mode_column(result: dict):
    from bokeh.layouts import column
    from bokeh.models import Div

    head = Div(text=_numbers(result), width=WIDTH)
    if "error" in result:
        return column(head)
    # the timeline, the menu and the findings all read the verdicts: judge at most once
    result = {**result, "verdicts": verdicts_of(result)}
    history = result["history"]
    t0 = history.start_time()
    end = history.end_time() - t0
    windows = fault_windows(result["fault_log"], end)
    timeline = _timeline(result, t0, end, windows)
    latency = _latency(result, t0, end, windows, timeline.x_range)
    jump = _jump_to_findings(result, t0, timeline)
    replay = []
    if result.get("recording") is not None:
        from ..viz.replay_chart import static_replay
        replay = [static_replay(result["recording"], width=WIDTH)]
    return column(head, *([jump] if jump is not None else []), timeline, latency,
                  Div(text=_findings(result, windows), width=WIDTH), *replay)


def layout(results: list[dict]):
    """The Bokeh layout of the report: the notes, then one column per mode (its numbers,
    the operation timeline, the write latencies and the findings). The columns wrap onto
    the next line when the window is too narrow for all of them, instead of running off
    its edge. :func:`html` writes it to a page; in a notebook,
    ``bokeh.io.show(report.layout(results))`` displays it inline."""
    from bokeh.layouts import column, row
    from bokeh.models import Div

    columns = row(*[_mode_column(r) for r in results], sizing_mode="stretch_width",
                  styles={"flex-wrap": "wrap", "gap": "16px 32px"})
    remarks = notes(results)
    if not remarks:
        return columns
    text = "<ul>" + "".join(f"<li>{html_escape.escape(n)}</li>" for n in remarks) + "</ul>"
    return column(Div(text=text, sizing_mode="stretch_width"), columns,
                  sizing_mode="stretch_width")


def html(results: list[dict], path: str) -> str:
    """Write a self-contained HTML report (one column per mode) to ``path``; return path."""
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    title = f"Mode shootout: {results[0]['schedule']} (seed {results[0]['seed']})" \
        if results else "Mode shootout"
    page = file_html(layout(results), INLINE, title)
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path
