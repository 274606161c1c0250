"""The Raft scope: the simulator drawn and driven from plain Python, and a live shard drawn.

The scope's buttons are pressed with ``.click()``, as a page would; what the tests read is
what the reader sees: the drawing's data sources, the rows, the readouts. Virtual time
only, except for the live shard and the animation loop.
"""

from __future__ import annotations

import asyncio
import time

import pytest

import workbench as wb
from workbench.raft.sim import Simulation
from workbench.viz.pump import UiPump
from workbench.viz.raft_scope import RaftScope, watchable_simulation
from workbench.viz.raft_scope_parts import Animator
from workbench.viz.raft_scope_live import LiveRaftScope
from workbench.viz.raft_scope_drawing import ring_positions, sim_scene

from conftest import wait_for


def elected(seed: int = 3, nodes: int = 5) -> tuple[RaftScope, str]:
    scope = RaftScope(watchable_simulation(nodes, seed=seed))
    assert scope.run_until(lambda: scope.sim.leader() is not None, timeout_ms=5000)
    return scope, scope.sim.leader()


def press(scope, action: str, node_id: str) -> None:
    """Choose ``node_id`` in the scope's server menu and press ``action``, as a page would."""
    scope.picker.value = node_id
    scope.picker.buttons[action].click()


def lever(scope, action: str, node_id: str):
    """The ``action`` button as it stands with ``node_id`` chosen."""
    scope.picker.value = node_id
    return scope.picker.buttons[action]


def shown(scope, node_id: str) -> dict:
    """One node as the ring draws it."""
    data = scope.drawing.sources["nodes"].data
    i = list(data["id"]).index(node_id)
    return {key: data[key][i] for key in data}


def test_stopping_the_leader_and_stepping_elects_a_new_leader():
    scope, leader = elected()
    term = scope.sim.nodes[leader].core.term
    press(scope, "stop", leader)
    assert shown(scope, leader)["role"] == "down"
    assert lever(scope, "stop", leader).disabled and not lever(scope, "restart", leader).disabled

    events = 0
    while scope.sim.leader() in (None, leader) and events < 2000:
        events += len(scope.step())
    new = scope.sim.leader()
    assert new not in (None, leader), f"no new leader after {events} events"
    assert shown(scope, new)["role"] == "leader" and shown(scope, new)["term"] > term
    assert lever(scope, "time_out", new).disabled          # a leader has no election timer
    assert shown(scope, leader)["role"] == "down"
    assert any(f"{new} won the election of term" in line for line in scope.notes)
    assert scope.safety()["ok"] and scope.safety()["leaders"][shown(scope, new)["term"]] == new
    # the timeline recorded it, for the static picture
    assert "down" in [role for _, _, role in scope.timeline.segments(leader)]
    scope.timeline.figure()

    press(scope, "restart", leader)
    assert scope.run_until(lambda: scope.sim.nodes[leader].core.leader_id == new, timeout_ms=3000)
    assert shown(scope, leader)["role"] == "follower"


def test_drop_next_message_drops_exactly_one():
    scope, leader = elected()
    follower = next(n for n in sorted(scope.sim.nodes) if n != leader)
    scope.run(20)
    on_wire = [f for f in scope.sim.in_flight() if follower in (f.message.src, f.message.dst)]
    assert on_wire, "a heartbeat or its answer should be on the wire"
    first = min(on_wire, key=lambda f: f.deliver_ms)
    dots = len(scope.drawing.sources["messages"].data["x"])

    press(scope, "drop", follower)

    assert list(scope.sim.dropped) == [first]
    remaining = scope.sim.in_flight()
    assert first.message not in [f.message for f in remaining]
    assert len(remaining) == len(scope.sim.in_flight()) and len(
        scope.drawing.sources["messages"].data["x"]) == dots - 1
    scope.run(500)
    assert len(scope.sim.dropped) == 1, "one click, one message"
    assert scope.sim.leader() == leader and scope.safety()["ok"]


def test_drop_next_waits_for_a_message_when_none_is_on_the_wire():
    sim = Simulation(3, seed=1)
    assert sim.drop_next("n2", "to") is None      # nothing sent yet: the rule waits
    sim.run_until(lambda: sim.leader() is not None, timeout_ms=5000)
    sim.run(1000)
    [taken] = sim.dropped
    assert taken.message.dst == "n2"
    with pytest.raises(ValueError, match="direction"):
        sim.drop_next("n2", "sideways")


def test_speed_and_step_controls_advance_virtual_time_as_stated():
    scope, _ = elected()
    start = scope.sim.now_ms

    scope.frame(1.0)                                     # paused: nothing moves
    assert scope.sim.now_ms == start

    scope.play_button.value = not scope.play_button.value   # as a press in the page
    assert scope.playing and scope.play_button.description == "pause"
    scope.speed = 2.0
    scope.frame(0.5)                                     # 2x for half a second
    assert scope.sim.now_ms == start + 1000
    scope.speed = 0.25
    for _ in range(4):
        scope.frame(0.01)                                # 2.5 ms each: fractions carry over
    assert scope.sim.now_ms == start + 1010
    scope.speed = 10.0
    scope.frame(0.1)
    assert scope.sim.now_ms == start + 2010
    with pytest.raises(ValueError, match="speed"):
        scope.speed = 3.0
    before, handled = scope.sim.now_ms, scope.sim.events_handled
    scope.step_button.click()                # pauses, then to the next event worth seeing
    assert not scope.playing and scope.play_button.description == "play"
    assert scope.sim.events_handled > handled and scope.sim.now_ms > before
    assert scope.step(0) == []
    stepped = scope.step(3)
    assert len(stepped) == 3 and not any(event.quiet for event in stepped)
    assert scope.sim.now_ms == stepped[-1].t_ms
    assert (f"t = {scope.sim.now_ms} ms (virtual), paused at 10x (a virtual second lasts a "
            "tenth of a second)") in scope.clock.value

    asyncio.run(scope.play(300))                         # animated, then paused again
    assert scope.sim.now_ms == stepped[-1].t_ms + 300 and not scope.playing


def test_messages_in_flight_appear_move_and_disappear():
    scope, leader = elected()
    flight = max(scope.sim.in_flight(), key=lambda f: f.deliver_ms)   # the newest
    assert flight.deliver_ms - scope.sim.now_ms >= 10
    m = flight.message
    where = ring_positions(sorted(scope.sim.nodes))

    def dot():
        for item in sim_scene(scope.sim)["messages"]:
            if (item["src"], item["dst"]) == (m.src, m.dst) and item["when"] == (
                    f"sent at {flight.sent_ms} ms, due at {flight.deliver_ms} ms"):
                return item
        return None

    assert dot() is not None
    progress = dot()["progress"]
    scope.run((flight.deliver_ms - scope.sim.now_ms) // 2)
    assert dot() is not None and dot()["progress"] > progress
    # drawn between its sender and its receiver
    data = scope.drawing.sources["messages"].data
    (sx, sy), (dx, dy) = where[m.src], where[m.dst]
    assert any(min(sx, dx) - 0.1 <= x <= max(sx, dx) + 0.1
               and min(sy, dy) - 0.1 <= y <= max(sy, dy) + 0.1
               for x, y in zip(data["x"], data["y"]))
    scope.run(flight.deliver_ms - scope.sim.now_ms)
    assert dot() is None and m not in [f.message for f in scope.sim.in_flight()]


def test_the_log_view_shows_terms_and_the_commit_index():
    scope, leader = elected()
    for _ in range(3):
        scope.request_button.click()
    assert scope.run_until(lambda: len(scope.committed_requests()) == 3, timeout_ms=3000)
    scope.run(300)                                       # followers learn the commit index
    commit = scope.sim.nodes[leader].core.commit_index
    term = scope.sim.nodes[leader].core.term
    bars = scope.drawing.sources["commits"].data
    assert list(bars["commit"]) == [commit] * 5 and list(bars["x"]) == [commit + 0.5] * 5
    labels = scope.drawing.logs.yaxis.major_label_overrides
    assert sorted(labels.values()) == [f"n{i}  commit {commit}" for i in range(1, 6)]
    cells = scope.drawing.sources["cells"].data
    assert set(cells["text"]) == {str(term)} and len(cells["x"]) == 5 * commit
    assert all(alpha == 1.0 for alpha in cells["alpha"])
    assert "client requests: 3 sent, 3 committed" in scope.safety_view.value

    # Cut the leader off and send it one more: its cell is there, faded, uncommitted.
    press(scope, "cut", leader)
    assert lever(scope, "cut", leader).description == "reconnect"
    index = scope.client_request(b"stranded")
    scope.run(200)
    cells = scope.drawing.sources["cells"].data
    mine = [(x, alpha) for x, alpha, node in zip(cells["x"], cells["alpha"], cells["node"])
            if node == leader and x == index]
    assert mine == [(index, 0.35)]
    assert [x for x, node in zip(cells["x"], cells["node"]) if x == index] == [index]
    assert scope.drawing.sources["cut_links"].data["what"], "the cut links are drawn"


def test_time_out_on_a_follower_under_a_healthy_leader_changes_no_term():
    """PreVote: a follower whose timer fires while the others still hear the leader asks
    whether it could win, is ignored, and the term stays where it was."""
    scope, leader = elected()
    follower = next(n for n in sorted(scope.sim.nodes) if n != leader)
    term = scope.sim.nodes[leader].core.term
    assert not scope.sim.time_out(leader), "a leader has no election timer to fire"
    press(scope, "time_out", follower)
    assert shown(scope, follower)["role"] == "pre-candidate"
    scope.run(1000)
    assert scope.sim.leader() == leader
    assert {node.core.term for node in scope.sim.nodes.values()} == {term}


def test_a_click_on_a_server_chooses_it_and_echoes_of_the_drawing_are_ignored():
    """What the page sends: a tap selects a server of the ring (its levers then act on
    it); every change the kernel drew comes back as an echo, which must change nothing."""
    scope, leader = elected()
    chart = scope.drawing.widget
    nodes = scope.drawing.sources["nodes"]
    third = list(nodes.data["id"])[2]
    chart._sync_model(chart, {"event": "jsevent", "kind": "ModelChanged",
                              "model": {"id": nodes.selected.id}, "attr": "indices",
                              "new": [2]}, [])
    assert scope.picker.value == third and nodes.selected.indices == []
    assert scope.picker.summary.value.startswith(f"{third}: ")
    (x, y), = zip(scope.drawing.sources["selected"].data["x"],
                  scope.drawing.sources["selected"].data["y"])
    assert (x, y) == (nodes.data["x"][2], nodes.data["y"][2])      # circled in the ring

    links = scope.drawing.sources["links"]
    drawn = dict(links.data)
    chart._sync_model(chart, {"event": "jsevent", "kind": "ModelChanged",
                              "model": {"id": links.id}, "attr": "data",
                              "new": {"type": "map", "entries": [["x0", []]]}}, [])
    assert dict(links.data) == drawn


def test_a_safety_violation_stops_the_scope_and_is_named():
    scope, leader = elected()
    term = scope.sim.nodes[leader].core.term
    for later in range(term + 1, term + 10):             # the checker "already saw" leaders
        scope.sim.safety.leader_of_term[later] = "nobody"
    scope.play_button.value = not scope.play_button.value   # as a press in the page
    press(scope, "stop", leader)
    scope.run(5000)
    safety = scope.safety()
    assert not safety["ok"] and safety["property"] == "election safety"
    assert not scope.playing and scope.play_button.disabled and scope.step_button.disabled
    assert "&#10007;</span> election safety" in scope.safety_view.value
    assert "stopped by a safety violation" in scope.clock.value


def test_the_animation_runs_on_the_loop_and_stops_when_the_scope_is_closed():
    async def main():
        scope = RaftScope(watchable_simulation(3, seed=2), speed=10.0, frame_s=0.02)
        assert scope.animator.running
        scope.playing = True
        await until(lambda: scope.sim.now_ms >= 500, "the animation to run virtual time")
        scope._view_count = 1                            # shown in a page, then taken off it
        scope._view_count = 0
        assert not scope.playing
        scope.close()
        assert not scope.animator.running
        frames, now = scope.animator.frames, scope.sim.now_ms
        ticks = []
        control = Animator(lambda _: ticks.append(1), 0.02)
        control.start()
        await until(lambda: len(ticks) >= 5, "a few frames of another animator")
        control.stop()
        assert (scope.animator.frames, scope.sim.now_ms) == (frames, now)

    asyncio.run(main())


async def until(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def test_a_scope_is_for_a_simulation_and_a_live_scope_for_a_raft_cluster():
    with pytest.raises(TypeError, match="LiveRaftScope"):
        RaftScope("not a simulation")
    with pytest.raises(ValueError, match="mode 'raft'"):
        LiveRaftScope("not a cluster")


# -- live ------------------------------------------------------------------------------------

def test_live_scope_follows_a_leader_kill_on_a_real_shard():
    with wb.Cluster(mode="raft", nodes=3) as cluster:
        pump = UiPump.for_cluster(cluster)
        scope = LiveRaftScope(cluster, pump)

        def leader_shown():
            pump.sample_now()
            data = scope.drawing.sources["nodes"].data
            leaders = [(n, t) for n, r, t in zip(data["id"], data["role"], data["term"])
                       if r == "leader"]
            return leaders[0] if len(leaders) == 1 else None

        first, term = wait_for(leader_shown, 10, "a leader in the live scope")
        client = cluster.client()
        for i in range(5):
            client.set(f"k{i}", i)
        commit = cluster.raft_state()[first]["commit_index"]
        wait_for(lambda: leader_shown() and list(scope.drawing.sources["commits"].data["commit"])
                 == [commit] * 3, 10, "every node's commit bar at the leader's commit index")
        cells = scope.drawing.sources["cells"].data
        assert {node for node in cells["node"]} == {"n1", "n2", "n3"}

        press(scope, "kill", first)
        second = wait_for(lambda: (lambda shown: shown if shown and shown[0] != first else None)(
            leader_shown()), 15, "a new leader in the live scope")
        assert second[1] > term
        data = scope.drawing.sources["nodes"].data
        assert dict(zip(data["id"], data["role"]))[first] == "down"
        assert lever(scope, "kill", first).disabled and not lever(scope, "restart", first).disabled
        wait_for(lambda: any(f"{second[0]} won the election of term {second[1]}" in line
                             for line in scope.notes), 5, "the election in the scope's log")
        assert any(f"{first} killed" in line for line in scope.notes)

        scope.write_button.click()
        wait_for(lambda: any("SET scope:1: True" in line for line in scope.notes), 10,
                 "the client write acknowledged")
        press(scope, "restart", first)
        wait_for(lambda: leader_shown() and dict(zip(scope.drawing.sources["nodes"].data["id"],
                                                     scope.drawing.sources["nodes"].data["role"]))
                 [first] == "follower", 15, f"{first} back as a follower")
    wait_for(lambda: scope.closed, 5, "the scope to see the cluster closed")
    assert all(lever.disabled for lever in scope.picker.buttons.values())
    assert scope.status.value.startswith("the cluster is closed")
