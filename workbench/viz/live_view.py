"""A cluster drawn from its events alone: the replay's panel, fed live.

    view = viz.LiveView(mode="raft", nodes=["n1", "n2", "n3"])
    cluster.events.subscribe(view.feed)      # or events arriving from elsewhere (MQTT)
    view                                     # the node table and the progress chart

:meth:`LiveView.feed` may be called from any thread: it folds the event into a
:class:`~workbench.clusterstate.ClusterState` under a lock and tells the view's
:class:`~workbench.viz.pump.UiPump` that the state changed; the drain, on the kernel's
thread, draws the newest state once however many events came (a burst of 500 writes is
one redraw). :meth:`LiveView.load_state` starts again from a snapshot (a viewer that
joins a running cluster). No cluster object is needed, so the cluster may be remote.
"""

from __future__ import annotations

import threading
from collections import deque

from ..clusterstate import FAULT_EVENTS, ClusterState, FaultWindows
from ..events import Event, event_from_dict
from .cluster_view import ClusterView
from .pump import UiPump
from .replay_chart import marks

LIVE_STATE = "live-state"     # the pump's key: "the state changed"
HISTORY = 1500                # chart points kept (5 minutes at 5 redraws a second)
MAX_WINDOWS = 100             # fault windows kept
MAX_MARKS = 100


class LiveView(ClusterView):
    """The node table and progress chart of a cluster known only by its events."""

    def __init__(self, mode: str | None = None, nodes=(), *, pump: UiPump | None = None,
                 width: int = 760, height: int = 260):
        super().__init__(nodes, mode, width=width, height=height, history=HISTORY)
        self.add_class("wb-live-view")
        self._lock = threading.Lock()
        self._state = ClusterState(mode, nodes)
        self._faults = FaultWindows(max_windows=MAX_WINDOWS)
        self._marks: deque = deque(maxlen=MAX_MARKS)
        self._version = 0
        self.t0: float | None = None        # the chart's zero: the first instant it saw
        self._drawn_time: float | None = None
        self.pump = pump or UiPump()
        self.pump.on(LIVE_STATE, self._draw)

    # -- any thread ---------------------------------------------------------------------------
    def feed(self, event, count: int = 1) -> None:
        """Fold one event in (an Event, or its ``event_to_dict`` form); thread-safe."""
        if isinstance(event, dict):
            event = event_from_dict(event)
        if not isinstance(event, Event):
            raise TypeError(f"feed takes an Event or its dict form, not {type(event).__name__}")
        with self._lock:
            self._state.apply(event, count)
            if event.kind in FAULT_EVENTS:
                self._faults.update(self._state.faults(), event.time)
            self._marks.extend(marks([(event, count)], 0.0))
            self._version += 1
            version = self._version
        self.pump.publish(LIVE_STATE, version)

    def load_state(self, state: ClusterState) -> None:
        """Start again from ``state`` (a snapshot): the faults in force then are shaded
        from its time on; the chart keeps what it drew."""
        with self._lock:
            self._state = state.copy()
            self._faults = FaultWindows(max_windows=MAX_WINDOWS)
            if state.time is not None:
                self._faults.update(state.faults(), state.time)
            self._version += 1
            version = self._version
        self.pump.publish(LIVE_STATE, version)

    @property
    def cluster_state(self) -> ClusterState:
        """A copy of the state folded so far."""
        with self._lock:
            return self._state.copy()

    # -- the kernel's thread (the pump's drain) ----------------------------------------------
    def _draw(self, _version) -> None:
        with self._lock:
            state = self._state.as_dict()
            at = state["time"]
            windows = self._faults.windows(at) if at is not None else []
            marks_ = list(self._marks)
        self.show(state)
        if at is None:
            return
        if self.t0 is None:
            self.t0 = at
        if self._drawn_time is None or at > self._drawn_time:
            self.chart.add_point(at - self.t0, state)
            self._drawn_time = at
        self.chart.set_windows(windows, self.t0)
        self.chart.set_marks([(t - self.t0, text, colour) for t, text, colour in marks_])
        self.chart.set_cursor(at - self.t0)
