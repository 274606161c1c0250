"""The review room over real brokers: amqtt in this process, and Debian's mosquitto started
by the test on a free loopback port with a private config (stopped by its PID).

Real clusters publish through the bridge; viewers know only the broker URL and the
cluster's name; the test's own raw client (the same Link the viewers use) reads or injects
messages on the wire.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import workbench as wb
from workbench.events import EventBus, NodeKilled, NodeStarted
from workbench.history import checkers
from workbench.history.workloads import final_reads, run_clients
from workbench.mqtt import Bridge, EmbeddedBroker, Viewer, topics
from workbench.mqtt.link import Link

from conftest import wait_for

REPO = Path(__file__).resolve().parent.parent
TOKEN = "review-token-42"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def require_mosquitto() -> str:
    """Debian's mosquitto; missing is a failure in CI, a skip elsewhere."""
    path = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto",) if os.path.exists(p)), None)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("mosquitto is required in CI (apt-get install mosquitto)")
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    return path


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def start_mosquitto(folder: Path, port: int) -> subprocess.Popen:
    """A private mosquitto on 127.0.0.1:``port``, listening when this returns."""
    binary = require_mosquitto()
    config = folder / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                      f"log_dest file {folder / 'mosquitto.log'}\n")
    proc = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    wait_for(lambda: proc.poll() is not None or port_open(port), timeout=15,
             what="mosquitto to listen")
    if proc.poll() is not None:
        pytest.fail(f"mosquitto exited {proc.returncode}: {proc.stderr.read().decode()}")
    return proc


def stop_mosquitto(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory):
    port = free_port()
    proc = start_mosquitto(tmp_path_factory.mktemp("mosquitto"), port)
    try:
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        stop_mosquitto(proc)


@pytest.fixture(scope="module")
def amqtt():
    with EmbeddedBroker() as broker:
        yield broker.url


@pytest.fixture(params=["amqtt", "mosquitto"])
def broker_url(request):
    return request.getfixturevalue(request.param)


class Wire:
    """The test's own MQTT client: every raw message of one cluster, and a way to inject."""

    def __init__(self, url: str, cluster: str):
        self.cluster = cluster
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.link = Link(url, identifier=unique("wire"),
                         subscriptions=[topics.cluster_filter(cluster)],
                         on_message=self._on_message, thread_name="test-wire")
        self.link.start()

    def _on_message(self, topic, payload):
        with self._lock:
            self.messages.append((topic, payload))

    def events(self) -> list[tuple[str, topics.EventMessage]]:
        with self._lock:
            raw = list(self.messages)
        return [(t, topics.decode_event(p)) for t, p in raw
                if topics.parse_topic(t).kind == topics.EVENT]

    def inject(self, topic: str, payload: bytes) -> None:
        self.link.runtime.call(lambda: self.link.publish(topic, payload, qos=1))

    def close(self):
        self.link.close()


def caught_up(viewer, bridge, *, seq: int | None = None, presenter_shows=None,
              timeout: float = 15.0):
    """``viewer.caught_up_with(bridge)`` once the bridge has folded what the test just did:
    at least ``seq``, or a state where ``presenter_shows(state)``. Events reach the bridge
    through the bus's own thread, a moment after they happen."""
    if seq is not None:
        wait_for(lambda: bridge.seq >= seq, timeout=timeout, what=f"the bridge at seq {seq}")
    if presenter_shows is not None:
        wait_for(lambda: presenter_shows(bridge.state()[1]), timeout=timeout,
                 what="the presenter's stream to show the change")
    return viewer.caught_up_with(bridge, timeout=timeout)


def raft_cluster(url, **kwargs) -> wb.Cluster:
    return wb.Cluster(mode="raft", nodes=3, name=unique("raft"), mqtt=url, record=False,
                      **kwargs)


def follower_of(cluster) -> str:
    leader = cluster.primary(timeout=15).name
    return next(name for name in cluster.names if name != leader)


# -- the stream ----------------------------------------------------------------------------------

def test_events_arrive_in_order_with_their_seq_and_a_viewer_folds_the_same_state(broker_url):
    name = unique("raft")
    wire = Wire(broker_url, name)            # on the wire before the cluster's first event
    try:
        with wb.Cluster(mode="raft", nodes=3, name=name, mqtt=broker_url, record=False) as c:
            viewer = Viewer(broker_url, name)      # joins late: starts from a state
            try:
                r = c.client()
                for i in range(100):
                    r.set(f"k{i}", i)
                victim = follower_of(c)
                c.node(victim).kill()
                c.node(victim).restart()
                c.wait_until(c._raft_settled, timeout=20, what="the shard to settle")
                last = c.mqtt.flush()
                wait_for(lambda: len(wire.events()) >= last, timeout=15,
                         what=f"the wire to see seq {last}")

                events = wire.events()
                assert [m.seq for _, m in events] == list(range(1, last + 1))
                for topic, message in events:
                    assert topic == topics.event_topic(name, message.event["node"],
                                                       message.event["kind"])
                    assert message.run == c.mqtt.run and message.cluster == name
                kinds = [(m.event["kind"], m.event["node"]) for _, m in events]
                assert kinds[:3] == [("NodeStarted", n) for n in ("n1", "n2", "n3")]
                assert ("NodeKilled", victim) in kinds and ("NodeRestarted", victim) in kinds
                # the writes' events went out as samples standing for several each
                writes = [m for _, m in events if m.event["kind"] == "CommandExecuted"]
                assert sum(m.coalesced for m in writes) >= 100 > len(writes)

                seq, presenter, seen = caught_up(viewer, c.mqtt, seq=last)
                assert seen == presenter
                assert seen["nodes"][victim]["alive"] and seen["primary"] == c.primary().name
                assert viewer.stats()["rejected"] == 0 and viewer.stats()["late"] == 0
            finally:
                viewer.close()
    finally:
        wire.close()


def test_a_dropped_range_is_healed_by_a_state_and_the_viewer_is_still_right(broker_url):
    with raft_cluster(broker_url) as c, Viewer(broker_url, c.name, reorder_window=0.3) as viewer:
        viewer.caught_up_with(c.mqtt)
        before = viewer.stats()
        viewer.drop_next(3)                   # as if the network lost the next three
        victim = follower_of(c)
        c.node(victim).kill(power_loss=True)
        c.node(victim).restart()
        c.client().set("after", "the gap")
        seq, presenter, seen = caught_up(
            viewer, c.mqtt, presenter_shows=lambda state: state["nodes"][victim]["alive"])
        after = viewer.stats()
        assert after["dropped"] == 3
        assert after["snapshots"] > before["snapshots"] and after["missed"] >= 3
        assert seen == presenter
        assert seen["nodes"][victim]["alive"] and seen["nodes"][victim]["port"] == \
            c.node(victim).port


def test_late_and_malformed_messages_leave_a_viewer_right(broker_url):
    bus = EventBus()
    name = unique("bus")
    with Bridge(bus, broker_url, name, mode="async") as bridge, \
            Viewer(broker_url, name) as viewer:
        wire = Wire(broker_url, name)
        try:
            bus.publish(NodeStarted("n1", port=7001, role="master"))
            bus.publish(NodeStarted("n2", port=7002, role="slave"))
            viewer.wait_until(lambda v: v.seq == 2, timeout=10, what="seq 2")
            wait_for(lambda: len(wire.events()) == 2, timeout=10, what="the wire")
            bus.publish(NodeKilled("n1", power_loss=False))
            viewer.wait_until(lambda v: v.seq == 3, timeout=10, what="seq 3")
            _, before = viewer.state()
            assert not before["nodes"]["n1"]["alive"]

            topic, started = wire.messages[[t for t, _ in wire.messages].index(
                topics.event_topic(name, "n1", "NodeStarted"))]
            wire.inject(topic, started)                       # late: n1 started, seq 1
            wire.inject(topic, b"not json")
            bad_schema = json.loads(started)
            bad_schema["schema"] = 99
            wire.inject(topic, json.dumps(bad_schema).encode())
            wire.inject(topics.event_topic(name, "n2", "NodeStarted"), started)  # wrong topic
            viewer.wait_until(lambda v: v.stats()["late"] == 1 and v.stats()["rejected"] == 3,
                              timeout=10, what="the injected messages")
            seq, after = viewer.state()
            assert seq == 3 and after == before        # n1 is still down
            assert after == bridge.state()[1]

            bus.publish(NodeStarted("n1", port=7001, role="slave"))   # and it goes on
            viewer.wait_until(lambda v: v.seq == 4, timeout=10, what="seq 4")
            assert viewer.state()[1]["nodes"]["n1"]["alive"]
            assert viewer.stats()["gaps"] == 0
        finally:
            wire.close()


def test_a_presenter_restarted_under_the_same_name_starts_its_viewers_over(amqtt):
    name = unique("again")
    bus = EventBus()
    with Viewer(amqtt, name) as viewer:
        with Bridge(bus, amqtt, name, mode="async") as first:
            for i in range(5):
                bus.publish(NodeStarted(f"n{i}", port=7000 + i, role="master"))
            caught_up(viewer, first, seq=5)
        second_bus = EventBus()
        with Bridge(second_bus, amqtt, name, mode="async") as second:
            second_bus.publish(NodeStarted("n9", port=7009, role="master"))
            seq, presenter, seen = caught_up(viewer, second, seq=1)
            assert seq == 1 and seen == presenter and list(seen["nodes"]) == ["n9"]
            assert viewer.run == second.run and viewer.stats()["runs"] == 2


def test_a_broker_restart_loses_messages_and_both_sides_recover(tmp_path):
    """The broker goes away and comes back on the same port: what the presenter published
    meanwhile is lost; the bridge and the viewer reconnect, and the viewer, finding a
    hole, is made right by a state."""
    port = free_port()
    url = f"mqtt://127.0.0.1:{port}"
    proc = start_mosquitto(tmp_path, port)
    bus, name = EventBus(), unique("blip")
    try:
        with Bridge(bus, url, name) as bridge, Viewer(url, name) as viewer:
            bus.publish(NodeStarted("n1", port=7001, role="master"))
            caught_up(viewer, bridge, seq=1)
            stop_mosquitto(proc)
            wait_for(lambda: not bridge.link.connected and not viewer.link.connected,
                     timeout=15, what="both sides to notice the broker is gone")
            bus.publish(NodeKilled("n1", power_loss=True, lost_bytes=5))
            wait_for(lambda: bridge.link.lost >= 1, timeout=10, what="the lost publication")
            proc = start_mosquitto(tmp_path, port)
            wait_for(lambda: bridge.link.connected and viewer.link.connected, timeout=30,
                     what="both sides to reconnect")
            bus.publish(NodeStarted("n2", port=7002, role="master"))
            seq, presenter, seen = caught_up(viewer, bridge, seq=3, timeout=30)
            assert seq == 3 and seen == presenter
            assert not seen["nodes"]["n1"]["alive"] and seen["nodes"]["n2"]["alive"]
            assert viewer.stats()["connects"] == 2 and bridge.link.connects == 2
    finally:
        stop_mosquitto(proc)


# -- control -----------------------------------------------------------------------------------

def test_control_is_off_by_default_and_says_so(amqtt, caplog):
    with raft_cluster(amqtt) as c, Viewer(amqtt, c.name, name="mallory") as viewer:
        answer = viewer.request("kill", node="n1", token=TOKEN)
        assert (answer.status, answer.reason) == ("refused",
                                                  "control is off on the presenter's side")
        assert all(node.alive for node in c.nodes)
        [entry] = c.mqtt.control_log
        assert (entry["viewer"], entry["action"], entry["status"]) == ("mallory", "kill",
                                                                        "refused")
        assert any("refused" in r.getMessage() and r.name == "workbench.mqtt"
                   for r in caplog.records)


def test_refused_requests_change_nothing_and_are_logged(amqtt, caplog):
    caplog.set_level(logging.WARNING, logger="workbench.mqtt")
    control = {"allow": ["kill", "heal"], "token": TOKEN}
    with raft_cluster(amqtt, mqtt_control=control) as c, \
            Viewer(amqtt, c.name, name="bob") as viewer:
        asks = [({"action": "kill", "node": "n1"}, "wrong or missing token"),
                ({"action": "kill", "node": "n1", "token": "guess-guess"}, "wrong or missing token"),
                ({"action": "restart", "node": "n1", "token": TOKEN},
                 "'restart' is not allowed here; allowed: heal, kill"),
                ({"action": "kill", "node": "n7", "token": TOKEN},
                 "no node 'n7'; nodes are n1, n2, n3"),
                ({"action": "kill", "node": "n1", "power_loss": "yes", "token": TOKEN},
                 "kill: 'power_loss' must be a bool")]
        for ask, reason in asks:
            answer = viewer.request(**ask)
            assert (answer.status, answer.reason) == ("refused", reason)
        # a request that is not even JSON is refused too, and the bridge goes on
        viewer.link.runtime.call(lambda: viewer.link.publish(
            topics.control_request_topic(c.name), b"\x00garbage", qos=1))
        wait_for(lambda: len(c.mqtt.control_log) == len(asks) + 1, timeout=10,
                 what="the garbage request to be answered")
        assert all(node.alive for node in c.nodes)
        assert c.snapshot()["_partition"] == ()
        log = c.mqtt.control_log
        assert [e["status"] for e in log] == ["refused"] * (len(asks) + 1)
        assert log[-1]["reason"].startswith("bad request: control request: not JSON")
        refused = [r for r in caplog.records if r.name == "workbench.mqtt"
                   and "refused" in r.getMessage()]
        assert len(refused) == len(asks) + 1
        assert TOKEN not in " ".join(r.getMessage() for r in caplog.records)


def test_accepted_requests_really_kill_partition_and_heal(mosquitto):
    """A reviewer breaks the presenter's raft shard through MQTT while clients write; the
    faults are real (the node is down, the links are cut), and the checkers find every
    acknowledged write kept."""
    control = {"allow": ["kill", "partition", "heal"], "token": TOKEN}
    with raft_cluster(mosquitto, mqtt_control=control) as c, \
            Viewer(mosquitto, c.name, name="carol") as viewer:
        answers = {}
        seen_faults = {}

        def nemesis(elapsed):
            if elapsed > 0.8 and "kill" not in answers:
                victim = follower_of(c)
                answers["kill"] = (victim, viewer.request("kill", node=victim, token=TOKEN))
                seen_faults["down"] = not c.node(victim).alive
            if elapsed > 1.8 and "partition" not in answers:
                leader = c.current_primary().name
                others = [n for n in c.names if n != leader]
                answers["partition"] = viewer.request("partition", groups=[[leader], others],
                                                      token=TOKEN)
                seen_faults["cut"] = c.snapshot()["_partition"]
            if elapsed > 3.5 and "heal" not in answers:
                answers["heal"] = viewer.request("heal", token=TOKEN)
                seen_faults["healed"] = c.snapshot()["_partition"]

        recorder = run_clients(c, "set", duration=5.0, clients=2, during=nemesis)
        victim, killed = answers["kill"]
        assert (killed.status, killed.reason) == ("done", f"killed {victim}")
        assert answers["partition"].status == "done" and answers["heal"].status == "done"
        assert seen_faults["down"] and seen_faults["cut"] and seen_faults["healed"] == ()

        final = final_reads(c, recorder, "set", recorder.keys)
        verdicts = checkers.summary(recorder.history, final)
        lost = verdicts["lost-writes"]
        assert lost.valid is True and lost.count == 0, lost.anomalies[:3]
        assert lost.details["ok"] > 10

        seq, presenter, seen = caught_up(
            viewer, c.mqtt, presenter_shows=lambda state: not state["nodes"][victim]["alive"]
            and state["partition"]["groups"] == [])
        assert seen == presenter
        assert not seen["nodes"][victim]["alive"] and seen["partition"]["groups"] == []
        assert [e["status"] for e in c.mqtt.control_log] == ["done"] * 3


# -- set-up errors ------------------------------------------------------------------------------

def test_bad_mqtt_settings_are_refused_before_anything_starts():
    with pytest.raises(ValueError, match="mqtt_control needs mqtt"):
        wb.Cluster(mode="async", nodes=1, mqtt_control={"allow": ["kill"], "token": TOKEN})
    with pytest.raises(ValueError, match="at least 8"):
        wb.Cluster(mode="async", nodes=1, mqtt=True, mqtt_control={"allow": ["kill"],
                                                                   "token": "short"})
    with pytest.raises(ValueError, match="looks like 'mqtt://127.0.0.1:1883'"):
        wb.Cluster(mode="async", nodes=1, mqtt="http://127.0.0.1:1883")
    with pytest.raises(ValueError, match="cluster name 'a/b'"):
        wb.Cluster(mode="async", nodes=1, name="a/b", mqtt=True)


def mqtt_threads() -> set:
    return {t for t in threading.enumerate() if t.name.startswith("workbench-mqtt")}


def test_an_unreachable_broker_is_a_clear_error_and_leaves_nothing_running():
    before = mqtt_threads()
    url = f"mqtt://127.0.0.1:{free_port()}"
    with pytest.raises(ConnectionError, match=f"cannot reach the MQTT broker at {url}"):
        wb.Cluster(mode="async", nodes=1, mqtt=url)
    with pytest.raises(ConnectionError, match=f"cannot reach the MQTT broker at {url}"):
        Viewer(url, "nobody")
    wait_for(lambda: mqtt_threads() <= before, timeout=10, what="the MQTT threads to stop")


def test_the_embedded_broker_listens_on_loopback_only_and_refuses_a_taken_port():
    with EmbeddedBroker() as broker:
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}" and port_open(broker.port)
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{broker.port}"):
            EmbeddedBroker(broker.port)
    assert not port_open(broker.port)


def test_workbench_broker_runs_until_stopped(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "broker", "--port", "0"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("MQTT broker on mqtt://127.0.0.1:"), first + proc.stderr.read()
        url = first.split()[-1]
        name = unique("cli")
        bus = EventBus()
        with Bridge(bus, url, name) as bridge, Viewer(url, name) as viewer:
            bus.publish(NodeStarted("n1", port=1, role="master"))
            assert caught_up(viewer, bridge, seq=1)[0] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0


def test_what_a_viewer_applies_is_the_presenters_typed_event(amqtt):
    bus = EventBus()
    name = unique("typed")
    fed = []

    class View:          # what viz.LiveView offers a viewer: feed and load_state
        def feed(self, event, count):
            fed.append(event)

        def load_state(self, state):
            fed.append(("state", state.as_dict()["events_applied"]))

    with Bridge(bus, amqtt, name) as bridge, Viewer(amqtt, name, view=View()) as viewer:
        viewer.wait_until(lambda v: v.seq == 0, timeout=10, what="the start state")
        sent = NodeKilled("n1", power_loss=True, lost_bytes=12)
        bus.publish(sent)
        caught_up(viewer, bridge, seq=1)
        assert fed[0] == ("state", 0) and fed[-1] == sent    # time and all, typed again
