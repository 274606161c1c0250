"""Replays of recorded runs and the live event-fed view: real clusters recorded through
crashes, a partition and a failover, checked at chosen instants against what happened;
the widgets' state asserted in plain Python; the shootout's recordings and static replay."""

from __future__ import annotations

import json
import threading
import time

import pytest
from bokeh.embed import file_html
from bokeh.models import Slider
from bokeh.resources import INLINE

import workbench as wb
from conftest import wait_for
from workbench import events as ev
from workbench.clusterstate import ClusterState
from workbench.history import report, shootout
from workbench.history.model import History
from workbench.recording import Recording
from workbench.viz import LiveView, Replay
from workbench.viz.replay_chart import play_pace, static_replay, step_times
from workbench.viz.state_table import COLUMNS, node_row


row_columns = [column for column, _ in COLUMNS[1:]]


def status(replay, name: str) -> str:
    return replay.view.table.rows[name]["status"].value


def cell(view, column: str, name: str) -> str:
    return view.table.rows[name][column].value


def settled_state(cluster):
    cluster.recording.settle()
    return cluster.recording.state_at(time.time())


# -- a real async cluster: a crash, a partition, a failover ------------------------------------

@pytest.fixture(scope="module")
def async_run(tmp_path_factory):
    """An async cluster recorded through a crash and restart of n3, then n1 cut away
    from the others until the monitors promote a replica, then the heal. Returns the
    recording and the instants (wall clock) between the steps."""
    at = {}
    with wb.Cluster(mode="async", nodes=3, down_after_ms=500, record=True) as cluster:
        client = cluster.client()
        for i in range(50):
            client.set(f"k{i}", i)
        at["offset"] = client.info("replication")["master_repl_offset"]
        wait_for(lambda: all(n.offset == at["offset"]
                             for n in settled_state(cluster).nodes.values()),
                 10, "every node's offset in the recording")
        at["written"] = time.time()
        cluster.node("n3").kill()
        at["killed"] = time.time()
        cluster.node("n3").restart()
        wait_for(lambda: settled_state(cluster).nodes["n3"].link == "connected", 10,
                 "n3 to be connected again")
        at["restarted"] = time.time()
        cluster.partition(["n1"], ["n2", "n3"])
        wait_for(lambda: cluster.current_primary() is not None
                 and cluster.current_primary().name != "n1", 15, "a failover")
        at["promoted"] = cluster.current_primary().name
        wait_for(lambda: settled_state(cluster).chosen_primary == at["promoted"], 5,
                 "the failover in the recording")
        at["failed_over"] = time.time()
        cluster.heal()
        wait_for(lambda: cluster.node("n1").role == "replica", 15, "n1 to rejoin as a replica")
        wait_for(lambda: settled_state(cluster).nodes["n1"].role == "replica", 5,
                 "n1's new role in the recording")
        at["healed"] = time.time()
        recording = cluster.recording
    path = recording.save(tmp_path_factory.mktemp("replay") / "async.jsonl")
    return recording, at, path


def test_the_recorded_state_at_each_instant_is_what_happened(async_run):
    recording, at, _ = async_run
    written = recording.state_at(at["written"])
    assert written.primary == "n1" and written.faults() == []
    assert {n.name: (n.alive, n.offset) for n in written.nodes.values()} == {
        name: (True, at["offset"]) for name in ("n1", "n2", "n3")}
    assert written.nodes["n1"].acked == {"n2": at["offset"], "n3": at["offset"]}

    killed = recording.state_at(at["killed"])
    assert killed.faults() == ["n3 killed"] and not killed.nodes["n3"].alive

    assert recording.state_at(at["restarted"]).faults() == []

    split = recording.state_at(at["failed_over"])
    assert split.faults() == ["partition [n1] | [n2, n3]"]
    assert split.primary == at["promoted"] and split.epoch >= 1
    assert split.nodes["n1"].role == "primary"    # the cut-off primary does not know yet

    healed = recording.state_at(at["healed"])
    assert healed.faults() == [] and healed.primary == at["promoted"]
    assert healed.nodes["n1"].role == "replica" and healed.nodes["n1"].primary == at["promoted"]
    assert recording.state_at(recording.end_time()).closed


def test_the_replay_widget_shows_each_instant(async_run):
    recording, at, _ = async_run
    replay = Replay(recording)
    start = recording.start_time()
    assert replay.slider.value == replay.slider.max         # opens at the end
    assert replay.state["closed"]

    replay.slider.value = replay.step_at(at["written"] - start)
    assert [status(replay, n) for n in ("n1", "n2", "n3")] == ["running"] * 3
    assert cell(replay.view, "role", "n1") == "primary (serves writes)"

    # the partition lasted at least the monitors' down_after_ms: its middle is a step
    (cut, healed, _), = [w for w in recording.fault_windows() if w[2].startswith("partition")]
    assert healed - cut >= 0.5
    replay.slider.value = replay.step_at((cut + healed) / 2 - start)
    assert "partition [n1] | [n2, n3]" in replay.view.summary.value
    assert replay.view.chart.cursor.location == pytest.approx(
        replay.seconds(replay.slider.value), abs=1e-3)
    assert replay.clock.value.startswith(f"t = {replay.seconds(replay.slider.value):.2f} s")

    # every step draws exactly the recorded state at its instant
    for step in range(0, len(replay.times), 3):
        replay.slider.value = step
        state = recording.state_at(replay.times[step]).as_dict()
        for name in ("n1", "n2", "n3"):
            assert {column: cell(replay.view, column, name) for column in row_columns} == \
                {column: node_row(state, name)[column] for column in row_columns}

    # the chart: one line per node, the crash and the partition shaded, the crash marked
    labels = list(replay.view.chart.windows.data["label"])
    assert "n3 killed" in labels and "partition [n1] | [n2, n3]" in labels
    assert "n3 killed" in list(replay.view.chart.marks.data["text"])
    assert f"{at['promoted']} promoted" in list(replay.view.chart.marks.data["text"])
    assert replay.view.chart.names == ["n1", "n2", "n3"]
    assert max(v for v in replay.view.chart.source.data["n1"] if v == v) >= at["offset"]


def test_a_saved_recording_replays_the_same(async_run):
    recording, _, path = async_run
    live, saved = Replay(recording), Replay(path)
    assert saved.times == live.times
    for step in (0, len(live.times) // 3, len(live.times) // 2, len(live.times) - 1):
        live.slider.value = saved.slider.value = step
        assert saved.state == live.state
        assert saved.view.summary.value == live.view.summary.value


# -- a real raft shard, watched live and replayed -----------------------------------------------

def test_a_raft_leader_crash_live_and_replayed():
    with wb.Cluster(mode="raft", nodes=3, record=True) as cluster:
        view = LiveView("raft", cluster.names)
        view.load_state(settled_state(cluster))     # a viewer joining a running shard
        cluster.events.subscribe(view.feed)
        assert all(cell(view, "status", name) == "running" for name in cluster.names)
        old = cluster.primary(timeout=10).name
        client = cluster.client()
        for i in range(20):
            client.set(f"k{i}", i)
        old_term = cluster.raft_state()[old]["term"]
        cluster.node(old).kill()
        killed_at = time.time()
        wait_for(lambda: cluster.current_primary() is not None, 15, "a new leader")
        new = cluster.primary().name
        new_state = cluster.raft_state()[new]
        wait_for(lambda: view.cluster_state.primary == new, 5, "the live view to see it")
        client = cluster.client()
        client.set("after", "1")
        leader_at = time.time()
        wait_for(lambda: cell(view, "role", new).startswith("leader"), 5, "the live table")
        assert cell(view, "status", old) == "killed" and f"{old} killed" in view.summary.value
        recording = cluster.recording

    assert new != old and new_state["term"] > old_term
    before = recording.state_at(killed_at)
    assert not before.nodes[old].alive and before.faults() == [f"{old} killed"]
    after = recording.state_at(leader_at)
    assert after.primary == new and after.nodes[new].term == new_state["term"]
    assert after.nodes[new].commit_index >= new_state["commit_index"] >= 20
    replay = Replay(recording)
    elected = next(e.time for e in recording.events if e.kind == "RaftRoleChanged"
                   and e.node == new and e.role == "leader" and e.term == new_state["term"])
    step = min(replay.slider.max, replay.step_at(elected - recording.start_time()) + 1)
    replay.slider.value = step
    assert status(replay, old) == "killed"
    drawn = recording.state_at(replay.times[step]).as_dict()
    assert cell(replay.view, "role", new) == node_row(drawn, new)["role"]
    assert drawn["nodes"][new]["raft_role"] == "leader" or drawn["closed"]
    assert any(text == f"{new} leads term {new_state['term']}"
               for text in replay.view.chart.marks.data["text"])


# -- the widgets, from constructed events --------------------------------------------------------

def small_run():
    events = [ev.NodeStarted("n1", port=7001, role="master", time=100.0)]
    for i in range(1, 40):
        events.append(ev.CommandExecuted("n1", command="SET", db=0, keys=("k",), offset=i * 10,
                                         time=100.0 + i * 0.05))
    events.append(ev.NodeKilled("n1", power_loss=True, lost_bytes=30, time=102.5))
    events.append(ev.NodeRestarted("n1", port=7001, loaded_commands=36, time=103.0))
    return events


def test_play_speeds_move_the_slider_faster():
    assert play_pace(1, 0.1) == (100, 1)
    assert play_pace(4, 0.1) == (100, 4)
    assert play_pace(16, 0.1) == (100, 16)
    assert play_pace(1, 0.5) == (500, 1)
    assert play_pace(16, 0.5) == (125, 4)
    assert play_pace(1, 1 / 15) == (133, 2)           # 15 steps a second, 2 per tick
    times, step = step_times(0.0, 100.0, 300)
    assert len(times) == 301 and step == pytest.approx(100 / 300)
    assert step_times(5.0, 5.0)[0] == [5.0, 5.0]

    replay = Replay(small_run())
    interval = replay.play.interval
    replay.speed.value = "16x"
    assert (replay.play.interval, replay.play.step) == play_pace(16, replay.step_s)
    # a step of the slider is step_s seconds of the recording: 16x plays 16 of them a second
    assert replay.play.step * replay.step_s * 1000 / replay.play.interval == pytest.approx(16, 0.01)
    assert interval >= 100


def test_a_replay_with_a_history_shows_the_operations_up_to_the_instant():
    events = small_run()
    history = History()
    history.invoke(0, "write", "k", "v1", time=1.0)
    history.ok(0, time=1.2)
    history.invoke(1, "write", "k", "v2", time=1.5)
    history.info(1, time=2.8, error="connection lost")
    history.invoke(2, "read", "k", time=2.9)
    recording = Recording.from_events(events, mode="aof", nodes=["n1"])
    recording.clock_offset = 100.0 - 0.0      # history time 1.0 is wall time 101.0
    replay = Replay(recording, history=history)

    replay.slider.value = replay.step_at(1.6)
    assert "2 operations invoked: 1 ok, 0 fail, 0 info (unknown), 1 without an outcome" \
        in replay.ops.value
    assert "write k v2</td><td>pending" in replay.ops.value
    replay.slider.value = replay.step_at(2.85)       # n1 crashed at 2.5, back at 3.0
    assert "1 info (unknown)" in replay.ops.value and status(replay, "n1").startswith("lost power")
    assert "30 bytes lost" in status(replay, "n1")
    replay.slider.value = replay.slider.max
    assert "3 operations invoked" in replay.ops.value and status(replay, "n1") == "running"


def test_a_replay_refuses_what_is_not_a_recording(tmp_path):
    with pytest.raises(TypeError, match="Recording, a path or a list of events"):
        Replay(42)
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"schema": 1, "format": 1, "started": 0}\n{"kind": "Nope"}\n')
    with pytest.raises(ValueError, match="line 2"):
        Replay(bad)


def test_the_live_view_folds_events_from_many_threads_and_loads_a_snapshot():
    view = LiveView("aof", ["n1", "n2"])
    view.feed(ev.NodeStarted("n1", port=7001, role="master", time=10.0))
    view.feed(ev.event_to_dict(ev.NodeStarted("n2", port=7002, role="master", time=10.0)))

    def writer(node, base):
        for i in range(1, 301):
            view.feed(ev.CommandExecuted(node, command="SET", db=0, keys=("k",),
                                         offset=base + i, time=10.0 + i * 0.001))
    threads = [threading.Thread(target=writer, args=(n, 0)) for n in ("n1", "n2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert view.cluster_state.nodes["n1"].commands == 300
    assert cell(view, "progress", "n1") == cell(view, "progress", "n2") == "300"
    view.feed(ev.Partitioned("network", groups=(("n1",), ("n2",)), time=11.0))
    assert "partition [n1] | [n2]" in view.summary.value
    assert list(view.chart.windows.data["label"]) == ["partition [n1] | [n2]"]
    with pytest.raises(TypeError):
        view.feed("NodeKilled")

    snapshot = ClusterState("aof", ["n1", "n2", "n3"])
    snapshot.apply(ev.NodeStarted("n3", port=7003, role="master", time=20.0))
    snapshot.apply(ev.NodeKilled("n3", power_loss=False, time=20.5))
    view.load_state(ClusterState.from_dict(json.loads(json.dumps(snapshot.as_dict()))))
    assert status_text(view) == "no primary serving writes; faults: n3 killed"
    assert cell(view, "status", "n3") == "killed"
    assert list(view.chart.windows.data["label"]) == ["n3 killed"]
    assert "n3" in view.chart.names


def status_text(view) -> str:
    return view.summary.value.split(">", 1)[1].rsplit("<", 1)[0]


# -- the shootout: recordings beside the JSON, a static replay in the page -------------------------

def slider_step(recording, at: float) -> int:
    times, _ = step_times(recording.start_time(), recording.end_time(), 50)
    return max(i for i, t in enumerate(times) if t <= at)


def test_static_replay_is_a_page_with_a_slider_and_a_table():
    recording = Recording.from_events(small_run(), mode="aof", nodes=["n1"])
    layout = static_replay(recording, max_steps=50)
    slider = next(m for m in layout.select({"type": Slider}))
    assert slider.end == 50 and slider.value == 0
    callback, = slider.js_property_callbacks["change:value"]
    tables, which = callback.args["tables"], callback.args["which"]
    assert len(which) == 51 and len(tables) < 51        # each distinct table once
    assert "<td>running</td>" in tables[which[0]]
    crashed = tables[which[slider_step(recording, 102.6)]]
    assert "<td>lost power (30 bytes lost)</td>" in crashed
    page = file_html(layout, INLINE, "replay")
    assert "tables[which[i]]" in page and "cdn.bokeh.org" not in page


def test_the_shootout_saves_each_recording_beside_its_json_and_replays_it_in_the_page(tmp_path):
    results = shootout.run(["aof"], "split-brain", seed=7, duration=2, progress=False)
    result = results[0]
    assert result["recording"].history is result["history"]
    path = str(tmp_path / "results.json")
    written = report.write_json(results, path)
    assert written == [str(tmp_path / "results.aof.recording.jsonl")]
    doc = json.load(open(path))
    assert doc["runs"][0]["recording"] == "results.aof.recording.jsonl"

    loaded = Recording.load(written[0])
    assert loaded.mode == "aof" and len(loaded.history) == len(result["history"])
    kinds = {e.kind for e in loaded.events}
    assert {"NodeStarted", "Partitioned", "Healed", "ClusterClosed"} <= kinds
    end = loaded.state_at(loaded.end_time())
    assert end.closed and end.nodes["n1"].committed_offset == end.nodes["n1"].offset

    page = tmp_path / "report.html"
    report.html(results, str(page))
    text = page.read_text()
    assert "replay of the recording" in text and "tables[which[i]]" in text
