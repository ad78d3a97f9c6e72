"""Drive notebooks in a real JupyterLab through headless Chromium, the way a learner uses them.

nbval runs no JavaScript, so only a browser can tell whether moving a slider really redraws a
figure. This module starts JupyterLab on loopback over a copy of the notebooks, opens one in
Debian's Chromium through Playwright, runs every cell, moves the first explorer's control and
reports whether the figure changed, keeping a screenshot of each step.
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ALL_CELLS_DONE = """() => {
  const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
  return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""


def find_chromium() -> str | None:
    return next(filter(None, (shutil.which(name) for name in ("chromium", "chromium-browser"))), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server on loopback over `root`, stopped by `close()`."""

    def __init__(self, root: Path, log: Path):
        self.token, self.port = secrets.token_hex(16), _free_port()
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

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


@dataclass
class WidgetCheck:
    notebook: str
    control: str
    before: str
    after: str
    screenshots: list[Path]

    @property
    def changed(self) -> bool:
        return self.before != self.after


def check_first_explorer(browser, lab: Lab, notebook: str, shots: Path, run_timeout_s: float) -> WidgetCheck:
    """Open `notebook`, run all cells, nudge the first explorer's first control, compare figures."""
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
        page.wait_for_function(ALL_CELLS_DONE, timeout=run_timeout_s * 1000, polling=2000)
        explorer = page.locator(".widget-interact").first
        explorer.scroll_into_view_if_needed()
        before = _figure(explorer)
        shot("explorer_before", explorer)
        control = _nudge_first_control(explorer)
        after = _wait_for_new_figure(explorer, before, timeout_s=45)
        shot("explorer_after", explorer)
        return WidgetCheck(notebook, control, before, after, taken)
    finally:
        page.close()


def _accept_kernel_dialog(page) -> None:
    """JupyterLab may ask which kernel to use even when the notebook names one: take its choice."""
    accept = page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept")
    try:
        accept.wait_for(state="visible", timeout=15_000)
    except Exception:  # no dialog this time
        return
    accept.click()


def _figure(explorer) -> str:
    """The explorer's current picture (the data URL of its output image), or '' if none yet."""
    image = explorer.locator(".jp-OutputArea-output img").last
    return image.get_attribute("src") if image.count() else ""


def _nudge_first_control(explorer) -> str:
    """Move a slider one step right with the keyboard, or type into a text box; return what moved."""
    handle = explorer.locator(".noUi-handle").first
    if handle.count():
        handle.focus()
        handle.press("ArrowRight")
        return "slider"
    box = explorer.locator("input[type='text'], textarea").first
    box.fill((box.input_value() or "") + " x")
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
