"""Every notebook explorer, driven in JupyterLab in headless Chromium: moving its control must
change its figure. Screenshots of each step land in artifacts/browser/ (git-ignored)."""
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from lab_session import CHROMIUM_FLAGS, Lab, check_first_explorer, find_chromium

REPO = Path(__file__).parents[1]
SHOTS = REPO / "artifacts" / "browser"
WITH_EXPLORERS = [p.name for p in sorted((REPO / "notebooks").glob("*.ipynb"))
                  if any("explore(" in "".join(c["source"]) for c in json.loads(p.read_text())["cells"]
                         if c["cell_type"] == "code")]

pytestmark = pytest.mark.browser


def _probe_notebook(path: Path, draw_body: str) -> None:
    """A two-cell notebook with one explorer whose callback body we choose."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import ipywidgets as w, matplotlib.pyplot as plt\nimport vp_utils\n"
        "from vp_utils.widgets import explore\ncfg = vp_utils.setup()\n"
        f"def draw(n):\n    plt.figure(figsize=(3, 2))\n    {draw_body}\n"
        "explore(draw, n=w.IntSlider(2, min=1, max=9))")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    playwright = pytest.importorskip("playwright.sync_api")
    root = tmp_path_factory.mktemp("lab")
    for name in WITH_EXPLORERS:  # a copy: the lab's autosave must not touch the repo's notebooks
        shutil.copy(REPO / "notebooks" / name, root / name)
    _probe_notebook(root / "probe_live.ipynb", "plt.plot(range(n))")
    _probe_notebook(root / "probe_dead.ipynb", "plt.plot(range(2))  # ignores n: a dead callback")
    lab = Lab(root, root / "lab.log")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield browser, lab
        browser.close()
    lab.close()


def test_the_check_catches_a_dead_callback(session):
    browser, lab = session
    live = check_first_explorer(browser, lab, "probe_live.ipynb", SHOTS, run_timeout_s=120)
    dead = check_first_explorer(browser, lab, "probe_dead.ipynb", SHOTS, run_timeout_s=120)
    assert live.before and live.changed, "a working explorer must redraw"
    assert dead.before and not dead.changed, "an explorer that ignores its control must be caught"


def test_some_notebooks_have_explorers():
    assert WITH_EXPLORERS


@pytest.mark.parametrize("notebook", WITH_EXPLORERS)
def test_explorer_redraws_in_jupyterlab(session, notebook):
    browser, lab = session
    result = check_first_explorer(browser, lab, notebook, SHOTS, run_timeout_s=900)
    assert result.before, f"{notebook}: the explorer drew no figure"
    assert result.changed, f"{notebook}: moving the {result.control} did not change the figure"
