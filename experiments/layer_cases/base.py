"""The layer-case registry and its checks (the case files of this package fill it: see __init__)."""
import copy
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np

from experiments.compare import compare_arrays, layer_tolerance, to_torch, torch_values, twin_values
from scratch import paths
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


def random_shape(rng, ndim_range=(1, 4), size=(1, 6)):
    ndim = int(rng.integers(*ndim_range))
    return tuple(int(n) for n in rng.integers(size[0], size[1] + 1, ndim))


def random_input(rng, shape, scale=None):
    scale = float(rng.choice([0.1, 1.0, 3.0])) if scale is None else scale
    return rng.standard_normal(shape) * scale


# -- running ------------------------------------------------------------------
def cast_inputs(inputs, dtype):
    return tuple(v.astype(dtype) if np.issubdtype(v.dtype, np.floating) else v for v in inputs)


def check_against_torch(case: LayerCase, rng, dtype, fast: bool = None) -> tuple:
    """One random configuration of ``case`` in ``dtype``: (description, records, tolerance).

    In float32, a tensor out of tolerance is also measured against the exact
    answer (torch in float64 on the same rounded inputs and weights), next to
    PyTorch's own float32 result: see ``ErrorRecord.ok``. ``fast``: the scratch
    path to take (True: the fast one, False: the plain one, None: as set).
    """
    with paths.using(paths.is_fast() if fast is None else fast):
        return _check_against_torch(case, rng, dtype)


def _check_against_torch(case: LayerCase, rng, dtype) -> tuple:
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
    if low_precision:  # each twin's distance from the exact answer: the float32 headline (docs/design.md)
        t64.load_state_dict(to_torch(initial))
        t64.train(s.training)
        exact = torch_values(t64, *cast_inputs(inputs, np.float64), grad_output=G.astype(np.float64))
        for r in records:
            r.float64_error = compare_arrays(r.tensor, ours[r.tensor], exact[r.tensor]).max_abs
            r.torch_float64_error = compare_arrays(r.tensor, ref[r.tensor], exact[r.tensor]).max_abs
    return description, records, tol


def check_against_numerical(case: LayerCase, rng, fast: bool = None) -> tuple:
    """One random configuration of ``case``: backprop vs central differences in float64 (``fast``: as above)."""
    with paths.using(paths.is_fast() if fast is None else fast):
        return _check_against_numerical(case, rng)


def _check_against_numerical(case: LayerCase, rng) -> tuple:
    s, _, inputs, description = case.build(rng)
    s.to(np.float64)
    x = inputs[0]
    if case.numerical_input_max is not None and x.size and np.abs(x).max() > case.numerical_input_max:
        x = x * (case.numerical_input_max / np.abs(x).max())
        description += f" (rescaled to max |x| = {case.numerical_input_max})"
    return description, gradcheck(s, x, *inputs[1:], seed=int(rng.integers(2**31)))


# The plain path against the fast one: the same formula, the sums in other orders, so round-off apart.
PATHS_TOLERANCE = 1e-12


def check_paths(case: LayerCase, rng, dtype=np.float64) -> tuple:
    """One random configuration of ``case`` run on the plain path and on the fast one: (description, records).

    Two copies of the module, same weights and inputs, same upstream gradient;
    every tensor ``compare_module`` compares (output, input gradient, parameter
    gradients, buffers), the fast path's measured against the plain path's
    (``PATHS_TOLERANCE``, scaled, in float64).
    """
    s, _, inputs, description = case.build(rng)
    s.to(dtype)
    inputs = cast_inputs(inputs, dtype)
    seed = int(rng.integers(2**31))
    values = {}
    for fast, module in ((False, s), (True, copy.deepcopy(s))):
        with paths.using(fast):
            values[fast] = _scratch_values(module, *inputs, seed=seed)
    return description, [compare_arrays(name, value, values[False][name]) for name, value in values[True].items()]


def _scratch_values(module, x, *args, seed: int) -> "OrderedDict[str, np.ndarray]":
    """Output, input gradient (upstream: standard normal from ``seed``), parameter gradients and buffers."""
    module.zero_grad()
    out = np.asarray(module(x, *args))
    G = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
    values = OrderedDict(output=out, grad_input=module.backward(G))
    for name, p in module.named_parameters():
        values[f"grad_{name}"] = np.zeros_like(p.data) if p.grad is None else p.grad
    values.update(module.named_buffers())
    return values
