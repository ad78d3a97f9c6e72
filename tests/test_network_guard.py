"""The network guard of tests/offline/: every way out of the machine is refused in a child process
started as notebook kernels are (the guard on PYTHONPATH), and the same probes in a child without the
guard reach the operating system, so each check here fails when the guard is off. Nothing leaves
even then: the system itself refuses a TCP connection to a multicast group and a UDP broadcast
without SO_BROADCAST, and a numeric address is "resolved" without asking anyone. Where the machine
can make a network namespace, notebook kernels run in one, so what they start is cut off too."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from network_namespace import NamespacedKernelManager, namespace_prefix

REPO = Path(__file__).parents[1]
GUARD = REPO / "tests" / "offline"
BLOCKED = "network blocked during tests"
sys.path.insert(0, str(REPO / "tools"))
import claims_sweep  # noqa: E402

# ways out that the system refuses by itself when unguarded: run with and without the guard
LEAVING = {
    "socket.connect": "socket.socket().connect(('224.0.0.1', 9))",
    "socket.connect_ex": "socket.socket().connect_ex(('224.0.0.1', 9))",
    "socket.create_connection": "socket.create_connection(('224.0.0.1', 9), timeout=2)",
    "_socket.socket.connect": "_socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(('224.0.0.1', 9))",
    "udp sendto": "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('255.255.255.255', 9))",
    "udp sendmsg": "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendmsg([b'x'], [], 0, ('255.255.255.255', 9))",
    "_socket udp sendto": "_socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', 0, ('255.255.255.255', 9))",
    "socket.gethostbyname": "socket.gethostbyname('198.51.100.7')",
    "socket.gethostbyname_ex": "socket.gethostbyname_ex('198.51.100.7')",
    "socket.getaddrinfo": "socket.getaddrinfo('198.51.100.7', 443)",
    "_socket.gethostbyname": "_socket.gethostbyname('198.51.100.7')",
    "_socket.getaddrinfo": "_socket.getaddrinfo('198.51.100.7', 443)",
}
# refused as well, but unguarded these would ask a name server: run with the guard only
BY_NAME = {
    "connect to a host name": "socket.socket().connect(('huggingface.co', 443))",
    "_socket.gethostbyname_ex": "_socket.gethostbyname_ex('huggingface.co')",
    "socket.gethostbyaddr": "socket.gethostbyaddr('198.51.100.7')",
    "socket.getnameinfo": "socket.getnameinfo(('198.51.100.7', 443), 0)",
}
# what kernels and JupyterLab need keeps working under the guard
LOCAL = {"loopback tcp": "loopback_tcp()", "loopback udp": "loopback_udp()", "unix socket": "unix_socket()",
         "localhost lookup": "len(socket.getaddrinfo('localhost', 80)) > 0",
         "numeric getnameinfo": "socket.getnameinfo(('198.51.100.7', 443), socket.NI_NUMERICHOST)"}

PROBE = r'''
import _socket, json, os, socket, sys, tempfile

def loopback_tcp():
    with socket.create_server(("127.0.0.1", 0)) as server:
        with socket.create_connection(server.getsockname(), timeout=5) as client:
            client.sendall(b"ping")
            return server.accept()[0].recv(4)

def loopback_udp():
    udp = (socket.AF_INET, socket.SOCK_DGRAM)
    with socket.socket(*udp) as sender, socket.socket(*udp) as receiver:
        receiver.bind(("127.0.0.1", 0))
        sender.sendto(b"ping", receiver.getsockname())
        return receiver.recv(4)

def unix_socket():
    path = os.path.join(tempfile.mkdtemp(), "socket")
    with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
        server.bind(path)
        server.listen()
        client.connect(path)
        return "connected"

outcomes = {}
for name, probe in json.loads(sys.argv[1]).items():
    try:
        outcomes[name] = f"answered: {eval(probe)!r}"
    except OSError as error:
        outcomes[name] = f"refused: {error}"
print(json.dumps(outcomes))
'''


def run_probes(probes: dict, guarded: bool) -> dict:
    """Each probe's outcome in a fresh child that inherits this process's environment, as kernels do,
    with or without the guard's folder on PYTHONPATH."""
    env = dict(os.environ)
    paths = env.get("PYTHONPATH", "").split(os.pathsep)
    assert str(GUARD) in paths, "the root conftest.py puts the guard on PYTHONPATH for every child"
    if not guarded:
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p != str(GUARD))
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(probes)], env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def guarded():
    return run_probes({**LEAVING, **BY_NAME, **LOCAL}, guarded=True)


@pytest.fixture(scope="module")
def unguarded():
    return run_probes(LEAVING, guarded=False)


@pytest.mark.parametrize("name", [*LEAVING, *BY_NAME])
def test_each_way_out_is_refused_by_the_guard(guarded, name):
    assert guarded[name].startswith("refused: ") and BLOCKED in guarded[name], guarded[name]


@pytest.mark.parametrize("name", LOCAL)
def test_loopback_and_unix_sockets_still_work(guarded, name):
    assert guarded[name].startswith("answered: ") and guarded[name] != "answered: False", guarded[name]


@pytest.mark.parametrize("name", LEAVING)
def test_without_the_guard_each_probe_reaches_the_system(unguarded, name):
    """The control: unguarded, the same probe gets an answer or the system's own error (an errno), so
    the refusal checked above comes from the guard and that test fails when the guard is off."""
    assert re.match(r"answered: |refused: \[Errno \d+\]", unguarded[name]), unguarded[name]
    assert BLOCKED not in unguarded[name]


def test_without_a_namespace_kernels_fall_back_to_tcp(monkeypatch):
    monkeypatch.setattr(sys.modules["network_namespace"], "namespace_prefix", lambda: ())
    manager = NamespacedKernelManager(kernel_name="python3")
    command = manager.format_kernel_cmd()
    assert manager.transport == "tcp" and "unshare" not in command and "-f" in command


needs_namespace = pytest.mark.skipif(not namespace_prefix(), reason="this machine cannot make a network namespace")
NAMESPACE_CELLS = [
    "import os, subprocess\n"
    "assert os.readlink('/proc/self/ns/net') != {parent!r}, 'the kernel shares the network of the tests'",
    "# what the kernel starts sees only loopback\n"
    "links = subprocess.run(['ip', '-o', 'link'], capture_output=True, text=True, check=True).stdout.splitlines()\n"
    "assert [link.split(':')[1].strip() for link in links] == ['lo'], links",
]


def _namespace_probe_notebook(path: Path) -> Path:
    parent = os.readlink("/proc/self/ns/net")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.format(parent=parent)) for c in NAMESPACE_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@needs_namespace
def test_notebook_kernels_under_pytest_run_in_their_own_network_namespace():
    # inside the repo, so that its conftest.py applies; artifacts/ is git-ignored
    notebook = _namespace_probe_notebook(REPO / "artifacts" / "network_guard" / f"namespace_{os.getpid()}.ipynb")
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-o",
                               "addopts=--nbval-lax -p no:cacheprovider", str(notebook)],
                              capture_output=True, text=True, timeout=300, cwd=REPO)
    finally:
        notebook.unlink()
    assert "2 passed" in done.stdout, done.stdout[-3000:]


@needs_namespace
def test_the_claims_sweep_runs_its_kernels_in_a_network_namespace_too(tmp_path, monkeypatch):
    monkeypatch.setattr(claims_sweep, "EXECUTED", tmp_path / "executed")
    notebook = _namespace_probe_notebook(tmp_path / "namespace.ipynb")
    run = claims_sweep.run_notebook(notebook, notebook.read_text(), seed=0, threads=1)
    assert run["errors"] == []
