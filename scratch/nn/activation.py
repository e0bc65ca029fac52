"""Activation layers. Each caches what its backward needs, no more."""
import numpy as np

from scratch import fast, paths
from scratch.nn import functional as F
from scratch.nn.module import Module, check_floating, check_grad_output


class ReLU(Module):
    r"""y = max(x, 0);  dL/dx = g * [not x <= 0]  (0 at x = 0; a nan input passes g, as PyTorch)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace
        self.fast_path = False  # which path the last forward took; its backward takes the same
        self.mask = None  # cache: where not x <= 0

    def forward(self, x):
        x = np.asarray(x)
        self.fast_path = paths.is_fast()
        if self.fast_path:  # one pass for the mask, threads, buffers written in place: scratch/fast/activation.py
            return fast.activation.relu_forward(self, x)
        # torch's threshold_backward zeroes the gradient where x <= 0; nan <= 0 is False, so a nan
        # input lets the gradient through: hence not (x <= 0), rather than x > 0.
        self.mask = ~(x <= 0)
        return np.maximum(x, 0, out=x) if self.inplace else np.maximum(x, 0)

    def backward(self, grad_output):
        if self.fast_path:
            return fast.activation.relu_backward(self, grad_output)
        g = check_grad_output(self, grad_output, self.mask.shape)
        return np.where(self.mask, g, 0.0)  # 0 where x <= 0, whatever g holds there (inf, nan)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    r"""y = x if x > 0 else negative_slope * x;  dL/dx = g * (1 if x > 0 else negative_slope)."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace
        self.mask = None  # cache: where x > 0

    def forward(self, x):
        x = check_floating(self, np.asarray(x))
        self.mask = x > 0
        return F.leaky_relu(x, self.negative_slope)

    def backward(self, grad_output):
        g = check_grad_output(self, grad_output, self.mask.shape)
        return np.where(self.mask, g, g * g.dtype.type(self.negative_slope))

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


def _float(x) -> np.ndarray:
    """Integers and booleans become float32, PyTorch's default dtype, as torch.sigmoid and torch.tanh make them."""
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.inexact) else x.astype(np.float32)


class Sigmoid(Module):
    r"""y = 1 / (1 + exp(-x));  dL/dx = g * y * (1 - y)."""

    def __init__(self):
        super().__init__()
        self.out = None  # cache: y

    def forward(self, x):
        self.out = F.sigmoid(_float(x))
        return self.out

    def backward(self, grad_output):
        return check_grad_output(self, grad_output, self.out.shape) * (1 - self.out) * self.out


class Tanh(Module):
    r"""y = tanh(x);  dL/dx = g * (1 - y^2), computed as g * (1 - y)(1 + y).

    Near |y| = 1, 1 - y*y loses all but a few bits to cancellation (y*y is rounded
    before the subtraction); 1 - |y| is exact there and the product is rounded once,
    as accurate as torch's fused multiply-add on the machines that have one.
    """

    def __init__(self):
        super().__init__()
        self.out = None  # cache: y

    def forward(self, x):
        self.out = F.tanh(_float(x))
        return self.out

    def backward(self, grad_output):
        y = self.out
        return check_grad_output(self, grad_output, y.shape) * ((1 - y) * (1 + y))


class Softmax(Module):
    r"""y_i = exp(x_i) / sum_j exp(x_j) along ``dim``;  dL/dx = y * (g - sum_j g_j y_j)."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim
        self.out = None  # cache: y
        self.axis = None

    def forward(self, x):
        x = check_floating(self, np.asarray(x))
        dim = F._softmax_dim("softmax", x.ndim) if self.dim is None else self.dim
        self.axis = F._check_dim(dim, x.ndim)
        self.out = F.softmax(x, self.axis)
        return self.out

    def backward(self, grad_output):
        y, g = self.out, check_grad_output(self, grad_output, self.out.shape)
        return y * (g - (g * y).sum(axis=self.axis, keepdims=True))

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    r"""y = x - log(sum_j exp(x_j)) along ``dim``;  dL/dx = g - softmax(x) * sum_j g_j."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim
        self.out = None  # cache: y
        self.axis = None

    def forward(self, x):
        x = check_floating(self, np.asarray(x))
        dim = F._softmax_dim("log_softmax", x.ndim) if self.dim is None else self.dim
        self.axis = F._check_dim(dim, x.ndim)
        self.out = F.log_softmax(x, self.axis)
        return self.out

    def backward(self, grad_output):
        g = check_grad_output(self, grad_output, self.out.shape)
        return g - np.exp(self.out) * g.sum(axis=self.axis, keepdims=True)

    def extra_repr(self):
        return f"dim={self.dim}"
