"""The control panel: a card per node, buttons to break things, and a log of what happened.

Buttons act through the same public API a test uses (``node.kill()``,
``node.restart()``, ``cluster.partition()``, ``cluster.heal()``). What the cards show
comes only from snapshots and events drained by the :class:`~workbench.viz.pump.UiPump`,
so a card shows what the cluster *reports*, never what a button hoped for.

In a ``sync`` cluster each card also says whether the primary waits for that node
(eligible, revoking, ineligible: see :mod:`workbench.viz.sync`), and the log tells
grants, revocations and writes that timed out.

Closing the cluster (``cluster.close()``, or the button of :class:`CloseButton`) turns
every control off and says so: a closed cluster has nothing left to kill.
"""

from __future__ import annotations

import threading
import time

import ipywidgets as widgets

from .charts import CLOSED_COLOUR, node_colour
from .eventlog import log_line, render_log
from .pump import EVENTS, SNAPSHOT, UiPump
from .sync import PRIMARY, STATE_COLOURS, SYNC, SyncSampler, state_text

ROLE_COLOURS = {"primary": "#1b7a1b", "replica": "#1f4e9c", "KILLED": "#c62828",
                "CLOSED": CLOSED_COLOUR}
CLOSED_NOTE = "the cluster is closed: its nodes are stopped, so the buttons are off"
LOG_LINES = 14


class NodeCard(widgets.VBox):
    """One node: its status, numbers, and its kill / power-kill / restart buttons; in a
    ``sync`` cluster also its eligibility, as the primary sees it."""

    def __init__(self, panel: "ControlPanel", node, *, sync: bool = False):
        self.node = node
        self.panel = panel
        title = widgets.HTML(f"<b style='color:{node_colour(node.name)}'>{node.name}</b>"
                             f" <span style='color:#666'>127.0.0.1:{node.port}</span>")
        self.status = self._label("waiting for the first snapshot…", "wb-node-status",
                                  bold=True)
        self.offset = self._label("–", "wb-node-offset")
        self.key_count = self._label("–", "wb-node-keys")
        self.aof_fsynced = self._label("–", "wb-node-aof")
        self.link = self._label("–", "wb-node-link")
        rows = [self._label("replication offset"), self.offset,
                self._label("keys"), self.key_count,
                self._label("AOF fsynced"), self.aof_fsynced,
                self._label("link"), self.link]
        self.eligibility = None
        if sync:
            self.eligibility = self._label("–", "wb-node-eligibility")
            rows += [self._label("eligibility"), self.eligibility]
        facts = widgets.GridBox(
            rows, layout=widgets.Layout(grid_template_columns="9.5em auto", grid_gap="0 6px"))
        self.kill = self._button("Kill", "wb-kill", "Crash: memory is gone, files survive",
                                 lambda _: panel.act(f"kill {node.name}", node.kill))
        self.power_kill = self._button(
            "Power kill", "wb-power-kill", "Crash and lose what was not fsynced",
            lambda _: panel.act(f"power-kill {node.name}",
                                lambda: node.kill(power_loss=True)))
        self.restart = self._button("Restart", "wb-restart", "Start again from disk",
                                    lambda _: panel.act(f"restart {node.name}", node.restart,
                                                        background=True))
        self.restart.disabled = True
        buttons = widgets.HBox([self.kill, self.power_kill, self.restart])
        super().__init__([title, self.status, facts, buttons], layout=widgets.Layout(
            border=f"2px solid {node_colour(node.name)}", padding="6px", margin="0 8px 0 0",
            width="290px"))
        self.add_class("wb-node-card")

    @staticmethod
    def _label(value: str, css_class: str | None = None, *, bold: bool = False):
        label = widgets.Label(value, style={"font_weight": "bold"} if bold else {})
        if css_class:
            label.add_class(css_class)
        return label

    @staticmethod
    def _button(text: str, css_class: str, tooltip: str, handler):
        button = widgets.Button(description=text, tooltip=tooltip,
                                layout=widgets.Layout(width="auto"))
        button.add_class(css_class)
        button.on_click(handler)
        return button

    def show(self, state: dict) -> None:
        """Render one node's part of a snapshot (kernel thread, via the pump)."""
        if state["alive"]:
            role = state["role"]
            self.status.value = role
            self.status.style.text_color = ROLE_COLOURS.get(role, "black")
            self.offset.value = str(state["offset"])
            self.key_count.value = str(state["keys"])
            fsynced = state["aof_fsynced"]
            self.aof_fsynced.value = "AOF off" if fsynced is None else f"{fsynced} bytes"
            if state.get("raft"):
                self.link.value = (f"leads term {state['epoch']}" if state["link"] is None
                                   else f"follows {state['primary']}, term {state['epoch']}"
                                   if state["link"] == "following"
                                   else f"no leader yet, term {state['epoch']}")
            else:
                self.link.value = (f"{state['link']} to {state['primary']}" if state["link"]
                                   else "— (serves writes)")
        else:
            self.status.value = "KILLED"
            self.status.style.text_color = ROLE_COLOURS["KILLED"]
            for label in (self.offset, self.key_count, self.aof_fsynced, self.link):
                label.value = "–"
        self.kill.disabled = self.power_kill.disabled = not state["alive"]
        self.restart.disabled = state["alive"]

    def show_sync(self, node: dict, state: dict) -> None:
        """Render this node's part of a sync state (kernel thread, via the pump)."""
        # Short: a card is narrow. The sync panel has the acknowledged offsets.
        if node["state"] == PRIMARY:
            text = f"waits for {', '.join(state['eligible']) or 'nobody'}"
        else:
            text = state_text(node)
        self.eligibility.value = text
        self.eligibility.style.text_color = STATE_COLOURS.get(node["state"], "black")

    def show_closed(self) -> None:
        """The cluster is closed: say so, and turn every button off."""
        self.status.value = "CLOSED"
        self.status.style.text_color = ROLE_COLOURS["CLOSED"]
        for label in (self.offset, self.key_count, self.aof_fsynced, self.link):
            label.value = "–"
        if self.eligibility is not None:
            self.eligibility.value = "–"
        for button in (self.kill, self.power_kill, self.restart):
            button.disabled = True
            button.tooltip = CLOSED_NOTE


class ControlPanel(widgets.VBox):
    """Cards for every node of ``cluster``, cluster-wide buttons and an event log."""

    def __init__(self, cluster, pump: UiPump | None = None):
        self.cluster = cluster
        self.closed = False
        sync = getattr(cluster, "mode", None) == "sync"
        self.sync = sync
        self.cards = {node.name: NodeCard(self, node, sync=sync) for node in cluster.nodes}
        self.network = widgets.HTML("<i>network: waiting for the first snapshot…</i>")
        self.network.add_class("wb-cluster-status")
        partition = widgets.Button(description="Partition the primary away",
                                   icon="scissors", layout=widgets.Layout(width="auto"),
                                   tooltip="Cut the current primary off from all other nodes")
        partition.add_class("wb-partition-primary")
        partition.on_click(lambda _: self.act("partition", self.partition_primary))
        heal = widgets.Button(description="Heal the network", icon="link",
                              layout=widgets.Layout(width="auto"))
        heal.add_class("wb-heal")
        heal.on_click(lambda _: self.act("heal", cluster.heal))
        self.cluster_buttons = (partition, heal)
        self.log_lines: list[str] = []
        self.event_log = widgets.HTML(self._render_log())
        self.event_log.add_class("wb-event-log")
        super().__init__([
            self._card_row(),
            widgets.HBox([partition, heal, self.network],
                         layout=widgets.Layout(align_items="center", margin="6px 0")),
            self.event_log,
        ])
        self.add_class("wb-control-panel")
        self.pump = pump or UiPump.for_cluster(cluster)
        self.pump.on(SNAPSHOT, self._apply_snapshot)
        self.pump.on(EVENTS, self._apply_events)
        if sync:
            self.pump.sample(SYNC, SyncSampler.for_cluster(cluster))
            self.pump.on(SYNC, self._apply_sync)

    # -- actions (kernel thread, from button clicks) --------------------------------------
    def act(self, what: str, action, *, background: bool = False) -> None:
        """Run a button's action; its outcome shows up through the pump, like any change.
        ``background``: on a thread of its own, for an action that can take seconds (a
        restart replays the node's log) -- the notebook stays responsive meanwhile."""
        if self.closed or self.cluster.closed:
            self.pump.append(EVENTS, _Note(f"{what}: {CLOSED_NOTE}"))
            self.pump.flush()
            self.show_closed()
            return

        def run() -> None:
            try:
                action()
            except Exception as err:   # a click must never raise into the void
                self.pump.append(EVENTS, _Note(f"{what} failed: {err}"))
            self.pump.sample_now()
        if background:
            threading.Thread(target=run, name=f"workbench-{what}", daemon=True).start()
        else:
            run()

    def partition_primary(self) -> None:
        """Isolate the current primary from every other node."""
        primary = self.cluster.current_primary()
        if primary is None:
            raise RuntimeError("there is no single primary right now")
        self.cluster.partition([primary.name],
                               [n.name for n in self.cluster.nodes if n is not primary])

    # -- appliers (kernel thread, called by the pump) -----------------------------------
    def show_closed(self) -> None:
        """The cluster is closed: every card and button says so and turns off."""
        self.closed = True
        for card in self.cards.values():
            card.show_closed()
        for button in self.cluster_buttons:
            button.disabled = True
            button.tooltip = CLOSED_NOTE
        self.network.value = f"<b style='color:{ROLE_COLOURS['CLOSED']}'>{CLOSED_NOTE}</b>"

    def _apply_snapshot(self, snapshot: dict) -> None:
        if self.closed:
            return
        self._follow_membership(snapshot)
        for name, card in self.cards.items():
            card.show(snapshot[name])
        groups = snapshot["_partition"]
        if groups:
            parts = " | ".join("[" + ", ".join(g) + "]" for g in groups)
            self.network.value = f"<b style='color:#c62828'>network: partitioned {parts}</b>"
        else:
            self.network.value = "network: whole"

    def _card_row(self) -> widgets.HBox:
        self.card_row = widgets.HBox(list(self.cards.values()))
        return self.card_row

    def _follow_membership(self, snapshot: dict) -> None:
        """Nodes added since the last snapshot get a card; removed ones lose theirs."""
        names = [name for name in snapshot if not name.startswith("_")]
        if list(self.cards) == names:
            return
        by_name = {node.name: node for node in self.cluster.nodes}
        self.cards = {name: self.cards.get(name) or NodeCard(self, by_name[name], sync=self.sync)
                      for name in names if name in self.cards or name in by_name}
        self.card_row.children = tuple(self.cards.values())

    def _apply_sync(self, state: dict) -> None:
        if self.closed:
            return
        for name, card in self.cards.items():
            if name in state["nodes"]:
                card.show_sync(state["nodes"][name], state)

    def _apply_events(self, events: list) -> None:
        for event in events:
            if event.kind == "ClusterClosed":
                self.show_closed()
            line = log_line(event)
            if line is not None:
                self.log_lines.append(line)
        del self.log_lines[:-LOG_LINES]
        self.event_log.value = self._render_log()

    def _render_log(self) -> str:
        return render_log(self.log_lines, "recent events, newest first",
                          empty="(no events yet)", max_height="13em")


class _Note:
    """A line for the log that is not a cluster event (a failed click, say)."""

    kind = "Note"

    def __init__(self, text: str):
        self.text = text
        self.time = time.time()
        self.node = "panel"


class CloseButton(widgets.Button):
    """Shuts ``cluster`` down when pressed: the last cell of a notebook with live controls,
    so that *Run All* leaves the cluster running for the reader to play with."""

    def __init__(self, cluster, pump: UiPump | None = None):
        super().__init__(description="Shut the cluster down", icon="power-off",
                         tooltip="Stop every node and remove its files (cluster.close())",
                         button_style="warning", layout=widgets.Layout(width="auto"))
        self.add_class("wb-close-cluster")
        self.cluster = cluster
        # Taken now: once the cluster is closed its pump stops, and a new one would not watch.
        self.pump = pump or UiPump.for_cluster(cluster)
        self.on_click(lambda _: self.close_cluster())
        self.pump.on(EVENTS, self._apply_events)

    def close_cluster(self) -> None:
        self.cluster.close()
        self.pump.flush()   # the ClusterClosed event is here: show it in this click

    def _apply_events(self, events: list) -> None:
        if any(event.kind == "ClusterClosed" for event in events):
            self.disabled = True
            self.description = "The cluster is closed"
