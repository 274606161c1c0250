"""The one road from the node threads to the widgets.

Theory of operation. Nodes run on a background loop thread and events arrive on a
subscription thread; widgets and Bokeh documents have no locks and must only be touched
from the kernel's own thread. So producers never touch a widget. They hand plain data
to a :class:`UiPump`:

* ``publish(key, value)`` -- a state (a cluster snapshot): only the newest one matters,
  so a burst of 200 snapshots becomes one UI update;
* ``append(key, item)`` -- a stream (events): every item matters, in order, up to a
  bound.

Either call stores the data under a lock and, if no drain is pending, schedules ONE
drain on the kernel's asyncio loop with ``call_soon_threadsafe``. The drain runs on the
kernel thread and hands the data to the *appliers* registered with ``on(key, fn)``.
Outside a kernel (plain Python, tests) the drain runs at once on the caller's thread.

A viewer that needs more than ``cluster.snapshot()`` registers a *sampler* with
``sample(key, fn)``: ``fn`` runs on the sampler thread with every snapshot, and
its plain-data result is published under ``key`` like the snapshot itself.

A drain only runs while the kernel is idle or a cell is awaiting, so cells that wait
should ``await asyncio.sleep(...)``, not ``time.sleep(...)``. A cell that blocks (say in
``cluster.wait_until``) still ends with up-to-date views: after every cell the pump takes
a fresh snapshot and drains at once, inside that cell -- which is also what makes the
final state land in a notebook executed headless (nbclient keeps only the messages of
the cell that is running).
"""

from __future__ import annotations

import contextvars
import threading
import time
import traceback
import weakref
from collections import deque
from typing import Any, Callable

from ..events import PER_WRITE_EVENTS

SNAPSHOT = "snapshot"   # key of the newest cluster snapshot (a dict, plus "_time")
EVENTS = "events"       # key of the stream of cluster events worth showing

# Events a viewer never shows: one per write, they would swamp every log and queue.
NOISY_EVENTS = PER_WRITE_EVENTS


def _ipython():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def kernel_loop():
    """The asyncio loop of the running IPython kernel, or ``None`` outside a kernel."""
    kernel = getattr(_ipython(), "kernel", None)
    io_loop = getattr(kernel, "io_loop", None)
    return getattr(io_loop, "asyncio_loop", None)


class UiPump:
    """Carries snapshots and events from node threads to appliers on the kernel thread."""

    _by_cluster: "weakref.WeakKeyDictionary[Any, UiPump]" = weakref.WeakKeyDictionary()

    def __init__(self, *, max_items: int = 500):
        self.max_items = max_items
        self.drains = 0                   # how many drains ran: a test can watch it move
        self._loop = kernel_loop()
        self._lock = threading.Lock()
        self._apply_lock = threading.RLock()   # serialises drains when there is no kernel
        self._latest: dict[str, Any] = {}
        self._taken: dict[str, float] = {}
        self._streams: dict[str, deque] = {}
        self._appliers: dict[str, list[Callable]] = {}
        self._samplers: dict[str, Callable[[], Any]] = {}
        self._drain_pending = False
        self._stop = threading.Event()
        self._cluster = lambda: None      # a weak reference once watching: see watch()
        self._sampler: threading.Thread | None = None
        self._subscription = None
        self._shell = None

    @classmethod
    def for_cluster(cls, cluster, *, every: float = 0.2) -> "UiPump":
        """The pump watching ``cluster``, shared by all its viewers (started on first use)."""
        pump = cls._by_cluster.get(cluster)
        if pump is None or pump.closed:
            pump = cls()
            pump.watch(cluster, every=every)
            cls._by_cluster[cluster] = pump
        return pump

    # -- the consumer side (kernel thread) -----------------------------------------------
    def on(self, key: str, applier: Callable[[Any], None]) -> None:
        """Call ``applier`` on the kernel thread with each drained value of ``key``: the
        newest value for ``publish``, the list of new items for ``append``."""
        with self._lock:
            self._appliers.setdefault(key, []).append(applier)

    def sample(self, key: str, sampler: Callable[[], Any]) -> None:
        """Publish ``sampler()`` under ``key`` with every snapshot of the watched cluster.

        ``sampler`` runs on the sampler thread (or in a cell's ``post_run_cell``), never
        on the node loop: to read node state it goes through ``cluster.runtime.call``
        and returns plain data. Registering ``key`` again replaces its sampler.
        """
        with self._lock:
            self._samplers[key] = sampler

    # -- the producer side (any thread) ----------------------------------------------------
    def publish(self, key: str, value: Any, taken: float | None = None) -> None:
        """Offer the newest state for ``key``; an older, undrained one is replaced.

        ``taken`` is when the state was read (``time.monotonic()``): two samplers racing
        (the periodic thread and the after-cell refresh) must not let an older reading
        that finished later overwrite a newer one."""
        with self._lock:
            if taken is not None:
                if taken < self._taken.get(key, float("-inf")):
                    return
                self._taken[key] = taken
            self._latest[key] = value
            schedule = self._claim_drain()
        if schedule:
            self._schedule_drain()

    def append(self, key: str, item: Any) -> None:
        """Offer one more item of the stream ``key`` (the oldest drop beyond ``max_items``)."""
        with self._lock:
            self._streams.setdefault(key, deque(maxlen=self.max_items)).append(item)
            schedule = self._claim_drain()
        if schedule:
            self._schedule_drain()

    def _claim_drain(self) -> bool:
        if self._drain_pending:
            return False
        self._drain_pending = True
        return True

    def _schedule_drain(self) -> None:
        loop = self._loop
        if loop is None:
            self._drain()
            return
        try:
            # An empty context: the drain then takes the parent of the cell running at
            # that moment, so its widget updates are recorded against the right cell.
            loop.call_soon_threadsafe(self._drain, context=contextvars.Context())
        except RuntimeError:   # the kernel's loop is closed: the kernel is going away
            self.close()

    def _drain(self) -> None:
        with self._apply_lock:
            with self._lock:
                latest, self._latest = self._latest, {}
                streams, self._streams = self._streams, {}
                appliers = {k: list(v) for k, v in self._appliers.items()}
                self._drain_pending = False
            for key, items in streams.items():
                self._apply(appliers.get(key, ()), list(items))
            for key, value in latest.items():
                self._apply(appliers.get(key, ()), value)
            self.drains += 1

    def flush(self) -> None:
        """Apply everything pending now, on this thread: call it only from the kernel's
        thread (a cell, a button handler), never from a node thread."""
        self._drain()

    @staticmethod
    def _apply(appliers, value) -> None:
        for applier in appliers:
            try:
                applier(value)
            except Exception:   # one broken view must not stop the others updating
                traceback.print_exc()

    # -- watching a cluster ------------------------------------------------------------------
    def watch(self, cluster, *, every: float = 0.2) -> None:
        """Publish ``cluster.snapshot()`` every ``every`` seconds under ``SNAPSHOT`` and its
        events under ``EVENTS``, until :meth:`close` or until the cluster closes."""
        if self._sampler is not None:
            raise RuntimeError("this pump already watches a cluster")
        # Weak, so that the registry of pumps does not keep closed clusters alive.
        self._cluster = weakref.ref(cluster)
        self._subscription = cluster.events.subscribe(self._on_event, max_queue=self.max_items)
        self._sampler = threading.Thread(target=self._sample_loop, args=(cluster, every),
                                         name="workbench-ui-sampler", daemon=True)
        self._sampler.start()
        self._shell = _ipython()
        if self._shell is not None:
            self._shell.events.register("post_run_cell", self._after_cell)

    def sample_now(self) -> None:
        """Publish a fresh snapshot at once (after a button acted on the cluster)."""
        cluster = self._cluster()
        if cluster is not None and not self.closed:
            self._publish_snapshot(cluster)

    def _after_cell(self, result=None) -> None:
        if self.closed:
            self._shell.events.unregister("post_run_cell", self._after_cell)
        else:
            self.sample_now()
        self.flush()

    def _on_event(self, event) -> None:
        if event.kind not in NOISY_EVENTS:
            self.append(EVENTS, event)

    def _sample_loop(self, cluster, every: float) -> None:
        while not self._stop.wait(every):
            if not self._publish_snapshot(cluster):
                break
        self.close()

    def _publish_snapshot(self, cluster) -> bool:
        # A closed cluster has stopped its loop; asking it would wait for nothing.
        if cluster.closed:
            return False
        taken = time.monotonic()
        try:
            snapshot = cluster.snapshot()
        except Exception:   # the cluster closed between the check and the call
            return False
        self.publish(SNAPSHOT, {**snapshot, "_time": time.time()}, taken)
        with self._lock:
            samplers = list(self._samplers.items())
        for key, sampler in samplers:
            taken = time.monotonic()
            try:
                value = sampler()
            except Exception:   # the cluster closed mid-sample: the next round tells
                continue
            self.publish(key, value, taken)
        return True

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        """Stop sampling and unsubscribe; appliers keep the last values they were given."""
        self._stop.set()
        subscription, self._subscription = self._subscription, None
        cluster = self._cluster()
        if subscription is not None and cluster is not None:
            cluster.events.unsubscribe(subscription)
