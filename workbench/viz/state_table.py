"""A cluster state in words: the cells of the node table and the summary line.

Shared by every view of a :class:`~workbench.clusterstate.ClusterState` (``as_dict()``
form): the replay and live view's table (:mod:`workbench.viz.cluster_view`) and the
static replay of the shootout's report (:mod:`workbench.viz.replay_chart`), which renders
the same cells in the page. Pure: no widgets, no Bokeh.
"""

from __future__ import annotations

from ..clusterstate import POWER_LOSS

COLUMNS = (
    ("node", "the node's name"),
    ("status", "running, or how it went down"),
    ("role", "primary / replica; in raft also leader, follower, candidate, learner"),
    ("progress", "replication offset (raft: commit index) after its last change"),
    ("committed", "committed offset: the commit gate acknowledges writes up to it"),
    ("held", "replies the commit gate holds until the write is durable"),
    ("uncommitted", "keys whose last change is not yet committed (reads of them wait)"),
    ("detail", "link, acknowledged offsets, eligibility, fsynced offset"),
)


def _text(value) -> str:
    return "–" if value is None else str(value)


def node_row(state: dict, name: str) -> dict[str, str]:
    """One node of ``state`` (an ``as_dict()``) as the table's cells, in words."""
    node = state["nodes"][name]
    raft = state.get("mode") == "raft" or node.get("raft_role") is not None
    if node["alive"]:
        status = "running"
    else:
        status = node["down"] or "not started"
        if node["down"] == POWER_LOSS and node.get("lost_bytes"):
            status += f" ({node['lost_bytes']} bytes lost)"
    role = node["role"] or "–"
    if raft and node["raft_role"]:
        role = f"{node['raft_role']}, term {node['term']}"
    if not node["alive"]:
        role = "–"
    elif name == state.get("primary") and not raft:
        role = "primary (serves writes)"
    progress = node["commit_index"] if raft else node["offset"]
    committed = node["committed_offset"]
    detail = []
    if node["alive"]:
        if raft and node["leader"] and node["leader"] != name:
            detail.append(f"follows {node['leader']}")
        elif node["primary"]:
            detail.append(f"{node['link'] or 'replica'} to {node['primary']}")
        if node["acked"]:
            detail.append("acked " + ", ".join(f"{r}@{o}" for r, o in sorted(node["acked"].items())))
        if node["eligible_replicas"]:
            detail.append("waits for " + ", ".join(node["eligible_replicas"]))
        elif node["eligible"] is not None and node["role"] == "replica":
            detail.append("eligible" if node["eligible"] else "ineligible")
        if node["fsynced_offset"] is not None and not raft:
            detail.append(f"fsynced {node['fsynced_offset']}")
        if name in state.get("disk_faults", {}):
            detail.append("DISK FAILING")
    return {"node": name, "status": status, "role": role, "progress": _text(progress),
            "committed": _text(committed) if node["alive"] else "–",
            "held": str(node["held_replies"]) if node["alive"] else "–",
            "uncommitted": str(node["uncommitted_keys"]) if node["alive"] else "–",
            "detail": "; ".join(detail) or "–"}


def progress_of(state: dict, name: str) -> float | None:
    """What the chart draws for a node: its offset, or in ``raft`` its commit index
    (``None`` while it is down: the line breaks)."""
    node = state["nodes"].get(name)
    if node is None or not node["alive"]:
        return None
    raft = state.get("mode") == "raft" or node.get("raft_role") is not None
    return node["commit_index"] if raft else node["offset"]


def summary(state: dict) -> str:
    """One line: who serves writes, and the faults in force."""
    primary = state.get("primary")
    word = "leader" if state.get("mode") == "raft" else "primary"
    head = f"{word}: {primary}" if primary else f"no {word} serving writes"
    if state.get("closed"):
        head = "cluster closed"
    faults = state.get("faults") or []
    return head + ("; faults: " + "; ".join(faults) if faults else "; no faults in force")
