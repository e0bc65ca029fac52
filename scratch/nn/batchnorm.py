"""Batch normalisation (chapter 6.3): PyTorch's BatchNorm1d/2d, and the book's layer beside them.

PyTorch's form, per channel c, over the m = N*L (or N*H*W) values of that channel:

    mu = mean(x),  var = mean((x - mu)^2)           (biased: divides by m)
    xhat = (x - mu) / sqrt(var + eps),   y = gamma * xhat + beta

In training the batch statistics normalise, and the running statistics move
towards them with the *unbiased* variance:

    running_mean = (1 - momentum) * running_mean + momentum * mu
    running_var  = (1 - momentum) * running_var  + momentum * var * m / (m - 1)

momentum=None makes that a cumulative average: the factor is 1 / num_batches_tracked.
In eval mode the running statistics normalise (unless track_running_stats=False,
in which case there are none and the batch statistics are used in both modes).

Backward in closed form, per channel, with g = dL/dy and sums over the m values:

    dL/dbeta  = sum g,        dL/dgamma = sum g * xhat
    dL/dx     = gamma / std * (g - mean g - xhat * mean(g * xhat))         (batch statistics)
    dL/dx     = gamma / std * g                                             (running statistics)

The book's layer (``BookBatchNorm``) differs on purpose and is kept separate:
eps 1e-6, momentum 0.9 weighting the *old* value (PyTorch's 0.1), running
statistics starting at zero and kept from the biased variance, and statistics per
activation (every (c, h, w) of a 4-D input is its own feature), not per channel.
"""
import math

import numpy as np

from scratch import fast, paths
from scratch.nn.module import Module, check_dtype, check_floating, check_grad_output
from scratch.nn.parameter import Parameter


class _BatchNorm(Module):
    """The shared machinery of BatchNorm1d and BatchNorm2d; subclasses check the input's dims."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype=None, *, bias: bool = True):
        super().__init__()
        if num_features <= 0:
            raise ValueError(f"{type(self).__name__}: num_features must be positive, got {num_features}")
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dtype = np.dtype(dtype or np.float32)
        self.register_parameter("weight", Parameter(np.ones(num_features, dtype=dtype)) if affine else None)
        self.register_parameter("bias", Parameter(np.zeros(num_features, dtype=dtype)) if affine and bias else None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.fast_path = False  # which path the last forward took; its backward takes the same
        self.cache = None  # (xhat, invstd (C,), used batch statistics); the fast path keeps its own

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            self.weight.data[...] = 1
            if self.bias is not None:
                self.bias.data[...] = 0

    def _check_input_dim(self, x: np.ndarray) -> None:
        raise NotImplementedError

    def _param_dtype(self):
        if self.affine:
            return self.weight.data.dtype
        if self.track_running_stats:
            return self.running_mean.dtype
        return None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        self._check_input_dim(x)
        if x.shape[1] != self.num_features:
            raise RuntimeError(
                f"{self._get_name()}(num_features={self.num_features}): expected input with "
                f"{self.num_features} channels at dim 1, got input of shape {x.shape}"
            )
        dtype = self._param_dtype()
        if dtype is not None and x.dtype != dtype:
            raise RuntimeError(
                f"{self._get_name()}: input dtype {x.dtype} does not match parameter dtype {dtype}; "
                f"cast the input or call .to({x.dtype}) on the module"
            )
        check_floating(self, x)
        m = x.size // self.num_features
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked[...] += 1
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or not self.track_running_stats
        if use_batch_stats and self.training and m == 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size {x.shape}")
        self.fast_path = paths.is_fast()
        if self.fast_path:  # sums and broadcasts in either memory layout, buffers reused: scratch/fast/batchnorm.py
            return fast.batchnorm.forward(self, x, m, factor, use_batch_stats)
        axes = (0,) + tuple(range(2, x.ndim))  # every axis but the channels'
        per_channel = (1, -1) + (1,) * (x.ndim - 2)  # a (C,) vector shaped to broadcast over those axes
        if use_batch_stats:
            mean = x.mean(axis=axes, dtype=np.float64)  # torch's CPU kernel accumulates in double too
            xc = x - mean.astype(x.dtype).reshape(per_channel)
            var = np.square(xc).mean(axis=axes, dtype=np.float64)  # biased: divides by m
            invstd = (1 / np.sqrt(var + self.eps)).astype(x.dtype)
            if self.training and self.track_running_stats:  # running_var takes the unbiased variance
                self.running_mean[...] = factor * mean + (1 - factor) * self.running_mean
                self.running_var[...] = factor * var * (m / (m - 1)) + (1 - factor) * self.running_var
        else:
            xc = x - self.running_mean.reshape(per_channel)
            invstd = 1 / np.sqrt(self.running_var + x.dtype.type(self.eps))
        xhat = xc * invstd.reshape(per_channel)
        self.cache = (xhat, invstd, use_batch_stats)
        out = xhat if not self.affine else xhat * self.weight.data.reshape(per_channel)
        return out if self.bias is None else out + self.bias.data.reshape(per_channel)

    def _scale(self, invstd: np.ndarray) -> np.ndarray:
        """invstd * gamma per channel: what multiplies x - mu in the output and g in dL/dx."""
        return invstd * self.weight.data if self.affine else invstd

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        if self.fast_path:
            return fast.batchnorm.backward(self, grad_output)
        xhat, invstd, use_batch_stats = self.cache
        g = check_grad_output(self, grad_output, xhat.shape)
        axes, per_channel = (0,) + tuple(range(2, g.ndim)), (1, -1) + (1,) * (g.ndim - 2)
        # Sums in double, as torch's kernel (a float32 sum of many terms of both signs loses digits).
        sum_g = g.sum(axis=axes, dtype=np.float64).astype(g.dtype)
        sum_g_xhat = (g * xhat).sum(axis=axes, dtype=np.float64).astype(g.dtype)
        if self.affine:
            self.weight.accumulate_grad(sum_g_xhat)
            if self.bias is not None:
                self.bias.accumulate_grad(sum_g)
        scale = self._scale(invstd).reshape(per_channel)
        if not use_batch_stats:  # running statistics are constants
            return g * scale
        m = g.size // self.num_features  # the mean and the variance depend on every x of the channel:
        return scale * (g - (sum_g / m).reshape(per_channel) - xhat * (sum_g_xhat / m).reshape(per_channel))

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    r"""Batch normalisation over a 2-D or 3-D input, as ``torch.nn.BatchNorm1d``.

    Args:
        num_features: C, the number of channels (features).
        eps: added to the variance for stability (default 1e-5).
        momentum: weight of the new batch statistic in the running average
            (default 0.1); None for a cumulative average over all batches.
        affine: learn gamma (``weight``, init 1) and beta (``bias``, init 0) (default True).
        bias: keyword-only; with affine, learn beta too (default True; False keeps gamma only).
        track_running_stats: keep ``running_mean`` (init 0), ``running_var`` (init 1) and
            ``num_batches_tracked`` (int64, 0-d) for eval mode (default True).
        dtype: parameter and running-statistic dtype (default float32).

    Shapes: input (N, C) or (N, C, L) -> output of the same shape; statistics per
    channel over N (and L). State dict keys: weight, bias, running_mean,
    running_var, num_batches_tracked. Formulas and backward: see the module docstring.
    """

    def _check_input_dim(self, x):
        if x.ndim not in (2, 3):
            raise ValueError(f"expected 2D or 3D input (got {x.ndim}D input)")


class BatchNorm2d(_BatchNorm):
    r"""Batch normalisation over a 4-D input (N, C, H, W), as ``torch.nn.BatchNorm2d``.

    Same arguments, defaults and state as ``BatchNorm1d``; statistics per channel
    over N, H and W (m = N*H*W values each).
    """

    def _check_input_dim(self, x):
        if x.ndim != 4:
            raise ValueError(f"expected 4D input (got {x.ndim}D input)")


class BookBatchNorm(Module):
    r"""The book's ``BatchNormalization`` layer (chapter 6.3), kept as the book writes it.

    Args:
        num_features: D, the number of activations normalised separately: the
            size of a sample, so C*H*W for a 4-D input (the book flattens
            (N, C, H, W) to (N, C*H*W): one mean per activation, not per channel).
        momentum: weight of the *old* running value (default 0.9, which is
            PyTorch's momentum=0.1).
        eps: default 1e-6 (the book's 10e-7), inside the square root.
        dtype: parameter dtype (default float32).

    Training, with mean and biased variance over the batch (axis 0):
        xhat = (x - mu) / sqrt(var + eps),  y = gamma * xhat + beta
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var  = momentum * running_var  + (1 - momentum) * var   (biased, no m/(m-1))
    Eval: xhat = (x - running_mean) / sqrt(running_var + eps).
    running_mean and running_var start at zero (PyTorch: 0 and 1), so early eval
    outputs are x / sqrt(eps)-scaled until the averages warm up.

    Backward: the same closed form as BatchNorm1d over the batch axis.
    Parameters are named ``weight`` (gamma) and ``bias`` (beta); there is no
    ``num_batches_tracked``. Shapes: input (N, D) or (N, *) with prod(*) = D.
    """

    def __init__(self, num_features: int, momentum: float = 0.9, eps: float = 1e-6, dtype=None):
        super().__init__()
        self.num_features = num_features
        self.momentum = momentum
        self.eps = eps
        dtype = np.dtype(dtype or np.float32)
        self.weight = Parameter(np.ones(num_features, dtype=dtype))
        self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
        self.register_buffer("running_var", np.zeros(num_features, dtype=dtype))
        self.cache = None  # (xhat, std, input shape, used batch statistics)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim < 2 or math.prod(x.shape[1:]) != self.num_features:
            raise RuntimeError(
                f"BookBatchNorm(num_features={self.num_features}): expected input of shape (N, *) with "
                f"{self.num_features} values per sample, got {x.shape}"
            )
        check_dtype(self, x, self.weight.data)
        flat = x.reshape(x.shape[0], -1)
        eps = x.dtype.type(self.eps)
        if self.training:
            mu = flat.mean(axis=0)
            xc = flat - mu
            var = (xc * xc).mean(axis=0)
            std = np.sqrt(var + eps)
            self.running_mean[...] = self.momentum * self.running_mean + (1 - self.momentum) * mu
            self.running_var[...] = self.momentum * self.running_var + (1 - self.momentum) * var
        else:
            xc = flat - self.running_mean
            std = np.sqrt(self.running_var + eps)
        xhat = xc / std
        self.cache = (xhat, std, x.shape, self.training)
        return (self.weight.data * xhat + self.bias.data).reshape(x.shape)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        xhat, std, shape, batch_stats = self.cache
        g = check_grad_output(self, grad_output, shape).reshape(shape[0], -1)
        sum_g = g.sum(axis=0)
        sum_g_xhat = (g * xhat).sum(axis=0)
        self.weight.accumulate_grad(sum_g_xhat)
        self.bias.accumulate_grad(sum_g)
        scale = self.weight.data / std
        if not batch_stats:
            return (g * scale).reshape(shape)
        n = g.shape[0]
        return ((scale / n) * (n * g - sum_g - xhat * sum_g_xhat)).reshape(shape)

    def extra_repr(self) -> str:
        return f"{self.num_features}, momentum={self.momentum}, eps={self.eps}"
