"""Test-wide environment, set before anything imports torch, timm or huggingface_hub. It lives at the
root so that it also holds for a single notebook run as `pytest notebooks/NN_name.ipynb`."""
import importlib.util
import os
from pathlib import Path

import pytest

GUARD = Path(__file__).parent / "tests" / "offline" / "sitecustomize.py"

os.environ.update({
    "HF_HUB_OFFLINE": "1",   # weight requests fail at once instead of retrying for ~50 s
    "TRANSFORMERS_OFFLINE": "1",
    "VP_OFFLINE": "1",
    "VP_STATIC": "1",        # explorers draw a static figure: nbval runs no widget frontend
    # notebook kernels import the network guard at start-up through PYTHONPATH
    "PYTHONPATH": os.pathsep.join(filter(None, [str(GUARD.parent), os.environ.get("PYTHONPATH")])),
})
os.environ.pop("MPLBACKEND", None)  # Agg here would silence plt.show() in the kernels
if os.environ.get("PYTEST_XDIST_WORKER"):
    # two test workers share the cores: one torch thread each (their notebook kernels inherit it),
    # since two processes with two threads each on two cores run several times slower
    os.environ.update({"VP_THREADS": "1", "OMP_NUM_THREADS": "1"})

# this process too: load the same guard under its own name
_spec = importlib.util.spec_from_file_location("vp_network_guard", GUARD)
_spec.loader.exec_module(importlib.util.module_from_spec(_spec))


def pytest_itemcollected(item):
    """Keep each notebook on one test worker: its cells share one kernel, in order. (Marked as
    items are collected: pytest-xdist reads the groups before other modifyitems hooks run.)"""
    if item.path.suffix == ".ipynb":
        item.add_marker(pytest.mark.xdist_group(item.path.name))
