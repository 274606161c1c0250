"""The register model of the linearizability checker: compare-and-set, operations it refuses,
and the pre-check that refutes impossible reads before the search (pure: no sockets)."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import pytest

from workbench.history import (History, linearizable, lost_writes, simulated_register_history,
                               stale_reads, summary)
from workbench.history.model import CAS, FUNCTIONS


def history(*ops) -> History:
    """Build a history from (start, end, f, value, outcome) rows, one process each.

    ``value`` is what a write writes, ``(expected, new)`` for a cas, what a read returned.
    """
    events = []
    for p, (start, end, f, value, outcome) in enumerate(ops):
        events.append((start, 0, p, "invoke", f, None if f == "read" else value))
        if end is not None:
            events.append((end, 1, p, outcome, f, value))
    h = History()
    for t, _, p, what, f, value in sorted(events, key=lambda e: e[:2]):
        if what == "invoke":
            h.invoke(p, f, "r", value, time=t)
        elif what == "ok":
            h.ok(p, value if f == "read" else None, time=t)
        else:
            h.complete(p, what, time=t, error="the register holds something else")
    return h


# -- compare-and-set ------------------------------------------------------------------------

def test_a_successful_cas_from_another_value_is_not_linearizable():
    """write 1 -> cas(5->2) ok -> read 1 was judged valid: the search dropped every
    operation that was neither a read nor a write, so the cas was never checked."""
    h = history((0, 1, "write", "1", "ok"), (2, 3, "cas", ("5", "2"), "ok"),
                (4, 5, "read", "1", "ok"))
    v = linearizable(h)
    assert v.valid is False and v.count == 1


def test_a_successful_cas_changes_the_register():
    """write 1 -> cas(1->2) ok -> read 2 was judged invalid: the ignored cas could not
    explain the read of 2. It is linearizable."""
    h = history((0, 1, "write", "1", "ok"), (2, 3, "cas", ("1", "2"), "ok"),
                (4, 5, "read", "2", "ok"))
    assert linearizable(h).valid is True
    assert all(v.valid is not False for v in summary(h, {"r": "2"}).values())


def test_a_failed_cas_did_not_happen_and_an_info_cas_may_have():
    failed = history((0, 1, "write", "1", "ok"), (2, 3, "cas", ("1", "2"), "fail"),
                     (4, 5, "read", "2", "ok"))
    assert linearizable(failed).valid is False            # it failed, yet its value was read
    for seen in ("1", "2"):                                # info: either outcome is possible
        h = history((0, 1, "write", "1", "ok"), (2, 3, "cas", ("1", "2"), "info"),
                    (4, 5, "read", seen, "ok"))
        assert linearizable(h).valid is True
    late = history((0, 1, "write", "1", "ok"), (2, 3, "cas", ("1", "2"), "info"),
                   (4, 5, "read", "1", "ok"), (6, 7, "read", "2", "ok"))
    assert linearizable(late).valid is True                # it took effect after its timeout
    chain = history((0, 1, "write", "1", "ok"), (2, 3, "cas", ("1", "2"), "info"),
                    (2, 3, "cas", ("2", "3"), "info"), (4, 5, "read", "3", "ok"))
    assert linearizable(chain).valid is True               # 1 -> 2 -> 3, both after timeouts
    too_late = history((0, 1, "write", "1", "ok"), (2, 3, "cas", ("1", "2"), "info"),
                       (4, 5, "write", "3", "ok"), (6, 7, "read", "2", "ok"))
    assert linearizable(too_late).valid is False           # the register held 3, not 1


def test_concurrent_cas_ops_cannot_both_succeed_from_one_value():
    h = history((0, 1, "write", "1", "ok"), (2, 4, "cas", ("1", "2"), "ok"),
                (2, 4, "cas", ("1", "3"), "ok"))
    assert linearizable(h).valid is False
    chained = history((0, 1, "write", "1", "ok"), (2, 4, "cas", ("1", "2"), "ok"),
                      (2, 4, "cas", ("2", "3"), "ok"), (5, 6, "read", "3", "ok"))
    assert linearizable(chained).valid is True


def test_cas_writes_count_for_the_other_register_checkers():
    h = history((0, 1, "write", "1", "ok"), (2, 3, "cas", ("1", "2"), "ok"),
                (4, 5, "read", "1", "ok"))
    assert stale_reads(h).valid is False                   # 2 replaced 1 before the read
    assert lost_writes(h, {"r": "1"}).valid is False       # the acknowledged cas is gone
    assert lost_writes(h, {"r": "2"}).valid is True


def test_unknown_operations_are_refused_not_skipped():
    """History accepted any ``f`` and the search silently skipped what it did not know."""
    h = History()
    with pytest.raises(ValueError, match="unknown operation f='delete'; accepted: read, "
                                         "write, cas, add, incr, final-read"):
        h.invoke(0, "delete", "r", time=0)
    with pytest.raises(ValueError, match=r"\(expected, new\)"):
        h.invoke(0, CAS, "r", "2", time=0)
    assert len(h) == 0 and set(FUNCTIONS) == {"read", "write", "cas", "add", "incr",
                                              "final-read"}


def brute_force_linearizable(h: History) -> bool:
    """Every order of the ok ops plus any subset of the info updates: the definition."""
    pairs = h.pairs()
    must = [p for p in pairs if p.type == "ok"]
    maybe = [p for p in pairs if p.f != "read" and p.type == "info"]
    for k in range(len(maybe) + 1):
        for extra in itertools.combinations(maybe, k):
            for order in itertools.permutations(must + list(extra)):
                state, good = None, True
                for i, p in enumerate(order):
                    if any(q.end < p.start for q in order[i + 1:]):
                        good = False
                    elif p.f == "write":
                        state = p.value
                    elif p.f == "cas" and p.value[0] == state:
                        state = p.value[1]
                    elif p.f == "cas" or p.value != state:
                        good = False
                    if not good:
                        break
                if good:
                    return True
    return False


def test_search_agrees_with_brute_force_on_tiny_random_register_histories():
    """Reads and writes only, some writes repeating a value (which the search must not
    confuse with each other)."""
    rng = random.Random(2024)
    verdicts = []
    for trial in range(400):
        rows, values = [], ["a", "b", "c"]
        for p in range(rng.randint(2, 6)):
            start = rng.randint(0, 8)
            end = start + rng.randint(0, 4)
            outcome = rng.choice(["ok", "ok", "ok", "info", "fail"])
            if rng.random() < 0.5:
                rows.append((start, end, "write", values[p % 3] if trial % 4 == 0 else f"v{p}",
                             outcome))
            else:
                seen = rng.choice([None] + [f"v{q}" for q in range(6)] + values)
                rows.append((start, end, "read", seen, outcome))
        h = history(*rows)
        expected = brute_force_linearizable(h)
        assert linearizable(h).valid is expected, h.to_json()
        verdicts.append(expected)
    assert 50 < sum(verdicts) < 350                       # both answers were exercised


def test_search_with_cas_agrees_with_brute_force_on_tiny_random_histories():
    rng = random.Random(7)
    verdicts = []
    for trial in range(400):
        rows, written = [], [None]
        for p in range(rng.randint(2, 6)):
            start = rng.randint(0, 8)
            end = start + rng.randint(0, 4)
            outcome = rng.choice(["ok", "ok", "ok", "info", "fail"])
            r = rng.random()
            if r < 0.3:
                rows.append((start, end, "write", f"v{p}", outcome))
                written.append(f"v{p}")
            elif r < 0.6:
                rows.append((start, end, "cas", (rng.choice(written), f"v{p}"), outcome))
                written.append(f"v{p}")
            else:
                rows.append((start, end, "read", rng.choice(written + ["v9"]), outcome))
        h = history(*rows)
        expected = brute_force_linearizable(h)
        assert linearizable(h).valid is expected, h.to_json()
        verdicts.append(expected)
    assert 50 < sum(verdicts) < 350                        # both answers were exercised


@pytest.mark.parametrize("seed", range(8))
def test_generated_cas_histories_are_linearizable_until_a_read_is_corrupted(seed):
    h = simulated_register_history(seed, 400, processes=2 + seed % 5, keys=1 + seed % 2,
                                   p_cas=0.5, p_info=0.1)
    pairs = h.pairs()
    assert {p.type for p in pairs if p.f == "cas"} >= {"ok", "fail"}
    assert linearizable(h).valid is True and stale_reads(h).valid is True
    # one ok read returns the value its key held before the last completed update
    reads = [p for p in pairs if p.f == "read" and p.type == "ok" and p.value is not None]
    read = reads[len(reads) // 2]
    earlier = [p.written for p in pairs if p.key == read.key and p.type == "ok"
               and p.f in ("write", "cas") and p.written != read.value
               and p.end < read.start]
    ops = list(h)
    ops[read.completion.index] = replace(read.completion, value=earlier[0])
    assert linearizable(History(ops)).valid is False


# -- the pre-check --------------------------------------------------------------------------

def test_a_read_no_write_could_have_produced_is_refuted_before_the_search():
    """A read of a value nobody wrote, among 40 concurrent clients, took the search about
    5 s to refute (and timed out as "unknown" at 50): it tried every order first."""
    h = simulated_register_history(1, 2000, processes=40, keys=1)
    reads = [p for p in h.pairs() if p.f == "read" and p.type == "ok"]
    victim = reads[len(reads) // 2]
    ops = list(h)
    ops[victim.completion.index] = replace(victim.completion, value="ghost")
    v = linearizable(History(ops))
    assert v.valid is False
    assert [a["found_by"] for a in v.anomalies] == ["pre-check"]
    assert v.anomalies[0]["stuck"] == victim.invoke.index and "ghost" in v.anomalies[0]["message"]
    assert v.details["steps"] == {"k0": 0}                  # the search never ran


def test_the_pre_check_knows_when_a_write_could_not_have_been_read_yet():
    failed_only = history((0, 1, "write", "a", "fail"), (2, 3, "read", "a", "ok"))
    too_early = history((0, 1, "read", "b", "ok"), (2, 3, "write", "b", "ok"))
    emptied = history((0, 1, "write", "a", "ok"), (2, 3, "read", None, "ok"))
    expects_ghost = history((0, 1, "write", "a", "ok"), (2, 3, "cas", ("zz", "b"), "ok"))
    for h in (failed_only, too_early, emptied, expects_ghost):
        v = linearizable(h)
        assert v.valid is False and v.anomalies[0]["found_by"] == "pre-check", h.to_json()
    concurrent = history((0, 2, "read", "b", "ok"), (1, 3, "write", "b", "info"))
    assert linearizable(concurrent).valid is True
    searched = history((0, 1, "write", "a", "ok"), (2, 3, "write", "b", "ok"),
                       (4, 5, "read", "a", "ok"))
    v = linearizable(searched)
    assert v.valid is False and v.anomalies[0]["found_by"] == "search"
    assert v.details["steps"]["r"] > 0
