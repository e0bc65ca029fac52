"""Random configurations of Linear, the activations, Flatten, Identity and the losses."""
import numpy as np
import torch

import scratch.nn as snn
from experiments.layer_cases.base import random_input, random_shape, register


# -- layers -------------------------------------------------------------------
@register("Linear")
def _linear(rng):
    lead = random_shape(rng, (1, 3))
    fin, fout = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    bias = bool(rng.integers(2))
    s = snn.Linear(fin, fout, bias=bias, dtype=np.float64, generator=rng)
    t = torch.nn.Linear(fin, fout, bias=bias)
    return s, t, (random_input(rng, lead + (fin,)),), f"in={fin} out={fout} bias={bias} x={lead + (fin,)}"


def _elementwise(name, make_scratch, make_torch, numerical_input_max=None):
    @register(name, numerical_input_max=numerical_input_max)
    def build(rng):
        shape = random_shape(rng)
        return make_scratch(), make_torch(), (random_input(rng, shape),), f"x={shape}"
    return build


_elementwise("ReLU", snn.ReLU, torch.nn.ReLU)
_elementwise("Sigmoid", snn.Sigmoid, torch.nn.Sigmoid, numerical_input_max=4.0)
_elementwise("Tanh", snn.Tanh, torch.nn.Tanh, numerical_input_max=3.0)
_elementwise("Identity", snn.Identity, torch.nn.Identity)


@register("LeakyReLU")
def _leaky(rng):
    shape = random_shape(rng)
    slope = float(rng.choice([0.01, 0.2, 1.5]))
    return snn.LeakyReLU(slope), torch.nn.LeakyReLU(slope), (random_input(rng, shape),), f"slope={slope} x={shape}"


def _softmax_like(name, scratch_cls, torch_cls):
    @register(name, numerical_input_max=2.0)
    def build(rng):
        shape = random_shape(rng, (1, 5))
        dim = int(rng.integers(-len(shape), len(shape)))
        return scratch_cls(dim), torch_cls(dim), (random_input(rng, shape, 5.0),), f"dim={dim} x={shape}"
    return build


_softmax_like("Softmax", snn.Softmax, torch.nn.Softmax)
_softmax_like("LogSoftmax", snn.LogSoftmax, torch.nn.LogSoftmax)


@register("Flatten")
def _flatten(rng):
    shape = random_shape(rng, (2, 5))
    start = int(rng.integers(0, len(shape)))
    end = int(rng.integers(start, len(shape)))
    if rng.integers(2):
        end -= len(shape)
    return (snn.Flatten(start, end), torch.nn.Flatten(start, end), (random_input(rng, shape),),
            f"start={start} end={end} x={shape}")


# -- losses -------------------------------------------------------------------
@register("MSELoss")
def _mse(rng):
    shape = random_shape(rng)
    reduction = str(rng.choice(["mean", "sum", "none"]))
    return (snn.MSELoss(reduction=reduction), torch.nn.MSELoss(reduction=reduction),
            (random_input(rng, shape), random_input(rng, shape)), f"reduction={reduction} x={shape}")


# Large logits saturate the softmax; the float32 check then relies on ErrorRecord.ok's
# comparison with the exact answer, and the numerical check is kept at |x| <= 3 (see LayerCase).
@register("CrossEntropyLoss", numerical_input_max=3.0)
def _cross_entropy(rng):
    C = int(rng.integers(2, 8))
    spatial = random_shape(rng, (0, 3), (1, 3)) if rng.integers(3) == 0 else ()
    batched = bool(spatial) or rng.integers(5) > 0
    shape = ((int(rng.integers(1, 7)), C) + spatial) if batched else (C,)
    reduction = str(rng.choice(["mean", "sum", "none"]))
    smoothing = float(rng.choice([0.0, 0.0, 0.1, 0.35]))
    weight = rng.uniform(0.2, 2.0, C) if rng.integers(3) == 0 else None
    x = random_input(rng, shape, float(rng.choice([1.0, 3.0, 10.0])))
    kwargs = dict(reduction=reduction, label_smoothing=smoothing)
    if rng.integers(3) == 0:  # class probabilities
        target = rng.dirichlet(np.ones(C), size=shape[:1] + spatial if batched else None)
        target = np.moveaxis(target, -1, 1) if batched else target
        kind = "probabilities"
    else:
        target_shape = (shape[0],) + spatial if batched else ()
        target = rng.integers(0, C, target_shape)
        if target.size > 1 and rng.integers(3) == 0:
            ignore = 3 if C > 3 else -100  # an ignored sample, sometimes through a custom index
            target[target == ignore] = 0
            target.flat[0] = ignore
            kwargs["ignore_index"] = ignore
        kind = "indices"
    s = snn.CrossEntropyLoss(weight=weight, **kwargs)
    t = torch.nn.CrossEntropyLoss(weight=None if weight is None else torch.tensor(weight), **kwargs)
    return s, t, (x, target), f"{kind} x={shape} {kwargs} weight={weight is not None}"
