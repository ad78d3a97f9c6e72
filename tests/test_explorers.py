"""explore(): one explorer per call, a static figure without a frontend, named errors."""
import sys

import ipywidgets as w
import IPython.display
import pytest

from vp_utils.lab import explorers as widgets


def test_without_a_frontend_it_draws_once_with_the_default_values(monkeypatch):
    monkeypatch.setenv("VP_STATIC", "1")
    calls = []
    assert widgets.explore(lambda n: calls.append(n), n=w.IntSlider(3)) is None
    assert calls == [3]


def test_with_a_frontend_it_displays_one_explorer_and_returns_nothing(monkeypatch):
    """A returned widget would be shown a second time by a cell that ends with the call."""
    shown = []
    monkeypatch.setattr(widgets, "widgets_available", lambda: True)
    monkeypatch.setattr(IPython.display, "display", shown.append)
    calls = []
    assert widgets.explore(lambda n: calls.append(n), n=w.IntSlider(3)) is None
    assert len(shown) == 1 and isinstance(shown[0], w.interactive)
    shown[0].children[0].value = 5  # moving the slider redraws with its value
    assert calls[-1] == 5


def test_an_explorer_needs_a_control():
    with pytest.raises(ValueError, match="at least one control"):
        widgets.explore(lambda: None)


def test_the_browser_tests_say_what_they_miss_and_every_run_shows_skip_reasons(monkeypatch):
    import importlib.util
    import shlex
    import tomllib
    from pathlib import Path

    import lab_session

    monkeypatch.setattr(lab_session.shutil, "which", lambda name: None)
    assert lab_session.browser_missing().startswith("no chromium on PATH (apt-get install chromium")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "playwright" else real_find_spec(name))
    assert "; no playwright package" in lab_session.browser_missing() and not lab_session.browser_available()
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    addopts = shlex.split(pyproject["tool"]["pytest"]["ini_options"]["addopts"])
    assert any(option.startswith("-r") and "s" in option[2:] for option in addopts)


def test_on_colab_an_explorer_switches_on_its_widget_manager(monkeypatch):
    """Colab's own widget manager predates ipywidgets 8; without its custom one the explorer stays blank."""
    import types

    switched_on = []
    output = types.SimpleNamespace(enable_custom_widget_manager=lambda: switched_on.append(True))
    colab = types.SimpleNamespace(output=output)
    for name, module in {"google": types.SimpleNamespace(colab=colab), "google.colab": colab,
                         "google.colab.output": output}.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(widgets, "widgets_available", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda box: None)
    widgets.explore(lambda n: None, n=w.IntSlider(3))
    assert switched_on == [True]
