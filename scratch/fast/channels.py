"""Per-channel sums and broadcasts that follow an array's memory layout.

A (N, C, H, W) array may sit in memory channels-first (NumPy's default) or
channels-last (what Conv2d returns, as PyTorch's channels_last). NumPy's
reductions over axes (0, 2, 3) and broadcasts of a (1, C, 1, 1) vector are
fast over the first and several times slower over the second, where they run
loops of only C values. These two helpers do the same work at full speed in
either layout; BatchNorm and Conv2d's bias use them.
"""
import math

import numpy as np


# The most float32 values one partial sum of channel_sum adds before float64 takes over.
_PARTIAL = 1024


def channel_sum(a: np.ndarray) -> np.ndarray:
    """Per-channel sums (C,) of a (N, C, ...), in float64 whatever a's dtype.

    PyTorch's CPU batch norm accumulates in double; a float32 sum of a whole
    channel (tens of thousands of values) would lose digits that torch keeps.
    Here a float32 input is added up in float32 partial sums of at most
    _PARTIAL values each (matrix products with a vector of ones, at BLAS's
    speed) and only those are added in float64. Their error is far below the
    float32 rounding the callers apply to the statistics before they meet the
    elements (on inputs of mean 0, 50 and 1000, BatchNorm2d's outputs came out
    bit for bit as with every element cast to float64), at a tenth of the
    cost. Other dtypes are summed in float64.

    The products follow the input's memory order: channels-last memory is
    (M, C), rows summed _PARTIAL at a time by ones @ rows; channels-first is
    (N*C, L), each row summed by rows @ ones(L), _PARTIAL columns at a time.
    NumPy's own reduction over axes (0, 2, 3) runs short inner loops and
    takes about six times as long.
    """
    C = a.shape[1]
    last = np.moveaxis(a, 1, -1)
    if last.flags.c_contiguous:  # channels-last (or 2-D): rows of C
        rows, per_row = last.reshape(-1, C), False
    elif a.flags.c_contiguous:  # channels-first: a row of L values per (sample, channel)
        rows, per_row = a.reshape(a.shape[0] * C, -1), True
    else:
        return a.sum(axis=(0,) + tuple(range(2, a.ndim)), dtype=np.float64)
    work = np.float32 if rows.dtype == np.float32 else np.float64
    if per_row:
        sums = np.zeros(rows.shape[0])
        for s in range(0, rows.shape[1], _PARTIAL):
            block = rows[:, s:s + _PARTIAL].astype(work, copy=False)
            sums += block @ np.ones(block.shape[1], dtype=work)
        return sums.reshape(a.shape[0], C).sum(axis=0)
    whole = rows.shape[0] // _PARTIAL * _PARTIAL
    partials = np.ones(_PARTIAL, dtype=work) @ rows[:whole].reshape(-1, _PARTIAL, C).astype(work, copy=False)
    return partials.sum(axis=0, dtype=np.float64) + rows[whole:].sum(axis=0, dtype=np.float64)


def per_channel(v: np.ndarray, like: np.ndarray) -> np.ndarray:
    """A per-channel vector v (C,) shaped to broadcast against ``like`` (N, C, ...), in like's memory order.

    (1, C, 1, 1) would do, but NumPy then runs its general strided loop: over
    channels-last memory, loops of only C values (the zero strides of v keep
    it from merging the other axes into one loop), several times slower; over
    channels-first memory, rows of H*W values against a repeated scalar, which
    its vectorised loops do not cover (twice the time of a plain pass). Tiled
    over one sample, v has the sample's own layout, and each loop runs over a
    whole sample of two contiguous operands.
    """
    spatial = like.shape[2:]
    if math.prod(spatial) <= 1:  # (N, C): rows of C, contiguous already
        return v.reshape((1, -1) + (1,) * len(spatial))
    if not like.flags.c_contiguous and np.moveaxis(like, 1, -1).flags.c_contiguous:  # channels-last
        return np.moveaxis(np.tile(v, math.prod(spatial)).reshape((1,) + spatial + (-1,)), -1, 1)
    return np.repeat(v, math.prod(spatial)).reshape((1, -1) + spatial)
