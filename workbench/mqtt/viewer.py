"""A reviewer's side: a broker URL and a cluster's name, and nothing of the cluster itself.

Theory of operation. The viewer subscribes to ``workbench/<cluster>/#`` on a loop thread of
its own and folds what arrives into a :class:`~workbench.clusterstate.ClusterState`, in
the presenter's order: a :class:`~workbench.mqtt.stream.SequenceTracker` drops late and
duplicated messages, holds back those that come after a hole, and says when a hole has
stayed open too long -- then the viewer asks for a state (``_state/request``), loads it,
and goes on from its seq. The retained ``_state`` gives a newcomer its start. A message
that is not what its topic promises is counted and ignored.

A view (``viz.LiveView``) given to the viewer is fed every event applied, and loaded with
every state: it draws the remote cluster with the same panel as a local one.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque

from ..clusterstate import ClusterState
from ..events import event_from_dict
from . import topics
from .link import Link
from .stream import SequenceTracker
from .topics import PayloadError


class Viewer:
    """Watch cluster ``cluster`` on the broker at ``url``; ``view``: a ``viz.LiveView``
    (or anything with ``feed(event, count)`` and ``load_state(state)``) to draw it."""

    def __init__(self, url: str, cluster: str, *, view=None, name: str | None = None,
                 reorder_window: float = 0.5, connect_timeout: float = 10.0):
        self.cluster = topics.check_name(cluster)
        self.name = topics.check_name(name or f"viewer-{secrets.token_hex(3)}", "viewer name")
        self.url = url
        self.view = view
        self.run: str | None = None      # the presenter's run being followed
        self.runs = 0                    # presenter runs followed (a restart starts over)
        self.received = 0                # messages on the cluster's topics
        self.rejected = 0                # not what their topic promises
        self.unknown = 0                 # events of a kind this version does not know
        self.dropped = 0                 # lost on purpose by drop_next()
        self.stale = 0                   # from a presenter run older than the one followed
        self.requests = 0                # states asked for
        self.latencies: deque = deque(maxlen=20_000)   # (published -> here, event -> here), s
        self._reorder_window = reorder_window
        self._tracker = SequenceTracker(reorder_window=reorder_window, started=time.monotonic())
        self._state = ClusterState()
        self._run_sent = 0.0
        self._drop = 0
        self._results: dict[str, asyncio.Future] = {}
        self._ticker: asyncio.Task | None = None
        self._closed = False
        # the client id is unique even when two reviewers pick the same name: a broker
        # drops the older of two connections with one id
        self.link = Link(url, identifier=f"workbench-{self.name}-{secrets.token_hex(3)}",
                         subscriptions=[topics.cluster_filter(self.cluster)],
                         on_message=self._on_message, on_connect=self._on_connect,
                         thread_name=f"workbench-mqtt-{self.name}",
                         connect_timeout=connect_timeout)
        self.link.start()
        self.link.runtime.run(self._start_ticker(), timeout=10)

    # -- what a reviewer reads (any thread) ------------------------------------------------
    def state(self) -> tuple[int | None, dict]:
        """``(seq, state)``: the folded state, and the last seq it includes."""
        return self._read(lambda: (self._tracker.last_seq, self._state.as_dict()))

    def cluster_state(self) -> ClusterState:
        """A copy of the folded :class:`ClusterState`."""
        return self._read(self._state.copy)

    @property
    def seq(self) -> int | None:
        return self._tracker.last_seq

    def stats(self) -> dict:
        """Where the viewer stands: seq, applied, late, gaps, missed, snapshots loaded ..."""
        def take():
            return {**self._tracker.stats(), "received": self.received,
                    "rejected": self.rejected, "unknown": self.unknown,
                    "dropped": self.dropped, "stale": self.stale, "requests": self.requests,
                    "runs": self.runs, "connected": self.link.connected,
                    "connects": self.link.connects}
        return self._read(take)

    def wait_until(self, condition, *, timeout: float, what: str = "the condition",
                   interval: float = 0.02) -> None:
        """Poll ``condition(viewer)`` (run on the viewer's thread, so it reads a state that
        is not changing) until true; ``TimeoutError`` naming ``what``."""
        deadline = time.monotonic() + timeout
        while not self._read(lambda: condition(self)):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {timeout} s waiting for {what} "
                                   f"(viewer at seq {self.seq})")
            time.sleep(interval)

    def wait_for_seq(self, seq: int, timeout: float = 10.0) -> None:
        """Wait until the viewer's state includes the presenter's event ``seq``."""
        self.wait_until(lambda v: v.seq is not None and v.seq >= seq, timeout=timeout,
                        what=f"seq {seq}")

    def caught_up_with(self, bridge, timeout: float = 15.0) -> tuple[int, dict, dict]:
        """``(seq, presenter's state, this viewer's state)`` at one seq both have reached:
        the check that the viewer folds exactly what the presenter folded. For a run with
        both sides at hand (a test, a self-contained notebook). The seq covers what the
        bridge had received when asked; an event still on its way from the cluster's bus
        comes with a later one."""
        deadline = time.monotonic() + timeout
        while True:
            bridge.flush(timeout=max(1.0, deadline - time.monotonic()))
            seq, expected = bridge.state()
            try:
                self.wait_for_seq(seq, timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise TimeoutError(f"viewer {self.name} did not reach the presenter's seq "
                                   f"{seq} within {timeout} s (it is at {self.seq})") from None
            seen_seq, seen = self.state()
            if seen_seq == seq:
                return seq, expected, seen
            if time.monotonic() >= deadline:     # the presenter kept moving: try again
                raise TimeoutError(f"the presenter kept publishing for {timeout} s: no seq "
                                   "to compare at")

    # -- what a reviewer does --------------------------------------------------------------
    def request(self, action: str, *, token: str = "", timeout: float = 15.0, **args):
        """Ask the presenter's side to ``kill`` / ``restart`` a node, ``partition`` or
        ``heal``; returns its answer (a ``ControlResult``: status ``refused``, ``done`` or
        ``failed``, and the reason). ``TimeoutError`` when no answer comes."""
        request_id = secrets.token_hex(8)
        payload = topics.encode_control_request(request_id, self.name, action, args, token)

        async def ask():
            answer = asyncio.get_running_loop().create_future()
            self._results[request_id] = answer
            try:
                if not self.link.publish(topics.control_request_topic(self.cluster), payload,
                                         qos=1):
                    raise ConnectionError(f"not connected to {self.url}")
                return await asyncio.wait_for(answer, timeout)
            except asyncio.TimeoutError:
                raise TimeoutError(f"no answer to {action!r} within {timeout} s: is the "
                                   f"presenter's cluster {self.cluster!r} publishing on "
                                   f"{self.url}?") from None
            finally:
                self._results.pop(request_id, None)
        return self.link.runtime.run(ask(), timeout=timeout + 5)

    def drop_next(self, count: int) -> None:
        """A lever: lose the next ``count`` event messages, as a congested network would.
        The viewer notices the hole and asks for a state."""
        if not isinstance(count, int) or count < 0:
            raise ValueError(f"count must be a non-negative integer, not {count!r}")
        self._read(lambda: setattr(self, "_drop", count))

    def ask_for_state(self) -> None:
        """Ask the presenter for a state now (as after a hole)."""
        self._read(lambda: self._ask(time.monotonic()))

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._ticker is not None:
            self.link.runtime.loop.call_soon_threadsafe(self._ticker.cancel)
        self.link.close()

    def __enter__(self) -> "Viewer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Viewer {self.name} of {self.cluster} on {self.url} seq={self.seq}>"

    def _read(self, fn):
        if self._closed or self.link.runtime.in_loop_thread:
            return fn()
        return self.link.runtime.call(fn)

    # -- the viewer's loop ----------------------------------------------------------------------
    async def _start_ticker(self) -> None:
        self._ticker = asyncio.ensure_future(self._tick())

    async def _tick(self) -> None:
        # A hole closes by a state; ask for it even when no further message comes.
        while True:
            await asyncio.sleep(min(0.1, self._reorder_window / 2))
            self._maybe_ask(time.monotonic())

    def _on_connect(self, first: bool) -> None:
        # The retained state may be seconds old, and messages may have been missed while
        # disconnected: a fresh state now beats a hole noticed later.
        self._ask(time.monotonic())

    def _maybe_ask(self, now: float) -> None:
        if self._tracker.needs_state(now):
            self._ask(now)

    def _ask(self, now: float) -> None:
        self._tracker.asked(now)
        if self.link.publish(topics.state_request_topic(self.cluster),
                             topics.encode_state_request(self.name, self._tracker.last_seq),
                             qos=1):
            self.requests += 1

    def _on_message(self, topic: str, payload: bytes) -> None:
        try:
            where = topics.parse_topic(topic)
        except PayloadError:
            self.rejected += 1
            return
        if where.cluster != self.cluster or where.kind in (topics.STATE_REQUEST,
                                                           topics.CONTROL_REQUEST):
            return
        self.received += 1
        now = time.monotonic()
        try:
            if where.kind == topics.EVENT:
                self._on_event(where, topics.decode_event(payload), now)
            elif where.kind == topics.STATE:
                self._on_state(topics.decode_state(payload), now)
            elif where.kind == topics.CONTROL_RESULT:
                result = topics.decode_control_result(payload)
                answer = self._results.get(result.id)
                if answer is not None and not answer.done():
                    answer.set_result(result)
        except PayloadError:
            self.rejected += 1
        self._maybe_ask(now)

    def _follows(self, run: str, sent: float) -> bool:
        """Whether a message of presenter run ``run`` is to be used: a newer run than the one
        followed starts the viewer over; an older one is stale."""
        if run == self.run:
            self._run_sent = max(self._run_sent, sent)
            return True
        if self.run is not None and sent < self._run_sent:
            self.stale += 1
            return False
        self.run, self._run_sent = run, sent
        now = time.monotonic()
        self.runs += 1
        self._tracker = SequenceTracker(reorder_window=self._reorder_window, started=now)
        self._state = ClusterState()
        return True

    def _on_event(self, where, message, now: float) -> None:
        event = message.event
        if message.cluster != self.cluster or event["node"] != where.node \
                or event["kind"] != where.event:
            raise PayloadError("the event does not match its topic")
        if self._drop > 0:
            self._drop -= 1
            self.dropped += 1
            return
        if not self._follows(message.run, message.sent):
            return
        for ready in self._tracker.event(message.seq, message, now):
            self._apply(ready)

    def _on_state(self, message, now: float) -> None:
        if message.cluster != self.cluster:
            raise PayloadError("the state is of another cluster")
        try:
            state = ClusterState.from_dict(message.state)
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise PayloadError(f"state: {err}") from None
        if not self._follows(message.run, message.sent):
            return
        loaded, ready = self._tracker.snapshot(message.seq, now)
        if not loaded:
            return
        self._state = state
        if self.view is not None:
            self.view.load_state(state.copy())
        for item in ready:
            self._apply(item)

    def _apply(self, message) -> None:
        try:
            event = event_from_dict(message.event)
        except ValueError:
            self.unknown += 1
            return
        self._state.apply(event, message.coalesced)
        received = time.time()
        self.latencies.append((received - message.sent, received - event.time))
        if self.view is not None:
            self.view.feed(event, message.coalesced)

