import json
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs_or_execution_counts(path):
    cells = json.loads(path.read_text())["cells"]
    dirty = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_calls_setup(path):
    code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert "vp_utils.setup(" in "".join(code[0]["source"])


def _install_hint(path):
    """The first code cell's opening paragraph: the guard around `import vp_utils`."""
    code = next(c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    return "".join(code["source"]).split("\n\n")[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
@pytest.mark.parametrize("where", ["notebooks", "beside a clone", "nowhere"])
def test_first_code_cell_says_how_to_install_vp_utils(path, where, tmp_path):
    """Where vp_utils cannot be imported (a hosted kernel), the first cell names the one command
    that installs it: from notebooks/ of a checkout, the checkout; beside a clone called vision-path,
    the clone; with neither, it first says to get the repository into that folder."""
    cwd = path.parent if where == "notebooks" else tmp_path
    if where == "beside a clone":
        (tmp_path / "vision-path").mkdir()
        (tmp_path / "vision-path" / "pyproject.toml").write_text("")
    script = "import sys\nsys.modules['vp_utils'] = None\n" + _install_hint(path)
    result = subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: vp_utils is not installed"), result.stderr
    folder = ".." if where == "notebooks" else "vision-path"
    assert f"%pip install -e {folder} " in last and "constraints.txt" in last and "Restart session" in last
    assert ("First put this repository in a folder vision-path" in last) == (where == "nowhere")
