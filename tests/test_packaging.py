"""What a newcomer sees before running anything: the package metadata, the notebooks'
numbering, and the files the README points to."""

from __future__ import annotations

import os
import re

import pytest

tomllib = pytest.importorskip("tomllib")     # Python 3.11+

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(*parts: str) -> str:
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
        return f.read()


def test_license_is_an_spdx_expression():
    """Reproduction: ``pip install -e .`` printed setuptools' deprecation warning for the
    table form ``license = { text = "BSD-3-Clause" }``; PEP 639 wants the SPDX string,
    which setuptools understands from version 77 on."""
    project = tomllib.loads(read("pyproject.toml"))
    assert project["project"]["license"] == "BSD-3-Clause"
    assert "setuptools>=77" in project["build-system"]["requires"]


def test_notebooks_are_numbered_without_gaps():
    """Reproduction: the notebooks were 00, 02, 05 and 06; a reader looked for the
    missing ones."""
    numbers = sorted(int(name[:2]) for name in os.listdir(os.path.join(ROOT, "notebooks"))
                     if name.endswith(".ipynb") and name[:2].isdigit())
    assert numbers == list(range(len(numbers))) and numbers


def test_every_file_the_readme_and_the_design_name_exists():
    """Reproduction: the README pointed to a ``DESIGN.md`` that was not in the repository."""
    named = set()
    for doc in ("README.md", os.path.join("docs", "design.md")):
        text = read(doc)
        named |= set(re.findall(r"\b((?:notebooks|docs|labs|benchmarks|binder)/[\w./-]+\.\w+)", text))
    assert "docs/design.md" in named
    missing = sorted(path for path in named if not os.path.exists(os.path.join(ROOT, path)))
    assert missing == []
