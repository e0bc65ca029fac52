"""The switch between scratch's two paths: the plain one (the math, as you read it) and the fast one.

Every layer, loss and optimizer computes its docstring's formula in plain
NumPy: that is the **plain path**, the code a learner reads and can step
through in a debugger. Some of them also have a **fast path** in
``scratch.fast`` (threads, BLAS thread control, channels-last layouts, chunked
im2col, fused updates) that computes the same numbers to round-off, faster;
each enters it through one visible call, as torch's optimizers dispatch to
their single-tensor, foreach or fused implementations.

The fast path is the default. Three ways to run everything on the plain path:

    scratch.set_fast(False)          # from here on
    with scratch.plain():            # inside the block
    SCRATCH_PLAIN=1 python ...       # the environment variable, read when scratch is imported

A layer's backward takes the path its forward took, so switching between a
forward and its backward is harmless.
"""
import contextlib
import os

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def _from_environment() -> bool:
    value = os.environ.get("SCRATCH_PLAIN", "").strip().lower()
    if value not in _TRUE + _FALSE:
        raise ValueError(f"SCRATCH_PLAIN must be 1 (plain path) or 0 (fast path), got {os.environ['SCRATCH_PLAIN']!r}")
    return value in _FALSE


_fast = _from_environment()


def set_fast(enabled: bool) -> None:
    """Run the layers on the fast path (True, the default) or on the plain path (False)."""
    global _fast
    if not isinstance(enabled, bool):
        raise TypeError(f"set_fast expects True or False, got {enabled!r}")
    _fast = enabled


def is_fast() -> bool:
    """Whether the layers take the fast path (``scratch.fast``)."""
    return _fast


def plain():
    """``with scratch.plain():`` everything inside runs on the plain path; the setting is restored after."""
    return using(fast=False)


@contextlib.contextmanager
def using(fast: bool):
    """``with scratch.paths.using(fast=True):`` one path inside the block, the setting restored after."""
    before = _fast
    set_fast(fast)
    try:
        yield
    finally:
        set_fast(before)
