"""Test-wide environment, set before anything imports torch, timm or huggingface_hub. It lives at the
root so that it also holds for a single notebook run as `pytest notebooks/NN_name.ipynb`."""
import importlib.util
import os
import sys
from pathlib import Path

import nbval.kernel
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


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_load("vp_network_guard", GUARD)  # this process too, under its own name
# nbval starts each notebook's kernel with this manager: in a network namespace of its own where the
# machine can make one, so that what the kernel starts is cut off too (tests/offline/network_namespace.py)
nbval.kernel.KernelManager = _load("network_namespace", GUARD.parent / "network_namespace.py").NamespacedKernelManager


def pytest_itemcollected(item):
    """Keep each notebook on one test worker: its cells share one kernel, in order. (Marked as
    items are collected: pytest-xdist reads the groups before other modifyitems hooks run.)"""
    if item.path.suffix == ".ipynb":
        item.add_marker(pytest.mark.xdist_group(item.path.name))
