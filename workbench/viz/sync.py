"""Synchronous replication, live: whom the primary waits for, and how far each replica got.

In ``sync`` mode the primary runs a write at once and holds its reply (and reads of its
keys) until every *eligible* replica has acknowledged it. Each replica is, as the
primary sees it:

* ``eligible``   -- granted once it had caught up: every write waits for it;
* ``revoking``   -- dropped by the primary (link lost, timed out, resync), which still
  waits for it until a majority of the failover monitors has recorded the smaller set;
* ``ineligible`` -- writes do not wait for it, and it is never promoted;
* ``down``       -- not running.

:class:`SyncPanel` shows the primary the cluster follows now: its executed and committed
offsets, each replica's state and acknowledged offset, the set the monitors recorded,
the clients whose replies are held, and a chart of the offsets over time. The control
panel's node cards show the same states (see :mod:`workbench.viz.panel`).

Both are fed by one :class:`SyncSampler` per cluster, published under :data:`SYNC` by the
cluster's :class:`~workbench.viz.pump.UiPump`. It reads what any test can read:
``cluster.current_primary()``, ``node.gate_snapshot()``, ``cluster.monitor_config()``
and each node's ``INFO replication`` (the primary's ``slaveN``
lines carry ``offset`` and ``eligible``, a replica says ``replica_eligible``).
"""

from __future__ import annotations

import math
import time
import weakref

import ipywidgets as widgets
import redis
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

from .bokehjs import ChartWidget, display_with_bokehjs
from .charts import CLOSED_COLOUR, label, node_colour
from .eventlog import log_line, render_log
from .gate import COMMITTED_COLOUR, EXECUTED_COLOUR, render_held
from .pump import EVENTS, UiPump

SYNC = "sync"             # key of the newest sync state (a dict) in the pump

# What a node is, seen from the primary the cluster follows.
PRIMARY = "primary"
OLD_PRIMARY = "old primary"   # still says "primary", but the monitors named another one
ELIGIBLE = "eligible"
REVOKING = "revoking"
INELIGIBLE = "ineligible"
DOWN = "down"
UNREACHABLE = "unreachable"   # running, but did not answer INFO in time (paused?)
REPLICA_STATES = (ELIGIBLE, REVOKING, INELIGIBLE)   # a replica of the primary followed

STATE_COLOURS = {PRIMARY: "#1b7a1b", OLD_PRIMARY: "#c62828", ELIGIBLE: "#2ca02c",
                 REVOKING: "#ef6c00", INELIGIBLE: "#757575", DOWN: "#c62828",
                 UNREACHABLE: "#c62828"}
WAITING_COLOUR = "#ef6c00"
STOPPED_COLOUR = "#c62828"
CLOSED_NOTE = "the cluster is closed: its nodes are stopped"
LOG_LINES = 10
# The events worth a line in the panel's own log: the story of eligibility.
LOGGED = frozenset({"EligibilityGranted", "EligibilityRevoked", "WriteTimedOut",
                    "FailoverDone", "NodeKilled", "NodeRestarted", "Partitioned", "Healed",
                    "ClusterClosed", "EventsDropped"})
MARKS = {"granted": ("dotted", COMMITTED_COLOUR), "revoked": ("solid", WAITING_COLOUR),
         "timeout": ("dotted", STOPPED_COLOUR), "failover": ("solid", None)}
TIMEOUT_MARK_GAP_S = 1.0   # one "writes time out" mark per burst, not one per write
# The columns of the replica table, and what each means (the heading's tooltip).
HEADINGS = (
    ("node", "the node's name"),
    ("eligibility", "what the primary does about this node: waits for it (eligible), still "
                    "waits until the monitors record its revocation (revoking), or not"),
    ("acked offset", "the replication offset this replica last acknowledged to the primary"),
    ("behind", "bytes the primary executed that this replica has not acknowledged"),
    ("own grant", "whether the replica itself believes it holds a grant (replica_eligible)"),
    ("recorded", "whether the failover monitors recorded it in the eligible set: only "
                 "such a replica can be promoted"),
)


# -- the sampler (any thread but the cluster's loop) --------------------------------------
class SyncSampler:
    """Reads a sync cluster's state as plain data; one per cluster (:meth:`for_cluster`)."""

    _by_cluster: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

    def __init__(self, cluster, *, timeout: float = 0.5):
        self.cluster = cluster
        self.timeout = timeout               # a paused node must not stall the pump long
        self._clients: dict[tuple[str, int], redis.Redis] = {}

    @classmethod
    def for_cluster(cls, cluster) -> "SyncSampler":
        sampler = cls._by_cluster.get(cluster)
        if sampler is None:
            sampler = cls._by_cluster[cluster] = cls(cluster)
        return sampler

    def __call__(self) -> dict:
        cluster = self.cluster
        primary = cluster.current_primary()
        gate = primary.gate_snapshot() if primary is not None else None
        infos = {node.name: self._info(node) for node in cluster.nodes}
        agreed = cluster.monitor_config()
        ports = {node.port: node.name for node in cluster.nodes}
        return sync_state(primary.name if primary else None, gate, infos, agreed, ports)

    def _info(self, node) -> dict | None:
        """``INFO replication`` of ``node``; None if it is down, {} if it did not answer."""
        if not node.alive:
            return None
        key = (node.name, node.port)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self.cluster.client(
                node, socket_timeout=self.timeout, socket_connect_timeout=self.timeout)
        try:
            return client.info("replication")
        except redis.RedisError:
            return {}


def sync_state(primary: str | None, gate: dict | None, infos: dict, agreed: dict | None,
               ports: dict) -> dict:
    """The state a sync viewer shows, from what the sampler read (a pure function).

    ``gate`` is the primary's ``gate_snapshot()``, ``infos`` maps each node to its
    ``INFO replication`` (None: down), ``agreed`` is a monitor's snapshot, ``ports``
    maps ports to node names (the primary's ``slaveN`` lines name replicas by port)."""
    if gate is not None and not gate.get("alive"):
        gate = None
    eligible = dict((gate or {}).get("eligible") or {})
    revoking = dict((gate or {}).get("revoking") or {})
    connected = {}                       # replica -> the offset it acknowledged
    for field, value in (infos.get(primary) or {}).items():
        if field.startswith("slave") and isinstance(value, dict) and "port" in value:
            name = ports.get(int(value["port"]))
            if name is not None:
                connected[name] = int(value.get("offset", -1))
    nodes = {}
    for name, info in infos.items():
        # What the primary does about a node comes first: a dead replica it still waits
        # for is "eligible" or "revoking", and the row says it is down as well.
        reason = None
        if name == primary:
            state = PRIMARY
        elif name in revoking:
            state, reason = REVOKING, revoking[name]
        elif name in eligible:
            state = ELIGIBLE
        elif info is None:
            state = DOWN
        elif not info:
            state = UNREACHABLE
        elif info.get("role") == "master":
            state = OLD_PRIMARY
        else:
            state = INELIGIBLE
        own = info.get("replica_eligible") if info and info.get("role") == "slave" else None
        nodes[name] = {"state": state, "reason": reason, "alive": info is not None,
                       "acked_offset": eligible.get(name, connected.get(name)),
                       "own_grant": None if own is None else bool(int(own))}
    out = {"primary": primary, "nodes": nodes, "agreed": agreed,
           "eligible": sorted(eligible), "revoking": revoking,
           "executed_offset": None, "committed_offset": None, "held_replies": [],
           "durability_replicas": None}
    if gate is not None:
        out.update({field: gate[field] for field in (
            "executed_offset", "committed_offset", "held_replies", "durability_replicas")})
    return out


def state_text(node: dict) -> str:
    """A node's state in a few words, as a card or a table row says it."""
    state = node["state"]
    if state == REVOKING:
        text = f"revoking ({node['reason']})"
    elif state == OLD_PRIMARY:
        text = "old primary (not the monitors' choice)"
    else:
        text = state
    if not node["alive"] and state != DOWN:
        text += ", node down"
    return text


def status(state: dict) -> tuple[str, str]:
    """One sentence about what writes do right now, and its colour."""
    required = state["durability_replicas"]
    if state["primary"] is None:
        return ("no primary: only an eligible replica may be promoted, so writes wait for "
                "one (or for the old primary)", STOPPED_COLOUR)
    if state["executed_offset"] is None:
        return f"{state['primary']} did not report its gate", STOPPED_COLOUR
    if state["revoking"]:
        names = ", ".join(sorted(state["revoking"]))
        return (f"revoking {names}: every write waits for it until a majority of the "
                "monitors has recorded the revocation", WAITING_COLOUR)
    eligible = state["eligible"]
    if required is not None and len(eligible) < required:
        return (f"{len(eligible)} eligible replica(s), {required} needed: new writes are "
                "refused (NOREPLICAS)", STOPPED_COLOUR)
    if state["held_replies"]:
        return (f"replies held until {', '.join(eligible)} acknowledge", WAITING_COLOUR)
    return (f"every write waits for {', '.join(eligible)} (eligible)", COMMITTED_COLOUR)


# -- the panel (kernel thread) --------------------------------------------------------------
class SyncPanel(widgets.VBox):
    """A sync cluster's replication: offsets, each replica's eligibility, held replies.

    It follows whichever node the cluster's monitors name as the primary. Display it
    like a widget; ``panel.rows[name]`` holds each node's labels, ``panel.chart`` the
    chart of the executed, committed and acknowledged offsets.
    """

    def __init__(self, cluster, pump: UiPump | None = None, *, history: int = 600,
                 width: int = 800, height: int = 260):
        if getattr(cluster, "mode", None) != "sync":
            raise ValueError(f"SyncPanel shows a cluster in mode 'sync', not "
                             f"{getattr(cluster, 'mode', None)!r}; try viz.GatePanel or "
                             "viz.show")
        self.cluster = cluster
        self.names = [node.name for node in cluster.nodes]
        self.started = time.time()
        self.history = history
        self.closed = False
        self.write_timeouts = 0
        self.log_lines: list[str] = []
        self._last_timeout_mark = -math.inf
        self.status = label("waiting for the first snapshot…", "wb-sync-status")
        self.primary = label("–", "wb-sync-primary")
        self.executed_offset = label("–", "wb-sync-executed")
        self.committed_offset = label("–", "wb-sync-committed")
        self.eligible = label("–", "wb-sync-eligible")
        self.recorded = label("–", "wb-sync-recorded")
        self.timeouts = label("0", "wb-sync-timeouts")
        facts = widgets.GridBox(
            [label("primary (writes go here)"), self.primary,
             label("executed offset"), self.executed_offset,
             label("committed offset"), self.committed_offset,
             label("eligible replicas"), self.eligible,
             label("set the monitors recorded"), self.recorded,
             label("writes timed out"), self.timeouts],
            layout=widgets.Layout(grid_template_columns="15em auto", grid_gap="0 8px"))
        self.rows = {name: self._row(name) for name in self.names}
        heads = []
        for text, tooltip in HEADINGS:
            head = label(text)
            head.tooltip = tooltip
            head.style.font_weight = "bold"
            heads.append(head)
        cells = heads + [cell for row in self.rows.values() for cell in row.values()]
        table = widgets.GridBox(cells, layout=widgets.Layout(
            grid_template_columns="3.5em 17em 8em 6em 6em 6em", grid_gap="0 8px"))
        table.add_class("wb-sync-replicas")
        self.held_replies = widgets.HTML(render_held([]))
        self.held_replies.add_class("wb-sync-held")
        self.event_log = widgets.HTML(self._render_log())
        self.event_log.add_class("wb-sync-log")
        self._build_chart(width, height)
        title = widgets.HTML("<b>Synchronous replication</b>")
        super().__init__([
            widgets.HBox([title, self.status], layout=widgets.Layout(grid_gap="12px")),
            facts, table, self.held_replies, self.chart, self.event_log,
        ], layout=widgets.Layout(border="1px solid #ccc", padding="6px"))
        self.add_class("wb-sync-panel")
        self.pump = pump or UiPump.for_cluster(cluster)
        self.pump.sample(SYNC, SyncSampler.for_cluster(cluster))
        self.pump.on(SYNC, self._apply_sync)
        self.pump.on(EVENTS, self._apply_events)

    def _ipython_display_(self, **kwargs) -> None:
        display_with_bokehjs(self)

    def _row(self, name: str) -> dict:
        node = widgets.HTML(f"<b style='color:{node_colour(name)}'>{name}</b>")
        return {"node": node,
                **{field: label("–", f"wb-sync-{field}", f"wb-sync-{field}-{name}")
                   for field in ("state", "acked", "behind", "own-grant", "recorded")}}

    def _build_chart(self, width: int, height: int) -> None:
        columns = {"t": [], "executed": [], "committed": [],
                   **{f"acked_{name}": [] for name in self.names}}
        self.source = ColumnDataSource(columns)
        self.marks = {kind: ColumnDataSource({"t": [], "text": [], "colour": []})
                      for kind in MARKS}
        fig = figure(width=width, height=height, toolbar_location="right",
                     tools="pan,box_zoom,reset,save",
                     title="offsets of the primary, and what each replica acknowledged",
                     x_axis_label="seconds since the panel started",
                     y_axis_label="replication offset (bytes)")
        fig.step("t", "executed", source=self.source, mode="after", line_width=5,
                 color=EXECUTED_COLOUR, alpha=0.5, legend_label="executed")
        fig.step("t", "committed", source=self.source, mode="after", line_width=3,
                 color=COMMITTED_COLOUR, legend_label="committed")
        for name in self.names:
            fig.step("t", f"acked_{name}", source=self.source, mode="after", line_width=1.5,
                     line_dash="dashed", color=node_colour(name), legend_label=f"{name} acked")
        for kind, (dash, _) in MARKS.items():
            fig.vspan(x="t", source=self.marks[kind], line_color="colour", line_dash=dash,
                      line_width=2)
            fig.text(x="t", y=0, text="text", source=self.marks[kind], text_color="colour",
                     text_font_size="10px", angle=math.pi / 2, x_offset=-3,
                     text_baseline="bottom")
        fig.legend.click_policy = "hide"
        fig.legend.label_text_font_size = "11px"
        fig.add_layout(fig.legend[0], "right")      # beside the lines, not over them
        self.figure = fig
        self.chart = ChartWidget(fig)
        self.chart.add_class("wb-sync-chart")

    # -- the appliers (kernel thread, called by the pump) ----------------------------------
    def _apply_sync(self, state: dict) -> None:
        if self.closed:
            return
        text, colour = status(state)
        self.status.value = text
        self.status.style.text_color = colour
        self.primary.value = state["primary"] or "none"
        executed, committed = state["executed_offset"], state["committed_offset"]
        self.executed_offset.value = "–" if executed is None else str(executed)
        if committed is None:
            self.committed_offset.value = "–"
        else:
            behind = executed - committed
            self.committed_offset.value = (str(committed) if behind == 0 else
                                           f"{committed}  ({behind} bytes not yet acknowledged)")
        required = state["durability_replicas"]
        eligible = ", ".join(state["eligible"]) or "none"
        self.eligible.value = (f"{len(state['eligible'])}: {eligible}"
                               + (f"  (writes need at least {required})" if required else ""))
        agreed = state["agreed"]
        recorded = set(agreed["eligible"]) if agreed else set()
        self.recorded.value = ("–" if agreed is None else
                               f"{', '.join(agreed['eligible']) or 'none'}  (epoch "
                               f"{agreed['epoch']}, primary {agreed['primary']})")
        for name, row in self.rows.items():
            node = state["nodes"].get(name)
            if node is None:
                continue
            row["state"].value = state_text(node)
            row["state"].style.text_color = STATE_COLOURS.get(node["state"], "black")
            acked = node["acked_offset"]
            replica = node["state"] in REPLICA_STATES
            row["acked"].value = str(acked) if replica and acked is not None else "–"
            row["behind"].value = (str(executed - acked) if replica and acked is not None
                                   and executed is not None else "–")
            own = node["own_grant"]
            row["own-grant"].value = "–" if own is None else ("yes" if own else "no")
            row["recorded"].value = ("yes" if name in recorded else "no") if replica else "–"
        self.held_replies.value = render_held(state["held_replies"])
        now = round(time.time() - self.started, 3)
        point = {"t": [now], "executed": [_number(executed)], "committed": [_number(committed)]}
        for name in self.names:
            node = state["nodes"].get(name) or {}
            shown = node.get("state") in REPLICA_STATES
            point[f"acked_{name}"] = [_number(node.get("acked_offset") if shown else None)]
        self.source.stream(point, rollover=self.history)

    def _apply_events(self, events: list) -> None:
        for event in events:
            if self.closed:
                break
            at = round(event.time - self.started, 3)
            kind = event.kind
            if kind == "WriteTimedOut":
                self.write_timeouts += 1
                if at - self._last_timeout_mark >= TIMEOUT_MARK_GAP_S:
                    self._mark("timeout", at, f"{event.node}: writes time out")
                self._last_timeout_mark = at
            elif kind == "EligibilityRevoked" and event.node != event.replica:
                self._mark("revoked", at, f"{event.replica} revoked"
                           + ("" if event.agreed else " (unilaterally)"))
            elif kind == "EligibilityGranted":
                self._mark("granted", at, f"{event.replica} eligible")
            elif kind == "FailoverDone":
                self._mark("failover", at, f"{event.new_primary} promoted",
                           node_colour(event.new_primary))
            line = log_line(event) if kind in LOGGED else None
            if line is not None:
                self.log_lines.append(line)
            if kind == "ClusterClosed":
                self.show_closed()
        self.timeouts.value = str(self.write_timeouts)
        del self.log_lines[:-LOG_LINES]
        self.event_log.value = self._render_log()

    def _mark(self, kind: str, at: float, text: str, colour: str | None = None) -> None:
        self.marks[kind].stream({"t": [at], "text": [text],
                                 "colour": [colour or MARKS[kind][1]]})

    def show_closed(self) -> None:
        """The cluster is closed: say so; the chart keeps what it drew."""
        self.closed = True
        self.status.value = CLOSED_NOTE
        self.status.style.text_color = CLOSED_COLOUR
        for row in self.rows.values():
            for field, cell in row.items():
                if field != "node":
                    cell.value = "–"
                    cell.style.text_color = CLOSED_COLOUR
        self.held_replies.value = render_held([])

    def _render_log(self) -> str:
        return render_log(self.log_lines, "eligibility, timeouts and failovers, newest first",
                          empty="(nothing yet)", max_height="11em")


def _number(value) -> float:
    # NaN breaks a line: an unknown offset is not an offset of 0.
    return math.nan if value is None else value


__all__ = ["SYNC", "SyncPanel", "SyncSampler", "state_text", "status", "sync_state"]
