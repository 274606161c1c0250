"""The mode shootout end to end: the same split-brain against async and aof, its reports,
and the ``workbench shootout`` command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from workbench.history import report, shootout

ISSUE_FIELDS = {"mode", "schedule", "seed", "ok", "fail", "info", "lost_acknowledged_writes",
                "dirty_reads", "aborted_reads", "stale_reads", "linearizable", "write_p50_ms",
                "write_p99_ms", "throughput", "longest_unavailability_s"}


@pytest.fixture(scope="module")
def results():
    return shootout.run(["async", "aof"], "split-brain", seed=7, duration=3, progress=False)


def by_mode(results, mode):
    return next(r for r in results if r["mode"] == mode)


def test_async_loses_acknowledged_writes_in_a_split_brain(results):
    assert by_mode(results, "async")["lost_acknowledged_writes"] > 0


def test_aof_single_node_keeps_every_acknowledged_write(results):
    aof = by_mode(results, "aof")
    assert aof["lost_acknowledged_writes"] == 0
    assert aof["ok"] > 0 and aof["write_p50_ms"] is not None


def test_json_has_exactly_the_issue_fields(results):
    runs = json.loads(json.dumps(report.to_json(results)))["runs"]
    assert [r["mode"] for r in runs] == ["async", "aof"]
    assert all(set(r) == ISSUE_FIELDS for r in runs)
    assert all(r["linearizable"] is None for r in runs)      # a set workload


def test_table_has_a_row_per_mode(results):
    lines = report.table(results).splitlines()
    assert lines[0].split()[0] == "mode" and len(lines) == 4
    assert {lines[2].split()[0], lines[3].split()[0]} == {"async", "aof"}


def test_html_report_is_self_contained(results, tmp_path):
    path = tmp_path / "shootout.html"
    report.html(results, str(path))
    page = path.read_text(encoding="utf-8")
    assert "<html" in page and "cdn.bokeh.org" not in page
    assert "lost-write" in page or "acknowledged" in page     # async's findings are listed


def test_fault_windows_pair_each_fault_with_its_undoing():
    log = [(1.0, "partition"), (2.0, "heal"), (3.0, "power-kill n1"), (3.5, "pause n2"),
           (4.0, "restart n1"), (5.0, "heal all, restart all")]
    assert report.fault_windows(log, 6.0) == [(1.0, 2.0, "partition"),
                                             (3.0, 4.0, "power-kill n1"),
                                             (3.5, 5.0, "pause n2")]


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "workbench", "shootout", "--quiet", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=60)


def test_cli_writes_json(tmp_path):
    done = cli("--duration", "2", "--modes", "aof", "--schedule", "power-loss",
               "--json", "out.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    runs = json.loads((tmp_path / "out.json").read_text())["runs"]
    assert [r["mode"] for r in runs] == ["aof"] and set(runs[0]) == ISSUE_FIELDS
    assert "lost_acknowledged_writes" in done.stdout


@pytest.mark.parametrize("args, accepted", [(("--modes", "async,paxos"), "async, aof"),
                                            (("--schedule", "meteor"), "split-brain")])
def test_cli_rejects_unknown_modes_and_schedules(tmp_path, args, accepted):
    done = cli(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert "accepted" in done.stderr and accepted in done.stderr
