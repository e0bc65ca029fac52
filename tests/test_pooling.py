"""MaxPool2d, AvgPool2d, AdaptiveAvgPool2d against torch autograd and central differences.

Max pooling is tested on inputs full of ties (small integers) as well: the
whole gradient of a window must go to the one element PyTorch picks (the first
maximum in the window's row-major scan; the last NaN), including overlapping
windows, padding, dilation and ceil_mode.
"""
import numpy as np
import pytest
import torch

import scratch
import scratch.nn as snn
from experiments.compare import compare_module
from experiments.layer_cases import CASES, check_against_numerical, check_against_torch
from experiments.layer_cases.conv import pool_config

DTYPES = [np.float64, np.float32]
TOL = {np.float64: 1e-10, np.float32: 1e-5}
TORCH = {np.float64: torch.float64, np.float32: torch.float32}


def _assert_ok(records, tol, context):
    bad = [str(r) for r in records if not r.ok(tol)]
    assert not bad, f"{context}: " + "; ".join(bad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(50))
@pytest.mark.parametrize("name", ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"])
def test_pool_matches_torch(name, seed, dtype):
    description, records, tol = check_against_torch(CASES[name], np.random.default_rng(seed), dtype)
    _assert_ok(records, tol, description)
    assert all(np.dtype(r.dtype) == dtype for r in records)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(50))
def test_maxpool_ties_route_like_torch(seed, dtype):
    """Integer inputs in {-1, 0, 1}: almost every window has tied maxima."""
    rng = np.random.default_rng(500 + seed)
    cfg = pool_config(rng)
    shape = cfg.pop("shape")
    x = rng.integers(-1, 2, shape).astype(dtype)
    # Integer upstream gradients make every sum exact: a misrouted gradient cannot hide in round-off.
    G_shape = snn.MaxPool2d(**cfg)(x).shape
    G = rng.integers(-3, 4, G_shape).astype(dtype)
    records = compare_module(snn.MaxPool2d(**cfg), torch.nn.MaxPool2d(**cfg), x, grad_output=G)
    assert all(r.max_abs == 0 for r in records), f"{cfg} x={shape}: " + "; ".join(map(str, records))


def test_maxpool_nan_goes_where_torch_sends_it():
    x = np.array([[[[1.0, np.nan, 2.0, np.nan], [np.nan, 0.0, 5.0, 5.0],
                    [3.0, 3.0, 3.0, 3.0], [0.0, 0.0, 0.0, 0.0]]]])
    for cfg in [dict(kernel_size=2, stride=1), dict(kernel_size=2), dict(kernel_size=3, padding=1, ceil_mode=True)]:
        records = compare_module(snn.MaxPool2d(**cfg), torch.nn.MaxPool2d(**cfg), x, grad_output=None)
        assert all(r.max_abs == 0 for r in records), f"{cfg}: " + "; ".join(map(str, records))


@pytest.mark.filterwarnings("ignore:invalid value encountered in subtract:RuntimeWarning")  # -inf - -inf, compared
@pytest.mark.parametrize("seed", range(10))
def test_maxpool_minus_infinity_windows_route_inside_the_input(seed):
    """A window whose max is -inf ties with its -inf padding: torch's gradient goes to its first in-bounds element."""
    rng = np.random.default_rng(700 + seed)
    cfg = pool_config(rng)
    shape = cfg.pop("shape")
    x = np.where(rng.random(shape) < 0.7, -np.inf, rng.integers(-1, 2, shape)).astype(np.float64)
    G = rng.integers(-3, 4, snn.MaxPool2d(**cfg)(x).shape).astype(np.float64)
    records = compare_module(snn.MaxPool2d(**cfg), torch.nn.MaxPool2d(**cfg), x, grad_output=G)
    assert all(r.max_abs == 0 for r in records), f"{cfg} x={shape}: " + "; ".join(map(str, records))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"])
def test_pool_backprop_matches_central_differences(name, seed):
    description, records = check_against_numerical(CASES[name], np.random.default_rng(900 + seed))
    bad = [r for r in records if r["scaled"] > 1e-7]
    assert not bad, f"{description}: {bad}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_avgpool_ceil_mode_divisors(dtype):
    """Windows hanging over the padding and past the input (ceil_mode): all divisor rules."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 7, 8)).astype(dtype)
    for include in (True, False):
        for override in (None, 5):
            cfg = dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True,
                       count_include_pad=include, divisor_override=override)
            _assert_ok(compare_module(snn.AvgPool2d(**cfg), torch.nn.AvgPool2d(**cfg), x), TOL[dtype], str(cfg))


def test_output_sizes_and_layout():
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 9)).astype(np.float32)
    assert snn.MaxPool2d(2)(x).shape == (2, 3, 3, 4)
    assert snn.MaxPool2d(2, ceil_mode=True)(x).shape == (2, 3, 4, 5)
    assert snn.MaxPool2d(3, 2, padding=1, dilation=2)(x).shape == tuple(
        torch.nn.MaxPool2d(3, 2, padding=1, dilation=2)(torch.tensor(x)).shape)
    assert snn.AdaptiveAvgPool2d((4, None))(x).shape == (2, 3, 4, 9)
    assert snn.AvgPool2d(2)(x[0]).shape == (3, 3, 4)
    # On the fast path a channels-last input (what Conv2d returns) gives a channels-last output.
    cl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    before = scratch.is_fast()
    scratch.set_fast(True)
    try:
        out = snn.MaxPool2d(2)(cl)
    finally:
        scratch.set_fast(before)
    assert out.transpose(0, 2, 3, 1).flags.c_contiguous
    with scratch.plain():
        np.testing.assert_array_equal(out, snn.MaxPool2d(2)(x))  # a max is exact: the same bits either way


def test_errors():
    with pytest.raises(RuntimeError, match=r"Given input size: \(1x2x2\). Calculated output size: \(1x0x0\)"):
        snn.MaxPool2d(3)(np.zeros((1, 1, 2, 2)))
    with pytest.raises(RuntimeError, match="Output size is too small"):
        snn.AvgPool2d(3)(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match="pad should be at most half of effective kernel size"):
        snn.MaxPool2d(3, padding=2)
    with pytest.raises(ValueError, match="pad should be at most half"):
        snn.MaxPool2d(3, padding=2, dilation=2)  # torch also requires pad <= kernel_size / 2
    with pytest.raises(RuntimeError, match="3D or 4D"):
        snn.MaxPool2d(2)(np.zeros((2, 3)))
    with pytest.raises(RuntimeError, match=r"adaptive_avg_pool2d\(\): Expected 3D or 4D tensor"):
        snn.AdaptiveAvgPool2d(3)(np.zeros((2, 3)))


def test_repr_matches_torch():
    for s, t in [(snn.MaxPool2d(2), torch.nn.MaxPool2d(2)), (snn.AvgPool2d(2), torch.nn.AvgPool2d(2)),
                 (snn.AdaptiveAvgPool2d((3, None)), torch.nn.AdaptiveAvgPool2d((3, None))),
                 (snn.AdaptiveAvgPool2d(5), torch.nn.AdaptiveAvgPool2d(5))]:
        assert repr(s) == repr(t)


@pytest.mark.parametrize("seed", range(60))
def test_maxpool_return_indices_match_torch(seed):
    # Small integers make ties; NaN and -inf (some windows all -inf, next to -inf padding) on some seeds.
    rng = np.random.default_rng(seed)
    k, d = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    cfg = dict(kernel_size=k, stride=int(rng.integers(1, 4)), padding=int(rng.integers(0, k // 2 + 1)), dilation=d,
               ceil_mode=bool(seed % 2), return_indices=True)
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(rng.integers(d * (k - 1) + 1, 9)),
             int(rng.integers(d * (k - 1) + 1, 9)))
    dtype = [np.float64, np.float32, np.int32][seed % 3]
    x = rng.integers(-2, 3, shape).astype(dtype)
    if dtype != np.int32 and seed % 4 == 0:
        x[rng.random(shape) < 0.1] = np.nan
    if dtype != np.int32 and seed % 5 == 0:
        x[rng.random(shape) < 0.4] = -np.inf
    if seed % 6 == 0:
        x = x[0]  # unbatched (C, H, W)
    y, indices = snn.MaxPool2d(**cfg)(x)
    yt, it = torch.nn.MaxPool2d(**cfg)(torch.tensor(x))
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(indices, it.numpy())
    np.testing.assert_array_equal(y, yt.numpy())


def test_maxpool_with_indices_backpropagates_the_output_gradient_as_torch():
    rng = np.random.default_rng(1)
    x = rng.integers(-2, 3, (2, 3, 7, 6)).astype(np.float64)
    g = rng.standard_normal((2, 3, 4, 4))
    pool = snn.MaxPool2d(2, padding=1, return_indices=True)
    pool(x)
    xt = torch.tensor(x, requires_grad=True)
    torch.nn.MaxPool2d(2, padding=1, return_indices=True)(xt)[0].backward(torch.tensor(g))
    np.testing.assert_array_equal(pool.backward(g), xt.grad.numpy())
