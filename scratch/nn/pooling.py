"""Pooling over (N, C, H, W) images: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d.

Max and average pooling loop over the KH*KW kernel taps, never over pixels:
for each tap (p, q), the values that tap sees in every window form one
strided slice of the (padded) input (``tap``, as in im2col), so a pooling
layer is KH*KW vectorised operations. The fast path of the max and average
pools (scratch/fast/pooling.py) does the same work in channels-last memory,
split over threads.
"""
import numpy as np

from scratch import fast, paths
from scratch.nn.im2col import tap
from scratch.nn.module import Module, check_floating, check_grad_output, pair


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


class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None or stride == [] else pair(stride, "stride")
        self.padding = pair(padding, "padding")
        self.dilation = pair(dilation, "dilation")
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
        self.fast_path = False  # which path the last forward took; its backward takes the same
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

    def _padded(self, x: np.ndarray, pads, value) -> np.ndarray:
        top, bottom, left, right = pads
        return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)

    def _taps(self, a: np.ndarray, out_size) -> list:
        """The KH*KW strided slices of a (..., H, W), each (..., OH, OW), in the window's row-major order."""
        kh, kw = self.kernel_size
        return [tap(a, p, q, self.stride, self.dilation, out_size) for p in range(kh) for q in range(kw)]

    def _unpadded(self, dxp: np.ndarray, pads, unbatched: bool) -> np.ndarray:
        top, bottom, left, right = pads
        dx = dxp[:, :, top:dxp.shape[2] - bottom, left:dxp.shape[3] - right]
        return dx[0] if unbatched else dx

    def extra_repr(self) -> str:
        return f"kernel_size={_one(self.kernel_size)}, stride={_one(self.stride)}, padding={_one(self.padding)}"


def _one(pair):
    """A pair of equal values printed as one, as PyTorch prints an int argument."""
    return pair[0] if pair[0] == pair[1] else pair


def _lowest(dtype):
    """MaxPool's padding value: -inf, or an integer dtype's least value (integers pool too, as in torch)."""
    return -np.inf if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min


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
        lowest = _lowest(x.dtype)
        self.fast_path = paths.is_fast()
        if self.fast_path:  # channels-last, boolean routes, threads: scratch/fast/pooling.py
            out, indices = fast.pooling.max_forward(self, x, out_size, pads, unbatched, lowest)
            return (out, indices) if self.return_indices else out
        xp = self._padded(x, pads, lowest)
        inside = self._padded(np.ones((1, 1) + x.shape[2:], dtype=bool), pads, False)  # False on the padding
        # PyTorch's scan of each window, tap by tap in row-major order: take a value larger than the best
        # so far, or a NaN (v != v). It starts at the first tap inside the input with the lowest value, so a
        # window of nothing but -inf routes its gradient to its first element inside the input.
        best = np.full(x.shape[:2] + out_size, lowest, dtype=x.dtype)
        pick = np.argmax(self._taps(inside, out_size), axis=0) + np.zeros(best.shape, dtype=np.int64)
        for k, (v, v_inside) in enumerate(zip(self._taps(xp, out_size), self._taps(inside, out_size))):
            take = v_inside & ((v > best) | (v != v))
            best = np.where(take, v, best)
            pick = np.where(take, k, pick)
        self.cache = (pick, xp.shape, pads, unbatched)
        out = best[0] if unbatched else best
        return (out, self._indices(pick, pads, x.shape[3], unbatched)) if self.return_indices else out

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        if self.fast_path:
            return fast.pooling.max_backward(self, grad_output)
        pick, padded_shape, pads, unbatched = self.cache
        g = check_grad_output(self, grad_output, pick.shape[unbatched:])
        g = g[None] if unbatched else g
        dxp = np.zeros(padded_shape, dtype=g.dtype)
        for k, dx_tap in enumerate(self._taps(dxp, pick.shape[2:])):
            dx_tap += np.where(pick == k, g, 0)  # each window's gradient to the element it picked
        return self._unpadded(dxp, pads, unbatched)

    def _indices(self, pick: np.ndarray, pads, W: int, unbatched: bool) -> np.ndarray:
        """Per output, h * W + w of the input element it picked (torch's return_indices)."""
        p, q = np.divmod(pick, self.kernel_size[1])
        (oh, ow), (sh, sw), (dh, dw) = pick.shape[2:], self.stride, self.dilation
        h = np.arange(oh)[:, None] * sh - pads[0] + p * dh
        w = np.arange(ow) * sw - pads[2] + q * dw
        return (h * W + w)[0] if unbatched else h * W + w

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
        """D (OH, OW), or the divisor_override."""
        if self.divisor_override is not None:
            return np.asarray(self.divisor_override, dtype=dtype)
        factors = []
        for size, o, k, s, p in zip((H, W), out_size, self.kernel_size, self.stride, self.padding):
            start = np.arange(o) * s - p
            end = np.minimum(start + k, size + p)
            if not self.count_include_pad:
                start, end = np.maximum(start, 0), np.minimum(end, size)
            factors.append(end - start)
        return np.multiply.outer(factors[0], factors[1]).astype(dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x, unbatched = _batched("avg_pool2d", x)
        check_floating(self, x)
        out_size, pads = self._geometry(x)
        divisor = self._divisor(x.shape[2], x.shape[3], out_size, x.dtype)
        self.fast_path = paths.is_fast()
        if self.fast_path:  # channels-last: scratch/fast/pooling.py
            return fast.pooling.avg_forward(self, x, out_size, pads, divisor, unbatched)
        xp = self._padded(x, pads, 0)
        taps = self._taps(xp, out_size)
        total = taps[0].copy()
        for v in taps[1:]:
            total += v
        self.cache = (divisor, xp.shape, out_size, pads, unbatched)
        out = total / divisor
        return out[0] if unbatched else out

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        if self.fast_path:
            return fast.pooling.avg_backward(self, grad_output)
        divisor, padded_shape, out_size, pads, unbatched = self.cache
        g = check_grad_output(self, grad_output, (padded_shape[:2] + out_size)[unbatched:])
        g = (g[None] if unbatched else g) / divisor
        dxp = np.zeros(padded_shape, dtype=g.dtype)
        for dx_tap in self._taps(dxp, out_size):
            dx_tap += g  # every element of a window gets g / D
        return self._unpadded(dxp, pads, unbatched)


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
