"""The MQTT stream's names and payloads: no sockets, no threads, no clocks.

Theory of operation. A presenter's cluster publishes everything that happens to it on one
broker, under one root per cluster; reviewers' viewers subscribe to ``workbench/<cluster>/#``
and fold what they receive into the same state the presenter sees::

    workbench/<cluster>/<node>/<EventKind>   one typed event (event_to_dict), with a seq
    workbench/<cluster>/_state               the folded state as of a seq (retained)
    workbench/<cluster>/_state/request       a viewer that missed messages asks for _state
    workbench/<cluster>/_control/request     a viewer asks the presenter to kill, restart...
    workbench/<cluster>/_control/result      refused, done or failed, with the reason

Every event message carries the cluster's ``seq``: 1, 2, 3 ... in the order the presenter
folded them, and the ``run`` it belongs to (a fresh id each time a cluster starts
publishing, so a viewer of a cluster restarted under the same name starts over). A ``_state`` carries the seq of the last event it includes and takes no
number itself. So a viewer that sees seq jump knows it missed something and asks for a
state; one that sees a seq it already has ignores it (late or duplicated). Node names
never start with ``_``, so the underscore segments cannot clash with a node.

Every payload is a JSON object with ``schema`` (:data:`STREAM_SCHEMA`). A reader refuses a
schema it does not know, a payload that is not JSON, and one over its size bound: bad
input is a :class:`PayloadError`, never a crash of the reader.
"""

from __future__ import annotations

import hmac
import json
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..events import EVENT_SCHEMA

STREAM_SCHEMA = 1          # bump when a payload's meaning changes; readers refuse the unknown
ROOT = "workbench"
DEFAULT_PORT = 1883

MAX_EVENT_BYTES = 64 * 1024
MAX_STATE_BYTES = 8 * 1024 * 1024
MAX_REQUEST_BYTES = 4 * 1024

# A cluster's or node's name is one topic segment: no "/", no MQTT wildcards, no "$".
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

# What a viewer may ask the presenter's side to do, and the arguments each takes
# (name -> (type, required)).
ACTIONS = {
    "kill": {"node": (str, True), "power_loss": (bool, False)},
    "restart": {"node": (str, True)},
    "partition": {"groups": (list, True)},
    "heal": {},
}


class PayloadError(ValueError):
    """A message that is not what its topic promises: refused, nothing else changes."""


# -- names and topics ------------------------------------------------------------------------

def check_name(name, what: str = "cluster name") -> str:
    """``name`` if it can be one topic segment, else ValueError saying what is accepted."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{what} {name!r}: use 1 to 64 letters, digits, '_', '-' or '.', "
                         "starting with a letter or digit")
    return name


def event_topic(cluster: str, node: str, kind: str) -> str:
    return f"{ROOT}/{cluster}/{node}/{kind}"


def state_topic(cluster: str) -> str:
    return f"{ROOT}/{cluster}/_state"


def state_request_topic(cluster: str) -> str:
    return f"{ROOT}/{cluster}/_state/request"


def control_request_topic(cluster: str) -> str:
    return f"{ROOT}/{cluster}/_control/request"


def control_result_topic(cluster: str) -> str:
    return f"{ROOT}/{cluster}/_control/result"


def cluster_filter(cluster: str) -> str:
    """The subscription that receives everything of ``cluster``."""
    return f"{ROOT}/{cluster}/#"


# What the segments after workbench/<cluster>/ name.
EVENT, STATE, STATE_REQUEST, CONTROL_REQUEST, CONTROL_RESULT = (
    "event", "state", "state_request", "control_request", "control_result")
_SPECIAL = {("_state",): STATE, ("_state", "request"): STATE_REQUEST,
            ("_control", "request"): CONTROL_REQUEST, ("_control", "result"): CONTROL_RESULT}


@dataclass(frozen=True)
class Topic:
    cluster: str
    kind: str                  # EVENT, STATE, STATE_REQUEST, CONTROL_REQUEST or CONTROL_RESULT
    node: str | None = None    # for EVENT
    event: str | None = None   # the event's kind, for EVENT


def parse_topic(topic: str) -> Topic:
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != ROOT:
        raise PayloadError(f"not a workbench topic: {topic!r}")
    cluster, rest = parts[1], tuple(parts[2:])
    if rest in _SPECIAL:
        return Topic(cluster, _SPECIAL[rest])
    if len(rest) == 2 and not rest[0].startswith("_"):
        return Topic(cluster, EVENT, node=rest[0], event=rest[1])
    raise PayloadError(f"unknown workbench topic: {topic!r}")


def parse_url(url: str) -> tuple[str, int]:
    """``mqtt://host[:port]`` -> ``(host, port)``; ValueError for anything else."""
    if not isinstance(url, str):
        raise ValueError(f"an MQTT broker URL is a string like 'mqtt://127.0.0.1:1883', not {url!r}")
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username:
        raise ValueError(f"an MQTT broker URL looks like 'mqtt://127.0.0.1:1883', not {url!r}")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ValueError(f"{url!r}: the port must be a number from 1 to 65535") from None
    return parts.hostname, port


# -- payloads --------------------------------------------------------------------------------

@dataclass(frozen=True)
class EventMessage:
    cluster: str
    run: str
    seq: int
    sent: float                # the presenter's clock when it published (time.time())
    event: dict                # event_to_dict(event)
    coalesced: int = 1         # how many events of this node and kind this one stands for


@dataclass(frozen=True)
class StateMessage:
    cluster: str
    run: str
    seq: int                   # the last event the state includes
    sent: float
    state: dict                # ClusterState.as_dict()
    reason: str                # "start", "request", "periodic", "reconnect", "close"


@dataclass(frozen=True)
class StateRequest:
    viewer: str
    after: int | None          # the last seq the viewer applied (None: it has no state yet)


@dataclass(frozen=True)
class ControlRequest:
    id: str
    viewer: str
    action: str
    args: dict
    token: str


@dataclass(frozen=True)
class ControlResult:
    id: str
    viewer: str
    action: str
    status: str                # "refused", "done" or "failed"
    reason: str


def _text(value):
    # keys and values in events may be raw bytes from the wire: sent as text, as a
    # recording stores them
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "backslashreplace")
    raise TypeError(f"{type(value).__name__} is not JSON")


def _dump(data: dict) -> bytes:
    return json.dumps({"schema": STREAM_SCHEMA, **data}, separators=(",", ":"),
                      default=_text).encode()


def _load(payload: bytes, limit: int, what: str) -> dict:
    if len(payload) > limit:
        raise PayloadError(f"{what}: {len(payload)} bytes, more than the {limit} accepted")
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise PayloadError(f"{what}: not JSON") from None
    if not isinstance(data, dict):
        raise PayloadError(f"{what}: not a JSON object")
    if data.get("schema") != STREAM_SCHEMA:
        raise PayloadError(f"{what}: schema {data.get('schema')!r}, this reader knows "
                           f"{STREAM_SCHEMA}")
    return data


def _field(data: dict, name: str, kind, what: str, *, optional: bool = False):
    value = data.get(name)
    if value is None and optional:
        return None
    # bool is an int in Python; a seq of True is no seq
    if not isinstance(value, kind) or (kind in (int, (int, float)) and isinstance(value, bool)):
        raise PayloadError(f"{what}: field {name!r} is missing or of the wrong type")
    return value


def encode_event(cluster: str, run: str, seq: int, event: dict, *, sent: float,
                 coalesced: int = 1) -> bytes:
    return _dump({"events": EVENT_SCHEMA, "cluster": cluster, "run": run, "seq": seq,
                  "sent": sent, "coalesced": coalesced, "event": event})


def decode_event(payload: bytes) -> EventMessage:
    data = _load(payload, MAX_EVENT_BYTES, "event")
    if data.get("events") != EVENT_SCHEMA:
        raise PayloadError(f"event: event schema {data.get('events')!r}, this reader knows "
                           f"{EVENT_SCHEMA}")
    seq = _field(data, "seq", int, "event")
    if seq < 1:
        raise PayloadError(f"event: seq {seq} (seq numbers start at 1)")
    coalesced = _field(data, "coalesced", int, "event")
    if coalesced < 1:
        raise PayloadError(f"event: coalesced {coalesced}")
    event = _field(data, "event", dict, "event")
    if not isinstance(event.get("kind"), str) or not isinstance(event.get("node"), str):
        raise PayloadError("event: the event has no kind or node")
    return EventMessage(_field(data, "cluster", str, "event"), _field(data, "run", str, "event"),
                        seq, float(_field(data, "sent", (int, float), "event")), event, coalesced)


def encode_state(cluster: str, run: str, seq: int, state: dict, *, sent: float,
                 reason: str) -> bytes:
    return _dump({"cluster": cluster, "run": run, "seq": seq, "sent": sent, "reason": reason,
                  "state": state})


def decode_state(payload: bytes) -> StateMessage:
    data = _load(payload, MAX_STATE_BYTES, "state")
    seq = _field(data, "seq", int, "state")
    if seq < 0:
        raise PayloadError(f"state: seq {seq}")
    return StateMessage(_field(data, "cluster", str, "state"), _field(data, "run", str, "state"),
                        seq, float(_field(data, "sent", (int, float), "state")),
                        _field(data, "state", dict, "state"), _field(data, "reason", str, "state"))


def encode_state_request(viewer: str, after: int | None) -> bytes:
    return _dump({"viewer": viewer, "after": after})


def decode_state_request(payload: bytes) -> StateRequest:
    data = _load(payload, MAX_REQUEST_BYTES, "state request")
    return StateRequest(_field(data, "viewer", str, "state request"),
                        _field(data, "after", int, "state request", optional=True))


def encode_control_request(request_id: str, viewer: str, action: str, args: dict,
                           token: str) -> bytes:
    return _dump({"id": request_id, "viewer": viewer, "action": action, "args": args,
                  "token": token})


def decode_control_request(payload: bytes) -> ControlRequest:
    data = _load(payload, MAX_REQUEST_BYTES, "control request")
    what = "control request"
    return ControlRequest(_field(data, "id", str, what), _field(data, "viewer", str, what),
                          _field(data, "action", str, what), _field(data, "args", dict, what),
                          _field(data, "token", str, what, optional=True) or "")


def encode_control_result(result: ControlResult) -> bytes:
    return _dump({"id": result.id, "viewer": result.viewer, "action": result.action,
                  "status": result.status, "reason": result.reason})


def decode_control_result(payload: bytes) -> ControlResult:
    data = _load(payload, MAX_REQUEST_BYTES, "control result")
    what = "control result"
    status = _field(data, "status", str, what)
    if status not in ("refused", "done", "failed"):
        raise PayloadError(f"{what}: status {status!r}")
    return ControlResult(_field(data, "id", str, what), _field(data, "viewer", str, what),
                         _field(data, "action", str, what), status,
                         _field(data, "reason", str, what))


# -- control: who may do what ------------------------------------------------------------------

@dataclass(frozen=True)
class ControlPolicy:
    """The presenter's rule for viewers' requests: the actions allowed, and the shared token
    every request must carry. No policy at all means control is off."""

    allow: frozenset
    token: str

    @classmethod
    def from_config(cls, config) -> "ControlPolicy | None":
        """``None`` (off) or ``{"allow": ["kill", "heal"], "token": "..."}``."""
        if config is None or isinstance(config, cls):
            return config
        if not isinstance(config, dict) or set(config) - {"allow", "token"}:
            raise ValueError("mqtt_control takes None (off) or a dict "
                             "{'allow': [actions...], 'token': 'a shared secret'}")
        allow = config.get("allow")
        if isinstance(allow, str) or not isinstance(allow, (list, tuple, set, frozenset)) or not allow:
            raise ValueError(f"mqtt_control['allow'] is a list of actions from "
                             f"{', '.join(ACTIONS)}, not {allow!r}")
        unknown = [a for a in allow if a not in ACTIONS]
        if unknown:
            raise ValueError(f"mqtt_control['allow']: unknown action {unknown[0]!r}; "
                             f"known: {', '.join(ACTIONS)}")
        token = config.get("token")
        if not isinstance(token, str) or len(token) < 8:
            raise ValueError("mqtt_control['token'] must be a string of at least 8 characters: "
                             "every viewer's request has to carry it")
        return cls(frozenset(allow), token)


def check_request(request: ControlRequest, policy: ControlPolicy | None,
                  nodes) -> str | None:
    """Why ``request`` is refused, or ``None`` when it may run. ``nodes``: the cluster's
    node names now. The token is checked before anything else is revealed."""
    if policy is None:
        return "control is off on the presenter's side"
    if not hmac.compare_digest(request.token.encode(), policy.token.encode()):
        return "wrong or missing token"
    if request.action not in ACTIONS:
        return f"unknown action {request.action!r}; known: {', '.join(ACTIONS)}"
    if request.action not in policy.allow:
        return (f"{request.action!r} is not allowed here; allowed: "
                f"{', '.join(sorted(policy.allow))}")
    return _check_args(request.action, request.args, list(nodes))


def _check_args(action: str, args: dict, nodes: list) -> str | None:
    spec = ACTIONS[action]
    extra = sorted(set(args) - set(spec))
    if extra:
        return f"{action} takes no argument {extra[0]!r}"
    for name, (kind, required) in spec.items():
        if name not in args:
            if required:
                return f"{action} needs {name!r}"
            continue
        if not isinstance(args[name], kind) or (kind is not bool and isinstance(args[name], bool)):
            return f"{action}: {name!r} must be a {kind.__name__}"
    if "node" in args and args["node"] not in nodes:
        return f"no node {args['node']!r}; nodes are {', '.join(nodes)}"
    if action == "partition":
        return _check_groups(args["groups"], nodes)
    return None


def _check_groups(groups: list, nodes: list) -> str | None:
    if not groups or not all(isinstance(g, list) and g for g in groups):
        return "partition: 'groups' is a list of non-empty lists of node names"
    seen = set()
    for group in groups:
        for name in group:
            if name not in nodes:
                return f"partition: no node {name!r}; nodes are {', '.join(map(str, nodes))}"
            if name in seen:
                return f"partition: {name!r} is in two groups"
            seen.add(name)
    return None
