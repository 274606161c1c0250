"""Raft you can poke: the simulator (or a live shard) drawn as RaftScope draws it, with controls.

:class:`RaftScope` shows a :class:`~workbench.raft.sim.Simulation` as a ring of servers
with messages moving between them and every server's log (see
:mod:`workbench.viz.raft_scope_drawing`), and lets the reader act on it: stop, restart,
time out or cut off a server, drop the next message from or to it, send a client
request, and run virtual time at 0.1x to 10x of the wall clock, or one event at a time.
A readout says what the simulator's safety checker has verified so far.

The animation is driven from the kernel: a callback on the kernel's own asyncio loop
advances virtual time by ``speed`` x the wall time since the previous frame and redraws,
so widgets are only ever touched from the kernel's thread and the scope runs in
JupyterLab and under nbclient alike. It starts paused, stops for good when the widget is
closed, and never runs while a cell computes. Cells drive the same scope with
:meth:`RaftScope.run`, :meth:`~RaftScope.step` and ``await`` :meth:`~RaftScope.play`.

:class:`~workbench.viz.raft_scope_live.LiveRaftScope` draws a live ``raft`` cluster the
same way.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections import deque
from typing import Callable

import ipywidgets as widgets

from ..raft.sim import Livelock, NetworkFaults, SafetyViolation, Simulation
from .bokehjs import display_with_bokehjs
from .charts import label, node_colour
from .raft_scope_drawing import LOG_WINDOW, ScopeDrawing, sim_scene
from .raft_scope_parts import (FRAME_S, MAX_FRAME_S, NOTES, Animator, ServerPicker, button,
                               render_notes)
from .raft_timeline import RaftTimeline, run_sampled

SPEEDS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
# How long a virtual second lasts at each speed, said in words.
LASTS = {0.1: "ten seconds", 0.25: "four seconds", 0.5: "two seconds", 1.0: "one second",
         2.0: "half a second", 5.0: "a fifth of a second", 10.0: "a tenth of a second"}
TIMELINE_SAMPLES = 20_000      # the recorded timeline keeps about this many samples
SAMPLE_EVERY_MS = 100          # virtual time between timeline samples (and at every change)
CHECKS = (
    ("election safety", "at most one leader per term"),
    ("log matching", "two logs with an entry of the same index and term agree up to it"),
    ("leader completeness", "every new leader holds every committed entry"),
    ("state-machine safety", "no two servers apply different entries at one index"),
)


def watchable_simulation(nodes: int = 5, *, seed=0, **kwargs) -> Simulation:
    """A simulation whose messages take 30 to 60 virtual ms: slow enough to follow each
    one at 0.1x (RaftScope's pace), with the usual 500-1000 ms election timeouts."""
    kwargs.setdefault("network", NetworkFaults(min_delay_ms=30, max_delay_ms=60))
    return Simulation(nodes, seed=seed, **kwargs)


class RaftScope(widgets.VBox):
    """A simulation, drawn and driven: display it like a widget.

    ``scope.picker`` holds the per-server levers (``picker.value`` is the server chosen;
    ``picker.buttons``: ``stop``, ``restart``, ``time_out``, ``drop``, ``cut``; a click
    on a server in the ring chooses it too), ``scope.states[node]`` each server's line;
    ``scope.play_button``, ``step_button``, ``speed_menu``, ``request_button`` and
    ``heal_button`` the rest. ``scope.drawing`` is the
    :class:`ScopeDrawing`, ``scope.timeline`` a :class:`RaftTimeline` of everything the
    scope ran (``scope.timeline.figure()`` draws it), ``scope.notes`` its log.
    """

    def __init__(self, sim: Simulation, *, speed: float = 0.1, log_window: int = LOG_WINDOW,
                 frame_s: float = FRAME_S, title: str = "Raft scope"):
        self.animator = Animator(self.frame, frame_s)    # first: close() stops it, whatever fails
        if not isinstance(sim, Simulation):
            raise TypeError("RaftScope draws a workbench.raft.sim.Simulation; for a live "
                            "cluster use viz.LiveRaftScope(cluster)")
        self.sim = sim
        self.timeline = RaftTimeline(sim)
        self.timeline.sample()
        self.notes: deque[str] = deque(maxlen=NOTES)
        self.requests: list[bytes] = []
        self.violation: AssertionError | None = None
        self._owed_ms = 0.0
        self._cells_playing = False
        self.drawing = ScopeDrawing(log_window=log_window)
        self.play_button = widgets.ToggleButton(value=False, description="play", icon="play",
                                                tooltip="run virtual time at the chosen speed",
                                                layout=widgets.Layout(width="7em"))
        self.play_button.add_class("wb-scope-play")
        self.play_button.observe(self._on_play, "value")
        self.step_button = button("step", "wb-scope-step", "pause, then go to the next event "
                                  "worth seeing: a message arrives, or a timer fires and does "
                                  "something", lambda: self._act(self._step_paused))
        self.speed_menu = widgets.Dropdown(
            options=[(f"{s:g}x", s) for s in SPEEDS], value=self._speed(speed),
            description="speed", tooltip="virtual time per wall-clock time",
            layout=widgets.Layout(width="10em"), style={"description_width": "4em"})
        self.speed_menu.add_class("wb-scope-speed")
        self.speed_menu.observe(lambda _: self._show_clock(), "value")
        self.request_button = button("client request", "wb-scope-request",
                                     "a client sends a command to the leader",
                                     lambda: self._act(self.client_request))
        self.heal_button = button("heal network", "wb-scope-heal",
                                  "reconnect every server and every link",
                                  lambda: self._act(self.heal))
        self.clock = label("", "wb-scope-clock")
        self.safety_view = widgets.HTML()
        self.safety_view.add_class("wb-scope-safety")
        self.notes_view = widgets.HTML()
        self.notes_view.add_class("wb-scope-notes")

        def lever(action):
            return lambda server: self._act(lambda: action(server))
        self.picker = ServerPicker([
            ("stop", "stop", "crash it: what it persisted stays on its disk",
             lever(self.stop_node)),
            ("restart", "restart", "start it again from its disk", lever(self.restart_node)),
            ("time_out", "time out", "fire its election timer now", lever(self.time_out)),
            ("drop", "drop next", "lose the next message from or to it", lever(self.drop_next)),
            ("cut", "cut off", "cut every link to it (again: reconnect)",
             lever(self._toggle_cut))], "wb-scope")
        self.picker.menu.observe(lambda _: self.render(), "value")
        self.drawing.on_tap(self._tapped)
        self.states: dict[str, widgets.Label] = {}
        self.table = widgets.VBox()
        self.table.add_class("wb-scope-nodes")
        controls = widgets.HBox([self.play_button, self.step_button, self.speed_menu,
                                 self.request_button, self.heal_button],
                                layout=widgets.Layout(grid_gap="6px", flex_flow="row wrap"))
        super().__init__([widgets.HBox([widgets.HTML(f"<b>{html.escape(title)}</b>"), self.clock],
                                       layout=widgets.Layout(grid_gap="12px")),
                          controls, self.drawing.widget, self.picker, self.table,
                          widgets.HBox([self.safety_view, self.notes_view],
                                       layout=widgets.Layout(grid_gap="24px"))],
                         layout=widgets.Layout(border="1px solid #ccc", padding="6px"))
        self.add_class("wb-raft-scope")
        self._roles = {}
        sim.observers.append(self._observe)
        self.animator.start()
        # Track the views in the page: a scope taken off the page (its cell run again)
        # pauses instead of animating for nobody.
        self._view_count = 0
        self.observe(self._on_views, "_view_count")
        self.render()

    def _ipython_display_(self, **kwargs) -> None:
        self.drawing.refresh()
        display_with_bokehjs(self)

    @staticmethod
    def _speed(speed: float) -> float:
        if speed not in SPEEDS:
            raise ValueError(f"speed must be one of {SPEEDS}, not {speed!r}")
        return speed

    # -- time ------------------------------------------------------------------------------
    @property
    def speed(self) -> float:
        return self.speed_menu.value

    @speed.setter
    def speed(self, value: float) -> None:
        self.speed_menu.value = self._speed(value)

    @property
    def playing(self) -> bool:
        return self.play_button.value

    @playing.setter
    def playing(self, value: bool) -> None:
        self.play_button.value = bool(value)

    def _on_play(self, change) -> None:
        self.play_button.description = "pause" if change["new"] else "play"
        self.play_button.icon = "pause" if change["new"] else "play"
        self._owed_ms = 0.0
        self._show_clock()

    def _on_views(self, change) -> None:
        if change["old"] and not change["new"]:
            self.playing = False

    def frame(self, wall_s: float) -> None:
        """One animation frame: while playing, advance ``speed`` x ``wall_s`` of virtual
        time, then redraw. The animator calls it; a test may too."""
        if self.playing and not self._cells_playing:
            self.advance(wall_s)

    def advance(self, wall_s: float, *, limit_ms: int | None = None) -> int:
        """Run ``speed`` x ``wall_s`` seconds of virtual time (at most ``limit_ms``) and
        redraw; returns the virtual milliseconds run. Fractions of a millisecond carry
        over to the next call, so many short frames add up exactly."""
        self._owed_ms += wall_s * 1000 * self.speed
        ms = int(self._owed_ms)
        if limit_ms is not None:
            ms = min(ms, limit_ms)
        self._owed_ms -= ms
        if ms > 0:
            self.run(ms)
        return ms

    def run(self, ms: int) -> None:
        """Run ``ms`` of virtual time at once (sampling the timeline), then redraw."""
        self._guarded(lambda: run_sampled(self.sim, self.timeline, ms,
                                          every_ms=SAMPLE_EVERY_MS))
        self.render()

    def run_until(self, condition: Callable[[], bool], *, timeout_ms: int) -> bool:
        """Run until ``condition()`` holds (checked after every event) or ``timeout_ms``
        of virtual time passed; redraw; return whether it held."""
        held = self._guarded(lambda: run_sampled(self.sim, self.timeline, timeout_ms,
                                                 every_ms=SAMPLE_EVERY_MS, until=condition))
        self.render()
        return bool(held)

    def step(self, events: int = 1) -> list:
        """Handle the next ``events`` events worth seeing (ticks that change nothing --
        a timer counting down -- are passed over) and redraw; returns the
        :class:`~workbench.raft.sim.SimEvent` of each."""
        seen = []

        def go():
            while len(seen) < events:
                event = self.sim.step()
                if event is None:
                    break
                self.timeline.sample(if_changed=True)
                if not event.quiet:
                    seen.append(event)
        self._guarded(go)
        self._owed_ms = 0.0
        self.render()
        return seen

    def _step_paused(self) -> None:
        self.playing = False
        self.step()

    async def play(self, ms: int, *, speed: float | None = None) -> None:
        """Animate ``ms`` of virtual time at ``speed`` (default: the speed menu's) and return
        when it has run: ``await scope.play(2000)`` in a cell. The outcome is the same as
        ``run(ms)``'s; only the wall time it takes differs."""
        if speed is not None:
            self.speed = speed
        self._cells_playing = True
        done, last = 0, time.monotonic()
        try:
            while done < ms and self.violation is None:
                await asyncio.sleep(self.animator.interval)
                now = time.monotonic()
                done += self.advance(min(now - last, MAX_FRAME_S), limit_ms=ms - done)
                last = now
        finally:
            self._cells_playing = False
            self._owed_ms = 0.0

    # -- actions ---------------------------------------------------------------------------
    def stop_node(self, node_id: str) -> None:
        self.sim.crash(node_id)
        self.note(f"{node_id} stopped (crashed: what it persisted stays on its disk)")

    def restart_node(self, node_id: str) -> None:
        self.sim.restart(node_id)
        self.note(f"{node_id} restarted from its disk, as a follower")

    def time_out(self, node_id: str) -> bool:
        started = self.sim.time_out(node_id)
        self.note(f"{node_id}'s election timer fired: " + (
            "it asks for (pre-)votes" if started else "nothing to do (it leads, or is down)"))
        return started

    def drop_next(self, node_id: str, direction: str = "any"):
        taken = self.sim.drop_next(node_id, direction)
        if taken is None:
            self.note(f"the next message {'from or to' if direction == 'any' else direction} "
                      f"{node_id} will be dropped")
        else:
            m = taken.message
            self.note(f"dropped {type(m).__name__} {m.src} → {m.dst}")
        return taken

    def cut_off(self, node_id: str) -> None:
        self.sim.disconnect(node_id)
        self.note(f"{node_id} cut off from every other server")

    def reconnect(self, node_id: str) -> None:
        self.sim.connect(node_id)
        self.note(f"{node_id} reconnected")

    def heal(self) -> None:
        self.sim.heal()
        self.note("network healed: every link works again")

    def client_request(self, data: bytes | None = None) -> int | None:
        """A client sends ``data`` (default ``x1``, ``x2``...) to the leader; returns the
        log index it got, or None when no server leads to take it."""
        data = data if data is not None else b"x%d" % (len(self.requests) + 1)
        leader = self.sim.leader()
        index = self.sim.propose(data)
        if index is None:
            self.note(f"client request {data.decode(errors='replace')}: no leader to take it")
            return None
        self.requests.append(data)
        self.note(f"client request {data.decode(errors='replace')} → {leader}: log index {index}")
        return index

    def committed_requests(self) -> list[bytes]:
        """The client requests sent through the scope that committed (some server applied
        them), in the order they were sent."""
        committed = {entry.data for entry in self.sim.safety.committed.values()}
        return [data for data in self.requests if data in committed]

    def note(self, text: str) -> None:
        self.notes.append(f"{self.sim.now_ms:>7} ms  {text}")

    def _act(self, action: Callable[[], object]) -> None:
        """A button press: do it, never raise into the page, redraw."""
        if self.violation is not None:
            return
        try:
            self._guarded(action)
        except Exception as err:
            self.note(f"refused: {err}")
        self.render()

    def _guarded(self, action: Callable[[], object]):
        """Run ``action``; a safety violation (or a livelock) stops the scope and is shown."""
        try:
            return action()
        except (SafetyViolation, Livelock) as violation:
            self.violation = violation
            self.playing = False
            self.note(f"STOPPED: {str(violation).splitlines()[0]}")
            return None

    def _observe(self, node, ready) -> None:
        soft = ready.soft_state
        if soft is None or node.core is None:
            return
        role, term = soft.role.value, node.core.term
        previous = self._roles.get(node.id)
        if previous == (role, term):
            return
        self._roles[node.id] = (role, term)
        if previous is not None and previous[0] == "leader":
            self.note(f"{node.id} stepped down: it is a {role} in term {term}")
        elif role == "leader":
            self.note(f"{node.id} won the election of term {term}")
        elif role == "candidate":
            self.note(f"{node.id} stands for election in term {term}")
        elif role == "pre-candidate":
            self.note(f"{node.id} heard no leader: asks for pre-votes (still term {term})")

    # -- what a check says -----------------------------------------------------------------
    def safety(self) -> dict:
        """The simulator's safety checks so far: ``ok``, the ``violation`` (text or None),
        how many terms had a leader, how many (index, term) entries were compared across
        logs, and how many entries were applied identically everywhere."""
        checker = self.sim.safety
        violation = None if self.violation is None else str(self.violation).splitlines()[0]
        return {"ok": self.violation is None, "violation": violation,
                "property": getattr(self.violation, "prop", None),
                "terms_led": len(checker.leader_of_term),
                "leaders": dict(sorted(checker.leader_of_term.items())),
                "entries_compared": len(checker.stored),
                "committed": len(checker.committed),
                "events": self.sim.events_handled}

    # -- drawing ---------------------------------------------------------------------------
    def render(self) -> None:
        """Redraw the picture, the rows, the clock, the safety readout and the log."""
        if len(self.timeline.samples) > 2 * TIMELINE_SAMPLES:   # a long session: forget the oldest
            del self.timeline.samples[:-TIMELINE_SAMPLES]
        scene = sim_scene(self.sim, log_tail=self.drawing.log_window)
        self._follow_nodes([node["id"] for node in scene["nodes"]])
        self.drawing.draw(scene, selected=self.picker.value)
        for node in scene["nodes"]:
            self.states[node["id"]].value = _state_line(node)
        self._show_levers(scene)
        self._show_clock()
        self.safety_view.value = self._render_safety()
        self.notes_view.value = render_notes(list(self.notes), "what happened, newest first")

    def _show_clock(self) -> None:
        state = ("stopped by a safety violation" if self.violation is not None else
                 "playing" if self.playing else "paused")
        flying = len(self.drawing.sources["messages"].data["x"])
        self.clock.value = (f"t = {self.sim.now_ms} ms (virtual), {state} at {self.speed:g}x "
                            f"(a virtual second lasts {LASTS[self.speed]}); {flying} messages "
                            "in flight")

    def _render_safety(self) -> str:
        s = self.safety()
        facts = {"election safety": f"{s['terms_led']} terms had a leader, one each",
                 "log matching": f"{s['entries_compared']} distinct entries compared across logs",
                 "leader completeness": f"checked at each of the {s['terms_led']} elections won",
                 "state-machine safety": f"{s['committed']} entries applied, the same on every "
                                         "server that applied them"}
        lines = []
        for name, rule in CHECKS:
            failed = s["property"] == name
            mark = "&#10007;" if failed else "&#10003;"
            colour = "#c62828" if failed else "#1b7a1b"
            lines.append(f"<div title='{html.escape(rule)}'><span style='color:{colour}'>"
                         f"{mark}</span> {name}: {html.escape(facts[name])}</div>")
        if s["violation"]:
            lines.append(f"<div style='color:#c62828'>{html.escape(s['violation'])}</div>")
        sent, done = len(self.requests), len(self.committed_requests())
        lines.append(f"<div>client requests: {sent} sent, {done} committed</div>")
        return ("<div style='font-size:12px'><b>safety, checked at every event</b>"
                + "".join(lines) + "</div>")

    def _follow_nodes(self, ids: list[str]) -> None:
        self.picker.follow(ids)
        if list(self.states) == ids:
            return
        for node_id in ids:
            if node_id not in self.states:
                self.states[node_id] = label("", "wb-scope-state", f"wb-scope-state-{node_id}")
        self.table.children = [
            widgets.HBox([widgets.HTML(f"<b style='color:{node_colour(node_id)}'>{node_id}</b>",
                                       layout=widgets.Layout(width="3em")),
                          self.states[node_id]]) for node_id in ids]

    def _tapped(self, node_id: str) -> None:
        self.picker.value = node_id

    def _toggle_cut(self, node_id: str) -> None:
        if node_id in self.sim.disconnected:
            self.reconnect(node_id)
        else:
            self.cut_off(node_id)

    def _show_levers(self, scene: dict) -> None:
        """Turn off what cannot be done now: nothing after a safety violation, no stop for a
        down server, no time out for a leader."""
        stopped = self.violation is not None
        node = next((n for n in scene["nodes"] if n["id"] == self.picker.value), None)
        levers = self.picker.buttons
        for lever in (*levers.values(), self.play_button, self.step_button,
                      self.request_button, self.heal_button):
            lever.disabled = stopped
        if node is None:
            return
        levers["stop"].disabled |= not node["alive"]
        levers["time_out"].disabled |= not node["alive"] or node["role"] == "leader"
        levers["cut"].description = "reconnect" if node["cut_off"] else "cut off"
        self.picker.summary.value = f"{node['id']}: {_state_line(node)}"

    # -- closing ---------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the animation and let the simulation go; the widget disappears."""
        self.animator.stop()
        if hasattr(self, "drawing"):        # built (a failed __init__ reaches here too)
            if self._observe in self.sim.observers:
                self.sim.observers.remove(self._observe)
            self.drawing.widget.close()
        super().close()


def _state_line(node: dict) -> str:
    """One server in a line: its role, term, commit index and timer (or what its disk holds)."""
    if not node["alive"]:
        return f"down (its disk: term {node['term']}, {len(node['log'])} entries)"
    timer = "" if node["timer_ms"] is None else f", election timer {node['timer_ms']} ms"
    cut = ", cut off" if node["cut_off"] else ""
    return (f"{node['role']}, term {node['term']}, commit {node['commit_index']} of "
            f"{node['last_index']}{timer}{cut}")


__all__ = ["LASTS", "RaftScope", "SPEEDS", "watchable_simulation"]
