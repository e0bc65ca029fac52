"""The catalogue of layers checked against PyTorch: one random configuration per call.

Each ``LayerCase`` builds, from a ``numpy.random.Generator``, a scratch module
(float64), the torch module of the same structure, and the inputs: the first
input gets a gradient, the others (a loss's target) are passed along. The
gradcheck command and the tests both draw from this list, so a layer added here
is checked everywhere. Other modules add their cases with ``register``.
"""
import copy
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

import scratch.nn as snn
from experiments.compare import compare_arrays, layer_tolerance, to_torch, torch_values, twin_values
from scratch.numerical import gradcheck


@dataclass
class LayerCase:
    name: str
    build: Callable  # rng -> (scratch_module, torch_module, inputs: tuple, description: str)
    numerical: bool = True  # also check backprop against central differences
    # Largest |input| for the numerical check. Central differences lose about eps*|f|/h to
    # round-off, so where the gradient is far below the function's value (a saturated
    # softmax) the check would measure round-off, not the backprop; the torch check keeps the full range.
    numerical_input_max: float = None


CASES: "dict[str, LayerCase]" = {}


def register(name: str, numerical: bool = True, numerical_input_max: float = None):
    def decorator(build):
        CASES[name] = LayerCase(name, build, numerical, numerical_input_max)
        return build
    return decorator


def _shape(rng, ndim_range=(1, 4), size=(1, 6)):
    ndim = int(rng.integers(*ndim_range))
    return tuple(int(n) for n in rng.integers(size[0], size[1] + 1, ndim))


def _input(rng, shape, scale=None):
    scale = float(rng.choice([0.1, 1.0, 3.0])) if scale is None else scale
    return rng.standard_normal(shape) * scale


# -- layers -------------------------------------------------------------------
@register("Linear")
def _linear(rng):
    lead = _shape(rng, (1, 3))
    fin, fout = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    bias = bool(rng.integers(2))
    s = snn.Linear(fin, fout, bias=bias, dtype=np.float64, generator=rng)
    t = torch.nn.Linear(fin, fout, bias=bias)
    return s, t, (_input(rng, lead + (fin,)),), f"in={fin} out={fout} bias={bias} x={lead + (fin,)}"


def _elementwise(name, make_scratch, make_torch, numerical_input_max=None):
    @register(name, numerical_input_max=numerical_input_max)
    def build(rng):
        shape = _shape(rng)
        return make_scratch(), make_torch(), (_input(rng, shape),), f"x={shape}"
    return build


_elementwise("ReLU", snn.ReLU, torch.nn.ReLU)
_elementwise("Sigmoid", snn.Sigmoid, torch.nn.Sigmoid, numerical_input_max=4.0)
_elementwise("Tanh", snn.Tanh, torch.nn.Tanh, numerical_input_max=3.0)
_elementwise("Identity", snn.Identity, torch.nn.Identity)


@register("LeakyReLU")
def _leaky(rng):
    shape = _shape(rng)
    slope = float(rng.choice([0.01, 0.2, 1.5]))
    return snn.LeakyReLU(slope), torch.nn.LeakyReLU(slope), (_input(rng, shape),), f"slope={slope} x={shape}"


def _softmax_like(name, scratch_cls, torch_cls):
    @register(name, numerical_input_max=2.0)
    def build(rng):
        shape = _shape(rng, (1, 5))
        dim = int(rng.integers(-len(shape), len(shape)))
        return scratch_cls(dim), torch_cls(dim), (_input(rng, shape, 5.0),), f"dim={dim} x={shape}"
    return build


_softmax_like("Softmax", snn.Softmax, torch.nn.Softmax)
_softmax_like("LogSoftmax", snn.LogSoftmax, torch.nn.LogSoftmax)


@register("Flatten")
def _flatten(rng):
    shape = _shape(rng, (2, 5))
    start = int(rng.integers(0, len(shape)))
    end = int(rng.integers(start, len(shape)))
    if rng.integers(2):
        end -= len(shape)
    return (snn.Flatten(start, end), torch.nn.Flatten(start, end), (_input(rng, shape),),
            f"start={start} end={end} x={shape}")


# -- losses -------------------------------------------------------------------
@register("MSELoss")
def _mse(rng):
    shape = _shape(rng)
    reduction = str(rng.choice(["mean", "sum", "none"]))
    return (snn.MSELoss(reduction=reduction), torch.nn.MSELoss(reduction=reduction),
            (_input(rng, shape), _input(rng, shape)), f"reduction={reduction} x={shape}")


# Large logits saturate the softmax; the float32 check then relies on ErrorRecord.ok's
# comparison with the exact answer, and the numerical check is kept at |x| <= 3 (see LayerCase).
@register("CrossEntropyLoss", numerical_input_max=3.0)
def _cross_entropy(rng):
    C = int(rng.integers(2, 8))
    spatial = _shape(rng, (0, 3), (1, 3)) if rng.integers(3) == 0 else ()
    batched = bool(spatial) or rng.integers(5) > 0
    shape = ((int(rng.integers(1, 7)), C) + spatial) if batched else (C,)
    reduction = str(rng.choice(["mean", "sum", "none"]))
    smoothing = float(rng.choice([0.0, 0.0, 0.1, 0.35]))
    weight = rng.uniform(0.2, 2.0, C) if rng.integers(3) == 0 else None
    x = _input(rng, shape, float(rng.choice([1.0, 3.0, 10.0])))
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


# -- running ------------------------------------------------------------------
def cast_inputs(inputs, dtype):
    return tuple(v.astype(dtype) if np.issubdtype(v.dtype, np.floating) else v for v in inputs)


def check_against_torch(case: LayerCase, rng, dtype) -> tuple:
    """One random configuration of ``case`` in ``dtype``: (description, records, tolerance).

    In float32, a tensor out of tolerance is also measured against the exact
    answer (torch in float64 on the same rounded inputs and weights), next to
    PyTorch's own float32 result: see ``ErrorRecord.ok``.
    """
    s, t, inputs, description = case.build(rng)
    s.to(dtype)
    inputs = cast_inputs(inputs, dtype)
    low_precision = np.dtype(dtype) != np.float64
    if low_precision:  # the exact twin starts from the state before the forward pass changes it
        initial = OrderedDict((k, v.copy()) for k, v in s.state_dict().items())
        t64 = copy.deepcopy(t)
    ours, ref, G = twin_values(s, t, *inputs, seed=int(rng.integers(2**31)))
    records = [compare_arrays(name, value, ref[name]) for name, value in ours.items()]
    tol = layer_tolerance(dtype)
    if low_precision and not all(r.ok(tol) for r in records):
        t64.load_state_dict(to_torch(initial))
        t64.train(s.training)
        exact = torch_values(t64, *cast_inputs(inputs, np.float64), grad_output=G.astype(np.float64))
        for r in records:
            r.float64_error = compare_arrays(r.tensor, ours[r.tensor], exact[r.tensor]).max_abs
            r.torch_float64_error = compare_arrays(r.tensor, ref[r.tensor], exact[r.tensor]).max_abs
    return description, records, tol


def check_against_numerical(case: LayerCase, rng) -> tuple:
    """One random configuration of ``case``: backprop vs central differences in float64."""
    s, _, inputs, description = case.build(rng)
    s.to(np.float64)
    x = inputs[0]
    if case.numerical_input_max is not None and x.size and np.abs(x).max() > case.numerical_input_max:
        x = x * (case.numerical_input_max / np.abs(x).max())
        description += f" (rescaled to max |x| = {case.numerical_input_max})"
    return description, gradcheck(s, x, *inputs[1:], seed=int(rng.integers(2**31)))


# Layers defined in other files register their cases on import (keep at the end).
from experiments import layer_cases_extra  # noqa: E402,F401
