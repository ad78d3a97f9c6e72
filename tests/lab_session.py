"""Drive notebooks in a real JupyterLab through headless Chromium, the way a learner uses them.

nbval runs no JavaScript, so only a browser can tell whether moving a slider really redraws a
figure. This module starts JupyterLab on loopback over a copy of the notebooks, opens one in
Debian's Chromium through Playwright, runs every cell (the notebook's execution test: its
errors are read back from the saved file), moves the first explorer's control and
reports whether the figure changed, keeping a screenshot of each step.
"""
from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUN_FINISHED = """() => {
  const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent);
  return prompts.some(p => /\\[\\d+\\]/.test(p)) && !prompts.some(p => p.includes('*'));
}"""


def find_chromium() -> str | None:
    return next(filter(None, (shutil.which(name) for name in ("chromium", "chromium-browser"))), None)


def browser_missing() -> str:
    """What keeps the JupyterLab tests from running here, '' when nothing: they need a Chromium
    binary and the playwright package."""
    missing = []
    if find_chromium() is None:
        missing.append("no chromium on PATH (apt-get install chromium; .ci/run installs it)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("no playwright package (pip install -e '.[test]')")
    return "; ".join(missing)


def browser_available() -> bool:
    return not browser_missing()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server on loopback over `root`, stopped by `close()`."""

    def __init__(self, root: Path, log: Path):
        self.root, self.token, self.port = root, secrets.token_hex(16), _free_port()
        env = {k: v for k, v in os.environ.items() if k != "VP_STATIC"}  # widgets are live here
        env["JUPYTER_RUNTIME_DIR"] = str(root / ".runtime")
        env["JUPYTERLAB_WORKSPACES_DIR"] = str(root / ".workspaces")  # no tabs restored from earlier runs
        self._log = open(log, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={self.port}",
             "--ServerApp.ip=127.0.0.1", "--allow-root", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={root}", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
             "jupyterlab.NeverCheckForUpdate"], env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_until_up(timeout=120)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_until_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.process.returncode}; see {self._log.name}")
            try:
                urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"JupyterLab did not answer within {timeout} s; see {self._log.name}")

    def shutdown_kernels(self) -> None:
        """Stop every kernel: a finished notebook's kernel would otherwise hold its memory until `close()`."""
        headers = {"Authorization": f"token {self.token}"}
        with urllib.request.urlopen(urllib.request.Request(f"{self.url}/api/kernels", headers=headers)) as reply:
            kernels = json.load(reply)
        for kernel in kernels:
            urllib.request.urlopen(urllib.request.Request(f"{self.url}/api/kernels/{kernel['id']}",
                                                          headers=headers, method="DELETE"))

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


@dataclass
class LabRun:
    """What one notebook did in JupyterLab: its failures, and its first explorer before and after a nudge."""
    notebook: str
    errors: list[str]
    control: str = ""
    before: str = ""
    after: str = ""
    screenshots: list[Path] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.before != self.after


def run_in_lab(browser, lab: Lab, notebook: str, shots: Path, run_timeout_s: float) -> LabRun:
    """Open `notebook`, run all cells, save it and collect its errors; then nudge the first explorer's
    first control and compare figures. This run doubles as the notebook's execution test."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    shots.mkdir(parents=True, exist_ok=True)
    taken = []

    def shot(step: str, target=None):
        path = shots / f"{Path(notebook).stem}_{len(taken)}_{step}.png"
        (target or page).screenshot(path=str(path))
        taken.append(path)

    try:
        page.goto(f"{lab.url}/lab/tree/{notebook}?reset&token={lab.token}")
        page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(state="visible", timeout=180_000)
        _accept_kernel_dialog(page)
        page.wait_for_selector("[data-status='idle']", timeout=180_000)  # the kernel is ready
        shot("opened")
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        page.click("li.lm-Menu-item[data-command='runmenu:run-all']")
        page.wait_for_function(RUN_FINISHED, timeout=run_timeout_s * 1000, polling=2000)
        run = LabRun(notebook, _saved_errors(page, lab.root / notebook), screenshots=taken)
        if run.errors:
            shot("failed")
            return run
        explorer = page.locator(".widget-interact").first
        explorer.scroll_into_view_if_needed()
        before = _figure(explorer)
        shot("explorer_before", explorer)
        control = _nudge_first_control(explorer)
        after = _wait_for_new_figure(explorer, before, timeout_s=45)
        shot("explorer_after", explorer)
        run.control, run.before, run.after = control, before, after
        return run
    finally:
        page.close()
        lab.shutdown_kernels()


def _accept_kernel_dialog(page) -> None:
    """JupyterLab may ask which kernel to use even when the notebook names one: take its choice."""
    accept = page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept")
    try:
        accept.wait_for(state="visible", timeout=15_000)
    except Exception:  # no dialog this time
        return
    accept.click()


def _saved_errors(page, path: Path, timeout_s: float = 60) -> list[str]:
    """Save the notebook and read it back: every error output and every code cell that never ran."""
    stamp = path.stat().st_mtime_ns
    page.click(".lm-MenuBar-itemLabel:text-is('File')")
    page.click("li.lm-Menu-item[data-command='docmanager:save']")
    notebook = _read_when_saved(path, stamp, timeout_s)
    cells = [c for c in notebook.cells if c.cell_type == "code" and c.source.strip()]
    errors = [f"cell {i}: {o.ename}: {o.evalue}" for i, c in enumerate(cells)
              for o in c.outputs if o.output_type == "error"]
    never_ran = [i for i, c in enumerate(cells) if c.execution_count is None]
    return errors + ([f"code cells {never_ran} never ran"] if never_ran else [])


def _read_when_saved(path: Path, stamp: int, timeout_s: float):
    """The notebook once the server has rewritten it. The server writes in place, so a read that
    lands mid-write sees a truncated file: retry until the new version parses whole."""
    deadline = time.monotonic() + timeout_s
    while True:
        if path.stat().st_mtime_ns != stamp:
            try:
                return nbformat.read(path, as_version=4)
            except nbformat.reader.NotJSONError:
                pass
        if time.monotonic() > deadline:
            return nbformat.read(path, as_version=4)  # not saved in time: check what is there
        time.sleep(0.5)


def _figure(explorer) -> str:
    """The explorer's current picture (the data URL of its output image), or '' if none yet."""
    image = explorer.locator(".jp-OutputArea-output img").last
    return image.get_attribute("src") if image.count() else ""


def _nudge_first_control(explorer) -> str:
    """Move a slider one step with the keyboard (left if it starts at its maximum), or edit a text
    box; return what moved."""
    handle = explorer.locator(".noUi-handle").first
    if handle.count():
        handle.focus()
        at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
        handle.press("ArrowLeft" if at_max else "ArrowRight")  # a slider that starts at its end moves back
        return "slider"
    box = explorer.locator("input[type='text'], textarea").first
    words = (box.input_value() or "").split()
    # drop the last word: the query stays within the explorer's vocabulary, so a new figure is drawn
    box.fill(" ".join(words[:-1]) if len(words) > 1 else " ".join(words + ["a"]))
    box.press("Enter")
    return "text box"


def _wait_for_new_figure(explorer, before: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    current = _figure(explorer)
    while time.monotonic() < deadline:
        current = _figure(explorer)
        if current and current != before:
            time.sleep(1.0)  # let a redraw that replaces the image twice settle
            return _figure(explorer)
        time.sleep(0.5)
    return current
