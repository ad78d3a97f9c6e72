"""Every run time the project states comes from the seed sweep's table: each notebook's header and
its README row say what docs/claims.json measured."""
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
sys.path.insert(0, str(REPO / "tools"))
import claims_sweep  # noqa: E402
import run_times  # noqa: E402

TABLE = json.loads((REPO / "docs" / "claims.json").read_text())


def _first_cell(notebook: Path) -> str:
    return "".join(json.loads(notebook.read_text())["cells"][0]["source"])


@pytest.mark.parametrize("name", sorted(TABLE))
def test_header_and_readme_state_the_sweeps_time(name):
    entry = TABLE[name]
    assert run_times.header_paragraph(_first_cell(REPO / "notebooks" / name)) == run_times.header(entry)
    assert run_times.readme_time((REPO / "README.md").read_text(), name[:2]) == run_times.run_time(entry)


def test_every_notebook_is_in_the_table():
    assert sorted(TABLE) == sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))


def test_writing_the_header_keeps_the_code_version(tmp_path):
    name = "10_zero_shot.ipynb"
    copy = tmp_path / name
    text = (REPO / "notebooks" / name).read_text()
    copy.write_text(text.replace(run_times.HEADER_START, run_times.HEADER_START + " 99 hours, stale.", 1))
    entry = {"runs": {"0": {"seconds": 60.0}, "1": {"seconds": 150.0}}}
    run_times.write_header(copy, entry)
    assert run_times.header_paragraph(_first_cell(copy)) == run_times.header(entry)
    assert "1.0–2.5 min per run" in run_times.header(entry)
    assert claims_sweep.notebook_version(copy) == claims_sweep.notebook_version(REPO / "notebooks" / name)


def test_a_notebook_without_a_run_time_paragraph_is_named(tmp_path):
    book = json.loads((REPO / "notebooks" / "10_zero_shot.ipynb").read_text())
    book["cells"][0]["source"] = ["# no header here\n"]
    path = tmp_path / "10_zero_shot.ipynb"
    path.write_text(json.dumps(book))
    with pytest.raises(ValueError, match="10_zero_shot.ipynb: its first cell has no paragraph"):
        run_times.write_header(path, {"runs": {"0": {"seconds": 60.0}}})


def test_seeds_are_listed_as_ranges():
    assert run_times.seed_list(["0", "1", "2", "3", "4"]) == "0–4"
    assert run_times.seed_list(["0", "1", "2", "3", "4", "101"]) == "0–4, 101"
    assert run_times.seed_list(["3", "7", "8"]) == "3, 7–8"
