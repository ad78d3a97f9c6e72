"""Loaded by every Python process the tests start (notebook kernels included, through
PYTHONPATH): refuse anything that would reach past this machine, so nothing can wait on a network.

Name lookups (getaddrinfo, gethostbyname, gethostbyname_ex, gethostbyaddr, getnameinfo) accept
loopback names only, and every socket call that names a peer (connect, connect_ex, sendto,
sendmsg) accepts loopback and unix addresses only: on `socket` and on the `_socket` module
beneath it alike. Jupyter kernels and JupyterLab keep their loopback and unix sockets. What
Python cannot see (a compiled library's own sockets, a child that is not Python, a service on
loopback that relays, such as a DNS stub or a proxy) is cut off where a network namespace can
be made: see network_namespace.py.
"""
import _socket
import functools
import ipaddress
import socket

BLOCKED = "network blocked during tests"
_RawSocket = _socket.socket
_IP_FAMILIES = {socket.AF_INET, socket.AF_INET6}
_LOCAL_FAMILIES = {socket.AF_UNIX, getattr(socket, "AF_NETLINK", socket.AF_UNIX)}  # netlink: the kernel itself


def _is_local_host(host) -> bool:
    if host in (None, "", b"", "localhost", b"localhost"):  # None and '': this machine
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:  # a host name: resolving it would already be network traffic
        return False


def _refuse_remote(family, address) -> None:
    if address is None or family in _LOCAL_FAMILIES:  # None: the peer the socket is connected to
        return
    if family in _IP_FAMILIES and (not isinstance(address, tuple) or not address or _is_local_host(address[0])):
        return  # a malformed address is left for the socket call to reject
    raise ConnectionRefusedError(f"{BLOCKED}: {address!r}")


def _guarded_method(name, peer_of):
    original = getattr(_RawSocket, name)

    @functools.wraps(original)
    def method(self, *args):
        _refuse_remote(self.family, peer_of(args))
        return original(self, *args)

    return method


def _guarded_lookup(original, host_of):
    @functools.wraps(original)
    def lookup(*args, **kwargs):
        host = host_of(*args, **kwargs)
        if not _is_local_host(host):
            raise socket.gaierror(socket.EAI_NONAME, f"{BLOCKED}: cannot resolve {host!r}")
        return original(*args, **kwargs)

    return lookup


def _host(host=None, *args, **kwargs):
    return host


def _numeric_or_host(sockaddr, flags=0):
    return None if flags & socket.NI_NUMERICHOST else sockaddr[0]  # a numeric answer needs no lookup


def _first(args):
    return args[0] if args else None


_PEERS = {"connect": _first, "connect_ex": _first,
          "sendto": lambda args: args[-1] if len(args) > 1 else None,  # (data, [flags,] address)
          "sendmsg": lambda args: args[3] if len(args) > 3 else None}  # (buffers, ancdata, flags, address)
_LOOKUPS = {"getaddrinfo": _host, "gethostbyname": _host, "gethostbyname_ex": _host,
            "gethostbyaddr": _host, "getnameinfo": _numeric_or_host}


class _StillTheSocketType(type):
    """Keeps `isinstance(s, _socket.socket)` true for every socket, whichever class made it."""

    def __instancecheck__(cls, instance):
        return isinstance(instance, _RawSocket)

    def __subclasscheck__(cls, subclass):
        return issubclass(subclass, _RawSocket)


def install() -> None:
    if hasattr(socket.socket.connect, "__wrapped__"):  # this process loaded the guard already
        return
    methods = {name: _guarded_method(name, peer_of) for name, peer_of in _PEERS.items() if hasattr(_RawSocket, name)}
    for name, method in methods.items():
        setattr(socket.socket, name, method)
    # code that builds `_socket.socket` itself gets the same checks
    raw = _StillTheSocketType("socket", (_RawSocket,), {**methods, "__module__": "_socket"})
    _socket.socket = _socket.SocketType = raw
    for name, host_of in _LOOKUPS.items():
        original = getattr(_socket, name)
        guarded = _guarded_lookup(original, host_of)
        setattr(_socket, name, guarded)
        if getattr(socket, name) is original:  # re-exported as is (socket.getaddrinfo wraps _socket's)
            setattr(socket, name, guarded)


install()
