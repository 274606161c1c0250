"""The presenter's side: a cluster's events out to MQTT, viewers' requests in.

Theory of operation. The bridge subscribes to ``cluster.events``. On the bus's thread it
only sorts: a noisy event (one per write) replaces the pending sample of its node and kind
in a :class:`~workbench.mqtt.stream.Coalescer`; any other event goes to the outbox after
the samples that came before it. Everything else happens on the bridge's own loop thread
(its :class:`~workbench.mqtt.link.Link`), one step at a time, so it needs no lock: every
``coalesce_ms`` (or at once, for a non-noisy event) the pump takes the outbox, gives each
event the next ``seq``, folds it into the bridge's :class:`~workbench.clusterstate.ClusterState`
-- exactly what a viewer that missed nothing holds -- and publishes it.

A state (``_state``, retained) goes out when the bridge starts, after a reconnect, when a
viewer asks (requests arriving together are answered once), every ``state_every`` seconds
if anything changed (so a newcomer's retained state is recent), and when it closes.

Control requests are checked against the :class:`~workbench.mqtt.topics.ControlPolicy`
(off by default). Refused ones are answered, logged (``workbench.mqtt`` logger) and kept in
:attr:`Bridge.control_log`; accepted ones run one at a time in a worker thread, through
the same API a notebook cell uses.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections import deque
from typing import Callable

from ..clusterstate import ClusterState
from ..events import EventBus, EventsDropped, event_to_dict
from . import topics
from .link import Link
from .stream import Coalescer
from .topics import ControlPolicy, ControlResult, PayloadError

log = logging.getLogger("workbench.mqtt")

MAX_OUTBOX = 20_000       # events waiting for the pump; past it the oldest are dropped
MAX_PENDING_ACTIONS = 8   # accepted control requests waiting to run


def cluster_actions(cluster) -> Callable[[str, dict], None]:
    """What an accepted control request does to ``cluster``: the public API, nothing more."""
    def act(action: str, args: dict) -> None:
        if action == "kill":
            cluster.node(args["node"]).kill(power_loss=args.get("power_loss", False))
        elif action == "restart":
            cluster.node(args["node"]).restart()
        elif action == "partition":
            cluster.partition(*args["groups"])
        elif action == "heal":
            cluster.heal()
        else:   # check_request lets only topics.ACTIONS through
            raise ValueError(f"unknown action {action!r}")
    return act


class Bridge:
    """Publishes ``events`` as the stream of cluster ``name`` on the broker at ``url``.

    ``nodes()`` names the cluster's nodes now and ``act(action, args)`` carries out an
    accepted control request; ``control`` is ``None`` (off) or
    ``{"allow": [...], "token": "..."}``; ``broker``: an embedded broker the bridge owns
    and closes with itself; ``state``: what happened before the bridge started, if anything.
    """

    def __init__(self, events: EventBus, url: str, name: str, *, mode: str | None = None,
                 nodes: Callable[[], list] = list, act: Callable[[str, dict], None] | None = None,
                 control=None, broker=None, state: ClusterState | None = None, qos: int = 1,
                 coalesce_ms: float = 200, state_every: float = 5.0,
                 connect_timeout: float = 10.0):
        self.name = topics.check_name(name)
        self.policy = ControlPolicy.from_config(control)
        if qos not in (0, 1, 2):
            raise ValueError(f"qos is 0, 1 or 2, not {qos!r}")
        self.url = url
        self.run = secrets.token_hex(4)
        self.mode = mode
        self.qos = qos
        self.coalesce = coalesce_ms / 1000
        self.state_every = state_every
        self.broker = broker
        self.seq = 0                  # the last seq given out
        self.published = 0            # event messages handed to the broker
        self.states_sent = 0
        self.dropped = 0              # events past MAX_OUTBOX, never published
        self._dropped_told = 0
        self._nodes = nodes
        self._act = act
        self._state = state.copy() if state is not None else ClusterState(mode)
        self._state_seq = -1          # seq of the last state published
        self._state_wanted: str | None = "start"
        self._control_log: deque = deque(maxlen=500)
        self._pending_actions = 0
        self._action_lock = asyncio.Lock()      # bound to the bridge's loop on first use
        self._lock = threading.Lock()
        self._coalescer = Coalescer()
        self._outbox: deque = deque()
        self._wake = asyncio.Event()
        self._wake_pending = False
        self._closing = False
        self._closed = False
        self._pump_task: asyncio.Task | None = None
        self._events = events
        self._subscription = None
        self.link = Link(url, identifier=f"workbench-bridge-{self.name}-{self.run}",
                         subscriptions=[topics.state_request_topic(self.name),
                                        topics.control_request_topic(self.name)],
                         on_message=self._on_message, on_connect=self._on_connect,
                         thread_name=f"workbench-mqtt-bridge-{self.name}",
                         connect_timeout=connect_timeout)
        try:
            self.link.start()
            self.link.runtime.run(self._start_pump(), timeout=10)
            self._subscription = events.subscribe(self._on_event)
        except BaseException:
            self.close()
            raise

    @classmethod
    def for_cluster(cls, cluster, mqtt, control=None, **options) -> "Bridge":
        """The bridge ``Cluster(mqtt=..., mqtt_control=...)`` starts: ``mqtt=True`` starts an
        embedded broker owned by the bridge, ``"mqtt://host:port"`` uses that broker."""
        ControlPolicy.from_config(control)            # refuse a bad policy before starting
        broker = None
        if mqtt is True:
            from .broker import EmbeddedBroker
            broker = EmbeddedBroker()
            url = broker.url
        elif isinstance(mqtt, str):
            topics.parse_url(mqtt)
            url = mqtt
        else:
            raise ValueError(f"mqtt takes True (an embedded broker on 127.0.0.1) or a URL "
                             f"like 'mqtt://127.0.0.1:1883', not {mqtt!r}")
        try:
            return cls(cluster.events, url, cluster.name, mode=cluster.mode,
                       nodes=lambda: list(cluster.names), act=cluster_actions(cluster),
                       control=control, broker=broker, **options)
        except BaseException:
            if broker is not None:
                broker.close()
            raise

    # -- the bus's thread ------------------------------------------------------------------
    def _on_event(self, event) -> None:
        with self._lock:
            if self._coalescer.offer(event):
                return
            self._outbox.extend(self._coalescer.drain())
            self._outbox.append((event, 1))
            while len(self._outbox) > MAX_OUTBOX:
                self._outbox.popleft()
                self.dropped += 1
            self._wake_pump()

    def _wake_pump(self) -> None:
        if not self._wake_pending:
            self._wake_pending = True
            self.link.runtime.loop.call_soon_threadsafe(self._wake.set)

    # -- the bridge's loop ---------------------------------------------------------------------
    async def _start_pump(self) -> None:
        self._pump_task = asyncio.ensure_future(self._pump())
        self._pump_task.add_done_callback(_pump_ended)
        self._wake.set()          # the start state goes out at once

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        next_flush = loop.time() + self.coalesce
        next_state = loop.time() + self.state_every
        while True:
            timeout = max(0.0, min(next_flush, next_state) - loop.time())
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            now = loop.time()
            flush = now >= next_flush or self._state_wanted is not None or self._closing
            with self._lock:
                self._wake_pending = False
                if flush:
                    self._outbox.extend(self._coalescer.drain())
                items = list(self._outbox)
                self._outbox.clear()
                if self.dropped > self._dropped_told:   # say so in the stream, as the bus does
                    lost = EventsDropped("bridge", count=self.dropped - self._dropped_told)
                    items.insert(0, (lost, 1))
                    self._dropped_told = self.dropped
            if now >= next_flush:
                next_flush = now + self.coalesce
            for event, count in items:
                if event is None:             # a flush() marker: everything before it is out
                    count.set_result(self.seq)
                    continue
                await self.link.room()
                self._send_event(event, count)
            if now >= next_state and self._state_wanted is None and self.seq != self._state_seq:
                self._state_wanted = "periodic"
            if self._state_wanted is not None:
                self._send_state(self._state_wanted)
                next_state = now + self.state_every
            if self._closing:
                with self._lock:
                    if not self._outbox and not len(self._coalescer):
                        return

    def _send_event(self, event, count: int) -> None:
        try:
            payload = topics.encode_event(self.name, self.run, self.seq + 1,
                                          event_to_dict(event), sent=time.time(),
                                          coalesced=count)
        except (TypeError, ValueError) as err:    # one event we cannot send stops nothing
            log.error("event %r not published: %s", event, err)
            self.dropped += 1
            return
        self.seq += 1
        self._state.apply(event, count)
        if self.link.publish(topics.event_topic(self.name, event.node, event.kind), payload,
                             qos=self.qos):
            self.published += 1

    def _send_state(self, reason: str) -> None:
        self._state_wanted = None
        payload = topics.encode_state(self.name, self.run, self.seq, self._state.as_dict(),
                                      sent=time.time(), reason=reason)
        if self.link.publish(topics.state_topic(self.name), payload, qos=1, retain=True):
            self._state_seq = self.seq
            self.states_sent += 1

    def _want_state(self, reason: str) -> None:
        if self._state_wanted is None:
            self._state_wanted = reason
        self._wake.set()

    def _on_connect(self, first: bool) -> None:
        self._want_state("start" if first else "reconnect")

    def _on_message(self, topic: str, payload: bytes) -> None:
        try:
            kind = topics.parse_topic(topic).kind
        except PayloadError:
            return
        if kind == topics.STATE_REQUEST:
            try:
                topics.decode_state_request(payload)
            except PayloadError as err:
                log.warning("ignored a state request on %s: %s", topic, err)
                return
            self._want_state("request")
        elif kind == topics.CONTROL_REQUEST:
            self._on_control(payload)

    # -- control ------------------------------------------------------------------------------
    def _on_control(self, payload: bytes) -> None:
        try:
            request = topics.decode_control_request(payload)
        except PayloadError as err:
            self._answer(topics.ControlRequest("", "?", "?", {}, ""), "refused",
                         f"bad request: {err}")
            return
        reason = topics.check_request(request, self.policy, self._nodes())
        if reason is None and self._act is None:
            reason = "this stream has no cluster to act on"
        if reason is None and self._pending_actions >= MAX_PENDING_ACTIONS:
            reason = f"busy: {self._pending_actions} requests are waiting to run"
        if reason is not None:
            self._answer(request, "refused", reason)
            return
        self._pending_actions += 1
        asyncio.ensure_future(self._carry_out(request))

    async def _carry_out(self, request) -> None:
        async with self._action_lock:
            try:
                await asyncio.to_thread(self._act, request.action, dict(request.args))
            except Exception as err:
                self._answer(request, "failed", f"{type(err).__name__}: {err}")
            else:
                self._answer(request, "done", _describe(request))
            finally:
                self._pending_actions -= 1

    def _answer(self, request, status: str, reason: str) -> None:
        entry = {"time": time.time(), "viewer": request.viewer, "action": request.action,
                 "args": dict(request.args), "status": status, "reason": reason}
        self._control_log.append(entry)
        if status == "refused":
            log.warning("control request %s from %s refused: %s", request.action,
                        request.viewer, reason)
        else:
            log.info("control request %s from %s: %s (%s)", request.action, request.viewer,
                     status, reason)
        result = ControlResult(request.id, request.viewer, request.action, status, reason)
        self.link.publish(topics.control_result_topic(self.name),
                          topics.encode_control_result(result), qos=1)

    # -- what a presenter reads ------------------------------------------------------------------
    @property
    def control_log(self) -> list[dict]:
        """Every control request answered (newest last): viewer, action, status, reason."""
        return list(self._control_log)

    def state(self) -> tuple[int, dict]:
        """``(seq, state)``: the state as of the last published event -- what a viewer that
        received everything up to ``seq`` holds."""
        if self._closed:
            return self.seq, self._state.as_dict()
        return self.link.runtime.call(lambda: (self.seq, self._state.as_dict()))

    def flush(self, timeout: float = 10.0) -> int:
        """Publish every event the bridge has received, noisy samples included, and wait
        until the broker has them; return the last seq. (Events reach the bridge through
        the bus's own thread, a moment after they happen.)"""
        async def flush():
            done = asyncio.get_running_loop().create_future()
            with self._lock:
                self._outbox.extend(self._coalescer.drain())
                self._outbox.append((None, done))
            self._wake.set()
            seq = await done
            await self.link.drain(timeout)
            return seq
        return self.link.runtime.run(flush(), timeout=timeout)

    def stats(self) -> dict:
        return {"url": self.url, "cluster": self.name, "run": self.run, "seq": self.seq,
                "published": self.published, "states": self.states_sent,
                "lost": self.link.lost, "dropped": self.dropped,
                "connected": self.link.connected, "connects": self.link.connects,
                "control": sorted(self.policy.allow) if self.policy else "off"}

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, timeout: float = 5.0) -> None:
        """Publish what is pending and a last state, disconnect, and stop the broker the
        bridge owns (viewers then see the broker go away)."""
        if self._closed:
            return
        self._closed = True
        if self._subscription is not None:
            self._events.unsubscribe(self._subscription)
            self._subscription.join(timeout)

        async def finish():
            self._closing = True
            self._want_state("close")
            if self._pump_task is not None:
                await asyncio.wait([self._pump_task], timeout=timeout)
        if self.link.runtime.loop.is_running():     # not when the first connect failed
            try:
                self.link.runtime.run(finish(), timeout=timeout + 5)
            except Exception:
                pass
        self.link.close(timeout)
        if self.broker is not None:
            self.broker.close()

    def __enter__(self) -> "Bridge":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Bridge {self.name} -> {self.url} seq={self.seq}>"


def _pump_ended(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the MQTT bridge stopped publishing", exc_info=task.exception())


def _describe(request) -> str:
    args = request.args
    if request.action == "kill":
        return f"killed {args['node']}" + (" (power loss)" if args.get("power_loss") else "")
    if request.action == "restart":
        return f"restarted {args['node']}"
    if request.action == "partition":
        return "partitioned " + " | ".join("[" + ", ".join(g) + "]" for g in args["groups"])
    return "healed every link"
