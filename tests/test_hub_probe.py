"""The hub probe: one HTTPS request bounded as a whole, so that a server which accepts and then
stalls (a captive portal, a stalled proxy) reads as offline within seconds; it goes through
HTTPS_PROXY when one is set, and VP_OFFLINE decides without it. Every server here listens on
127.0.0.1: the tests' network guard refuses anything else."""
import contextlib
import http.server
import socket
import ssl
import threading
import time

import pytest

from vp_utils.lab import environment as env
from vp_utils.pretrained import WeightsUnavailable, load_pretrained

DEADLINE = 15.0  # seconds a notebook may wait on a stalled hub, at most


@pytest.fixture
def fresh(monkeypatch):
    """No probe done yet, and none of the offline switches the test session sets."""
    for name in ("VP_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE",
                 "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(env, "_hub_state", None)
    return monkeypatch


@contextlib.contextmanager
def serve(handle):
    """A TCP server on 127.0.0.1 that runs handle(connection, stop) for each connection; yields its
    address and the list of the peers it accepted."""
    stop, peers = threading.Event(), []
    listener = socket.create_server(("127.0.0.1", 0))

    def accept():
        while True:
            try:
                connection, peer = listener.accept()
            except OSError:  # closed: the test is over
                return
            peers.append(peer)
            threading.Thread(target=_handle, args=(handle, connection, stop), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname(), peers
    finally:
        stop.set()
        listener.close()


def _handle(handle, connection, stop):
    with connection, contextlib.suppress(OSError):
        handle(connection, stop)


def stall(connection, stop):
    """Accept, then never say a word: the TLS handshake waits for ever."""
    stop.wait()


def trickle(connection, stop):
    """Answer a proxy's CONNECT with a header line every 0.2 s and never finish: each read is quick,
    so only a deadline on the whole request ends it."""
    connection.sendall(b"HTTP/1.1 200 Connection established\r\n")
    while not stop.wait(0.2):
        connection.sendall(b"X-Wait: 1\r\n")


def tunnel_to(target, seen):
    """An HTTPS proxy: records the CONNECT line and joins the client to `target`."""
    def handle(connection, stop):
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = connection.recv(4096)
            if not chunk:
                return
            request += chunk
        seen.append(request.split(b"\r\n")[0].decode())
        with socket.create_connection(target) as upstream:
            connection.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            threading.Thread(target=_pipe, args=(upstream, connection), daemon=True).start()
            _pipe(connection, upstream)
    return handle


def _pipe(source, sink):
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)


class _Hub(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self):  # noqa: N802 - the name http.server calls
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def https_hub(folder):
    """A local HTTPS server that answers HEAD / at once, with a certificate for 127.0.0.1,
    localhost and huggingface.co from a test CA; yields (address, the CA's file)."""
    (folder / "ca.pem").write_text(TEST_CA)
    (folder / "hub.pem").write_text(HUB_CERTIFICATE + HUB_KEY)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "hub.pem")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server.server_address, folder / "ca.pem"
    finally:
        server.shutdown()
        server.server_close()


def timed_probe() -> tuple[bool, float]:
    start = time.perf_counter()
    online = env.hub_online()
    return online, time.perf_counter() - start


def test_a_stalled_hub_reads_offline_within_seconds_and_weights_fail_fast(fresh):
    import timm  # noqa: F401 - a cold import takes seconds; the network wait is what is timed

    with serve(stall) as (address, _):
        fresh.setattr(env, "HUB_HOST", address)
        start = time.perf_counter()
        with pytest.raises(WeightsUnavailable, match="resnet18: pretrained weights"):
            load_pretrained("resnet18")  # probes the hub first
        seconds = time.perf_counter() - start
    assert not env.hub_online() and seconds < DEADLINE
    print(f"stalled hub: WeightsUnavailable after {seconds:.1f} s")


@pytest.mark.parametrize("trusted", [True, False])
def test_a_hub_that_answers_is_online_only_with_a_certificate_it_can_trust(fresh, tmp_path, trusted):
    with https_hub(tmp_path) as (address, ca):
        fresh.setattr(env, "HUB_HOST", address)
        fresh.setenv("SSL_CERT_FILE", str(ca if trusted else tmp_path / "no-such-file.pem"))
        assert env.hub_online() is trusted  # an intercepting portal's certificate is not trusted either


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy"])
def test_the_probe_goes_through_the_https_proxy(fresh, tmp_path, variable):
    seen = []
    with https_hub(tmp_path) as (hub, ca), serve(tunnel_to(hub, seen)) as (proxy, _):
        fresh.setenv("SSL_CERT_FILE", str(ca))
        assert not env.reachable(env.HUB_HOST, 3.0)  # direct: the network guard refuses it
        fresh.setenv(variable, f"http://{proxy[0]}:{proxy[1]}")
        assert env.hub_online()
    assert seen and seen[0].startswith("CONNECT huggingface.co:443 ")


@pytest.mark.parametrize("proxy_handler", [stall, trickle])
def test_a_stalled_proxy_reads_offline_within_seconds(fresh, proxy_handler):
    with serve(proxy_handler) as (proxy, peers):
        fresh.setenv("HTTPS_PROXY", f"http://{proxy[0]}:{proxy[1]}")
        online, seconds = timed_probe()
    assert peers and not online and seconds < DEADLINE  # asked through the proxy, and gave up in time


def test_vp_offline_decides_without_a_probe(fresh, tmp_path):
    with serve(stall) as (stalled, peers):
        fresh.setattr(env, "HUB_HOST", stalled)
        fresh.setenv("VP_OFFLINE", "0")
        online, seconds = timed_probe()
        assert online and seconds < 0.5 and not peers  # the stalled hub was never asked
    with https_hub(tmp_path) as (hub, ca):
        fresh.setattr(env, "HUB_HOST", hub)
        fresh.setenv("SSL_CERT_FILE", str(ca))
        for variables in ({"VP_OFFLINE": "1"}, {"VP_OFFLINE": "0", "HF_HUB_OFFLINE": "1"}):
            fresh.setattr(env, "_hub_state", None)
            for name, value in variables.items():
                fresh.setenv(name, value)
            assert not env.hub_online()
    fresh.setenv("VP_OFFLINE", "yes")
    with pytest.raises(ValueError, match="VP_OFFLINE must be 1"):
        env.hub_online()


# A test CA and a certificate it signed for 127.0.0.1, localhost and huggingface.co (EC P-256,
# valid 2000-2100), made with openssl for these tests only: the key guards nothing.
TEST_CA = """-----BEGIN CERTIFICATE-----
MIIBbjCCARWgAwIBAgIBATAKBggqhkjOPQQDAjAeMRwwGgYDVQQDDBNWaXNpb24g
UGF0aCB0ZXN0IENBMCAXDTAwMDEwMTAwMDAwMFoYDzIxMDAwMTAxMDAwMDAwWjAe
MRwwGgYDVQQDDBNWaXNpb24gUGF0aCB0ZXN0IENBMFkwEwYHKoZIzj0CAQYIKoZI
zj0DAQcDQgAEokpA/yZ2AtjwwcyMRQ+BwdBMNePtCixQGKZt7vmlv4Q+KrhvsrHZ
/lxM+AolEO7ZTmhRaSzsfBh2vLTnNv2mHqNCMEAwDwYDVR0TAQH/BAUwAwEB/zAO
BgNVHQ8BAf8EBAMCAQYwHQYDVR0OBBYEFAN/qja5JnUM9Hu+KPvRRf72pR7WMAoG
CCqGSM49BAMCA0cAMEQCID1S5YP0gfvDsrbUbbXl1rNdh/2ieel3hXw6+mIJJLz8
AiAIx6PlGhhCR4ljzO9kto2un1Z8itMkhQliTTH0pzNXww==
-----END CERTIFICATE-----
"""
HUB_CERTIFICATE = """-----BEGIN CERTIFICATE-----
MIIBxjCCAWygAwIBAgIBAjAKBggqhkjOPQQDAjAeMRwwGgYDVQQDDBNWaXNpb24g
UGF0aCB0ZXN0IENBMCAXDTAwMDEwMTAwMDAwMFoYDzIxMDAwMTAxMDAwMDAwWjAU
MRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARg
/sPb1Ou/nUP+FMjCDeotX1sKY4fhf6VJ4zqHFbs9D3CMOBqJsdewH+f2YaxCRygO
Vu0d+/LWPds+bVsjts7ho4GiMIGfMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQD
AgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMCoGA1UdEQQjMCGCCWxvY2FsaG9zdIcE
fwAAAYIOaHVnZ2luZ2ZhY2UuY28wHQYDVR0OBBYEFKk//AuYZMqSRVb6jDS8mteD
gV+5MB8GA1UdIwQYMBaAFAN/qja5JnUM9Hu+KPvRRf72pR7WMAoGCCqGSM49BAMC
A0gAMEUCIQC0eSwgxOU1Csq6jRCgkDoEL9lk01AXeu+745eFDBECLAIgEv31y/WD
fjEZLOary+ddAlUbSzEF7VfQ3zDZmzKSBAw=
-----END CERTIFICATE-----
"""
HUB_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgy9CcTAneMnMJPqiY
t9N5Zvyz771uNHj9lkRla9HwDv6hRANCAARg/sPb1Ou/nUP+FMjCDeotX1sKY4fh
f6VJ4zqHFbs9D3CMOBqJsdewH+f2YaxCRygOVu0d+/LWPds+bVsjts7h
-----END PRIVATE KEY-----
"""
