"""Loss behaviour beyond the random parity cases: errors, stability, edge cases, as in torch."""
import warnings

import numpy as np
import pytest
import torch

import scratch.nn as snn
from experiments.compare import compare_arrays


def test_cross_entropy_is_stable_for_huge_logits():
    rng = np.random.default_rng(0)
    for dtype, tdtype in ((np.float64, torch.float64), (np.float32, torch.float32)):
        x = (rng.choice([-1e4, 1e4], size=(8, 10)) + rng.standard_normal((8, 10))).astype(dtype)
        t = rng.integers(0, 10, 8)
        crit = snn.CrossEntropyLoss()
        loss = crit(x, t)
        grad = crit.backward()
        assert np.isfinite(loss) and np.all(np.isfinite(grad))
        xt = torch.tensor(x, requires_grad=True)
        lt = torch.nn.CrossEntropyLoss()(xt, torch.tensor(t))
        lt.backward()
        assert loss.dtype == dtype and grad.dtype == dtype
        np.testing.assert_allclose(loss, lt.item(), rtol=1e-6 if dtype == np.float32 else 1e-12)
        # In float32 a logit near 1e4 is known only to its spacing, 2**-10: both twins' probabilities
        # carry that much error, so they agree to a few such spacings (divided by the batch of 8).
        atol = 4 * np.spacing(np.float32(1e4)) / 8 if dtype == np.float32 else 1e-13
        np.testing.assert_allclose(grad, xt.grad.numpy(), atol=atol, rtol=0)


def test_softmax_is_stable_for_huge_logits():
    x = np.array([[1e4, -1e4, 0.0], [1000.0, 1000.0, -1000.0]])
    y = snn.Softmax(dim=1)(x)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, torch.softmax(torch.tensor(x), 1).numpy(), rtol=1e-15, atol=1e-300)
    ly = snn.LogSoftmax(dim=1)(x)
    assert np.all(np.isfinite(ly))
    # log-probabilities carry the spacing of the logits (1e-13 near 1000): judged on their scale
    assert compare_arrays("log_softmax", ly, torch.log_softmax(torch.tensor(x), 1)).scaled < 1e-15


def test_cross_entropy_mismatched_batch():
    with pytest.raises(ValueError, match=r"Expected input batch_size \(3\) to match target batch_size \(4\)"):
        snn.CrossEntropyLoss()(np.zeros((3, 5)), np.zeros(4, np.int64))


def test_cross_entropy_class_out_of_range():
    with pytest.raises(IndexError, match=r"Target 5 is out of bounds.*\[0, 4\]"):
        snn.CrossEntropyLoss()(np.zeros((3, 5)), np.array([0, 5, 1]))
    with pytest.raises(IndexError, match="Target -1 is out of bounds"):
        snn.CrossEntropyLoss()(np.zeros((3, 5)), np.array([0, -1, 1]))


def test_cross_entropy_bad_targets_and_options():
    with pytest.raises(ValueError, match="probability targets must have the input's shape"):
        snn.CrossEntropyLoss()(np.zeros((3, 5)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="weight tensor should be defined either for all 5 classes"):
        snn.CrossEntropyLoss(weight=np.ones(4))(np.zeros((3, 5)), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="label_smoothing must be between 0.0 and 1.0. Got: 1.5"):
        snn.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(ValueError, match="average is not a valid value for reduction"):
        snn.CrossEntropyLoss(reduction="average")


def test_cross_entropy_all_ignored_is_nan_with_zero_gradient_as_torch():
    x = np.random.default_rng(1).standard_normal((2, 4))
    t = np.array([-100, -100])
    crit = snn.CrossEntropyLoss()
    loss = crit(x, t)
    grad = crit.backward()
    xt = torch.tensor(x, requires_grad=True)
    lt = torch.nn.CrossEntropyLoss()(xt, torch.tensor(t))
    lt.backward()
    assert np.isnan(loss) and torch.isnan(lt)
    np.testing.assert_array_equal(grad, xt.grad.numpy())


def test_mse_broadcasts_with_torchs_warning_and_reduces_the_gradient():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((5, 2)), rng.standard_normal((5, 1))  # the chapter 3 situation
    crit = snn.MSELoss()
    with pytest.warns(UserWarning, match="Using a target size") as ours:
        loss = crit(x, y)
    xt = torch.tensor(x, requires_grad=True)
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        lt = torch.nn.MSELoss()(xt, torch.tensor(y))
    assert "different to the input size" in str(ours[0].message) and theirs
    lt.backward()
    np.testing.assert_allclose(loss, lt.item(), rtol=1e-14)
    np.testing.assert_allclose(crit.backward(), xt.grad.numpy(), rtol=1e-14)
    with pytest.raises(ValueError, match=r"input of shape \(5, 2\) and target of shape \(4, 1\) cannot be broadcast"):
        crit(x, rng.standard_normal((4, 1)))


def test_reduction_none_needs_a_gradient_of_the_loss_shape():
    crit = snn.MSELoss(reduction="none")
    crit(np.zeros((2, 3)), np.ones((2, 3)))
    with pytest.raises(RuntimeError, match=r"backward needs a gradient of shape \(2, 3\)"):
        crit.backward()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_one_hot_path_gives_the_general_paths_bits(dtype, reduction):
    # Plain class indices skip building q; weights of ones force the general path, whose q is then
    # the same one-hot array and whose denominator is the same N: every bit must agree.
    rng = np.random.default_rng(3)
    x = (3 * rng.standard_normal((64, 10))).astype(dtype)
    t = rng.integers(0, 10, 64)
    g = rng.standard_normal(64).astype(dtype) if reduction == "none" else None
    plain, general = snn.CrossEntropyLoss(reduction=reduction), snn.CrossEntropyLoss(np.ones(10), reduction=reduction)
    assert plain(x, t).tobytes() == general(x, t).tobytes()
    assert plain.cache[1] is None and general.cache[1] is not None  # the two paths were taken
    assert plain.backward(g).tobytes() == general.backward(g).tobytes()


def test_cross_entropy_ignore_index_in_range_is_honoured():
    rng = np.random.default_rng(4)
    x, t = rng.standard_normal((6, 5)), np.array([0, 2, 4, 2, 1, 3])
    crit = snn.CrossEntropyLoss(ignore_index=2)
    loss, grad = crit(x, t), crit.backward()
    xt = torch.tensor(x, requires_grad=True)
    lt = torch.nn.CrossEntropyLoss(ignore_index=2)(xt, torch.tensor(t))
    lt.backward()
    np.testing.assert_allclose(loss, lt.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert not grad[[1, 3]].any()
