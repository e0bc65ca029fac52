"""Forward computations as plain functions, like ``torch.nn.functional``.

The activation modules (LeakyReLU, Sigmoid, Tanh, Softmax, LogSoftmax) and
CrossEntropyLoss call these in ``forward`` and write their own ``backward``;
Linear and ReLU write their one-line formula in place. All keep the input's dtype.
"""
import warnings

import numpy as np


def linear(x: np.ndarray, weight: np.ndarray, bias=None) -> np.ndarray:
    """x (*, in) @ weight.T (in, out) + bias (out,) -> (*, out)."""
    out = x @ weight.T
    if bias is not None:
        out += bias
    return out


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def leaky_relu(x: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    return np.where(x > 0, x, x * x.dtype.type(negative_slope))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), computed without overflow for large |x|."""
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


def tanh(x: np.ndarray) -> np.ndarray:
    """tanh, rounded once to x's dtype.

    NumPy's float32 tanh can be a few ulps off; near |y| = 1 that error is all of the
    gradient 1 - y^2, so lower precisions are computed in float64 and rounded.
    """
    if x.dtype.itemsize < 8:
        return np.tanh(x.astype(np.float64)).astype(x.dtype)
    return np.tanh(x)


def _softmax_dim(name: str, ndim: int) -> int:
    # PyTorch's legacy rule when dim is not given, with its warning.
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X as an argument.",
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1


def _check_dim(dim: int, ndim: int) -> int:
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return dim % n


def softmax(x: np.ndarray, dim=None) -> np.ndarray:
    """exp(x - max) / sum(exp(x - max)) along ``dim``: the max shift keeps exp finite."""
    if dim is None:
        dim = _softmax_dim("softmax", x.ndim)
    dim = _check_dim(dim, x.ndim)
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    e /= e.sum(axis=dim, keepdims=True)
    return e


def log_softmax(x: np.ndarray, dim=None) -> np.ndarray:
    """x - (max + log(sum(exp(x - max)))) along ``dim``: finite for logits of any size.

    The order of operations is PyTorch's CPU kernel's, so float32 results round alike.
    """
    if dim is None:
        dim = _softmax_dim("log_softmax", x.ndim)
    dim = _check_dim(dim, x.ndim)
    m = x.max(axis=dim, keepdims=True)
    lse = np.log(np.exp(x - m).sum(axis=dim, keepdims=True))
    lse += m
    return x - lse
