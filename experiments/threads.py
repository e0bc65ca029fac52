"""How many threads each twin's linear algebra uses: torch's pool and NumPy's OpenBLAS.

Both twins run in one process and take turns, step by step. Two thread pools
that take turns spin against each other (each busy-waits for work after a
call), and on a small machine that makes both twins many times slower. The
runner therefore gives each twin the same number of threads, one by default,
which also keeps the time-per-step comparison fair.

NumPy's OpenBLAS reads OPENBLAS_NUM_THREADS only when it loads; this sets it at
run time through OpenBLAS's own ``*_set_num_threads`` function, found in the
loaded library (what ``threadpoolctl`` does, in a few lines).
"""
import contextlib
import ctypes

import torch

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_", "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
            "openblas_get_num_threads64_", "openblas_get_num_threads")


def _openblas():
    """The OpenBLAS libraries loaded in this process (Linux: read from /proc/self/maps)."""
    libs = []
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        return libs
    for path in sorted(paths):
        if ".so" in path:
            try:
                libs.append(ctypes.CDLL(path))
            except OSError:
                pass
    return libs


def _call(lib, names, *args):
    for name in names:
        fn = getattr(lib, name, None)
        if fn is not None:
            return fn(*args)
    return None


def get_threads() -> dict:
    blas = [_call(lib, _GETTERS) for lib in _openblas()]
    return {"torch": torch.get_num_threads(), "numpy": next((b for b in blas if b is not None), None)}


def set_threads(n: int) -> None:
    """Give torch and NumPy's OpenBLAS ``n`` threads each."""
    import numpy  # noqa: F401  (loads OpenBLAS, so that it can be found)

    torch.set_num_threads(n)
    for lib in _openblas():
        _call(lib, _SETTERS, int(n))


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
        if before["numpy"] is not None:
            for lib in _openblas():
                _call(lib, _SETTERS, int(before["numpy"]))
