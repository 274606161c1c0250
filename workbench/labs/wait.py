"""Lab 1, *WAIT is not a promise*: a fault schedule that loses a ``WAIT``-confirmed write.

The learner builds a schedule from :mod:`workbench.faults.schedule` steps. The check runs
it against a fresh five-node ``async`` cluster while four clients add unique elements to
sets and confirm every add with ``WAIT 1`` (an add counts as acknowledged only when
``WAIT`` said a replica has it), heals, reads everything back, and asks the lost-writes
checker.
"""

from __future__ import annotations

from . import verdicts
from .result import LabResult, not_yet
from .runs import as_schedule, run_schedule

CHECK = "wait-is-not-a-promise"
NODES = 5


def check_wait_is_not_a_promise(schedule, *, seed: int = 7, progress: bool = True) -> LabResult:
    """Run ``schedule`` on five ``async`` nodes with every write confirmed by ``WAIT 1``;
    passed when the checker finds a confirmed write missing from the final state."""
    if schedule is None:
        return not_yet(CHECK, "no schedule yet: build one from Fault(...) steps and set "
                              "my_schedule to it")
    try:
        schedule = as_schedule(schedule)
    except ValueError as err:
        return not_yet(CHECK, f"my_schedule cannot run: {err}")
    run = run_schedule("async", schedule, nodes=NODES, wait_replicas=1, seed=seed,
                       progress=progress, label="async + WAIT 1")
    result = verdicts.wait_is_not_a_promise(verdicts.wait_facts(run))
    return LabResult(result.check, result.passed, result.reason,
                     {**result.evidence, "schedule": schedule.describe()}, runs=(run,))
