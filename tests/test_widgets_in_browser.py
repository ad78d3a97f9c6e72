"""Every notebook with an explorer, run in JupyterLab in headless Chromium: all its cells must run
without error, and moving its explorer's control must change the figure. This run is that
notebook's execution test (conftest.py then skips its nbval twin). Screenshots of each step
land in artifacts/browser/ (git-ignored)."""
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from lab_session import CHROMIUM_FLAGS, Lab, browser_missing, find_chromium, run_in_lab

REPO = Path(__file__).parents[1]
SHOTS = REPO / "artifacts" / "browser"
WITH_EXPLORERS = [p.name for p in sorted((REPO / "notebooks").glob("*.ipynb"))
                  if any("explore(" in "".join(c["source"]) for c in json.loads(p.read_text())["cells"]
                         if c["cell_type"] == "code")]

pytestmark = pytest.mark.browser


def _probe_notebook(path: Path, draw_body: str, before: str = "") -> None:
    """A small notebook with one explorer whose callback body we choose, after an optional cell."""
    explorer = nbformat.v4.new_code_cell(
        "import ipywidgets as w, matplotlib.pyplot as plt\nimport vp_utils\n"
        "from vp_utils.lab.explorers import explore\ncfg = vp_utils.setup()\n"
        f"def draw(n):\n    plt.figure(figsize=(3, 2))\n    {draw_body}\n"
        "explore(draw, n=w.IntSlider(2, min=1, max=9))")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(before), explorer] if before else [explorer])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    if missing := browser_missing():
        pytest.skip(f"widgets untested in JupyterLab, their notebooks run under nbval instead: {missing}")
    from playwright import sync_api
    root = tmp_path_factory.mktemp("lab")
    for name in WITH_EXPLORERS:  # a copy: the lab's autosave must not touch the repo's notebooks
        shutil.copy(REPO / "notebooks" / name, root / name)
    _probe_notebook(root / "probe_live.ipynb", "plt.plot(range(n))")
    _probe_notebook(root / "probe_dead.ipynb", "plt.plot(range(2))  # ignores n: a dead callback")
    _probe_notebook(root / "probe_broken.ipynb", "plt.plot(range(n))", before="assert 1 + 1 == 3, 'broken on purpose'")
    lab = Lab(root, root / "lab.log")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_FLAGS)
        yield browser, lab
        browser.close()
    lab.close()


def test_the_check_catches_a_dead_callback_and_a_failing_cell(session):
    browser, lab = session
    live = run_in_lab(browser, lab, "probe_live.ipynb", SHOTS, run_timeout_s=120)
    dead = run_in_lab(browser, lab, "probe_dead.ipynb", SHOTS, run_timeout_s=120)
    broken = run_in_lab(browser, lab, "probe_broken.ipynb", SHOTS, run_timeout_s=120)
    assert not live.errors and live.before and live.changed, "a working explorer must redraw"
    assert not dead.errors and dead.before and not dead.changed, "an explorer that ignores its control must be caught"
    assert any("broken on purpose" in e for e in broken.errors), broken.errors
    assert any("never ran" in e for e in broken.errors), "the cells after a failure must be reported"


def test_some_notebooks_have_explorers():
    assert WITH_EXPLORERS


# one xdist group per notebook, so the JupyterLab runs are shared between both workers
@pytest.mark.parametrize("notebook", [pytest.param(nb, marks=pytest.mark.xdist_group(nb)) for nb in WITH_EXPLORERS])
def test_notebook_runs_and_its_explorer_redraws_in_jupyterlab(session, notebook):
    browser, lab = session
    result = run_in_lab(browser, lab, notebook, SHOTS, run_timeout_s=1800)
    assert not result.errors, f"{notebook} failed in JupyterLab:\n" + "\n".join(result.errors)
    assert result.before, f"{notebook}: the explorer drew no figure"
    assert result.changed, f"{notebook}: moving the {result.control} did not change the figure"
