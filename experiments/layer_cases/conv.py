"""Random configurations of Conv2d and the pools for the layer-case registry.

Every configuration is valid (the kernel fits the padded input) and small
enough for the central-difference check. Max-pool inputs here have distinct,
well separated values, so that a small perturbation never changes which
element is the maximum (the numerical gradient is meaningless at a tie; ties
against torch are tested in tests/test_pooling.py).
"""
import numpy as np
import torch

import scratch.nn as snn
from experiments.layer_cases.base import register


def _ints(rng, low, high, n=2):
    return tuple(int(v) for v in rng.integers(low, high + 1, n))


def conv2d_config(rng) -> dict:
    """Random Conv2d arguments and input shape: non-square kernels, stride, padding incl. 'same', dilation, groups."""
    groups = int(rng.choice([1, 1, 1, 2, 3]))
    cin, cout = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
    kernel, dilation = _ints(rng, 1, 4), _ints(rng, 1, 2)
    if rng.integers(4) == 0:
        padding, stride = "same", (1, 1)
    else:
        padding = "valid" if rng.integers(8) == 0 else _ints(rng, 0, 2)
        stride = _ints(rng, 1, 3)
    pads = (0, 0) if padding in ("valid", "same") else padding
    # The smallest input the dilated kernel fits in, plus a random margin.
    hw = tuple(max(d * (k - 1) + 1 - 2 * p, 1) + int(rng.integers(0, 5))
               for k, d, p in zip(kernel, dilation, pads))
    shape = (int(rng.integers(1, 4)), cin) + hw
    return dict(in_channels=cin, out_channels=cout, kernel_size=kernel, stride=stride, padding=padding,
                dilation=dilation, groups=groups, bias=bool(rng.integers(4) > 0), shape=shape)


@register("Conv2d")
def _conv2d(rng):
    cfg = conv2d_config(rng)
    shape = cfg.pop("shape")
    s = snn.Conv2d(**cfg, dtype=np.float64, generator=rng)
    t = torch.nn.Conv2d(**cfg, dtype=torch.float64)  # the scratch twin's dtype: weights cross exactly
    x = rng.standard_normal(shape)
    if rng.integers(6) == 0:
        x = x[0]  # unbatched (C, H, W)
    return s, t, (x,), f"{cfg} x={x.shape}"


def pool_config(rng, dilation: bool = True) -> dict:
    kernel = _ints(rng, 1, 4)
    dil = _ints(rng, 1, 2) if dilation else (1, 1)
    padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel)
    stride = None if rng.integers(4) == 0 else _ints(rng, 1, 3)
    hw = tuple(d * (k - 1) + 1 + int(rng.integers(0, 6)) for k, d in zip(kernel, dil))
    shape = (int(rng.integers(1, 4)), int(rng.integers(1, 4))) + hw
    cfg = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=bool(rng.integers(2)), shape=shape)
    if dilation:
        cfg["dilation"] = dil
    return cfg


def distinct_values(rng, shape) -> np.ndarray:
    """Values at least 0.1 apart, in random order: no ties, and none made by a small perturbation."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.1 - 0.05 * n).reshape(shape) + rng.uniform(-0.01, 0.01, shape)


@register("MaxPool2d")
def _maxpool(rng):
    cfg = pool_config(rng)
    shape = cfg.pop("shape")
    x = distinct_values(rng, shape)
    return snn.MaxPool2d(**cfg), torch.nn.MaxPool2d(**cfg), (x,), f"{cfg} x={shape}"


@register("AvgPool2d")
def _avgpool(rng):
    cfg = pool_config(rng, dilation=False)
    shape = cfg.pop("shape")
    cfg["count_include_pad"] = bool(rng.integers(2))
    if rng.integers(5) == 0:
        cfg["divisor_override"] = int(rng.integers(1, 10))
    x = rng.standard_normal(shape)
    return snn.AvgPool2d(**cfg), torch.nn.AvgPool2d(**cfg), (x,), f"{cfg} x={shape}"


@register("AdaptiveAvgPool2d")
def _adaptive(rng):
    shape = (int(rng.integers(1, 4)), int(rng.integers(1, 4))) + _ints(rng, 1, 9)
    out = _ints(rng, 1, 9)
    if rng.integers(4) == 0:
        out = (out[0], None)
    elif rng.integers(3) == 0:
        out = out[0]
    x = rng.standard_normal(shape)
    return snn.AdaptiveAvgPool2d(out), torch.nn.AdaptiveAvgPool2d(out), (x,), f"output_size={out} x={shape}"
