"""Self-checks for the exercises where a learner writes a piece of a model or a loss by hand:
their function and the package's run on the same inputs, and a mismatch says what differs.

    self_check("my_attention", globals(), F.scaled_dot_product_attention, q, k, v)
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import torch


class ExerciseMismatch(AssertionError):
    """The learner's function disagrees with the package's; the message says where and by how much."""


def self_check(name: str, namespace: Mapping, reference: Callable, *inputs, atol: float = 1e-5) -> bool | None:
    """Assert that `namespace[name](*inputs)` equals `reference(*inputs)`: a tensor, or a tuple of
    tensors compared in order, within `atol`. While `name` is not defined yet, print what to do and
    return None, so a notebook run from the top passes through; return True when they agree."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be the learner's function name, got {name!r}")
    if not callable(reference):
        raise TypeError(f"reference must be callable, got {type(reference).__name__}")
    mine = namespace.get(name)
    if mine is None:
        print(f"self-check: {name} is not defined yet. Write it in a new cell above (the exercise says what "
              f"it takes and returns), run that cell, then run this one again.")
        return None
    if not callable(mine):
        raise TypeError(f"{name} must be a function, got {type(mine).__name__}")
    got, want = _outputs(mine(*inputs)), _outputs(reference(*inputs))
    if len(got) != len(want):
        raise ExerciseMismatch(f"{name} returned {len(got)} output(s), the package's {len(want)}")
    for i, (g, w) in enumerate(zip(got, want)):
        which = f"{name}'s output {i}" if len(want) > 1 else f"{name}'s output"
        g = torch.as_tensor(g)
        if g.shape != w.shape:
            raise ExerciseMismatch(f"{which} has shape {tuple(g.shape)}, the package's {tuple(w.shape)}")
        gap = (g.detach().double() - w.detach().double()).abs().max().item() if w.numel() else 0.0
        if not gap <= atol:  # also catches NaN
            raise ExerciseMismatch(f"{which} differs from the package's by up to {gap:.3g} (tolerance {atol:g})")
    print(f"self-check passed: {name} agrees with {_name(reference)} on {_describe(inputs)}")
    return True


def _outputs(result) -> tuple:
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def _name(fn) -> str:
    return f"{getattr(fn, '__module__', '') or ''}.{getattr(fn, '__qualname__', repr(fn))}".lstrip(".")


def _describe(inputs) -> str:
    shapes = [tuple(x.shape) if isinstance(x, torch.Tensor) else repr(x) for x in inputs]
    return "inputs " + ", ".join(str(s) for s in shapes)
