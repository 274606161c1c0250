"""The MQTT stream's pure parts: topics, payloads, control rules, coalescing, sequencing."""

from __future__ import annotations

import json

import pytest

from workbench.events import (EVENT_SCHEMA, CommandExecuted, NodeKilled, RaftCommitted,
                              event_from_dict, event_to_dict)
from workbench.mqtt import topics
from workbench.mqtt.stream import Coalescer, SequenceTracker
from workbench.mqtt.topics import ControlPolicy, ControlRequest, PayloadError

POLICY = ControlPolicy.from_config({"allow": ["kill", "partition", "heal"],
                                    "token": "correct horse"})
NODES = ["n1", "n2", "n3"]


# -- topics ------------------------------------------------------------------------------------

def test_topics_name_the_cluster_node_and_event():
    assert topics.event_topic("review", "n1", "NodeKilled") == "workbench/review/n1/NodeKilled"
    assert topics.cluster_filter("review") == "workbench/review/#"
    parsed = topics.parse_topic("workbench/review/n1/NodeKilled")
    assert (parsed.cluster, parsed.kind, parsed.node, parsed.event) == \
        ("review", topics.EVENT, "n1", "NodeKilled")
    assert topics.parse_topic(topics.state_topic("r")).kind == topics.STATE
    assert topics.parse_topic(topics.state_request_topic("r")).kind == topics.STATE_REQUEST
    assert topics.parse_topic(topics.control_request_topic("r")).kind == topics.CONTROL_REQUEST
    assert topics.parse_topic(topics.control_result_topic("r")).kind == topics.CONTROL_RESULT


@pytest.mark.parametrize("topic", ["other/review/n1/X", "workbench/review", "workbench/r/_x/y",
                                   "workbench/r/n1/X/extra", "workbench/r/_state/other"])
def test_unknown_topics_are_refused(topic):
    with pytest.raises(PayloadError):
        topics.parse_topic(topic)


@pytest.mark.parametrize("name", ["", "a/b", "a+b", "#", "$SYS", "_state", "x" * 65, 7, None])
def test_names_that_cannot_be_one_topic_segment_are_refused(name):
    with pytest.raises(ValueError, match="letters, digits"):
        topics.check_name(name)


def test_broker_urls():
    assert topics.parse_url("mqtt://127.0.0.1:1884") == ("127.0.0.1", 1884)
    assert topics.parse_url("mqtt://localhost") == ("localhost", 1883)
    for bad in ["http://127.0.0.1:1883", "127.0.0.1:1883", "mqtt://", "mqtt://h:99999",
                "mqtt://h:1883/path", None]:
        with pytest.raises(ValueError):
            topics.parse_url(bad)


# -- payloads ----------------------------------------------------------------------------------

def test_an_event_round_trips_with_its_seq_run_and_schema():
    event = NodeKilled("n2", power_loss=True, lost_bytes=40, time=100.0)
    payload = topics.encode_event("review", "run1", 7, event_to_dict(event), sent=101.0,
                                  coalesced=1)
    data = json.loads(payload)
    assert data["schema"] == topics.STREAM_SCHEMA and data["events"] == EVENT_SCHEMA
    message = topics.decode_event(payload)
    assert (message.cluster, message.run, message.seq, message.sent, message.coalesced) == \
        ("review", "run1", 7, 101.0, 1)
    assert event_from_dict(message.event) == event


def test_raw_key_bytes_travel_as_text():
    event = CommandExecuted("n1", command="SET", db=0, keys=(b"k\xff",), offset=9, time=1.0)
    message = topics.decode_event(topics.encode_event("c", "r", 1, event_to_dict(event),
                                                      sent=1.0))
    assert message.event["keys"] == ["k\\xff"]


def test_a_state_round_trips():
    payload = topics.encode_state("c", "r", 12, {"nodes": {}}, sent=5.0, reason="request")
    message = topics.decode_state(payload)
    assert (message.seq, message.state, message.reason, message.run) == \
        (12, {"nodes": {}}, "request", "r")


def _event_payload(**changes) -> bytes:
    data = {"schema": topics.STREAM_SCHEMA, "events": EVENT_SCHEMA, "cluster": "c",
            "run": "r", "seq": 1, "sent": 1.0, "coalesced": 1,
            "event": {"kind": "Healed", "node": "cluster", "time": 1.0}}
    data.update(changes)
    return json.dumps(data).encode()


@pytest.mark.parametrize("payload", [
    b"not json", b"[1, 2]", b"\xff\xfe",
    _event_payload(schema=99), _event_payload(events=99), _event_payload(seq=0),
    _event_payload(seq="1"), _event_payload(seq=True), _event_payload(coalesced=0),
    _event_payload(event={"node": "n1"}), _event_payload(run=None), _event_payload(sent="x"),
    b"{" + b" " * topics.MAX_EVENT_BYTES + b"}",
])
def test_bad_event_payloads_are_refused_with_a_reason(payload):
    with pytest.raises(PayloadError):
        topics.decode_event(payload)


def test_control_requests_and_results_round_trip():
    payload = topics.encode_control_request("id1", "alice", "kill", {"node": "n1"}, "tok")
    request = topics.decode_control_request(payload)
    assert request == ControlRequest("id1", "alice", "kill", {"node": "n1"}, "tok")
    result = topics.ControlResult("id1", "alice", "kill", "done", "killed n1")
    assert topics.decode_control_result(topics.encode_control_result(result)) == result
    with pytest.raises(PayloadError):
        topics.decode_control_request(b"{" + b" " * topics.MAX_REQUEST_BYTES + b"}")
    with pytest.raises(PayloadError):
        topics.decode_control_result(topics.encode_control_result(
            topics.ControlResult("i", "v", "kill", "maybe", "")))


# -- control rules -----------------------------------------------------------------------------

def request(action="kill", token="correct horse", **args):
    return ControlRequest("id", "alice", action, args or ({"node": "n1"} if action in
                                                          ("kill", "restart") else {}), token)


def test_control_is_off_without_a_policy():
    assert topics.check_request(request(), None, NODES) == "control is off on the presenter's side"


def test_the_token_is_checked_before_anything_else():
    assert topics.check_request(request(token=""), POLICY, NODES) == "wrong or missing token"
    assert topics.check_request(request(token="correct horsE"), POLICY, NODES) == \
        "wrong or missing token"
    # a wrong token learns nothing about the allow-list or the nodes
    assert topics.check_request(request("restart", token="x"), POLICY, NODES) == \
        "wrong or missing token"


def test_only_allowed_actions_with_the_right_arguments_pass():
    assert topics.check_request(request(), POLICY, NODES) is None
    assert topics.check_request(request(node="n2", power_loss=True), POLICY, NODES) is None
    assert topics.check_request(request("heal"), POLICY, NODES) is None
    assert topics.check_request(request("partition", groups=[["n1"], ["n2", "n3"]]),
                                POLICY, NODES) is None
    assert topics.check_request(request("restart"), POLICY, NODES) == \
        "'restart' is not allowed here; allowed: heal, kill, partition"
    assert "unknown action 'shutdown'" in topics.check_request(request("shutdown"), POLICY, NODES)
    assert topics.check_request(request(node="n9"), POLICY, NODES) == \
        "no node 'n9'; nodes are n1, n2, n3"
    assert topics.check_request(request(node=1), POLICY, NODES) == "kill: 'node' must be a str"
    assert topics.check_request(request(node="n1", power_loss="yes"), POLICY, NODES) == \
        "kill: 'power_loss' must be a bool"
    assert topics.check_request(request(node="n1", force=True), POLICY, NODES) == \
        "kill takes no argument 'force'"
    assert topics.check_request(ControlRequest("i", "v", "kill", {}, "correct horse"),
                                POLICY, NODES) == "kill needs 'node'"
    assert topics.check_request(request("heal", now=True), POLICY, NODES) == \
        "heal takes no argument 'now'"


@pytest.mark.parametrize("groups, reason", [
    ([], "is a list of non-empty lists"), ([["n1"], []], "is a list of non-empty lists"),
    (["n1"], "is a list of non-empty lists"), ([["n1"], ["n1", "n2"]], "'n1' is in two groups"),
    ([["n1"], ["n7"]], "no node 'n7'"), ([["n1"], [{"x": 1}]], "no node"),
])
def test_bad_partitions_are_refused(groups, reason):
    assert reason in topics.check_request(request("partition", groups=groups), POLICY, NODES)


@pytest.mark.parametrize("config, message", [
    ("kill", "takes None"), ({"allow": ["kill"]}, "token"),
    ({"allow": ["kill"], "token": "short"}, "at least 8"),
    ({"allow": [], "token": "long enough"}, "list of actions"),
    ({"allow": "kill", "token": "long enough"}, "list of actions"),
    ({"allow": ["explode"], "token": "long enough"}, "unknown action 'explode'"),
    ({"allow": ["kill"], "token": "long enough", "extra": 1}, "takes None"),
])
def test_bad_control_policies_are_refused(config, message):
    with pytest.raises(ValueError, match=message):
        ControlPolicy.from_config(config)


# -- coalescing ----------------------------------------------------------------------------------

def written(node, offset):
    return CommandExecuted(node, command="SET", db=0, keys=("k",), offset=offset)


def test_noisy_events_are_kept_as_the_latest_sample_with_a_count():
    coalescer = Coalescer()
    for offset in range(1, 101):
        assert coalescer.offer(written("n1", offset))
    assert coalescer.offer(RaftCommitted("n2", commit_index=4, entries=1, term=1))
    assert coalescer.offer(written("n1", 101))
    assert not coalescer.offer(NodeKilled("n1", power_loss=False))
    drained = coalescer.drain()
    # in the order of each sample's latest event: n2's commit came before n1's last write
    assert [(e.kind, e.node, count) for e, count in drained] == \
        [("RaftCommitted", "n2", 1), ("CommandExecuted", "n1", 101)]
    assert drained[1][0].offset == 101
    assert coalescer.drain() == [] and len(coalescer) == 0


# -- sequencing ----------------------------------------------------------------------------------

def test_in_order_messages_apply_at_once_and_duplicates_are_late():
    tracker = SequenceTracker()
    assert tracker.needs_state(0.0)          # nothing yet: ask
    loaded, ready = tracker.snapshot(0, 0.0)
    assert loaded and ready == []
    assert tracker.event(1, "a", 0.1) == ["a"]
    assert tracker.event(2, "b", 0.1) == ["b"]
    assert tracker.event(2, "b", 0.2) == [] and tracker.event(1, "a", 0.2) == []
    assert tracker.stats() == {"seq": 2, "applied": 2, "late": 2, "gaps": 0, "missed": 0,
                               "snapshots": 1, "waiting": 0}
    assert not tracker.needs_state(10.0)


def test_a_newcomer_waits_for_the_retained_state_first():
    tracker = SequenceTracker(reorder_window=0.5, started=10.0)
    assert tracker.event(5, "e", 10.1) == []          # held: no state to apply it to
    assert not tracker.needs_state(10.2)
    assert tracker.needs_state(10.6)
    loaded, ready = tracker.snapshot(4, 10.7)
    assert loaded and ready == ["e"] and tracker.last_seq == 5
    assert tracker.missed == 0 and tracker.gaps == 0


def test_a_reordered_message_fills_its_hole_without_a_state():
    tracker = SequenceTracker(reorder_window=0.5)
    tracker.snapshot(0, 0.0)
    assert tracker.event(2, "b", 1.0) == []
    assert tracker.event(3, "c", 1.1) == []
    assert not tracker.needs_state(1.4)
    assert tracker.event(1, "a", 1.2) == ["a", "b", "c"]
    assert tracker.waiting == 0 and not tracker.needs_state(5.0)
    assert tracker.gaps == 0 and tracker.late == 0


def test_a_lasting_hole_asks_for_a_state_once_and_the_state_closes_it():
    tracker = SequenceTracker(reorder_window=0.5, retry_after=2.0)
    tracker.snapshot(0, 0.0)
    tracker.event(1, "a", 0.0)
    for seq in (5, 6):                       # 2, 3, 4 lost
        tracker.event(seq, str(seq), 1.0)
    assert not tracker.needs_state(1.4)
    assert tracker.needs_state(1.5)
    tracker.asked(1.5)
    assert not tracker.needs_state(2.0)      # not again before retry_after
    assert tracker.needs_state(3.5)          # the answer was lost: ask again
    loaded, ready = tracker.snapshot(5, 3.6) # the state includes 2..5; 6 follows it
    assert loaded and ready == ["6"]
    assert tracker.stats() == {"seq": 6, "applied": 2, "late": 0, "gaps": 1, "missed": 3,
                               "snapshots": 2, "waiting": 0}
    # an older state than what is applied would go back in time: not loaded
    assert tracker.snapshot(3, 4.0) == (False, [])
    assert tracker.last_seq == 6


def test_the_hold_back_buffer_is_bounded():
    tracker = SequenceTracker(max_buffer=10)
    tracker.snapshot(0, 0.0)
    for seq in range(2, 100):
        tracker.event(seq, seq, 1.0)
    assert tracker.waiting == 10
    loaded, ready = tracker.snapshot(89, 2.0)
    assert ready == list(range(90, 100))
