"""How many threads each twin uses: torch's pool, scratch's parts and NumPy's OpenBLAS.

Both twins run in one process and take turns, step by step. Two thread pools
that take turns spin against each other (each busy-waits for work after a
call), and on a small machine that makes both twins many times slower. The
runner therefore gives each twin the same number of threads, one by default,
which also keeps the time-per-step comparison fair.

For the scratch twin, n threads means: its layers split a batch into n parts
run at once (``scratch.fast.parallel``), each part's matrix products on one
OpenBLAS thread. OpenBLAS itself is kept to one thread: its idle threads
busy-wait for about a tenth of a second after every multi-threaded product, and
on two cores that takes a core from whatever runs next (scratch's other part,
or torch). OpenBLAS reads OPENBLAS_NUM_THREADS only when it loads;
``scratch.fast.parallel`` sets it at run time.
"""
import contextlib

import torch

from scratch.fast import parallel


def get_threads() -> dict:
    return {"torch": torch.get_num_threads(), "scratch": parallel.get_num_threads(),
            "numpy": parallel.get_blas_threads()}


def set_threads(n: int) -> None:
    """Give torch and scratch ``n`` threads each (NumPy's OpenBLAS one, under scratch's parts)."""
    torch.set_num_threads(n)
    parallel.set_num_threads(n)
    parallel.set_blas_threads(1)


@contextlib.contextmanager
def threads(n):
    """``n`` threads for both twins inside the block (``None``: leave them as they are)."""
    if n is None:
        yield
        return
    before = get_threads()
    set_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before["torch"])
        parallel.set_num_threads(before["scratch"])
        if before["numpy"] is not None:
            parallel.set_blas_threads(before["numpy"])
