"""Interactive explorers that leave a static figure behind where no widget frontend runs.

In JupyterLab, or a hosted Jupyter such as Colab, the sliders redraw the figure. Under nbval,
nbconvert or a plain script (or with `VP_STATIC=1`), the figure for the default values is drawn
once as an ordinary output, so executed notebooks and rendered books still show it.
"""
from __future__ import annotations

import sys
from collections.abc import Callable

import matplotlib.pyplot as plt

from .environment import widgets_available


def explore(draw: Callable, **controls) -> None:
    """Show an explorer: call draw(**values) whenever a control changes; controls are ipywidgets
    (slider, dropdown, text box). Without a widget frontend, draws once with each control's
    current value. Returns nothing, so a cell that ends with it shows the explorer once."""
    if not controls:
        raise ValueError("explore needs at least one control, e.g. layer=IntSlider(...)")
    if not widgets_available():
        draw(**{name: control.value for name, control in controls.items()})
        plt.show()
        return
    import ipywidgets
    from IPython.display import display

    def redraw(**values):
        draw(**values)
        plt.show()

    box = ipywidgets.interactive(redraw, **controls)
    box.children[-1].layout.min_height = "300px"  # keeps the page from jumping as figures redraw
    _colab_widget_manager()
    display(box)


def _colab_widget_manager() -> None:
    """Colab draws ipywidgets 8 only through its custom widget manager: switch it on (again is harmless)."""
    if "google.colab" in sys.modules:
        from google.colab import output
        output.enable_custom_widget_manager()
