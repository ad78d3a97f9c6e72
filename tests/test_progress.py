"""Progress bars: live where someone watches, one closing line in a headless notebook run."""
import nbformat
from nbclient import NotebookClient
from tqdm.auto import tqdm

from vp_utils.lab.progress import ClosingLine, progress_bar

FIT_THREE_STEPS = """
import torch
from vp_utils.training.loop import fit
model = torch.nn.Linear(2, 2)
data = iter([(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]))] * 3)
fit(model, data, torch.optim.SGD(model.parameters(), lr=0.1), 3, desc="toy");
"""


def _outputs_of(source: str) -> str:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    return "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in nb.cells[0].outputs)


def test_a_headless_notebook_run_prints_one_closing_line_instead_of_a_frozen_bar(monkeypatch):
    monkeypatch.setenv("VP_STATIC", "1")  # the kernel inherits it
    text = _outputs_of(FIT_THREE_STEPS)
    assert "toy: 3 steps in" in text and ", loss " in text, text
    assert "0%" not in text, text


def test_outside_a_notebook_kernel_the_bar_is_tqdms(monkeypatch):
    monkeypatch.setenv("VP_STATIC", "1")
    assert isinstance(progress_bar(range(3), "x"), tqdm)


def test_the_closing_line_counts_what_ran_and_prints_once(capsys):
    line = ClosingLine(range(5), "demo")
    for _ in zip(line, range(2)):  # the data ran out first, as in fit's zip
        line.set_postfix(loss="0.500")
    line.close()
    line.close()
    assert capsys.readouterr().out.strip().splitlines() == ["demo: 2 steps in 0 s, loss 0.500"]
    quiet = ClosingLine(range(2), "quiet", disable=True)
    list(quiet)
    assert capsys.readouterr().out == ""
