"""Lab 3, *Read your writes*: catch a dirty read in ``async``; show that ``aof`` holds it.

The learner writes an experiment: a function of one :class:`Session`, which gives two
clients of one node (a writer and a reader) and the node's power switch. The check runs
the same experiment twice, on a fresh ``async`` node (``appendfsync everysec``) and on a
fresh ``aof`` node, records every operation in a history, reads every key back once the
node is up again, and asks the dirty-read checker about each run.
"""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor, wait

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from tqdm.auto import tqdm

from ..cluster import Cluster
from ..history import checkers, shootout
from ..history.model import FINAL_READ, READ, WRITE
from ..history.workloads import Recorder, classify
from . import verdicts
from .result import LabResult, not_yet

CHECK = "read-your-writes"
MODES = ("async", "aof")
READ_TIMEOUT = 1.0          # a reader gives up after this long: its read's outcome is unknown


class Session:
    """One node and two clients of it, every operation recorded in a history.

    ``write(key)`` sends ``SET`` from the writer's connection and returns once the node
    has *executed* it -- its reply may still be held, and is recorded when it arrives.
    ``read(key)`` sends ``GET`` from the reader's connection (another client) and returns
    what it saw, or ``None`` if no reply came within a second. ``power_cut()`` kills the
    node the hard way (what was not fsynced is gone), ``crash()`` kills only the process,
    ``restart()`` brings it back from its files.
    """

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.node = cluster.nodes[0]
        self.mode = cluster.mode
        self.recorder = Recorder()
        self.log: list[tuple[float, str]] = []           # (seconds since the start, fault)
        self.keys: list[str] = []
        self._values = itertools.count(1)
        self._writer_process = self.recorder.new_process()
        self._reader_process = self.recorder.new_process()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="lab-writer")
        self._pending = []
        self._writer = self._client()
        self._reader = self._client(socket_timeout=READ_TIMEOUT)
        self.started = time.monotonic()

    def _client(self, socket_timeout: float = 5.0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.node.port, protocol=2,
                           decode_responses=True, socket_timeout=socket_timeout,
                           socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0))

    def _executed_offset(self) -> int:
        return self.cluster.runtime.call(
            lambda: self.node.server.repl.offset if self.node.server is not None else -1)

    # -- what the learner calls ----------------------------------------------------------
    def write(self, key: str) -> str:
        """``SET key <a new value>`` from the writer; returns the value once the node ran it."""
        key = str(key)
        if key not in self.keys:
            self.keys.append(key)
        value = f"{key}=v{next(self._values)}"
        before = self._executed_offset()
        process = self._writer_process
        self.recorder.invoke(process, WRITE, key, value, node=self.node.name)
        future = self._pool.submit(self._send_write, process, key, value)
        self._pending.append(future)
        deadline = time.monotonic() + 2.0
        while not future.done() and self._executed_offset() <= before:
            if time.monotonic() > deadline:
                break           # the node is down or stuck: the write's reply will say
            time.sleep(0.001)
        return value

    def read(self, key: str):
        """``GET key`` from the reader: what it saw, or None (nothing, or no reply in time)."""
        key = str(key)
        process = self._reader_process
        self.recorder.invoke(process, READ, key, node=self.node.name)
        try:
            value = self._reader.get(key)
        except redis.RedisError as err:
            outcome = classify(err)
            self.recorder.complete(process, outcome, error=str(err), node=self.node.name)
            if outcome == "info":
                self._reader_process = self.recorder.new_process()
            return None
        self.recorder.complete(process, "ok", value, node=self.node.name)
        return value

    def power_cut(self) -> None:
        """Cut the node's power: every byte not yet fsynced is gone."""
        self._fault("power-kill", lambda: self.node.kill(power_loss=True))

    def crash(self) -> None:
        """Kill the node's process: memory is gone, written files stay."""
        self._fault("kill", self.node.kill)

    def restart(self) -> None:
        """Start the node again from what its files kept."""
        self._fault("restart", self.node.restart)

    # -- the check's side ------------------------------------------------------------------
    def _send_write(self, process: int, key: str, value: str) -> None:
        try:
            self._writer.set(key, value)
        except redis.RedisError as err:
            outcome = classify(err)
            self.recorder.complete(process, outcome, error=str(err), node=self.node.name)
            if outcome == "info":
                self._writer_process = self.recorder.new_process()
            return
        self.recorder.complete(process, "ok", value, node=self.node.name)

    def _fault(self, what: str, action) -> None:
        """Do it, and log it in the nemesis's words (the report shades its window)."""
        action()
        self.log.append((time.monotonic() - self.started, f"{what} {self.node.name}"))

    def finish(self, timeout: float = 10.0) -> dict:
        """Let every write's reply arrive, bring the node back, read every key back."""
        wait(self._pending, timeout=timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if not self.node.alive:
            self.restart()
        self.cluster.primary(timeout=timeout)
        reader = self._client()
        final, process = {}, self.recorder.new_process()
        for key in self.keys:
            self.recorder.invoke(process, FINAL_READ, key, node=self.node.name)
            value = reader.get(key)
            self.recorder.complete(process, "ok", value, node=self.node.name)
            final[key] = value
        self.log.append((time.monotonic() - self.started, "heal all, restart all"))
        for client in (reader, self._writer, self._reader):
            client.close()
        return final


def run_experiment(mode: str, experiment) -> dict:
    """``experiment(session)`` on a fresh one-node cluster of ``mode``; a result dict in
    the shootout's shape (history, verdicts, fault log) for the verdict and the pictures."""
    with Cluster(mode=mode, nodes=1) as cluster:
        session = Session(cluster)
        try:
            experiment(session)
        finally:
            final = session.finish()
    history = session.recorder.history
    verdicts_ = checkers.summary(history, final)
    span = max(history.end_time() - history.start_time(), 1e-3) if len(history) else 1e-3
    return {**shootout.measure(history, verdicts_, span), "mode": mode, "nodes": 1,
            "schedule": "your experiment", "workload": "register", "seed": None, "config": {},
            "history": history, "verdicts": verdicts_, "fault_log": session.log}


def check_read_your_writes(experiment, *, progress: bool = True) -> LabResult:
    """Run ``experiment(session)`` in ``async`` and in ``aof``; passed when the checker
    finds a dirty read in ``async`` and none in ``aof``."""
    if experiment is None:
        return not_yet(CHECK, "no experiment yet: write a function of one session (write, "
                              "read, power_cut, crash, restart) and set my_experiment to it")
    if not callable(experiment):
        return not_yet(CHECK, f"my_experiment must be a function of one session, not "
                              f"{type(experiment).__name__}")
    runs = {}
    for mode in tqdm(MODES, desc="your experiment", unit="mode", disable=not progress):
        runs[mode] = run_experiment(mode, experiment)
    facts = {mode: verdicts.read_facts(run) for mode, run in runs.items()}
    result = verdicts.read_your_writes(facts["async"], facts["aof"])
    return LabResult(result.check, result.passed, result.reason, result.evidence,
                     runs=tuple(runs.values()))
