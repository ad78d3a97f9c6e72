"""Input checks that fail early and name the problem (a shape error deep inside a conv is no help).

Each raises a one-line TypeError (wrong kind of value) or ValueError (right kind, wrong value)
that names the argument, so a notebook user reads what to change, not numpy's or torch's view of it.
"""
from __future__ import annotations

import inspect
import operator
from collections.abc import Collection

import torch


def show(value) -> str:
    """A short one-line description of a value for an error message (a tensor's repr spans lines)."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"{type(value).__name__} of shape {tuple(value.shape)}"
    if inspect.isroutine(value):
        return value.__qualname__
    text = " ".join(repr(value).split())
    if len(text) <= 60:
        return text
    if isinstance(value, str):
        return text[:57] + "..."
    if isinstance(value, (tuple, list, dict)):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"


def check_images(x, name: str = "images", channels: int | None = 3) -> torch.Tensor:
    """`x` must be a float tensor of shape (batch, channels, height, width)."""
    check_tensor(x, name, ("batch", "channels", "height", "width"))
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels, got {x.shape[1]} (shape {tuple(x.shape)})")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    return x


def check_tensor(x, name: str, dims: tuple[str, ...] | None = None) -> torch.Tensor:
    """`x` must be a torch.Tensor, with one dimension per entry of `dims` (their names, for the message)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {show(x)}")
    if dims is not None and x.ndim != len(dims):
        raise ValueError(f"{name} must be a {len(dims)}-d tensor ({', '.join(dims)}), got shape {tuple(x.shape)}")
    return x


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """NaN would pass every later step silently (argmax and topk treat it as a number)."""
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def check_choice(value, choices: Collection, name: str):
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose from {sorted(choices)}")
    return value


def check_positive(value, name: str):
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not value > 0:  # NaN too
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def check_int(value, name: str, low: int | None = None, high: int | None = None) -> int:
    """`value` must be an integer (numpy's and 0-d integer tensors too; a bool or 2.0 is not one) in [low, high]."""
    try:
        number = operator.index(value)
    except TypeError:
        number = None
    if number is None or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {show(value)}")
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValueError(f"{name} must be {_bounds(low, high)}, got {number}")
    return number


def check_seed(seed, name: str = "seed", high: int = 2**64 - 1) -> int:
    """A seed is a non-negative integer; numpy's global seed takes 32 bits (high=2**32 - 1)."""
    return check_int(seed, name, 0, high)


def check_fields(config, **lows: int) -> None:
    """Integer fields of a config dataclass, each at least its bound: check_fields(c, depth=0, num_heads=1)."""
    for name, low in lows.items():
        check_int(getattr(config, name), name, low)


def _bounds(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"between {low} and {_power(high)}"
    if low is not None:
        return "positive" if low == 1 else f"at least {low}"
    return f"at most {high}"


def _power(n: int) -> str:
    """2**64 - 1 reads better than 18446744073709551615."""
    return f"2**{n.bit_length()} - 1" if n > 2**16 and n & (n + 1) == 0 else str(n)


def check_pair(value, name: str, what: str = "(lo, hi)") -> tuple:
    """`value` must be a tuple or list of two items, such as a range."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a pair {what}, got {show(value)}")
    return tuple(value)


def check_texts(texts, name: str) -> list[str]:
    """A non-empty list of strings; one string alone is refused, as iterating it would give characters."""
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a list of strings, got one string {show(texts)}: wrap it in a list")
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(f"{name} must be a list of strings, got {show(texts)}") from None
    odd = [text for text in check_non_empty(texts, name) if not isinstance(text, str)]
    if odd:
        raise TypeError(f"{name} must hold strings only, got {show(odd[0])}")
    return texts


def check_callable(fn, name: str):
    if not callable(fn):
        raise TypeError(f"{name} must be callable (a model or a function), got {show(fn)}")
    return fn


def check_non_empty(data, name: str):
    try:
        size = len(data)
    except TypeError:
        raise TypeError(f"{name} must be a sequence or array, got {show(data)}") from None
    if size == 0:
        raise ValueError(f"{name} is empty")
    return data
