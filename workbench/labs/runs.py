"""One recorded run of a lab: a fresh cluster, real clients, a fault schedule, the checkers.

:func:`run_schedule` is what one mode of the shootout does, for a :class:`Schedule`
the learner built rather than a preset's name: cluster up, the workload with the
nemesis stepping the schedule, heal, final reads, every checker. Its result dict has
the shootout's fields, so ``history.report`` draws it.
"""

from __future__ import annotations

import math

from tqdm.auto import tqdm

from ..cluster import Cluster
from ..faults.nemesis import Nemesis
from ..faults.schedule import Fault, Schedule
from ..history import checkers, shootout
from ..history.workloads import final_reads, run_clients

MAX_SECONDS = 10.0      # a lab's run stays short: Binder has one CPU


def as_schedule(answer, *, name: str = "yours") -> Schedule:
    """A learner's schedule: a :class:`Schedule`, or a list of :class:`Fault` steps (the
    run lasts until a second after the last step). ValueError says what is wrong."""
    if isinstance(answer, Schedule):
        schedule = answer
    elif isinstance(answer, (list, tuple)) and answer and all(isinstance(f, Fault) for f in answer):
        steps = tuple(sorted(answer, key=lambda f: f.at))
        schedule = Schedule(name, steps, duration=min(MAX_SECONDS, max(3.0, steps[-1].at + 1.5)))
    else:
        raise ValueError(f"a schedule is a Schedule(...) or a list of Fault(...) steps, "
                         f"not {type(answer).__name__}")
    if not schedule.faults:
        raise ValueError("the schedule has no fault in it: the nemesis would do nothing")
    if not 1.0 <= schedule.duration <= MAX_SECONDS:
        raise ValueError(f"keep the run between 1 and {MAX_SECONDS:g} seconds "
                         f"(duration={schedule.duration:g})")
    late = [f for f in schedule.faults if not 0 <= f.at < schedule.duration]
    if late:
        raise ValueError(f"every step must come within the run's {schedule.duration:g} s: "
                         + "; ".join(f.describe().strip() for f in late))
    for fault in schedule.faults:
        for group in fault.groups:
            if isinstance(group, str):
                raise ValueError(f"partition groups are tuples of names or roles, e.g. "
                                 f"groups=(('primary',), ('rest',)), not {group!r}")
    return schedule


def run_schedule(mode: str, schedule: Schedule, *, nodes: int, workload: str = "set",
                 clients: int = 4, keys: int = 3, seed: int = 7, wait_replicas: int = 0,
                 node_readers: int = 0, configs: dict | None = None, progress: bool = True,
                 label: str | None = None) -> dict:
    """One recorded run of ``mode`` under ``schedule``; the shootout's result dict."""
    configs = shootout.check_configs(configs)
    duration = schedule.duration
    settings = {"down_after_ms": shootout.down_after_ms(duration), **configs}
    with Cluster(mode=mode, nodes=nodes, **settings) as cluster:
        nemesis = Nemesis(cluster, schedule)
        with tqdm(total=math.ceil(duration), desc=label or f"{mode} ({schedule.name})",
                  unit="s", leave=False, disable=not progress) as seconds:
            def during(elapsed: float) -> None:
                nemesis.step(elapsed)
                if int(elapsed) > seconds.n:
                    seconds.update(min(int(elapsed), seconds.total) - seconds.n)

            recorder = run_clients(cluster, workload, duration=duration, clients=clients,
                                   seed=seed, during=during, wait_replicas=wait_replicas,
                                   node_readers=node_readers, keys=keys)
            seconds.update(seconds.total - seconds.n)
        nemesis.finish()
        final = final_reads(cluster, recorder, workload, recorder.keys)
    verdicts = checkers.summary(recorder.history, final)
    return {**shootout.measure(recorder.history, verdicts, duration),
            "mode": label or mode, "nodes": nodes, "schedule": schedule.name,
            "workload": workload, "seed": seed, "config": dict(configs),
            "history": recorder.history, "verdicts": verdicts,
            "fault_log": list(nemesis.log)}


def anomalies(result: dict) -> dict[str, int]:
    """What the checkers found in a run, by checker name (only the ones that found some);
    ``"not linearizable"`` when the search refuted the register history."""
    found = {name: v.count for name, v in result["verdicts"].items()
             if name != "unavailability" and v.count}
    if result["verdicts"].get("linearizable") and result["verdicts"]["linearizable"].valid is False:
        found.pop("linearizable", None)
        found["not linearizable"] = 1
    return found
