"""`./vp lab` starts JupyterLab over the whole repository, as root too, with the README and notebook 01
open and no news prompt. Checked through the server's API: no browser, nothing opened or saved."""
import json
import os
import secrets
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from lab_session import Lab, _free_port

REPO = Path(__file__).parents[1]
pytestmark = pytest.mark.xdist_group("lab")  # one server, on one test worker


class VpLab(Lab):
    """The server `./vp lab` starts, on a free loopback port, its workspace and runtime files in `tmp`."""

    def __init__(self, tmp: Path):
        self.root, self.token, self.port = REPO, secrets.token_hex(16), _free_port()
        env = {**os.environ, "VP_VENV": sys.prefix, "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
               "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces")}
        self._log = open(tmp / "lab.log", "w")
        self.process = subprocess.Popen(
            ["bash", str(REPO / "vp"), "lab", "--no-browser", f"--port={self.port}", "--ServerApp.ip=127.0.0.1",
             f"--IdentityProvider.token={self.token}"], env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_until_up(timeout=120)

    def get(self, path: str):
        request = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.load(reply)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not (Path(sys.prefix) / ".vp-installed").exists():
        pytest.skip("runs inside the environment that ./vp built (./vp test)")
    server = VpLab(tmp_path_factory.mktemp("lab"))
    yield server
    server.close()


def test_lab_serves_the_repository_root(lab):
    names = {item["name"] for item in lab.get("/api/contents")["content"]}
    assert {"README.md", "vp_utils", "data", "notebooks"} <= names


def test_lab_opens_the_readme_and_notebook_01_first(lab):
    layout = lab.get("/lab/api/workspaces/default")["data"]["layout-restorer:data"]["main"]
    assert layout["dock"]["widgets"] == ["markdownviewer-widget:README.md", "notebook:notebooks/01_resnet.ipynb"]
    assert layout["current"] == "markdownviewer-widget:README.md"


def test_lab_never_asks_to_fetch_news(lab):
    schema = lab.get("/lab/api/settings/@jupyterlab/apputils-extension:notification")["schema"]
    assert schema["properties"]["fetchNews"]["default"] == "false"
