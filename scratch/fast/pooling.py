"""MaxPool2d's and AvgPool2d's fast path: channels-last work, boolean routes, samples split over threads.

The same results as the plain code (scratch/nn/pooling.py). The work is done in
a channels-last view of the input, so that a channels-last input (what the
fast Conv2d returns) is read in memory order and the output keeps that layout.
Max pooling takes the maximum tap by tap with np.maximum (which propagates NaN,
as torch's max does) and routes the gradient through boolean masks (one per
tap, tie-broken as PyTorch's scan) instead of an argmax index.
"""
import numpy as np

from scratch.fast import parallel
from scratch.fast.im2col import pad_channels_last
from scratch.nn.module import check_grad_output


def _tap(a: np.ndarray, p: int, q: int, stride, dilation, out_size) -> np.ndarray:
    """The strided slice of channels-last ``a`` (N, H, W, C) that kernel tap (p, q) sees in every window."""
    (sh, sw), (dh, dw), (oh, ow) = stride, dilation, out_size
    return a[:, p * dh:p * dh + sh * (oh - 1) + 1:sh, q * dw:q * dw + sw * (ow - 1) + 1:sw]


def _taps(m, a: np.ndarray, out_size) -> list:
    kh, kw = m.kernel_size
    return [_tap(a, p, q, m.stride, m.dilation, out_size) for p in range(kh) for q in range(kw)]


def _pad_nhwc(xt: np.ndarray, pads, value) -> np.ndarray:
    """Pad a channels-last (N, H, W, C) view (im2col's padding); no copy when there is nothing to pad."""
    if not any(pads):
        return xt
    return pad_channels_last(xt.transpose(0, 3, 1, 2), pads, value)


def _grad_output(m, grad_output, channels_last_padded_shape, out_size, unbatched) -> np.ndarray:
    """grad_output checked against the output's shape, (N, C, OH, OW), in the channels-last view of the work."""
    N, _, _, C = channels_last_padded_shape
    g = check_grad_output(m, grad_output, ((N,) if not unbatched else ()) + (C,) + tuple(out_size))
    return (g[None] if unbatched else g).transpose(0, 2, 3, 1)


# -- MaxPool2d ----------------------------------------------------------------
def max_forward(m, x: np.ndarray, out_size, pads, unbatched: bool, lowest):
    """(out, indices or None); m.cache gets what max_backward needs. ``lowest``: the padding value."""
    xp = _pad_nhwc(x.transpose(0, 2, 3, 1), pads, lowest)
    out = np.empty((xp.shape[0],) + out_size + (xp.shape[3],), dtype=xp.dtype)

    def samples(a, b):
        taps = _taps(m, xp[a:b], out_size)
        # np.maximum propagates NaN, as PyTorch's max does. (A 1x1 window: max(t, t) copies its one tap.)
        np.maximum(taps[0], taps[1 if len(taps) > 1 else 0], out=out[a:b])
        for tap in taps[2:]:
            np.maximum(out[a:b], tap, out=out[a:b])

    parallel.parts(samples, xp.shape[0], nbytes=xp.nbytes)
    m.cache = (xp, out, pads, out_size, unbatched, lowest)
    result = out.transpose(0, 3, 1, 2)
    result = result[0] if unbatched else result
    return result, (_indices(m, x.shape[3]) if m.return_indices else None)


def _indices(m, W: int) -> np.ndarray:
    """Per output, h * W + w of the input element its routes pick (torch's return_indices)."""
    xp, out, pads, out_size, unbatched, lowest = m.cache
    (sh, sw), (dh, dw), kw = m.stride, m.dilation, m.kernel_size[1]
    top, left = pads[0], pads[2]
    h0, w0 = np.arange(out_size[0]) * sh - top, np.arange(out_size[1]) * sw - left
    indices = np.zeros(out.shape, dtype=np.int64)
    for k, route in enumerate(_routes(m, xp, out, pads, out_size, lowest)):
        p, q = divmod(k, kw)
        indices += route * ((h0[:, None] + p * dh) * W + (w0 + q * dw))[:, :, None]  # one route per window
    indices = indices.transpose(0, 3, 1, 2)
    return indices[0] if unbatched else indices


def _routes(m, xp: np.ndarray, out: np.ndarray, pads, out_size, lowest) -> list:
    """For each kernel tap, the windows where it holds the element PyTorch's scan picks (one tap a window)."""
    taps = _taps(m, xp, out_size)
    routes = [tap == out for tap in taps]  # contiguous booleans: the mask arithmetic below is cheap
    top, bottom, left, right = pads
    if (top or bottom or left or right) and (out == lowest).any():
        # A window whose maximum is the padding value (-inf) equals its padding too; PyTorch's scan never
        # looks at the padding, so its first in-bounds element is the one picked.
        _, Hp, Wp, _ = xp.shape
        inside = _pad_nhwc(np.ones((1, Hp - top - bottom, Wp - left - right, 1), dtype=bool), pads, False)
        for route, tap in zip(routes, _taps(m, inside, out_size)):
            route &= tap
    _keep_first(routes, taps, out)
    return routes


def _keep_first(masks, taps, out) -> None:
    """Reduce masks[k] (tap k == the window's max) to the windows whose gradient goes to tap k, in place.

    PyTorch's kernel scans a window taking a value larger than the best so
    far, or NaN: so the first tap equal to the maximum, or the last NaN.
    Plain boolean arithmetic (no masked writes, which are slow in NumPy).
    """
    if np.isnan(out).any():  # NaN equals nothing: mark each NaN window's last NaN tap
        seen = np.zeros(out.shape, dtype=bool)
        for k in range(len(taps) - 1, -1, -1):
            last = np.isnan(taps[k])
            np.greater(last, seen, out=last)  # a & ~b for booleans
            seen |= last
            masks[k] |= last
    taken = masks[0].copy()
    for k in range(1, len(masks)):
        np.greater(masks[k], taken, out=masks[k])
        if k < len(masks) - 1:
            taken |= masks[k]


def max_backward(m, grad_output: np.ndarray) -> np.ndarray:
    xp, out, pads, out_size, unbatched, lowest = m.cache
    g = _grad_output(m, grad_output, xp.shape, out_size, unbatched)
    (kh, kw), (sh, sw), (dh, dw) = m.kernel_size, m.stride, m.dilation
    (oh, ow), (_, Hp, Wp, _) = out_size, xp.shape
    top, bottom, left, right = pads
    # Windows that tile the input write every pixel exactly once: no zeroing, no adding.
    tiled = (sh, sw) == (kh, kw) and (dh, dw) == (1, 1) and (Hp, Wp) == (oh * kh, ow * kw)
    dxp = (np.empty if tiled else np.zeros)(xp.shape, dtype=out.dtype)

    def samples(a, b):
        ga = np.ascontiguousarray(g[a:b], dtype=out.dtype)  # the forward's layout: the passes run in memory order
        routes = _routes(m, xp[a:b], out[a:b], pads, out_size, lowest)
        for tap, route in zip(_taps(m, dxp[a:b], out_size), routes):
            if tiled:
                np.multiply(ga, route, out=tap)
            else:
                tap += ga * route  # windows may overlap (or miss pixels): add into zeros

    parallel.parts(samples, xp.shape[0], nbytes=xp.nbytes)
    dx = dxp[:, top:Hp - bottom, left:Wp - right].transpose(0, 3, 1, 2)
    return dx[0] if unbatched else dx


# -- AvgPool2d ----------------------------------------------------------------
def avg_forward(m, x: np.ndarray, out_size, pads, divisor, unbatched: bool) -> np.ndarray:
    """The sums over the KH*KW taps in the channels-last view, divided by ``divisor`` (OH, OW)."""
    xp = _pad_nhwc(x.transpose(0, 2, 3, 1), pads, 0)
    taps = _taps(m, xp, out_size)
    total = taps[0].copy()
    for tap in taps[1:]:
        total += tap
    divisor = divisor[..., None]  # (OH, OW, 1): against (N, OH, OW, C)
    total /= divisor
    m.cache = (divisor, xp.shape, pads, out_size, unbatched)
    out = total.transpose(0, 3, 1, 2)
    return out[0] if unbatched else out


def avg_backward(m, grad_output: np.ndarray) -> np.ndarray:
    divisor, padded_shape, pads, out_size, unbatched = m.cache
    g = _grad_output(m, grad_output, padded_shape, out_size, unbatched) / divisor
    dxp = np.zeros(padded_shape, dtype=g.dtype)
    for tap in _taps(m, dxp, out_size):
        tap += g
    top, bottom, left, right = pads
    dx = dxp[:, top:padded_shape[1] - bottom, left:padded_shape[2] - right].transpose(0, 3, 1, 2)
    return dx[0] if unbatched else dx
