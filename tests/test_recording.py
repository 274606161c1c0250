"""Recordings: busy events sampled, the rest exact, bounded, thread-safe, saved and loaded;
and the cluster's ``record`` keyword."""

from __future__ import annotations

import json
import threading

import pytest

import workbench as wb
from workbench import events as ev
from workbench.clusterstate import ClusterState
from workbench.history.model import History
from workbench.recording import SAMPLE_S, Recording


def busy_aof_run(writes: int = 1000, every_s: float = 0.001):
    """The events of an aof node taking ``writes`` writes, one per ``every_s`` seconds,
    fsyncing every fifth; a partition in the middle; then a crash."""
    events = [ev.NodeStarted("n1", port=7001, role="master", time=0.0)]
    for i in range(1, writes + 1):
        t, offset = i * every_s, i * 10
        events.append(ev.CommandExecuted("n1", command="SET", db=0, keys=(f"k{i % 7}".encode(),),
                                         offset=offset, time=t))
        events.append(ev.ReplyHeld("n1", client=i % 4, offset=offset, read=False, time=t))
        if i % 5 == 0:
            events.append(ev.FsyncDone("n1", fsynced_bytes=offset, offset=offset,
                                       duration_ms=0.4, time=t))
            events.append(ev.RepliesReleased("n1", committed_offset=offset, clients=4, time=t))
            events.append(ev.KeysCommitted("n1", committed_offset=offset, uncommitted_keys=0,
                                           time=t))
        if i == writes // 2:
            events.append(ev.Partitioned("network", groups=(("n1",),), time=t))
    end = (writes + 1) * every_s
    events.append(ev.NodeKilled("n1", power_loss=True, lost_bytes=0, time=end))
    return events


def recorded(events, **kwargs) -> Recording:
    recording = Recording("aof", ["n1"], **kwargs)
    for event in events:
        recording.record(event)
    return recording


def fold(pairs, start=None) -> ClusterState:
    state = start.copy() if start is not None else ClusterState("aof", ["n1"])
    for event, count in pairs:
        state.apply(event, count)
    return state


def test_busy_events_are_sampled_and_every_other_event_is_kept():
    events = busy_aof_run()
    recording = recorded(events)
    entries = recording.entries
    busy = [e for e in events if e.kind != "Partitioned" and e.kind not in
            ("NodeStarted", "NodeKilled")]
    assert len(entries) < len(events) / 10
    # per node and kind, at most one entry per SAMPLE_S, bar the flush before an exact event
    for kind in ("CommandExecuted", "ReplyHeld", "RepliesReleased"):
        times = [e.time for e, _ in entries if e.kind == kind]
        assert len(times) <= (1.0 / SAMPLE_S + 1) * 2, kind
    assert sum(count for _, count in entries) == len(events)
    assert recording.coalesced == len(busy) - sum(1 for e, _ in entries
                                                  if e.kind not in ("Partitioned", "NodeStarted",
                                                                    "NodeKilled"))
    assert [e.kind for e, _ in entries if e.kind in ("NodeStarted", "Partitioned",
                                                      "NodeKilled")] == [
        "NodeStarted", "Partitioned", "NodeKilled"]
    assert [e.time for e, _ in entries] == sorted(e.time for e, _ in entries)


def test_sampled_entries_keep_what_a_replay_needs():
    """Right before each exact event (the partition, the crash) the state folded from the
    recording has the same offsets, commits and counts as the state of every event."""
    events = busy_aof_run()
    recording = recorded(events)
    entries = recording.entries
    for marker in ("Partitioned", "NodeKilled"):
        cut = next(i for i, (e, _) in enumerate(entries) if e.kind == marker)
        full = next(i for i, e in enumerate(events) if e.kind == marker)
        sampled = fold(entries[:cut]).nodes["n1"]
        truth = fold((e, 1) for e in events[:full]).nodes["n1"]
        for name in ("offset", "fsynced_offset", "committed_offset", "commands"):
            assert getattr(sampled, name) == getattr(truth, name), (marker, name)
        assert sampled.held_replies == truth.held_replies == 0 or marker == "Partitioned"
        # held replies: the ones a sample stands for wait for its highest offset, so the
        # count may run ahead of the truth by one sample's worth, never behind
        assert truth.held_replies <= sampled.held_replies <= truth.held_replies + 60
    state = fold(entries)
    assert not state.nodes["n1"].alive and state.nodes["n1"].held_replies == 0


def test_a_window_of_writes_keeps_the_keys_it_changed_and_sums_what_it_released():
    recording = Recording("aof", ["n1"])
    keys = []
    for i in range(10):       # all inside one sampling window, after a first entry
        recording.record(ev.CommandExecuted("n1", command="SET", db=0, keys=(f"w{i}".encode(),),
                                            offset=10 * (i + 1), time=1.0 + i * 0.001))
        recording.record(ev.CommandExecuted("n1", command="GET", db=0, keys=(f"r{i}".encode(),),
                                            offset=10 * (i + 1), time=1.0 + i * 0.001))
        recording.record(ev.RepliesReleased("n1", committed_offset=i, clients=2,
                                            time=1.0 + i * 0.001))
        keys.append(f"w{i}")
    entries = recording.entries
    commands = [(e, n) for e, n in entries if e.kind == "CommandExecuted"]
    assert sum(n for _, n in commands) == 20
    sampled_keys = {k for e, _ in commands for k in e.keys}
    assert set(keys) <= sampled_keys and not sampled_keys & {f"r{i}" for i in range(1, 10)}
    assert sum(e.clients for e, _ in entries if e.kind == "RepliesReleased") == 20


def test_the_bound_drops_the_oldest_and_keeps_their_state():
    recording = Recording("async", ["n1", "n2"], max_events=50)
    recording.record(ev.NodeStarted("n1", port=1, role="master", time=0.0))
    recording.record(ev.NodeStarted("n2", port=2, role="slave", time=0.0))
    recording.record(ev.NodeKilled("n2", power_loss=False, time=0.1))
    for i in range(200):
        recording.record(ev.WriteRejected("n1", command="SET", error="NOREPLICAS",
                                          time=1.0 + i * 0.01))
    assert len(recording.entries) == 50 and recording.dropped == 153
    state = recording.state_at(100.0)
    assert not state.nodes["n2"].alive and state.nodes["n1"].rejected == 200
    assert recording.fault_windows()[0][2] == "n2 killed"


def test_recording_from_many_threads_loses_nothing():
    recording = Recording("aof", ["n1"])

    def writer(node):
        for i in range(2000):
            recording.record(ev.CommandExecuted(node, command="SET", db=0, keys=("k",),
                                                offset=i))
            if i % 500 == 0:
                recording.record(ev.DiskFault(node, error=None))
    threads = [threading.Thread(target=writer, args=(f"n{i}",)) for i in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries = recording.entries
    assert sum(n for _, n in entries) == 4 * 2000 + 4 * 4
    assert sum(1 for e, _ in entries if e.kind == "DiskFault") == 16


def history_of_a_set():
    history = History()
    history.invoke(0, "add", "s", "e1", time=100.0)
    history.ok(0, time=100.01)
    history.invoke(1, "read", "s", time=100.02)
    history.ok(1, tuple(f"e{i}" for i in range(100)), time=100.03)
    history.invoke(0, "add", "s", "e2", time=100.04)
    history.info(0, time=100.05, error="timeout")
    return history


def test_save_and_load_round_trip(tmp_path):
    events = busy_aof_run(200)
    recording = recorded(events, max_events=10)
    recording.attach_history(history_of_a_set())
    path = recording.save(tmp_path / "run.jsonl")

    loaded = Recording.load(path)
    assert [(e, n) for e, n in loaded.entries] == [(e, n) for e, n in recording.entries]
    assert (loaded.mode, loaded.nodes, loaded.dropped, loaded.coalesced) == (
        "aof", ["n1"], recording.dropped, recording.coalesced)
    assert loaded.state_at(1e12).as_dict() == recording.state_at(1e12).as_dict()
    assert loaded.clock_offset == recording.clock_offset
    header = json.loads(open(path).readline())
    assert header["schema"] == ev.EVENT_SCHEMA and header["dropped"] == recording.dropped > 0
    assert header["initial_state"]["mode"] == "aof"
    # the long read is kept as its size: the history is for replays, not for the checkers
    assert [op.value for op in loaded.history] == ["e1", "e1", None, "<100 elements>",
                                                   "e2", "e2"]
    assert loaded.history_complete is False

    whole = Recording.load(recording.save(tmp_path / "whole.jsonl", full_history=True))
    assert whole.history == recording.history and whole.history_complete


@pytest.mark.parametrize("text, says", [
    ("", "empty, not a recording"),
    ('{"schema": 99, "format": 1, "started": 0}\n', "not a recording of event schema"),
    ('{"schema": 1, "format": 1, "started": 0}\n{"kind": "Nope", "node": "n1"}\n',
     "line 2: unknown event kind 'Nope'"),
    ('{"schema": 1, "format": 1, "started": 0}\nnot json\n', "line 2"),
    ('{"schema": 1, "format": 1, "started": 0}\n{"kind": "Healed", "node": "x", "bad": 1}\n',
     "line 2: Healed has no field 'bad'"),
])
def test_a_bad_file_is_refused_naming_the_line(tmp_path, text, says):
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(ValueError, match=says):
        Recording.load(path)


def test_cluster_records_when_asked_and_saves_what_happened(tmp_path):
    with wb.Cluster(mode="aof") as plain:       # outside a notebook: off by default
        assert plain.recording is None
        with pytest.raises(RuntimeError, match="record=True"):
            plain.save_recording(tmp_path / "none.jsonl")
    with pytest.raises(ValueError, match="cluster keywords: down_after_ms, record"):
        wb.Cluster(mode="aof", recrod=True)

    with wb.Cluster(mode="aof", record=True) as cluster:
        client = cluster.client()
        for i in range(300):
            client.set(f"k{i % 3}", i)
        offset = client.info("replication")["master_repl_offset"]
        cluster.nodes[0].kill(power_loss=True)
        path = cluster.save_recording(tmp_path / "aof.jsonl")   # right after: nothing missing
        recording = cluster.recording
    kinds = [e.kind for e in Recording.load(path).events]
    assert "NodeStarted" in kinds[:3] and kinds[-1] == "NodeKilled"
    state = recording.state_at(1e12)
    n1 = state.nodes["n1"]
    assert n1.down == "closed" or n1.down == "lost power"
    before_kill = next(e.time for e in recording.events if e.kind == "NodeKilled") - 1e-6
    at = recording.state_at(before_kill).nodes["n1"]
    assert at.offset == at.committed_offset == at.fsynced_offset == offset
    assert at.held_replies == 0 and at.commands >= 300
    assert len(recording) < 300                 # sampled, not one entry per write
