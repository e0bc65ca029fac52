"""Conv2d's fast path: channels-last memory, chunked im2col, the bias as a column of ones, threads.

The same sums as Conv2d's plain code (scratch/nn/conv.py), arranged for speed:

- the padded input is laid out channels-last, (N, Hp, Wp, C): a window row of
  KW pixels by C channels is one contiguous run, so im2col copies it cheaply,
  and the product's output (N*OH*OW, O) is channels-last again; it is returned
  as a transposed view with the (N, O, OH, OW) shape, which the elementwise
  layers and pooling keep and the next convolution reads without reordering;
- with many channels col is built a few samples at a time and never kept whole
  (``conv_product``, ``weight_product``: the backward builds it again from the
  padded input it caches); with one to three, it is small and kept;
- with stride 1, dL/dx is a convolution of g with the flipped kernel
  (``transposed_input``); with a larger stride, ``col2im_product``; with one to
  three input channels, col2im(g W) itself (a small column gradient);
- with few input channels the bias rides in the products: col gets a column of
  ones and W the bias as one more column, so col @ W^T includes + b and g^T col
  ends with sum g; with many, each chunk of rows gets + b right after its product;
- the samples of a batch are split over ``scratch.fast.parallel``'s threads.
"""
import numpy as np

from scratch.fast import parallel
from scratch.fast.channels import channel_sum, per_channel
from scratch.fast.im2col import (TAP_MAJOR_MAX_CHANNELS, chunk_samples, col2im, col2im_product, conv_product, im2col,
                                 pad_channels_last, transposed_input, weight_product)
from scratch.nn.im2col import conv_output_size
from scratch.nn.module import check_grad_output


class _Cache(tuple):
    """(padded channels-last input, tap-major cols or None, output size, unbatched): the fast path's cache."""


def forward(m, x: np.ndarray, unbatched: bool) -> np.ndarray:
    N, C, H, W = x.shape
    top, bottom, left, right = m._pads
    Hp, Wp = H + top + bottom, W + left + right
    (kh, kw), (sh, sw), (dh, dw) = m.kernel_size, m.stride, m.dilation
    oh, ow = conv_output_size(Hp, kh, sh, 0, dh), conv_output_size(Wp, kw, sw, 0, dw)
    xp = pad_channels_last(x, m._pads)  # (N, Hp, Wp, C)
    G, O = m.groups, m.out_channels
    Cg, Og = C // G, O // G
    out = np.empty((N * oh * ow, O), dtype=x.dtype)
    # A tap-major col takes its ones as one more contiguous row, for free; a row-major one
    # would get rows of K+1 values, which costs the copy and the product more than a separate pass.
    tap_major = Cg <= TAP_MAJOR_MAX_CHANNELS
    ones = m.bias is not None and tap_major
    bias_added = ones
    # With one to three channels the whole col is small (KH*KW*C + 1 columns): it is built once and
    # kept for the backward (in the memory of the last one) rather than built again there.
    old = m.cache[1] if isinstance(m.cache, _Cache) and m.cache[1] is not None else [None] * G
    cols = [] if tap_major else None
    for g in range(G):
        xg, wt = xp[..., g * Cg:(g + 1) * Cg], _weight_matrix(m, g, ones).T
        og = out[:, g * Og:(g + 1) * Og] if G > 1 else out
        if tap_major:
            col = im2col(xg, m.kernel_size, m.stride, m.dilation,
                         out=old[g] if len(old) == G else None, ones=ones)
            cols.append(col)
            P = oh * ow
            parallel.parts(lambda a, b: np.matmul(col[a * P:b * P], wt, out=og[a * P:b * P]), N,
                           nbytes=col.nbytes, blas=True)
        elif G == 1:  # out is whole (C-contiguous): the chunks add the bias themselves
            conv_product(xg, wt, m.kernel_size, m.stride, m.dilation, out=og,
                         bias=None if m.bias is None else m.bias.data)
            bias_added = True
        else:
            conv_product(xg, wt, m.kernel_size, m.stride, m.dilation, out=og)
    m.cache = _Cache((xp, cols, (oh, ow), unbatched))
    out = out.reshape(N, oh, ow, O).transpose(0, 3, 1, 2)
    if m.bias is not None and not bias_added:
        out += per_channel(m.bias.data, out)  # in out's channels-last memory order
    return out[0] if unbatched else out


def _weight_matrix(m, g: int, with_bias: bool) -> np.ndarray:
    """Group g's weight as (O/G, KH*KW*C/G), im2col's column order; with_bias: the bias as one more column."""
    Og = m.out_channels // m.groups
    w = m.weight.data[g * Og:(g + 1) * Og].transpose(0, 2, 3, 1).reshape(Og, -1)
    if not with_bias:
        return w
    return np.concatenate([w, m.bias.data[g * Og:(g + 1) * Og, None]], axis=1)


def backward(m, grad_output: np.ndarray) -> np.ndarray:
    xp, cols, (oh, ow), unbatched = m.cache
    N, Hp, Wp, C = xp.shape
    G, O = m.groups, m.out_channels
    grad_output = check_grad_output(m, grad_output, ((N,) if not unbatched else ()) + (O, oh, ow))
    if unbatched:
        grad_output = grad_output[None]
    Cg, Og = C // G, O // G
    kh, kw = m.kernel_size
    top, bottom, left, right = m._pads
    H, W = Hp - top - bottom, Wp - left - right
    g_all = grad_output.transpose(0, 2, 3, 1).reshape(N * oh * ow, O)  # a copy only if not channels-last
    ones = m.bias is not None and cols is not None
    strided = m.stride != (1, 1)
    # dL/dx as a convolution of g needs im2col of g, KH*KW*O columns: for a 1-3 channel input that is
    # far more than the (N*OH*OW, KH*KW*C) column gradient g W, so there col2im(g W) is used.
    padded_dx = strided or cols is not None
    dw = np.empty(m.weight.shape, dtype=g_all.dtype)
    db = np.empty(O, dtype=g_all.dtype) if m.bias is not None else None
    dx = None
    if m.needs_input_grad:
        dx = np.zeros(xp.shape, dtype=g_all.dtype) if padded_dx else np.empty((N * H * W, C), dtype=g_all.dtype)
    K = kh * kw * Cg
    for g in range(G):
        gg = g_all[:, g * Og:(g + 1) * Og] if G > 1 else g_all
        xg = xp[..., g * Cg:(g + 1) * Cg]
        # (O/G, K [+1]): the last column is the bias gradient where col has its ones
        if cols:
            col, P = cols[g], oh * ow
            per = chunk_samples(P * col.shape[1] * col.itemsize)
            dwb = parallel.summed(lambda a, b: gg[a * P:b * P].T @ col[a * P:b * P], N, per)
        else:
            dwb = weight_product(xg, gg, m.kernel_size, m.stride, m.dilation)
        dw[g * Og:(g + 1) * Og] = dwb[:, :K].reshape(Og, kh, kw, Cg).transpose(0, 3, 1, 2)
        if db is not None:
            db[g * Og:(g + 1) * Og] = dwb[:, K] if ones else channel_sum(gg)
        if dx is None:
            continue
        wg = m.weight.data[g * Og:(g + 1) * Og]
        if cols:
            col2im(gg @ _weight_matrix(m, g, False), xg.shape, m.kernel_size, m.stride, m.dilation,
                   out=dx[..., g * Cg:(g + 1) * Cg])
        elif strided:
            col2im_product(gg, wg, xg.shape, m.kernel_size, m.stride, m.dilation,
                           out=dx[..., g * Cg:(g + 1) * Cg])
        else:
            transposed_input(gg.reshape(N, oh, ow, Og), wg, (H, W), m._pads, m.kernel_size,
                             m.dilation, out=dx[:, g * Cg:(g + 1) * Cg] if G > 1 else dx)
    m.weight.accumulate_grad(dw)
    if db is not None:
        m.bias.accumulate_grad(db)
    if dx is None:
        return None
    dx = dx[:, top:Hp - bottom, left:Wp - right] if padded_dx else dx.reshape(N, H, W, C)
    dx = dx.transpose(0, 3, 1, 2)
    return dx[0] if unbatched else dx
