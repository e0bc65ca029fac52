"""Conv2d: cross-correlation over (N, C, H, W) images, as one matrix product per group."""
import math

import numpy as np

from scratch import fast, paths
from scratch.nn import init
from scratch.nn.im2col import col2im, conv_output_size, im2col
from scratch.nn.module import Module, check_dtype, check_grad_output, pair
from scratch.nn.parameter import Parameter


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

    Computation (per group g, its C/G input channels and O/G filters): the
    zero-padded input's windows are copied into the rows of
    col (N*OH*OW, C/G*KH*KW) (``im2col``); then
        out = col @ W^T + b,   W = the group's weight as (O/G, C/G*KH*KW);
    backward, with g = dL/dout as (N*OH*OW, O/G):
        dL/dW = g^T col,   dL/db = sum of g over its rows,   dL/dx = col2im(g W), padding cut off.

    The fast path (scratch/fast/conv.py) computes the same in channels-last
    memory, a few samples at a time, on several threads, and returns the
    output in channels-last memory (as PyTorch's channels_last).

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
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.dilation = pair(dilation, "dilation")
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
            self.padding = pair(padding, "padding")
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
        self.fast_path = False  # which path the last forward took; its backward takes the same
        self.cache = None  # (padded input's shape, the groups' cols, unbatched); the fast path keeps its own

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
        top, bottom, left, right = self._pads
        Hp, Wp = x.shape[-2] + top + bottom, x.shape[-1] + left + right
        (kh, kw), (dh, dw) = self.kernel_size, self.dilation
        if Hp < dh * (kh - 1) + 1 or Wp < dw * (kw - 1) + 1:
            raise RuntimeError(
                f"Calculated padded input size per channel: ({Hp} x {Wp}). Kernel size: "
                f"({dh * (kh - 1) + 1} x {dw * (kw - 1) + 1}). Kernel size can't be greater than actual input size"
            )

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        self._check_input(x)
        unbatched = x.ndim == 3
        x = x[None] if unbatched else x
        self.fast_path = paths.is_fast()
        if self.fast_path:  # channels-last, chunked, threaded: scratch/fast/conv.py
            return fast.conv.forward(self, x, unbatched)
        top, bottom, left, right = self._pads
        xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))  # zeros around every image
        N, G, O = x.shape[0], self.groups, self.out_channels
        Cg, Og = self.in_channels // G, O // G
        # Per group g: its C/G input channels' windows as rows, times its O/G filters as columns.
        cols = [im2col(xp[:, g * Cg:(g + 1) * Cg], self.kernel_size, self.stride, self.dilation) for g in range(G)]
        w = self.weight.data.reshape(G, Og, -1)  # (G, O/G, C/G*KH*KW): im2col's column order (c, p, q)
        out = np.concatenate([cols[g] @ w[g].T for g in range(G)], axis=1)  # (N*OH*OW, O)
        if self.bias is not None:
            out = out + self.bias.data
        oh, ow = self._output_size(xp.shape)
        self.cache = (xp.shape, cols, unbatched)
        out = out.reshape(N, oh, ow, O).transpose(0, 3, 1, 2)  # rows were (n, i, j)
        return out[0] if unbatched else out

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        if self.fast_path:
            return fast.conv.backward(self, grad_output)
        (N, C, Hp, Wp), cols, unbatched = self.cache
        G, O = self.groups, self.out_channels
        Cg, Og = C // G, O // G
        oh, ow = self._output_size((N, C, Hp, Wp))
        g = check_grad_output(self, grad_output, ((N,) if not unbatched else ()) + (O, oh, ow))
        g = (g[None] if unbatched else g).transpose(0, 2, 3, 1).reshape(N * oh * ow, O)  # a row per window
        gs = [g[:, k * Og:(k + 1) * Og] for k in range(G)]
        w = self.weight.data.reshape(G, Og, -1)
        self.weight.accumulate_grad(np.concatenate([gs[k].T @ cols[k] for k in range(G)]).reshape(self.weight.shape))
        if self.bias is not None:
            self.bias.accumulate_grad(g.sum(axis=0))
        if not self.needs_input_grad:
            return None
        dxp = np.concatenate([col2im(gs[k] @ w[k], (N, Cg, Hp, Wp), self.kernel_size, self.stride, self.dilation)
                              for k in range(G)], axis=1)
        top, bottom, left, right = self._pads
        dx = dxp[:, :, top:Hp - bottom, left:Wp - right]  # the padding's gradient is dropped
        return dx[0] if unbatched else dx

    def _output_size(self, padded_shape) -> tuple:
        """(OH, OW) of a padded input (N, C, Hp, Wp): PyTorch's formula with the padding already added."""
        return tuple(conv_output_size(size, k, s, 0, d) for size, k, s, d
                     in zip(padded_shape[2:], self.kernel_size, self.stride, self.dilation))

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
