"""Binder: the image's recipe as repo2docker writes it (not built), and the files it reads.

repo2docker's documented rules (its docs, ``configuration/*``): when ``binder/`` exists
only the files in it count and the root's are ignored; ``requirements.txt`` is
pip-installed, ``apt.txt`` lists Ubuntu packages, ``runtime.txt`` names the Python,
``postBuild`` runs after the build; a ``Dockerfile`` would override everything else.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

REPO = Path(__file__).resolve().parent.parent
BINDER = REPO / "binder"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def requirement_lines(path: Path) -> list[str]:
    return [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()
            if line.split("#", 1)[0].strip()]


def spec_of(requirements, name: str) -> str | None:
    """The version spec given for ``name`` in a list of requirement strings."""
    for requirement in requirements:
        match = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", requirement)
        if match and match.group(1).lower().replace("_", "-") == name:
            return match.group(3).replace(" ", "")
    return None


def test_binder_folder_holds_everything_binder_reads():
    assert BINDER.is_dir() and not (REPO / ".binder").exists()   # both is an error
    assert not (BINDER / "Dockerfile").exists()                  # would override the rest
    assert not (BINDER / "environment.yml").exists()  # conda would take over the Python
    for name in ("requirements.txt", "runtime.txt", "apt.txt", "postBuild"):
        assert (BINDER / name).is_file(), name
    # binder/ overrides the root: the package must be installed from binder/ itself
    assert requirement_lines(BINDER / "requirements.txt")[0] == "-e .[lab]"
    postbuild = (BINDER / "postBuild").read_text()
    assert postbuild.startswith("#!/bin/bash") and "set -e" in postbuild
    assert (BINDER / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"


def test_binder_conda_and_pyproject_agree():
    binder = requirement_lines(BINDER / "requirements.txt")
    project = PYPROJECT["project"]
    deps, lab = project["dependencies"], project["optional-dependencies"]["lab"]
    # the pins that matter on Binder's base image are the project's own
    assert spec_of(binder, "ipykernel") == spec_of(deps, "ipykernel") == ">=7.1"
    assert spec_of(binder, "jupyterlab") == spec_of(lab, "jupyterlab")
    assert spec_of(lab, "voila"), "the Voila dashboards need voila in the lab extra"
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.\d+", runtime)
    python = runtime.removeprefix("python-")
    minimum = project["requires-python"].removeprefix(">=")
    assert tuple(map(int, python.split("."))) >= tuple(map(int, minimum.split(".")))
    conda = (REPO / "environment.yml").read_text()
    assert f"python={python}" in conda and "-e .[lab,test]" in conda


def test_apt_packages_are_real_debian_packages():
    packages = requirement_lines(BINDER / "apt.txt")
    assert "redis-tools" in packages
    if shutil.which("apt-cache") is None:
        pytest.skip("no apt-cache on this machine")
    for package in packages:
        shown = subprocess.run(["apt-cache", "show", package], capture_output=True, text=True)
        assert shown.returncode == 0 and f"Package: {package}" in shown.stdout, package


def test_repo2docker_recipe_installs_the_package_and_the_pins(tmp_path):
    """repo2docker writes the Dockerfile it would build (``--no-build``: no Docker)."""
    repo2docker = Path(sys.executable).with_name("repo2docker")
    if not repo2docker.exists():
        pytest.fail("repo2docker is missing: pip install -e '.[test]'")
    copy = tmp_path / "repo"          # the recipe is written from a clean copy of the tree
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(
        ".venv", ".git", "__pycache__", ".pytest_cache", "test-artifacts", "*.egg-info"))
    done = subprocess.run([str(repo2docker), "--no-build", "--debug", "--user-id", "1000",
                           "--user-name", "jovyan", str(copy)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    recipe = done.stdout + done.stderr
    python = (BINDER / "runtime.txt").read_text().strip().removeprefix("python-")
    assert f"Building conda environment for python={python}" in recipe
    assert 'pip install --no-cache-dir -r "binder/requirements.txt"' in recipe
    for package in requirement_lines(BINDER / "apt.txt"):
        assert re.search(rf"apt-get install --yes --no-install-recommends [^\n]*\b{package}\b",
                         recipe), package
    assert "binder/postBuild" in recipe
    assert "environment.yml" not in recipe.replace("environment.lock", "")  # root one ignored


def test_readme_binder_links_open_the_tour_and_the_dashboard():
    readme = (REPO / "README.md").read_text()
    repository = PYPROJECT["project"]["urls"]["Repository"]
    slug = urlparse(repository).path.strip("/")
    links = re.findall(r"\((https://mybinder\.org/v2/gh/[^)\s]+)\)", readme)
    assert links, "no Binder link in the README"
    targets = {}
    for link in links:
        url = urlparse(link)
        assert url.path.startswith(f"/v2/gh/{slug}/"), link
        targets[link] = parse_qs(url.query)["urlpath"][0]
    assert "lab/tree/notebooks/00-tour.ipynb" in targets.values()
    dashboards = [t for t in targets.values() if t.startswith("voila/render/")]
    assert dashboards, "no Voila dashboard link"
    for target in targets.values():
        notebook = target.split("/", 2)[2]
        assert (REPO / notebook).is_file(), target
    assert "[![Binder](https://mybinder.org/badge_logo.svg)]" in readme
