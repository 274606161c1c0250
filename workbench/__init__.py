"""The Durability Workbench: real Valkey-style nodes to learn how acknowledged writes survive.

    import workbench as wb
    with wb.Cluster(mode="async", nodes=3) as c:
        c.client().set("k", "v")
"""

from . import events
from .cluster import Cluster
from .node import Node

__version__ = "0.1.0"
__all__ = ["Cluster", "Node", "events", "__version__"]
