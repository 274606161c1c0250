"""Running labs headless: list them, swap a solution in, execute, read the verdicts back.

A lab is a notebook ``NN-name.ipynb`` whose first markdown cell has a ``# title`` and a
``**Claim:** ...`` paragraph. Cells tagged ``answer`` are the learner's; cells tagged
``check`` display :class:`LabResult` verdicts (their JSON form, under
:data:`~workbench.labs.result.MIME_TYPE`, is what this module reads back); a cell
tagged ``teardown`` closes what the lab started.

A solution file maps answer cells to their solved code, one section per cell::

    # cell: answer-schedule
    my_schedule = Schedule(...)

:func:`check` executes a lab (with a solution's sections in place of its answer cells,
when one is given) in a fresh python3 kernel, and returns every verdict and every error.
Errors do not stop the run: the teardown cell still runs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .result import MIME_TYPE, LabResult

ANSWER, CHECK, TEARDOWN = "answer", "check", "teardown"
SECTION = re.compile(r"^# cell:\s*(\S+)\s*$", re.MULTILINE)
LAB_NAME = re.compile(r"^\d\d-[\w-]+\.ipynb$")


class LabError(Exception):
    """A lab, or a solution for it, that cannot be run as given."""


@dataclass(frozen=True)
class Lab:
    path: Path
    title: str
    claim: str

    @property
    def number(self) -> str:
        return self.path.name[:2]


@dataclass
class LabRun:
    """What one headless run of a lab produced."""

    lab: Lab
    results: list[LabResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)     # "cell <id>: <error>"

    @property
    def passed(self) -> bool:
        return not self.errors and bool(self.results) and all(r.passed for r in self.results)

    @property
    def exit_code(self) -> int:
        """0: every check passed; 1: a check said not yet; 2: the lab did not run through."""
        if self.errors or not self.results:
            return 2
        return 0 if self.passed else 1

    def to_dict(self) -> dict:
        return {"lab": str(self.lab.path), "title": self.lab.title, "passed": self.passed,
                "results": [r.to_dict() for r in self.results], "errors": self.errors}


# -- reading labs (pure, apart from reading the file) ---------------------------------------

def _tags(cell) -> set:
    return set(cell.get("metadata", {}).get("tags", ()))


def describe(nb, path: Path) -> Lab:
    """The lab's title and claim, from its first markdown cell."""
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    text = first.source if first is not None else ""
    title = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), None)
    claim = re.search(r"\*\*Claim:\*\*\s*(.+?)(?:\n\s*\n|\Z)", text, re.DOTALL)
    if title is None or claim is None:
        raise LabError(f"{path}: its first markdown cell needs a '# title' and a "
                       "'**Claim:** ...' paragraph")
    return Lab(Path(path), title, " ".join(claim.group(1).split()))


def read(path) -> tuple[Lab, object]:
    """The lab at ``path`` and its notebook; LabError if it is no lab."""
    import nbformat
    path = Path(path)
    if not path.is_file():
        raise LabError(f"{path}: no such lab notebook")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:                      # not JSON, not a notebook
        raise LabError(f"{path}: not a notebook ({err})") from None
    if not any(CHECK in _tags(c) for c in nb.cells):
        raise LabError(f"{path}: no cell tagged '{CHECK}': nothing to check")
    return describe(nb, path), nb


def list_labs(directory) -> list[Lab]:
    """Every lab in ``directory`` (``NN-name.ipynb``), in order."""
    directory = Path(directory)
    if not directory.is_dir():
        raise LabError(f"{directory}: no such directory")
    return [read(p)[0] for p in sorted(directory.iterdir()) if LAB_NAME.match(p.name)]


def parse_solution(text: str) -> dict[str, str]:
    """``# cell: <id>`` sections -> {cell id: code}; what precedes the first is a header."""
    marks = list(SECTION.finditer(text))
    if not marks:
        raise LabError("a solution has '# cell: <id>' sections, one per answer cell; "
                       "this one has none")
    sections = {}
    for mark, after in zip(marks, marks[1:] + [None]):
        cell_id = mark.group(1)
        if cell_id in sections:
            raise LabError(f"the solution has two sections for cell {cell_id!r}")
        sections[cell_id] = text[mark.end():after.start() if after else len(text)].strip("\n")
    return sections


def apply_solution(nb, sections: dict[str, str]) -> None:
    """Put each section in place of its answer cell; every answer cell must get one."""
    answers = {c.get("id"): c for c in nb.cells if ANSWER in _tags(c)}
    unknown = sorted(set(sections) - set(answers))
    if unknown:
        raise LabError(f"the solution names cells that are no answer cell of this lab: "
                       f"{', '.join(unknown)} (answer cells: {', '.join(sorted(answers))})")
    missing = sorted(set(answers) - set(sections))
    if missing:
        raise LabError(f"the solution has no section for the answer cell(s) "
                       f"{', '.join(missing)}")
    for cell_id, code in sections.items():
        answers[cell_id].source = code


def collect(nb) -> tuple[list[LabResult], list[str]]:
    """The verdicts the check cells displayed, and every error a cell raised."""
    results, errors = [], []
    for cell in nb.cells:
        for output in cell.get("outputs", ()):
            if output.get("output_type") == "error":
                errors.append(f"cell {cell.get('id')}: {output.get('ename')}: "
                              f"{output.get('evalue')}")
            elif CHECK in _tags(cell) and MIME_TYPE in output.get("data", {}):
                results.append(LabResult.from_dict(output["data"][MIME_TYPE]))
    return results, errors


# -- running ---------------------------------------------------------------------------------

def check(path, solution=None, *, timeout: float = 600) -> LabRun:
    """Execute the lab at ``path`` headless, with ``solution`` (a file) swapped in; every
    cell runs even after an error, so the teardown cell closes what the lab started."""
    import nbclient

    lab, nb = read(path)
    if solution is not None:
        solution = Path(solution)
        if not solution.is_file():
            raise LabError(f"{solution}: no such solution file")
        apply_solution(nb, parse_solution(solution.read_text(encoding="utf-8")))
    client = nbclient.NotebookClient(
        nb, timeout=timeout, kernel_name="python3", allow_errors=True,
        shutdown_kernel="immediate",
        resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}})
    run = LabRun(lab)
    try:
        client.execute()
    except Exception as err:            # the kernel died, a cell timed out
        run.errors.append(f"{type(err).__name__}: {err}")
    results, errors = collect(nb)
    run.results += results
    run.errors = errors + run.errors
    if not run.results and not run.errors:
        run.errors.append("no check cell displayed a verdict")
    return run
