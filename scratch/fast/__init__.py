"""The fast path: the same computations as the layers' plain code, engineered for speed. Skip on first reading.

Each layer, loss or optimizer that has one enters it through one visible call
(``fast.conv.forward(self, x)``), taken when ``scratch.paths.is_fast()`` (the
default; see scratch/paths.py). Everything here computes what the plain code
beside that call computes, to round-off, and is tested equal to it and to torch
(tests/test_paths.py, the layer catalogue). What it adds:

- ``parallel``: a batch split over threads, OpenBLAS held to one thread meanwhile
  (its thread count set through threadpoolctl);
- ``im2col``: channels-last windows, im2col a few samples at a time (cache-sized
  chunks), a stride-1 input gradient as a convolution, the bias as a column of ones;
- ``channels``: per-channel sums and broadcasts at full speed in either memory layout;
- per-layer modules (``linear``, ``conv``, ``pooling``, ``activation``,
  ``batchnorm``, ``loss``) and ``optim`` (Adam's update in place, split over threads).
"""
from scratch.fast import parallel  # noqa: F401  (first: the others use it)
from scratch.fast import activation, batchnorm, conv, linear, loss, optim, pooling  # noqa: F401
