"""Notebooks are tests too: execute each one headless and check what it recorded."""

from __future__ import annotations

import re
from pathlib import Path

import nbclient
import nbformat
import pytest
from nbformat.v4 import new_code_cell

REPO = Path(__file__).resolve().parent.parent
TOUR = REPO / "notebooks" / "00-tour.ipynb"
WRITE_BEHIND = REPO / "notebooks" / "02-write-behind.ipynb"
SHOOTOUT = REPO / "notebooks" / "03-shootout.ipynb"
SYNC_REPLICATION = REPO / "notebooks" / "04-sync-replication.ipynb"
RAFT_QUORUM = REPO / "notebooks" / "05-raft-quorum.ipynb"
RAFT_SIMULATOR = REPO / "notebooks" / "06-raft-simulator.ipynb"
# every notebook and lab in the repository, found, not listed: a new one is checked too
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb")) + sorted((REPO / "labs").glob("*.ipynb"))
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# The last cell of a notebook with live controls: Run All shows the button and leaves
# the cluster running; pressing it is the clean-up.
CLEAN_UP = "done = viz.CloseButton(cluster)"


def execute(path: Path, *, clean_up: bool = False, probe: str | None = None):
    """Run every cell of ``path`` in a fresh python3 kernel started in the repo root;
    then run ``probe`` (code whose output a test reads), and with ``clean_up`` press the
    notebook's clean-up button, as a reader would."""
    nb = nbformat.read(path, as_version=4)
    if probe is not None:
        nb.cells.append(new_code_cell(probe))
    if clean_up:
        nb.cells.append(new_code_cell("assert not cluster.closed, 'Run All closed the cluster'\n"
                                      "done.click()"))
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", store_widget_state=True,
        shutdown_kernel="immediate", resources={"metadata": {"path": str(REPO)}})
    client.execute()
    return nb


def outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif "data" in output and "text/plain" in output.data:
                parts.append(output.data["text/plain"] + "\n")   # a repr ends no line
    return "".join(parts)


def verdicts(nb) -> list[str]:
    """The lines a notebook's checker printed as its verdict."""
    return [line for line in outputs_text(nb).splitlines() if line.startswith("VERDICT")]


def widgets_with_class(nb, model_name: str, css_class: str) -> list[dict]:
    """The final states of the ``model_name`` widgets carrying ``css_class``."""
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    return [model["state"] for model in state.values()
            if model["model_name"] == model_name
            and css_class in model["state"].get("_dom_classes", ())]


def labels_with_class(nb, css_class: str) -> list[str]:
    """The final values of the Label widgets carrying ``css_class``."""
    return [state["value"] for state in widgets_with_class(nb, "LabelModel", css_class)]


def no_bokeh_set_up_cell(nb) -> bool:
    """Charts bring BokehJS along: no notebook needs an ``output_notebook()`` cell."""
    return not any("output_notebook" in cell.source for cell in nb.cells)


@pytest.mark.notebook
def test_tour_runs_and_reaches_its_verdict():
    nb = execute(TOUR)   # a cell error raises CellExecutionError, naming the cell

    lines = verdicts(nb)
    assert lines and "were lost" in lines[0], outputs_text(nb)

    # The cards start as "waiting for the first snapshot…": roles and offsets in the
    # recorded widget state can only have come from snapshots drained by the UiPump.
    statuses = labels_with_class(nb, "wb-node-status")
    assert sorted(statuses) == ["primary", "replica", "replica"], statuses
    offsets = [int(v) for v in labels_with_class(nb, "wb-node-offset") if v.isdigit()]
    assert len(offsets) == 3 and min(offsets) > 0, offsets
    # Run All leaves the cluster up, so the reader can still play: the controls are live.
    kills = widgets_with_class(nb, "ButtonModel", "wb-kill")
    assert len(kills) == 3 and not all(kill["disabled"] for kill in kills), kills
    assert no_bokeh_set_up_cell(nb)


@pytest.mark.notebook
def test_tour_clean_up_closes_the_cluster_and_turns_the_controls_off():
    """Reproduction: the tour's last cell closed the cluster during Run All, so every
    button was dead ("kill n1: the cluster is closed") although the intro says Run All
    works, and the closing was logged as three "crashed (killed)" events. Now Run All
    leaves the cluster up; the clean-up button closes it, and the panel says so."""
    nb = execute(TOUR, clean_up=True)

    assert labels_with_class(nb, "wb-node-status") == ["CLOSED"] * 3
    buttons = [state for css in ("wb-kill", "wb-power-kill", "wb-restart", "wb-partition-primary",
                                 "wb-heal")
               for state in widgets_with_class(nb, "ButtonModel", css)]
    assert len(buttons) == 11 and all(button["disabled"] for button in buttons)
    [log] = widgets_with_class(nb, "HTMLModel", "wb-event-log")
    assert "cluster closed: n1, n2, n3 shut down on purpose (not a crash)" in log["value"]
    assert "crashed" not in log["value"]
    [done] = widgets_with_class(nb, "ButtonModel", "wb-close-cluster")
    assert done["disabled"] and done["description"] == "The cluster is closed"


@pytest.mark.notebook
def test_write_behind_runs_and_reaches_its_verdict():
    nb = execute(WRITE_BEHIND)

    lines = verdicts(nb)
    assert any("aof lost 0" in line for line in lines), outputs_text(nb)
    assert any("no dirty read" in line for line in lines), outputs_text(nb)

    # The gate panel starts at "–": offsets in the recorded widget state came through
    # its sampler and the UiPump. At the end nothing is held, so the two offsets agree.
    [executed] = labels_with_class(nb, "wb-gate-executed")
    [committed] = labels_with_class(nb, "wb-gate-committed")
    assert executed.isdigit() and int(executed) > 0 and committed == executed
    assert labels_with_class(nb, "wb-gate-status") == ["replies leave when fsynced"]
    [pause] = widgets_with_class(nb, "ToggleButtonModel", "wb-gate-pause")
    assert not pause["disabled"], "Run All must leave the node up and its lever live"
    assert no_bokeh_set_up_cell(nb)


@pytest.mark.notebook
def test_write_behind_clean_up_says_the_cluster_is_closed():
    """Reproduction: after the last cell closed the node, the gate panel's Pause button
    answered with a raw "Error 111 connecting to 127.0.0.1:...". Now the clean-up button
    closes it and the panel says plainly that the cluster is closed, lever off."""
    nb = execute(WRITE_BEHIND, clean_up=True)

    [status] = labels_with_class(nb, "wb-gate-status")
    assert status.startswith("the cluster is closed"), status
    [pause] = widgets_with_class(nb, "ToggleButtonModel", "wb-gate-pause")
    assert pause["disabled"] and not pause["value"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_stored_clean(path):
    """Stored without outputs, and with a kernelspec (else JupyterLab asks for a kernel)."""
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    if any("cluster = wb.Cluster(" in cell.source for cell in code):
        # A cluster it starts, it stops -- when the reader presses the clean-up button,
        # not during Run All; or, in a lab, in its last cell, tagged teardown. Nothing
        # before that closes the cluster.
        if "teardown" in code[-1].metadata.get("tags", ()):
            assert "cluster.close()" in code[-1].source
            code = code[:-1]
        else:
            assert code[-1].source.startswith(CLEAN_UP)
        assert not any("cluster.close()" in cell.source for cell in code)


@pytest.mark.notebook
def test_shootout_runs_and_reaches_its_verdict():
    nb = execute(SHOOTOUT)

    lines = verdicts(nb)
    assert lines and "async lost" in lines[0] and "aof lost 0" in lines[0], outputs_text(nb)
    assert "lost_acknowledged_writes" in outputs_text(nb)     # the table was printed


@pytest.mark.notebook
def test_sync_replication_runs_and_reaches_its_verdicts():
    nb = execute(SYNC_REPLICATION)

    lines = verdicts(nb)
    by_part = {line.split(")")[0].removeprefix("VERDICT ("): line for line in lines}
    assert sorted(by_part) == list("abcdefgh"), outputs_text(nb)
    assert len(lines) == 16          # each part's verdict, then all of them again at the end
    assert "sync lost 0; wait-then-failover on 5 nodes: async+WAIT1 lost" in by_part["a"]
    assert by_part["a"].endswith("sync lost 0 acknowledged writes")
    assert "0 writes failed" in by_part["c"]
    assert "held writes timed out with NOREPLICAS (outcome unknown)" in by_part["d"]
    assert ", 0 dirty reads" in by_part["d"] and " 0 of " in by_part["d"]
    assert "never" in by_part["e"]
    assert "3 of 3 writes ended NOREPLICAS (outcome unknown)" in by_part["f"]
    assert "with 200 of 200 acknowledged writes" in by_part["g"]
    assert "lever off lost 0, lever on lost" in by_part["h"]

    # The sync panel's rows start at "–": eligibility in the recorded widget state came
    # through its sampler and the UiPump. Run All ends with both replicas granted again.
    states = labels_with_class(nb, "wb-sync-state")
    assert sorted(states) == ["eligible", "eligible", "primary"], states
    cards = labels_with_class(nb, "wb-node-eligibility")
    assert sorted(cards)[:2] == ["eligible", "eligible"], cards
    assert sorted(cards)[2].startswith("waits for n"), cards
    [executed] = labels_with_class(nb, "wb-sync-executed")
    [committed] = labels_with_class(nb, "wb-sync-committed")
    assert executed.isdigit() and committed == executed
    kills = widgets_with_class(nb, "ButtonModel", "wb-kill")
    assert len(kills) == 3 and not all(kill["disabled"] for kill in kills), kills
    assert no_bokeh_set_up_cell(nb)


def number(pattern: str, text: str) -> int:
    """The integer ``pattern``'s one group matched in ``text``."""
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in {text!r}"
    return int(found.group(1))


# What the Raft panel shows once Run All is done, printed before the clean-up button is
# pressed: the roles of its rows and its sentence about writes.
RAFT_PANEL_PROBE = ("print('PANEL', sorted(row['role'].value for row in raft_view.rows.values()),"
                    " '|', raft_view.status.value)")


@pytest.mark.notebook
def test_raft_quorum_runs_reaches_its_verdicts_and_cleans_up():
    """One Run All (about a minute), then the clean-up button: every part's verdict comes
    from a recorded history, both levers are caught and silent when off; the panel
    followed the shard to four nodes, and turned off when the cluster closed."""
    nb = execute(RAFT_QUORUM, probe=RAFT_PANEL_PROBE, clean_up=True)

    lines = verdicts(nb)
    by_part = {line.split(")")[0].removeprefix("VERDICT ("): line for line in lines}
    assert sorted(by_part) == list("abcdefgh"), outputs_text(nb)
    assert len(lines) == 16          # each part's verdict, then all of them again at the end
    for part in "abcdef":            # the live parts: nothing acknowledged lost, all clean
        line = by_part[part]
        assert re.search(r" 0 of \d+ acknowledged writes lost, 0 dirty and 0 stale reads, "
                         r"linearizable True", line), line
        assert number(r" 0 of (\d+) acknowledged writes lost", line) > 50, line
    assert number(r"moved by (\d+) entries on all 3 nodes", by_part["a"]) > 0
    assert number(r"won term (\d+)", by_part["b"]) >= 2
    assert "outcome unknown" in by_part["c"] or "closed" in by_part["c"], by_part["c"]
    assert number(r"rolling back (\d+) entries", by_part["c"]) >= 1
    assert number(r"ended unknown, (\d+) ok, 0 ever seen", by_part["c"]) == 0
    assert "promoted to voter" in by_part["d"] and "voters n1, n2, n3, n4" in by_part["d"]
    assert "2 of 4 voters (a majority is 3)" in by_part["e"] and "CLUSTERDOWN" in by_part["e"]
    assert number(r"with 3 killed (\d+);", by_part["f"]) == 0
    assert number(r"with 2 killed (\d+) writes", by_part["f"]) > 0   # a majority: writes go on
    # the levers: each anomaly named when on, none when off
    g, h = by_part["g"], by_part["h"]
    assert number(r"noop=yes: (\d+) stale reads", g) > 0 and "stale reads, linearizable False" in g
    assert "lever off: 0 stale reads, linearizable True" in g, g
    assert number(r"timeout=yes: \d+ writes failed definitely, (\d+) aborted reads", h) > 0
    assert h.endswith(", 0 failed, 0 aborted reads"), h

    # Before the clean-up the panel showed the shard of four nodes it had followed (n4
    # added in part d): one leader serving, three followers.
    [panel] = [line for line in outputs_text(nb).splitlines() if line.startswith("PANEL")]
    assert panel.startswith("PANEL ['follower', 'follower', 'follower', 'leader'] | "), panel
    assert "a write is acknowledged once 3 of 4 voters stored it (4 running)" in panel
    # The rows start at "–": roles in the recorded widget state came through the pump.
    # After the clean-up button every row says CLOSED and every button is off.
    assert labels_with_class(nb, "wb-raft-role") == ["CLOSED"] * 4
    [status] = labels_with_class(nb, "wb-raft-status")
    assert status.startswith("the cluster is closed"), status
    buttons = [state for css in ("wb-raft-kill", "wb-raft-restart", "wb-raft-remove", "wb-raft-add")
               for state in widgets_with_class(nb, "ButtonModel", css)]
    assert len(buttons) == 13 and all(button["disabled"] for button in buttons)
    [log] = widgets_with_class(nb, "HTMLModel", "wb-raft-log")
    assert "cluster closed: n1, n2, n3, n4 shut down on purpose (not a crash)" in log["value"]
    assert labels_with_class(nb, "wb-node-status") == ["CLOSED"] * 4     # the control panel, n4 too
    assert no_bokeh_set_up_cell(nb)


@pytest.mark.notebook
def test_raft_simulator_runs_and_reaches_its_verdicts():
    nb = execute(RAFT_SIMULATOR)     # its teardown cell closes the live shard

    lines = verdicts(nb)
    assert len(lines) == 9, outputs_text(nb)
    (elected, partition, scope_election, failover, scope_partition, requests, replay,
     campaign, live) = lines
    assert "elected leader of term" in elected and "on 3 of 3 nodes" in elected
    assert "isolated leader" in partition and "was never committed" in partition
    assert "one leader per term" in partition
    # the Raft scope: each experiment ends with the simulator's safety checks
    assert scope_election.startswith("VERDICT: scope election:") and "pre-votes first" in scope_election
    assert "restarted from its disk and follows" in failover and "safety checks hold" in failover
    assert "the cut-off request was never committed" in scope_partition
    assert re.search(r"requests: 5 of 5 client requests committed on all 3 servers though 5 "
                     r"messages", requests), requests
    assert all("safety checks hold" in line
               for line in (scope_election, failover, scope_partition, requests))
    assert "replayed bit for bit" in replay
    assert "40 seeds x 40 steps, 0 safety violations, 0 other failures" in campaign
    assert campaign.endswith("same fingerprint: True")
    assert live.startswith("VERDICT: live scope: killed leader") and "down" in live
    # the scopes' readouts came through the widget state: a clock that moved
    clocks = labels_with_class(nb, "wb-scope-clock")
    assert len(clocks) == 2 and all("ms (virtual), paused" in clock for clock in clocks)
    assert labels_with_class(nb, "wb-scope-live-status") == [
        "the cluster is closed: its nodes are stopped, so the buttons are off"]
