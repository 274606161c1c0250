"""Widgets and live charts for notebooks: watch a cluster, and break it with a click.

    import workbench as wb
    from workbench import viz

    cluster = wb.Cluster(mode="async", nodes=3)
    panel, chart = viz.show(cluster)
    viz.show_figure(viz.lost_writes_figure(20, 12))   # any Bokeh figure, drawn once
    viz.CloseButton(cluster)                          # shut down when the reader is done

    sync = wb.Cluster(mode="sync", nodes=3)
    viz.SyncPanel(sync)          # who the primary waits for, acked offsets, held replies

    shard = wb.Cluster(mode="raft", nodes=3)
    viz.RaftPanel(shard)         # roles, terms, commit indexes, elections, membership
    viz.LiveRaftScope(shard)     # the same shard as a ring of servers, with its logs

    from workbench.raft.sim import Simulation
    viz.RaftScope(Simulation(5)) # the simulator, drawn and driven: stop, time out, 0.1x-10x

    viz.SwitchboardPanel()       # one workload; async, WAIT, aof, sync, raft side by side

    viz.Replay(cluster.recording)   # a recorded run (Cluster(record=True)) with a time slider
    viz.LiveView("raft", ["n1", "n2", "n3"]).feed   # the same panel, fed events from anywhere

Node threads never touch a widget: everything they produce reaches the screen through
one :class:`UiPump` per cluster (see :mod:`workbench.viz.pump`). Every chart brings
BokehJS along (see :mod:`workbench.viz.bokehjs`): no ``output_notebook()`` cell needed.
"""

from .bokehjs import ChartWidget, show_figure
from .charts import OffsetChart, lost_writes_figure, node_colour
from .gate import GatePanel
from .live_view import LiveView
from .panel import CloseButton, ControlPanel
from .pump import UiPump
from .raft_live import RaftPanel
from .raft_scope import RaftScope
from .raft_scope_live import LiveRaftScope
from .replay import Replay
from .switchboard import SwitchboardPanel, in_dashboard
from .sync import SyncPanel


def show(cluster):
    """Display the control panel and the offset chart of ``cluster``; return both."""
    from IPython.display import display

    pump = UiPump.for_cluster(cluster)
    panel = ControlPanel(cluster, pump)
    chart = OffsetChart(cluster, pump)
    display(panel)
    display(chart)
    return panel, chart


__all__ = ["ChartWidget", "CloseButton", "ControlPanel", "GatePanel", "LiveRaftScope", "LiveView",
           "OffsetChart", "RaftPanel", "RaftScope", "Replay", "SwitchboardPanel", "SyncPanel",
           "UiPump", "in_dashboard", "lost_writes_figure", "node_colour", "show", "show_figure"]
