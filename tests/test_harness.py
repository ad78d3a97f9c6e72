"""The test harness itself: a notebook's cells share one kernel, so they must stay on one worker."""
import subprocess
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).parents[1]


def test_a_notebook_runs_whole_on_one_worker():
    chained = [nbformat.v4.new_code_cell("x0 = 0")] + [
        nbformat.v4.new_code_cell(f"x{i} = x{i - 1} + 1  # needs the cell before, in the same kernel")
        for i in range(1, 8)]
    nb = nbformat.v4.new_notebook(cells=chained)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebooks = REPO / "artifacts" / "harness"  # inside the repo, so its conftest.py applies; git-ignored
    notebooks.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, notebooks / "chain.ipynb")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", str(notebooks / "chain.ipynb")],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert "8 passed" in done.stdout, done.stdout[-2000:]
