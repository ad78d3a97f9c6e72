"""Notebook kernels in a network namespace of their own, where the machine allows one.

The guard in sitecustomize.py stops Python code; a namespace also stops what a kernel starts
(`!curl`, a compiled library). A kernel in a fresh namespace has only its own loopback, so it
cannot reach the test process over TCP: these kernel managers talk to it over unix sockets
(ZeroMQ's ipc transport), which the namespace does not cut. Where no namespace can be made
(no `unshare`, no user namespaces) they fall back to plain TCP kernels, guarded by Python alone.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

from jupyter_client.manager import AsyncKernelManager, KernelManager

# bring the namespace's own loopback up (it starts down), then become the command
_LOOPBACK_UP = ["sh", "-c", 'ip link set lo up && exec "$@"', "network-namespace"]
# as root a network namespace alone; otherwise inside a user namespace that maps us to its root
_CANDIDATES = (["unshare", "--net"], ["unshare", "--net", "--map-root-user"])


@functools.cache
def namespace_prefix() -> tuple[str, ...]:
    """The command prefix that runs a command alone in a new network namespace with loopback up,
    or () where this machine cannot make one. Tried once per process (a few milliseconds)."""
    if not sys.platform.startswith("linux") or not (shutil.which("unshare") and shutil.which("ip")):
        return ()
    for unshare in _CANDIDATES:
        prefix = (*unshare, "--", *_LOOPBACK_UP)
        try:
            if subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0:
                return prefix
        except (OSError, subprocess.TimeoutExpired):
            pass
    return ()


class _InNetworkNamespace:
    """Kernel-manager mixin: ipc transport and the namespace prefix when a namespace can be made."""

    def _transport_default(self) -> str:
        return "ipc" if namespace_prefix() else "tcp"

    def _ip_default(self) -> str:
        if self.transport != "ipc":
            return super()._ip_default()
        # absolute and short: the kernel runs in another directory, and unix socket paths
        # are limited to 107 bytes
        return os.path.join(tempfile.gettempdir(), f"vp-kernel-{uuid.uuid4().hex[:12]}-ipc")

    def format_kernel_cmd(self, extra_arguments=None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        return [*namespace_prefix(), *command] if self.transport == "ipc" else command


class NamespacedKernelManager(_InNetworkNamespace, KernelManager):
    """For nbval, which drives kernels through the blocking API."""


class AsyncNamespacedKernelManager(_InNetworkNamespace, AsyncKernelManager):
    """For nbclient (the claims sweep)."""
