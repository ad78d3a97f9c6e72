"""`./vp book` builds the Jupyter Book: the README's introduction, every notebook a chapter in path
order, search, and cached execution. The test executes one short chapter (about 30 s on one thread)
and leaves the others without outputs, as `./vp book NOTEBOOK` does."""
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lab_session import CHROMIUM_FLAGS, browser_missing, find_chromium

REPO = Path(__file__).parents[1]
CHAPTERS = [f"notebooks/{nb.stem}" for nb in sorted(REPO.glob("notebooks/*.ipynb"))]
EXECUTED = "notebooks/10_zero_shot"  # the shortest chapter
pytestmark = pytest.mark.xdist_group("book")  # one build, on one test worker


def _build(out: Path, *notebooks: str) -> str:
    done = subprocess.run(["bash", str(REPO / "vp"), "book", *notebooks], capture_output=True, text=True,
                          timeout=900, env={**os.environ, "VP_VENV": sys.prefix, "VP_BOOK_DIR": str(out)})
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    if not (Path(sys.prefix) / ".vp-installed").exists():
        pytest.skip("runs inside the environment that ./vp built (./vp test)")
    if importlib.util.find_spec("jupyter_book") is None:
        pytest.skip("Jupyter Book is not installed: ./vp book (or ./vp test) installs it")
    out = tmp_path_factory.mktemp("book")
    log = _build(out, f"{EXECUTED}.ipynb")
    return out, log


def _page(out: Path, name: str) -> str:
    return (out / "_build" / "html" / f"{name}.html").read_text()


def _outputs(page: str) -> int:
    return page.count('class="cell_output')


def test_table_of_contents_lists_every_chapter_in_path_order(book):
    out, _ = book
    navigation = _page(out, "intro").split('bd-docs-nav')[1].split('</nav>')[0]
    linked = list(dict.fromkeys(re.findall(r'href="(notebooks/\d\d_\w+)\.html"', navigation)))
    assert linked == CHAPTERS and len(CHAPTERS) == 11


def test_search_index_holds_every_chapter(book):
    out, _ = book
    index = (out / "_build" / "html" / "searchindex.js").read_text()
    documents = json.loads(index[index.index("(") + 1:index.rindex(")")])["docnames"]
    assert set(CHAPTERS) <= set(documents)


def test_landing_page_is_the_readme_introduction(book):
    out, _ = book
    first_paragraph = (REPO / "README.md").read_text().split("\n\n")[1]
    page = _page(out, "intro")
    assert " ".join(first_paragraph.split()[:4]) in page and "The learning path" in page


def test_only_the_named_chapter_is_executed_with_its_figures(book):
    out, log = book
    assert re.findall(r"(\w+)\.ipynb: Executed notebook", log) == [Path(EXECUTED).name]
    page = _page(out, EXECUTED)
    assert _outputs(page) > 3 and '<img alt="../_images/' in page
    assert _outputs(_page(out, "notebooks/01_resnet")) == 0
    assert Path(EXECUTED).name in _page(out, "run_times")  # its run time is listed


def test_rebuild_takes_the_outputs_from_the_cache(book):
    out, _ = book
    shutil.rmtree(out / "_build" / ".doctrees")  # Sphinx re-reads every page, as after a change of config
    log = _build(out, f"{EXECUTED}.ipynb")
    assert "Executing notebook" not in log
    assert re.search(rf"{Path(EXECUTED).name}\.ipynb: Using cached notebook", log)
    assert _outputs(_page(out, EXECUTED)) > 3


def test_the_executed_chapter_shows_its_figures_in_chromium(book):
    if missing := browser_missing():
        pytest.skip(f"the built book is not opened in a browser: {missing}")
    from playwright import sync_api
    out, _ = book
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_FLAGS)
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto((out / "_build" / "html" / f"{EXECUTED}.html").as_uri(), wait_until="load")
        images = page.eval_on_selector_all("img", "all => all.map(i => [i.src, i.complete ? i.naturalWidth : 0])")
        chapters = page.eval_on_selector_all("nav.bd-docs-nav a", "all => all.map(a => a.textContent.trim())")
        browser.close()
    figures = [(src, width) for src, width in images if "/_images/" in src]
    assert len(figures) >= 3 and all(width > 0 for _, width in figures), figures  # every figure decoded and drawn
    assert len(chapters) >= 11 and not errors, (chapters, errors)
