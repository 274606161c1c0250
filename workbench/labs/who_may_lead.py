"""Lab 4, *Who may lead* (``sync``): predict which replica is promoted when one is
ineligible; then run it.

:func:`leave_one_behind` sets the stage on the learner's cluster: recorded writes, then
one replica (the *laggard*) cut off alone while the writes go on, until the monitors
have recorded its revocation. The laggard still believes it holds its grant: nobody
could tell it otherwise. :func:`check_who_may_lead` then kills the primary and heals the
network at the same moment, waits for the cluster to settle on a new primary, reads
every key back from it and asks the lost-writes checker; the prediction is compared
with the node the run promoted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import redis

from ..cluster import Cluster
from ..history import checkers
from ..history.model import FINAL_READ, OK, UPDATES, WRITE
from ..history.workloads import Recorder, classify
from . import verdicts
from .result import LabResult, not_yet

CHECK = "who-may-lead"


@dataclass
class Stage:
    """The cluster as the learner sees it before predicting."""

    cluster: Cluster
    primary: str
    steady: str                  # still eligible
    laggard: str                 # cut off, revoked, unaware of it
    recorder: Recorder
    keys: list = field(default_factory=list)
    played: bool = False

    def table(self) -> str:
        """Each node as the cluster sees it: role, offset, its own word on its grant,
        whether the primary waits for it and whether the monitors recorded it."""
        c = self.cluster
        eligible = set(c.node(self.primary).gate_snapshot().get("eligible", ()))
        recorded = set((c.monitor_config() or {}).get("eligible", ()))
        lines = [f"{'node':6}{'role':9}{'offset':>8}  {'says eligible':14}{'primary waits':15}"
                 f"{'monitors recorded'}"]
        for node in c.nodes:
            info = c.client(node).info("replication")
            offset = info.get("master_repl_offset", info.get("slave_repl_offset"))
            says = "-" if node.name == self.primary else (
                "yes" if info.get("replica_eligible") == 1 else "no")
            waits = "-" if node.name == self.primary else (
                "yes" if node.name in eligible else "no")
            lines.append(f"{node.name:6}{node.role:9}{offset:>8}  {says:14}{waits:15}"
                         f"{'-' if node.name == self.primary else 'yes' if node.name in recorded else 'no'}")
        return "\n".join(lines)


def _write(stage: Stage, client: redis.Redis, key: str, process: int) -> int:
    """One recorded SET; returns the process id to use next (new after an unknown)."""
    stage.recorder.invoke(process, WRITE, key, key, node=stage.primary)
    try:
        client.set(key, key)
    except redis.RedisError as err:
        outcome = classify(err)
        stage.recorder.complete(process, outcome, error=str(err), node=stage.primary)
        return stage.recorder.new_process() if outcome == "info" else process
    stage.recorder.complete(process, "ok", key, node=stage.primary)
    return process


def leave_one_behind(cluster: Cluster, *, before: int = 20, during: int = 40,
                     timeout: float = 15.0) -> Stage:
    """Recorded writes; cut one replica off alone; more writes until the monitors have
    recorded its revocation. Returns the :class:`Stage`."""
    if cluster.mode != "sync" or len(cluster.nodes) != 3:
        raise ValueError("the stage is a sync cluster of 3 nodes: "
                         "wb.Cluster(mode='sync', nodes=3, ...)")
    def both_eligible() -> bool:
        primary = cluster.current_primary()
        return primary is not None and len(primary.gate_snapshot().get("eligible", ())) == 2
    _until(both_eligible, timeout, "both replicas to be eligible")
    primary = cluster.primary()
    steady, laggard = sorted(n.name for n in cluster.nodes if n is not primary)
    stage = Stage(cluster, primary.name, steady, laggard, Recorder())
    client = cluster.client(primary)
    process = stage.recorder.new_process()
    run = time.strftime("%H%M%S")
    for i in range(before):
        stage.keys.append(key := f"lead:{run}:{i}")
        process = _write(stage, client, key, process)
    cluster.partition([laggard], [primary.name, steady])
    for i in range(before, before + during):
        stage.keys.append(key := f"lead:{run}:{i}")
        process = _write(stage, client, key, process)

    def revoked() -> bool:
        recorded = (cluster.monitor_config() or {}).get("eligible", ())
        return laggard not in primary.gate_snapshot()["eligible"] and laggard not in recorded
    _until(revoked, timeout, f"the monitors to record {laggard}'s revocation")
    return stage


def _until(condition, timeout: float, what: str) -> None:
    """Poll ``condition()`` from this thread; TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def check_who_may_lead(stage: Stage, prediction, *, timeout: float = 15.0) -> LabResult:
    """Kill the primary and heal the network at once; passed when the node the cluster
    settles on is the one predicted, and no acknowledged write is lost."""
    if prediction is None:
        return not_yet(CHECK, "no prediction yet: set my_prediction to the node you expect "
                              "to be promoted (or 'nobody')")
    names = list(stage.cluster.names)
    if prediction not in names + ["nobody"]:
        return not_yet(CHECK, f"my_prediction is one of {', '.join(map(repr, names))} or "
                              f"'nobody', not {prediction!r}")
    if stage.played:
        raise RuntimeError("this stage was played already: run the set-up cell again")
    stage.played = True
    c = stage.cluster
    c.node(stage.primary).kill()
    c.heal()
    try:
        promoted = c.primary(timeout=timeout)
    except TimeoutError:
        promoted = None
    history = stage.recorder.history
    final = {}
    if promoted is not None:
        reader = c.client(promoted)
        process = stage.recorder.new_process()
        for key in stage.keys:
            stage.recorder.invoke(process, FINAL_READ, key, node=promoted.name)
            final[key] = reader.get(key)
            stage.recorder.complete(process, "ok", final[key], node=promoted.name)
        lost = checkers.lost_writes(history, final).count
    else:
        lost = None              # nothing to read back from: the check cannot count
    acknowledged = sum(op.type == OK for op in history.pairs() if op.f in UPDATES)
    return verdicts.who_may_lead(prediction, promoted.name if promoted else None,
                                 stage.laggard, lost, acknowledged)
