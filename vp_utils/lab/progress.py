"""Progress bars that suit where the code runs.

A terminal or JupyterLab gets tqdm's live bar. A notebook kernel without live widgets (`VP_STATIC=1`:
the tests, `./vp run`, the book) would save the notebook bar's text as it was drawn, frozen at 0%,
so there the bar is replaced by one line printed when the loop ends: steps, seconds, last metrics.
"""
from __future__ import annotations

import time
from collections.abc import Iterable

from tqdm.auto import tqdm

from .environment import in_notebook_kernel, widgets_available


def progress_bar(iterable: Iterable, desc: str, disable: bool = False, **tqdm_options):
    """tqdm(iterable, desc=desc, ...) where someone watches; one closing line in a notebook kernel
    that draws no live widgets (the same test the explorers use)."""
    if in_notebook_kernel() and not widgets_available():
        return ClosingLine(iterable, desc, disable)
    return tqdm(iterable, desc=desc, disable=disable, **tqdm_options)


class ClosingLine:
    """The part of tqdm's interface that our loops use (iterate, set_postfix, close); prints
    "desc: N steps in T s, metric value" once, when the loop ends or is closed."""

    def __init__(self, iterable: Iterable, desc: str, disable: bool = False):
        self.iterable, self.desc, self.disable = iterable, desc, disable
        self.count, self.postfix, self.started, self.closed = 0, {}, None, False

    def __iter__(self):
        self.started = time.perf_counter()
        for item in self.iterable:
            yield item
            self.count += 1
        self.close()

    def set_postfix(self, refresh: bool = False, **values) -> None:
        self.postfix = values

    def close(self) -> None:
        if self.closed or self.disable:
            return
        self.closed = True
        seconds = time.perf_counter() - (self.started or time.perf_counter())
        metrics = "".join(f", {name} {value}" for name, value in self.postfix.items())
        print(f"{self.desc}: {self.count} steps in {seconds:.0f} s{metrics}")
