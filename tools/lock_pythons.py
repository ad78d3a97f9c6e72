"""Which Pythons the lock installs on: a pip dry-run of pyproject's requirements under
constraints.txt for each Python version near `requires-python`, as CPython on Linux x86_64.

    python tools/lock_pythons.py             # offline, against the snapshot of PyPI in tools/lock_index.json
    python tools/lock_pythons.py --pypi      # against PyPI itself
    python tools/lock_pythons.py --refresh   # rewrite the snapshot from PyPI (after any change to the lock), then check

The snapshot holds, for every version the lock pins, the names of its Linux x86_64 and
pure-Python wheels with their Requires-Python, and their core metadata (the dependency lines
only). From it a local package index is written, so pip resolves offline, exactly as against
PyPI, in seconds. Each Python version tried passes when it resolves exactly where
`requires-python` admits it and installs nothing the lock leaves unpinned. Exits 1 otherwise.
"""
from __future__ import annotations

import argparse
import email.parser
import hashlib
import html
import io
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"
LOCK = REPO / "constraints.txt"
SNAPSHOT = Path(__file__).with_name("lock_index.json")
PYPI = "https://pypi.org/simple/"
MINORS = range(10, 16)  # tried at x.0: one minor below what the lock supports, one above
GLIBC = 28  # the oldest glibc a learner's Linux may have: torch's wheels need manylinux_2_28
PLATFORMS = ["manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64",
             *(f"manylinux_2_{minor}_x86_64" for minor in range(5, GLIBC + 1))]
METADATA_FIELDS = ("Metadata-Version", "Name", "Version", "Requires-Python", "Requires-Dist", "Provides-Extra")


@dataclass(frozen=True)
class Project:
    """The two files that say what installs: the package's requirements and the lock."""

    pyproject: Path = PYPROJECT
    lock: Path = LOCK

    def pins(self) -> dict[str, str]:
        """The lock's `name==version` lines, by canonical name."""
        found = {}
        for line in self.lock.read_text().splitlines():
            name, _, version = line.split("#")[0].strip().partition("==")
            if version:
                found[canonicalize_name(name)] = version.strip()
        return found

    def requirements(self) -> list[str]:
        """The dependencies and every extra, an extra that names the project itself
        (`vp_utils[lab]`) standing for that extra's requirements, which are listed anyway."""
        project = self._table()
        own = canonicalize_name(project["name"])
        groups = [project["dependencies"], *project.get("optional-dependencies", {}).values()]
        return sorted({r for group in groups for r in group if canonicalize_name(Requirement(r).name) != own})

    def requires_python(self) -> SpecifierSet:
        return SpecifierSet(self._table()["requires-python"])

    def _table(self) -> dict:
        return tomllib.loads(self.pyproject.read_text())["project"]


def candidates(snapshot: dict, ours: SpecifierSet) -> list[Version]:
    """x.0 of each minor in MINORS, and each patch release named by a Requires-Python (ours or a
    wheel's: `!=3.14.1`, `>=3.11.5`) with the releases on either side, within those minors."""
    named = {spec.version for spec in ours}
    for project in snapshot["projects"].values():
        named.update(spec.version for wheel in project["files"] for spec in SpecifierSet(wheel["requires_python"] or ""))
    found = {Version(f"3.{minor}.0") for minor in MINORS}
    for text in named:
        if "*" in text or text.count(".") != 2:
            continue
        major, minor, micro = Version(text).release
        if major == 3 and minor in MINORS and micro > 0:  # x.0 is tried anyway
            found |= {Version(f"3.{minor}.{patch}") for patch in (micro - 1, micro, micro + 1)}
    return sorted(found)


@dataclass
class Outcome:
    python: Version
    expected: bool  # requires-python admits it
    resolves: bool
    unpinned: list[str]  # installed yet not in the lock
    error: str  # pip's last lines when it did not resolve

    @property
    def ok(self) -> bool:
        return self.resolves == self.expected and not self.unpinned

    def __str__(self):
        verdict = "resolves" if self.resolves else "does not resolve"
        line = f"Python {self.python}: {verdict}; requires-python {'admits' if self.expected else 'excludes'} it"
        if self.unpinned:
            line += f"; installs packages the lock does not pin: {', '.join(self.unpinned)}"
        if self.resolves != self.expected and self.error:
            line += f" (pip: {self.error})"
        return line


def resolve(project: Project, python: Version, index_url: str) -> Outcome:
    """pip's dry-run of the requirements under the lock for `python`, as CPython on Linux x86_64."""
    expected = project.requires_python().contains(python)
    with tempfile.TemporaryDirectory() as scratch:
        report, wanted = Path(scratch, "report.json"), Path(scratch, "requirements.txt")
        wanted.write_text("\n".join(project.requirements()) + "\n")
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
                   "--disable-pip-version-check", "--no-cache-dir", "--only-binary=:all:", "--implementation", "cp",
                   "--python-version", str(python), *(f"--platform={p}" for p in PLATFORMS),
                   "--index-url", index_url, "--constraint", str(project.lock), "--requirement", str(wanted),
                   "--report", str(report)]
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=_pip_environment())
        if done.returncode != 0:
            return Outcome(python, expected, False, [], _reason(done.stdout))
        installed = json.loads(report.read_text())["install"]
    unpinned = sorted({canonicalize_name(item["metadata"]["name"]) for item in installed} - set(project.pins()))
    return Outcome(python, expected, True, unpinned, "")


def _reason(output: str) -> str:
    """Why pip could not resolve, in one line: the packages with no fitting wheel, or its first error."""
    lines = output.splitlines()
    for at, line in enumerate(lines):
        if "no matching distributions available for your environment" in line:
            names = [name.strip() for name in itertools.takewhile(str.strip, lines[at + 1:])]
            return f"no wheel of the locked version fits: {', '.join(names)}"
    return next((line for line in lines if line.startswith("ERROR:")), lines[-1] if lines else "")


def _pip_environment() -> dict:
    """This environment without pip's settings: no machine-wide index, find-links or constraint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def check(project: Project, snapshot: dict, index_url: str, jobs: int = 2) -> list[Outcome]:
    """Every candidate Python, resolved `jobs` at a time."""
    versions = candidates(snapshot, project.requires_python())
    with ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(lambda python: resolve(project, python, index_url), versions))


def stale(project: Project, snapshot: dict) -> list[str]:
    """The lock's pins that the snapshot does not hold at the same version."""
    held = {name: entry["version"] for name, entry in snapshot["projects"].items()}
    return [f"{name}=={version} (snapshot: {held.get(name, 'absent')})"
            for name, version in project.pins().items() if held.get(name) != version]


def write_index(snapshot: dict, root: Path) -> str:
    """A PEP 503 index of the snapshot under `root`, each wheel's core metadata beside its name
    (PEP 658), so that a dry-run never needs the wheels themselves. Returns its file:// URL."""
    for name, project in snapshot["projects"].items():
        folder = root / name
        folder.mkdir(parents=True)
        anchors = []
        for wheel in project["files"]:
            (folder / f"{wheel['filename']}.metadata").write_text(snapshot["metadata"][wheel["metadata"]])
            requires = html.escape(wheel["requires_python"] or "", quote=True)
            anchors.append(f'<a href="{wheel["filename"]}" data-requires-python="{requires}" '
                           f'data-core-metadata="true" data-dist-info-metadata="true">{wheel["filename"]}</a>')
        (folder / "index.html").write_text("<!DOCTYPE html><html><body>\n" + "\n".join(anchors) + "\n</body></html>\n")
    return root.as_uri() + "/"


# --- refreshing the snapshot from PyPI (network) -------------------------------------------

def refresh(project: Project, jobs: int = 8) -> dict:
    """Read every pinned version's wheels and their core metadata from PyPI."""
    pinned = project.pins()
    with ThreadPoolExecutor(jobs) as pool:
        listed = dict(zip(pinned, pool.map(lambda item: _wheels(*item), pinned.items())))
        urls = {wheel["url"] for files in listed.values() for wheel in files}
        texts = dict(zip(urls, pool.map(_metadata, urls)))
    snapshot = {"source": PYPI, "projects": {}, "metadata": {}}
    for name, files in sorted(listed.items()):
        for wheel in files:
            text = texts[wheel.pop("url")]
            key = wheel["metadata"] = hashlib.sha256(text.encode()).hexdigest()[:12]
            snapshot["metadata"][key] = text
        snapshot["projects"][name] = {"version": pinned[name], "files": files}
    return snapshot


def _wheels(name: str, version: str) -> list[dict]:
    """`name==version`'s wheels on PyPI that a CPython on Linux x86_64 could take."""
    request = urllib.request.Request(f"{PYPI}{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        files = json.load(answer)["files"]
    found = []
    for file in files:
        if not file["filename"].endswith(".whl") or file.get("yanked"):
            continue
        _, wheel_version, _, tags = parse_wheel_filename(file["filename"])
        if wheel_version == Version(version) and any(_linux_x86_64(tag.platform) for tag in tags):
            found.append({"filename": file["filename"], "requires_python": file.get("requires-python"),
                          "url": file["url"]})
    if not found:
        raise SystemExit(f"{name}=={version}: no Linux x86_64 or pure-Python wheel on PyPI")
    return sorted(found, key=lambda wheel: wheel["filename"])


def _linux_x86_64(platform: str) -> bool:
    return platform == "any" or (platform.startswith("manylinux") and platform.endswith("_x86_64"))


def _metadata(url: str) -> str:
    """A wheel's core metadata, cut to the fields a resolver reads. PyPI's mirrors do not all
    serve PEP 658 files, so it is read from the wheel itself with HTTP range requests."""
    with zipfile.ZipFile(io.BufferedReader(_RemoteFile(url), buffer_size=1 << 18)) as wheel:
        member = next(name for name in wheel.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", name))
        message = email.parser.Parser().parsestr(wheel.read(member).decode(), headersonly=True)
    return "".join(f"{field}: {value}\n" for field in METADATA_FIELDS for value in message.get_all(field, []))


class _RemoteFile(io.RawIOBase):
    """Just enough of a read-only, seekable file over HTTP for zipfile: each read is one range request."""

    def __init__(self, url: str):
        self.url, self.position = url, 0
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=60) as answer:
            self.size = int(answer.headers["Content-Length"])

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.position = (offset, self.position + offset, self.size + offset)[whence]
        return self.position

    def readinto(self, buffer) -> int:
        end = min(self.position + len(buffer), self.size)
        if end <= self.position:
            return 0
        request = urllib.request.Request(self.url, headers={"Range": f"bytes={self.position}-{end - 1}"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            data = answer.read()
        buffer[:len(data)] = data
        self.position += len(data)
        return len(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--pypi", action="store_true", help="resolve against PyPI instead of the snapshot")
    source.add_argument("--refresh", action="store_true", help="rewrite the snapshot from PyPI, then check")
    args = parser.parse_args(argv)
    project = Project()
    if args.refresh:
        SNAPSHOT.write_text(json.dumps(refresh(project), indent=1, sort_keys=True) + "\n")
    snapshot = json.loads(SNAPSHOT.read_text())
    if not args.pypi and (missing := stale(project, snapshot)):
        print(f"{SNAPSHOT.name} is older than the lock: {', '.join(missing)}; "
              f"run python tools/lock_pythons.py --refresh (needs PyPI)")
        return 1
    with tempfile.TemporaryDirectory() as root:
        outcomes = check(project, snapshot, PYPI if args.pypi else write_index(snapshot, Path(root)))
    for outcome in outcomes:
        print(("ok    " if outcome.ok else "WRONG ") + str(outcome))
    return 0 if all(outcome.ok for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
