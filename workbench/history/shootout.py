"""The mode shootout: the same workload under the same faults, once per durability mode.

For each mode in turn, :func:`run` starts a fresh cluster, lets real clients run a
workload while the nemesis carries out a fault schedule, heals everything, reads the
final state back and asks the checkers what went wrong. Each mode gets one result dict
with the numbers worth comparing side by side -- acknowledged writes lost, anomalous
reads, write latency, throughput, the longest stretch without an acknowledged write --
so that "what does ``appendfsync always`` buy me, and what does it cost?" has an answer
measured on the same schedule and seed.

    from workbench.history import shootout, report
    results = shootout.run(["async", "aof"], "split-brain", seed=7, duration=10)
    print(report.table(results))

The ``"aof"`` mode is a single node, so it runs with one node whatever ``nodes`` says;
schedules name roles ("primary", "replica"), so the same schedule applies to both.
"""

from __future__ import annotations

import math

from tqdm.auto import tqdm

from ..cluster import MODE_CONFIGS, Cluster
from ..faults.nemesis import Nemesis
from ..faults.schedule import PRESETS, Schedule, generate, preset
from . import checkers
from .model import FINAL_READ, INFO, OK, FAIL, UPDATES, History
from .workloads import WORKLOADS, final_reads, run_clients

SCHEDULES = tuple(PRESETS) + ("random",)
SINGLE_NODE_MODES = ("aof",)

# The comparable numbers of one run, in the order tables and JSON show them.
FIELDS = ("mode", "schedule", "seed", "ok", "fail", "info", "lost_acknowledged_writes",
          "dirty_reads", "aborted_reads", "stale_reads", "linearizable", "write_p50_ms",
          "write_p99_ms", "throughput", "longest_unavailability_s")


def validate(modes, schedule_name: str, workload: str = "set") -> None:
    """Raise ValueError, naming the accepted values, for an unknown mode/schedule/workload."""
    unknown = [m for m in modes if m not in MODE_CONFIGS]
    if unknown or not modes:
        raise ValueError(f"unknown mode(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                         f"accepted: {', '.join(MODE_CONFIGS)}")
    if schedule_name not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule_name!r}; accepted: {', '.join(SCHEDULES)}")
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}; accepted: {', '.join(WORKLOADS)}")


def nodes_for(mode: str, nodes: int) -> int:
    """How many nodes ``mode`` runs with: single-node modes ignore ``nodes``."""
    return 1 if mode in SINGLE_NODE_MODES else nodes


def down_after_ms(duration: float) -> int:
    """How long monitors wait before calling a primary down: a fifteenth of the run (from
    100 ms to the usual 1 s), so that a failover fits inside a fault window of a short run."""
    return int(min(1000, max(100, duration * 1000 / 15)))


def build_schedule(schedule_name: str, seed: int, nodes: int, duration: float) -> Schedule:
    """A preset by name, or for ``"random"`` the schedule generated from ``seed``."""
    if schedule_name == "random":
        return generate(seed, nodes, duration)
    return preset(schedule_name, nodes, duration)


def run(modes, schedule_name: str, seed: int, duration: float, workload: str = "set",
        nodes: int = 3, clients: int = 4, progress: bool = True) -> list[dict]:
    """Run the workload under the schedule once per mode; one result dict per mode.

    Each dict holds the fields in :data:`FIELDS`, plus ``"history"`` (the History) and
    ``"fault_log"`` (the nemesis's ``(seconds, what)`` log) for :mod:`report`.
    """
    modes = list(modes)
    validate(modes, schedule_name, workload)
    results = []
    for mode in tqdm(modes, desc="shootout", unit="mode", disable=not progress):
        results.append(run_mode(mode, schedule_name, seed, duration, workload=workload,
                                nodes=nodes, clients=clients, progress=progress))
    return results


def run_mode(mode: str, schedule_name: str, seed: int, duration: float, *,
             workload: str = "set", nodes: int = 3, clients: int = 4,
             progress: bool = False) -> dict:
    """One mode's run: cluster up, workload + nemesis, heal, final reads, checkers, close."""
    n = nodes_for(mode, nodes)
    schedule = build_schedule(schedule_name, seed, n, duration)
    with Cluster(mode=mode, nodes=n, down_after_ms=down_after_ms(duration)) as cluster:
        nemesis = Nemesis(cluster, schedule)
        with tqdm(total=math.ceil(duration), desc=f"{mode} ({schedule.name})", unit="s",
                  leave=False, disable=not progress) as seconds:
            def during(elapsed: float) -> None:
                nemesis.step(elapsed)
                if int(elapsed) > seconds.n:
                    seconds.update(min(int(elapsed), seconds.total) - seconds.n)

            # wait-then-failover is about writes confirmed with WAIT 1: confirm each one
            recorder = run_clients(cluster, workload, duration=duration, clients=clients,
                                   seed=seed, during=during,
                                   wait_replicas=1 if schedule_name == "wait-then-failover" else 0)
        nemesis.finish()
        final = final_reads(cluster, recorder, workload, recorder.keys)
    verdicts = checkers.summary(recorder.history, final)
    return {**measure(recorder.history, verdicts, duration),
            "mode": mode, "schedule": schedule_name, "seed": seed,
            "history": recorder.history, "fault_log": list(nemesis.log)}


def measure(history: History, verdicts: dict, duration: float) -> dict:
    """The comparable numbers of one history and its verdicts (client ops only)."""
    ops = [op for op in history.pairs() if op.f != FINAL_READ]
    outcomes = {t: sum(op.type == t for op in ops) for t in (OK, FAIL, INFO)}
    latencies = sorted((op.end - op.start) * 1000 for op in ops
                       if op.f in UPDATES and op.type == OK)

    def count(name: str) -> int:
        return verdicts[name].count if name in verdicts else 0

    register = "linearizable" in verdicts
    return {
        **outcomes,
        "lost_acknowledged_writes": count("lost-writes"),
        "dirty_reads": count("dirty-reads"),
        "aborted_reads": count("aborted-reads"),
        "stale_reads": count("stale-reads"),
        "linearizable": verdicts["linearizable"].valid if register else None,
        "write_p50_ms": percentile(latencies, 50),
        "write_p99_ms": percentile(latencies, 99),
        "throughput": round(outcomes[OK] / duration, 1) if duration > 0 else 0.0,
        "longest_unavailability_s": round(verdicts["unavailability"].details["longest_s"], 3),
    }


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values, rounded to 0.01; None if empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return round(sorted_values[rank - 1], 2)
