"""BatchNorm1d, BatchNorm2d and the book's BookBatchNorm against torch autograd.

Parity (docs/design.md): forward, input gradient, weight and bias gradients and the
running statistics within 1e-10 of torch's (scaled) in float64, 1e-5 in float32;
backprop within 1e-7 of central differences. Torch modules are built in the
test's dtype so that weights cross without rounding.
"""
import inspect

import numpy as np
import pytest
import torch

import scratch.nn as snn
from experiments.compare import compare_arrays, to_numpy, to_torch
from experiments.layer_cases import CASES, check_against_numerical, check_against_torch
from scratch.numerical import gradcheck
from torch_ref.nn import torch_dtype

TOL = {np.float64: 1e-10, np.float32: 1e-5}
DTYPES = [np.float64, np.float32]
# scratch follows torch's BatchNorm keyword-only bias= (and its repr, which shows it); older torch
# releases (2.9) have neither, so the tests that compare against them need the feature.
NEEDS_BIAS_ARGUMENT = pytest.mark.skipif("bias" not in inspect.signature(torch.nn.BatchNorm1d).parameters,
                                         reason="this torch has no BatchNorm bias= argument")
TWINS = {1: (snn.BatchNorm1d, torch.nn.BatchNorm1d), 2: (snn.BatchNorm2d, torch.nn.BatchNorm2d)}


def _assert_ok(records, tol, context=""):
    bad = [str(r) for r in records if not r.ok(tol)]
    assert not bad, f"{context}: " + "; ".join(bad)


def _twins(kind, C, dtype, rng=None, **cfg):
    scratch_cls, torch_cls = TWINS[kind]
    s = scratch_cls(C, dtype=dtype, **cfg)
    t = torch_cls(C, dtype=torch_dtype(dtype), **cfg)
    if rng is not None:  # non-trivial weights and statistics, so eval mode is not the identity
        if s.affine:
            s.weight.data[...] = rng.uniform(0.5, 2.0, C) * rng.choice([-1, 1], C)
        if s.bias is not None:
            s.bias.data[...] = rng.standard_normal(C)
        if s.track_running_stats:
            s.running_mean[...] = rng.standard_normal(C)
            s.running_var[...] = rng.uniform(0.5, 2.0, C)
    t.load_state_dict(to_torch(s.state_dict()))
    return s, t


def _assert_twins_ok(s, t, x, G, tol, context=""):
    """Parity of every tensor; the input gradient of a tiny batch is judged on the scale of its terms.

    With few values per channel (two, three) the input gradient is a small
    difference of large terms: for two values it is (g1 - g2)(1 - xhat^2) with
    xhat^2 = var / (var + eps), of order eps/var. No implementation reaches
    ``tol`` of the *result's* scale there (torch's own float32 answer is off by
    up to 20% of it against float64; float64 loses ~1e-10): the twins agree to
    ``tol`` of the *terms'* scale, max|g| * max|gamma| / sqrt(min var + eps),
    and that is what such a tensor is held to. Every other tensor keeps the
    plain criterion.
    """
    initial = {k: v.copy() for k, v in s.state_dict().items()}
    axes = (0,) + tuple(range(2, x.ndim))
    var = x.astype(np.float64).var(axis=axes) if s.training or not s.track_running_stats else initial["running_var"]
    gamma = initial["weight"] if s.affine else np.ones(1)
    terms_scale = np.abs(G).max() * np.abs(gamma).max() / np.sqrt(var.min() + s.eps)
    out = s(x)
    ours = {"output": out, "grad_input": s.backward(G)}
    ours.update({f"grad_{k}": p.grad for k, p in s.named_parameters()})
    ours.update(dict(s.named_buffers()))
    t.load_state_dict(to_torch(initial))
    t.train(s.training)
    x_t = torch.tensor(x, requires_grad=True)
    ref = {"output": t(x_t)}
    ref["output"].backward(torch.tensor(G))
    ref["grad_input"] = x_t.grad
    ref.update({f"grad_{k}": p.grad for k, p in t.named_parameters()})
    ref.update(dict(t.named_buffers()))
    assert out.dtype == x.dtype and ours["grad_input"].dtype == x.dtype and out.shape == x.shape
    assert ref.keys() == ours.keys()
    for name, value in ours.items():
        record = compare_arrays(name, value, ref[name])
        if name == "grad_input" and not record.ok(tol):
            assert record.max_abs <= tol * terms_scale, f"{context}: {record}, terms' scale {terms_scale:.3g}"
        else:
            assert record.ok(tol), f"{context}: {record}"


# -- the registry's random configurations --------------------------------------
@pytest.mark.parametrize("name", ["BatchNorm1d", "BatchNorm2d"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_random_configurations_match_torch(name, dtype):
    rng = np.random.default_rng(11)
    for _ in range(15):
        description, records, tol = check_against_torch(CASES[name], rng, dtype)
        _assert_ok(records, tol, description)


@pytest.mark.parametrize("name", ["BatchNorm1d", "BatchNorm2d"])
def test_random_configurations_match_central_differences(name):
    rng = np.random.default_rng(12)
    for _ in range(6):
        description, records = check_against_numerical(CASES[name], rng)
        for r in records:
            assert r["scaled"] <= 1e-7, f"{description}: {r}"


# -- every option, train and eval, explicitly ------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3), (5, 4), (3, 2, 7), (1, 3, 4), (4, 3, 2, 5), (1, 2, 3, 1), (2, 3, 1, 1)])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("track", [True, False])
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("training", [True, False])
def test_forward_and_gradients_match_torch(dtype, shape, affine, track, momentum, training):
    rng = np.random.default_rng([*shape, affine, track, momentum is None, training])
    kind = 2 if len(shape) == 4 else 1
    s, t = _twins(kind, shape[1], dtype, rng, affine=affine, track_running_stats=track, momentum=momentum)
    s.train(training)
    x = (rng.standard_normal(shape) * 3 + rng.standard_normal((1, shape[1]) + (1,) * (len(shape) - 2))).astype(dtype)
    context = f"{shape} affine={affine} track={track} momentum={momentum} train={training}"
    _assert_twins_ok(s, t, x, rng.standard_normal(shape).astype(dtype), TOL[dtype], context)
    assert {k for k, _ in s.named_parameters()} == ({"weight", "bias"} if affine else set())
    assert {k for k, _ in s.named_buffers()} == (
        {"running_mean", "running_var", "num_batches_tracked"} if track else set())


@NEEDS_BIAS_ARGUMENT
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
def test_affine_without_bias(dtype, training):
    rng = np.random.default_rng(2)
    s, t = _twins(2, 3, dtype, rng, bias=False)
    assert list(s.state_dict()) == list(t.state_dict()) == ["weight", "running_mean", "running_var",
                                                            "num_batches_tracked"]
    s.train(training)
    x = rng.standard_normal((4, 3, 2, 2)).astype(dtype)
    _assert_twins_ok(s, t, x, rng.standard_normal(x.shape).astype(dtype), TOL[dtype])
    assert repr(s) == repr(t)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(3, 4), (4, 2, 3), (3, 2, 2, 3)])
def test_backprop_matches_central_differences(training, shape):
    rng = np.random.default_rng(3)
    kind = 2 if len(shape) == 4 else 1
    s, _ = _twins(kind, shape[1], np.float64, rng, momentum=None)
    s.train(training)
    x = rng.standard_normal(shape) * 2
    for r in gradcheck(s, x, seed=4):
        assert r["scaled"] <= 1e-7, r


# -- running statistics over many steps --------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("kind,tail", [(1, ()), (1, (5,)), (2, (3, 4))])
def test_running_statistics_after_50_steps_with_mixed_batch_sizes(dtype, momentum, kind, tail):
    rng = np.random.default_rng(5)
    C = 4
    s, t = _twins(kind, C, dtype, momentum=momentum)
    for step in range(50):
        N = int(rng.choice([2, 3, 7, 16, 33]))
        # A drifting distribution, so that the running averages keep moving.
        x = (rng.standard_normal((N, C) + tail) * (1 + step / 10) + step / 5).astype(dtype)
        y = s(x)
        y_t = t(torch.tensor(x))
        _assert_ok([compare_arrays("output", y, y_t)], TOL[dtype], f"step {step}")
    assert s.num_batches_tracked.dtype == np.int64 and s.num_batches_tracked.shape == ()
    assert int(s.num_batches_tracked) == 50
    ref = to_numpy(t.state_dict())
    for name, value in s.state_dict().items():
        _assert_ok([compare_arrays(name, value, ref[name])], TOL[dtype], name)
    # And eval mode then normalises with those statistics, as torch does.
    s.eval(), t.eval()
    x = (rng.standard_normal((6, C) + tail) * 4 + 5).astype(dtype)
    _assert_ok([compare_arrays("eval output", s(x), t(torch.tensor(x)))], TOL[dtype])


def test_momentum_none_is_the_cumulative_average():
    """With momentum=None the running mean is the plain average of the batch means (an independent check)."""
    rng = np.random.default_rng(6)
    bn = snn.BatchNorm1d(3, momentum=None, dtype=np.float64)
    means, unbiased = [], []
    for _ in range(20):
        x = rng.standard_normal((int(rng.integers(2, 9)), 3)) + rng.standard_normal(3)
        means.append(x.mean(axis=0))
        unbiased.append(x.var(axis=0, ddof=1))
        bn(x)
    np.testing.assert_allclose(bn.running_mean, np.mean(means, axis=0), rtol=1e-12)
    # The initial running_var of 1 drops out: the first batch has factor 1/1 and replaces it.
    np.testing.assert_allclose(bn.running_var, np.mean(unbiased, axis=0), rtol=1e-12)


def test_running_var_takes_the_unbiased_variance_and_normalisation_the_biased():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((5, 2))
    bn = snn.BatchNorm1d(2, momentum=1.0, eps=0.0, dtype=np.float64)
    y = bn(x)
    np.testing.assert_allclose(bn.running_var, x.var(axis=0, ddof=1), rtol=1e-13)
    np.testing.assert_allclose(bn.running_mean, x.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(y, (x - x.mean(0)) / x.std(axis=0, ddof=0), rtol=1e-12, atol=1e-14)


def test_eval_without_running_stats_uses_the_batch():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((6, 3, 4)) + 2
    bn = snn.BatchNorm1d(3, track_running_stats=False, dtype=np.float64).eval()
    assert bn.running_mean is None and "running_mean" not in bn.state_dict()
    y = bn(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2)), 0, atol=1e-12)


# -- errors ----------------------------------------------------------------------------
@pytest.mark.parametrize("kind,shape", [(1, (1, 3)), (1, (1, 3, 1)), (2, (1, 3, 1, 1))])
def test_one_value_per_channel_in_training_raises_pytorchs_error(kind, shape):
    s, t = _twins(kind, 3, np.float64)
    x = np.ones(shape)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training") as ours:
        s(x)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        t(torch.tensor(x))
    assert str(shape) in str(ours.value)
    # As in torch, the counter was already incremented when the check failed.
    assert int(s.num_batches_tracked) == int(t.num_batches_tracked) == 1
    # In eval mode a single sample is fine (running statistics).
    s.eval(), t.eval()
    _assert_ok([compare_arrays("output", s(x), t(torch.tensor(x)))], 1e-10)


def test_wrong_dims_and_channels():
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        snn.BatchNorm1d(3)(np.zeros((2, 3, 1, 1), dtype=np.float32))
    with pytest.raises(ValueError, match=r"expected 4D input \(got 2D input\)"):
        snn.BatchNorm2d(3)(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(RuntimeError, match=r"BatchNorm1d\(num_features=3\).*3 channels.*\(2, 4\)"):
        snn.BatchNorm1d(3)(np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(RuntimeError, match="dtype"):
        snn.BatchNorm1d(3)(np.zeros((2, 3), dtype=np.float64))


# -- state dicts and dtypes -----------------------------------------------------------
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("track", [True, False])
def test_state_dict_crosses_both_ways(affine, track):
    rng = np.random.default_rng(9)
    s = snn.BatchNorm2d(3, affine=affine, track_running_stats=track, dtype=np.float64)
    t = torch.nn.BatchNorm2d(3, affine=affine, track_running_stats=track, dtype=torch.float64)
    assert list(s.state_dict()) == list(t.state_dict())
    s(rng.standard_normal((4, 3, 2, 2)))
    t.load_state_dict(to_torch(s.state_dict()))  # strict
    for k, v in t.state_dict().items():
        assert v.dtype == (torch.int64 if k == "num_batches_tracked" else torch.float64)
        np.testing.assert_array_equal(v.numpy(), s.state_dict()[k])
    t(torch.randn(5, 3, 2, 2, dtype=torch.float64))
    s.load_state_dict(to_numpy(t.state_dict()))
    for k, v in t.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), s.state_dict()[k])


def test_dtype_is_kept_and_cast_follows_the_module():
    bn = snn.BatchNorm1d(3)
    assert bn.weight.dtype == np.float32 and bn.running_var.dtype == np.float32
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    assert bn(x).dtype == np.float32
    assert bn.backward(np.ones_like(x)).dtype == np.float32
    assert bn.weight.grad.dtype == np.float32 and bn.running_mean.dtype == np.float32
    bn.double()
    assert bn.running_mean.dtype == np.float64 and bn.num_batches_tracked.dtype == np.int64
    assert bn(x.astype(np.float64)).dtype == np.float64


def test_gradients_accumulate_until_zero_grad():
    rng = np.random.default_rng(10)
    bn = snn.BatchNorm1d(3, dtype=np.float64)
    x, g = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    bn(x)
    bn.backward(g)
    first = bn.weight.grad.copy()
    bn(x)
    bn.backward(g)
    np.testing.assert_allclose(bn.weight.grad, 2 * first, rtol=1e-14)


def test_reset_running_stats():
    bn = snn.BatchNorm1d(3, momentum=None, dtype=np.float64)
    bn(np.random.default_rng(0).standard_normal((4, 3)))
    bn.reset_running_stats()
    assert (bn.running_mean == 0).all() and (bn.running_var == 1).all() and int(bn.num_batches_tracked) == 0


@NEEDS_BIAS_ARGUMENT
def test_repr():
    assert repr(snn.BatchNorm1d(3, momentum=None, dtype=np.float64)) == repr(torch.nn.BatchNorm1d(3, momentum=None))


# -- the book's variant ------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(6, 5), (4, 2, 3, 3)])
def test_book_batchnorm_in_training_is_per_activation_batchnorm_with_eps_1e6(dtype, shape):
    """Training output and gradients: torch's BatchNorm1d(D, eps=1e-6) on the (N, D)-flattened input."""
    rng = np.random.default_rng(13)
    N, D = shape[0], int(np.prod(shape[1:]))
    book = snn.BookBatchNorm(D, dtype=dtype)
    book.weight.data[...] = rng.uniform(0.5, 2, D)
    book.bias.data[...] = rng.standard_normal(D)
    ref = torch.nn.BatchNorm1d(D, eps=1e-6, dtype=torch_dtype(dtype))
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(book.weight.data))
        ref.bias.copy_(torch.tensor(book.bias.data))
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    G = rng.standard_normal(shape).astype(dtype)
    y = book(x)
    gx = book.backward(G)
    x_t = torch.tensor(x.reshape(N, D), requires_grad=True)
    y_t = ref(x_t)
    y_t.backward(torch.tensor(G.reshape(N, D)))
    _assert_ok([compare_arrays("output", y.reshape(N, D), y_t), compare_arrays("grad_input", gx.reshape(N, D), x_t.grad),
                compare_arrays("grad_weight", book.weight.grad, ref.weight.grad),
                compare_arrays("grad_bias", book.bias.grad, ref.bias.grad)], TOL[dtype])
    assert y.shape == shape and y.dtype == dtype


def test_book_batchnorm_running_statistics_and_eval():
    """Start at zero, momentum 0.9 on the old value, biased variance; eval normalises with them."""
    rng = np.random.default_rng(14)
    book = snn.BookBatchNorm(3, dtype=np.float64)
    assert (book.running_mean == 0).all() and (book.running_var == 0).all()
    mean, var = np.zeros(3), np.zeros(3)
    for _ in range(10):
        x = rng.standard_normal((int(rng.integers(2, 8)), 3)) * 2 + 1
        book(x)
        mean = 0.9 * mean + 0.1 * x.mean(axis=0)
        var = 0.9 * var + 0.1 * x.var(axis=0, ddof=0)
    np.testing.assert_allclose(book.running_mean, mean, rtol=1e-13)
    np.testing.assert_allclose(book.running_var, var, rtol=1e-13)
    book.eval()
    x = rng.standard_normal((4, 3))
    np.testing.assert_allclose(book(x), (x - mean) / np.sqrt(var + 1e-6), rtol=1e-12)
    G = rng.standard_normal((4, 3))
    np.testing.assert_allclose(book.backward(G), G / np.sqrt(var + 1e-6), rtol=1e-12)
    assert "num_batches_tracked" not in book.state_dict()


def test_book_batchnorm_backprop_matches_central_differences():
    rng = np.random.default_rng(15)
    book = snn.BookBatchNorm(12, dtype=np.float64)
    book.weight.data[...] = rng.uniform(0.5, 2, 12)
    for training in (True, False):
        book.train(training)
        for r in gradcheck(book, rng.standard_normal((3, 3, 2, 2)), seed=1):
            assert r["scaled"] <= 1e-7, r


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("layout", ["channels_last", "strided"])
def test_batchnorm2d_any_memory_layout_matches_torch(layout, training, dtype):
    """Conv2d hands BatchNorm2d channels-last memory; the sums and broadcasts follow the layout, not the shape."""
    rng = np.random.default_rng(7)
    s, t = _twins(2, 5, dtype, rng)
    s.train(training), t.train(training)
    data = (rng.standard_normal((4, 6, 7, 5)) * 3 + 1).astype(dtype)
    # channels-last: (N, H, W, C) memory seen as (N, C, H, W); strided: every other column of a wider array
    x = data.transpose(0, 3, 1, 2) if layout == "channels_last" else (
        np.concatenate([data, data], axis=2).transpose(0, 3, 1, 2)[:, :, :, ::2])
    g = rng.standard_normal(x.shape).astype(dtype).transpose(0, 2, 3, 1).copy().transpose(0, 3, 1, 2)
    xt = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(True)
    yt = t(xt)
    yt.backward(torch.from_numpy(np.ascontiguousarray(g)))
    y, dx = s(x), s.backward(g)
    ref = {"output": yt, "grad_input": xt.grad, "grad_weight": t.weight.grad, "running_mean": t.running_mean}
    ours = {"output": y, "grad_input": dx, "grad_weight": s.weight.grad, "running_mean": s.running_mean}
    records = [compare_arrays(k, ours[k], ref[k].detach().numpy()) for k in ref]
    _assert_ok(records, TOL[dtype], f"{layout}, training={training}")


@pytest.mark.parametrize("layout", ["channels_first", "channels_last", "strided", "2d"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("shape", [(3, 5, 7, 9), (9, 4, 40, 33), (1300, 6, 1, 1)])
def test_channel_sum_is_the_float64_sum_in_any_layout(layout, dtype, shape):
    # The float32 path adds partial sums of <= 1,024 values in float32: sizes above and off that
    # (13,200 values a channel, rows of 1,320 and of 1,300) cover the blocks and their remainders.
    from scratch.fast.channels import channel_sum

    rng = np.random.default_rng(5)
    x = (rng.standard_normal(shape) + 3).astype(dtype)
    if layout == "channels_last":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    elif layout == "strided":
        x = x[:, :, ::2]
    elif layout == "2d":
        x = x.reshape(-1, shape[1])
    exact = x.astype(np.float64).sum(axis=(0,) + tuple(range(2, x.ndim)))
    got = channel_sum(x)
    assert got.dtype == np.float64 and got.shape == (shape[1],)
    scale = np.abs(x.astype(np.float64)).sum(axis=(0,) + tuple(range(2, x.ndim)))
    # float32 partials: a sum of 1,024 values in float32 errs by a few roundings (6e-8 each), not 1,024
    tol = 1e-13 if dtype != np.float32 else 1e-6
    assert np.all(np.abs(got - exact) <= tol * scale)
