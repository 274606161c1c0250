"""The labs' verdicts: facts from a recorded run in, :class:`LabResult` out.

Pure: no clusters, no clocks. The facts come from a history and the checkers' verdicts
on it (``*_facts``), or from what a run observed (who was promoted, which windows
acknowledged writes); a learner's answer is only ever compared with what the run showed,
never with a stored answer.
"""

from __future__ import annotations

from ..history.model import OK, INFO, READ, UPDATES
from .result import LabResult, not_yet, passed

ANOMALY_NAMES = {"lost-writes": "lost acknowledged writes", "dirty-reads": "dirty reads",
                 "aborted-reads": "aborted reads", "stale-reads": "stale reads",
                 "not linearizable": "a history that is not linearizable"}


def _first_message(verdict) -> str | None:
    return verdict.anomalies[0]["message"] if verdict is not None and verdict.anomalies else None


def _updates(history) -> list:
    return [op for op in history.pairs() if op.f in UPDATES]


# -- lab 1: WAIT is not a promise ---------------------------------------------------------

def wait_facts(run: dict) -> dict:
    """What lab 1's verdict needs from a run whose every ``ok`` write WAIT 1 confirmed."""
    updates = _updates(run["history"])
    lost = run["verdicts"]["lost-writes"]
    return {"confirmed": sum(op.type == OK for op in updates),
            "unknown": sum(op.type == INFO for op in updates),
            "lost": lost.count, "example": _first_message(lost),
            "faults": [what for _, what in run["fault_log"]]}


def wait_is_not_a_promise(facts: dict) -> LabResult:
    check = "wait-is-not-a-promise"
    evidence = {k: facts[k] for k in ("confirmed", "unknown", "lost", "example", "faults")}
    if facts["lost"] > 0:
        return passed(check, f"the checker found {facts['lost']} of {facts['confirmed']} "
                             f"WAIT-confirmed writes missing after the failover, e.g. "
                             f"{facts['example']}", **evidence)
    if facts["confirmed"] == 0:
        return not_yet(check, "no write was confirmed by WAIT 1 at all, so none could be "
                              "lost: leave the cluster whole for a while first", **evidence)
    broke = [f for f in facts["faults"] if not f.startswith(("heal", "restart"))]
    if not broke:
        hint = "the schedule broke nothing (did its roles name nodes that exist?)"
    else:
        hint = ("a write is lost only if the replica that confirmed it is not the one "
                "promoted: keep the confirming replica with the primary, and let the "
                "others elect one of their own")
    return not_yet(check, f"the checker found all {facts['confirmed']} WAIT-confirmed "
                          f"writes in the final state ({facts['unknown']} writes ended "
                          f"unknown); {hint}", **evidence)


# -- lab 2: power cut ---------------------------------------------------------------------

def power_facts(run: dict, cut_at: float) -> dict:
    """Acknowledged writes, how many the power cut took, and the write rate before it."""
    history = run["history"]
    t0 = history.start_time()
    updates = _updates(history)
    before = [op for op in updates if op.type == OK and op.end < t0 + cut_at]
    return {"acknowledged": sum(op.type == OK for op in updates),
            "lost": run["verdicts"]["lost-writes"].count,
            "writes_per_s": round(len(before) / cut_at, 1) if cut_at > 0 else 0.0,
            "write_p50_ms": run["write_p50_ms"]}


def power_cut(choice: str, chosen: dict, everysec: dict) -> LabResult:
    check = "power-cut"
    evidence = {"appendfsync": choice, "yours": chosen, "everysec": everysec}
    if chosen["acknowledged"] < 50:
        return not_yet(check, f"only {chosen['acknowledged']} writes were acknowledged "
                              f"with appendfsync {choice}: too few to judge", **evidence)
    if chosen["lost"]:
        return not_yet(check, f"with appendfsync {choice} the power cut took "
                              f"{chosen['lost']} of {chosen['acknowledged']} acknowledged "
                              "writes: they were answered OK before they were fsynced",
                       **evidence)
    if everysec["lost"] == 0:
        return not_yet(check, "inconclusive: this time even everysec lost nothing to the "
                              "power cut, so the cut proved nothing; run the check again",
                       **evidence)
    ratio = chosen["writes_per_s"] / everysec["writes_per_s"] if everysec["writes_per_s"] else 0
    evidence["cost_ratio"] = round(ratio, 2)
    comparison = (f"everysec lost {everysec['lost']} of {everysec['acknowledged']} in the "
                  "same experiment" if choice != "everysec" else "")
    return passed(check, f"appendfsync {choice} kept all {chosen['acknowledged']} "
                         f"acknowledged writes through the power cut ({comparison}); the "
                         f"price on this machine's disk: {chosen['writes_per_s']:.0f} "
                         f"writes/s against {everysec['writes_per_s']:.0f} with everysec "
                         f"({ratio:.2f}x), p50 {chosen['write_p50_ms']} ms against "
                         f"{everysec['write_p50_ms']} ms", **evidence)


# -- lab 3: read your writes --------------------------------------------------------------

def read_facts(run: dict) -> dict:
    """Reads done, dirty reads found, how long the longest answered read waited."""
    history = run["history"]
    reads = [op for op in history.pairs() if op.f == READ]
    answered = [op for op in reads if op.type == OK]
    dirty = run["verdicts"]["dirty-reads"]
    return {"writes": len(_updates(history)), "reads": len(reads),
            "answered_reads": len(answered),
            "unanswered_reads": sum(op.type == INFO for op in reads),
            "longest_read_ms": round(max(((op.end - op.start) * 1000 for op in answered),
                                         default=0.0), 2),
            "dirty": dirty.count, "example": _first_message(dirty),
            "faults": [what for _, what in run["fault_log"]
                       if not what.startswith("heal all")]}


def read_your_writes(in_async: dict, in_aof: dict) -> LabResult:
    check = "read-your-writes"
    evidence = {"async": in_async, "aof": in_aof}
    if in_async["writes"] == 0 or in_async["reads"] == 0:
        return not_yet(check, "your experiment must write a key and read it back: it did "
                              f"{in_async['writes']} writes and {in_async['reads']} reads",
                       **evidence)
    if in_async["dirty"] == 0:
        cuts = [f for f in in_async["faults"] if f.startswith("power-kill")]
        if not cuts:
            hint = ("nothing your reader saw was lost: a crash keeps what was written to the "
                    "file; what does a power cut keep?")
        else:
            hint = ("the node's once-a-second fsync covered the write before the power went: "
                    "cut sooner after the read, or do it a few times over")
        return not_yet(check, f"in async no read saw a value that was later lost; {hint}",
                       **evidence)
    if in_aof["dirty"]:
        return not_yet(check, f"aof showed {in_aof['dirty']} dirty reads too: "
                              f"{in_aof['example']}", **evidence)
    if in_aof["answered_reads"] + in_aof["unanswered_reads"] == 0:
        return not_yet(check, "in aof your experiment made no read, so there was nothing "
                              "to hold", **evidence)
    return passed(check, f"async: {in_async['dirty']} dirty read(s), e.g. "
                         f"{in_async['example']}; aof, same experiment: no dirty read -- "
                         f"its reads waited for the fsync (the longest "
                         f"{in_aof['longest_read_ms']} ms, against "
                         f"{in_async['longest_read_ms']} ms in async)", **evidence)


# -- lab 4: who may lead ------------------------------------------------------------------

def who_may_lead(prediction: str, promoted: str | None, laggard: str, lost: int | None,
                 acknowledged: int) -> LabResult:
    """``promoted``: the node the run settled on (None: nobody in time); ``lost``: the
    lost-writes checker's count on it (None when nobody was promoted to read from)."""
    check = "who-may-lead"
    outcome = promoted or "nobody"
    evidence = {"prediction": prediction, "promoted": outcome, "laggard": laggard,
                "acknowledged": acknowledged, "lost": lost}
    if lost:
        return not_yet(check, f"{outcome} was promoted, and the checker found {lost} of "
                              f"{acknowledged} acknowledged writes lost", **evidence)
    if prediction != outcome:
        why = (f"{laggard} had lost its grant, and the monitors promote only a replica in "
               "the set they recorded" if promoted not in (None, laggard) else "")
        return not_yet(check, f"you predicted {prediction}, but the run promoted {outcome}"
                              + (f": {why}" if why else ""), **evidence)
    if promoted is None:
        return passed(check, f"you predicted nobody, and no node was promoted in time; "
                             f"{laggard} was not either", **evidence)
    return passed(check, f"you predicted {prediction} and the monitors promoted {outcome}, "
                         f"never {laggard} (it still believed it was eligible); the checker "
                         f"found all {acknowledged} acknowledged writes on {outcome}",
                  **evidence)


# -- lab 5: quorum arithmetic -------------------------------------------------------------

def quorum_prediction(prediction: int, windows: list[tuple[int, int]], voters: int,
                      clean: bool) -> LabResult:
    """``windows``: (how many nodes were cut off, writes acknowledged meanwhile)."""
    check = "quorum-prediction"
    stopped = next((cut for cut, acked in windows if acked == 0), None)
    evidence = {"prediction": prediction, "voters": voters, "stopped_at": stopped,
                "acknowledged_by_cut": {str(cut): acked for cut, acked in windows}}
    counts = ", ".join(f"{cut} cut off: {acked}" for cut, acked in windows)
    if not clean:
        return not_yet(check, f"the checker found anomalies in the run ({counts})", **evidence)
    if stopped is None:
        return not_yet(check, f"writes never stopped in the run ({counts} acknowledged)",
                       **evidence)
    if prediction != stopped:
        return not_yet(check, f"you predicted {prediction}, but writes stopped once "
                              f"{stopped} of {voters} were cut off (acknowledged writes: "
                              f"{counts})", **evidence)
    return passed(check, f"you predicted {prediction}: writes went on with "
                         f"{stopped - 1} of {voters} cut off and stopped with {stopped} "
                         f"(acknowledged writes: {counts}); the leader was left with "
                         f"{voters - stopped} of the {voters // 2 + 1} it needs", **evidence)


def minority_leader(facts: dict) -> LabResult:
    """``facts``: leader, leader_side, voters, commit_cut / commit_heal (the old leader's
    commit index after the cut and before the heal), acknowledged_by_leader (after the
    cut), acknowledged_elsewhere, new_leader, anomalies (checker name -> count)."""
    check = "minority-leader"
    majority = facts["voters"] // 2 + 1
    side = facts["leader_side"]
    moved = facts["commit_heal"] - facts["commit_cut"]
    evidence = dict(facts)
    if facts["anomalies"]:
        found = ", ".join(f"{ANOMALY_NAMES.get(k, k)} ({v})" for k, v in facts["anomalies"].items())
        return not_yet(check, f"the checker found {found}", **evidence)
    if len(side) >= majority:
        return not_yet(check, f"{facts['leader']}'s side ({', '.join(side)}) held "
                              f"{len(side)} of {facts['voters']} voters, a majority: its "
                              f"commit index moved by {moved} while cut off and it "
                              f"acknowledged {facts['acknowledged_by_leader']} writes; put "
                              "the leader in a minority", **evidence)
    if moved or facts["acknowledged_by_leader"]:
        return not_yet(check, f"{facts['leader']} committed {moved} entries and "
                              f"acknowledged {facts['acknowledged_by_leader']} writes in "
                              "a minority", **evidence)
    elsewhere = (f"; meanwhile {facts['new_leader']} led the majority and "
                 f"{facts['acknowledged_elsewhere']} writes were acknowledged there"
                 if facts["new_leader"] else "")
    return passed(check, f"{facts['leader']}, cut off with {len(side)} of "
                         f"{facts['voters']} voters ({', '.join(side)}), committed nothing: "
                         f"its commit index stayed at {facts['commit_cut']} and none of the "
                         f"writes it took was acknowledged{elsewhere}; the checker found "
                         "nothing lost", **evidence)


# -- lab 6: break raft on purpose ---------------------------------------------------------

def break_raft(lever: str, with_lever: dict, without: dict, example: str | None) -> LabResult:
    """``with_lever`` / ``without``: checker name -> count of what each run found."""
    check = "break-raft"
    evidence = {"lever": lever, "with_lever": with_lever, "without_lever": without,
                "example": example}

    def named(found: dict) -> str:
        return ", ".join(f"{ANOMALY_NAMES.get(k, k)} ({v})" if k != "not linearizable"
                         else ANOMALY_NAMES[k] for k, v in found.items())

    if not with_lever:
        return not_yet(check, f"with {lever} on, the checker found nothing under this "
                              "schedule: the lever's bug needs a particular fault (and "
                              "timing) to show", **evidence)
    if without:
        return not_yet(check, f"the checker found {named(with_lever)} with the lever, but "
                              f"also {named(without)} without it: that is not the lever's "
                              "doing", **evidence)
    return passed(check, f"with {lever} on, the checker named {named(with_lever)}, e.g. "
                         f"{example}; the same schedule and seed without the lever: "
                         "nothing", **evidence)
