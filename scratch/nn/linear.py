"""Linear (the book's Affine layer), Identity and Flatten."""
import math

import numpy as np

from scratch import fast, paths
from scratch.nn import init
from scratch.nn.module import Module, check_dtype, check_grad_output
from scratch.nn.parameter import Parameter


class Linear(Module):
    r"""Applies y = x W^T + b.

    Args:
        in_features, out_features: sizes of each input and output sample.
        bias: learn an additive bias (default True).
        dtype: parameter dtype (default float32, as PyTorch's default).
        generator: ``numpy.random.Generator`` for the initial weights.

    Shapes: input (*, in_features) -> output (*, out_features);
    weight (out_features, in_features), bias (out_features,).

    Init (PyTorch's): W ~ U(-k, k) by kaiming_uniform_(a=sqrt(5)), b ~ U(-k, k), k = 1/sqrt(in_features).

    Backward, with g = dL/dy flattened to (M, out) and x to (M, in):
        dL/dW = g^T x,   dL/db = sum_M g,   dL/dx = g W.

    ``needs_input_grad`` (default True): set it False on a network's first layer,
    whose input (the data) needs no gradient, and backward skips g W and returns
    None, as PyTorch's autograd skips it for an input without requires_grad.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None, generator=None):
        super().__init__()
        if in_features < 0 or out_features < 0:
            raise ValueError(f"Linear: in_features and out_features must be >= 0, got {in_features}, {out_features}")
        self.in_features = in_features
        self.out_features = out_features
        dtype = np.dtype(dtype or np.float32)
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        self.bias = Parameter(np.empty(out_features, dtype=dtype)) if bias else None
        if not bias:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)
        self.needs_input_grad = True
        self.fast_path = False  # which path the last forward took; its backward takes the same
        self.x = None  # cache: the input, flattened to (M, in_features)
        self.output_shape = None  # cache

    def reset_parameters(self, generator=None) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound, generator=generator)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise RuntimeError(
                f"Linear(in_features={self.in_features}, out_features={self.out_features}): expected input of "
                f"shape (*, {self.in_features}), got {x.shape}"
            )
        check_dtype(self, x, self.weight.data)
        self.fast_path = paths.is_fast()
        if self.fast_path:  # the same product, its rows split over threads: scratch/fast/linear.py
            return fast.linear.forward(self, x)
        self.x = x.reshape(-1, self.in_features)  # (M, in): every leading dim is a row of the batch
        out = self.x @ self.weight.data.T
        if self.bias is not None:
            out = out + self.bias.data
        self.output_shape = x.shape[:-1] + (self.out_features,)
        return out.reshape(self.output_shape)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        if self.fast_path:
            return fast.linear.backward(self, grad_output)
        g = check_grad_output(self, grad_output, self.output_shape).reshape(-1, self.out_features)
        self.weight.accumulate_grad(g.T @ self.x)
        if self.bias is not None:
            self.bias.accumulate_grad(g.sum(axis=0))
        if not self.needs_input_grad:
            return None
        return (g @ self.weight.data).reshape(self.output_shape[:-1] + (self.in_features,))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    """y = x; the gradient passes unchanged."""

    def __init__(self, *args, **kwargs):
        super().__init__()
        self.shape = None  # cache: the output's shape

    def forward(self, x):
        self.shape = np.shape(x)
        return x

    def backward(self, grad_output):
        return check_grad_output(self, grad_output, self.shape)


class Flatten(Module):
    """Flattens dims start_dim..end_dim into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim
        self.input_shape = self.output_shape = None  # cache

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        self.input_shape = x.shape
        n = max(x.ndim, 1)
        start, end = self.start_dim, self.end_dim
        for name, d in (("start_dim", start), ("end_dim", end)):
            if not -n <= d < n:
                raise IndexError(
                    f"Flatten: {name}={d} out of range for input of {x.ndim} dims "
                    f"(expected to be in range of [{-n}, {n - 1}])"
                )
        start, end = start % n, end % n
        if start > end:
            raise RuntimeError("Flatten: flatten() has invalid args: start_dim cannot come after end_dim")
        out = x.reshape(1) if x.ndim == 0 else x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1:])
        self.output_shape = out.shape
        return out

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return check_grad_output(self, grad_output, self.output_shape).reshape(self.input_shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
