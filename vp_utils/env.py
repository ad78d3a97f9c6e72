"""The one call at the top of every notebook: seeds, threads, plots, device, scale, hub access;
and whether a notebook kernel draws live widgets or runs headless."""
from __future__ import annotations

import os
import random
import socket
import sys
import threading
from dataclasses import dataclass

import numpy as np
import torch

SCALES = ("small", "full")
DEFAULT_SEED = 0
HUB_HOST = ("huggingface.co", 443)
_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


@dataclass(frozen=True)
class Config:
    """What `setup` decided; notebooks read it instead of re-reading the environment."""

    seed: int
    scale: str
    device: torch.device
    threads: int
    online: bool

    def pick(self, small, full):
        """The value for the current scale: `steps = cfg.pick(small=300, full=20_000)`."""
        return small if self.scale == "small" else full

    def __str__(self):
        hub = "online" if self.online else "offline (pretrained weights skipped unless cached)"
        return (f"Vision Path | seed {self.seed} | scale {self.scale} | device {self.device} "
                f"| {self.threads} threads | hub {hub}")


def setup(seed: int | None = None, *, quiet: bool = False) -> Config:
    """Make a notebook reproducible and fast to fail offline; returns the `Config` it applied.

    `VP_SEED` overrides `seed`, `VP_SCALE` picks `small` (laptop, CI) or `full` (GPU, real
    data), `VP_THREADS` caps torch's threads and `VP_OFFLINE=1` skips the network probe.
    """
    seed = _env_int("VP_SEED", DEFAULT_SEED if seed is None else seed)
    scale = os.environ.get("VP_SCALE", "small")
    if scale not in SCALES:
        raise ValueError(f"VP_SCALE must be one of {SCALES}, got {scale!r}")
    threads = apply_threads(os.cpu_count() or 1)
    seed_everything(seed)
    _configure_matplotlib()
    config = Config(seed, scale, pick_device(), threads, hub_online())
    if not quiet:
        print(config)
    return config


def apply_threads(default: int) -> int:
    """Set torch's CPU threads to `VP_THREADS`, or to `default` when it is unset; returns the number."""
    threads = _env_int("VP_THREADS", default)
    if threads < 1:
        raise ValueError(f"VP_THREADS must be at least 1, got {threads}")
    torch.set_num_threads(threads)
    return threads


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


_hub_state: bool | None = None


def hub_online(timeout: float = 1.5) -> bool:
    """Probe the model hub once; when it is unreachable, switch the hubs offline so that
    later weight requests fail at once instead of retrying for ~50 s."""
    global _hub_state
    if _hub_state is None:
        forced_offline = os.environ.get("VP_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1"
        _hub_state = False if forced_offline else reachable(HUB_HOST, timeout)
        if not _hub_state:
            _go_offline()
    return _hub_state


def reachable(address: tuple[str, int], timeout: float) -> bool:
    """True when a TCP connection opens within `timeout` s; DNS can block, so probe in a thread."""
    result = []

    def probe():
        try:
            socket.create_connection(address, timeout=timeout).close()
            result.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result)


def _go_offline() -> None:
    for name in _OFFLINE_VARIABLES:
        os.environ[name] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:  # imported before us: its flag was read at import time
        constants.HF_HUB_OFFLINE = True


def _configure_matplotlib() -> None:
    import matplotlib

    matplotlib.rcParams.update({"figure.figsize": (6.0, 4.0), "figure.dpi": 100,
                                "savefig.dpi": 100, "axes.grid": False})
    try:
        shell = get_ipython()  # noqa: F821 - defined inside IPython only
    except NameError:
        return
    shell.run_line_magic("matplotlib", "inline")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


def in_notebook_kernel() -> bool:
    """True inside a Jupyter kernel (whether or not a frontend is watching)."""
    try:
        return type(get_ipython()).__name__ == "ZMQInteractiveShell"  # noqa: F821 - defined inside IPython only
    except NameError:
        return False


def widgets_available() -> bool:
    """True inside a Jupyter kernel with ipywidgets installed, unless VP_STATIC=1."""
    if os.environ.get("VP_STATIC") == "1":
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return in_notebook_kernel()
