"""The labs: every lab says *not yet* (with a reason) as shipped and *passed* with its
solution, run headless through ``workbench lab check`` against real nodes; wrong answers
are judged by the run, not by a stored answer; ``workbench lab list``; the exit codes;
and the pure parts -- verdicts, solution files, reading verdicts back from a notebook."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

import workbench as wb
from workbench import cli, labs
from workbench.faults.schedule import Fault, Schedule
from workbench.history import History, checkers
from workbench.labs import runner, verdicts
from workbench.labs.result import MIME_TYPE, LabResult

REPO = Path(__file__).resolve().parent.parent
LABS = REPO / "labs"
SOLUTIONS = LABS / "solutions"
WORKBENCH = str(Path(sys.executable).with_name("workbench"))
LAB_NAMES = ["01-wait-is-not-a-promise", "02-power-cut", "03-read-your-writes",
             "04-who-may-lead", "05-quorum-arithmetic", "06-break-raft"]


def workbench(*args, timeout=240):
    return subprocess.run([WORKBENCH, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def verdict_lines(stdout: str) -> list[str]:
    """``  <check>: passed — ...`` / ``  <check>: not yet — ...`` lines of ``lab check``."""
    return [line.strip() for line in stdout.splitlines()
            if line.startswith("  ") and (": passed — " in line or ": not yet — " in line)]


def check_cells(name: str) -> int:
    nb = nbformat.read(LABS / f"{name}.ipynb", as_version=4)
    return sum("check" in c.metadata.get("tags", ()) for c in nb.cells)


# -- the labs as stored -----------------------------------------------------------------------

@pytest.mark.parametrize("name", LAB_NAMES)
def test_lab_is_stored_clean_with_its_cells_tagged(name):
    """Stored without outputs, with a kernelspec; answer cells hold a placeholder the
    check refuses quickly; a check cell; a teardown cell when the lab starts a cluster;
    and its solution covers every answer cell."""
    nb = nbformat.read(LABS / f"{name}.ipynb", as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    tags = [set(c.metadata.get("tags", ())) for c in code]
    answers = [c for c, t in zip(code, tags) if "answer" in t]
    assert answers and all("= None" in c.source for c in answers)
    assert any("check" in t for t in tags)
    starts_cluster = any("wb.Cluster(" in c.source for c in code)
    assert any("teardown" in t for t in tags) is starts_cluster
    runner.apply_solution(nb, runner.parse_solution(
        (SOLUTIONS / f"{name}.py").read_text(encoding="utf-8")))


def test_lab_list_names_every_lab_with_its_title_and_claim():
    done = workbench("lab", "list", timeout=60)
    assert done.returncode == 0, done.stderr
    for name in LAB_NAMES:
        assert f"labs/{name}.ipynb" in done.stdout
    assert done.stdout.count("    claim: ") == len(LAB_NAMES)
    assert "Lab 1: WAIT is not a promise" in done.stdout
    assert "Lab 6: Break Raft on purpose" in done.stdout
    assert [lab.number for lab in runner.list_labs(LABS)] == [n[:2] for n in LAB_NAMES]


# -- every lab, unsolved and solved, headless ------------------------------------------------

@pytest.mark.notebook
@pytest.mark.parametrize("name", LAB_NAMES)
def test_unsolved_lab_says_not_yet_with_a_reason(name):
    done = workbench("lab", "check", f"labs/{name}.ipynb")
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = verdict_lines(done.stdout)
    assert len(lines) == check_cells(name), done.stdout
    assert all(": not yet — " in line for line in lines), lines
    assert all(len(line.split(" — ", 1)[1]) > 30 for line in lines), lines
    assert done.stdout.rstrip().endswith("not yet")


@pytest.mark.notebook
@pytest.mark.parametrize("name", LAB_NAMES)
def test_solved_lab_passes(name, tmp_path):
    report = tmp_path / "verdicts.json"
    done = workbench("lab", "check", f"labs/{name}.ipynb",
                     "--solution", f"labs/solutions/{name}.py", "--json", str(report))
    assert done.returncode == 0, (done.stdout, done.stderr)
    lines = verdict_lines(done.stdout)
    assert len(lines) == check_cells(name) and all(": passed — " in l for l in lines), lines
    saved = json.loads(report.read_text())
    assert saved["passed"] is True and saved["errors"] == []
    assert [r["verdict"] for r in saved["results"]] == ["passed"] * len(lines)
    assert all(r["evidence"] for r in saved["results"])


# -- wrong answers: the run decides -----------------------------------------------------------

def test_a_schedule_that_loses_nothing_is_judged_by_its_run():
    """The primary cut off alone: its adds are never confirmed by WAIT 1, so the
    checker finds every confirmed add; the verdict says so, with the counts."""
    alone = Schedule("primary alone", (Fault(0.6, "partition", groups=(("primary",), ("rest",))),
                                       Fault(2.1, "heal")), duration=3)
    verdict = labs.check_wait_is_not_a_promise(alone, progress=False)
    assert not verdict.passed
    assert verdict.evidence["lost"] == 0 and verdict.evidence["confirmed"] > 100
    assert f"all {verdict.evidence['confirmed']} WAIT-confirmed writes" in verdict.reason
    assert verdict.runs and verdict.runs[0]["verdicts"]["lost-writes"].valid is True


def test_a_wrong_prediction_is_compared_with_the_node_the_run_promoted():
    with wb.Cluster(mode="sync", nodes=3, down_after_ms=500, durability_timeout_ms=500) as c:
        stage = labs.leave_one_behind(c)
        verdict = labs.check_who_may_lead(stage, stage.laggard)
        promoted = c.primary().name
        with pytest.raises(RuntimeError, match="played already"):
            labs.check_who_may_lead(stage, stage.steady)
    assert not verdict.passed
    assert verdict.evidence["promoted"] == promoted == stage.steady
    assert verdict.evidence["lost"] == 0 and verdict.evidence["acknowledged"] > 20
    assert f"you predicted {stage.laggard}, but the run promoted {promoted}" in verdict.reason


@pytest.mark.parametrize("call, says", [
    (lambda: labs.check_wait_is_not_a_promise(42), "a schedule is a Schedule"),
    (lambda: labs.check_wait_is_not_a_promise(Schedule("x", (), duration=3)), "no fault"),
    (lambda: labs.check_wait_is_not_a_promise(
        Schedule("long", (Fault(0.5, "kill", targets=("primary",)),), duration=60)),
     "between 1 and 10 seconds"),
    (lambda: labs.check_wait_is_not_a_promise([Fault(0.5, "isolate", targets=("primary",)),
                                               Fault(30, "heal")]),
     "every step must come within the run's 10 s"),
    (lambda: labs.check_power_cut("sometimes"), "not 'sometimes'"),
    (lambda: labs.check_read_your_writes("write then read"), "a function of one session"),
    (lambda: labs.check_break_raft("raft_bug_everything", "split-brain"), "my_lever is one of"),
    (lambda: labs.check_break_raft("raft_bug_read_before_noop", "meteor"), "no preset 'meteor'"),
    (lambda: labs.check_break_raft("raft_bug_read_before_noop", "split-brain",
                                   {"appendfsync": "no"}), "my_settings may set"),
])
def test_answers_that_cannot_run_are_refused_at_once_with_the_reason(call, says):
    verdict = call()
    assert not verdict.passed and says in verdict.reason and not verdict.runs


# -- the command line ---------------------------------------------------------------------------

def test_lab_check_exits_2_when_the_lab_cannot_run(tmp_path):
    done = workbench("lab", "check", "labs/99-nothing.ipynb", timeout=60)
    assert done.returncode == 2 and "no such lab notebook" in done.stderr

    wrong_cell = tmp_path / "wrong.py"
    wrong_cell.write_text("# cell: answer-nothing\nx = 1\n")
    done = workbench("lab", "check", "labs/02-power-cut.ipynb", "--solution", str(wrong_cell),
                     timeout=60)
    assert done.returncode == 2 and "answer-nothing" in done.stderr
    assert "Traceback" not in done.stderr

    raises = tmp_path / "raises.py"
    raises.write_text("# cell: answer-appendfsync\nraise RuntimeError('no disk here')\n")
    done = workbench("lab", "check", "labs/02-power-cut.ipynb", "--solution", str(raises))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "cell answer-appendfsync: RuntimeError: no disk here" in done.stderr


def test_workbench_lab_alone_still_opens_jupyterlab(monkeypatch):
    launched = []
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd: launched.append(cmd) or 0)
    assert cli.main(["lab", "--no-browser", "--port", "9"]) == 0
    [cmd] = launched
    assert cmd[1:4] == ["-m", "jupyter", "lab"] and "--no-browser" in cmd and "--port=9" in cmd


# -- the pure parts -----------------------------------------------------------------------------

def test_lab_result_shows_one_line_and_carries_its_verdict_as_data():
    result = LabResult("power-cut", False, "with appendfsync no the cut took 3 writes",
                       {"lost": 3})
    assert str(result) == "not yet — with appendfsync no the cut took 3 writes"
    bundle = result._repr_mimebundle_()
    assert "not yet" in bundle["text/html"] and "wb-lab-not-yet" in bundle["text/html"]
    assert LabResult.from_dict(bundle[MIME_TYPE]) == result
    assert str(LabResult("x", True, "fine")) == "passed — fine"


def test_solution_sections_replace_answer_cells_and_nothing_else():
    nb = new_notebook(cells=[new_code_cell("setup = 1", id="setup"),
                             new_code_cell("a = None", id="answer-a", metadata={"tags": ["answer"]}),
                             new_code_cell("b = None", id="answer-b", metadata={"tags": ["answer"]})])
    sections = runner.parse_solution('"""header"""\n# cell: answer-a\na = 1\n\n# cell: answer-b\nb = 2\n')
    assert sections == {"answer-a": "a = 1", "answer-b": "b = 2"}
    runner.apply_solution(nb, sections)
    assert [c.source for c in nb.cells] == ["setup = 1", "a = 1", "b = 2"]
    with pytest.raises(runner.LabError, match="no answer cell of this lab: setup"):
        runner.apply_solution(nb, {**sections, "setup": "setup = 2"})
    with pytest.raises(runner.LabError, match="no section for the answer cell.*answer-b"):
        runner.apply_solution(nb, {"answer-a": "a = 1"})
    with pytest.raises(runner.LabError, match="has none"):
        runner.parse_solution("a = 1")
    with pytest.raises(runner.LabError, match="two sections"):
        runner.parse_solution("# cell: x\n1\n# cell: x\n2\n")


def test_verdicts_and_errors_are_read_back_from_an_executed_notebook():
    verdict = LabResult("who-may-lead", True, "you predicted n2", {"promoted": "n2"})
    shown = new_output("execute_result", data=verdict._repr_mimebundle_(), execution_count=3)
    decoy = new_output("display_data", data=verdict._repr_mimebundle_())
    nb = new_notebook(cells=[
        new_markdown_cell("# Lab 9: A title\n\n**Claim:** one\nsentence.\n\nMore.", id="intro"),
        new_code_cell("x", id="setup", outputs=[decoy]),                 # not a check cell
        new_code_cell("1/0", id="answer-x", metadata={"tags": ["answer"]},
                      outputs=[new_output("error", ename="ZeroDivisionError",
                                          evalue="division by zero", traceback=[])]),
        new_code_cell("verdict", id="check", metadata={"tags": ["check"]}, outputs=[shown])])
    results, errors = runner.collect(nb)
    assert results == [verdict]
    assert errors == ["cell answer-x: ZeroDivisionError: division by zero"]
    lab = runner.describe(nb, Path("09-a-title.ipynb"))
    assert (lab.title, lab.claim, lab.number) == ("Lab 9: A title", "one sentence.", "09")
    run = runner.LabRun(lab, results, errors)
    assert run.exit_code == 2 and not run.passed
    assert runner.LabRun(lab, results).exit_code == 0
    assert runner.LabRun(lab, [LabResult("c", False, "no")]).exit_code == 1
    assert runner.LabRun(lab).exit_code == 2                # nothing checked is no pass


def history_of_adds(acknowledged: list[str], kept: list[str]) -> dict:
    """A run in the shootout's shape: ok adds of ``acknowledged``, a final read of ``kept``."""
    history = History()
    for i, element in enumerate(acknowledged):
        history.invoke(0, "add", "s", element, time=float(i))
        history.ok(0, element, time=i + 0.5)
    history.invoke(1, "final-read", "s", time=99.0)
    history.ok(1, tuple(sorted(kept)), time=99.5)
    return {"history": history, "verdicts": checkers.summary(history),
            "fault_log": [(1.0, "partition n1 n2 | n3 n4 n5"), (2.0, "heal")]}


def test_lab1_verdict_comes_from_the_lost_writes_checker():
    lost = verdicts.wait_facts(history_of_adds(["e1", "e2", "e3"], ["e1", "e3"]))
    assert (lost["confirmed"], lost["lost"]) == (3, 1) and "'e2'" in lost["example"]
    assert verdicts.wait_is_not_a_promise(lost).passed
    kept = verdicts.wait_facts(history_of_adds(["e1", "e2"], ["e1", "e2"]))
    result = verdicts.wait_is_not_a_promise(kept)
    assert not result.passed and "all 2 WAIT-confirmed writes" in result.reason
    none = verdicts.wait_is_not_a_promise({**kept, "confirmed": 0})
    assert not none.passed and "no write was confirmed" in none.reason


def test_lab2_verdict_needs_no_loss_enough_writes_and_a_cut_that_bit():
    safe = {"acknowledged": 900, "lost": 0, "writes_per_s": 600.0, "write_p50_ms": 2.0}
    fast = {"acknowledged": 2000, "lost": 150, "writes_per_s": 1500.0, "write_p50_ms": 0.5}
    result = verdicts.power_cut("always", safe, fast)
    assert result.passed and "0.40x" in result.reason and result.evidence["cost_ratio"] == 0.4
    assert "took 150 of 2000" in verdicts.power_cut("everysec", fast, fast).reason
    assert "inconclusive" in verdicts.power_cut("always", safe, {**fast, "lost": 0}).reason
    assert "too few" in verdicts.power_cut("always", {**safe, "acknowledged": 3}, fast).reason


def test_lab3_verdict_wants_a_dirty_read_in_async_and_none_in_aof():
    base = {"writes": 3, "reads": 3, "answered_reads": 3, "unanswered_reads": 0,
            "longest_read_ms": 1.0, "dirty": 0, "example": None, "faults": ["kill n1"]}
    dirty = {**base, "dirty": 2, "example": "1 read(s) of 'k' saw 'k=v1'",
             "faults": ["power-kill n1"]}
    held = {**base, "longest_read_ms": 4.2, "faults": ["power-kill n1"]}
    result = verdicts.read_your_writes(dirty, held)
    assert result.passed and "4.2 ms" in result.reason
    assert "what does a power cut keep?" in verdicts.read_your_writes(base, held).reason
    assert "cut sooner" in verdicts.read_your_writes({**base, "faults": ["power-kill n1"]},
                                                     held).reason
    assert "aof showed 2 dirty reads" in verdicts.read_your_writes(dirty, dirty).reason
    assert not verdicts.read_your_writes({**base, "reads": 0}, held).passed


def test_lab4_verdict_compares_the_prediction_with_the_promoted_node():
    assert verdicts.who_may_lead("n2", "n2", "n3", 0, 59).passed
    wrong = verdicts.who_may_lead("n3", "n2", "n3", 0, 59)
    assert not wrong.passed and "the run promoted n2: n3 had lost its grant" in wrong.reason
    assert not verdicts.who_may_lead("n2", "n2", "n3", 4, 59).passed      # right, but lossy
    assert verdicts.who_may_lead("nobody", None, "n3", None, 59).passed
    assert not verdicts.who_may_lead("n2", None, "n3", None, 59).passed


def test_lab5_verdicts_read_the_windows_and_the_commit_index():
    windows = [(1, 300), (2, 180), (3, 0)]
    assert verdicts.quorum_prediction(3, windows, 5, clean=True).passed
    early = verdicts.quorum_prediction(2, windows, 5, clean=True)
    assert not early.passed and "stopped once 3 of 5 were cut off" in early.reason
    assert not verdicts.quorum_prediction(3, windows, 5, clean=False).passed
    assert "never stopped" in verdicts.quorum_prediction(3, windows[:2], 5, clean=True).reason
    facts = {"leader": "n1", "leader_side": ["n1", "n2"], "voters": 5, "commit_cut": 40,
             "commit_heal": 40, "acknowledged_by_leader": 0, "acknowledged_elsewhere": 200,
             "new_leader": "n4", "anomalies": {}}
    assert verdicts.minority_leader(facts).passed
    majority = verdicts.minority_leader({**facts, "leader_side": ["n1", "n2", "n3"],
                                         "commit_heal": 90, "acknowledged_by_leader": 120})
    assert not majority.passed and "a majority: its commit index moved by 50" in majority.reason
    assert not verdicts.minority_leader({**facts, "commit_heal": 41}).passed
    assert not verdicts.minority_leader({**facts, "anomalies": {"lost-writes": 2}}).passed


def test_lab6_verdict_needs_an_anomaly_with_the_lever_and_none_without():
    found = {"stale-reads": 7, "not linearizable": 1}
    result = verdicts.break_raft("raft_bug_read_before_noop", found, {}, "a stale read")
    assert result.passed and "stale reads (7), a history that is not linearizable" in result.reason
    assert not verdicts.break_raft("raft_bug_read_before_noop", {}, {}, None).passed
    both = verdicts.break_raft("raft_bug_read_before_noop", found, {"lost-writes": 1}, None)
    assert not both.passed and "not the lever's doing" in both.reason
