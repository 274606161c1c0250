"""Notebooks are tests too: execute each one headless and check what it recorded."""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
TOUR = REPO / "notebooks" / "00-tour.ipynb"
WRITE_BEHIND = REPO / "notebooks" / "02-write-behind.ipynb"
SHOOTOUT = REPO / "notebooks" / "05-shootout.ipynb"
RAFT_SIMULATOR = REPO / "notebooks" / "06-raft-simulator.ipynb"
NOTEBOOKS = [TOUR, WRITE_BEHIND, SHOOTOUT, RAFT_SIMULATOR]
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def execute(path: Path):
    """Run every cell of ``path`` in a fresh python3 kernel started in the repo root."""
    nb = nbformat.read(path, as_version=4)
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
                parts.append(output.data["text/plain"])
    return "".join(parts)


def verdicts(nb) -> list[str]:
    """The lines a notebook's checker printed as its verdict."""
    return [line for line in outputs_text(nb).splitlines() if line.startswith("VERDICT")]


def labels_with_class(nb, css_class: str) -> list[str]:
    """The final values of the Label widgets carrying ``css_class``."""
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    return [model["state"]["value"] for model in state.values()
            if model["model_name"] == "LabelModel"
            and css_class in model["state"].get("_dom_classes", ())]


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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_stored_clean(path):
    """Stored without outputs, and with a kernelspec (else JupyterLab asks for a kernel)."""
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    if any("wb.Cluster(" in cell.source for cell in code):   # a cluster it starts, it stops
        assert "cluster.close()" in code[-1].source


@pytest.mark.notebook
def test_shootout_runs_and_reaches_its_verdict():
    nb = execute(SHOOTOUT)

    lines = verdicts(nb)
    assert lines and "async lost" in lines[0] and "aof lost 0" in lines[0], outputs_text(nb)
    assert "lost_acknowledged_writes" in outputs_text(nb)     # the table was printed


@pytest.mark.notebook
def test_raft_simulator_runs_and_reaches_its_verdicts():
    nb = execute(RAFT_SIMULATOR)

    lines = verdicts(nb)
    assert len(lines) == 4, outputs_text(nb)
    elected, partition, replay, campaign = lines
    assert "elected leader of term" in elected and "on 3 of 3 nodes" in elected
    assert "isolated leader" in partition and "was never committed" in partition
    assert "one leader per term" in partition
    assert "replayed bit for bit" in replay
    assert "40 seeds x 40 steps, 0 safety violations, 0 other failures" in campaign
    assert campaign.endswith("same fingerprint: True")
