"""Lab 2, *Power cut*: the ``appendfsync`` that keeps every acknowledged write, and its price.

The check runs the same experiment with the learner's setting and with ``everysec``: a
fresh ``async`` node, four clients adding unique elements to sets, the power cut
mid-load (every byte not fsynced is gone), the node restarted from its AOF, everything
read back. The lost-writes checker judges each history; the write rate before the cut
is the price.
"""

from __future__ import annotations

from tqdm.auto import tqdm

from ..faults.schedule import Fault, Schedule
from . import verdicts
from .result import LabResult, not_yet
from .runs import run_schedule

CHECK = "power-cut"
SETTINGS = ("always", "everysec", "no")
DURATION, CUT_AT = 2.0, 1.2


def power_cut_schedule() -> Schedule:
    return Schedule("power cut", (Fault(CUT_AT, "power-kill", targets=("primary",)),
                                  Fault(CUT_AT + 0.2, "restart", targets=("killed",))),
                    duration=DURATION)


def check_power_cut(appendfsync, *, progress: bool = True) -> LabResult:
    """Cut the power under load with ``appendfsync`` and with ``everysec``; passed when
    the learner's setting kept every acknowledged write (and everysec, in the same
    experiment, did not: else the cut proved nothing)."""
    if appendfsync is None:
        return not_yet(CHECK, "no choice yet: set my_appendfsync to "
                              + ", ".join(repr(s) for s in SETTINGS))
    if appendfsync not in SETTINGS:
        return not_yet(CHECK, f"appendfsync is one of {', '.join(map(repr, SETTINGS))}, "
                              f"not {appendfsync!r}")
    settings = [appendfsync] + (["everysec"] if appendfsync != "everysec" else [])
    runs = {}
    for setting in tqdm(settings, desc="power cut", unit="run", disable=not progress):
        runs[setting] = run_schedule("async", power_cut_schedule(), nodes=1, seed=7,
                                     configs={"appendfsync": setting}, progress=False,
                                     label=f"appendfsync {setting}")
    facts = {setting: verdicts.power_facts(run, CUT_AT) for setting, run in runs.items()}
    result = verdicts.power_cut(appendfsync, facts[appendfsync], facts["everysec"])
    return LabResult(result.check, result.passed, result.reason, result.evidence,
                     runs=tuple(runs.values()))


def cost_figure(result: LabResult):
    """Two bars per setting: acknowledged writes per second before the cut, and the
    acknowledged writes the cut took."""
    from bokeh.layouts import row
    from bokeh.plotting import figure

    yours, everysec = result.evidence["yours"], result.evidence["everysec"]
    settings = [result.evidence["appendfsync"]] + (
        ["everysec"] if result.evidence["appendfsync"] != "everysec" else [])
    facts = [yours, everysec][:len(settings)]
    colours = ["#2ca02c" if f["lost"] == 0 else "#d62728" for f in facts]
    charts = []
    for field, title in (("writes_per_s", "Acknowledged writes/s before the cut"),
                         ("lost", "Acknowledged writes the cut took")):
        chart = figure(x_range=settings, width=380, height=240, toolbar_location=None,
                       title=title)
        values = [f[field] for f in facts]
        chart.vbar(x=settings, top=values, width=0.6, color=colours)
        chart.text(x=settings, y=values, text=[f"{v:.0f}" for v in values],
                   text_align="center", text_baseline="bottom")
        chart.y_range.start = 0
        chart.y_range.end = max(values + [1]) * 1.25     # room for the numbers on top
        chart.xgrid.grid_line_color = None
        charts.append(chart)
    return row(*charts)
