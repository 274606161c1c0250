"""Lab 5, *Quorum arithmetic* (``raft``, five voters).

Two checks on the learner's running shard, each a recorded run of four clients on a
register workload (twelve keys) with the checkers' verdict at the end:

* :func:`check_quorum_prediction` -- how many nodes must be cut off before writes stop?
  The run cuts the leader's followers off one at a time, each alone, and counts the
  writes acknowledged in each stretch; the prediction is compared with the first
  stretch in which none was.
* :func:`check_minority_leader` -- the learner's partition must leave the leader in a
  minority; the run shows whether it committed anything there (its commit index before
  the heal against just after the cut) and whether any write it took was acknowledged.
"""

from __future__ import annotations

import math
import time

from tqdm.auto import tqdm

from ..history import checkers
from ..history.model import OK, UPDATES
from ..history.workloads import final_reads, run_clients
from . import verdicts
from .result import LabResult, not_yet
from .runs import anomalies

PREDICTION, MINORITY = "quorum-prediction", "minority-leader"
CUT_EVERY, FIRST_CUT = 0.8, 0.5        # seconds between cuts; the first one
SETTLE = 0.3                           # after a cut: writes in flight have had their answer
GRACE = 0.2                            # a reply committed before a cut may arrive this late


def _voters(cluster) -> int:
    """How many voters the shard has (waiting for a leader to ask)."""
    if cluster.closed:
        raise RuntimeError("the cluster is closed: run the set-up cell again")
    if cluster.mode != "raft":
        raise ValueError(f"this lab needs a raft shard, not mode {cluster.mode!r}")
    leader = cluster.primary(timeout=10)
    return len(cluster.raft_state()[leader.name]["voters"])


def _record(cluster, during, duration: float, progress: bool, what: str):
    """Four clients on twelve fresh register keys with ``during(elapsed)``; the history
    with its final reads, and the checkers' verdicts."""
    with tqdm(total=math.ceil(duration), desc=what, unit="s", leave=False,
              disable=not progress) as seconds:
        def step(elapsed: float) -> None:
            during(elapsed)
            if int(elapsed) > seconds.n:
                seconds.update(min(int(elapsed), seconds.total) - seconds.n)
        recorder = run_clients(cluster, "register", duration=duration, keys=12, seed=7,
                               during=step)
        seconds.update(seconds.total - seconds.n)
    final = final_reads(cluster, recorder, "register", recorder.keys)
    return recorder.history, checkers.summary(recorder.history, final)


def _acknowledged(history, start: float, end: float, node: str | None = None) -> int:
    """Writes acknowledged in [start, end) (monotonic time; :data:`GRACE` after
    ``start`` for replies already on their way), optionally by ``node``."""
    return sum(op.type == OK for op in history.pairs()
               if op.f in UPDATES and start + GRACE <= op.end < end
               and (node is None or op.invoke.node == node))


def check_quorum_prediction(cluster, prediction, *, progress: bool = True) -> LabResult:
    """Cut the followers off one at a time, each alone; passed when writes stopped at
    the count predicted."""
    if prediction is None:
        return not_yet(PREDICTION, "no prediction yet: set my_prediction to how many of "
                                   "the nodes must be cut off before writes stop")
    if isinstance(prediction, bool) or not isinstance(prediction, int):
        return not_yet(PREDICTION, f"my_prediction is a number of nodes, not {prediction!r}")
    voters = _voters(cluster)
    majority = voters // 2 + 1
    leader = cluster.primary().name
    followers = [n for n in cluster.names if n != leader]
    last = min(voters - majority + 1, len(followers))         # one past what it may lose
    cuts: dict[int, float] = {}                               # count -> when (monotonic)
    healed: dict[str, float] = {}

    def cut_one_by_one(elapsed: float) -> None:
        count = len(cuts) + 1
        if count <= last and elapsed >= FIRST_CUT + (count - 1) * CUT_EVERY:
            cluster.partition(*[[name] for name in followers[:count]])
            cuts[count] = time.monotonic()
        elif len(cuts) == last and "heal" not in healed and \
                elapsed >= FIRST_CUT + last * CUT_EVERY + 0.4:
            cluster.heal()
            healed["heal"] = time.monotonic()

    duration = FIRST_CUT + last * CUT_EVERY + 1.2
    try:
        history, found = _record(cluster, cut_one_by_one, duration, progress,
                                 "cutting followers off")
    finally:
        cluster.heal()
    ends = [cuts[c] for c in sorted(cuts)[1:]] + [healed.get("heal", time.monotonic())]
    windows = [(count, _acknowledged(history, cuts[count], end))
               for count, end in zip(sorted(cuts), ends)]
    clean = not anomalies({"verdicts": found})
    return verdicts.quorum_prediction(prediction, windows, voters, clean)


def _groups(cluster, partition, leader: str) -> list[list[str]]:
    """The learner's groups with ``"leader"`` resolved; ValueError for anything else."""
    if not isinstance(partition, (list, tuple)) or not partition \
            or not all(isinstance(g, (list, tuple)) for g in partition):
        raise ValueError("my_partition is a list of groups, each a list of node names "
                         "(or 'leader'), e.g. [['leader', 'n2'], ['n3', 'n4', 'n5']]")
    groups, seen = [], set()
    for group in partition:
        names = [leader if name == "leader" else name for name in group]
        for name in names:
            if name not in cluster.names:
                raise ValueError(f"no node {name!r}; nodes are {', '.join(cluster.names)}")
            if name in seen:
                raise ValueError(f"{name} is in two groups")
            seen.add(name)
        groups.append(names)
    return groups


def check_minority_leader(cluster, partition, *, progress: bool = True) -> LabResult:
    """Apply the learner's partition under load for two seconds; passed when the
    leader, in a minority, committed nothing and acknowledged no write."""
    if partition is None:
        return not_yet(MINORITY, "no partition yet: set my_partition to groups of nodes "
                                 "that leave the leader in a minority")
    voters = _voters(cluster)
    leader = cluster.primary().name
    try:
        groups = _groups(cluster, partition, leader)
    except ValueError as err:
        return not_yet(MINORITY, f"my_partition cannot be applied: {err}")
    named = {n for g in groups for n in g}
    rest = [n for n in cluster.names if n not in named]
    side = next((g for g in groups if leader in g), rest)
    marks: dict = {}

    def commit_index() -> int:
        return cluster.raft_state()[leader].get("commit_index", -1)

    def cut_then_heal(elapsed: float) -> None:
        if "cut" not in marks and elapsed >= 0.3:
            cluster.partition(*groups)
            marks["cut"] = time.monotonic()
        elif "cut" in marks and "commit_cut" not in marks and \
                time.monotonic() >= marks["cut"] + SETTLE:
            marks["commit_cut"] = commit_index()
        elif "commit_cut" in marks and "heal" not in marks and elapsed >= 2.6:
            marks["commit_heal"] = commit_index()
            cluster.heal()
            marks["heal"] = time.monotonic()

    try:
        history, found = _record(cluster, cut_then_heal, 3.2, progress, "your partition")
    finally:
        cluster.heal()
    start, end = marks["cut"] + SETTLE, marks["heal"]
    new_leaders = {op.invoke.node for op in history.pairs()
                   if op.f in UPDATES and op.type == OK and start <= op.end < end
                   and op.invoke.node != leader}
    facts = {"leader": leader, "leader_side": sorted(side), "voters": voters,
             "groups": [sorted(g) for g in groups] + ([sorted(rest)] if rest else []),
             "commit_cut": marks["commit_cut"], "commit_heal": marks["commit_heal"],
             "acknowledged_by_leader": _acknowledged(history, start, end, leader),
             "acknowledged_elsewhere": _acknowledged(history, start, end) -
             _acknowledged(history, start, end, leader),
             "new_leader": ", ".join(sorted(new_leaders)) or None,
             "anomalies": anomalies({"verdicts": found})}
    return verdicts.minority_leader(facts)
