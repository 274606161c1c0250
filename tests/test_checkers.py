"""The history checkers on hand-written and generated histories (pure: no sockets, no sleeps)."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import replace

import pytest

from workbench.history import (History, Op, aborted_reads, dirty_reads, final_state,
                               linearizable, lost_writes, simulated_register_history,
                               stale_reads, summary, unavailability)


def record(*steps) -> History:
    """Build a history from (time, process, what, ...) rows.

    ("inv", f, key, value) invokes; ("ok", value?) / ("fail",) / ("info",) complete.
    """
    h = History()
    for t, p, what, *rest in steps:
        if what == "inv":
            h.invoke(p, *rest, time=t)
        elif what == "ok":
            h.ok(p, *rest, time=t)
        elif what == "fail":
            h.fail(p, time=t, error="NOREPLICAS")
        else:
            h.info(p, time=t, error="timeout")
    return h


def op(start, end, f, key, value, result="ok", process=None):
    """One operation as a pair of rows for ``record``; ``value`` is the read result for reads."""
    p = process if process is not None else op.counter
    op.counter += 1
    rows = [(start, p, "inv", f, key, value if f in ("write", "add") else None)]
    if end is not None:
        rows.append((end, p, result, value) if result == "ok" else (end, p, result))
    return rows


op.counter = 0


def ops(*pairs) -> History:
    return record(*sorted((r for pair in pairs for r in pair), key=lambda r: r[0]))


# -- the model ------------------------------------------------------------------------------

def test_pairs_match_completions_and_unfinished_invokes_count_as_info():
    h = record((0, 1, "inv", "write", "k", "a"), (1, 2, "inv", "read", "k", None),
               (2, 1, "ok"), (3, 2, "ok", "a"), (4, 1, "inv", "write", "k", "b"))
    pairs = h.pairs()
    assert [(p.f, p.type, p.value) for p in pairs] == [("write", "ok", "a"), ("read", "ok", "a"),
                                                        ("write", "info", "b")]
    invoke, completion = pairs[0]
    assert (invoke.index, completion.index) == (0, 2)
    assert pairs[2].end == math.inf and pairs[2].completion is None
    assert h.operations() == pairs and h.outstanding == {1: h[4]}


def test_a_process_has_at_most_one_outstanding_op():
    h = record((0, 1, "inv", "write", "k", "a"))
    with pytest.raises(ValueError):
        h.invoke(1, "write", "k", "b", time=1)
    with pytest.raises(ValueError):
        h.ok(2, time=1)


def test_json_round_trip_keeps_values_and_metadata():
    h = History()
    h.invoke(0, "add", "s", 3, time=0.5, node="n1")
    h.ok(0, time=0.75)
    h.invoke(1, "read", "s", time=1.0)
    h.ok(1, frozenset({3, 4}), time=1.5)
    h.invoke(2, "read", "l", time=2.0)
    h.ok(2, (1, "two"), time=2.5)
    h.invoke(3, "write", "r", "v", time=3.0)
    h.fail(3, time=3.5, error="NOREPLICAS Not enough good replicas")
    back = History.from_json(h.to_json())
    assert back == h
    assert back[3].value == frozenset({3, 4}) and back[5].value == (1, "two")
    assert back[7].error.startswith("NOREPLICAS") and back[0].node == "n1"


# -- lost writes ----------------------------------------------------------------------------

def set_history():
    # ok adds 1, 2; info adds 3 (took effect), 4 (did not); failed add 5; read {1, 2, 3}
    return ops(op(0, 1, "add", "s", 1), op(0, 1, "add", "s", 2), op(0, 2, "add", "s", 3, "info"),
               op(1, 2, "add", "s", 4, "info"), op(2, 3, "add", "s", 5, "fail"),
               op(4, 5, "read", "s", frozenset({1, 2, 3})))


def test_set_lost_write_found_and_info_adds_are_not_lost():
    h = set_history()
    assert lost_writes(h, {"s": frozenset({1, 2, 3})}).valid is True
    v = lost_writes(h, {"s": frozenset({1, 3})})
    assert v.valid is False and v.count == 1
    assert v.anomalies[0]["value"] == 2 and v.anomalies[0]["type"] == "lost-write"
    assert v.details["recovered"] == 1 and v.details["info"] == 2


def test_failed_add_present_in_final_state_is_reported_as_aborted():
    v = lost_writes(set_history(), {"s": frozenset({1, 2, 5})})
    assert v.valid is False and v.count == 0
    assert [a["value"] for a in v.details["aborted"]] == [5]


def test_register_write_lost_only_when_overwritten_from_the_past():
    h = ops(op(0, 1, "write", "r", "a"), op(2, 3, "write", "r", "b"))
    assert lost_writes(h, {"r": "b"}).valid is True
    v = lost_writes(h, {"r": "a"})
    assert v.valid is False and [a["value"] for a in v.anomalies] == ["b"]
    assert lost_writes(h, {}).count == 2                  # the key is gone entirely
    concurrent = ops(op(0, 2, "write", "r", "a"), op(1, 3, "write", "r", "b"))
    assert lost_writes(concurrent, {"r": "a"}).valid is True
    assert lost_writes(concurrent, {"r": "zzz"}).details["unexpected"]


def test_counter_below_acknowledged_increments_is_a_lost_write():
    h = ops(op(0, 1, "incr", "c", 1), op(0, 1, "incr", "c", 1), op(1, 2, "incr", "c", 1, "info"))
    assert lost_writes(h, {"c": 2}).valid is True and lost_writes(h, {"c": 3}).valid is True
    assert lost_writes(h, {"c": 1}).count == 1
    assert lost_writes(h, {"c": 4}).valid is False


def test_final_state_from_final_reads_and_unknown_without_one():
    h = set_history()
    assert lost_writes(h).valid is None
    h.invoke(99, "final-read", "s", time=9)
    h.ok(99, frozenset({1}), time=10)
    assert final_state(h) == {"s": frozenset({1})}
    assert lost_writes(h).count == 1


# -- reads ----------------------------------------------------------------------------------

def test_aborted_read_of_a_failed_write():
    h = ops(op(0, 1, "write", "r", "a", "fail"), op(2, 3, "read", "r", "a"),
            op(0, 1, "add", "s", 7, "fail"), op(2, 3, "read", "s", frozenset({7})))
    v = aborted_reads(h)
    assert v.valid is False and {a["key"] for a in v.anomalies} == {"r", "s"}
    assert dirty_reads(h).count == 2


def test_dirty_read_of_an_unacknowledged_element_that_vanished():
    h = ops(op(0, 3, "add", "s", 1, "info"), op(1, 2, "read", "s", frozenset({1})),
            op(0, 1, "add", "s", 2))
    v = dirty_reads(h, {"s": frozenset({2})})
    assert v.valid is False and v.anomalies[0]["value"] == 1
    assert dirty_reads(h, {"s": frozenset({1, 2})}).valid is True   # it was recovered


def test_dirty_read_of_a_value_never_written():
    h = ops(op(0, 1, "write", "r", "a"), op(2, 3, "read", "r", "ghost"))
    assert dirty_reads(h).count == 1 and aborted_reads(h).valid is True


def test_stale_read_after_the_overwrite_completed():
    h = ops(op(0, 1, "write", "r", "a"), op(2, 3, "write", "r", "b"), op(4, 5, "read", "r", "a"))
    v = stale_reads(h)
    assert v.valid is False and v.anomalies[0]["overwritten_by"] == "b"
    fresh = ops(op(0, 1, "write", "r", "a"), op(2, 5, "write", "r", "b"), op(4, 6, "read", "r", "a"))
    assert stale_reads(fresh).valid is True
    empty = ops(op(0, 1, "write", "r", "a"), op(2, 3, "read", "r", None))
    assert stale_reads(empty).count == 1


# -- linearizability ------------------------------------------------------------------------

def test_clean_register_history_is_linearizable():
    h = ops(op(0, 1, "write", "r", "a"), op(2, 3, "read", "r", "a"), op(2, 6, "write", "r", "b"),
            op(4, 5, "read", "r", "b"), op(7, 8, "read", "r", "b"), op(0, 1, "read", "q", None))
    v = linearizable(h)
    assert v.valid is True and v.details["keys"] == 2
    assert all(x.valid is not False for x in summary(h, {"r": "b"}).values())


def test_read_of_an_overwritten_value_is_not_linearizable():
    h = ops(op(0, 1, "write", "r", "a"), op(2, 3, "write", "r", "b"), op(4, 5, "read", "r", "a"),
            op(0, 1, "write", "other", "x"))
    v = linearizable(h)
    assert v.valid is False and v.count == 1
    a = v.anomalies[0]
    assert a["key"] == "r" and h[a["stuck"]].f == "read" and len(a["ops"]) <= 10


def test_info_write_may_have_taken_effect():
    # the read of "b" is explained only if the info write took effect (after its timeout)
    h = ops(op(0, 1, "write", "r", "a"), op(2, 3, "write", "r", "b", "info"),
            op(5, 6, "read", "r", "b"), op(7, 8, "read", "r", "b"))
    assert linearizable(h).valid is True
    never = ops(op(0, 1, "write", "r", "a"), op(2, 3, "write", "r", "b", "info"),
                op(5, 6, "read", "r", "a"))
    assert linearizable(never).valid is True
    unfinished = ops(op(0, None, "write", "r", "a"), op(5, 6, "read", "r", "a"))
    assert linearizable(unfinished).valid is True


def test_info_write_cannot_take_effect_twice():
    h = ops(op(0, 1, "write", "r", "b", "info"), op(2, 3, "read", "r", "b"),
            op(4, 5, "write", "r", "c"), op(6, 7, "read", "r", "b"))
    assert linearizable(h).valid is False


def test_failed_writes_and_unfinished_reads_are_ignored_but_reads_of_failures_are_not():
    h = ops(op(0, 1, "write", "r", "a"), op(2, 3, "write", "r", "b", "fail"),
            op(4, 5, "read", "r", None, "info"), op(6, 7, "read", "r", "a"))
    assert linearizable(h).valid is True
    aborted = ops(op(0, 1, "write", "r", "a"), op(2, 3, "write", "r", "b", "fail"),
                  op(4, 5, "read", "r", "b"))
    assert linearizable(aborted).valid is False


def test_exhausted_time_budget_is_unknown_not_valid():
    h = simulated_register_history(1, 200)
    v = linearizable(h, time_limit_s=0)
    assert v.valid is None and v.details["unknown_keys"]


@pytest.mark.parametrize("seed", range(12))
def test_generated_histories_are_linearizable_until_a_read_is_corrupted(seed):
    h = simulated_register_history(seed, 400, processes=2 + seed % 6, keys=1 + seed % 3,
                                   p_info=0.1, p_fail=0.1)
    assert linearizable(h).valid is True
    assert stale_reads(h).valid is True and dirty_reads(h).valid is True
    assert aborted_reads(h).valid is True
    bad = stale_corruption(h, random.Random(seed))
    assert linearizable(bad).valid is False
    assert stale_reads(bad).valid is False


def stale_corruption(h: History, rng: random.Random) -> History:
    """Make one ok read return a value overwritten (in real time) before the read began."""
    pairs = h.pairs()
    writes = [p for p in pairs if p.f == "write" and p.type == "ok"]
    candidates = []
    for r in (p for p in pairs if p.f == "read" and p.type == "ok"):
        for w1, w2 in itertools.product(writes, writes):
            if w1.key == w2.key == r.key and w1.end < w2.start and w2.end < r.start:
                candidates.append((r, w1.value))
                break
    read, value = rng.choice(candidates)
    ops_ = list(h)
    ops_[read.completion.index] = replace(read.completion, value=value)
    return History(ops_)


# -- the false-negative guard and the summary -----------------------------------------------

def simulated_set_history(seed: int, n: int = 300) -> tuple[History, frozenset]:
    """Concurrent adds with random outcomes, and the set a correct store would end with."""
    rng = random.Random(seed)
    h, present, t = History(), set(), 0.0
    for e in range(n):
        t += rng.random()
        h.invoke(e, "add", "s", e, time=t)
        outcome = rng.choice(["ok"] * 8 + ["fail", "info"])
        if outcome == "ok" or outcome == "info" and rng.random() < 0.5:
            present.add(e)
        if rng.random() < 0.3:
            h.invoke(n + e, "read", "s", time=t + 0.1)
            h.ok(n + e, frozenset(present), time=t + 0.2)
        h.complete(e, outcome, time=t + 0.3)
    return h, frozenset(present)


def test_injected_lost_write_is_found_in_a_valid_generated_history():
    h, final = simulated_set_history(7)
    assert all(v.valid is not False for v in summary(h, {"s": final}).values())
    acked = sorted(p.value for p in h.pairs() if p.f == "add" and p.type == "ok")
    victim = acked[len(acked) // 2]
    v = lost_writes(h, {"s": final - {victim}})
    assert v.valid is False and [a["value"] for a in v.anomalies] == [victim]


def test_unavailability_is_the_longest_gap_between_acknowledged_writes():
    h = ops(op(0, 1, "write", "r", "a"), op(2, 9, "write", "r", "b", "info"),
            op(3, 4, "write", "r", "c"), op(10, 12, "write", "r", "d"), op(12, 13, "read", "r", "d"))
    v = unavailability(h)
    assert v.valid is True and (v.details["start"], v.details["end"]) == (4, 12)
    assert v.details["longest_s"] == 8 and v.details["ok_writes"] == 3


def test_summary_runs_every_applicable_checker():
    h, final = simulated_set_history(3, 50)
    assert set(summary(h, {"s": final})) == {"lost-writes", "dirty-reads", "aborted-reads",
                                             "unavailability"}
    reg = simulated_register_history(3, 100)
    names = set(summary(reg, {}))
    assert {"stale-reads", "linearizable"} <= names
    assert isinstance(reg[0], Op)


# -- histories with nothing to find ---------------------------------------------------------

def final_reads_only(workload: str, empty) -> tuple[History, dict]:
    h = History()
    for i in range(3):
        h.invoke(i, "final-read", f"{workload}:{i}", time=i)
        h.ok(i, empty, time=i + 0.5)
    return h, {f"{workload}:{i}": empty for i in range(3)}


@pytest.mark.parametrize("workload,empty", [("set", frozenset()), ("set", ()), ("counter", 0),
                                            ("register", None)])
def test_a_run_without_client_operations_gets_clean_verdicts(workload, empty):
    """`workbench shootout --modes aof --duration 1 --clients 0` reported 3 dirty reads and
    "not linearizable": the history held only the final reads of three empty sets, a key
    with no add was typed as a register, and an empty set judged a register value that no
    write wrote (so also an "unexpected" final value and an impossible read)."""
    h, final = final_reads_only(workload, empty)
    for verdicts in (summary(h, final), summary(h)):
        assert {n: (v.valid, v.count) for n, v in verdicts.items()} == \
            {n: (True, 0) for n in verdicts}
        assert ("linearizable" in verdicts) == (workload == "register")


def test_empty_history_and_reads_of_keys_never_written_are_clean():
    assert {v.valid for v in summary(History(), {}).values()} == {True}
    assert {v.valid for v in summary(History()).values()} <= {True, None}
    h = ops(op(0, 1, "add", "s", 1), op(2, 3, "read", "s", frozenset({1})),
            op(2, 3, "read", "untouched-set", frozenset()),
            op(2, 3, "read", "untouched-counter", 0), op(2, 3, "read", "untouched-reg", None))
    final = {"s": frozenset({1}), "untouched-set": frozenset(), "untouched-counter": 0}
    assert {n: v.valid for n, v in summary(h, final).items()} == \
        {n: True for n in summary(h, final)}


# -- dirty reads of values erased later -----------------------------------------------------

def test_reads_of_acknowledged_values_that_were_later_erased_are_dirty():
    """In 44 shootouts `dirty_reads` was 0, also for `async` under split-brain where the
    cut-off primary's clients read elements it later lost: only *unacknowledged* vanished
    elements counted; an acknowledged one was a lost write and its reads went unseen."""
    s = ops(op(0, 1, "add", "s", 1), op(0, 1, "add", "s", 2), op(2, 3, "read", "s", (1, 2)),
            op(4, 5, "read", "s", (1, 2)))
    v = dirty_reads(s, {"s": frozenset({1})})
    assert v.count == 1 and v.anomalies[0]["value"] == 2 and v.anomalies[0]["reads"] == 2
    assert "acknowledged add" in v.anomalies[0]["message"]
    assert dirty_reads(s, {"s": frozenset({1, 2})}).valid is True

    # register: "b" was written after the final value's write had completed: rolled back
    r = ops(op(0, 1, "write", "r", "a"), op(2, 3, "write", "r", "b"), op(4, 5, "read", "r", "b"))
    v = dirty_reads(r, {"r": "a"})
    assert v.count == 1 and v.anomalies[0]["value"] == "b"
    assert dirty_reads(r, {"r": "b"}).valid is True
    overlapping = ops(op(0, 3, "write", "r", "a"), op(1, 2, "write", "r", "b"),
                      op(2, 3, "read", "r", "b"))
    assert dirty_reads(overlapping, {"r": "a"}).valid is True   # "a" may have come last
    assert dirty_reads(r, {}).count == 1                        # the key is gone

    # counter: a read above the final value saw increments that were erased
    c = ops(op(0, 1, "incr", "c", 1), op(1, 2, "incr", "c", 1), op(2, 3, "incr", "c", 1),
            op(4, 5, "read", "c", 3))
    assert dirty_reads(c, {"c": 1}).count == 1 and dirty_reads(c, {"c": 3}).valid is True
