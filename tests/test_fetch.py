"""Fetching pretrained weights ahead: the notebooks' names, a line per name, offline in one line."""
import json
import re
from pathlib import Path

import pytest
from huggingface_hub import constants

from vp_utils import pretrained as weights
from vp_utils.pretrained import NOTEBOOK_WEIGHTS, fetch, hub_folder, main

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _code(path: Path) -> str:
    return "\n".join("".join(cell["source"]) for cell in json.loads(path.read_text())["cells"]
                     if cell["cell_type"] == "code")


def test_the_default_names_are_the_ones_the_notebooks_load():
    code = "\n".join(_code(path) for path in sorted(NOTEBOOKS.glob("*.ipynb")))
    named = re.findall(r"\bpretrained\(\s*[\"']([^\"']+)[\"']\s*\)", code)
    assert len(named) == len(re.findall(r"\bpretrained\(", code)), "a pretrained call whose name is not a literal"
    assert sorted(set(named)) == sorted(NOTEBOOK_WEIGHTS)


@pytest.fixture
def cache(monkeypatch, tmp_path):
    """An empty Hugging Face cache (what HF_HOME points to, read at each download)."""
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    return tmp_path


def test_offline_each_name_is_one_line_and_the_command_fails(cache, capsys, caplog):
    assert main(["fetch", "resnet50", "ViT-B-32"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["resnet50", "ViT-B-32"]
    assert all("hub is unreachable" in line and line.endswith("not fetched") for line in lines)
    assert caplog.records == []  # open_clip's own log lines about the failed download are held back


def test_each_fetched_name_is_printed_with_its_size_and_folder(cache, monkeypatch, capsys):
    def download(name):  # what the hub leaves in the cache: a blob and a link to it
        folder = hub_folder(name)
        (folder / "blobs").mkdir(parents=True)
        (folder / "blobs" / "abc").write_bytes(bytes(2_000_000))
        (folder / "snapshots").mkdir()
        (folder / "snapshots" / "model.safetensors").symlink_to(folder / "blobs" / "abc")

    monkeypatch.setattr(weights, "_reference_with_weights", download)
    assert fetch(["resnet50", "ViT-B-32"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"resnet50: 2 MB in {cache / 'models--timm--resnet50.a1_in1k'}",
        f"ViT-B-32: 2 MB in {cache / 'models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K'}"]


def test_an_unknown_name_is_refused_before_any_download(cache, monkeypatch, capsys):
    monkeypatch.setattr(weights, "_reference_with_weights", pytest.fail)
    with pytest.raises(ValueError, match="no pretrained weights known for 'resnet7'"):
        fetch(["resnet50", "resnet7"])
    with pytest.raises(TypeError, match="names must be a list of strings"):
        fetch("resnet50")
    with pytest.raises(SystemExit):
        main(["fetch", "resnet7"])
    assert "no pretrained weights known for 'resnet7'" in capsys.readouterr().err
