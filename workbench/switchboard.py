"""One cluster at a time, rebuilt in whatever durability you pick, with a workload that
never stops: the engine behind ``notebooks/01-switchboard.ipynb``.

Every request -- use another durability, apply a fault, end the run and check it -- is
queued to ONE worker thread, so a click never blocks the notebook and two clicks never
race on a cluster. Between requests the worker keeps the numbers fresh (every half
second) and the provisional verdict too (every two seconds), and hands both to
``on_update`` callbacks. A run ends when you switch, when you ask, or after
``max_seconds``: the faults are undone, every key is read back and the checkers give the
final verdict, which joins :attr:`Switchboard.results` -- one row per run, to set side by
side.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from concurrent.futures import Future
from typing import Callable

from .cluster import Cluster
from .history.live import FAULTS, Durability, LiveRun

TICK_S = 0.5
CHECK_EVERY_S = 2.0
SETTINGS = {                      # fast failure detection: a demonstration lasts seconds
    "async": {"down_after_ms": 600},
    "sync": {"down_after_ms": 600},
    "aof": {},
    "raft": {},
}


class Switchboard:
    """Owns the cluster and its :class:`LiveRun`; everything runs on its worker thread."""

    def __init__(self, *, clients: int = 3, rate: float = 300, max_seconds: float = 120,
                 seed: int = 0):
        self.clients, self.rate, self.max_seconds, self.seed = clients, rate, max_seconds, seed
        self.cluster: Cluster | None = None
        self.run: LiveRun | None = None
        self.results: list[dict] = []
        self.log: list[tuple[float, str]] = []        # (seconds since start, what happened)
        self.started = time.monotonic()
        self.closed = False
        self._listeners: list[Callable[[str, object], None]] = []
        self._requests: queue.Queue = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="workbench-switchboard",
                                        daemon=True)
        self._worker.start()

    # -- what callers ask for (any thread; each returns a Future) ------------------------
    def use(self, mode: str, wait_replicas: int = 0) -> Future:
        """End the current run (final verdict), then run ``mode`` on a fresh cluster."""
        return self._ask(self._use, Durability(mode, wait_replicas))

    def fault(self, name: str) -> Future:
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; accepted: {', '.join(FAULTS)}")
        return self._ask(self._fault, name)

    def finish(self) -> Future:
        """End the current run and give its final verdict; the cluster stays up."""
        return self._ask(self._finish)

    def restart_run(self) -> Future:
        """A fresh run in the same durability, on the same cluster."""
        return self._ask(self._restart_run)

    def close(self, timeout: float = 60) -> None:
        """Finish the run, shut the cluster down and stop the worker."""
        if self.closed:
            return
        self._ask(self._close).result(timeout)
        self._worker.join(timeout)

    def on_update(self, listener: Callable[[str, object], None]) -> None:
        """``listener(kind, value)`` on the worker thread: ``"stats"`` (a dict, every tick),
        ``"log"`` (a line), ``"result"`` (a finished run's row), ``"run"`` (a new run)."""
        self._listeners.append(listener)

    def __enter__(self) -> "Switchboard":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def durability(self) -> Durability | None:
        return self.run.durability if self.run is not None else None

    def seconds(self) -> float:
        return time.monotonic() - self.started

    # -- the worker ---------------------------------------------------------------------
    def _ask(self, action, *args) -> Future:
        if self.closed:
            raise RuntimeError("the switchboard is closed")
        future: Future = Future()
        self._requests.put((future, action, args))
        return future

    def _tell(self, kind: str, value) -> None:
        for listener in list(self._listeners):
            try:
                listener(kind, value)
            except Exception:        # a broken view must not stop the workload
                traceback.print_exc()

    def _say(self, text: str) -> None:
        self.log.append((round(self.seconds(), 2), text))
        self._tell("log", (round(self.seconds(), 2), text))

    def _work(self) -> None:
        next_check = time.monotonic()
        while True:
            try:
                future, action, args = self._requests.get(timeout=TICK_S)
            except queue.Empty:
                future = None
            if future is not None:
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(action(*args))
                except BaseException as err:       # the caller learns why; the worker goes on
                    self._say(f"{action.__name__.strip('_')} failed: {err}")
                    future.set_exception(err)
                if self.closed:
                    return
            run = self.run
            if run is None or not run.running:
                continue
            try:
                if run.elapsed() >= self.max_seconds:
                    self._say(f"{run.durability.label} ran {self.max_seconds:.0f} s: "
                              "ending the run (press 'Check now' for a new one)")
                    self._finish()
                    continue
                if time.monotonic() >= next_check:
                    run.check()
                    next_check = time.monotonic() + CHECK_EVERY_S
                self._tell("stats", {**run.stats(), **run.gate(), "at": round(self.seconds(), 2)})
            except Exception as err:       # a node died mid-read: the next tick tells more
                self._tell("stats_error", str(err))

    def _use(self, durability: Durability) -> dict | None:
        result = self._finish()
        if self.cluster is not None and (self.cluster.mode != durability.mode):
            self._say(f"shutting the {self.cluster.mode} cluster down")
            self.cluster.close()
            self.cluster = None
        if self.cluster is None:
            self._say(f"starting a {durability.mode} cluster of {durability.nodes} "
                      f"node{'s' if durability.nodes > 1 else ''}")
            self.cluster = Cluster(mode=durability.mode, nodes=durability.nodes,
                                   **SETTINGS[durability.mode])
        self._start_run(durability)
        return result

    def _start_run(self, durability: Durability) -> None:
        self.run = LiveRun(self.cluster, durability, clients=self.clients, rate=self.rate,
                           seed=self.seed, max_seconds=self.max_seconds).start()
        self._say(f"{durability.label}: the workload runs")
        self._tell("run", {"durability": durability.label, "at": round(self.seconds(), 2)})

    def _restart_run(self) -> dict | None:
        if self.run is None:
            raise RuntimeError("no durability chosen yet: call use(mode) first")
        durability = self.run.durability
        result = self._finish()
        self._start_run(durability)
        return result

    def _fault(self, name: str) -> str:
        if self.run is None or not self.run.running:
            raise RuntimeError("no run in progress: choose a durability first")
        said = self.run.fault(name)
        self._say(said)
        self._tell("fault", {"what": name, "said": said, "at": round(self.seconds(), 2)})
        return said

    def _finish(self) -> dict | None:
        run = self.run
        if run is None or run.result is not None:
            return run.result if run is not None else None
        self._say(f"{run.durability.label}: undoing the faults, reading every key back")
        try:
            result = {**run.finish(), "at": round(self.seconds(), 2)}
        except Exception as err:       # the cluster did not come back: say so, go on
            run.result = result = {"durability": run.durability.label,
                                   "mode": run.durability.mode, "at": round(self.seconds(), 2),
                                   "error": f"{type(err).__name__}: {err}"}
            self.results.append(result)
            self._say(f"{run.durability.label}: no verdict, {result['error']}")
            self._tell("result", result)
            return result
        self.results.append(result)
        self._say(f"{run.durability.label}: {verdict_line(result)}")
        self._tell("stats", {**run.stats(), **run.gate(), "at": round(self.seconds(), 2)})
        self._tell("result", result)
        return result

    def _close(self) -> None:
        try:
            self._finish()
        finally:
            if self.cluster is not None:
                self.cluster.close()
                self.cluster = None
            self.closed = True
            self._say("switchboard closed")


def verdict_line(result: dict) -> str:
    """The final verdict of one run, in one sentence."""
    if result.get("error"):
        return f"no verdict: {result['error']}"
    lost, dirty, acked = (result["lost_acknowledged_writes"], result["dirty_reads"],
                          result["acked_writes"])
    if lost or dirty:
        return (f"NOT SAFE: {lost} of {acked} acknowledged writes lost, {dirty} dirty reads")
    return f"safe: none of {acked} acknowledged writes lost, no dirty read"
