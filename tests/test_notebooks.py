"""Notebooks are tests too: execute the tour headless and check what it recorded."""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
TOUR = REPO / "notebooks" / "00-tour.ipynb"
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


def labels_with_class(nb, css_class: str) -> list[str]:
    """The final values of the Label widgets carrying ``css_class``."""
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    return [model["state"]["value"] for model in state.values()
            if model["model_name"] == "LabelModel"
            and css_class in model["state"].get("_dom_classes", ())]


@pytest.mark.notebook
def test_tour_runs_and_reaches_its_verdict():
    nb = execute(TOUR)   # a cell error raises CellExecutionError, naming the cell

    verdicts = [line for line in outputs_text(nb).splitlines() if line.startswith("VERDICT")]
    assert verdicts and "were lost" in verdicts[0], outputs_text(nb)

    # The cards start as "waiting for the first snapshot…": roles and offsets in the
    # recorded widget state can only have come from snapshots drained by the UiPump.
    statuses = labels_with_class(nb, "wb-node-status")
    assert sorted(statuses) == ["primary", "replica", "replica"], statuses
    offsets = [int(v) for v in labels_with_class(nb, "wb-node-offset") if v.isdigit()]
    assert len(offsets) == 3 and min(offsets) > 0, offsets


def test_tour_is_stored_clean():
    """Stored without outputs, and with a kernelspec (else JupyterLab asks for a kernel)."""
    nb = nbformat.read(TOUR, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert "cluster.close()" in code[-1].source
