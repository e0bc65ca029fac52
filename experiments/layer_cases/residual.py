"""Random configurations of Residual and ResidualBlock for the layer-case registry.

``Residual``: a small body (Linear -> Tanh -> Linear, or a 3x3 convolution) with
an identity shortcut, or a Linear / 1x1-convolution projection when the widths
differ. ``ResidualBlock``: random channels, stride 1 or 2 (two channels or more: see
below), train or eval mode,
random batch-norm affine parameters and running statistics (so eval mode is not
a plain convolution). Batches hold at least 8 values per channel after the
stride, so the batch statistics are well conditioned (see layer_cases/norm.py).
"""
from collections import OrderedDict

import numpy as np
import torch

import scratch.nn as snn
from experiments.layer_cases.base import random_input, register
from torch_ref.models import resnet as tres


def _twin_sequentials(pairs):
    s = snn.Sequential(OrderedDict((name, a) for name, a, _ in pairs))
    t = torch.nn.Sequential(OrderedDict((name, b) for name, _, b in pairs))
    return s, t


@register("Residual", numerical_input_max=3.0)
def _residual(rng):
    if rng.integers(2):
        lead = (int(rng.integers(1, 5)),)
        fin, hidden = int(rng.integers(1, 7)), int(rng.integers(1, 7))
        fout = fin if rng.integers(2) else int(rng.integers(1, 7))
        body_s, body_t = _twin_sequentials([
            ("fc1", snn.Linear(fin, hidden, dtype=np.float64, generator=rng), torch.nn.Linear(fin, hidden)),
            ("act", snn.Tanh(), torch.nn.Tanh()),
            ("fc2", snn.Linear(hidden, fout, dtype=np.float64, generator=rng), torch.nn.Linear(hidden, fout))])
        short = (None, None) if fout == fin else (snn.Linear(fin, fout, bias=False, dtype=np.float64, generator=rng),
                                                  torch.nn.Linear(fin, fout, bias=False))
        shape, what = lead + (fin,), f"Linear {fin}-{hidden}-{fout}"
    else:
        cin = int(rng.integers(1, 4))
        cout = cin if rng.integers(2) else int(rng.integers(1, 4))
        body_s = snn.Conv2d(cin, cout, 3, padding=1, dtype=np.float64, generator=rng)
        body_t = torch.nn.Conv2d(cin, cout, 3, padding=1)
        short = (None, None) if cout == cin else (snn.Conv2d(cin, cout, 1, bias=False, dtype=np.float64,
                                                             generator=rng),
                                                  torch.nn.Conv2d(cin, cout, 1, bias=False))
        shape = (int(rng.integers(1, 4)), cin) + tuple(int(n) for n in rng.integers(2, 6, 2))
        what = f"Conv2d {cin}->{cout} 3x3"
    s, t = snn.Residual(body_s, short[0]), tres.Residual(body_t, short[1])
    kind = "identity" if short[0] is None else "projection"
    return s, t, (random_input(rng, shape),), f"body {what}, {kind} shortcut, x={shape}"


@register("ResidualBlock")
def _residual_block(rng):
    # Two channels or more on both sides. With one channel, batch norm in training makes the block
    # invariant to scaling what feeds it: a 1x1 projection's weight gets a gradient of exactly 0, and bn1's
    # (weight, bias) a gradient orthogonal to themselves, a difference of large terms. Both twins would
    # then compare round-off (float32 misses its tolerance on such a gradient of 1e-2).
    cin, cout = int(rng.integers(2, 5)), int(rng.integers(2, 5))
    if rng.integers(2):
        cout = cin
    stride = int(rng.choice([1, 2]))
    s = snn.ResidualBlock(cin, cout, stride, dtype=np.float64, generator=rng)
    t = tres.ResidualBlock(cin, cout, stride, dtype=torch.float64)
    for name, m in s.named_modules():
        if isinstance(m, snn.BatchNorm2d):  # random affine and running statistics: eval mode is not trivial
            m.weight.data[...] = rng.uniform(0.5, 2.0, cout) * rng.choice([-1, 1], cout)
            m.bias.data[...] = rng.standard_normal(cout)
            m.running_mean[...] = rng.standard_normal(cout)
            m.running_var[...] = rng.uniform(0.5, 2.0, cout)
    s.train(bool(rng.integers(4) > 0))
    shape = (int(rng.integers(2, 4)), cin) + tuple(int(n) for n in rng.integers(4, 7, 2))
    mode = "train" if s.training else "eval"
    shortcut = "identity" if isinstance(s.shortcut, snn.Identity) else "projection"
    return s, t, (random_input(rng, shape, 1.0),), f"{cin}->{cout} stride={stride} {shortcut} {mode} x={shape}"
