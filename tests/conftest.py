"""Test order: the JupyterLab runs first, and one execution per notebook (where the JupyterLab
test runs a notebook, its nbval twin is skipped). The environment is set in ../conftest.py."""
import pytest

from lab_session import browser_available


@pytest.hookimpl(trylast=True)  # after `-m`/`-k` have deselected what will not run
def pytest_collection_modifyitems(config, items):
    in_lab = {item.callspec.params["notebook"] for item in items
              if item.get_closest_marker("browser") and hasattr(item, "callspec")}
    if not in_lab or not browser_available():
        return
    twins = [item for item in items if item.path.suffix == ".ipynb" and item.path.name in in_lab]
    if twins:
        config.hook.pytest_deselected(items=twins)
        items[:] = [item for item in items if item not in twins]
    # the notebooks run in JupyterLab are the longest units of work: handed out first (in this
    # order, see --no-loadscope-reorder), they spread over both workers instead of ending the run
    items.sort(key=lambda item: not item.get_closest_marker("browser"))
