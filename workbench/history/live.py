"""A workload that keeps running while you break things: live numbers, checked as it goes.

The switchboard's engine. A :class:`LiveRun` is one durability setting on one cluster:
paced clients (the shootout's own, from :mod:`workloads`) add unique elements to a few
sets and read them back, recording every operation. The run turns its history into the
numbers a person watches -- acknowledged writes per second, write latency p50/p99, how
long writes have waited -- and, every couple of seconds, into a *provisional* verdict:
it reads every key back from the node serving writes now and runs the checkers on the
history so far against that read. An acknowledged element missing from it is lost *so
far*; a read that saw an element missing from it was dirty *so far*. Provisional,
because a primary cut off from the others may still hold what the new one lacks.
:meth:`LiveRun.finish` undoes the faults, reads every key back from the primary the
cluster settles on, and the checkers give the final verdict, exactly as a shootout does.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from bisect import insort
from collections import deque
from dataclasses import dataclass

from . import checkers
from .model import OK, UPDATES, History
from .shootout import measure, percentile
from .workloads import Client, Recorder, final_reads

WORKLOAD = "set"           # SADD of unique elements, SMEMBERS: lost and dirty are exact
FAULTS = ("cut", "crash", "power-cut", "heal")
LATENCY_WINDOW_S = 3.0     # p50/p99 of the writes acknowledged in the last 3 seconds


@dataclass(frozen=True)
class Durability:
    """What acknowledges a write: a mode, and in ``async`` optionally ``WAIT n`` per write."""

    mode: str
    wait_replicas: int = 0

    def __post_init__(self):
        if self.wait_replicas and self.mode != "async":
            raise ValueError(f"WAIT per write is an async-mode lever, not {self.mode}'s")
        if self.wait_replicas < 0:
            raise ValueError("wait_replicas must be 0 or more")

    @property
    def label(self) -> str:
        return f"async + WAIT {self.wait_replicas}" if self.wait_replicas else self.mode

    @property
    def nodes(self) -> int:
        return 1 if self.mode == "aof" else 3


class PacedClient(Client):
    """A shootout client that leaves ``interval`` seconds between the starts of its
    operations, so a laptop or a 1-CPU Binder keeps breath for the charts."""

    def __init__(self, *args, interval: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.interval = interval

    def _one_operation(self) -> None:
        began = time.monotonic()
        super()._one_operation()
        rest = self.interval - (time.monotonic() - began)
        if rest > 0:
            self.stop.wait(rest)


class LiveRun:
    """Paced clients on ``cluster`` until :meth:`finish` (or ``max_seconds``)."""

    def __init__(self, cluster, durability: Durability, *, clients: int = 3, rate: float = 300,
                 keys: int = 3, seed: int = 0, max_seconds: float = 120, timeout: float = 1.0):
        if cluster.mode != durability.mode:
            raise ValueError(f"a {durability.mode} run needs a {durability.mode} cluster, "
                             f"not {cluster.mode}")
        self.cluster, self.durability = cluster, durability
        self.max_seconds = max_seconds
        self.recorder = Recorder()
        self.keys = [f"{WORKLOAD}:{os.urandom(3).hex()}:{i}" for i in range(keys)]
        self.recorder.keys = self.keys
        self.stop = threading.Event()
        rng, values = random.Random(seed), itertools.count()
        self.clients = [PacedClient(cluster, self.recorder, WORKLOAD, self.keys,
                                    random.Random(rng.random()), self.stop, values,
                                    timeout=timeout, wait_replicas=durability.wait_replicas,
                                    interval=clients / rate)
                        for _ in range(clients)]
        self.fault_log: list[tuple[float, str]] = []
        self.started = self.ended = None
        self.result: dict | None = None
        self._lock = threading.Lock()
        self._scanned = 0                       # history ops already folded into the numbers
        self._invoked: dict[int, float] = {}    # process -> invoke time of its open update
        self._acked: deque = deque()            # (completion time, latency ms), last window
        self._counts = {"ok": 0, "fail": 0, "info": 0}
        self._last_ack: float | None = None
        self._longest_wait = 0.0
        self._provisional = {"lost": 0, "dirty": 0, "checked_ops": 0, "against": None}

    @property
    def history(self) -> History:
        return self.recorder.history

    @property
    def running(self) -> bool:
        return self.started is not None and self.ended is None

    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.ended or time.monotonic()) - self.started

    def start(self) -> "LiveRun":
        self.started = self._last_ack = time.monotonic()
        for client in self.clients:
            client.start()
        return self

    # -- the numbers a person watches ----------------------------------------------------
    def _fold_new_ops(self, now: float) -> None:
        ops = self.history
        end = len(ops)
        for i in range(self._scanned, end):
            op = ops[i]
            if op.f not in UPDATES:
                continue
            if op.type == "invoke":
                self._invoked[op.process] = op.time
                continue
            began = self._invoked.pop(op.process, op.time)
            self._counts[op.type] += 1
            if op.type == OK:
                self._acked.append((op.time, (op.time - began) * 1000))
                if self._last_ack is not None:
                    self._longest_wait = max(self._longest_wait, op.time - self._last_ack)
                self._last_ack = op.time
        self._scanned = end
        while self._acked and self._acked[0][0] < now - LATENCY_WINDOW_S:
            self._acked.popleft()

    def stats(self) -> dict:
        """Plain data, cheap enough to ask for every half second."""
        with self._lock:
            now = self.ended or time.monotonic()
            self._fold_new_ops(now)
            latencies: list[float] = []
            for _, ms in self._acked:
                insort(latencies, ms)
            waiting = now - self._last_ack if self._last_ack is not None else 0.0
            return {
                "durability": self.durability.label, "elapsed_s": round(self.elapsed(), 2),
                "acked_writes": self._counts["ok"], "failed_writes": self._counts["fail"],
                "unknown_writes": self._counts["info"],
                "writes_per_s": sum(1 for t, _ in self._acked if t >= now - 1.0),
                "write_p50_ms": percentile(latencies, 50),
                "write_p99_ms": percentile(latencies, 99),
                "waiting_s": round(waiting, 2),
                "longest_wait_s": round(max(self._longest_wait, waiting), 2),
                **{f"{k}_so_far": v for k, v in self._provisional.items()
                   if k in ("lost", "dirty")},
                "checked_ops": self._provisional["checked_ops"],
                "checked_against": self._provisional["against"],
                "running": self.running,
            }

    def gate(self) -> dict:
        """Held replies and uncommitted keys at the node serving writes now."""
        primary = self.cluster.current_primary()
        if primary is None or not primary.alive:
            return {"primary": None, "held_replies": 0, "uncommitted_keys": 0, "gated": False}
        state = primary.gate_snapshot()
        if not state.get("alive"):
            return {"primary": primary.name, "held_replies": 0, "uncommitted_keys": 0,
                    "gated": False}
        return {"primary": primary.name, "gated": state["gated"],
                "held_replies": sum(c["replies"] for c in state["held_replies"]),
                "uncommitted_keys": state["uncommitted_keys"]}

    def check(self, timeout: float = 1.0) -> dict:
        """The provisional verdict: the checkers on the history so far, against a read of
        every key from the node serving writes now. Returns the counts; on no primary
        (an election, a failover) the previous counts stand."""
        ops = self.history
        checked = len(ops)
        primary = self.cluster.current_primary()
        if primary is None:
            return dict(self._provisional)
        try:
            with self.cluster.client(primary, socket_timeout=timeout,
                                     socket_connect_timeout=timeout) as conn:
                now = {key: frozenset(conn.smembers(key)) for key in self.keys}
        except Exception:        # the node died or was cut off mid-read: try next round
            return dict(self._provisional)
        so_far = History(list(ops[:checked]))
        lost = checkers.lost_writes(so_far, now)
        dirty = checkers.dirty_reads(so_far, now)
        with self._lock:
            self._provisional = {"lost": lost.count, "dirty": dirty.count,
                                 "checked_ops": checked, "against": primary.name}
            return dict(self._provisional)

    # -- the fault buttons -----------------------------------------------------------------
    def fault(self, name: str) -> str:
        """Apply one of :data:`FAULTS` to the node serving writes now; say what happened."""
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; accepted: {', '.join(FAULTS)}")
        c = self.cluster
        if name == "heal":
            c.heal()
            dead = [n for n in c.nodes if not n.alive]
            for node in dead:
                node.restart()
            said = "healed the network" + (
                f", restarted {', '.join(n.name for n in dead)}" if dead else "")
        else:
            primary = c.current_primary()
            if primary is None:
                return "no node serves writes right now: nothing to aim at"
            if name == "cut":
                others = [n.name for n in c.nodes if n is not primary]
                if not others:
                    return f"{primary.name} is the only node: there is nobody to cut it off from"
                c.partition([primary.name], others)
                said = f"cut {primary.name} off from {', '.join(others)}"
            else:
                primary.kill(power_loss=name == "power-cut")
                said = (f"power cut on {primary.name}: what it had not fsynced is gone"
                        if name == "power-cut" else f"crashed {primary.name}")
        self.fault_log.append((self.elapsed(), said))
        return said

    # -- the final verdict ----------------------------------------------------------------
    def finish(self, timeout: float = 20.0) -> dict:
        """Stop the clients, undo every fault, read every key back, run the checkers."""
        if self.result is not None:
            return self.result
        self.stop.set()
        for client in self.clients:
            client.join(5)
        self.ended = time.monotonic()
        duration = self.elapsed()
        c = self.cluster
        c.heal()
        for node in c.nodes:
            if not node.alive:
                node.restart()
        c.primary(timeout=timeout)
        final = final_reads(c, self.recorder, WORKLOAD, self.keys, timeout=timeout)
        verdicts = checkers.summary(self.history, final)
        self.result = {**measure(self.history, verdicts, duration),
                       "durability": self.durability.label, "mode": self.durability.mode,
                       "wait_replicas": self.durability.wait_replicas,
                       "acked_writes": verdicts["lost-writes"].details.get("ok", 0),
                       "duration_s": round(duration, 2), "faults": [f for _, f in self.fault_log],
                       "verdicts": verdicts}
        return self.result
