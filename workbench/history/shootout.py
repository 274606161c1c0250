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

``"aof"`` is a single-node mode (see ``Cluster``), so in a shootout it runs on one node
whatever ``nodes`` says, and its result's ``nodes`` field and :func:`notes` say so.
Schedules name roles ("primary", "replica"), so the same schedule applies to every mode.

Everything that can be refused is refused by :func:`validate` before the first cluster
starts; a mode that fails while it runs becomes a result with an ``error`` and the other
modes' results are kept.
"""

from __future__ import annotations

import math

from tqdm.auto import tqdm

from ..cluster import MODE_CONFIGS, SINGLE_NODE_MODES, Cluster, check_raft_timing, check_size
from ..faults.nemesis import Nemesis
from ..faults.schedule import PRESETS, Schedule, generate, preset
from ..server.config import validate_overrides
from . import checkers
from .model import FINAL_READ, INFO, OK, FAIL, UPDATES, History
from .workloads import WORKLOADS, final_reads, run_clients

SCHEDULES = tuple(PRESETS) + ("random",)
REPLICATED_NODES = 3             # the usual size of a replicated mode's cluster

# The comparable numbers of one run, in the order tables and JSON show them.
FIELDS = ("mode", "nodes", "schedule", "workload", "seed", "ok", "fail", "info",
          "lost_acknowledged_writes", "dirty_reads", "aborted_reads", "stale_reads",
          "linearizable", "write_p50_ms", "write_p99_ms", "throughput",
          "longest_unavailability_s")


def nodes_for(mode: str, nodes: int | None = None) -> int:
    """How many nodes ``mode`` runs with: one for a single-node mode, else ``nodes``
    (``None``: the usual three)."""
    if mode in SINGLE_NODE_MODES:
        return 1
    return REPLICATED_NODES if nodes is None else nodes


def check_configs(configs: dict | None) -> dict:
    """Cluster keywords given to every node of every mode, checked; ValueError if not.

    Node settings (``appendfsync="always"``, ``min_replicas_to_write=1``...) and the
    cluster's ``down_after_ms`` are accepted, by the same names as ``Cluster``'s keywords.
    """
    configs = {name.replace("-", "_"): value for name, value in (configs or {}).items()}
    settings = {k: v for k, v in configs.items() if k != "down_after_ms"}
    try:
        validate_overrides(settings)
    except ValueError as err:
        raise ValueError(f"{err}; also: down_after_ms") from None
    if "down_after_ms" in configs:
        try:
            ok = int(configs["down_after_ms"]) >= 100
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"down_after_ms must be an integer of at least 100, "
                             f"not {configs['down_after_ms']!r}")
    return configs


def validate(modes, schedule_name: str, workload: str = "set", *, nodes: int | None = None,
             duration: float = 10.0, clients: int = 4, seed: int = 0,
             configs: dict | None = None) -> None:
    """Raise ValueError, saying what is accepted, for anything :func:`run` would refuse
    later: an unknown mode, schedule or workload, a schedule that cannot run on a mode's
    cluster (``wait-then-failover`` needs 5 nodes), a bad size, duration, client count
    or config. Nothing has run when this raises."""
    modes = list(modes)
    unknown = [m for m in modes if m not in MODE_CONFIGS]
    if unknown or not modes:
        raise ValueError(f"unknown mode(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                         f"accepted: {', '.join(MODE_CONFIGS)}")
    if len(set(modes)) != len(modes):
        raise ValueError(f"a mode is named twice in {', '.join(modes)}")
    if schedule_name not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule_name!r}; accepted: {', '.join(SCHEDULES)}")
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}; accepted: {', '.join(WORKLOADS)}")
    if not (isinstance(duration, (int, float)) and math.isfinite(duration) and duration > 0):
        raise ValueError(f"duration must be a positive number of seconds, not {duration!r}")
    if not isinstance(clients, int) or clients < 1:
        raise ValueError(f"clients must be at least 1, not {clients!r}")
    if nodes is not None and (not isinstance(nodes, int) or not 1 <= nodes <= 9):
        raise ValueError(f"nodes must be an integer from 1 to 9, not {nodes!r}")
    settings = check_configs(configs)
    for mode in modes:
        n = nodes_for(mode, nodes)
        try:
            check_size(mode, n)
            if mode == "raft":
                check_raft_timing(validate_overrides(
                    {k: v for k, v in settings.items() if k != "down_after_ms"}))
            build_schedule(schedule_name, seed, n, duration)
        except ValueError as err:
            hint = (f" ({mode} is a single-node mode: leave it out of the modes for this "
                    "schedule)" if mode in SINGLE_NODE_MODES else "")
            raise ValueError(f"mode {mode!r} runs on {n} node(s): {err}{hint}") from None


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
        nodes: int | None = None, clients: int = 4, progress: bool = True,
        configs: dict | None = None, node_readers: int = 0, keys: int = 3) -> list[dict]:
    """Run the workload under the schedule once per mode; one result dict per mode.
    ``node_readers``: that many more clients per node that only read, each from its own
    node whatever its role (they see what a deposed leader or a follower answers).
    ``keys``: how many keys the clients share (few keys: more contention per key).

    Each dict holds the fields in :data:`FIELDS`, plus ``"config"`` (what every node was
    given on top of its mode), ``"history"`` (the History), ``"verdicts"`` (the checkers'
    verdicts), ``"fault_log"`` (the nemesis's ``(seconds, what)`` log) and
    ``"recording"`` (the cluster's events and the history, for ``viz.Replay``) for
    :mod:`report`. A mode that failed has ``"error"`` instead of a history; the modes
    after it still run. Ctrl-C stops the shootout and returns what finished.
    """
    modes = list(modes)
    validate(modes, schedule_name, workload, nodes=nodes, duration=duration,
             clients=clients, seed=seed, configs=configs)
    configs = check_configs(configs)
    results = []
    for mode in tqdm(modes, desc="shootout", unit="mode", disable=not progress):
        try:
            results.append(run_mode(mode, schedule_name, seed, duration, workload=workload,
                                    nodes=nodes, clients=clients, progress=progress,
                                    configs=configs, node_readers=node_readers, keys=keys))
        except KeyboardInterrupt:
            results.append(failed(mode, schedule_name, seed, workload, nodes, configs,
                                  "interrupted (Ctrl-C)"))
            break
        except Exception as err:        # keep the finished modes; say why this one failed
            results.append(failed(mode, schedule_name, seed, workload, nodes, configs,
                                  f"{type(err).__name__}: {err}"))
    return results


def failed(mode, schedule_name, seed, workload, nodes, configs, error: str) -> dict:
    """The result of a mode that did not finish: its identity and ``error``, no numbers."""
    return {**{f: None for f in FIELDS}, "mode": mode, "nodes": nodes_for(mode, nodes),
            "schedule": schedule_name, "workload": workload, "seed": seed,
            "config": dict(configs), "error": error}


def run_mode(mode: str, schedule_name: str, seed: int, duration: float, *,
             workload: str = "set", nodes: int | None = None, clients: int = 4,
             progress: bool = False, configs: dict | None = None,
             node_readers: int = 0, keys: int = 3) -> dict:
    """One mode's run: cluster up, workload + nemesis, heal, final reads, checkers, close."""
    n = nodes_for(mode, nodes)
    schedule = build_schedule(schedule_name, seed, n, duration)
    configs = check_configs(configs)
    settings = {"down_after_ms": down_after_ms(duration), **configs}
    with Cluster(mode=mode, nodes=n, record=True, **settings) as cluster:
        nemesis = Nemesis(cluster, schedule)
        with tqdm(total=math.ceil(duration), desc=f"{mode} ({schedule.name})", unit="s",
                  leave=False, disable=not progress) as seconds:
            def during(elapsed: float) -> None:
                nemesis.step(elapsed)
                if int(elapsed) > seconds.n:
                    seconds.update(min(int(elapsed), seconds.total) - seconds.n)

            # wait-then-failover is about writes confirmed with WAIT 1: confirm each one
            recorder = run_clients(cluster, workload, duration=duration,
                                   clients=clients, seed=seed, during=during,
                                   wait_replicas=1 if schedule_name == "wait-then-failover" else 0,
                                   node_readers=node_readers, keys=keys)
            # the workload ran its whole duration: the bar ends full, not at its last tick
            seconds.update(seconds.total - seconds.n)
        nemesis.finish()
        final = final_reads(cluster, recorder, workload, recorder.keys)
    cluster.recording.attach_history(recorder.history)   # complete: closing delivered every event
    verdicts = checkers.summary(recorder.history, final)
    return {**measure(recorder.history, verdicts, duration),
            "mode": mode, "nodes": n, "schedule": schedule_name, "workload": workload,
            "seed": seed, "config": dict(configs), "history": recorder.history,
            "verdicts": verdicts, "fault_log": list(nemesis.log),
            "recording": cluster.recording}


def measure(history: History, verdicts: dict, duration: float) -> dict:
    """The comparable numbers of one history and its verdicts (client ops only)."""
    ops = [op for op in history.pairs() if op.f != FINAL_READ]
    outcomes = {t: sum(op.type == t for op in ops) for t in (OK, FAIL, INFO)}
    latencies = sorted((op.end - op.start) * 1000 for op in ops
                       if op.f in UPDATES and op.type == OK)

    def count(name: str) -> int:
        return verdicts[name].count if name in verdicts else 0

    checked = "linearizable" in verdicts
    return {
        **outcomes,
        "lost_acknowledged_writes": count("lost-writes"),
        "dirty_reads": count("dirty-reads"),
        "aborted_reads": count("aborted-reads"),
        "stale_reads": count("stale-reads"),
        "linearizable": verdicts["linearizable"].valid if checked else None,
        "write_p50_ms": percentile(latencies, 50),
        "write_p99_ms": percentile(latencies, 99),
        "throughput": round(outcomes[OK] / duration, 1) if duration > 0 else 0.0,
        "longest_unavailability_s": round(verdicts["unavailability"].details["longest_s"], 3),
    }


def notes(results: list[dict]) -> list[str]:
    """What a reader of the numbers must know that the numbers do not say: modes that
    ran on fewer nodes than the others, a column no checker filled, modes that failed."""
    out = []
    sizes = {r["mode"]: r["nodes"] for r in results}
    for mode in SINGLE_NODE_MODES:
        if mode in sizes and any(n != 1 for n in sizes.values()):
            others = ", ".join(f"{m} on {n}" for m, n in sizes.items() if m != mode)
            out.append(f"{mode} is a single-node mode: it ran on 1 node ({others}); "
                       f"a replicated {mode} is refused, see Cluster")
    finished = [r for r in results if "error" not in r]
    if finished and all(r["linearizable"] is None for r in finished):
        workloads = ", ".join(sorted({r["workload"] for r in finished}))
        out.append(f"linearizable: not checked: it is checked on register keys, and the "
                   f"{workloads} workload has none (try --workload register)")
    given = next((r["config"] for r in results if r.get("config")), None)
    if given:
        out.append("every node of every mode ran with "
                   + ", ".join(f"{k}={v}" for k, v in given.items()))
    out += [f"{r['mode']} FAILED: {r['error']}" for r in results if "error" in r]
    return out


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values, rounded to 0.01; None if empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return round(sorted_values[rank - 1], 2)
