import json
import math
import re
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from vp_utils.lab import ExerciseMismatch, self_check
from vp_utils.models.mae import random_masking
from vp_utils.objectives import info_nce, teacher_targets


def by_hand_attention(q, k, v):
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ v


@pytest.fixture
def qkv():
    torch.manual_seed(0)
    return torch.randn(3, 2, 4, 9, 8).unbind(0)


def test_a_right_answer_passes(qkv, capsys):
    assert self_check("mine", {"mine": by_hand_attention}, F.scaled_dot_product_attention, *qkv) is True
    assert "self-check passed: mine agrees with" in capsys.readouterr().out


def test_a_missing_answer_says_what_to_do(qkv, capsys):
    assert self_check("mine", {}, F.scaled_dot_product_attention, *qkv) is None
    assert "mine is not defined yet" in capsys.readouterr().out


def test_a_wrong_answer_says_by_how_much(qkv):
    no_scaling = lambda q, k, v: torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v  # noqa: E731
    with pytest.raises(ExerciseMismatch, match=r"mine's output differs from the package's by up to [0-9.]+"):
        self_check("mine", {"mine": no_scaling}, F.scaled_dot_product_attention, *qkv)


def test_a_wrong_shape_or_count_is_named(qkv):
    with pytest.raises(ExerciseMismatch, match=r"shape \(2, 4, 9\), the package's \(2, 4, 9, 8\)"):
        self_check("mine", {"mine": lambda q, k, v: by_hand_attention(q, k, v).sum(-1)},
                   F.scaled_dot_product_attention, *qkv)
    with pytest.raises(ExerciseMismatch, match="returned 1 output"):
        self_check("mine", {"mine": lambda t, n: t}, lambda t, n: random_masking(t, 0.75, noise=n)[:2],
                   torch.randn(2, 8, 4), torch.rand(2, 8))


def test_nan_never_passes(qkv):
    with pytest.raises(ExerciseMismatch, match="nan"):
        self_check("mine", {"mine": lambda q, k, v: torch.full_like(q, float("nan"))}, F.scaled_dot_product_attention,
                   *qkv)


def test_bad_calls_are_refused(qkv):
    with pytest.raises(ValueError, match="function name"):
        self_check("my attention", {}, F.scaled_dot_product_attention, *qkv)
    with pytest.raises(TypeError, match="must be a function"):
        self_check("mine", {"mine": 3}, F.scaled_dot_product_attention, *qkv)
    with pytest.raises(TypeError, match="reference must be callable"):
        self_check("mine", {"mine": by_hand_attention}, None, *qkv)


NOTEBOOKS = Path(__file__).parents[1] / "notebooks"


def _solutions_and_checks(path):
    """The exercises' solution code (fenced blocks defining my_...) and the self-check cells."""
    cells = json.loads(path.read_text())["cells"]
    text = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    solutions = [textwrap.dedent(block) for block in re.findall(r"```python\n(.*?)```", text, re.S) if "def my_" in block]
    checks = ["".join(c["source"]) for c in cells if c["cell_type"] == "code" and "self_check(" in "".join(c["source"])]
    return solutions, checks


@pytest.mark.parametrize("name", ["02_vit", "03_mae", "04_contrastive", "06_dino"])
def test_each_notebooks_solution_passes_its_self_check_cell(name, capsys):
    """Run the notebook's own self-check cell, first before the learner has written anything, then
    after the solution the exercise gives: it must say what to do, then pass."""
    solutions, checks = _solutions_and_checks(NOTEBOOKS / f"{name}.ipynb")
    assert len(solutions) == 1 and len(checks) == 1, (len(solutions), len(checks))
    namespace = {"torch": torch, "F": F, "math": math, "self_check": self_check, "cfg": SimpleNamespace(seed=0), "K": 256,
                 "random_masking": random_masking, "info_nce": info_nce, "teacher_targets": teacher_targets}
    exec(checks[0], namespace)
    assert "is not defined yet" in capsys.readouterr().out
    exec(solutions[0], namespace)
    exec(checks[0], namespace)
    assert "self-check passed" in capsys.readouterr().out
