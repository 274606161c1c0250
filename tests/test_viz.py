"""The notebook viewers, driven from Python: the offset chart's data as the page sees it,
closing a cluster, and what each viewer puts on a page."""

from __future__ import annotations

import time

import pytest
from bokeh.core.serialization import Serializer
from IPython.core.interactiveshell import InteractiveShell
from IPython.display import display
from IPython.utils.capture import capture_output

import workbench as wb
from workbench import events as ev
from workbench.viz import CloseButton, ControlPanel, GatePanel, OffsetChart, UiPump, show_figure
from workbench.viz.bokehjs import LOAD_MIME_TYPE
from workbench.viz.charts import lost_writes_figure
from workbench.viz.pump import EVENTS, SNAPSHOT

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class PageMirror:
    """What jupyter_bokeh's view in the page does with a widget's Bokeh document: apply
    every change the kernel sends to the page's own copy of each data source (a patch
    at row n of a column of length n appends, as a JavaScript array does), then send
    the change back to the kernel as a "jsevent", as the view does with every change."""

    def __init__(self, widget):
        self.widget = widget
        self.columns: dict[str, dict[str, list]] = {}   # model id -> the page's columns
        self.updates = 0
        document = widget._model.document
        for model in document.models:
            if hasattr(model, "data") and hasattr(model, "stream"):
                self.columns[model.id] = {k: list(v) for k, v in model.data.items()}
        document.on_change(self._on_change)

    def _on_change(self, event) -> None:
        if event.setter is self.widget:      # the page's own echo coming in: not sent out
            return
        page = self.columns[event.model.id]
        if event.kind == "ColumnsStreamed":
            for name, values in event.data.items():
                page[name].extend(values)
        elif event.kind == "ColumnsPatched":
            for name, patches in event.patches.items():
                for row, value in patches:
                    if row == len(page[name]):
                        page[name].append(value)
                    else:
                        page[name][row] = value
        else:
            return
        self.updates += 1
        content = Serializer(references=set(self.widget._model.document.models)).encode(event)
        self.widget._sync_model(self.widget, {**content, "event": "jsevent"}, [])

    def of(self, source) -> dict[str, list]:
        return self.columns[source.id]


class FakeCluster:
    """Just the names a chart needs: it is fed through a pump, never by the cluster."""

    class _Node:
        def __init__(self, name):
            self.name = name

    def __init__(self, names=("n1", "n2", "n3")):
        self.nodes = [self._Node(n) for n in names]


def snapshot(at: float, offset: int) -> dict:
    nodes = {name: {"offset": offset} for name in ("n1", "n2", "n3")}
    return {**nodes, "_time": at, "_partition": ()}


def test_offset_chart_shades_every_partition_in_the_page():
    """Reproduction: in the tour, Partition -> Heal -> Partition -> Heal left the page's
    partition source with 2 start values and 3 end values (and the browser console with
    hundreds of "columns of inconsistent lengths" warnings): the second window was never
    shaded. The page sends every stream it applied back to the kernel, which streamed it
    a second time; the chart then took its row numbers from the doubled kernel copy and
    patched past the end of the page's. Here the page is mirrored as jupyter_bokeh's
    view behaves, and every update must leave it with one window per partition."""
    pump = UiPump()                       # outside a kernel: drains at once, on this thread
    chart = OffsetChart(FakeCluster(), pump)
    page = PageMirror(chart.widget)
    t0 = chart.started
    offset = 0

    def tick(at: float) -> None:
        nonlocal offset
        offset += 100
        pump.publish(SNAPSHOT, snapshot(t0 + at, offset))
        windows = page.of(chart.partitions)
        assert len(windows["start"]) == len(windows["end"]), windows
        lines = page.of(chart.source)
        assert len({len(column) for column in lines.values()}) == 1, lines

    at = 0.0
    for _ in range(3):
        for _ in range(3):
            at += 0.2
            tick(at)
        pump.append(EVENTS, ev.Partitioned("n1", groups=(("n1",), ("n2", "n3")), time=t0 + at))
        for _ in range(5):
            at += 0.2
            tick(at)
        pump.append(EVENTS, ev.Healed("n1", time=t0 + at))
        for _ in range(3):
            at += 0.2
            tick(at)

    windows = page.of(chart.partitions)
    assert len(windows["start"]) == len(windows["end"]) == 3, windows
    assert all(start < end for start, end in zip(windows["start"], windows["end"])), windows
    assert windows == {k: list(v) for k, v in chart.partitions.data.items()}
    assert page.updates > 40


def test_closing_a_cluster_is_not_a_crash():
    """Reproduction: closing the tour's cluster logged three "nK crashed (killed)" events
    (and drew three overlapping crash labels on the chart). Closing publishes one
    ClusterClosed, the last event a subscriber gets, and no NodeKilled."""
    cluster = wb.Cluster(mode="async", nodes=3, down_after_ms=1000)
    seen = []
    cluster.events.subscribe(seen.append)
    cluster.nodes[1].kill()                           # a real crash, for contrast
    cluster.close()           # returns once every subscriber has had what was published

    kinds = [event.kind for event in seen]
    assert kinds.count("NodeKilled") == 1 and seen[kinds.index("NodeKilled")].node == "n2"
    assert kinds[-1] == "ClusterClosed", kinds
    assert seen[-1].nodes == ("n1", "n2", "n3")


def test_viewers_of_a_closed_cluster_say_so_and_turn_off():
    """Reproduction: after Run All the tour's last cell had closed the cluster, yet every
    button stayed live and only answered "kill n1: the cluster is closed" after a click;
    the log showed the closing as crashes; the gate panel's Pause button showed a raw
    "Error 111 connecting to 127.0.0.1:...". Now the CloseButton (or cluster.close())
    turns every control off and every viewer says plainly that the cluster is closed."""
    cluster = wb.Cluster(mode="aof")
    try:
        pump = UiPump.for_cluster(cluster)
        panel, chart = ControlPanel(cluster, pump), OffsetChart(cluster, pump)
        gate = GatePanel(cluster, pump=pump)
        done = CloseButton(cluster, pump)
        deadline = time.monotonic() + 5
        while panel.cards["n1"].status.value != "primary":
            assert time.monotonic() < deadline, "no snapshot reached the panel"
            pump.sample_now()
            time.sleep(0.02)
        assert not panel.cards["n1"].kill.disabled and not gate.pause.disabled

        done.click()
    finally:
        cluster.close()

    card = panel.cards["n1"]
    assert card.status.value == "CLOSED"
    assert card.kill.disabled and card.power_kill.disabled and card.restart.disabled
    assert all(button.disabled for button in panel.cluster_buttons)
    assert "cluster is closed" in panel.network.value
    log = "\n".join(panel.log_lines)
    assert "cluster closed: n1 shut down on purpose (not a crash)" in log
    assert "crashed" not in log
    assert done.disabled and done.description == "The cluster is closed"

    assert list(chart.marks["crash"].data["text"]) == []
    assert list(chart.marks["closed"].data["text"]) == ["cluster closed"]

    assert gate.pause.disabled and "cluster is closed" in gate.status.value
    gate.pause.disabled = False          # a click that raced the close
    gate.pause.value = True
    assert "cluster is closed" in gate.status.value and "Error" not in gate.status.value

    panel.act("kill n1", cluster.nodes[0].kill)
    assert panel.log_lines[-1].endswith("kill n1: the cluster is closed: its nodes are "
                                        "stopped, so the buttons are off")


@pytest.fixture
def shell():
    return InteractiveShell.instance()


def displayed(shell, show) -> list[dict]:
    with capture_output() as captured:
        show()
    return [output.data for output in captured.outputs]


def test_every_chart_brings_bokehjs_before_it(shell):
    """Reproduction: after a browser refresh with the kernel still running, running the
    chart cell again failed with "Failed to create view for 'BokehView' ... reading
    'require'": the Bokeh widget needs BokehJS in the page, and only the output of the
    notebook's output_notebook() cell had put it there. Every viewer that draws with
    Bokeh now displays the BokehJS load right before its widget."""
    cluster = wb.Cluster(mode="aof")
    try:
        pump = UiPump.for_cluster(cluster)
        viewers = {
            "offset chart": lambda: display(OffsetChart(cluster, pump)),
            "gate panel": lambda: display(GatePanel(cluster, pump=pump)),
            "a static figure": lambda: show_figure(lost_writes_figure(10, 7)),
        }
        for name, show in viewers.items():
            outputs = displayed(shell, show)
            assert [LOAD_MIME_TYPE in data for data in outputs] == [True, False], name
            assert WIDGET_VIEW in outputs[1], name
            load = outputs[0][LOAD_MIME_TYPE]
            assert load.startswith("if (window.Bokeh === undefined") and len(load) > 10**6
    finally:
        cluster.close()
