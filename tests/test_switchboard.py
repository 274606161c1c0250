"""The switchboard: a live workload whose numbers and verdicts come from the checkers."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

import workbench as wb
from workbench.history import checkers
from workbench.history.live import Durability, LiveRun
from workbench.switchboard import Switchboard, verdict_line

from test_notebooks import execute, outputs_text, widgets_with_class

REPO = Path(__file__).resolve().parent.parent
SWITCHBOARD = REPO / "notebooks" / "01-switchboard.ipynb"


def wait_for(condition, *, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
    return value


def test_durability_names_and_refusals():
    assert Durability("async", 2).label == "async + WAIT 2"
    assert Durability("raft").label == "raft" and Durability("aof").nodes == 1
    with pytest.raises(ValueError, match="async-mode lever"):
        Durability("sync", 1)
    with pytest.raises(ValueError, match="0 or more"):
        Durability("async", -1)


def test_a_live_run_counts_what_its_history_holds():
    with wb.Cluster(mode="aof", nodes=1) as cluster:
        with pytest.raises(ValueError, match="needs a raft cluster"):
            LiveRun(cluster, Durability("raft"))
        run = LiveRun(cluster, Durability("aof"), rate=200).start()
        wait_for(lambda: run.stats()["acked_writes"] >= 50, timeout=20,
                 what="50 acknowledged writes")
        stats = run.stats()
        assert stats["write_p50_ms"] is not None and stats["write_p50_ms"] <= stats["write_p99_ms"]
        assert run.gate()["gated"] is True          # aof: the commit gate holds replies
        assert run.check()["against"] == "n1"
        assert run.fault("cut").startswith("n1 is the only node")
        result = run.finish()
    recount = checkers.summary(run.history)        # the history ends with the final reads
    assert result["acked_writes"] == recount["lost-writes"].details["ok"] >= stats["acked_writes"]
    assert result["lost_acknowledged_writes"] == recount["lost-writes"].count == 0
    assert run.fault_log == []                       # a refused fault is not a fault


def test_async_loses_what_raft_keeps_under_the_same_cut():
    """The switchboard's promise, on real nodes: its numbers are the checkers' verdicts."""
    board = Switchboard(rate=240)
    seen = []
    board.on_update(lambda kind, value: seen.append((kind, value)))
    try:
        board.use("async").result(30)
        wait_for(lambda: board.run.stats()["acked_writes"] >= 100, timeout=20,
                 what="writes before the fault")
        assert board.fault("cut").result(10).startswith("cut ")
        # the isolated primary acknowledges writes the promoted replica never gets: the
        # provisional check sees them missing from the new primary
        wait_for(lambda: board.run.stats()["lost_so_far"] > 0, timeout=20,
                 what="the provisional check to count lost writes")
        board.fault("heal").result(20)
        lost_run = board.use("raft").result(60)
        assert board.cluster.mode == "raft"
        wait_for(lambda: board.run.stats()["acked_writes"] >= 100, timeout=20,
                 what="raft writes before the fault")
        board.fault("cut").result(10)
        wait_for(lambda: board.run.stats()["waiting_s"] < 0.5 and board.run.gate()["primary"]
                 and board.run.fault_log and board.run.elapsed() > 4, timeout=30,
                 what="a new raft leader acknowledging writes")
        kept_run = board.finish().result(60)
    finally:
        board.close()
    assert lost_run["lost_acknowledged_writes"] > 0 and "NOT SAFE" in verdict_line(lost_run)
    assert lost_run["lost_acknowledged_writes"] == lost_run["verdicts"]["lost-writes"].count
    assert kept_run["lost_acknowledged_writes"] == 0 and kept_run["dirty_reads"] == 0
    assert kept_run["acked_writes"] > 100
    assert [r["durability"] for r in board.results] == ["async", "raft"]
    kinds = {kind for kind, _ in seen}
    assert {"stats", "log", "run", "fault", "result"} <= kinds
    with pytest.raises(RuntimeError, match="closed"):
        board.fault("heal")


def test_the_panel_follows_clicks_in_plain_python():
    from workbench.viz import SwitchboardPanel

    panel = SwitchboardPanel(Switchboard(rate=200), start="aof")
    try:
        wait_for(lambda: panel.numbers["acked_writes"].value not in ("–", "0"), timeout=30,
                 what="the panel to show acknowledged writes")
        assert panel.wait_n.disabled and not panel.fault_buttons["crash"].disabled
        panel.fault_buttons["power-cut"].click()
        wait_for(lambda: "power cut on n1" in panel.log_view.value, timeout=10,
                 what="the power cut in the log")
        panel.check_now.click()
        wait_for(lambda: "safe" in panel.scoreboard.value, timeout=30,
                 what="a verdict on the scoreboard")
        assert "NOT SAFE" not in panel.scoreboard.value
        panel.choose("async + WAIT", wait_n=2)
        wait_for(lambda: panel.board.durability is not None
                 and panel.board.durability.label == "async + WAIT 2", timeout=30,
                 what="the WAIT 2 run")
        assert not panel.wait_n.disabled
    finally:
        panel.shut_down_button().click()
    assert panel.board.closed and panel.board.cluster is None
    assert panel.fault_buttons["heal"].disabled and panel.durability.disabled


@pytest.mark.notebook
def test_switchboard_notebook_sets_the_modes_side_by_side():
    nb = execute(SWITCHBOARD, probe="assert not board.board.closed, 'Run All shut it down'\n"
                                    "done.click()")
    text = outputs_text(nb)
    for name in ("aof", "sync", "raft"):
        assert f"{name:>15}: kept all" in text
    assert "async + WAIT 1:" in text
    boards = widgets_with_class(nb, "HTMLModel", "wb-switch-scoreboard")
    assert len(boards) == 1
    runs = re.findall(r"<td><b>(.*?)</b></td>", boards[0]["value"])
    # the run Run All started with, ended by the comparison's first switch; then one each
    assert runs[-5:] == ["async", "async + WAIT 1", "aof", "sync", "raft"], runs
    statuses = widgets_with_class(nb, "LabelModel", "wb-switch-status")
    assert statuses and "closed" in statuses[0]["value"]
