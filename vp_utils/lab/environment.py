"""The one call at the top of every notebook: seeds, threads, plots, device, scale, hub access;
and whether a notebook kernel draws live widgets or runs headless."""
from __future__ import annotations

import os
import random
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass

import numpy as np
import torch

from .checks import check_int, check_pair, check_positive, check_seed

SCALES = ("small", "full")
DEFAULT_SEED = 0
SEED_MAX = 2**32 - 1  # numpy's global seed takes 32 bits
HUB_HOST = ("huggingface.co", 443)  # read at each probe, so a test can point it at a local server
PROBE_SECONDS = 3.0  # the whole probe: name lookup, connection, TLS handshake, request and response
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
    data), `VP_THREADS` caps torch's threads (at most the machine's cores), and `VP_OFFLINE`
    skips the network probe: `1` treats the hub as unreachable, `0` as reachable.
    """
    seed = _env_int("VP_SEED", DEFAULT_SEED if seed is None else check_seed(seed, high=SEED_MAX), 0, SEED_MAX)
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
    threads = _env_int("VP_THREADS", default, 1, os.cpu_count() or 1)  # more threads than cores only slow torch
    torch.set_num_threads(threads)
    return threads


def seed_everything(seed: int) -> None:
    check_seed(seed, high=SEED_MAX)
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


def hub_online(timeout: float = PROBE_SECONDS) -> bool:
    """Probe the model hub once; when it does not answer in time, switch the hubs offline so that
    later weight requests fail at once instead of retrying for ~50 s or hanging on a stalled
    connection. `VP_OFFLINE=1` (or `HF_HUB_OFFLINE=1`) means offline and `VP_OFFLINE=0` online,
    without a probe: for a network that the probe cannot pass but downloads can."""
    global _hub_state
    offline = _offline_setting()
    if _hub_state is None:
        _hub_state = reachable(HUB_HOST, timeout) if offline is None else not offline
        if not _hub_state:
            _go_offline()
    return _hub_state


def _offline_setting() -> bool | None:
    """True (offline) or False (online) as VP_OFFLINE and HF_HUB_OFFLINE=1 say, or None: probe."""
    value = os.environ.get("VP_OFFLINE", "")
    if value not in ("", "0", "1"):
        raise ValueError(f"VP_OFFLINE must be 1 (offline) or 0 (online, no probe), got {value!r}")
    if value == "1" or os.environ.get("HF_HUB_OFFLINE") == "1":
        return True
    return False if value == "0" else None


def reachable(address: tuple[str, int], timeout: float) -> bool:
    """True when the HTTPS server at `address` answers a HEAD request within `timeout` s in all:
    name lookup, connection, TLS handshake and response, through `HTTPS_PROXY` when one is set.
    A server that accepts the connection and then says nothing (a captive portal, a stalled
    proxy) counts as unreachable. The probe runs in a daemon thread, as no socket timeout bounds
    a name lookup, and a stalled probe must hold up neither the notebook nor its exit."""
    host, port = check_pair(address, "address", "(host, port)")
    check_positive(timeout, "timeout")
    answered = []

    def probe():
        request = urllib.request.Request(f"https://{host}:{port}/", method="HEAD")
        try:  # a fresh opener reads the proxy settings of this moment
            urllib.request.build_opener().open(request, timeout=timeout).close()
        except urllib.error.HTTPError as error:  # an error status is an answer all the same
            error.close()
        except Exception:  # noqa: BLE001 - every other failure means the same here: no answer
            return
        answered.append(True)

    thread = threading.Thread(target=probe, name="vp-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answered)


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


def _env_int(name: str, default: int, low: int | None = None, high: int | None = None) -> int:
    """The environment variable `name` as an integer in [low, high], or `default` when it is unset."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    return check_int(number, name, low, high)


def in_notebook_kernel() -> bool:
    """True inside a Jupyter kernel (whether or not a frontend is watching): ipykernel's shell or
    a subclass of it, as hosted Jupyter runs (Colab's shell has a name of its own)."""
    try:
        shell = get_ipython()  # noqa: F821 - defined inside IPython only
    except NameError:
        return False
    try:  # imported here: a plain script or a terminal IPython needs no ipykernel
        from ipykernel.zmqshell import ZMQInteractiveShell
    except ImportError:  # no ipykernel, no kernel
        return False
    return isinstance(shell, ZMQInteractiveShell)


def widgets_available() -> bool:
    """True inside a Jupyter kernel with ipywidgets installed, unless VP_STATIC=1."""
    if os.environ.get("VP_STATIC") == "1":
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return in_notebook_kernel()
