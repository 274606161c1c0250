"""Raft, live: who leads which term, how far each node's log got, and who the leader waits for.

In ``raft`` mode a write is acknowledged once a majority of the shard's *voters* stored
the log entry that carries it: the leader's **commit index** moves, the followers learn
it with the next message and **apply** the entry. :class:`RaftPanel` shows each node's
side of that:

* its role (``leader``, ``follower``, ``candidate``, ``learner``, or ``down``), in the
  colours of the simulator's timeline (:data:`~workbench.viz.raft_timeline.ROLE_COLOURS`),
  its term, and the leader it follows;
* its commit, applied and last log index, and -- on each follower's row -- the *match
  index* the leader holds for it: how much of the leader's log it is known to store;
* whether it is a voter or a learner, with a sentence on what writes do right now (a
  majority of how many voters, how many are running);
* a timeline of roles, terms and commit indexes over wall time, partitions shaded and
  elections, step-downs, crashes and membership steps marked;
* a log of elections, step-downs and membership steps, and buttons to kill, restart or
  remove a node and to add one (learner first, voter once caught up).

It reads only public API: ``cluster.raft_state()``, polled by the cluster's
:class:`~workbench.viz.pump.UiPump` with every snapshot (5 times a second), and the
cluster's events. Nodes added or removed appear and go; a closed cluster is said so and
its buttons turn off. Memory is bounded: the chart keeps :data:`HISTORY` samples and
rolls the oldest over, the log keeps its last lines.

:meth:`RaftPanel.timeline` hands what the panel recorded to a
:class:`~workbench.viz.raft_timeline.RaftTimeline`, whose figure is the simulator
notebook's picture -- of a real shard this time.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field

import ipywidgets as widgets

from .bokehjs import display_with_bokehjs
from .charts import CLOSED_COLOUR, label, node_colour
from .eventlog import describe, render_log
from .pump import EVENTS, UiPump
from .raft_chart import HISTORY, MAX_WINDOWS, ROLE_FILL, RaftChart
from .raft_timeline import DOWN, ROLE_COLOURS, RaftTimeline, Sample, Window

RAFT = "raft"                 # key of the newest raft state in the pump
LEADER, FOLLOWER, CANDIDATE, LEARNER = "leader", "follower", "candidate", "learner"
SERVING_COLOUR = "#1b7a1b"
WAITING_COLOUR = "#ef6c00"
STOPPED_COLOUR = "#c62828"
CLOSED_NOTE = "the cluster is closed: its nodes are stopped, so the buttons are off"
LOG_LINES = 12
TIMEOUT_LOG_GAP_S = 1.0       # one "writes time out" line per burst, not one per write
# The columns of the node table, and what each means (the heading's tooltip).
HEADINGS = (
    ("node", "the node's name"),
    ("role", "leader, follower, candidate (an election is running), learner (copies the "
             "log, has no vote), or down"),
    ("term", "the node's current term: each election starts a new one, at most one leader "
             "per term"),
    ("leader", "the leader this node follows, as far as it knows"),
    ("commit", "commit index: the last log entry this node knows a majority stored"),
    ("applied", "the last entry this node executed in its keyspace"),
    ("last", "the last entry in this node's log (may be ahead of commit: not yet stored by "
             "a majority)"),
    ("match", "the leader's view: the last entry the leader knows this node stores "
              "(behind: entries it still lacks)"),
    ("member", "voter (counts in every majority), learner (no vote yet), or not a member"),
    ("", "kill, restart or remove this node"),
)
FIELDS = ("role", "term", "leader", "commit", "applied", "last", "match", "member")


# -- the sampler (the pump's sampler thread) ----------------------------------------------
class RaftSampler:
    """Reads ``cluster.raft_state()`` as plain data, stamped with the wall-clock time."""

    def __init__(self, cluster):
        self._cluster = weakref.ref(cluster)   # the pump must not keep a closed cluster alive

    def __call__(self) -> dict:
        cluster = self._cluster()
        if cluster is None:
            raise RuntimeError("the cluster is gone")
        return {"time": time.time(), "nodes": cluster.raft_state()}


# -- what the panel shows, from a state (a pure function) ---------------------------------
def raft_view(nodes: dict) -> dict:
    """What a viewer shows of ``raft_state()``: the leader the shard follows (the newest
    term's, like ``cluster.primary()``), leaders of older terms that do not know yet, the
    membership as the leader sees it, the majority, and a sentence about writes."""
    alive = {name: node for name, node in nodes.items() if node.get("alive")}
    leaders = sorted((name for name, node in alive.items() if node["role"] == LEADER),
                     key=lambda name: alive[name]["term"], reverse=True)
    leader = leaders[0] if leaders else None
    stale = [name for name in leaders[1:] if alive[name]["term"] < alive[leader]["term"]]
    # Membership is what the leader has; without one, the most advanced running node's view.
    reference = (alive[leader] if leader else
                 max(alive.values(), key=lambda n: (n["term"], n["commit_index"]), default=None))
    voters = list(reference["voters"]) if reference else []
    learners = list(reference["learners"]) if reference else []
    majority = len(voters) // 2 + 1
    running = sum(1 for name in voters if name in alive)
    match = dict(alive[leader]["match"]) if leader else {}
    last = alive[leader]["last_index"] if leader else None
    rows = {}
    for name, node in nodes.items():
        member = ("voter" if name in voters else "learner" if name in learners
                  else "not a member")
        if not node.get("alive"):
            rows[name] = {"role": DOWN, "term": None, "leader": None, "commit": None,
                          "applied": None, "last": None, "match": match.get(name),
                          "behind": None, "member": member, "serving": False}
            continue
        matched = match.get(name) if name != leader else None
        rows[name] = {"role": node["role"], "term": node["term"], "leader": node["leader"],
                      "commit": node["commit_index"], "applied": node["applied_index"],
                      "last": node["last_index"], "match": matched,
                      "behind": None if matched is None else last - matched,
                      "member": member, "serving": bool(node["serving"])}
    view = {"leader": leader, "term": alive[leader]["term"] if leader else None,
            "serving": bool(leader and alive[leader]["serving"]), "stale_leaders": stale,
            "commit_index": alive[leader]["commit_index"] if leader else None,
            "voters": voters, "learners": learners, "majority": majority,
            "running_voters": running, "rows": rows}
    view["status"], view["colour"] = status(view, nodes)
    return view


def status(view: dict, nodes: dict) -> tuple[str, str]:
    """One sentence about what writes do right now, and its colour."""
    leader, voters, majority = view["leader"], view["voters"], view["majority"]
    running = view["running_voters"]
    if leader is None:
        if not voters:
            return "no node is running", STOPPED_COLOUR
        if running < majority:
            return (f"no leader: {running} of {len(voters)} voters running, a majority is "
                    f"{majority}: writes are refused (CLUSTERDOWN) until one comes back",
                    STOPPED_COLOUR)
        return ("no leader: an election is running (or the voters cannot reach a majority "
                "of each other); writes are refused (CLUSTERDOWN) meanwhile", WAITING_COLOUR)
    if view["stale_leaders"]:
        old = ", ".join(f"{name} (term {nodes[name]['term']})" for name in view["stale_leaders"])
        return (f"{leader} leads term {view['term']}; {old} still believes it leads: cut "
                "off, its writes are held and it will step down", STOPPED_COLOUR)
    if not view["serving"]:
        return (f"{leader} won term {view['term']}: it serves once its first entry of the "
                "term commits (writes get CLUSTERDOWN until then)", WAITING_COLOUR)
    return (f"{leader} leads term {view['term']}: a write is acknowledged once {majority} "
            f"of {len(voters)} voters stored it ({running} running)", SERVING_COLOUR)


# -- the event log --------------------------------------------------------------------------
def describe_raft(event) -> str | None:
    """A line for the Raft panel's log (``None``: not worth one): a few events said the
    raft mode's way, the rest as :func:`~workbench.viz.eventlog.describe` tells them."""
    kind = event.kind
    if kind == "RoleChanged":
        if event.role == "master":
            return (f"{event.node} serves clients: its term's first entry committed, so its "
                    "log holds every committed write")
        return None
    if kind == "NodeAdded":
        return f"{event.node} started; the leader ({event.primary}) proposes it as a learner"
    if kind == "NodeRemoved":
        return f"{event.node} left the shard and stopped"
    if kind == "NodeRestarted":
        return f"{event.node} restarted from its Raft log (disk): it rejoins as a follower"
    if kind == "WriteTimedOut":
        return (f"{event.node}: held writes time out: NOREPLICAS, outcome unknown (they may "
                "still commit)")
    if kind in ("RaftCommitted", "WriteRejected"):
        return None                         # one per write: the numbers show them
    return describe(event)


def stamped(event, text: str) -> str:
    """``text`` after the event's wall-clock time, to the millisecond (as the other logs)."""
    stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
    return f"{stamp}.{int(event.time * 1000) % 1000:03d}  {text}"


@dataclass(frozen=True)
class Note:
    """A line for the log that is not a cluster event: what a button did or why it failed."""

    text: str
    node: str = "panel"
    time: float = field(default_factory=time.time)
    kind: str = "Note"


# -- the panel (kernel thread) ----------------------------------------------------------------
class RaftPanel(widgets.VBox):
    """A raft shard, live: a row per node, what writes do now, a timeline and a log.

    Display it like a widget. ``panel.rows[name]`` holds each node's labels and buttons,
    ``panel.chart`` the :class:`RaftChart`, ``panel.log_lines`` the log's lines;
    :meth:`timeline` returns what it recorded as a :class:`RaftTimeline`.
    """

    def __init__(self, cluster, pump: UiPump | None = None, *, history: int = HISTORY,
                 width: int = 820):
        if getattr(cluster, "mode", None) != "raft":
            raise ValueError(f"RaftPanel shows a cluster in mode 'raft', not "
                             f"{getattr(cluster, 'mode', None)!r}; try viz.SyncPanel or "
                             "viz.show")
        self.cluster = cluster
        self.started = time.time()
        self.closed = False
        self.view: dict | None = None            # the newest raft_view shown
        self.log_lines: list[str] = []
        self.write_timeouts = 0
        self.samples: deque[Sample] = deque(maxlen=history * 9)   # for timeline(); 9 nodes at most
        self.windows: deque[Window] = deque(maxlen=MAX_WINDOWS)
        self._window_start: float | None = None    # an open partition window (seconds)
        self._window_label = ""
        self._memberships: deque = deque(maxlen=64)   # changes shown (each member reports them)
        self._terms: dict[str, int] = {}              # node -> the term of its last role change
        self._last_timeout_line = -math.inf
        self._busy: str | None = None            # an add or remove running in its thread
        self._done_key = f"raft-action-{id(self)}"
        self.status = label("waiting for the first sample…", "wb-raft-status")
        self.leader = label("–", "wb-raft-fact-leader")
        self.commit_index = label("–", "wb-raft-fact-commit")
        self.voters = label("–", "wb-raft-fact-voters")
        self.learners = label("–", "wb-raft-fact-learners")
        self.timeouts = label("0", "wb-raft-fact-timeouts")
        facts = widgets.GridBox(
            [label("leader (writes go here)"), self.leader,
             label("commit index"), self.commit_index,
             label("voters"), self.voters,
             label("learners"), self.learners,
             label("writes timed out"), self.timeouts],
            layout=widgets.Layout(grid_template_columns="13em auto", grid_gap="0 8px"))
        self.heads = []
        for text, tooltip in HEADINGS:
            head = label(text)
            head.tooltip = tooltip
            head.style.font_weight = "bold"
            self.heads.append(head)
        self.rows: dict[str, dict] = {}
        self.table = widgets.GridBox(self.heads, layout=widgets.Layout(
            grid_template_columns="3em 6.5em 3em 4em 4.5em 4.5em 3em 7em 5.5em max-content",
            grid_gap="0 6px", align_items="center"))
        self.table.add_class("wb-raft-nodes")
        self.add = widgets.Button(description="Add a node", icon="plus",
                                  tooltip="cluster.add_node(): a learner that catches up, then "
                                          "a voter", layout=widgets.Layout(width="max-content"))
        self.add.add_class("wb-raft-add")
        self.add.on_click(lambda _: self.in_background("add a node", cluster.add_node))
        self.event_log = widgets.HTML(self._render_log())
        self.event_log.add_class("wb-raft-log")
        self.chart = RaftChart(self.started, history=history, width=width)
        title = widgets.HTML("<b>Raft</b>")
        super().__init__([
            widgets.HBox([title, self.status], layout=widgets.Layout(grid_gap="12px")),
            facts, self.table, self.add, self.chart.widget, self.event_log,
        ], layout=widgets.Layout(border="1px solid #ccc", padding="6px"))
        self.add_class("wb-raft-panel")
        self.pump = pump or UiPump.for_cluster(cluster)
        self.pump.sample(RAFT, RaftSampler(cluster))
        self.pump.on(RAFT, self._apply_state)
        self.pump.on(EVENTS, self._apply_events)
        self.pump.on(self._done_key, self._action_done)

    def _ipython_display_(self, **kwargs) -> None:
        display_with_bokehjs(self)

    # -- rows: one per node the shard reports ----------------------------------------------
    def _row(self, name: str) -> dict:
        node = widgets.HTML(f"<b style='color:{node_colour(name)}'>{name}</b>")
        row = {"node": node, **{f: label("–", f"wb-raft-{f}", f"wb-raft-{f}-{name}")
                                for f in FIELDS}}
        row["role"].style.font_weight = "bold"
        row["role"].layout.padding = "0 4px"
        buttons = []
        for text, css, tooltip, handler in (
                ("Kill", "wb-raft-kill", "Crash: memory is gone, the Raft log survives",
                 lambda _: self.act(f"kill {name}", lambda: self.cluster.node(name).kill())),
                ("Restart", "wb-raft-restart", "Start again from the Raft log on disk",
                 lambda _: self.act(f"restart {name}", lambda: self.cluster.node(name).restart())),
                ("Remove", "wb-raft-remove", "cluster.remove_node(): the leader proposes its "
                 "removal (handing leadership over first if it leads)",
                 lambda _: self.in_background(f"remove {name}",
                                              lambda: self.cluster.remove_node(name)))):
            button = widgets.Button(description=text, tooltip=tooltip, layout=widgets.Layout(
                width="auto", height="24px", flex="0 0 auto"))       # never squeezed
            button.add_class(css)
            button.on_click(handler)
            buttons.append(button)
        row["kill"], row["restart"], row["remove"] = buttons
        row["buttons"] = widgets.HBox(buttons)
        return row

    def _follow_members(self, names: list[str]) -> None:
        """Rows for nodes that appeared, none for nodes that left the cluster."""
        if list(self.rows) == names:
            return
        for name in [n for n in self.rows if n not in names]:
            row = self.rows.pop(name)
            for part in row.values():
                part.close()       # gone from the page, and from the recorded widget state
        for name in names:
            if name not in self.rows:
                self.rows[name] = self._row(name)
        self.rows = {name: self.rows[name] for name in names}
        self.table.children = self.heads + [
            row[part] for row in self.rows.values() for part in ("node", *FIELDS, "buttons")]
        self._enable_buttons()

    # -- actions (kernel thread, from button clicks) ---------------------------------------
    def act(self, what: str, action) -> None:
        """Run a quick action (kill, restart) now; its outcome shows up through the pump."""
        if self.closed or self.cluster.closed:
            self._note(f"{what}: {CLOSED_NOTE}")
            self.show_closed()
            return
        try:
            action()
        except Exception as err:   # a click must never raise into the void
            self._note(f"{what} failed: {err}")
        self.pump.sample_now()

    def in_background(self, what: str, action) -> None:
        """Run a membership change in its own thread: it waits for commits, and the
        kernel must stay free to show them. One at a time."""
        if self.closed or self.cluster.closed:
            self._note(f"{what}: {CLOSED_NOTE}")
            self.show_closed()
            return
        if self._busy is not None:
            self._note(f"{what}: wait, {self._busy} is still running")
            return
        self._busy = what
        self._enable_buttons()

        def run():
            try:
                result = action()
                done = f"{what}: done" + (f" ({result.name})" if hasattr(result, "name") else "")
            except Exception as err:
                done = f"{what} failed: {err}"
            self.pump.append(EVENTS, Note(done))
            self.pump.publish(self._done_key, what)
        threading.Thread(target=run, name="workbench-raft-panel-action", daemon=True).start()

    def _action_done(self, what: str) -> None:
        self._busy = None
        self._enable_buttons()
        self.pump.sample_now()

    def _note(self, text: str) -> None:
        self.pump.append(EVENTS, Note(text))
        self.pump.flush()

    def _enable_buttons(self) -> None:
        busy = self.closed or self._busy is not None
        self.add.disabled = busy
        rows = (self.view or {}).get("rows", {})
        for name, row in self.rows.items():
            down = rows.get(name, {}).get("role") == DOWN
            row["kill"].disabled = self.closed or down
            row["restart"].disabled = self.closed or not down
            row["remove"].disabled = busy
            if self.closed:
                for button in ("kill", "restart", "remove"):
                    row[button].tooltip = CLOSED_NOTE
        if self.closed:
            self.add.tooltip = CLOSED_NOTE

    # -- appliers (kernel thread, called by the pump) --------------------------------------
    def _apply_state(self, state: dict) -> None:
        if self.closed:
            return
        nodes = state["nodes"]
        view = raft_view(nodes)
        self.view = view
        self._follow_members(list(nodes))
        self.status.value = view["status"]
        self.status.style.text_color = view["colour"]
        leader = view["leader"]
        self.leader.value = (f"{leader} (term {view['term']}"
                             + ("" if view["serving"] else ", not serving yet") + ")"
                             if leader else "none")
        self.commit_index.value = "–" if leader is None else str(view["commit_index"])
        voters = view["voters"]
        self.voters.value = (f"{len(voters)}: {', '.join(voters)}  (a majority is "
                             f"{view['majority']}; {view['running_voters']} running)"
                             if voters else "–")
        self.learners.value = ", ".join(view["learners"]) or "none"
        for name, row in self.rows.items():
            self._show_row(row, view["rows"][name], name == leader)
        self._enable_buttons()
        at = self.chart.seconds(state["time"])
        self.chart.add_sample(at, view["rows"])
        t_ms = int(at * 1000)
        for name, row in view["rows"].items():
            # The simulator's picture has no learner lane colour: a learner follows.
            role = row["role"] if row["role"] in ROLE_COLOURS else FOLLOWER
            self.samples.append(Sample(t_ms, name, role, row["term"], row["commit"],
                                       role != DOWN))

    @staticmethod
    def _show_row(row: dict, node: dict, leads: bool) -> None:
        role = node["role"]
        row["role"].value = role if role != LEADER or node["serving"] else "leader (not serving)"
        row["role"].style.background = ROLE_FILL.get(role, "white")
        for field, value in (("term", node["term"]), ("leader", node["leader"]),
                             ("commit", node["commit"]), ("applied", node["applied"]),
                             ("last", node["last"])):
            row[field].value = "–" if value is None else str(value)
        if leads:
            row["match"].value = "(the leader)"
        elif node["match"] is None:
            row["match"].value = "–"
        else:
            behind = node["behind"]
            row["match"].value = (f"{node['match']}" if not behind else
                                  f"{node['match']} ({behind} behind)")
        row["member"].value = node["member"]

    def _apply_events(self, events: list) -> None:
        for event in events:
            # Every member applies a membership change and reports it: show the first.
            if event.kind == "RaftMembershipChanged" and not self._first_report(event):
                continue
            if not self.closed:               # the chart keeps what it drew until the close
                self._chart_event(event, self.chart.seconds(event.time))
            line = self._log_line(event)
            if line is not None:
                self.log_lines.append(line)
            if event.kind == "ClusterClosed":
                self.show_closed()
        self.timeouts.value = str(self.write_timeouts)
        del self.log_lines[:-LOG_LINES]
        self.event_log.value = self._render_log()

    def _first_report(self, event) -> bool:
        # Keyed by what changed only: a node catching up applies old changes later, and
        # reports them with the membership it has by then. (Names are never reused.)
        key = (event.action, event.member)
        if key in self._memberships:
            return False
        self._memberships.append(key)
        return True

    def _chart_event(self, event, at: float) -> None:
        kind, chart = event.kind, self.chart
        if kind == "Partitioned":
            chart.partition_begins(at)
            self._end_window(at)
            self._window_start = at
            self._window_label = (" | ".join(",".join(group) for group in event.groups)
                                  if event.groups else "one-way cut")
        elif kind == "Healed":
            chart.partition_ends(at)
            self._end_window(at)
        elif kind == "RaftRoleChanged" and event.role == LEADER:
            chart.mark(at, f"{event.node} leads term {event.term}", node_colour(event.node))
        elif kind == "RaftSteppedDown":
            chart.mark(at, f"{event.node} stepped down", STOPPED_COLOUR)
        elif kind == "NodeKilled":
            chart.mark(at, f"{event.node} {'lost power' if event.power_loss else 'killed'}",
                       node_colour(event.node))
        elif kind == "RaftMembershipChanged":
            what = {"add_learner": "learner", "promote": "voter"}.get(event.action, "removed")
            chart.mark(at, f"{event.member} {what}", node_colour(event.member))
        elif kind == "ClusterClosed":
            chart.partition_ends(at)
            self._end_window(at)
            chart.mark(at, "cluster closed", CLOSED_COLOUR)

    def _log_line(self, event) -> str | None:
        if event.kind == "WriteTimedOut":
            self.write_timeouts += 1
            burst = event.time - self._last_timeout_line < TIMEOUT_LOG_GAP_S
            self._last_timeout_line = event.time
            if burst:
                return None
        if event.kind == "RaftRoleChanged":
            previous = self._terms.get(event.node)
            self._terms[event.node] = event.term
            if event.role == CANDIDATE and previous == event.term:
                # PreVote: it asks first whether it could win, without a new term
                return stamped(event, f"{event.node} heard no leader: it asks whether it "
                                      f"could win an election (pre-vote, still term {event.term})")
        text = describe_raft(event)
        return None if text is None else stamped(event, text)

    def _end_window(self, at: float) -> None:
        if self._window_start is not None:
            self.windows.append(Window(int(self._window_start * 1000), int(at * 1000),
                                       self._window_label))
            self._window_start = None

    def show_closed(self) -> None:
        """The cluster is closed: say so and turn every button off; the chart keeps what
        it drew."""
        self.closed = True
        self.status.value = CLOSED_NOTE
        self.status.style.text_color = CLOSED_COLOUR
        for row in self.rows.values():
            for field in FIELDS:
                row[field].value = "–"
                row[field].style.background = "white"
            row["role"].value = "CLOSED"
        for label in (self.leader, self.commit_index, self.voters, self.learners):
            label.value = "–"
        self._enable_buttons()

    def _render_log(self) -> str:
        return render_log(self.log_lines, "elections, step-downs and membership, newest first",
                          empty="(nothing yet)", max_height="12em")

    # -- the recorded run as the simulator's picture ---------------------------------------
    def timeline(self) -> RaftTimeline:
        """What the panel recorded (its last samples, partitions shaded) as a
        :class:`RaftTimeline`: ``panel.timeline().figure(title=...)`` draws it like the
        simulator's runs, with wall-clock milliseconds since the panel started."""
        timeline = RaftTimeline(sim=None)        # fed, not sampling: it never reads sim
        timeline.samples = list(self.samples)
        timeline.windows = list(self.windows)
        if self._window_start is not None and timeline.samples:
            timeline.windows.append(Window(int(self._window_start * 1000),
                                           timeline.samples[-1].t_ms, self._window_label))
        return timeline

    def timeline_figure(self, *, since: float | None = None, title: str = "Raft, live"):
        """:meth:`timeline`'s figure, from wall-clock time ``since`` (``time.time()``) on,
        with the time axis labelled as what it is."""
        timeline = self.timeline()
        if since is not None:
            start_ms = int((since - self.started) * 1000)
            timeline.samples = [s for s in timeline.samples if s.t_ms >= start_ms]
            timeline.windows = [w for w in timeline.windows if w.end_ms >= start_ms]
        layout = timeline.figure(title=title)
        layout.children[-1].xaxis.axis_label = "ms since the panel started (wall clock)"
        return layout


__all__ = ["RAFT", "RaftChart", "RaftPanel", "RaftSampler", "describe_raft", "raft_view",
           "status"]
