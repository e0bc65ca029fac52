"""Dropout (scratch) against NumpyDropout and nn.Dropout (torch), and the book's BookDropout.

With generators seeded alike the twins drop the same elements, so outputs and
gradients are equal; the keep rate of a large tensor is within statistical
bounds of 1 - p; p = 0, p = 1, invalid p and eval mode behave as PyTorch's.
"""
import numpy as np
import pytest
import torch

import scratch
import scratch.nn as snn
from experiments.compare import compare_arrays
from experiments.layer_cases import CASES, check_against_numerical, check_against_torch
from torch_ref.nn import NumpyDropout

TOL = {np.float64: 1e-10, np.float32: 1e-5}
DTYPES = [np.float64, np.float32]


def _torch_step(t, x, G):
    x_t = torch.tensor(x, requires_grad=True)
    y_t = t(x_t)
    y_t.backward(torch.tensor(G))
    return y_t.detach().numpy(), x_t.grad.numpy()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("shape", [(7,), (4, 5), (2, 3, 4, 5)])
def test_shared_masks_give_equal_outputs_and_gradients(dtype, p, shape):
    rng = np.random.default_rng(1)
    s = snn.Dropout(p, generator=np.random.default_rng(42))
    t = NumpyDropout(p, generator=np.random.default_rng(42))
    for _ in range(3):  # successive calls: both streams advance alike
        x = rng.standard_normal(shape).astype(dtype)
        G = rng.standard_normal(shape).astype(dtype)
        y, gx = s(x), s.backward(G)
        y_t, gx_t = _torch_step(t, x, G)
        assert y.dtype == dtype and gx.dtype == dtype
        for name, ours, ref in (("output", y, y_t), ("grad_input", gx, gx_t)):
            record = compare_arrays(name, ours, ref)
            assert record.ok(TOL[dtype]), str(record)
        np.testing.assert_array_equal(y == 0, y_t == 0)


def test_mask_follows_the_documented_convention():
    """keep = generator.random(x.shape) >= p, one float64 draw per element, scale 1/(1-p)."""
    p, shape = 0.3, (50, 40)
    x = np.ones(shape)
    y = snn.Dropout(p, generator=np.random.default_rng(7))(x)
    keep = np.random.default_rng(7).random(shape) >= p
    np.testing.assert_array_equal(y, np.where(keep, 1 / (1 - p), 0.0))
    # The default stream, when no generator is given, is scratch.random's.
    scratch.manual_seed(7)
    np.testing.assert_array_equal(snn.Dropout(p)(x), y)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_keep_rate_is_within_statistical_bounds(p):
    n = 1_000_000
    for cls in (snn.Dropout, snn.BookDropout):
        y = cls(p, generator=np.random.default_rng(3))(np.ones(n))
        kept = np.count_nonzero(y) / n
        sigma = np.sqrt(p * (1 - p) / n)
        assert abs(kept - (1 - p)) < 5 * sigma, (cls.__name__, kept, 1 - p, sigma)
    # Inverted dropout keeps the mean: kept values are 1/(1-p).
    y = snn.Dropout(p, generator=np.random.default_rng(4))(np.ones(n))
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / (1 - p)], rtol=1e-15)
    assert abs(y.mean() - 1) < 5 * np.sqrt(p / (1 - p) / n)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.0, 1.0])
def test_p_0_and_1_match_nn_dropout(dtype, p):
    """Deterministic cases, so torch's own nn.Dropout is the reference."""
    rng = np.random.default_rng(5)
    x, G = rng.standard_normal((6, 7)).astype(dtype), rng.standard_normal((6, 7)).astype(dtype)
    s = snn.Dropout(p, generator=np.random.default_rng(0))
    y, gx = s(x), s.backward(G)
    y_t, gx_t = _torch_step(torch.nn.Dropout(p), x, G)
    np.testing.assert_array_equal(y, y_t)
    np.testing.assert_array_equal(gx, gx_t)
    if p == 0:
        np.testing.assert_array_equal(y, x)
    else:
        assert not y.any() and not gx.any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_eval_is_the_identity_as_nn_dropout(dtype):
    rng = np.random.default_rng(6)
    x, G = rng.standard_normal((5, 4)).astype(dtype), rng.standard_normal((5, 4)).astype(dtype)
    gen = np.random.default_rng(0)
    s = snn.Dropout(0.5, generator=gen).eval()
    before = gen.bit_generator.state
    y, gx = s(x), s.backward(G)
    assert gen.bit_generator.state == before  # eval draws nothing
    for t in (torch.nn.Dropout(0.5).eval(), NumpyDropout(0.5, np.random.default_rng(0)).eval()):
        y_t, gx_t = _torch_step(t, x, G)
        np.testing.assert_array_equal(y, y_t)
        np.testing.assert_array_equal(gx, gx_t)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_invalid_p_raises_pytorchs_error(p):
    with pytest.raises(ValueError) as ref:
        torch.nn.Dropout(p)
    for make in (snn.Dropout, snn.BookDropout, NumpyDropout):
        with pytest.raises(ValueError) as ours:
            make(p)
        assert str(ours.value) == str(ref.value)


def test_integer_input_is_refused():
    for cls in (snn.Dropout, snn.BookDropout):
        with pytest.raises(TypeError, match="floating point"):
            cls(0.5)(np.ones(4, dtype=np.int64))


def test_inplace_writes_into_the_input():
    x = np.ones((10, 10))
    y = snn.Dropout(0.5, inplace=True, generator=np.random.default_rng(0))(x)
    assert y is x and set(np.unique(x)) == {0.0, 2.0}
    assert repr(snn.Dropout(0.2, inplace=True)) == repr(torch.nn.Dropout(0.2, inplace=True))


def test_numpy_dropout_is_nn_dropout_in_distribution():
    """Same keep rate and scaling as torch's own dropout (different random numbers)."""
    n, p = 200_000, 0.3
    torch.manual_seed(0)
    y_ref = torch.nn.Dropout(p)(torch.ones(n))
    y = NumpyDropout(p, np.random.default_rng(0))(torch.ones(n))
    assert set(torch.unique(y).tolist()) == set(torch.unique(y_ref).tolist())
    sigma = np.sqrt(p * (1 - p) / n)
    for v in (y, y_ref):
        assert abs(float((v != 0).double().mean()) - (1 - p)) < 5 * sigma


def test_inside_a_network_the_twins_agree():
    """Linear -> ReLU -> Dropout -> Linear, float64, one training step's gradients."""
    rng = np.random.default_rng(8)
    s = snn.Sequential(snn.Linear(6, 8, dtype=np.float64, generator=rng), snn.ReLU(),
                       snn.Dropout(0.4, generator=np.random.default_rng(9)),
                       snn.Linear(8, 3, dtype=np.float64, generator=rng))
    t = torch.nn.Sequential(torch.nn.Linear(6, 8, dtype=torch.float64), torch.nn.ReLU(),
                            NumpyDropout(0.4, np.random.default_rng(9)), torch.nn.Linear(8, 3, dtype=torch.float64))
    t.load_state_dict({k: torch.tensor(v) for k, v in s.state_dict().items()})
    x, G = rng.standard_normal((5, 6)), rng.standard_normal((5, 3))
    y, gx = s(x), s.backward(G)
    y_t, gx_t = _torch_step(t, x, G)
    for name, ours, ref in [("output", y, y_t), ("grad_input", gx, gx_t)] + [
            (k, p.grad, dict(t.named_parameters())[k].grad) for k, p in s.named_parameters()]:
        record = compare_arrays(name, ours, ref)
        assert record.ok(1e-10), str(record)


# -- the registry ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_registry_cases_match_torch(dtype):
    rng = np.random.default_rng(10)
    for _ in range(20):
        description, records, tol = check_against_torch(CASES["Dropout"], rng, dtype)
        bad = [str(r) for r in records if not r.ok(tol)]
        assert not bad, f"{description}: {bad}"


def test_registry_cases_match_central_differences():
    rng = np.random.default_rng(11)
    for _ in range(8):
        description, records = check_against_numerical(CASES["Dropout"], rng)
        for r in records:
            assert r["scaled"] <= 1e-7, f"{description}: {r}"


# -- the book's variant ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_book_dropout_scales_at_eval_not_in_training(dtype):
    rng = np.random.default_rng(12)
    p = 0.4
    x, G = rng.standard_normal((8, 9)).astype(dtype), rng.standard_normal((8, 9)).astype(dtype)
    book = snn.BookDropout(p, generator=np.random.default_rng(1))
    y, gx = book(x), book.backward(G)
    keep = np.random.default_rng(1).random(x.shape) >= p
    np.testing.assert_array_equal(y, np.where(keep, x, 0))
    np.testing.assert_array_equal(gx, np.where(keep, G, 0))
    # The same seed drops the same elements as Dropout, which scales the survivors instead.
    y_inv = snn.Dropout(p, generator=np.random.default_rng(1))(x)
    np.testing.assert_allclose(y_inv * dtype(1 - p), y, rtol=TOL[dtype])
    book.eval()
    y, gx = book(x), book.backward(G)
    np.testing.assert_allclose(y, x * (1 - p), rtol=TOL[dtype])
    np.testing.assert_allclose(gx, G * (1 - p), rtol=TOL[dtype])
    assert y.dtype == dtype and gx.dtype == dtype
