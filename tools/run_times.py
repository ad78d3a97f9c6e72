"""Run times from one measured source: the seed sweep's wall time per run (docs/claims.json).

The sweep runs each notebook at every seed on one thread, two notebooks at a time on a 2-core
machine, so its range is an upper bound for a laptop. `./vp claims` writes that range into the
notebook's header ("**Run time:** ...") and into the README's learning-path table; both are
markdown, so writing them leaves the notebook's code version unchanged. tests/test_run_times.py
fails when either disagrees with the table.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
TABLE_JSON = REPO / "docs" / "claims.json"
HEADER_START = "**Run time:**"


def run_time(entry: dict) -> str:
    """'2.0–3.6 min': the fastest and slowest run of one notebook's sweep entry."""
    minutes = [run["seconds"] / 60 for run in entry["runs"].values()]
    low, high = f"{min(minutes):.1f}", f"{max(minutes):.1f}"
    return f"{low} min" if low == high else f"{low}–{high} min"


def seed_list(seeds) -> str:
    """'0–4, 101' for seeds 0, 1, 2, 3, 4 and 101: runs of consecutive seeds as ranges."""
    numbers, parts = sorted(int(s) for s in seeds), []
    for n in numbers:
        if parts and n == parts[-1][1] + 1:
            parts[-1][1] = n
        else:
            parts.append([n, n])
    return ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in parts)


def header(entry: dict) -> str:
    """The header paragraph a notebook's first cell carries."""
    return (f"{HEADER_START} {run_time(entry)} per run at `VP_SCALE=small`, measured by the seed sweep "
            f"(seeds {seed_list(entry['runs'])}, one CPU thread per run, two runs at a time on 2 cores; "
            f"[docs/claims.md](../docs/claims.md)). An upper bound: a laptop with idle cores is faster.")


def header_paragraph(first_cell: str) -> str | None:
    """The paragraph of a first cell that starts with the run-time label, or None."""
    match = re.search(rf"^{re.escape(HEADER_START)}.*?(?=\n\s*\n|\Z)", first_cell, flags=re.M | re.S)
    return match.group(0) if match else None


def write_header(notebook: Path, entry: dict) -> None:
    """Replace the run-time paragraph of the notebook's first cell (which must have one)."""
    text = notebook.read_text()
    book = json.loads(text)
    cell = book["cells"][0]
    source = "".join(cell["source"])
    old = header_paragraph(source)
    if old is None:
        raise ValueError(f"{notebook.name}: its first cell has no paragraph starting {HEADER_START!r}")
    cell["source"] = source.replace(old, header(entry)).splitlines(keepends=True)
    notebook.write_text(json.dumps(book, indent=1, ensure_ascii=False) + "\n")


def readme_row(readme: str, number: str) -> str:
    """The learning-path table's row for notebook `number` ('05')."""
    rows = [line for line in readme.splitlines() if line.startswith(f"| {number} | [")]
    if len(rows) != 1:
        raise ValueError(f"README: expected one learning-path row for notebook {number}, found {len(rows)}")
    return rows[0]


def readme_time(readme: str, number: str) -> str:
    """The time column (the last) of notebook `number`'s row."""
    return readme_row(readme, number).rstrip(" |").rsplit("|", 1)[1].strip()


def write_readme(name: str, entry: dict) -> None:
    """Put the notebook's sweep range into its README row's time column."""
    readme = README.read_text()
    row = readme_row(readme, name[:2])
    new = row.rstrip(" |").rsplit("|", 1)[0] + f"| {run_time(entry)} |"
    README.write_text(readme.replace(row, new))


def write_all(name: str, entry: dict, notebooks: Path = REPO / "notebooks") -> None:
    """Both places that state a notebook's run time, from its sweep entry."""
    write_header(notebooks / name, entry)
    write_readme(name, entry)
