"""tools/benchmark.py, quickly: its recipe timing and table, its notebook-to-script converter and the
one line it says where no Jupyter kernel can run the notebooks. The benchmark itself is run by hand."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import benchmark  # noqa: E402


def test_the_recipe_part_prints_a_markdown_table_headed_by_the_machine(capsys):
    benchmark.main(["--skip-notebooks", "--recipes", "mae", "--steps", "2", "--batch-size", "4", "--workers", "0"])
    out = capsys.readouterr().out
    assert out.startswith(f"Machine: {benchmark.cpu_model()}, ") and "cores; GPU: " in out and "torch 2." in out
    row = next(line for line in out.splitlines() if line.startswith("| mae |")).strip("|").split("|")
    name, batch, workers, ms, share = (cell.strip() for cell in row)
    assert (batch, workers) == ("4", "0") and float(ms) > 0 and 0 <= float(share.rstrip("%")) <= 100


def test_time_recipe_leaves_the_first_step_out():
    timing = benchmark.time_recipe("mae", steps=2, batch_size=4, workers=0)
    assert timing["workers"] == 0 and timing["ms"] > 0 and 0 <= timing["data_share"] < 1


def test_a_notebook_becomes_a_script_that_compiles():
    path = benchmark.pick_notebooks("01")[0]
    script = benchmark.notebook_script(path)
    compile(script, path.name, "exec")
    code = [cell for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"]
    assert script.startswith("# In[1]:\n" + "".join(code[0]["source"])) and f"# In[{len(code)}]:" in script
    assert not any("".join(cell["source"]) in script for cell in json.loads(path.read_text())["cells"]
                   if cell["cell_type"] == "markdown")


def _notebook(path, *cells):
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": source} for source in cells],
                                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_ipython_lines_become_comments_and_a_failing_script_names_its_error(tmp_path):
    path = _notebook(tmp_path / "t.ipynb", "%matplotlib inline\n!pip list\nx = 1", "assert x == 2, 'x is not 2'")
    assert "# %matplotlib inline\n# !pip list\nx = 1" in benchmark.notebook_script(path)
    seconds, result = benchmark.run_notebook(path, "script", timeout=60)
    assert seconds > 0 and result == "failed: AssertionError: x is not 2"
    offline_and_importable = ("import os, importlib.util\n"
                              "assert os.environ['VP_SCALE'] == 'small' and os.environ['VP_OFFLINE'] == '1'\n"
                              "assert os.environ['MPLBACKEND'] == 'Agg' and importlib.util.find_spec('vp_utils')")
    assert benchmark.run_notebook(_notebook(tmp_path / "ok.ipynb", offline_and_importable), "script", 60)[1] == "ok"


def test_without_nbclient_or_ipykernel_the_notebooks_run_as_scripts_said_in_one_line(monkeypatch):
    said = []
    monkeypatch.setattr(benchmark, "kernel_available", lambda: False)
    assert benchmark.pick_runner(said.append) == "script"
    assert len(said) == 1 and "\n" not in said[0] and "not installed" in said[0]


@pytest.mark.parametrize("argv, message", [(["--notebooks", "99"], "--notebooks: no notebook '99'"),
                                           (["--recipes", "mae,nope"], "--recipes: no recipe 'nope'")])
def test_an_unknown_notebook_or_recipe_is_one_error_line(capsys, argv, message):
    with pytest.raises(SystemExit) as leave:
        benchmark.parse_args(argv)
    assert leave.value.code == 2 and message in capsys.readouterr().err


def test_notebooks_are_picked_by_number_in_path_order():
    assert [path.stem[:2] for path in benchmark.pick_notebooks("03,01")] == ["01", "03"]
