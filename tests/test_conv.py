"""Conv2d against torch autograd and central differences, its errors and its init.

Parity (docs/design.md): output, input gradient, weight and bias gradients within
1e-10 of torch's (scaled max abs error) in float64 and 1e-5 in float32, over
random configurations (batch, channels, non-square inputs and kernels, stride,
padding incl. 'same' and 'valid', dilation, groups, unbatched inputs).
"""
import math

import numpy as np
import pytest
import torch

import scratch.nn as snn
from scratch.fast import im2col
from experiments.compare import compare_module, to_torch
from experiments.layer_cases import CASES, check_against_numerical, check_against_torch

DTYPES = [np.float64, np.float32]
# torch warns that it pads a copy for even kernels with padding="same"; that is its business, not a failure.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same.:UserWarning")


def _assert_ok(records, tol, context):
    bad = [str(r) for r in records if not r.ok(tol)]
    assert not bad, f"{context}: " + "; ".join(bad)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(60))
def test_conv2d_matches_torch(seed, dtype):
    description, records, tol = check_against_torch(CASES["Conv2d"], np.random.default_rng(seed), dtype)
    _assert_ok(records, tol, description)
    assert all(np.dtype(r.dtype) == dtype for r in records), "a layer keeps its input's dtype"


@pytest.mark.parametrize("seed", range(6))
def test_conv2d_backprop_matches_central_differences(seed):
    description, records = check_against_numerical(CASES["Conv2d"], np.random.default_rng(1000 + seed))
    bad = [r for r in records if r["scaled"] > 1e-7]
    assert not bad, f"{description}: {bad}"


@pytest.mark.parametrize("kernel,dilation", [((2, 4), (1, 1)), ((3, 2), (2, 3)), ((4, 4), (1, 2))])
def test_same_padding_keeps_size_with_even_kernels(kernel, dilation):
    """'same' with an even dilated kernel pads one more at the bottom/right, as torch does."""
    rng = np.random.default_rng(7)
    s = snn.Conv2d(2, 3, kernel, padding="same", dilation=dilation, dtype=np.float64, generator=rng)
    t = torch.nn.Conv2d(2, 3, kernel, padding="same", dilation=dilation, dtype=torch.float64)
    x = rng.standard_normal((2, 2, 9, 8))
    assert s(x).shape == (2, 3, 9, 8)
    _assert_ok(compare_module(s, t, x), 1e-10, "same")


def test_output_shape_formula():
    s = snn.Conv2d(3, 5, (3, 2), stride=(2, 3), padding=(1, 2), dilation=(2, 1))
    x = np.zeros((4, 3, 11, 10), dtype=np.float32)
    oh = (11 + 2 * 1 - 2 * (3 - 1) - 1) // 2 + 1
    ow = (10 + 2 * 2 - 1 * (2 - 1) - 1) // 3 + 1
    assert s(x).shape == (4, 5, oh, ow)
    assert s(x[0]).shape == (5, oh, ow)


def test_first_layer_skips_input_gradient_but_not_weight_gradients():
    rng = np.random.default_rng(3)
    a = snn.Conv2d(2, 4, 3, padding=1, dtype=np.float64, generator=rng)
    b = snn.Conv2d(2, 4, 3, padding=1, dtype=np.float64)
    b.load_state_dict(a.state_dict())
    b.needs_input_grad = False
    x, G = rng.standard_normal((3, 2, 6, 5)), rng.standard_normal((3, 4, 6, 5))
    a(x), b(x)
    assert a.backward(G) is not None and b.backward(G) is None
    np.testing.assert_array_equal(a.weight.grad, b.weight.grad)
    np.testing.assert_array_equal(a.bias.grad, b.bias.grad)


def test_gradients_accumulate_until_zero_grad():
    rng = np.random.default_rng(4)
    s = snn.Conv2d(1, 2, 2, dtype=np.float64, generator=rng)
    x, G = rng.standard_normal((2, 1, 4, 4)), rng.standard_normal((2, 2, 3, 3))
    s(x), s.backward(G)
    once = s.weight.grad.copy()
    s(x), s.backward(G)
    np.testing.assert_allclose(s.weight.grad, 2 * once)
    s.zero_grad()
    assert s.weight.grad is None


def test_errors_say_what_torch_says():
    conv = snn.Conv2d(3, 4, 3)
    with pytest.raises(RuntimeError, match=r"expected input\[2, 1, 5, 5\] to have 3 channels, but got 1 channels"):
        conv(np.zeros((2, 1, 5, 5), dtype=np.float32))
    with pytest.raises(RuntimeError, match=r"padded input size per channel: \(2 x 2\). Kernel size: \(3 x 3\)"):
        conv(np.zeros((2, 3, 2, 2), dtype=np.float32))
    with pytest.raises(RuntimeError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) input to conv2d"):
        conv(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(RuntimeError, match="dtype"):
        conv(np.zeros((1, 3, 5, 5), dtype=np.float64))  # no silent upcast
    with pytest.raises(RuntimeError, match=r"Kernel size: \(5 x 5\)"):
        snn.Conv2d(3, 4, 3, dilation=2)(np.zeros((1, 3, 4, 4), dtype=np.float32))
    for kwargs, message in [(dict(groups=2, in_channels=3), "in_channels must be divisible by groups"),
                            (dict(groups=2, out_channels=3), "out_channels must be divisible by groups"),
                            (dict(groups=0), "groups must be a positive integer"),
                            (dict(padding="same", stride=2), "not supported for strided convolutions"),
                            (dict(padding="full"), "Invalid padding string"),
                            (dict(stride=0), "non-positive stride"),
                            (dict(padding=-1), "negative padding"),
                            (dict(dilation=0), "dilation should be greater than zero")]:
        args = dict(in_channels=4, out_channels=4, kernel_size=3)
        args.update(kwargs)
        with pytest.raises(ValueError, match=message):
            snn.Conv2d(**args)


def test_default_init_is_pytorchs_and_state_dict_crosses():
    s = snn.Conv2d(6, 32, (3, 5), groups=2, generator=np.random.default_rng(0))
    t = torch.nn.Conv2d(6, 32, (3, 5), groups=2)
    assert s.weight.shape == tuple(t.weight.shape) == (32, 3, 3, 5) and s.weight.dtype == np.float32
    assert list(s.state_dict()) == list(t.state_dict())
    bound = 1 / math.sqrt(3 * 3 * 5)  # kaiming_uniform_(a=sqrt(5)) on fan_in = C/G * KH * KW
    for p in (s.weight.data, s.bias.data):
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.9 * bound
    # Uniform on (-bound, bound): variance bound^2 / 3.
    assert abs(s.weight.data.var() / (bound ** 2 / 3) - 1) < 0.1
    t.load_state_dict(to_torch(s.state_dict()))
    assert repr(s) == repr(t)
    assert repr(snn.Conv2d(3, 4, 3, padding="same", bias=False)) == repr(
        torch.nn.Conv2d(3, 4, 3, padding="same", bias=False))


def test_float32_stays_float32():
    rng = np.random.default_rng(5)
    s = snn.Conv2d(3, 4, 3, padding=1, generator=rng)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    out = s(x)
    g = s.backward(np.ones_like(out))
    assert out.dtype == g.dtype == s.weight.grad.dtype == s.bias.grad.dtype == np.float32


@pytest.mark.parametrize("seed", range(12))
def test_conv2d_built_one_sample_at_a_time_matches_torch(seed, monkeypatch):
    """col is built in chunks of samples (im2col.CHUNK_BYTES); one sample per chunk changes nothing."""
    monkeypatch.setattr(im2col, "CHUNK_BYTES", 1)
    description, records, tol = check_against_torch(CASES["Conv2d"], np.random.default_rng(500 + seed), np.float64)
    _assert_ok(records, tol, description)


@pytest.mark.parametrize("stride,groups,bias", [(1, 1, True), (1, 2, False), (2, 1, True), (1, 1, False)])
@pytest.mark.parametrize("channels", [2, 6])
def test_conv2d_uneven_chunks_match_torch(stride, groups, bias, channels, monkeypatch):
    """7 samples in chunks of about 3 (forward: 3, 3 and 1): a shorter last chunk gets fresh columns, its own rows."""
    kernel, padding, n = (3, 2), (2, 1), 7
    conv = snn.Conv2d(channels, 4, kernel, stride=stride, padding=padding, groups=groups, bias=bias,
                      dtype=np.float64)
    ref = torch.nn.Conv2d(channels, 4, kernel, stride=stride, padding=padding, groups=groups, bias=bias,
                          dtype=torch.float64)
    x = np.random.default_rng(0).standard_normal((n, channels, 9, 8))
    oh, ow = (9 + 4 - 3) // stride + 1, (8 + 2 - 2) // stride + 1
    width = kernel[0] * kernel[1] * channels // groups + 1  # the widest col: tap-major with ones
    monkeypatch.setattr(im2col, "CHUNK_BYTES", 3 * oh * ow * width * 8)
    records = compare_module(conv, ref, x)
    _assert_ok(records, 1e-10, "uneven chunks")
