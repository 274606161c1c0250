"""Widgets and live charts for notebooks: watch a cluster, and break it with a click.

    import workbench as wb
    from workbench import viz

    cluster = wb.Cluster(mode="async", nodes=3)
    panel, chart = viz.show(cluster)

Node threads never touch a widget: everything they produce reaches the screen through
one :class:`UiPump` per cluster (see :mod:`workbench.viz.pump`).
"""

from .charts import OffsetChart, lost_writes_figure, node_colour
from .gate import GatePanel
from .panel import ControlPanel
from .pump import UiPump


def show(cluster):
    """Display the control panel and the offset chart of ``cluster``; return both."""
    from IPython.display import display

    pump = UiPump.for_cluster(cluster)
    panel = ControlPanel(cluster, pump)
    chart = OffsetChart(cluster, pump)
    display(panel, chart.widget)
    return panel, chart


__all__ = ["ControlPanel", "GatePanel", "OffsetChart", "UiPump", "lost_writes_figure", "node_colour",
           "show"]
