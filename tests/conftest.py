"""Suite-wide settings."""
import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Torch on one thread: on a loaded 2-core machine its default two threads turn
    millisecond calls into tens of milliseconds of waiting, and parity does not depend on it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
