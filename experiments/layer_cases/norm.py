"""Random configurations of BatchNorm1d, BatchNorm2d and Dropout for the layer-case registry.

Batch norm: train or eval mode, momentum 0.1, 0.3 or None, affine or not,
with or without running statistics, and random weight, bias and running
statistics (so eval mode is not the identity). The central-difference check is
meaningful in both modes: in training the output depends on the batch only (the
running statistics it updates are not read), in eval on running statistics that
do not change.

Dropout: the scratch layer redraws its mask from a fresh generator of one seed
at every call (``_ReplayDropout``), so the repeated forwards of the numerical
check see one fixed mask, and the torch twin (``NumpyDropout`` seeded alike)
draws that same mask.
"""
import numpy as np
import torch

import scratch.nn as snn
from experiments.layer_cases.base import random_input, register
from torch_ref.nn import NumpyDropout


def _batchnorm_config(rng) -> dict:
    return dict(
        eps=float(rng.choice([1e-5, 1e-5, 1e-3])),
        momentum=[0.1, 0.3, None][int(rng.integers(3))],
        affine=bool(rng.integers(4) > 0),
        track_running_stats=bool(rng.integers(4) > 0),
    )


def _batchnorm_case(rng, scratch_cls, torch_cls, shape):
    cfg = _batchnorm_config(rng)
    C = shape[1]
    s = scratch_cls(C, **cfg, dtype=np.float64)
    t = torch_cls(C, **cfg, dtype=torch.float64)  # the scratch twin's dtype: weights cross exactly
    if cfg["affine"]:
        s.weight.data[...] = rng.uniform(0.5, 2.0, C) * rng.choice([-1, 1], C)
        s.bias.data[...] = rng.standard_normal(C)
    if cfg["track_running_stats"]:
        s.running_mean[...] = rng.standard_normal(C)
        s.running_var[...] = rng.uniform(0.5, 2.0, C)
        s.num_batches_tracked[...] = int(rng.integers(0, 5))
    s.train(bool(rng.integers(4) > 0))
    x = random_input(rng, shape) + rng.standard_normal((1, C) + (1,) * (len(shape) - 2))  # per-channel offsets
    mode = "train" if s.training else "eval"
    return s, t, (x,), f"{cfg} {mode} x={shape}"


def _batch(rng, spatial_dims: int) -> tuple:
    # N >= 4. With two values per channel xhat is +-1 whatever x is: the input gradient is
    # O(eps), a difference of large terms, and central differences (and float32 twins) measure
    # their round-off; three values are still poorly conditioned in float32.
    # tests/test_batchnorm.py checks such batches against torch on the scale of the terms.
    N, C = int(rng.integers(4, 7)), int(rng.integers(1, 5))
    return (N, C) + tuple(int(n) for n in rng.integers(1, 5, spatial_dims))


@register("BatchNorm1d")
def _batchnorm1d(rng):
    return _batchnorm_case(rng, snn.BatchNorm1d, torch.nn.BatchNorm1d, _batch(rng, int(rng.integers(0, 2))))


@register("BatchNorm2d")
def _batchnorm2d(rng):
    return _batchnorm_case(rng, snn.BatchNorm2d, torch.nn.BatchNorm2d, _batch(rng, 2))


class _ReplayDropout(snn.Dropout):
    """Dropout whose every forward draws from a fresh ``default_rng(seed)``: the same mask each call."""

    def __init__(self, p, seed):
        super().__init__(p)
        self.seed = seed

    def forward(self, x):
        self.generator = np.random.default_rng(self.seed)
        return super().forward(x)


@register("Dropout")
def _dropout(rng):
    shape = tuple(int(n) for n in rng.integers(1, 7, int(rng.integers(1, 4))))
    p = float(rng.choice([0.0, 0.2, 0.5, 0.8, 1.0]))
    seed = int(rng.integers(2**31))
    s = _ReplayDropout(p, seed)
    t = NumpyDropout(p, generator=np.random.default_rng(seed))
    s.train(bool(rng.integers(4) > 0))
    mode = "train" if s.training else "eval"
    return s, t, (random_input(rng, shape),), f"p={p} {mode} x={shape}"
