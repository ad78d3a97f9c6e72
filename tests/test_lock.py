"""The lock installs on exactly the Pythons that pyproject.toml names, and the package builds cleanly.

Each Python is a pip dry-run against a local index written from tools/lock_index.json, a snapshot of
PyPI's wheels and metadata for every pinned version: the tests cannot reach PyPI, and this takes
seconds. After a change to the lock, `python tools/lock_pythons.py --refresh` renews the snapshot.
"""
import json
import sys
import tomllib
import warnings
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

import lock_pythons  # noqa: E402
from lock_pythons import Project, candidates, check, resolve, stale, write_index  # noqa: E402

SNAPSHOT = json.loads(lock_pythons.SNAPSHOT.read_text())
SUPPORTED_AT_LEAST = ("3.11", "3.12", "3.13")


def test_the_lock_installs_on_exactly_the_pythons_requires_python_admits(tmp_path):
    project = Project()
    assert not stale(project, SNAPSHOT), "run python tools/lock_pythons.py --refresh"
    outcomes = check(project, SNAPSHOT, write_index(SNAPSHOT, tmp_path))
    assert all(outcome.ok for outcome in outcomes), "\n".join(map(str, outcomes))
    installs = {f"{o.python.major}.{o.python.minor}" for o in outcomes if o.resolves}
    assert installs >= set(SUPPORTED_AT_LEAST)


def _project(tmp_path: Path, requires_python: str, dependencies: list[str], lock: list[str]) -> Project:
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "demo"\nrequires-python = "{requires_python}"\ndependencies = {json.dumps(dependencies)}\n')
    (tmp_path / "constraints.txt").write_text("\n".join(lock) + "\n")
    return Project(tmp_path / "pyproject.toml", tmp_path / "constraints.txt")


def _index(tmp_path: Path, *names: str) -> str:
    part = {"projects": {name: SNAPSHOT["projects"][name] for name in names}, "metadata": SNAPSHOT["metadata"]}
    return write_index(part, tmp_path / "index")


def test_a_python_the_lock_has_no_wheels_for_fails_the_check(tmp_path):
    """numpy 2.4.6 has no 3.10 wheels: claiming 3.10 is caught, 3.11 passes."""
    project = _project(tmp_path, ">=3.10", ["numpy"], [f"numpy=={SNAPSHOT['projects']['numpy']['version']}"])
    index = _index(tmp_path, "numpy")
    claimed = resolve(project, Version("3.10.0"), index)
    assert (claimed.expected, claimed.resolves, claimed.ok) == (True, False, False)
    assert "numpy" in claimed.error and "does not resolve" in str(claimed)
    assert resolve(project, Version("3.11.0"), index).ok


def test_a_package_the_lock_does_not_pin_fails_the_check(tmp_path):
    project = _project(tmp_path, ">=3.11", ["numpy", "six"], [f"numpy=={SNAPSHOT['projects']['numpy']['version']}"])
    outcome = resolve(project, Version("3.12.0"), _index(tmp_path, "numpy", "six"))
    assert outcome.resolves and outcome.unpinned == ["six"] and not outcome.ok


def test_a_pin_the_snapshot_lacks_is_named(tmp_path):
    project = _project(tmp_path, ">=3.11", ["numpy"], ["numpy==9.9.9"])
    assert stale(project, SNAPSHOT) == [f"numpy==9.9.9 (snapshot: {SNAPSHOT['projects']['numpy']['version']})"]


def test_candidates_are_every_minor_and_both_sides_of_each_patch_release_named():
    snapshot = {"projects": {"a": {"files": [{"requires_python": ">=3.11.5"}, {"requires_python": None}]}}}
    found = {str(v) for v in candidates(snapshot, SpecifierSet(">=3.11,!=3.14.1"))}
    assert found == {"3.10.0", "3.11.0", "3.11.4", "3.11.5", "3.11.6", "3.12.0", "3.13.0",
                     "3.14.0", "3.14.1", "3.14.2", "3.15.0"}


def test_requirements_cover_every_extra_and_jupyterlab_is_one():
    """A hosted Jupyter installing the package gets no JupyterLab; ./vp installs `.[test]`, which has it."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not any(r.startswith("jupyterlab") for r in project["dependencies"])
    assert "vp_utils[lab]" in project["optional-dependencies"]["test"]
    assert "jupyterlab>=4" in Project().requirements()
    assert not any(r.startswith("vp_utils") for r in Project().requirements())


def test_the_package_configuration_builds_without_warnings():
    """setuptools' reading of pyproject.toml, as in every install: a TOML-table license warned in 40 lines."""
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = apply_configuration(Distribution(), REPO / "pyproject.toml")
    assert [str(w.message).splitlines()[0] for w in caught] == []
    assert dist.metadata.license_expression == "MIT" and (REPO / "LICENSE").is_file()

