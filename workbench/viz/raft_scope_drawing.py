"""What a Raft scope draws, and the drawing: a ring of servers, messages on the wire, logs.

In the manner of RaftScope (raft.github.io): the servers sit in a ring, coloured by role
and showing their term; an arc around a follower or candidate is its election timer (the
part still to run); a message is a dot moving along the link from its sender to its
receiver; below, each server's log is a row of cells coloured by term, faded where the
server does not know the entry to be committed, and a black bar marks its commit index.

Two steps, so that each can be tested on its own:

* a **scene** is plain data (nodes, messages with how far along their link they are, cut
  links). :func:`sim_scene` takes one from a :class:`~workbench.raft.sim.Simulation`;
  :func:`live_scene` from a live cluster's ``raft_state()``. Both are pure functions.
* :class:`ScopeDrawing` turns scenes into a Bokeh picture. Every frame replaces the data
  of a few sources; the picture is drawn by the kernel only, so the page never changes
  it (:class:`ScopeChart` ignores what the page sends back).
"""

from __future__ import annotations

import math

from bokeh.layouts import row
from bokeh.models import (ColumnDataSource, FixedTicker, HoverTool, Range1d,
                          SingleIntervalTicker, TapTool)
from bokeh.palettes import Category20_20
from bokeh.plotting import figure

from ..raft.messages import (AppendEntries, AppendResponse, InstallSnapshot, TimeoutNow,
                             VoteRequest, VoteResponse)
from .bokehjs import ChartWidget
from .charts import node_colour
from .raft_chart import ROLE_FILL
from .raft_timeline import DOWN

LOG_WINDOW = 20               # log indexes shown: the newest ones across the nodes
TIMER_COLOUR = "#525252"
CUT_COLOUR = "#d62728"
LINK_COLOUR = "#d9d9d9"
# Light colours, one per term (they repeat after ten terms): black text stays readable.
TERM_COLOURS = Category20_20[1::2]
# Message styles: (colour, size in screen pixels). Requests are bigger than answers.
REQUEST, ANSWER, HEARTBEAT = 15, 10, 10
VOTE, PRE_VOTE, GRANTED, REFUSED = "#ff7f0e", "#fdae6b", "#2ca02c", "#d62728"
APPEND, HEARTBEAT_COLOUR, STORED = "#1f77b4", "#9ecae1", "#17becf"
SNAPSHOT, TRANSFER = "#9467bd", "#8c564b"


def term_colour(term: int) -> str:
    return TERM_COLOURS[term % len(TERM_COLOURS)]


def describe_message(message) -> tuple[str, str, int]:
    """What a message says, in a few words, with its dot's colour and size."""
    m = message
    if isinstance(m, VoteRequest):
        what = "pre-vote request" if m.pre_vote else "vote request"
        return (f"{what} for term {m.term}, log ends at {m.last_log_index} (term "
                f"{m.last_log_term})", PRE_VOTE if m.pre_vote else VOTE, REQUEST)
    if isinstance(m, VoteResponse):
        what = "pre-vote" if m.pre_vote else "vote"
        if m.granted:
            return f"{what} granted for term {m.term}", GRANTED, ANSWER
        return f"{what} refused (voter in term {m.term})", REFUSED, ANSWER
    if isinstance(m, AppendEntries):
        if not m.entries:
            return (f"heartbeat, term {m.term}, commit {m.leader_commit}", HEARTBEAT_COLOUR,
                    HEARTBEAT)
        first, last = m.entries[0].index, m.entries[-1].index
        span = f"entry {first}" if first == last else f"entries {first}-{last}"
        return (f"append {span} after {m.prev_log_index} (term {m.prev_log_term}), commit "
                f"{m.leader_commit}", APPEND, REQUEST)
    if isinstance(m, AppendResponse):
        if m.success:
            return f"stored up to {m.match_index}", STORED, ANSWER
        return f"rejected: no match at {m.rejected_index}", REFUSED, ANSWER
    if isinstance(m, InstallSnapshot):
        return f"snapshot up to {m.snapshot.meta.index}", SNAPSHOT, REQUEST
    if isinstance(m, TimeoutNow):
        return "time out now (leadership transfer)", TRANSFER, REQUEST
    return type(m).__name__, TIMER_COLOUR, ANSWER


# -- scenes (pure) --------------------------------------------------------------------------
def sim_scene(sim, *, log_tail: int = LOG_WINDOW) -> dict:
    """The scene of a simulation now: every node (:meth:`Simulation.node_view`, with its
    election timer as the fraction still to run), every message on the wire with how far
    along its link it is, and the links that are cut."""
    now = sim.now_ms
    nodes = []
    for node_id in sorted(sim.nodes):
        view = sim.node_view(node_id, log_tail=log_tail)
        timer = view.pop("timer")
        view["timer"] = None if timer is None else max(0.0, 1 - timer[0] / timer[1])
        view["timer_ms"] = None if timer is None else (timer[1] - timer[0]) * sim.tick_ms
        nodes.append(view)
    messages = []
    for flight in sim.in_flight():
        text, colour, size = describe_message(flight.message)
        span = flight.deliver_ms - flight.sent_ms
        messages.append({"src": flight.message.src, "dst": flight.message.dst, "text": text,
                         "colour": colour, "size": size, "lost": flight.lost,
                         "progress": 1.0 if span <= 0 else min(1.0, (now - flight.sent_ms) / span),
                         "when": f"sent at {flight.sent_ms} ms, due at {flight.deliver_ms} ms"})
    return {"t_ms": now, "nodes": nodes, "messages": messages, "cut": sorted(sim.blocked)}


def live_scene(nodes: dict, flights: list[dict], cut: set, now: float) -> dict:
    """The scene of a live shard: ``nodes`` as ``cluster.raft_state()`` reports them,
    ``flights`` the messages a viewer inferred (``src``, ``dst``, ``text``, ``colour``,
    ``size``, ``start`` and ``end`` in seconds), ``cut`` the directed links cut. A live
    node's election timer is not reported, so none is drawn."""
    out = []
    for name, node in nodes.items():
        if not node.get("alive"):
            out.append({"id": name, "alive": False, "role": DOWN, "term": None,
                        "voted_for": None, "leader": None, "commit_index": None,
                        "applied_index": None, "last_index": None, "log": [],
                        "timer": None, "timer_ms": None, "cut_off": False})
            continue
        out.append({"id": name, "alive": True, "role": node["role"], "term": node["term"],
                    "voted_for": None, "leader": node["leader"],
                    "commit_index": node["commit_index"], "applied_index": node["applied_index"],
                    "last_index": node["last_index"], "log": list(node.get("log_terms", ())),
                    "timer": None, "timer_ms": None, "cut_off": False})
    messages = []
    for flight in flights:
        if flight["src"] not in nodes or flight["dst"] not in nodes:
            continue
        span = flight["end"] - flight["start"]
        messages.append({**flight, "lost": (flight["src"], flight["dst"]) in cut,
                         "progress": min(1.0, max(0.0, (now - flight["start"]) / span)),
                         "when": "inferred from the shard's state"})
    return {"t_ms": None, "nodes": out, "messages": messages, "cut": sorted(cut)}


# -- geometry -------------------------------------------------------------------------------
def ring_positions(ids: list[str]) -> dict[str, tuple[float, float]]:
    """The first node at the top, the others clockwise around a circle of radius 1."""
    count = max(1, len(ids))
    return {node_id: (math.cos(math.pi / 2 - 2 * math.pi * i / count),
                      math.sin(math.pi / 2 - 2 * math.pi * i / count))
            for i, node_id in enumerate(ids)}


def node_radius(count: int) -> float:
    return 0.2 if count <= 5 else 0.15


def along(a: tuple, b: tuple, progress: float, radius: float) -> tuple[float, float]:
    """A point ``progress`` of the way from the rim of node ``a`` to the rim of ``b``,
    moved a little to the right of the direction of travel, so that a request and its
    answer on one link do not hide each other."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    length = math.hypot(dx, dy) or 1.0
    ux, uy = dx / length, dy / length
    start = (a[0] + ux * radius, a[1] + uy * radius)
    travel = length - 2 * radius
    side = 0.045
    return (start[0] + ux * travel * progress + uy * side,
            start[1] + uy * travel * progress - ux * side)


# -- the drawing ----------------------------------------------------------------------------
class ScopeChart(ChartWidget):
    """The scope's Bokeh widget. The kernel draws every change, and the page sends each one
    back: those echoes are ignored. The one thing the page itself changes is a selection
    (a click on a server), and that goes through."""

    _gone = False

    def _sync_model(self, model, content, buffers) -> None:
        if content.get("kind") == "ModelChanged" and content.get("attr") == "indices":
            super()._sync_model(model, content, buffers)

    def close(self) -> None:
        # BokehModel.close fails the second time (the scope closes its picture, then
        # garbage collection closes it again).
        if not self._gone:
            self._gone = True
            super().close()


class ScopeDrawing:
    """The ring and the logs, redrawn from each scene by :meth:`draw`.

    ``sources`` holds the data behind each part (``links``, ``cut_links``, ``timers``,
    ``nodes``, ``messages``, ``cells``, ``commits``): tests read them.
    """

    def __init__(self, *, log_window: int = LOG_WINDOW, size: int = 370, log_width: int = 470):
        self.log_window = log_window
        self.sources = {name: ColumnDataSource(data) for name, data in {
            "links": {"x0": [], "y0": [], "x1": [], "y1": []},
            "cut_links": {"x0": [], "y0": [], "x1": [], "y1": [], "what": []},
            "timers": {"x": [], "y": [], "r0": [], "r1": [], "start": [], "end": []},
            "nodes": {"x": [], "y": [], "r": [], "id": [], "fill": [], "line": [],
                      "role": [], "term": [], "label": [], "under": [], "detail": []},
            "selected": {"x": [], "y": [], "r": []},
            "messages": {"x": [], "y": [], "colour": [], "size": [], "alpha": [],
                         "text": [], "route": [], "when": []},
            "cells": {"x": [], "y": [], "fill": [], "alpha": [], "line": [], "text": [],
                      "node": [], "what": []},
            "commits": {"x": [], "y0": [], "y1": [], "node": [], "commit": []},
        }.items()}
        self.ring = self._ring(size)
        self.logs = self._logs(log_width, size)
        self.layout = row(self.ring, self.logs)
        self.widget = ScopeChart(self.layout)
        self.widget.add_class("wb-scope-chart")

    def _ring(self, size: int):
        fig = figure(width=size, height=size, x_range=Range1d(-1.45, 1.45),
                     y_range=Range1d(-1.45, 1.45), tools="", toolbar_location=None,
                     match_aspect=True, title="servers and messages in flight (click a server)")
        fig.axis.visible = False
        fig.grid.visible = False
        fig.outline_line_color = None
        s = self.sources
        fig.segment(x0="x0", y0="y0", x1="x1", y1="y1", source=s["links"],
                    line_color=LINK_COLOUR, line_width=1.5)
        cut = fig.segment(x0="x0", y0="y0", x1="x1", y1="y1", source=s["cut_links"],
                          line_color=CUT_COLOUR, line_width=2, line_dash="dashed")
        fig.annular_wedge(x="x", y="y", inner_radius="r0", outer_radius="r1",
                          start_angle="start", end_angle="end", source=s["timers"],
                          fill_color=TIMER_COLOUR, fill_alpha=0.7, line_color=None)
        fig.circle(x="x", y="y", radius="r", source=s["selected"], fill_color=None,
                   line_color="#212121", line_width=2, line_dash="dotted")
        # A tap selects a server; the kernel then clears the selection and draws the ring
        # above, so nothing is faded out as "not selected".
        unfaded = {"nonselection_fill_alpha": 1.0, "nonselection_line_alpha": 1.0}
        nodes = fig.circle(x="x", y="y", radius="r", source=s["nodes"], fill_color="fill",
                           line_color="line", line_width=3, **unfaded)
        for field, offset, style in (("label", 0, dict(text_font_size="13px",
                                                        text_font_style="bold")),
                                     ("under", 30, dict(text_font_size="11px",
                                                        text_color="#424242"))):
            fig.text(x="x", y="y", text=field, source=s["nodes"], text_align="center",
                     text_baseline="middle" if offset == 0 else "top", y_offset=offset,
                     nonselection_text_alpha=1.0, **style)
        dots = fig.scatter(x="x", y="y", size="size", source=s["messages"], fill_color="colour",
                           fill_alpha="alpha", line_color="#252525", line_alpha="alpha")
        fig.add_tools(TapTool(renderers=[nodes]),
                      HoverTool(renderers=[nodes], tooltips=[("", "@detail")]),
                      HoverTool(renderers=[dots], tooltips=[("", "@route: @text"),
                                                            ("", "@when")]),
                      HoverTool(renderers=[cut], tooltips=[("cut", "@what")]))
        return fig

    def _logs(self, width: int, height: int):
        fig = figure(width=width, height=height, x_range=Range1d(0.5, self.log_window + 0.5),
                     y_range=Range1d(2.6, -0.6), tools="", toolbar_location=None,
                     title="each log: colour = term, faded = not known committed, bar = commit",
                     x_axis_label="log index")
        fig.title.text_font_size = "10px"
        fig.yaxis.ticker = FixedTicker(ticks=[])
        fig.xaxis.ticker = SingleIntervalTicker(interval=1, num_minor_ticks=0)
        fig.ygrid.grid_line_color = None
        fig.xgrid.grid_line_color = None
        s = self.sources
        cells = fig.rect(x="x", y="y", width=0.9, height=0.8, source=s["cells"],
                         fill_color="fill", fill_alpha="alpha", line_color="line")
        fig.text(x="x", y="y", text="text", source=s["cells"], text_align="center",
                 text_baseline="middle", text_font_size="11px", text_alpha="alpha")
        fig.segment(x0="x", y0="y0", x1="x", y1="y1", source=s["commits"], line_color="black",
                    line_width=4)
        fig.add_tools(HoverTool(renderers=[cells], tooltips=[("", "@node: @what")]))
        return fig

    def refresh(self) -> None:
        """Put the picture as it is now into the widget's first state: a view made later
        (the scope displayed, the page reloaded) starts from it, not from the picture at
        the widget's birth (the changes sent before a view exists are lost to it)."""
        self.widget.update_from_model(self.layout)

    def on_tap(self, callback) -> None:
        """Call ``callback(server)`` when a server is clicked in the ring (in the page)."""
        selection = self.sources["nodes"].selected

        def tapped(attr, old, new):
            if new:
                ids = self.sources["nodes"].data["id"]
                selection.indices = []
                if new[0] < len(ids):
                    callback(ids[new[0]])
        selection.on_change("indices", tapped)

    def draw(self, scene: dict, *, selected: str | None = None) -> None:
        """Redraw everything from ``scene`` (see :func:`sim_scene`); ``selected``: the
        server the levers act on, circled."""
        nodes = scene["nodes"]
        ids = [node["id"] for node in nodes]
        where = ring_positions(ids)
        radius = node_radius(len(ids))
        self._draw_links(ids, where, set(map(tuple, scene["cut"])))
        self._draw_nodes(nodes, where, radius)
        self._draw_messages(scene["messages"], where, radius)
        self._draw_logs(nodes)
        halo = {"x": [], "y": [], "r": []}
        if selected in where:
            halo = {"x": [where[selected][0]], "y": [where[selected][1]], "r": [radius * 1.45]}
        self._put("selected", halo)

    def _put(self, name: str, data: dict) -> None:
        # Only what changed goes to the page: a frame of a quiet scope sends nothing.
        source = self.sources[name]
        if any(list(source.data.get(key, ())) != values for key, values in data.items()):
            source.data = data

    def _draw_links(self, ids, where, cut: set) -> None:
        links = {key: [] for key in ("x0", "y0", "x1", "y1")}
        cuts = {key: [] for key in ("x0", "y0", "x1", "y1", "what")}
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                ways = [f"{src} → {dst}" for src, dst in ((a, b), (b, a)) if (src, dst) in cut]
                target = cuts if ways else links
                for key, value in zip(("x0", "y0", "x1", "y1"), (*where[a], *where[b])):
                    target[key].append(value)
                if ways:
                    cuts["what"].append(", ".join(ways))
        self._put("links", links)
        self._put("cut_links", cuts)

    def _draw_nodes(self, nodes, where, radius: float) -> None:
        data = {key: [] for key in self.sources["nodes"].data}
        timers = {key: [] for key in self.sources["timers"].data}
        for node in nodes:
            x, y = where[node["id"]]
            role = node["role"]
            for key, value in (("x", x), ("y", y), ("r", radius), ("id", node["id"]),
                               ("fill", ROLE_FILL.get(role, ROLE_FILL[DOWN])),
                               ("line", node_colour(node["id"])), ("role", role),
                               ("term", node["term"]), ("label", _label(node)),
                               ("under", _under(node)), ("detail", _detail(node))):
                data[key].append(value)
            if node["timer"] is not None and node["alive"]:
                for key, value in (("x", x), ("y", y), ("r0", radius * 1.12),
                                   ("r1", radius * 1.3), ("start", math.pi / 2),
                                   ("end", math.pi / 2 + 2 * math.pi * node["timer"])):
                    timers[key].append(value)
        self._put("nodes", data)
        self._put("timers", timers)

    def _draw_messages(self, messages, where, radius: float) -> None:
        data = {key: [] for key in self.sources["messages"].data}
        for m in messages:
            x, y = along(where[m["src"]], where[m["dst"]], m["progress"], radius)
            for key, value in (("x", x), ("y", y), ("colour", m["colour"]), ("size", m["size"]),
                               ("alpha", 0.3 if m["lost"] else 1.0), ("text", m["text"]),
                               ("route", f"{m['src']} → {m['dst']}"
                                         + (" (will be lost)" if m["lost"] else "")),
                               ("when", m["when"])):
                data[key].append(value)
        self._put("messages", data)

    def _draw_logs(self, nodes) -> None:
        last = max([node["last_index"] or 0 for node in nodes] + [0])
        first = max(1, last - self.log_window + 1)
        cells = {key: [] for key in self.sources["cells"].data}
        commits = {key: [] for key in self.sources["commits"].data}
        labels = {}
        for row_index, node in enumerate(nodes):
            commit = node["commit_index"]
            labels[row_index] = (f"{node['id']}  down" if not node["alive"] else
                                 f"{node['id']}  commit {commit}")
            for index, term, kind in node["log"]:
                if index < first:
                    continue
                committed = node["alive"] and commit is not None and index <= commit
                alpha = 1.0 if committed else 0.35
                for key, value in (("x", index), ("y", row_index), ("fill", term_colour(term)),
                                   ("alpha", alpha),
                                   ("line", "#424242" if committed else "#9e9e9e"),
                                   ("text", str(term)), ("node", node["id"]),
                                   ("what", f"entry {index}, term {term}, {kind.lower()}, "
                                            + ("committed" if committed else
                                               "not known committed here"))):
                    cells[key].append(value)
            if node["alive"] and commit and commit >= first - 1:     # commit 0: no bar
                for key, value in (("x", commit + 0.5), ("y0", row_index - 0.45),
                                   ("y1", row_index + 0.45), ("node", node["id"]),
                                   ("commit", commit)):
                    commits[key].append(value)
        self._put("cells", cells)
        self._put("commits", commits)
        rows = len(nodes)
        axis = self.logs.yaxis[0]
        if list(axis.ticker.ticks) != list(range(rows)):
            # A new ticker, not new ticks: the page redraws an axis for a new model only.
            self.logs.y_range.start, self.logs.y_range.end = max(rows, 1) - 0.4, -0.6   # n1 on top
            axis.ticker = FixedTicker(ticks=list(range(rows)))
        if axis.major_label_overrides != labels:
            axis.major_label_overrides = labels
        if self.logs.x_range.start != first - 0.5:
            self.logs.x_range.start = first - 0.5
            self.logs.x_range.end = first + self.log_window - 0.5


def _label(node: dict) -> str:
    if node["term"] is None:
        return node["id"]
    return f"{node['id']}  T{node['term']}"


def _under(node: dict) -> str:
    role = node["role"]
    if role == "follower" and node.get("voted_for") and node.get("leader") is None:
        return f"follower, voted {node['voted_for']}"
    if node.get("cut_off"):
        return f"{role}, cut off"
    return role


def _detail(node: dict) -> str:
    if not node["alive"]:
        return f"{node['id']} is down (its disk holds its log)"
    parts = [f"{node['id']}: {node['role']} in term {node['term']}",
             f"commit {node['commit_index']}, last {node['last_index']}"]
    if node.get("leader"):
        parts.append(f"follows {node['leader']}")
    if node.get("voted_for"):
        parts.append(f"voted for {node['voted_for']}")
    if node.get("timer_ms") is not None:
        parts.append(f"election timer: {node['timer_ms']} ms left")
    return "; ".join(parts)


__all__ = ["LOG_WINDOW", "ScopeChart", "ScopeDrawing", "describe_message", "live_scene",
           "ring_positions", "sim_scene", "term_colour"]
