import builtins
import socket
import sys
import time

import pytest
import torch

import vp_utils
from vp_utils.lab.environment import hub_online, in_notebook_kernel, widgets_available
from vp_utils.pretrained import WeightsUnavailable, load_pretrained


def test_setup_seeds_and_reads_the_environment(monkeypatch):
    monkeypatch.setenv("VP_SEED", "5")
    monkeypatch.setenv("VP_SCALE", "full")
    config = vp_utils.setup(quiet=True)
    first = torch.rand(3)
    assert config.seed == 5 and config.scale == "full" and config.pick(small=1, full=2) == 2
    vp_utils.setup(quiet=True)
    assert torch.equal(torch.rand(3), first)
    assert config.device.type in ("cpu", "cuda", "mps")


@pytest.mark.parametrize("name, value", [("VP_SCALE", "huge"), ("VP_SEED", "abc"), ("VP_THREADS", "0")])
def test_bad_environment_is_named(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        vp_utils.setup(quiet=True)


# by name and by address (a multicast group, which the system itself refuses for TCP: nothing leaves
# even without the guard); the message tells the guard's refusal from a machine that is offline anyway
@pytest.mark.parametrize("address", [("huggingface.co", 443), ("224.0.0.1", 443)])
def test_network_is_blocked_during_tests(address):
    with pytest.raises(OSError, match="network blocked during tests"):
        socket.create_connection(address, timeout=1)


def test_pretrained_weights_fail_fast_and_clearly_offline():
    import timm  # noqa: F401 - a cold import takes seconds on a busy machine; the network wait is what we time

    assert not hub_online()
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailable, match="resnet18: pretrained weights"):
        load_pretrained("resnet18")
    assert time.perf_counter() - start < 2.0
    with pytest.raises(ValueError, match="no pretrained weights known"):
        load_pretrained("resnet7")


def _shell(name: str, base: type):
    shell_type = type(name, (base,), {})
    return shell_type.__new__(shell_type)  # the type is what counts; no shell is started


@pytest.fixture
def kernel_shell():
    from ipykernel.zmqshell import ZMQInteractiveShell

    return ZMQInteractiveShell


def test_a_hosted_kernel_shell_under_another_name_keeps_live_explorers(monkeypatch, kernel_shell):
    """Colab's shell subclasses ipykernel's under a name of its own; explorers stay widgets there."""
    monkeypatch.setattr(builtins, "get_ipython", lambda: _shell("Shell", kernel_shell), raising=False)
    monkeypatch.delenv("VP_STATIC", raising=False)
    assert in_notebook_kernel() and widgets_available()
    monkeypatch.setenv("VP_STATIC", "1")
    assert not widgets_available()


def test_a_shell_that_is_no_kernel_draws_static_figures(monkeypatch, kernel_shell):
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.delenv("VP_STATIC", raising=False)
    monkeypatch.setattr(builtins, "get_ipython", lambda: _shell("TerminalInteractiveShell", InteractiveShell),
                        raising=False)
    assert not in_notebook_kernel() and not widgets_available()
    monkeypatch.setattr(builtins, "get_ipython", lambda: _shell("Shell", kernel_shell))
    monkeypatch.setitem(sys.modules, "ipykernel.zmqshell", None)  # ipykernel not installed
    assert not in_notebook_kernel()
