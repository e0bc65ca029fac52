"""Every registered layer and loss against torch autograd and central differences.

The cases (random shapes, options and values) come from experiments.layer_cases,
so a layer registered there is tested here with no further code: on the fast and
on the plain path (docs/design.md, "Two paths through scratch/"), and each path
against the other.
"""
import numpy as np
import pytest

from experiments import layer_cases
from experiments.compare import TOLERANCE

CONFIGS = 20
NUMERICAL_CONFIGS = 5
NAMES = list(layer_cases.CASES)


def _failures(records, tol):
    return [str(r) for r in records if not r.ok(tol)]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", NAMES)
def test_against_torch(name, dtype, fast):
    """Both of scratch's paths, the fast one and the plain one, against torch."""
    case = layer_cases.CASES[name]
    rng = np.random.default_rng([2024, NAMES.index(name)])
    for _ in range(CONFIGS):
        description, records, tol = layer_cases.check_against_torch(case, rng, dtype, fast=fast)
        assert {"output", "grad_input"} <= {r.tensor for r in records}
        assert not _failures(records, tol), f"{name} {description}: {_failures(records, tol)}"
        # The scratch twin keeps the input's dtype end to end.
        assert all(r.dtype == np.dtype(dtype).name for r in records if r.tensor in ("output", "grad_input"))


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize("name", [n for n in NAMES if layer_cases.CASES[n].numerical])
def test_against_central_differences(name, fast):
    case = layer_cases.CASES[name]
    rng = np.random.default_rng([7, NAMES.index(name)])
    for _ in range(NUMERICAL_CONFIGS):
        description, records = layer_cases.check_against_numerical(case, rng, fast=fast)
        bad = [r for r in records if not r["scaled"] <= TOLERANCE["numerical"]]
        assert not bad, f"{name} {description}: {bad}"


@pytest.mark.parametrize("name", NAMES)
def test_plain_path_equals_fast_path(name):
    """The same module on both paths: every tensor within round-off (PATHS_TOLERANCE, float64, scaled)."""
    case = layer_cases.CASES[name]
    rng = np.random.default_rng([99, NAMES.index(name)])
    for _ in range(CONFIGS):
        description, records = layer_cases.check_paths(case, rng)
        bad = [str(r) for r in records if not r.scaled <= layer_cases.PATHS_TOLERANCE]
        assert not bad, f"{name} {description}: {bad}"


def test_a_wrong_backward_is_caught():
    """The harness must fail a layer whose gradient is wrong by a little."""
    import torch

    import scratch.nn as snn
    from experiments.compare import compare_module

    class SlightlyWrongSigmoid(snn.Sigmoid):
        def backward(self, grad_output):
            return super().backward(grad_output) * (1 + 1e-8)

    x = np.random.default_rng(0).standard_normal((4, 3))
    records = compare_module(SlightlyWrongSigmoid(), torch.nn.Sigmoid(), x)
    by_name = {r.tensor: r for r in records}
    assert by_name["output"].ok(1e-10)
    assert not by_name["grad_input"].ok(1e-10)
    assert by_name["grad_input"].where is not None
