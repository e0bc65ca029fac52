"""im2col and col2im: a convolution as one matrix product (the book's, chapter 7.4, with dilation).

A convolution slides a (KH, KW) window over the image and takes a dot product
with the filter at every position. im2col copies every window into one row of a
matrix, so that all those dot products become a single matrix product:

    col (N*OH*OW, C*KH*KW) @ weight.reshape(O, C*KH*KW).T -> out (N*OH*OW, O)

The loops run over the KH*KW kernel taps, never over pixels: the pixels that
tap (p, q) sees in every window are one strided slice of the image,
x[:, :, p*dh : p*dh + sh*(OH-1) + 1 : sh, q*dw : ...]. col2im is im2col's
adjoint: it adds each column of a gradient back onto the pixels it was copied
from; where windows overlap, the sums add up.

These are what Conv2d's plain path uses; the fast path (channels-last,
chunked, threaded: ``scratch/fast/im2col.py``) is tested equal to them.
"""
import numpy as np


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """PyTorch's formula: floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def tap(x: np.ndarray, p: int, q: int, stride, dilation, out_size) -> np.ndarray:
    """The strided slice of x (..., H, W) that kernel tap (p, q) sees in every window: (..., OH, OW)."""
    (sh, sw), (dh, dw), (oh, ow) = stride, dilation, out_size
    return x[..., p * dh:p * dh + sh * (oh - 1) + 1:sh, q * dw:q * dw + sw * (ow - 1) + 1:sw]


def im2col(x: np.ndarray, kernel, stride=(1, 1), dilation=(1, 1)) -> np.ndarray:
    """(N, C, H, W), already padded -> col (N*OH*OW, C*KH*KW); row = window, columns in (c, p, q) order."""
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    out_size = conv_output_size(H, kh, sh, 0, dh), conv_output_size(W, kw, sw, 0, dw)
    col = np.empty((N, C, kh, kw) + out_size, dtype=x.dtype)
    for p in range(kh):
        for q in range(kw):
            col[:, :, p, q] = tap(x, p, q, stride, dilation, out_size)
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(N * out_size[0] * out_size[1], C * kh * kw)


def col2im(col: np.ndarray, shape, kernel, stride=(1, 1), dilation=(1, 1)) -> np.ndarray:
    """im2col's adjoint: col (N*OH*OW, C*KH*KW) -> (N, C, H, W) of the padded ``shape``, overlaps summed."""
    N, C, H, W = shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    oh, ow = conv_output_size(H, kh, sh, 0, dh), conv_output_size(W, kw, sw, 0, dw)
    col = col.reshape(N, oh, ow, C, kh, kw).transpose(0, 3, 4, 5, 1, 2)  # (N, C, KH, KW, OH, OW)
    x = np.zeros(shape, dtype=col.dtype)
    for p in range(kh):
        for q in range(kw):
            tap(x, p, q, stride, dilation, (oh, ow))[...] += col[:, :, p, q]
    return x
