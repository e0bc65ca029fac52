"""BatchNorm's fast path: per-channel sums and broadcasts that follow the memory layout, buffers reused.

The same results as the plain code (scratch/nn/batchnorm.py, whose docstring
has the formulas). NumPy's reductions over axes (0, 2, 3) and broadcasts of a
(1, C, 1, 1) vector run short loops over a channels-last array (what the fast
Conv2d returns); ``channel_sum`` and ``per_channel`` do the same work at full
speed in either layout. xhat is never stored: y = (x - mu) * (invstd * gamma) + beta.
"""
import numpy as np

from scratch.fast.channels import channel_sum, per_channel
from scratch.nn.module import check_grad_output


def forward(m, x: np.ndarray, count: int, factor: float, use_batch_stats: bool) -> np.ndarray:
    """``count``: values per channel; ``factor``: the running statistics' momentum for this batch."""
    if use_batch_stats:
        mean = channel_sum(x) / count  # float64, see channel_sum
        xc = x - per_channel(mean.astype(x.dtype), x)
        out = np.square(xc)  # the output's buffer, once the variance is taken
        var = channel_sum(out) / count
        invstd = (1 / np.sqrt(var + m.eps)).astype(x.dtype)
        if m.training and m.track_running_stats:
            # PyTorch's update, in its order of operations; running_var takes the unbiased variance.
            unbiased = var * (count / (count - 1))
            m.running_mean[...] = factor * mean + (1 - factor) * m.running_mean
            m.running_var[...] = factor * unbiased + (1 - factor) * m.running_var
    else:
        xc = x - per_channel(m.running_mean, x)
        invstd = 1 / np.sqrt(m.running_var + x.dtype.type(m.eps))
        out = None
    m.cache = (xc, invstd, use_batch_stats)
    # y = xhat * gamma + beta = xc * (invstd * gamma) + beta: two passes, xhat is never stored
    out = np.multiply(xc, per_channel(m._scale(invstd), x), out=out)
    if m.bias is not None:
        out += per_channel(m.bias.data, x)
    return out


def backward(m, grad_output: np.ndarray) -> np.ndarray:
    xc, invstd, use_batch_stats = m.cache
    g = check_grad_output(m, grad_output, xc.shape)
    sum_g = channel_sum(g)
    g_xc = g * xc
    sum_g_xc = channel_sum(g_xc)  # sum g * xhat = invstd * sum g * (x - mu)
    if m.affine:
        m.weight.accumulate_grad((sum_g_xc * invstd).astype(g.dtype))
        if m.bias is not None:
            m.bias.accumulate_grad(sum_g.astype(g.dtype))
    scale = m._scale(invstd)
    if not use_batch_stats:
        return g * per_channel(scale, g)
    count = g.size // m.num_features
    # The mean and variance depend on every x of the channel: two correction terms, as torch's
    # batch_norm_backward writes them, dx = scale * (g - mean(g) - (x - mu) * invstd^2 * mean(g * (x - mu))),
    # built in g_xc's buffer.
    k = (sum_g_xc / count * np.square(invstd, dtype=np.float64)).astype(g.dtype)
    dx = np.multiply(xc, per_channel(k, xc), out=g_xc)
    np.subtract(g, dx, out=dx)
    dx -= per_channel((sum_g / count).astype(g.dtype), xc)
    dx *= per_channel(scale, xc)
    return dx
