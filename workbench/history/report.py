"""Reports of a mode shootout: a text table, JSON, and a self-contained HTML page.

* :func:`table`   -- one row per mode, the comparable numbers side by side (a terminal);
* :func:`to_json` -- ``{"runs": [...]}`` with exactly the fields of :data:`FIELDS`;
* :func:`html`    -- one column per mode: a timeline of every client operation (one row
  per client process, coloured by outcome) with the fault windows shaded, the latency of
  every acknowledged write over time, and the checkers' findings with the op indices to
  look up in the history. Bokeh's JavaScript is inlined, so the file opens offline.
* :func:`layout`  -- the same columns as a Bokeh layout, for ``bokeh.io.show`` in a
  notebook (``notebooks/05-shootout.ipynb``).

Times in the charts are seconds since the first operation of the run; the nemesis log
counts from the start of the workload, which is the same instant to within milliseconds.
"""

from __future__ import annotations

import html as html_escape

from .checkers import summary
from .model import FAIL, FINAL_READ, INFO, OK, UPDATES
from .shootout import FIELDS

OUTCOME_COLOURS = {OK: "#2ca02c", FAIL: "#d62728", INFO: "#ff7f0e"}
FAULT_FILL = "#9e9e9e"
MAX_FINDINGS = 25           # per checker, in the HTML: the rest are summarized as a count

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


def table(results: list[dict]) -> str:
    """A fixed-width table: one row per mode, one column per field."""
    rows = [[_cell(r.get(f)) for f in FIELDS] for r in results]
    widths = [max([len(f)] + [len(row[i]) for row in rows]) for i, f in enumerate(FIELDS)]

    def line(cells):
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(FIELDS), line("-" * w for w in widths)] + [line(r) for r in rows])


def to_json(results: list[dict]) -> dict:
    """``{"runs": [...]}``, each run exactly the fields of FIELDS (no history, no log)."""
    return {"runs": [{f: r.get(f) for f in FIELDS} for r in results]}


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


def _shade_faults(fig, windows) -> None:
    from bokeh.models import BoxAnnotation
    for start, end, _ in windows:
        fig.add_layout(BoxAnnotation(left=start, right=end, fill_color=FAULT_FILL,
                                     fill_alpha=0.25, line_alpha=0))


def _timeline(result: dict, t0: float, end: float, windows):
    """One bar per operation, from invoke to completion, on its client process's row."""
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.plotting import figure

    data = {k: [] for k in ("process", "left", "right", "colour", "outcome", "f", "key",
                            "value", "error", "index")}
    for op in result["history"].pairs():
        if op.f == FINAL_READ:
            continue
        done = op.completion.time if op.completion is not None else end + t0
        data["process"].append(op.process)
        data["left"].append(op.start - t0)
        data["right"].append(max(done - t0, op.start - t0 + 0.002))   # visible when instant
        data["colour"].append(OUTCOME_COLOURS[op.type])
        data["outcome"].append(op.type)
        data["f"].append(op.f)
        data["key"].append(op.key)
        data["value"].append(_short(op.value))
        data["error"].append((op.completion.error if op.completion else None) or "")
        data["index"].append(str(op.indices))
    fig = figure(title=f"{result['mode']}: operations per client process", height=320,
                 width=560, x_axis_label="seconds", y_axis_label="process",
                 x_range=(0, max(end, 0.1)), tools="xpan,xwheel_zoom,reset")
    _shade_faults(fig, windows)
    source = ColumnDataSource(data)
    bars = fig.hbar(y="process", left="left", right="right", height=0.7, color="colour",
                    legend_field="outcome", source=source)
    fig.add_tools(HoverTool(renderers=[bars], tooltips=[
        ("op", "@f @key"), ("value", "@value"), ("outcome", "@outcome"), ("error", "@error"),
        ("indices", "@index")]))
    fig.legend.orientation = "horizontal"
    fig.add_layout(fig.legend[0], "above")
    fig.y_range.flipped = True
    return fig


def _latency(result: dict, t0: float, end: float, windows, x_range):
    """Latency of every acknowledged update, at the time it was invoked."""
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.plotting import figure

    ops = [op for op in result["history"].pairs() if op.f in UPDATES and op.type == OK]
    source = ColumnDataSource({"t": [op.start - t0 for op in ops],
                               "ms": [(op.end - op.start) * 1000 for op in ops],
                               "what": [f"{op.f} {op.key} {_short(op.value)}" for op in ops]})
    fig = figure(title=f"{result['mode']}: latency of acknowledged writes", height=220,
                 width=560, x_axis_label="seconds", y_axis_label="ms", x_range=x_range,
                 y_axis_type="log" if ops else "linear", tools="xpan,xwheel_zoom,reset")
    _shade_faults(fig, windows)
    dots = fig.scatter("t", "ms", source=source, size=4, alpha=0.6, color="#1f77b4")
    fig.add_tools(HoverTool(renderers=[dots], tooltips=[("op", "@what"), ("ms", "@ms{0.00}")]))
    return fig


def _numbers(result: dict) -> str:
    """The run's comparable numbers as a small two-column table, under the mode's name."""
    esc = html_escape.escape
    rows = "".join(f"<tr><td>{esc(f)}</td><td style='text-align:right'>{esc(_cell(result.get(f)))}"
                   "</td></tr>" for f in FIELDS[1:])
    return f"<h3>{esc(result['mode'])}</h3><table style='font-family:monospace'>{rows}</table>"


def _findings(result: dict, windows) -> str:
    """The fault windows and the checkers' findings, as an HTML fragment."""
    esc = html_escape.escape
    parts = [f"<h4>{esc(result['mode'])} -- faults</h4><ul>"]
    parts += [f"<li>{start:.2f}s - {end:.2f}s: {esc(label)}</li>" for start, end, label in windows]
    parts.append("</ul><h4>Checker findings</h4>")
    for name, verdict in summary(result["history"]).items():
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
    for name, verdict in summary(history).items():
        for anomaly in verdict.anomalies[:MAX_FINDINGS]:
            times = [history[i].time - t0 for i in anomaly["ops"] if 0 <= i < len(history)]
            if not times:
                continue
            key = str(len(windows))
            windows[key] = (min(times) - 0.05, max(times) + 0.05)
            options.append((key, f"{name}: {_short(anomaly['message'], 70)}"))
    if not windows:
        return None
    menu = Select(title="Findings on the timeline", value="", options=options, width=560)
    menu.js_on_change("value", CustomJS(args=dict(r=timeline.x_range, windows=windows), code="""
        const w = windows[cb_obj.value];
        if (w) { r.start = w[0]; r.end = w[1]; }
    """))
    return menu


def layout(results: list[dict]):
    """The Bokeh layout of the report: one column per mode (its numbers, the operation
    timeline, the write latencies and the findings). :func:`html` writes it to a page; in
    a notebook, ``bokeh.io.show(report.layout(results))`` displays it inline."""
    from bokeh.layouts import column, row
    from bokeh.models import Div

    columns = []
    for result in results:
        history = result["history"]
        t0 = history.start_time()
        end = history.end_time() - t0
        windows = fault_windows(result["fault_log"], end)
        timeline = _timeline(result, t0, end, windows)
        latency = _latency(result, t0, end, windows, timeline.x_range)
        head = Div(text=_numbers(result), width=560)
        jump = _jump_to_findings(result, t0, timeline)
        parts = [head] + ([jump] if jump is not None else []) + [timeline, latency,
                                                                  Div(text=_findings(result, windows), width=560)]
        columns.append(column(*parts))
    return row(*columns)


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
