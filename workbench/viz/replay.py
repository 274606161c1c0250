"""Time travel through a recorded run: a slider, play / pause at 1x, 4x or 16x, and the
cluster as it was at that instant.

    rec = cluster.recording                   # Cluster(record=True), on in notebooks
    viz.Replay(rec)                           # or a saved file: viz.Replay("run.jsonl")
    viz.Replay(rec, history=recorder.history) # and the clients' operations up to t

At each instant it shows who served writes and the faults in force (partitions, one-way
cuts, crashed nodes, failing disks), a row per node -- running or down, its role (and
Raft term), its offset or commit index, the committed offset, held replies, uncommitted
keys, its link, acknowledgements and eligibility -- and the chart of every node's
progress with the fault windows shaded and a cursor at the instant; with a history,
the operations invoked so far and how each had ended by then. Everything comes from the
recording: no cluster needs to be running (RaftScope's slider, for every mode).

The recording is cut into at most ``max_steps`` instants and the state at each is
folded once when the replay opens; moving the slider only redraws.
"""

from __future__ import annotations

import bisect
import html
import os

import ipywidgets as widgets

from ..recording import Recording
from .bokehjs import display_with_bokehjs
from .cluster_view import ClusterView
from .replay_chart import (SPEEDS, OpsIndex, history_rows, marks, node_names, ops_text,
                           play_pace, step_times)

MAX_STEPS = 600


def as_recording(source) -> Recording:
    """A :class:`Recording` from a recording, a saved file's path, or a list of events."""
    if isinstance(source, Recording):
        return source
    if isinstance(source, (str, os.PathLike)):
        return Recording.load(source)
    try:
        events = list(source)
    except TypeError:
        raise TypeError(f"Replay takes a Recording, a path or a list of events, not "
                        f"{type(source).__name__}") from None
    return Recording.from_events(events)


class Replay(widgets.VBox):
    """A recorded run, replayed with a time slider (see the module's docstring).

    ``slider`` is the instant (a step index), ``play`` the play button, ``speed`` the
    1x / 4x / 16x toggle, ``view`` the node table and chart, ``ops`` the operations.
    """

    def __init__(self, source, history=None, *, max_steps: int = MAX_STEPS,
                 width: int = 760):
        self.recording = recording = as_recording(source)
        self.history = history if history is not None else recording.history
        self.start, self.end = recording.start_time(), recording.end_time()
        self.times, self.step_s = step_times(self.start, self.end, max_steps)
        self.states = recording.states(self.times)
        for state in self.states:            # the per-key detail is not drawn: keep it small
            for node in state["nodes"].values():
                node.pop("dirty", None)
        self.view = ClusterView(node_names(self.states), recording.mode, width=width)
        self.view.chart.set_series(self.times, self.states, self.start)
        self.view.chart.set_windows(recording.fault_windows(), self.start)
        self.view.chart.set_marks(marks(recording.entries, self.start))

        last = len(self.times) - 1
        self.slider = widgets.IntSlider(value=last, min=0, max=last, step=1,
                                        readout=False, description="instant",
                                        layout=widgets.Layout(width=f"{max(300, width - 330)}px"))
        self.slider.add_class("wb-replay-slider")
        self.play = widgets.Play(value=last, min=0, max=last, step=1, interval=100,
                                 description="play")
        self.play.add_class("wb-replay-play")
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.speed = widgets.ToggleButtons(options=[f"{s}x" for s in SPEEDS], value="1x",
                                           style={"button_width": "3.2em"})
        self.speed.add_class("wb-replay-speed")
        self.clock = widgets.Label("")
        self.clock.add_class("wb-replay-time")
        self.ops = widgets.HTML("")
        self.ops.add_class("wb-replay-ops")
        self._ops_index = (OpsIndex(history_rows(self.history, recording.clock_offset))
                           if self.history is not None else None)
        title = widgets.HTML(f"<b>Replay of a {recording.mode or ''} recording</b> "
                             f"<span style='color:#666'>{self._about()}</span>")
        controls = widgets.HBox([self.play, self.speed, self.slider, self.clock],
                                layout=widgets.Layout(align_items="center"))
        super().__init__([title, controls, self.view, self.ops],
                         layout=widgets.Layout(border="1px solid #ccc", padding="6px"))
        self.add_class("wb-replay")
        self.slider.observe(lambda change: self.show(change["new"]), "value")
        self.speed.observe(lambda change: self._pace(), "value")
        self._pace()
        self.show(last)

    def _about(self) -> str:
        r = self.recording
        parts = [f"{self.end - self.start:.1f} s", f"{len(r)} entries"]
        if r.coalesced:
            parts.append(f"{r.coalesced} busy events sampled")
        if r.dropped:
            parts.append(f"the oldest {r.dropped} dropped (folded into the first state)")
        return ", ".join(parts)

    def _pace(self) -> None:
        interval, steps = play_pace(int(self.speed.value.rstrip("x")), self.step_s)
        self.play.interval, self.play.step = interval, steps

    # -- what the slider shows -------------------------------------------------------------
    def seconds(self, step: int) -> float:
        """The instant of ``step``, in seconds since the recording started."""
        return self.times[step] - self.start

    def step_at(self, seconds: float) -> int:
        """The last step at or before ``seconds`` since the start."""
        return max(0, bisect.bisect_right(self.times, self.start + seconds + 1e-9) - 1)

    def show(self, step: int) -> None:
        """Draw the cluster at ``step`` (what moving the slider does)."""
        step = min(max(0, int(step)), len(self.times) - 1)
        state = self.states[step]
        self.view.show(state)
        self.view.chart.set_cursor(self.seconds(step))
        self.clock.value = f"t = {self.seconds(step):.2f} s of {self.end - self.start:.2f} s"
        if self._ops_index is not None:
            self.ops.value = self._render_ops(self._ops_index.at(self.times[step]))

    @property
    def state(self) -> dict:
        """The state drawn now."""
        return self.view.state

    def _render_ops(self, counts: dict) -> str:
        rows = "".join(
            f"<tr><td>{op['at'] - self.start:.3f}</td><td>{op['process']}</td>"
            f"<td>{html.escape(op['what'])}</td><td>{op['outcome']}</td></tr>"
            for op in counts["recent"])
        return ("<div style='font-family:monospace;font-size:12px'>"
                f"<b>clients: {html.escape(ops_text(counts))}</b>"
                "<table><tr><th>t (s)</th><th>process</th><th>operation</th>"
                f"<th>outcome by then</th></tr>{rows}</table></div>")

    def _ipython_display_(self, **kwargs) -> None:
        display_with_bokehjs(self)
