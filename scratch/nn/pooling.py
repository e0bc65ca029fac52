"""Pooling over (N, C, H, W) images: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d.

Max and average pooling loop over the KH*KW kernel offsets, never over pixels:
for each offset (p, q), the values that offset sees in every window form one
strided slice of the (padded) input, so a pooling layer is KH*KW vectorised
operations. The work is done in a channels-last view of the input, so that a
channels-last input (what Conv2d returns) is read in memory order; the output
keeps the input's layout.
"""
import numpy as np

from scratch import parallel
from scratch.nn.conv import _pair
from scratch.nn.im2col import pad_channels_last
from scratch.nn.module import Module, check_floating, check_grad_output


def pool_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """PyTorch's pooling formula; with ceil_mode the last window must start inside the input or left padding."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _batched(name: str, x: np.ndarray):
    x = np.asarray(x)
    if x.ndim not in (3, 4) or x.size == 0:
        raise RuntimeError(f"{name}: non-empty 3D or 4D (batch mode) tensor expected for input, got shape {x.shape}")
    return (x[None], True) if x.ndim == 3 else (x, False)


def _tap(a: np.ndarray, p: int, q: int, stride, dilation, out_size) -> np.ndarray:
    """The strided slice of channels-last ``a`` (N, H, W, C) that kernel tap (p, q) sees in every window."""
    (sh, sw), (dh, dw), (oh, ow) = stride, dilation, out_size
    return a[:, p * dh:p * dh + sh * (oh - 1) + 1:sh, q * dw:q * dw + sw * (ow - 1) + 1:sw]


class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None or stride == [] else _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        self.dilation = _pair(dilation, "dilation")
        self.ceil_mode = bool(ceil_mode)
        if min(self.kernel_size) <= 0:
            raise ValueError(f"{self._get_name()}: kernel_size must be greater than zero, got {self.kernel_size}")
        if min(self.stride) <= 0:
            raise ValueError(f"{self._get_name()}: stride must be greater than zero, got {self.stride}")
        if min(self.dilation) <= 0:
            raise ValueError(f"{self._get_name()}: dilation must be greater than zero, got {self.dilation}")
        for p, k, d in zip(self.padding, self.kernel_size, self.dilation):
            # PyTorch checks both p <= (d (k - 1) + 1) / 2 and p <= k / 2; the second is the tighter.
            if p < 0 or p > k // 2:
                raise ValueError(
                    f"pad should be at most half of effective kernel size, but got pad={p}, kernel_size={k} "
                    f"and dilation={d}"
                )
        self.cache = None

    def _geometry(self, x: np.ndarray):
        """Output size and the (bottom, right) padding that lets the last ceil_mode window fit."""
        N, C, H, W = x.shape
        out, extra = [], []
        for size, k, s, p, d in zip((H, W), self.kernel_size, self.stride, self.padding, self.dilation):
            o = pool_output_size(size, k, s, p, d, self.ceil_mode)
            out.append(o)
            extra.append(max((o - 1) * s + d * (k - 1) + 1 - size - p, p))
        if min(out) <= 0:
            raise RuntimeError(
                f"Given input size: ({C}x{H}x{W}). Calculated output size: ({C}x{out[0]}x{out[1]}). "
                "Output size is too small"
            )
        (ph, pw), (eh, ew) = self.padding, extra
        return tuple(out), (ph, eh, pw, ew)

    def _grad_output(self, grad_output, channels_last_padded_shape, out_size, unbatched) -> np.ndarray:
        """grad_output checked against the output's shape, (N, C, OH, OW), in the channels-last view of the work."""
        N, _, _, C = channels_last_padded_shape
        g = check_grad_output(self, grad_output, ((N,) if not unbatched else ()) + (C,) + tuple(out_size))
        return (g[None] if unbatched else g).transpose(0, 2, 3, 1)

    def extra_repr(self) -> str:
        return f"kernel_size={_one(self.kernel_size)}, stride={_one(self.stride)}, padding={_one(self.padding)}"


def _one(pair):
    """A pair of equal values printed as one, as PyTorch prints an int argument."""
    return pair[0] if pair[0] == pair[1] else pair


def _lowest(dtype):
    """MaxPool's padding value: -inf, or an integer dtype's least value (integers pool too, as in torch)."""
    return -np.inf if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min


def _pad_nhwc(xt: np.ndarray, pads, value) -> np.ndarray:
    """Pad a channels-last (N, H, W, C) view (im2col's padding); no copy when there is nothing to pad."""
    if not any(pads):
        return xt
    return pad_channels_last(xt.transpose(0, 3, 1, 2), pads, value)


class MaxPool2d(_Pool2d):
    r"""out[n, c, i, j] = max_{p, q} x_pad[n, c, i*sh + p*dh, j*sw + q*dw], padding with -inf.

    Args: kernel_size, stride (default kernel_size), padding (<= half the
    effective kernel), dilation, ceil_mode (round the output size up, keeping
    windows that start inside the input or the left padding), as PyTorch.

    Shapes: (N, C, H, W) or (C, H, W) -> (N, C, OH, OW) or (C, OH, OW),
    OH = floor_or_ceil((H + 2 ph - dh (KH - 1) - 1) / sh) + 1.

    Backward: the whole gradient of each output goes to the one input element
    that was its maximum; with ties, the first in the window's row-major scan
    (a NaN counts as the maximum), which is the index PyTorch's kernel picks.
    Overlapping windows add their gradients.

    return_indices: forward returns (out, indices), indices (int64, out's
    shape) holding for each output the flat position h * W + w of that element
    in its (H, W) input plane, as torch's.
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)
        self.return_indices = bool(return_indices)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x, unbatched = _batched("max_pool2d", x)
        out_size, pads = self._geometry(x)
        xp = _pad_nhwc(x.transpose(0, 2, 3, 1), pads, _lowest(x.dtype))
        out = np.empty((xp.shape[0],) + out_size + (xp.shape[3],), dtype=xp.dtype)

        def samples(a, b):
            taps = self._taps(xp[a:b], out_size)
            # np.maximum propagates NaN, as PyTorch's max does. (A 1x1 window: max(t, t) copies its one tap.)
            np.maximum(taps[0], taps[1 if len(taps) > 1 else 0], out=out[a:b])
            for tap in taps[2:]:
                np.maximum(out[a:b], tap, out=out[a:b])

        parallel.parts(samples, xp.shape[0], nbytes=xp.nbytes)
        self.cache = (xp, out, pads, out_size, unbatched)
        result = out.transpose(0, 3, 1, 2)
        result = result[0] if unbatched else result
        return (result, self._indices(x.shape[3])) if self.return_indices else result

    def _indices(self, W: int) -> np.ndarray:
        """Per output, h * W + w of the input element its routes pick (torch's return_indices)."""
        xp, out, pads, out_size, unbatched = self.cache
        (sh, sw), (dh, dw), kw = self.stride, self.dilation, self.kernel_size[1]
        top, left = pads[0], pads[2]
        h0, w0 = np.arange(out_size[0]) * sh - top, np.arange(out_size[1]) * sw - left
        indices = np.zeros(out.shape, dtype=np.int64)
        for k, route in enumerate(self._routes(xp, out, pads, out_size)):
            p, q = divmod(k, kw)
            indices += route * ((h0[:, None] + p * dh) * W + (w0 + q * dw))[:, :, None]  # one route per window
        indices = indices.transpose(0, 3, 1, 2)
        return indices[0] if unbatched else indices

    def _taps(self, a: np.ndarray, out_size) -> list:
        kh, kw = self.kernel_size
        return [_tap(a, p, q, self.stride, self.dilation, out_size) for p in range(kh) for q in range(kw)]

    def _routes(self, xp: np.ndarray, out: np.ndarray, pads, out_size) -> list:
        """For each kernel tap, the windows where it holds the element PyTorch's scan picks (one tap a window)."""
        taps = self._taps(xp, out_size)
        routes = [tap == out for tap in taps]  # contiguous booleans: the mask arithmetic below is cheap
        top, bottom, left, right = pads
        if (top or bottom or left or right) and (out == _lowest(out.dtype)).any():
            # A window whose maximum is the padding value (-inf) equals its padding too; PyTorch's scan never
            # looks at the padding, so its first in-bounds element is the one picked.
            _, Hp, Wp, _ = xp.shape
            inside = _pad_nhwc(np.ones((1, Hp - top - bottom, Wp - left - right, 1), dtype=bool), pads, False)
            for route, tap in zip(routes, self._taps(inside, out_size)):
                route &= tap
        self._keep_first(routes, taps, out)
        return routes

    @staticmethod
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

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        xp, out, pads, out_size, unbatched = self.cache
        g = self._grad_output(grad_output, xp.shape, out_size, unbatched)
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        (oh, ow), (_, Hp, Wp, _) = out_size, xp.shape
        top, bottom, left, right = pads
        # Windows that tile the input write every pixel exactly once: no zeroing, no adding.
        tiled = (sh, sw) == (kh, kw) and (dh, dw) == (1, 1) and (Hp, Wp) == (oh * kh, ow * kw)
        dxp = (np.empty if tiled else np.zeros)(xp.shape, dtype=out.dtype)

        def samples(a, b):
            ga = np.ascontiguousarray(g[a:b], dtype=out.dtype)  # the forward's layout: the passes run in memory order
            routes = self._routes(xp[a:b], out[a:b], pads, out_size)
            for tap, route in zip(self._taps(dxp[a:b], out_size), routes):
                if tiled:
                    np.multiply(ga, route, out=tap)
                else:
                    tap += ga * route  # windows may overlap (or miss pixels): add into zeros

        parallel.parts(samples, xp.shape[0], nbytes=xp.nbytes)
        dx = dxp[:, top:Hp - bottom, left:Wp - right].transpose(0, 3, 1, 2)
        return dx[0] if unbatched else dx

    def extra_repr(self) -> str:
        return super().extra_repr() + f", dilation={_one(self.dilation)}, ceil_mode={self.ceil_mode}"


class AvgPool2d(_Pool2d):
    r"""out[n, c, i, j] = (1 / D_ij) sum_{p, q} x_pad[n, c, i*sh + p, j*sw + q], zero padding.

    Args: kernel_size, stride (default kernel_size), padding (<= half the
    kernel), ceil_mode, count_include_pad (default True), divisor_override.

    The divisor D_ij, as PyTorch computes it: the window clipped to the padded
    input (H + 2 ph rows) has (h1 - h0) rows and (w1 - w0) columns; D = that
    area with count_include_pad, else the area of the window clipped to the
    input itself; or ``divisor_override`` when given. D is a product of a row
    factor and a column factor, so it is an outer product of two vectors.

    Shapes: (N, C, H, W) or (C, H, W) -> (N, C, OH, OW) or (C, OH, OW).

    Backward: dL/dx_pad[window of (i, j)] += g[i, j] / D_ij, windows adding up.
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None):
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)
        if divisor_override is not None and divisor_override == 0:
            raise RuntimeError("divisor must be not zero")
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = divisor_override

    def _divisor(self, H: int, W: int, out_size, dtype) -> np.ndarray:
        if self.divisor_override is not None:
            return np.asarray(self.divisor_override, dtype=dtype)
        factors = []
        for size, o, k, s, p in zip((H, W), out_size, self.kernel_size, self.stride, self.padding):
            start = np.arange(o) * s - p
            end = np.minimum(start + k, size + p)
            if not self.count_include_pad:
                start, end = np.maximum(start, 0), np.minimum(end, size)
            factors.append(end - start)
        return np.multiply.outer(factors[0], factors[1]).astype(dtype)[:, :, None]  # (OH, OW, 1)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x, unbatched = _batched("avg_pool2d", x)
        check_floating(self, x)
        out_size, pads = self._geometry(x)
        xp = _pad_nhwc(x.transpose(0, 2, 3, 1), pads, 0)
        kh, kw = self.kernel_size
        total = _tap(xp, 0, 0, self.stride, self.dilation, out_size).copy()
        for k in range(1, kh * kw):
            total += _tap(xp, k // kw, k % kw, self.stride, self.dilation, out_size)
        divisor = self._divisor(x.shape[2], x.shape[3], out_size, x.dtype)
        total /= divisor
        self.cache = (divisor, xp.shape, pads, out_size, unbatched)
        out = total.transpose(0, 3, 1, 2)
        return out[0] if unbatched else out

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        divisor, padded_shape, pads, out_size, unbatched = self.cache
        g = self._grad_output(grad_output, padded_shape, out_size, unbatched) / divisor
        dxp = np.zeros(padded_shape, dtype=g.dtype)
        kh, kw = self.kernel_size
        for k in range(kh * kw):
            _tap(dxp, k // kw, k % kw, self.stride, self.dilation, out_size)[...] += g
        top, bottom, left, right = pads
        dx = dxp[:, top:padded_shape[1] - bottom, left:padded_shape[2] - right].transpose(0, 3, 1, 2)
        return dx[0] if unbatched else dx


class AdaptiveAvgPool2d(Module):
    r"""Average pooling to a fixed output size (OH, OW), whatever the input size.

    Output row i averages input rows [floor(i H / OH), ceil((i+1) H / OH)), as
    PyTorch; likewise columns. That is a linear map on each axis, so
        out = A_h x A_w^T,   A_h[i, r] = 1 / len_i for r in window i (else 0),
    two small matrix products; backward: dL/dx = A_h^T g A_w.

    Args: output_size: int or (OH, OW); None in the tuple keeps that input size.
    Shapes: (N, C, H, W) or (C, H, W) -> (N, C, OH, OW) or (C, OH, OW).
    """

    def __init__(self, output_size):
        super().__init__()
        if isinstance(output_size, (int, np.integer)) or output_size is None:
            output_size = (output_size, output_size)
        self.output_size = tuple(output_size)
        if len(self.output_size) != 2:
            raise ValueError(f"AdaptiveAvgPool2d: output_size must be an int or a pair, got {output_size}")
        self.cache = None  # (averaging matrices over H and W, output shape)

    @staticmethod
    def _averaging_matrix(size: int, out: int, dtype) -> np.ndarray:
        i = np.arange(out)
        start = (i * size) // out
        end = -((-(i + 1) * size) // out)
        r = np.arange(size)
        inside = (r >= start[:, None]) & (r < end[:, None])
        return (inside / (end - start)[:, None]).astype(dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim not in (3, 4):
            raise RuntimeError(f"adaptive_avg_pool2d(): Expected 3D or 4D tensor, but got {list(x.shape)}")
        check_floating(self, x)
        H, W = x.shape[-2:]
        oh, ow = (H if self.output_size[0] is None else self.output_size[0],
                  W if self.output_size[1] is None else self.output_size[1])
        if oh <= 0 or ow <= 0 or H == 0 or W == 0:
            raise RuntimeError(
                f"adaptive_avg_pool2d(): output size {(oh, ow)} and input size {(H, W)} must be non-empty"
            )
        a_h = self._averaging_matrix(H, oh, x.dtype)
        a_w = self._averaging_matrix(W, ow, x.dtype)
        out = a_h @ x @ a_w.T
        self.cache = (a_h, a_w, out.shape)
        return out

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        a_h, a_w, shape = self.cache
        return a_h.T @ check_grad_output(self, grad_output, shape) @ a_w

    def extra_repr(self) -> str:
        return f"output_size={self.output_size if self.output_size[0] != self.output_size[1] else self.output_size[0]}"
