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


# Rows of a float32 input cast to float64 at a time: a chunk that stays in the cache.
_SUM_CHUNK_ROWS = 4096


def channel_sum(a: np.ndarray) -> np.ndarray:
    """Per-channel sums (C,) of a (N, C, ...), accumulated in float64 whatever a's dtype.

    PyTorch's CPU batch norm accumulates in double too; a float32 sum of
    thousands of values would otherwise lose digits that torch keeps (callers
    cast the sums back to the input's dtype before they meet the elements).

    The sums are matrix-vector products with a vector of ones, in the input's
    memory order: channels-last memory is (M, C), rows summed by ones(M) @ rows;
    channels-first is (N*C, L), each row summed by rows @ ones(L). NumPy's own
    reduction over axes (0, 2, 3) runs short inner loops and takes about six
    times as long. A float32 input is cast to float64 a few thousand rows at a
    time, so that the copy stays in the cache.
    """
    C = a.shape[1]
    last = np.moveaxis(a, 1, -1)
    if last.flags.c_contiguous:  # channels-last (or 2-D): rows of C
        rows, per_row = last.reshape(-1, C), False
    elif a.flags.c_contiguous:  # channels-first: a row of L values per (sample, channel)
        rows, per_row = a.reshape(a.shape[0] * C, -1), True
    else:
        return a.sum(axis=(0,) + tuple(range(2, a.ndim)), dtype=np.float64)
    step = rows.shape[0] if rows.dtype == np.float64 else _SUM_CHUNK_ROWS
    sums = []
    for s in range(0, rows.shape[0], step):
        block = rows[s:s + step].astype(np.float64, copy=False)
        sums.append(block @ np.ones(block.shape[1]) if per_row else np.ones(block.shape[0]) @ block)
    if per_row:
        return np.concatenate(sums).reshape(a.shape[0], C).sum(axis=0)
    return np.sum(sums, axis=0)


def per_channel(v: np.ndarray, like: np.ndarray) -> np.ndarray:
    """A per-channel vector v (C,) shaped to broadcast against ``like`` (N, C, ...), in like's memory order.

    (1, C, 1, 1) would do, but over channels-last memory NumPy then loops over
    C values at a time (the zero strides of v keep it from merging the other
    axes into one loop), several times slower. Tiled over one sample, v has the
    sample's own layout, and each loop runs over a whole sample.
    """
    shape = (1, -1) + (1,) * (like.ndim - 2)
    if like.ndim > 2 and not like.flags.c_contiguous and np.moveaxis(like, 1, -1).flags.c_contiguous:
        return np.moveaxis(np.tile(v, math.prod(like.shape[2:])).reshape((1,) + like.shape[2:] + (-1,)), -1, 1)
    return v.reshape(shape)
