"""Loaded by every Python process the tests start (notebook kernels included, through
PYTHONPATH): refuse any connection that leaves the machine, so nothing can wait on a network."""
import ipaddress
import socket

_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _is_local(address) -> bool:
    if not isinstance(address, tuple):  # unix sockets
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:  # a host name: resolving it would already be network traffic
        return False


def _guard(address):
    if not _is_local(address):
        raise ConnectionRefusedError(f"network blocked during tests: {address!r}")


def connect(self, address):
    _guard(address)
    return _connect(self, address)


def connect_ex(self, address):
    _guard(address)
    return _connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    if host not in (None, "localhost") and not _is_local((host,)):
        raise socket.gaierror(f"network blocked during tests: cannot resolve {host!r}")
    return _getaddrinfo(host, *args, **kwargs)


_getaddrinfo = socket.getaddrinfo
socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
socket.getaddrinfo = getaddrinfo
