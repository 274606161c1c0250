"""notebooks/07-review-room.ipynb: executed headless, its verdicts read, its reviewer side
checked to use the broker only."""

from __future__ import annotations

import re
from pathlib import Path

import nbclient
import nbformat
import pytest
from nbformat.v4 import new_code_cell

REPO = Path(__file__).resolve().parent.parent
REVIEW_ROOM = REPO / "notebooks" / "07-review-room.ipynb"

# What the reviewer's live view shows at the end of the run, read from its widgets in the
# kernel, before the teardown cell closes everything.
VIEW_PROBE = """
rows = view.table.rows
print('VIEW', view.summary.value, '|', sorted(rows),
      '|', sorted(row['status'].value for row in rows.values()))
"""


def execute(path: Path, probe: str):
    nb = nbformat.read(path, as_version=4)
    teardown = next(i for i, cell in enumerate(nb.cells)
                    if "teardown" in cell.metadata.get("tags", ()))
    nb.cells.insert(teardown, new_code_cell(probe))
    client = nbclient.NotebookClient(
        nb, timeout=180, kernel_name="python3", shutdown_kernel="immediate",
        resources={"metadata": {"path": str(REPO)}})
    client.execute()
    return nb


def outputs_text(nb) -> str:
    return "".join(output.text for cell in nb.cells for output in cell.get("outputs", [])
                   if output.output_type == "stream")


def number(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in {text!r}"
    return int(found.group(1))


def test_review_room_is_stored_clean_and_its_reviewer_side_uses_the_broker_only():
    nb = nbformat.read(REVIEW_ROOM, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert "teardown" in code[-1].metadata.get("tags", ())
    assert "presenter.close()" in code[-1].source and "viewer.close()" in code[-1].source
    viewer_cells = [c for c in code if "viewer" in c.metadata.get("tags", ())]
    presenter_cells = [c for c in code if "presenter" in c.metadata.get("tags", ())]
    assert len(viewer_cells) >= 3 and len(presenter_cells) >= 3
    for cell in viewer_cells:
        assert "reviewer side" in cell.source
        # the reviewer knows a URL, a name and a token -- no cluster object
        assert not re.search(r"\bpresenter\b(?!_state)|wb\.Cluster", cell.source), cell.source
    assert all("presenter side" in cell.source for cell in presenter_cells)


@pytest.mark.notebook
def test_review_room_runs_and_reaches_its_verdicts():
    nb = execute(REVIEW_ROOM, VIEW_PROBE)
    text = outputs_text(nb)
    lines = [line for line in text.splitlines() if line.startswith("VERDICT")]
    by_part = {line.split(")")[0].removeprefix("VERDICT ("): line for line in lines}
    assert sorted(by_part) == ["a", "b", "c"] and len(lines) == 6, text

    a, b, c = by_part["a"], by_part["b"], by_part["c"]
    assert "holds the presenter's state exactly: True" in a
    assert "on both sides: True" in a and "nodes running as on the presenter: True" in a
    assert "without the token: refused (wrong or missing token)" in b
    assert re.search(r"with it: done \(killed (n\d)\); \1 down on the presenter: True, "
                     r"down for the viewer: True", b), b
    assert "on both sides: True" in b
    assert number(r"raft lost 0 of (\d+) acknowledged writes", b) > 50
    assert c.startswith("VERDICT (c) 5 messages lost on purpose")
    assert number(r"the viewer loaded (\d+) fresh state", c) >= 1
    assert number(r"covering (\d+) messages it never got", c) >= 5
    assert "holds the presenter's state exactly: True" in c
    assert c.endswith("running again for the viewer: True")

    # the refusal was logged on the presenter's side
    assert "reviewer-1 kill {'node': 'n1'} -> refused wrong or missing token" in text
    # the live view drew the remote cluster from the stream: three nodes, all running
    [view] = [line for line in text.splitlines() if line.startswith("VIEW")]
    assert re.search(r"leader: n\d; no faults in force", view), view
    assert view.endswith("| ['n1', 'n2', 'n3'] | ['running', 'running', 'running']"), view
    assert "closed: viewer True - presenter True" in text
