"""A live ``raft`` shard in the Raft scope's picture, with its levers.

:class:`LiveRaftScope` draws what :class:`~workbench.viz.raft_scope.RaftScope` draws for
the simulator -- the ring of servers coloured by role and term, messages as dots, every
server's log with its commit index -- from a live cluster: ``cluster.raft_state()``,
sampled by the cluster's :class:`~workbench.viz.pump.UiPump`, and the cluster's events.
Its levers are the cluster's own: kill, restart, cut a node off, heal, and a client write.
"""

from __future__ import annotations

import html
import threading
import time
from collections import deque
from typing import Callable

import ipywidgets as widgets

from .bokehjs import display_with_bokehjs
from .charts import label, node_colour
from .pump import EVENTS, UiPump
from .raft_live import RAFT, RaftSampler
from .raft_scope_drawing import (APPEND, LOG_WINDOW, PRE_VOTE, REQUEST, VOTE, ScopeDrawing,
                                 live_scene)
from .raft_scope_parts import FRAME_S, NOTES, Animator, ServerPicker, button, render_notes

CLOSED_NOTE = "the cluster is closed: its nodes are stopped, so the buttons are off"
FLIGHT_S = 0.6                 # how long an inferred message takes to cross the picture


class LiveRaftScope(widgets.VBox):
    """A live ``raft`` cluster in the scope's picture, with its kill / restart / cut-off
    levers. Display it like a widget.

    It reads ``cluster.raft_state()`` (roles, terms, commit indexes, the last 40 entries'
    terms) five times a second through the cluster's :class:`UiPump`, and its events. A
    live shard reports neither its messages nor its election timers, so: no timer arcs,
    and the messages drawn are *inferred* -- an append from the leader when a follower's
    log grew, vote requests from a node that became a candidate -- not every heartbeat.
    For a failover slow enough to watch, start the cluster with a long
    ``election_timeout_ms`` (say 3000): the followers then wait 3 to 6 s before standing.
    """

    def __init__(self, cluster, pump: UiPump | None = None, *, log_window: int = LOG_WINDOW,
                 frame_s: float = FRAME_S, title: str = "Raft scope, live"):
        self.animator = Animator(self._frame, frame_s)
        if getattr(cluster, "mode", None) != "raft":
            raise ValueError(f"LiveRaftScope shows a cluster in mode 'raft', not "
                             f"{getattr(cluster, 'mode', None)!r}")
        self.cluster = cluster
        self.closed = False
        self.nodes: dict = {}                    # the newest raft_state()
        self.flights: list[dict] = []
        self.cut: set[tuple[str, str]] = set()
        self.notes: deque[str] = deque(maxlen=NOTES)
        self.writes = 0
        self._terms: dict[str, int] = {}         # node -> the term of its last role change
        self.drawing = ScopeDrawing(log_window=log_window)
        self.status = label("waiting for the first sample…", "wb-scope-live-status")
        self.heal_button = button("heal network", "wb-scope-live-heal",
                                  "cluster.heal(): every link works again",
                                  lambda: self.act("heal", cluster.heal))
        self.write_button = button("client write", "wb-scope-live-write",
                                   "SET a key on the leader (in the background)",
                                   self.client_write)
        self.notes_view = widgets.HTML(render_notes([], "what happened, newest first"))

        def lever(what, action):
            return lambda name: self.act(f"{what} {name}", lambda: action(name))
        self.picker = ServerPicker([
            ("kill", "kill", "crash it: its Raft log survives",
             lever("kill", lambda name: cluster.node(name).kill())),
            ("restart", "restart", "start it from its Raft log",
             lever("restart", lambda name: cluster.node(name).restart())),
            ("cut", "cut off", "partition it from the others",
             lever("cut off", lambda name: cluster.partition(
                 [name], [other for other in cluster.names if other != name])))],
            "wb-scope-live")
        self.picker.menu.observe(lambda _: self.render(time.monotonic()), "value")
        self.drawing.on_tap(self._tapped)
        self.states: dict[str, widgets.Label] = {}
        self.table = widgets.VBox()
        super().__init__([widgets.HBox([widgets.HTML(f"<b>{html.escape(title)}</b>"), self.status],
                                       layout=widgets.Layout(grid_gap="12px")),
                          widgets.HBox([self.write_button, self.heal_button]),
                          self.drawing.widget, self.picker, self.table, self.notes_view],
                         layout=widgets.Layout(border="1px solid #ccc", padding="6px"))
        self.add_class("wb-raft-scope-live")
        self.pump = pump or UiPump.for_cluster(cluster)
        self.pump.sample(RAFT, RaftSampler(cluster))
        self.pump.on(RAFT, self._apply_state)
        self.pump.on(EVENTS, self._apply_events)
        self._done_key = f"scope-write-{id(self)}"
        self.pump.on(self._done_key, self._write_done)

    def _ipython_display_(self, **kwargs) -> None:
        self.drawing.refresh()
        display_with_bokehjs(self)

    # -- appliers (kernel thread, from the pump) -----------------------------------------
    def _apply_state(self, state: dict) -> None:
        if self.closed:
            return
        nodes = state["nodes"]
        now = time.monotonic()
        leader = max((n for n, s in nodes.items() if s.get("alive") and s["role"] == "leader"),
                     key=lambda n: nodes[n]["term"], default=None)
        if leader is not None:
            for name, node in nodes.items():
                before = self.nodes.get(name, {})
                if (name != leader and node.get("alive") and before.get("alive")
                        and node["last_index"] > before["last_index"]):
                    count = node["last_index"] - before["last_index"]
                    self._fly(leader, name, f"append: {count} new entr"
                              f"{'y' if count == 1 else 'ies'} (inferred)", APPEND, REQUEST, now)
        self.nodes = nodes
        self._follow_nodes(list(nodes))
        served = f"{leader} leads term {nodes[leader]['term']}" if leader else "no leader"
        self.status.value = (f"{served}; {sum(1 for n in nodes.values() if n.get('alive'))} "
                             f"of {len(nodes)} nodes running")
        self.render(now)

    def _apply_events(self, events: list) -> None:
        now = time.monotonic()
        for event in events:
            kind = event.kind
            if self.closed:
                return
            if kind == "RaftRoleChanged":
                previous = self._terms.get(event.node, self.nodes.get(event.node, {}).get("term"))
                self._terms[event.node] = event.term
            if kind == "RaftRoleChanged" and event.role == "candidate":
                # A node reports "candidate" for its pre-vote too, still in its old term.
                pre_vote = previous == event.term
                what = "pre-vote request" if pre_vote else "vote request"
                voters = self.nodes.get(event.node, {}).get("voters") or list(self.nodes)
                for other in voters:
                    if other != event.node:
                        self._fly(event.node, other, f"{what}, term {event.term} (inferred)",
                                  PRE_VOTE if pre_vote else VOTE, REQUEST, now)
                self.note(f"{event.node} heard no leader: asks for pre-votes (still term "
                          f"{event.term})" if pre_vote else
                          f"{event.node} stands for election in term {event.term}")
            elif kind == "RaftRoleChanged" and event.role == "leader":
                self.note(f"{event.node} won the election of term {event.term}")
            elif kind == "RaftSteppedDown":
                self.note(f"{event.node} stepped down in term {event.term}, "
                          f"{event.discarded_entries} uncommitted entries rolled back")
            elif kind == "NodeKilled":
                self.note(f"{event.node} killed")
            elif kind == "NodeRestarted":
                self.note(f"{event.node} restarted from its Raft log")
            elif kind == "Partitioned":
                if event.groups:
                    side = {n: i for i, group in enumerate(event.groups) for n in group}
                    self.cut = {(a, b) for a in side for b in side
                                if a != b and side[a] != side[b]}
                self.cut |= set(map(tuple, event.one_way))
                self.note("network: " + (" | ".join(",".join(g) for g in event.groups)
                                         if event.groups else "one-way cut"))
            elif kind == "Healed":
                self.cut = set()
                self.note("network healed")
            elif kind == "ClusterClosed":
                self.show_closed()
        if not self.closed:
            self.render(now)

    def _fly(self, src: str, dst: str, text: str, colour: str, size: int, now: float) -> None:
        self.flights.append({"src": src, "dst": dst, "text": text, "colour": colour,
                             "size": size, "start": now, "end": now + FLIGHT_S})
        self.animator.start()

    def _frame(self, wall_s: float) -> None:
        if self.closed:
            self.animator.stop()
            return
        if self.flights:
            self.render(time.monotonic())

    def render(self, now: float) -> None:
        self.flights = [f for f in self.flights if f["end"] > now]
        scene = live_scene(self.nodes, self.flights, self.cut, now)
        self.drawing.draw(scene, selected=self.picker.value)
        for node in scene["nodes"]:
            if node["id"] in self.states:
                self.states[node["id"]].value = _state_line(node)
        self._show_levers(scene)
        self.notes_view.value = render_notes(list(self.notes), "what happened, newest first")

    # -- levers ----------------------------------------------------------------------------
    def _follow_nodes(self, names: list[str]) -> None:
        self.picker.follow(names)
        if list(self.states) == names:
            return
        for name in names:
            if name not in self.states:
                self.states[name] = label("", "wb-scope-live-state", f"wb-scope-live-state-{name}")
        self.table.children = [
            widgets.HBox([widgets.HTML(f"<b style='color:{node_colour(name)}'>{name}</b>",
                                       layout=widgets.Layout(width="3em")),
                          self.states[name]]) for name in names]

    def _tapped(self, name: str) -> None:
        self.picker.value = name

    def _show_levers(self, scene: dict) -> None:
        node = next((n for n in scene["nodes"] if n["id"] == self.picker.value), None)
        levers = self.picker.buttons
        for lever in levers.values():
            lever.disabled = self.closed
        if node is None or self.closed:
            return
        levers["kill"].disabled = not node["alive"]
        levers["restart"].disabled = node["alive"]
        self.picker.summary.value = f"{node['id']}: {_state_line(node)}"

    def act(self, what: str, action: Callable[[], object]) -> None:
        """A quick lever (kill, restart, cut off, heal): do it now; the picture follows
        through the pump."""
        if self.closed or self.cluster.closed:
            self.show_closed()
            return
        try:
            action()
        except Exception as err:   # a click must never raise into the void
            self.note(f"{what} failed: {err}")
        self.pump.sample_now()

    def client_write(self) -> None:
        """SET a fresh key through the cluster's client, in a thread (the reply waits for
        the commit); the outcome lands in the log."""
        if self.closed or self.cluster.closed:
            self.show_closed()
            return
        self.writes += 1
        number = self.writes
        key = f"scope:{number}"

        def run():
            try:
                client = self.cluster.client(socket_timeout=5)
                try:
                    reply = client.set(key, number)
                finally:
                    client.close()
                outcome = f"SET {key}: {reply!r} (acknowledged: a majority stored it)"
            except Exception as err:
                outcome = f"SET {key}: {type(err).__name__}: {err}"
            self.pump.publish(self._done_key, outcome)
        threading.Thread(target=run, name="workbench-scope-write", daemon=True).start()

    def _write_done(self, outcome: str) -> None:
        self.note(outcome)
        self.notes_view.value = render_notes(list(self.notes), "what happened, newest first")

    def note(self, text: str) -> None:
        self.notes.append(f"{time.strftime('%H:%M:%S')}  {text}")

    def show_closed(self) -> None:
        """The cluster is closed: say so, and turn the levers off."""
        if self.closed:
            return
        self.closed = True
        self.animator.stop()
        self.status.value = CLOSED_NOTE
        self.note("cluster closed")
        for lever in self.picker.buttons.values():
            lever.disabled = True
        self.heal_button.disabled = self.write_button.disabled = True
        self.notes_view.value = render_notes(list(self.notes), "what happened, newest first")

    def close(self) -> None:
        self.closed = True
        self.animator.stop()
        if hasattr(self, "drawing"):
            self.drawing.widget.close()
        super().close()


def _state_line(node: dict) -> str:
    if not node["alive"]:
        return "down"
    return (f"{node['role']}, term {node['term']}, commit {node['commit_index']} of "
            f"{node['last_index']}")


__all__ = ["CLOSED_NOTE", "LiveRaftScope"]
