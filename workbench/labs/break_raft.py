"""Lab 6, *Break Raft on purpose*: a teaching lever, the schedule that exposes it, and
the checker that names the anomaly.

The check runs the learner's schedule twice on fresh three-node ``raft`` shards, with
the same seed: once with the lever on, once with it off. Four clients run the register
workload on twelve keys, and one more reader is bound to each node (so reads of a node
that only believes it leads are seen). Passed when the checkers name an anomaly with
the lever and find nothing without it: the lever, and nothing else, broke the promise.
"""

from __future__ import annotations

from tqdm.auto import tqdm

from ..faults.schedule import PRESETS, preset
from ..history import shootout
from . import verdicts
from .result import LabResult, not_yet
from .runs import anomalies, as_schedule, run_schedule

CHECK = "break-raft"
LEVERS = ("raft_bug_read_before_noop", "raft_bug_definite_timeout")
NODES, DURATION = 3, 6.0
# settings a learner may add: timing and reads; the lever is given on its own
SETTINGS = ("election_timeout_ms", "heartbeat_ms", "durability_timeout_ms", "raft_read_mode")


def _settings(settings) -> dict:
    settings = {str(k).replace("-", "_"): v for k, v in (settings or {}).items()}
    refused = [k for k in settings if k not in SETTINGS]
    if refused:
        raise ValueError(f"my_settings may set {', '.join(SETTINGS)}; not "
                         f"{', '.join(refused)}")
    return settings


def check_break_raft(lever, schedule, settings=None, *, seed: int = 7,
                     progress: bool = True) -> LabResult:
    """Run ``schedule`` (a preset's name, a Schedule or a list of Fault steps) on raft
    with ``lever`` on and off; passed when the checkers name an anomaly only with it."""
    if lever is None or schedule is None:
        return not_yet(CHECK, "no answer yet: set my_lever to one of "
                              f"{', '.join(map(repr, LEVERS))} and my_schedule to the "
                              "schedule that should expose it")
    lever = str(lever).replace("-", "_")
    if lever not in LEVERS:
        return not_yet(CHECK, f"my_lever is one of {', '.join(map(repr, LEVERS))}, "
                              f"not {lever!r}")
    try:
        settings = _settings(settings)
        shootout.check_configs({**settings, lever: "yes"})
        if isinstance(schedule, str):
            if schedule not in PRESETS:
                raise ValueError(f"no preset {schedule!r}; presets: {', '.join(PRESETS)}")
            schedule = preset(schedule, NODES, DURATION)
        else:
            schedule = as_schedule(schedule)
    except ValueError as err:
        return not_yet(CHECK, f"the answer cannot run: {err}")
    runs = {}
    for value in tqdm(("yes", "no"), desc=f"{lever}", unit="run", disable=not progress):
        runs[value] = run_schedule("raft", schedule, nodes=NODES, workload="register",
                                   keys=12, node_readers=1, seed=seed, progress=False,
                                   configs={**settings, lever: value},
                                   label=f"raft, {lever}={value}")
    with_lever = anomalies(runs["yes"])
    example = next((v.anomalies[0]["message"] for name, v in runs["yes"]["verdicts"].items()
                    if name != "linearizable" and v.anomalies), None)
    result = verdicts.break_raft(lever, with_lever, anomalies(runs["no"]), example)
    return LabResult(result.check, result.passed, result.reason,
                     {**result.evidence, "schedule": schedule.describe(),
                      "settings": settings}, runs=(runs["yes"], runs["no"]))
