"""`./vp book` executes notebooks offline and renders them, figures embedded, with an index."""
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).parents[1]


def test_book_renders_an_executed_notebook_with_its_figure(tmp_path):
    if not (Path(sys.prefix) / ".vp-installed").exists():
        pytest.skip("runs inside the environment that ./vp built (./vp test)")
    notebook = tmp_path / "figure.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import matplotlib.pyplot as plt, vp_utils\ncfg = vp_utils.setup()\nplt.plot([3, 1, 2]); plt.show()\n"
        "print('answer', 6 * 7)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, notebook)
    nbformat.write(nb, tmp_path / "again.ipynb")
    out = tmp_path / "book"
    for built in (notebook, tmp_path / "again.ipynb"):  # one at a time, as when one chapter is rebuilt
        done = subprocess.run(["bash", str(REPO / "vp"), "book", str(built)], capture_output=True, text=True,
                              timeout=300, env={**os.environ, "VP_VENV": sys.prefix, "VP_BOOK_DIR": str(out)})
        assert done.returncode == 0, done.stderr[-2000:]
    page = (out / "figure.html").read_text()
    assert "answer 42" in page and "data:image/png;base64" in page
    index = (out / "index.html").read_text()
    assert 'href="figure.html"' in index and 'href="again.html"' in index  # rebuilding one keeps the other
