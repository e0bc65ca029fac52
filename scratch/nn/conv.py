"""Conv2d: cross-correlation over (N, C, H, W) images, as one matrix product per group."""
import math

import numpy as np

from scratch import parallel
from scratch.nn import init
from scratch.nn.channels import channel_sum, per_channel
from scratch.nn.im2col import (TAP_MAJOR_MAX_CHANNELS, chunk_samples, col2im, col2im_product, conv_output_size,
                               conv_product, im2col, pad_channels_last, transposed_input, weight_product)
from scratch.nn.linear import check_dtype
from scratch.nn.module import Module, check_grad_output
from scratch.nn.parameter import Parameter


def _pair(value, name: str) -> tuple:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"{name} must be an int or a tuple of 2 ints, got {value}")
    return value


class Conv2d(Module):
    r"""2-D cross-correlation, as ``torch.nn.Conv2d``:

        out[n, o, i, j] = bias[o] + sum_{c, p, q} weight[o, c, p, q]
                                    * x_pad[n, g*C/G + c, i*sh + p*dh, j*sw + q*dw]

    for output channel o in group g = o // (O/G), c over that group's C/G input channels.

    Args:
        in_channels (C), out_channels (O): channels of input and output.
        kernel_size: int or (KH, KW).
        stride: int or (sh, sw), default 1.
        padding: int, (ph, pw), 'valid' (= 0) or 'same' (output as large as the
            input; stride 1 only; an odd total padding puts the extra row/column
            at the bottom/right, as PyTorch does). Default 0. Zeros are padded.
        dilation: int or (dh, dw), spacing between kernel taps, default 1.
        groups: G, the channels split into G independent convolutions, default 1.
        bias: learn an additive bias, default True.
        padding_mode: only 'zeros' (PyTorch's default).
        dtype: parameter dtype (default float32); generator: for the initial weights.

    Shapes: input (N, C, H, W) or (C, H, W) -> output (N, O, OH, OW) or (O, OH, OW),
        OH = floor((H + 2 ph - dh (KH - 1) - 1) / sh) + 1 (likewise OW);
        weight (O, C/G, KH, KW), bias (O,).

    Init (PyTorch's): kaiming_uniform_(a=sqrt(5)), i.e. U(-k, k) for weight and
    bias with k = 1/sqrt(fan_in), fan_in = C/G * KH * KW.

    Computation (per group): the padded input is laid out channels-last and its
    windows copied into col (N*OH*OW, KH*KW*C) (``im2col``); then
        out = col @ W^T + b,  W = weight as (O, KH*KW*C);
    backward, with g = dL/dout as (N*OH*OW, O):
        dL/dW = g^T col,  dL/db = sum g,  dL/dx = col2im(g W).
    With many channels col is built a few samples at a time and never kept
    whole (``conv_product``, ``weight_product``: the backward builds it again
    from the padded input it caches); with one to three, it is small and kept.
    With stride 1, dL/dx is a convolution of g with the flipped kernel
    (``transposed_input``); with a larger stride, ``col2im_product``; with one
    to three input channels, col2im(g W) itself (a small column gradient).
    With few input channels the bias rides in the products: col gets a column
    of ones and W the bias as one more column, so col @ W^T includes + b and
    g^T col ends with sum g (no separate passes over the output); with many,
    each chunk of rows gets + b right after its product, while in the cache.
    The samples of a batch are split over ``scratch.parallel``'s threads.
    The output is returned in channels-last memory (a transposed view with the
    (N, O, OH, OW) shape): elementwise layers and pooling keep that layout and
    the next convolution reads it without reordering, as PyTorch's channels_last.

    ``needs_input_grad`` (default True): set it False on a network's first layer
    and ``backward`` skips dL/dx (the col2im) and returns None, as PyTorch's
    autograd computes no gradient for images that do not require one.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", dtype=None, generator=None):
        super().__init__()
        if not isinstance(groups, (int, np.integer)) or groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode != "zeros":
            raise NotImplementedError(f"Conv2d: padding_mode={padding_mode!r} is not implemented (only 'zeros')")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, int(groups)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.dilation = _pair(dilation, "dilation")
        if min(self.kernel_size) <= 0:
            raise ValueError(f"Conv2d: kernel_size should be greater than zero, got {self.kernel_size}")
        if min(self.stride) <= 0:
            raise ValueError(f"Conv2d: non-positive stride is not supported, got {self.stride}")
        if min(self.dilation) <= 0:
            raise ValueError(f"Conv2d: dilation should be greater than zero, got {self.dilation}")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of {{'same', 'valid'}}")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = _pair(padding, "padding")
            if min(self.padding) < 0:
                raise ValueError(f"Conv2d: negative padding is not supported, got {self.padding}")
        self.padding_mode = padding_mode
        self._pads = self._explicit_pads()
        dtype = np.dtype(dtype or np.float32)
        kh, kw = self.kernel_size
        self.weight = Parameter(np.empty((out_channels, in_channels // groups, kh, kw), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)
        self.needs_input_grad = True
        self.cache = None  # (padded channels-last input, tap-major cols or None, output size, unbatched)

    def _explicit_pads(self) -> tuple:
        """(top, bottom, left, right) zero padding."""
        if self.padding == "valid":
            return 0, 0, 0, 0
        if self.padding == "same":
            pads = []
            for d, k in zip(self.dilation, self.kernel_size):
                total = d * (k - 1)
                pads += [total // 2, total - total // 2]
            return tuple(pads)
        ph, pw = self.padding
        return ph, ph, pw, pw

    def reset_parameters(self, generator=None) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.kernel_size[0] * self.kernel_size[1]
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound, generator=generator)

    # -- forward --------------------------------------------------------
    def _check_input(self, x: np.ndarray) -> None:
        if x.ndim not in (3, 4):
            raise RuntimeError(
                f"Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: {list(x.shape)}"
            )
        if x.ndim == 4 and x.shape[1] != self.in_channels or x.ndim == 3 and x.shape[0] != self.in_channels:
            shape = list(x.shape) if x.ndim == 4 else [1] + list(x.shape)
            raise RuntimeError(
                f"Given groups={self.groups}, weight of size {list(self.weight.shape)}, expected input{shape} "
                f"to have {self.in_channels} channels, but got {shape[1]} channels instead"
            )
        check_dtype(self, x, self.weight.data)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        self._check_input(x)
        unbatched = x.ndim == 3
        if unbatched:
            x = x[None]
        N, C, H, W = x.shape
        top, bottom, left, right = self._pads
        Hp, Wp = H + top + bottom, W + left + right
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        if Hp < dh * (kh - 1) + 1 or Wp < dw * (kw - 1) + 1:
            raise RuntimeError(
                f"Calculated padded input size per channel: ({Hp} x {Wp}). Kernel size: "
                f"({dh * (kh - 1) + 1} x {dw * (kw - 1) + 1}). Kernel size can't be greater than actual input size"
            )
        oh, ow = conv_output_size(Hp, kh, sh, 0, dh), conv_output_size(Wp, kw, sw, 0, dw)
        xp = pad_channels_last(x, self._pads)  # (N, Hp, Wp, C)
        G, O = self.groups, self.out_channels
        Cg, Og = C // G, O // G
        out = np.empty((N * oh * ow, O), dtype=x.dtype)
        # A tap-major col takes its ones as one more contiguous row, for free; a row-major one
        # would get rows of K+1 values, which costs the copy and the product more than a separate pass.
        tap_major = Cg <= TAP_MAJOR_MAX_CHANNELS
        ones = self.bias is not None and tap_major
        bias_added = ones
        # With one to three channels the whole col is small (KH*KW*C + 1 columns): it is built once and
        # kept for the backward (in the memory of the last one) rather than built again there.
        old = self.cache[1] if self.cache is not None and self.cache[1] is not None else [None] * G
        cols = [] if tap_major else None
        for g in range(G):
            xg, wt = xp[..., g * Cg:(g + 1) * Cg], self._weight_matrix(g, ones).T
            og = out[:, g * Og:(g + 1) * Og] if G > 1 else out
            if tap_major:
                col = im2col(xg, self.kernel_size, self.stride, self.dilation,
                             out=old[g] if len(old) == G else None, ones=ones)
                cols.append(col)
                P = oh * ow
                parallel.parts(lambda a, b: np.matmul(col[a * P:b * P], wt, out=og[a * P:b * P]), N,
                               nbytes=col.nbytes, blas=True)
            elif G == 1:  # out is whole (C-contiguous): the chunks add the bias themselves
                conv_product(xg, wt, self.kernel_size, self.stride, self.dilation, out=og,
                             bias=None if self.bias is None else self.bias.data)
                bias_added = True
            else:
                conv_product(xg, wt, self.kernel_size, self.stride, self.dilation, out=og)
        self.cache = (xp, cols, (oh, ow), unbatched)
        out = out.reshape(N, oh, ow, O).transpose(0, 3, 1, 2)
        if self.bias is not None and not bias_added:
            out += per_channel(self.bias.data, out)  # in out's channels-last memory order
        return out[0] if unbatched else out

    def _weight_matrix(self, g: int, with_bias: bool) -> np.ndarray:
        """Group g's weight as (O/G, KH*KW*C/G), im2col's column order; with_bias: the bias as one more column."""
        Og = self.out_channels // self.groups
        w = self.weight.data[g * Og:(g + 1) * Og].transpose(0, 2, 3, 1).reshape(Og, -1)
        if not with_bias:
            return w
        return np.concatenate([w, self.bias.data[g * Og:(g + 1) * Og, None]], axis=1)

    # -- backward -------------------------------------------------------
    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        xp, cols, (oh, ow), unbatched = self.cache
        N, Hp, Wp, C = xp.shape
        G, O = self.groups, self.out_channels
        grad_output = check_grad_output(self, grad_output, ((N,) if not unbatched else ()) + (O, oh, ow))
        if unbatched:
            grad_output = grad_output[None]
        Cg, Og = C // G, O // G
        kh, kw = self.kernel_size
        top, bottom, left, right = self._pads
        H, W = Hp - top - bottom, Wp - left - right
        g_all = grad_output.transpose(0, 2, 3, 1).reshape(N * oh * ow, O)  # a copy only if not channels-last
        ones = self.bias is not None and cols is not None
        strided = self.stride != (1, 1)
        # dL/dx as a convolution of g needs im2col of g, KH*KW*O columns: for a 1-3 channel input that is
        # far more than the (N*OH*OW, KH*KW*C) column gradient g W, so there col2im(g W) is used.
        padded_dx = strided or cols is not None
        dw = np.empty(self.weight.shape, dtype=g_all.dtype)
        db = np.empty(O, dtype=g_all.dtype) if self.bias is not None else None
        dx = None
        if self.needs_input_grad:
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
                dwb = weight_product(xg, gg, self.kernel_size, self.stride, self.dilation)
            dw[g * Og:(g + 1) * Og] = dwb[:, :K].reshape(Og, kh, kw, Cg).transpose(0, 3, 1, 2)
            if db is not None:
                db[g * Og:(g + 1) * Og] = dwb[:, K] if ones else channel_sum(gg)
            if dx is None:
                continue
            wg = self.weight.data[g * Og:(g + 1) * Og]
            if cols:
                col2im(gg @ self._weight_matrix(g, False), xg.shape, self.kernel_size, self.stride, self.dilation,
                       out=dx[..., g * Cg:(g + 1) * Cg])
            elif strided:
                col2im_product(gg, wg, xg.shape, self.kernel_size, self.stride, self.dilation,
                               out=dx[..., g * Cg:(g + 1) * Cg])
            else:
                transposed_input(gg.reshape(N, oh, ow, Og), wg, (H, W), self._pads, self.kernel_size,
                                 self.dilation, out=dx[:, g * Cg:(g + 1) * Cg] if G > 1 else dx)
        self.weight.accumulate_grad(dw)
        if db is not None:
            self.bias.accumulate_grad(db)
        if dx is None:
            return None
        dx = dx[:, top:Hp - bottom, left:Wp - right] if padded_dx else dx.reshape(N, H, W, C)
        dx = dx.transpose(0, 3, 1, 2)
        return dx[0] if unbatched else dx

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
