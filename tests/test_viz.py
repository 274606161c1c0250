"""The notebook viewers, driven from Python: the offset chart's data as the page sees it,
closing a cluster, and what each viewer puts on a page."""

from __future__ import annotations

import threading

import pytest
import redis
from bokeh.core.serialization import Serializer
from IPython.core.interactiveshell import InteractiveShell
from IPython.display import display
from IPython.utils.capture import capture_output

import workbench as wb
from conftest import wait_for
from workbench import events as ev
from workbench.viz import (CloseButton, ControlPanel, GatePanel, OffsetChart, RaftPanel,
                           SyncPanel, UiPump, show_figure)
from workbench.viz.bokehjs import LOAD_MIME_TYPE
from workbench.viz.charts import lost_writes_figure
from workbench.viz import raft_chart, raft_live
from workbench.viz.pump import EVENTS, SNAPSHOT
from workbench.viz.raft_chart import RaftChart
from workbench.viz.raft_live import describe_raft, raft_view
from workbench.viz.sync import SYNC, status, sync_state

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class PageMirror:
    """What jupyter_bokeh's view in the page does with a widget's Bokeh document: apply
    every change the kernel sends to the page's own copy of each data source (a patch
    at row n of a column of length n appends, as a JavaScript array does), then send
    the change back to the kernel as a "jsevent", as the view does with every change."""

    def __init__(self, widget):
        self.widget = widget
        self.columns: dict[str, dict[str, list]] = {}   # model id -> the page's columns
        self.updates = 0
        document = widget._model.document
        for model in document.models:
            if hasattr(model, "data") and hasattr(model, "stream"):
                self.columns[model.id] = {k: list(v) for k, v in model.data.items()}
        document.on_change(self._on_change)

    def _on_change(self, event) -> None:
        if event.setter is self.widget:      # the page's own echo coming in: not sent out
            return
        page = self.columns[event.model.id]
        if event.kind == "ColumnsStreamed":
            for name, values in event.data.items():
                page[name].extend(values)
                if event.rollover is not None:       # BokehJS drops the oldest rows too
                    del page[name][:-event.rollover]
        elif event.kind == "ColumnsPatched":
            for name, patches in event.patches.items():
                for row, value in patches:
                    if row == len(page[name]):
                        page[name].append(value)
                    else:
                        page[name][row] = value
        else:
            return
        self.updates += 1
        content = Serializer(references=set(self.widget._model.document.models)).encode(event)
        self.widget._sync_model(self.widget, {**content, "event": "jsevent"}, [])

    def of(self, source) -> dict[str, list]:
        return self.columns[source.id]


class FakeCluster:
    """Just the names a chart needs: it is fed through a pump, never by the cluster."""

    class _Node:
        def __init__(self, name):
            self.name = name

    def __init__(self, names=("n1", "n2", "n3")):
        self.nodes = [self._Node(n) for n in names]


def snapshot(at: float, offset: int) -> dict:
    nodes = {name: {"offset": offset} for name in ("n1", "n2", "n3")}
    return {**nodes, "_time": at, "_partition": ()}


def test_offset_chart_shades_every_partition_in_the_page():
    """Reproduction: in the tour, Partition -> Heal -> Partition -> Heal left the page's
    partition source with 2 start values and 3 end values (and the browser console with
    hundreds of "columns of inconsistent lengths" warnings): the second window was never
    shaded. The page sends every stream it applied back to the kernel, which streamed it
    a second time; the chart then took its row numbers from the doubled kernel copy and
    patched past the end of the page's. Here the page is mirrored as jupyter_bokeh's
    view behaves, and every update must leave it with one window per partition."""
    pump = UiPump()                       # outside a kernel: drains at once, on this thread
    chart = OffsetChart(FakeCluster(), pump)
    page = PageMirror(chart.widget)
    t0 = chart.started
    offset = 0

    def tick(at: float) -> None:
        nonlocal offset
        offset += 100
        pump.publish(SNAPSHOT, snapshot(t0 + at, offset))
        windows = page.of(chart.partitions)
        assert len(windows["start"]) == len(windows["end"]), windows
        lines = page.of(chart.source)
        assert len({len(column) for column in lines.values()}) == 1, lines

    at = 0.0
    for _ in range(3):
        for _ in range(3):
            at += 0.2
            tick(at)
        pump.append(EVENTS, ev.Partitioned("n1", groups=(("n1",), ("n2", "n3")), time=t0 + at))
        for _ in range(5):
            at += 0.2
            tick(at)
        pump.append(EVENTS, ev.Healed("n1", time=t0 + at))
        for _ in range(3):
            at += 0.2
            tick(at)

    windows = page.of(chart.partitions)
    assert len(windows["start"]) == len(windows["end"]) == 3, windows
    assert all(start < end for start, end in zip(windows["start"], windows["end"])), windows
    assert windows == {k: list(v) for k, v in chart.partitions.data.items()}
    assert page.updates > 40


def test_closing_a_cluster_is_not_a_crash():
    """Reproduction: closing the tour's cluster logged three "nK crashed (killed)" events
    (and drew three overlapping crash labels on the chart). Closing publishes one
    ClusterClosed, the last event a subscriber gets, and no NodeKilled."""
    cluster = wb.Cluster(mode="async", nodes=3, down_after_ms=1000)
    seen = []
    cluster.events.subscribe(seen.append)
    cluster.nodes[1].kill()                           # a real crash, for contrast
    cluster.close()           # returns once every subscriber has had what was published

    kinds = [event.kind for event in seen]
    assert kinds.count("NodeKilled") == 1 and seen[kinds.index("NodeKilled")].node == "n2"
    assert kinds[-1] == "ClusterClosed", kinds
    assert seen[-1].nodes == ("n1", "n2", "n3")


def test_viewers_of_a_closed_cluster_say_so_and_turn_off():
    """Reproduction: after Run All the tour's last cell had closed the cluster, yet every
    button stayed live and only answered "kill n1: the cluster is closed" after a click;
    the log showed the closing as crashes; the gate panel's Pause button showed a raw
    "Error 111 connecting to 127.0.0.1:...". Now the CloseButton (or cluster.close())
    turns every control off and every viewer says plainly that the cluster is closed."""
    cluster = wb.Cluster(mode="aof")
    try:
        pump = UiPump.for_cluster(cluster)
        panel, chart = ControlPanel(cluster, pump), OffsetChart(cluster, pump)
        gate = GatePanel(cluster, pump=pump)
        done = CloseButton(cluster, pump)
        until(lambda: panel.cards["n1"].status.value == "primary", timeout=5, pump=pump,
              what="a snapshot to reach the panel")
        assert not panel.cards["n1"].kill.disabled and not gate.pause.disabled

        done.click()
    finally:
        cluster.close()

    card = panel.cards["n1"]
    assert card.status.value == "CLOSED"
    assert card.kill.disabled and card.power_kill.disabled and card.restart.disabled
    assert all(button.disabled for button in panel.cluster_buttons)
    assert "cluster is closed" in panel.network.value
    log = "\n".join(panel.log_lines)
    assert "cluster closed: n1 shut down on purpose (not a crash)" in log
    assert "crashed" not in log
    assert done.disabled and done.description == "The cluster is closed"

    assert list(chart.marks["crash"].data["text"]) == []
    assert list(chart.marks["closed"].data["text"]) == ["cluster closed"]

    assert gate.pause.disabled and "cluster is closed" in gate.status.value
    gate.pause.disabled = False          # a click that raced the close
    gate.pause.value = True
    assert "cluster is closed" in gate.status.value and "Error" not in gate.status.value

    panel.act("kill n1", cluster.nodes[0].kill)
    assert panel.log_lines[-1].endswith("kill n1: the cluster is closed: its nodes are "
                                        "stopped, so the buttons are off")


@pytest.fixture
def shell():
    return InteractiveShell.instance()


def displayed(shell, show) -> list[dict]:
    with capture_output() as captured:
        show()
    return [output.data for output in captured.outputs]


def test_every_chart_brings_bokehjs_before_it(shell, aof_node):
    """Reproduction: after a browser refresh with the kernel still running, running the
    chart cell again failed with "Failed to create view for 'BokehView' ... reading
    'require'": the Bokeh widget needs BokehJS in the page, and only the output of the
    notebook's output_notebook() cell had put it there. Every viewer that draws with
    Bokeh now displays the BokehJS load right before its widget."""
    pump = UiPump.for_cluster(aof_node)
    viewers = {
        "offset chart": lambda: display(OffsetChart(aof_node, pump)),
        "gate panel": lambda: display(GatePanel(aof_node, pump=pump)),
        "a static figure": lambda: show_figure(lost_writes_figure(10, 7)),
    }
    for name, show in viewers.items():
        outputs = displayed(shell, show)
        assert [LOAD_MIME_TYPE in data for data in outputs] == [True, False], name
        assert WIDGET_VIEW in outputs[1], name
        load = outputs[0][LOAD_MIME_TYPE]
        assert load.startswith("if (window.Bokeh === undefined") and len(load) > 10**6


# -- sync mode: who the primary waits for --------------------------------------------------

def until(condition, *, timeout: float, what: str, pump=None) -> None:
    """Poll ``condition()`` (taking a fresh sample first, if given a pump) until it holds."""
    def sampled():
        if pump is not None:
            pump.sample_now()
        return condition()
    wait_for(sampled, timeout, what)


def cells(panel, name: str) -> dict[str, str]:
    """The values of one node's row in a SyncPanel, by column."""
    return {field: cell.value for field, cell in panel.rows[name].items() if field != "node"}


def test_sync_panel_follows_a_replica_from_eligible_to_down_and_back():
    """A learner watching a sync cluster sees each replica's eligibility and acknowledged
    offset on the panel and on the node cards, live: kill an eligible replica and it is
    revoked (recorded by the monitors) and shown down; restart it and it earns its grant
    again. Everything shown came through the pump from snapshots and events."""
    cluster = wb.Cluster(mode="sync", nodes=3, down_after_ms=500)
    try:
        pump = UiPump.for_cluster(cluster)
        panel, sync = ControlPanel(cluster, pump), SyncPanel(cluster, pump)
        client = cluster.client()
        for i in range(20):
            client.set(f"k{i}", i)
        executed = cluster.nodes[0].gate_snapshot()["executed_offset"]
        until(lambda: sync.committed_offset.value == str(executed)
              and sync.recorded.value.startswith("n2, n3"), timeout=5, pump=pump,
              what="the panel to show the writes committed and n2, n3 recorded")
        assert sync.primary.value == "n1" and sync.executed_offset.value == str(executed)
        assert sync.eligible.value == "2: n2, n3  (writes need at least 1)"
        for name in ("n2", "n3"):
            assert cells(sync, name) == {"state": "eligible", "acked": str(executed),
                                         "behind": "0", "own-grant": "yes", "recorded": "yes"}
        assert cells(sync, "n1")["state"] == "primary"
        assert panel.cards["n1"].eligibility.value == "waits for n2, n3"
        assert panel.cards["n3"].eligibility.value == "eligible"
        assert sync.status.value == "every write waits for n2, n3 (eligible)"

        cluster.nodes[2].kill()
        client.set("after-kill", 1)          # answered once n3's revocation is recorded
        until(lambda: cells(sync, "n3")["state"] == "down"
              and sync.eligible.value.startswith("1: n2"), timeout=5, pump=pump,
              what="n3 shown down and no longer eligible")
        assert panel.cards["n3"].eligibility.value == "down"
        assert panel.cards["n1"].eligibility.value == "waits for n2"
        revoked = "n1 stopped waiting for n3 (disconnected), recorded by a majority of monitors"
        assert any(revoked in line for line in sync.log_lines), sync.log_lines
        assert any(revoked in line for line in panel.log_lines), panel.log_lines
        assert list(sync.marks["revoked"].data["text"]) == ["n3 revoked"]

        cluster.nodes[2].restart()
        until(lambda: cells(sync, "n3")["state"] == "eligible", timeout=5, pump=pump,
              what="the restarted n3 to be granted again")
        assert "n3 eligible" in list(sync.marks["granted"].data["text"])
        assert any("n3 holds no grant any more (restarted)" in line for line in sync.log_lines)
        # the chart drew a point per sample, the acked line of each replica included
        columns = {name: list(values) for name, values in sync.source.data.items()}
        assert len(columns["t"]) >= 3 and columns["acked_n2"][-1] == columns["executed"][-1]
    finally:
        cluster.close()
    assert sync.status.value.startswith("the cluster is closed")
    assert cells(sync, "n2")["state"] == "–"
    assert panel.cards["n2"].eligibility.value == "–"


def test_sync_panel_shows_a_revocation_waiting_for_the_monitors_and_the_held_write():
    """One primary, one replica: the replica dies, and the primary cannot have its
    revocation recorded (one monitor of two is no majority). The panel says the replica
    is being revoked, shows the write whose reply is held (executed ahead of committed),
    and counts the write when it times out with the indefinite NOREPLICAS."""
    cluster = wb.Cluster(mode="sync", nodes=2, down_after_ms=500, durability_timeout_ms=1500)
    try:
        pump = UiPump.for_cluster(cluster)
        sync = SyncPanel(cluster, pump)
        client = cluster.client(client_name="held-writer")
        client.set("before", 1)
        until(lambda: cells(sync, "n2")["state"] == "eligible", timeout=5, pump=pump,
              what="n2 eligible")
        cluster.nodes[1].kill()
        outcome = []
        writer = threading.Thread(target=lambda: outcome.append(_set_or_error(client)))
        writer.start()
        until(lambda: "held-writer" in sync.held_replies.value
              and cells(sync, "n2")["state"] == "revoking (disconnected), node down", timeout=1.2,
              pump=pump, what="the held write and the pending revocation on the panel")
        assert "clients with held replies: 1" in sync.held_replies.value
        executed, committed = int(sync.executed_offset.value), sync.committed_offset.value
        assert committed.endswith("bytes not yet acknowledged)")
        assert int(committed.split()[0]) < executed
        assert sync.status.value.startswith("revoking n2: every write waits for it")
        writer.join(5)
        assert outcome and outcome[0].startswith("NOREPLICAS Timed out"), outcome
        assert "outcome unknown" in outcome[0]
        until(lambda: sync.timeouts.value == "1", timeout=2, pump=pump,
              what="the timed-out write to be counted")
        assert list(sync.marks["timeout"].data["text"]) == ["n1: writes time out"]
        assert any("NOREPLICAS, outcome unknown" in line for line in sync.log_lines)
        assert cells(sync, "n2")["state"] == "revoking (disconnected), node down"   # no majority
    finally:
        cluster.close()


def _set_or_error(client) -> str:
    try:
        return repr(client.set("held", 1))
    except redis.RedisError as err:
        return str(err)


def test_async_and_aof_viewers_have_no_sync_parts():
    """The sync additions stay out of the other modes' views: no eligibility row on the
    cards, no sync sampler in the pump, and a SyncPanel refuses another mode."""
    cluster = wb.Cluster(mode="async", nodes=2, down_after_ms=500)
    try:
        pump = UiPump.for_cluster(cluster)
        panel = ControlPanel(cluster, pump)
        assert all(card.eligibility is None for card in panel.cards.values())
        assert SYNC not in pump._samplers
        with pytest.raises(ValueError, match="mode 'sync'"):
            SyncPanel(cluster, pump)
        until(lambda: panel.cards["n1"].status.value == "primary", timeout=5, pump=pump,
              what="the async card")
    finally:
        cluster.close()


def test_the_control_panel_follows_nodes_added_and_removed():
    """A node added gets a card, a node removed loses its; a raft card says whom it
    follows, in which term."""
    cluster = wb.Cluster(mode="raft", nodes=3)
    try:
        pump = UiPump.for_cluster(cluster)
        panel = ControlPanel(cluster, pump)
        leader = cluster.primary().name
        follower = next(n for n in cluster.names if n != leader)
        until(lambda: panel.cards[follower].link.value == f"follows {leader}, term 1",
              timeout=5, pump=pump, what="the follower's card")
        added = cluster.add_node()
        until(lambda: list(panel.cards) == cluster.names, timeout=5, pump=pump,
              what="a card for the added node")
        cluster.remove_node(follower)
        until(lambda: list(panel.cards) == cluster.names and added.name in panel.cards,
              timeout=5, pump=pump, what="the removed node's card to go")
        assert len(panel.card_row.children) == 3
    finally:
        cluster.close()


def test_sync_state_names_an_old_primary_and_an_unreachable_node():
    """The pure part of the sampler: a node that still says "master" while the monitors
    named another primary is the old primary (a split brain); a node that did not answer
    INFO is unreachable, one that is not running is down; acknowledged offsets come from
    the gate for eligible replicas and from the primary's slave lines for the others."""
    gate = {"alive": True, "executed_offset": 500, "committed_offset": 400,
            "held_replies": [], "uncommitted_keys": 1, "durability_replicas": 1,
            "eligible": {"n2": 400}, "revoking": {}}
    infos = {"n1": {"role": "master"},
             "n2": {"role": "master", "slave0": {"port": 7003, "offset": 450},
                    "slave1": {"port": 7004, "offset": 400}},
             "n3": {"role": "slave", "replica_eligible": 0, "slave_repl_offset": 450},
             "n4": {"role": "slave", "replica_eligible": 1, "slave_repl_offset": 400},
             "n5": None, "n6": {}}
    state = sync_state("n2", {**gate, "eligible": {"n4": 400}}, infos,
                       {"epoch": 4, "primary": "n2", "eligible": ["n4"]},
                       {7003: "n3", 7004: "n4"})
    nodes = state["nodes"]
    assert [nodes[n]["state"] for n in sorted(nodes)] == [
        "old primary", "primary", "ineligible", "eligible", "down", "unreachable"]
    assert nodes["n3"]["acked_offset"] == 450 and nodes["n3"]["own_grant"] is False
    assert nodes["n4"]["acked_offset"] == 400 and nodes["n4"]["own_grant"] is True
    assert state["eligible"] == ["n4"]
    assert status(state)[0] == "every write waits for n4 (eligible)"
    nobody = sync_state(None, None, {"n1": None, "n2": {"role": "slave", "replica_eligible": 0}},
                        None, {})
    assert nobody["nodes"]["n2"]["state"] == "ineligible"
    assert status(nobody)[0].startswith("no primary: only an eligible replica may be promoted")


def test_the_sync_panel_brings_bokehjs_before_it(shell):
    cluster = wb.Cluster(mode="sync", nodes=2, down_after_ms=500)
    try:
        outputs = displayed(shell, lambda: display(SyncPanel(cluster)))
        assert [LOAD_MIME_TYPE in data for data in outputs] == [True, False]
        assert WIDGET_VIEW in outputs[1]
    finally:
        cluster.close()


# -- raft mode: roles, terms, commit indexes, membership ------------------------------------

def raft_rows(panel) -> dict[str, dict[str, str]]:
    """The values of every row of a RaftPanel, by node and column."""
    return {name: {field: row[field].value for field in raft_live.FIELDS}
            for name, row in panel.rows.items()}


def roles(panel) -> dict[str, str]:
    return {name: row["role"] for name, row in raft_rows(panel).items()}


def leader_shown(panel) -> str | None:
    leaders = [name for name, role in roles(panel).items() if role == "leader"]
    return leaders[0] if len(leaders) == 1 else None


@pytest.fixture
def raft3():
    with wb.Cluster(mode="raft", nodes=3) as cluster:
        yield cluster


def test_raft_panel_shows_the_shard_and_a_new_leader_after_the_leader_is_killed(raft3):
    """A row per node with its role, term, indexes and the leader's match index for it,
    all from raft_state() through the pump; kill the leader with its row's button and the
    panel shows it down, a new leader elected in a higher term, the election in the log
    and on the chart; restart it and it follows the new leader."""
    pump = UiPump.for_cluster(raft3)
    panel = RaftPanel(raft3, pump)
    first = raft3.primary().name
    client = raft3.client()
    for i in range(20):
        client.set(f"k{i}", i)
    commit = raft3.raft_state()[first]["commit_index"]

    def caught_up() -> bool:
        rows = raft_rows(panel)
        return (leader_shown(panel) == first
                and all(row["commit"] == row["applied"] == str(commit) for row in rows.values()))
    until(caught_up, timeout=5, pump=pump, what="the panel to show the writes committed everywhere")
    rows = raft_rows(panel)
    for name, row in rows.items():
        assert row["term"] == "1" and row["leader"] == first and row["member"] == "voter"
        assert row["match"] == ("(the leader)" if name == first else str(commit)), row
    assert sorted(roles(panel).values()) == ["follower", "follower", "leader"]
    assert panel.status.value == (f"{first} leads term 1: a write is acknowledged once 2 of 3 "
                                  "voters stored it (3 running)")
    assert panel.voters.value == "3: n1, n2, n3  (a majority is 2; 3 running)"
    assert panel.rows[first]["role"].style.background == raft_live.ROLE_FILL["leader"]

    panel.rows[first]["kill"].click()
    until(lambda: leader_shown(panel) not in (None, first), timeout=10, pump=pump,
          what="a new leader on the panel")
    second = leader_shown(panel)
    assert raft_rows(panel)[first]["role"] == "down"
    assert int(raft_rows(panel)[second]["term"]) >= 2
    assert panel.rows[first]["kill"].disabled and not panel.rows[first]["restart"].disabled
    until(lambda: any(f"{second} won the election" in line for line in panel.log_lines),
          timeout=5, pump=pump, what="the election in the log")
    assert any(f"{first} crashed (killed)" in line for line in panel.log_lines)
    marks = list(panel.chart.marks.data["text"])
    assert f"{first} killed" in marks and any(m.startswith(f"{second} leads term") for m in marks)
    # the lanes: the killed node's segment is down, the winner's last is leader
    lanes = {k: list(v) for k, v in panel.chart.lanes.data.items()}
    mine = [role for node, role in zip(lanes["node"], lanes["role"]) if node == first]
    assert mine[-1] == "down" and "leader" in mine

    panel.rows[first]["restart"].click()
    until(lambda: raft_rows(panel)[first]["role"] == "follower"
          and raft_rows(panel)[first]["leader"] == second, timeout=10, pump=pump,
          what=f"{first} back as a follower of {second}")
    timeline = panel.timeline()
    assert timeline.nodes == ["n1", "n2", "n3"]
    assert "down" in [role for _, _, role in timeline.segments(first)]
    panel.timeline_figure(title="killed and back")        # the simulator's picture draws it


def test_raft_panel_follows_a_node_added_and_one_removed(raft3):
    """The Add button runs cluster.add_node() in the background (the kernel stays free):
    the new node gets a row, goes from learner to voter, and the log tells both steps once
    (every member reports them). Removing a node takes its row away."""
    pump = UiPump.for_cluster(raft3)
    panel = RaftPanel(raft3, pump)
    until(lambda: leader_shown(panel) is not None, timeout=5, pump=pump, what="a leader")

    panel.add.click()
    assert panel.add.disabled, "one membership change at a time"
    until(lambda: raft_rows(panel).get("n4", {}).get("member") == "voter"
          and not panel.add.disabled, timeout=15, pump=pump, what="n4 shown as a voter")
    assert list(panel.rows) == ["n1", "n2", "n3", "n4"]
    assert panel.voters.value == "4: n1, n2, n3, n4  (a majority is 3; 4 running)"
    log = "\n".join(panel.log_lines)
    assert log.count("membership: n4 joined as a learner") == 1, log
    promoted = "membership: n4 promoted to voter: voters n1, n2, n3, n4, a majority is 3"
    assert log.count(promoted) == 1, log
    assert "add a node: done (n4)" in log
    assert [m for m in panel.chart.marks.data["text"] if m.startswith("n4")] == [
        "n4 learner", "n4 voter"]

    removed = next(name for name in ("n1", "n2", "n3") if name != leader_shown(panel))
    panel.rows[removed]["remove"].click()
    until(lambda: removed not in panel.rows and not panel.add.disabled, timeout=15, pump=pump,
          what=f"{removed}'s row to go")
    assert panel.learners.value == "none"
    assert panel.voters.value.startswith("3: ") and removed not in panel.voters.value
    assert any(f"membership: {removed} removed" in line for line in panel.log_lines)
    pump.sample_now()                                   # a sample after the removal
    lanes = {k: list(v) for k, v in panel.chart.lanes.data.items()}
    last_end = max(lanes["end"])
    assert all(end < last_end for node, end in zip(lanes["node"], lanes["end"]) if node == removed)


def test_raft_panel_turns_off_when_the_cluster_closes(shell):
    """Closing the cluster (here with the CloseButton) turns every button of the panel
    off, and the rows, the status and the log say so; a click that raced the close says
    the cluster is closed."""
    cluster = wb.Cluster(mode="raft", nodes=3)
    try:
        pump = UiPump.for_cluster(cluster)
        panel = RaftPanel(cluster, pump)
        outputs = displayed(shell, lambda: display(panel))      # charts bring BokehJS along
        assert [LOAD_MIME_TYPE in data for data in outputs] == [True, False]
        done = CloseButton(cluster, pump)
        until(lambda: leader_shown(panel) is not None, timeout=5, pump=pump, what="a leader")
        assert not panel.add.disabled and not panel.rows["n1"]["remove"].disabled
        done.click()
    finally:
        cluster.close()

    assert panel.closed and panel.status.value.startswith("the cluster is closed")
    assert set(roles(panel).values()) == {"CLOSED"}
    assert panel.add.disabled
    assert all(row[button].disabled for row in panel.rows.values()
               for button in ("kill", "restart", "remove"))
    assert "cluster closed: n1, n2, n3 shut down on purpose (not a crash)" in panel.log_lines[-1]
    assert list(panel.chart.marks.data["text"])[-1] == "cluster closed"
    panel.act("kill n1", cluster.nodes[0].kill)
    assert panel.log_lines[-1].endswith("kill n1: the cluster is closed: its nodes are stopped, "
                                        "so the buttons are off")


def test_raft_panel_is_for_raft_clusters(aof_node):
    with pytest.raises(ValueError, match="mode 'raft'"):
        RaftPanel(aof_node)


def node_state(role, term, commit, *, leader=None, voters=("n1", "n2", "n3"), match=None,
               serving=True, last=None):
    return {"alive": True, "role": role, "term": term, "leader": leader, "commit_index": commit,
            "applied_index": commit, "last_index": commit if last is None else last,
            "first_index": 1, "voters": list(voters), "learners": [], "serving": serving,
            "match": match or {}, "log_terms": []}


DOWN_NODE = {"alive": False}


def test_raft_view_says_what_writes_do():
    """The pure part of the panel: who leads (the newest term's leader, as
    cluster.primary() says), a leader of an older term that does not know yet, the leader's
    match index on each follower's row, and the sentence about writes."""
    state = {"n1": node_state("leader", 2, 40, leader="n1", match={"n2": 40, "n3": 37}, last=41),
             "n2": node_state("follower", 2, 40, leader="n1"),
             "n3": node_state("follower", 2, 37, leader="n1")}
    view = raft_view(state)
    assert view["leader"] == "n1" and view["majority"] == 2
    assert view["rows"]["n2"]["match"] == 40 and view["rows"]["n2"]["behind"] == 1
    assert view["rows"]["n3"]["behind"] == 4 and view["rows"]["n1"]["match"] is None
    assert view["status"] == ("n1 leads term 2: a write is acknowledged once 2 of 3 voters "
                              "stored it (3 running)")

    cut_off = {**state, "n1": node_state("leader", 2, 40, leader="n1"),
               "n2": node_state("leader", 3, 41, leader="n2"),
               "n3": node_state("follower", 3, 41, leader="n2")}
    view = raft_view(cut_off)
    assert view["leader"] == "n2" and view["stale_leaders"] == ["n1"]
    assert view["status"].startswith("n2 leads term 3; n1 (term 2) still believes it leads")

    fresh = {**state, "n1": node_state("leader", 3, 40, leader="n1", serving=False)}
    assert raft_view(fresh)["status"].startswith("n1 won term 3: it serves once its first entry")

    lost = {"n1": node_state("candidate", 5, 40), "n2": DOWN_NODE, "n3": DOWN_NODE}
    view = raft_view(lost)
    assert view["leader"] is None and view["rows"]["n2"]["role"] == "down"
    assert view["status"].startswith("no leader: 1 of 3 voters running, a majority is 2")
    electing = {**lost, "n2": node_state("follower", 5, 40)}
    assert raft_view(electing)["status"].startswith("no leader: an election is running")


def test_raft_log_lines_in_the_domain_s_words():
    assert describe_raft(ev.RaftRoleChanged("n2", role="leader", term=3, leader="n2")) == (
        "n2 won the election: leader of term 3")
    assert describe_raft(ev.RaftRoleChanged("n3", role="follower", term=3, leader="n2")) is None
    assert describe_raft(ev.RaftSteppedDown(
        "n1", term=2, disconnected_clients=1, discarded_entries=2, rollback_ms=0.25)) == (
        "n1 stepped down (term 2): 2 uncommitted entries rolled back in 0.2 ms, 1 held clients "
        "disconnected (outcome unknown)")
    assert describe_raft(ev.RaftMembershipChanged(
        "n1", action="promote", member="n4", voters=("n1", "n2", "n3", "n4"), learners=())) == (
        "membership: n4 promoted to voter: voters n1, n2, n3, n4, a majority is 3")
    assert describe_raft(ev.RaftCommitted("n1", commit_index=9, entries=1, term=1)) is None
    assert describe_raft(ev.Partitioned("network", groups=(), one_way=(("n1", "n2"),))) == (
        "one-way cut: what n1 sends to n2 is lost")
    assert describe_raft(ev.Healed("network")).startswith("network healed")


def test_raft_chart_keeps_the_page_in_step_when_old_rows_roll_over(monkeypatch):
    """The lanes stretch each node's open segment with a patch and open a new one when
    its role changes; old segments roll over. A patch must still hit the right row after
    the rows shifted, in the kernel's copy and in the page's (mirrored as jupyter_bokeh's
    view behaves)."""
    monkeypatch.setattr(raft_chart, "MAX_SEGMENTS", 5)
    chart = RaftChart(started=0.0, history=4)
    page = PageMirror(chart.widget)
    cycle = ["follower", "candidate", "leader", "down"]
    for step in range(40):
        rows = {}
        for index, name in enumerate(("n1", "n2", "n3")):
            role = cycle[(step // (index + 2)) % len(cycle)]
            down = role == "down"
            rows[name] = {"role": role, "term": None if down else 1 + step // 4,
                          "commit": None if down else step}
        if step >= 20:
            rows.pop("n3")                        # removed: its lane ends
        chart.add_sample(step * 0.2, rows)
        lanes = page.of(chart.lanes)
        assert lanes == {k: list(v) for k, v in chart.lanes.data.items()}
        assert len(lanes["start"]) <= 5
        for name, row in chart._open.items():     # each open segment is the node's newest
            assert lanes["node"][row] == name and lanes["role"][row] == rows[name]["role"]
            assert lanes["end"][row] == step * 0.2
        steps = page.of(chart.steps)
        assert steps == {k: list(v) for k, v in chart.steps.data.items()}
        assert len(steps["t1"]) <= 4 * len(rows)
    assert "n3" not in chart._open


def test_restart_button_runs_off_the_clicking_thread():
    """A restart replays the node's log (seconds for a long raft log, on a busy machine):
    the click hands it to a thread of its own, so the notebook that clicked stays free;
    the card follows when the node is back."""
    with wb.Cluster(mode="aof", nodes=1) as cluster:
        pump = UiPump.for_cluster(cluster)
        panel = ControlPanel(cluster, pump)
        node = cluster.nodes[0]
        node.kill()
        started, threads = threading.Event(), []
        real_restart = node.restart

        def slow_restart():
            threads.append(threading.current_thread())
            started.set()
            real_restart()
        node.restart = slow_restart
        panel.cards["n1"].restart.click()
        wait_for(started.is_set, 10, "the restart to begin")
        until(lambda: panel.cards["n1"].status.value == "primary", timeout=20, pump=pump,
              what="the card to show the restarted node")
        assert node.alive and threads[0] is not threading.main_thread()
        pump.close()
