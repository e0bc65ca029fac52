"""The book's CNNs in both twins: structure, init, filter pictures, and lockstep training.

Lockstep (docs/design.md): from the same weights, on the same mini-batches, with
the same dropout masks, 100 SGD steps of the NumPy twin and the PyTorch twin in
float64 give losses equal to 1e-9 relative at every step.
"""
import math

import numpy as np
import pytest
import torch

import scratch.optim
from experiments.compare import compare_arrays, to_torch
from experiments.threads import threads
from scratch.models import convnets as S
from torch_ref.models import convnets as T


def generated_images(rng, n: int, classes: int = 10, size: int = 28, noise: float = 1.0):
    """A learnable toy set: one random blocky prototype per class in [0, 1], plus Gaussian noise.

    The noise keeps the task hard enough that the loss stays well above zero
    for 100 steps: a loss near 1e-8 is itself round-off, and its relative
    difference between twins would measure nothing.
    """
    coarse = rng.uniform(0, 1, (classes, 1, 7, 7))
    prototypes = coarse.repeat(size // 7, axis=2).repeat(size // 7, axis=3)
    labels = rng.integers(0, classes, n)
    images = prototypes[labels] + noise * rng.standard_normal((n, 1, size, size))
    return images, labels


@pytest.fixture
def one_thread():
    """Tiny float64 batches gain nothing from threads, and on a busy machine spinning thread pools cost a lot."""
    with threads(1):
        yield


def _twins(name, seed, dtype=np.float64, **kwargs):
    rng = np.random.default_rng(seed)
    extra = {}
    if name == "DeepConvNet":
        extra = dict(dropout_generator=np.random.default_rng(seed + 1))
    s = getattr(S, name)(dtype=dtype, generator=rng, **kwargs, **extra)
    if name == "DeepConvNet":
        extra = dict(dropout_generator=np.random.default_rng(seed + 1))
    t = getattr(T, name)(dtype={np.float64: torch.float64, np.float32: torch.float32}[dtype], **kwargs, **extra)
    t.load_state_dict(to_torch(s.state_dict()))
    return s, t


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize("name,batch,lr", [("SimpleConvNet", 8, 0.05), ("DeepConvNet", 4, 0.01)])
def test_lockstep_100_steps_float64(name, batch, lr, fast, one_thread):
    """Both of scratch's paths (docs/design.md, "Two paths through scratch/") train in lockstep with torch."""
    with scratch.paths.using(fast):
        _lockstep_100_steps(name, batch, lr)


def _lockstep_100_steps(name, batch, lr):
    s, t = _twins(name, seed=0)
    rng = np.random.default_rng(42)
    images, labels = generated_images(rng, 200)
    opt_s = scratch.optim.SGD(s.parameters(), lr=lr, momentum=0.9)
    opt_t = torch.optim.SGD(t.parameters(), lr=lr, momentum=0.9)
    losses = []
    for step in range(100):
        idx = rng.choice(len(images), batch, replace=False)
        x, y = images[idx], labels[idx]
        ls = s.loss(x, y)
        s.loss_backward()
        opt_s.step()
        opt_s.zero_grad()
        lt = t.loss(torch.tensor(x), torch.tensor(y))
        opt_t.zero_grad()
        lt.backward()
        opt_t.step()
        rel = abs(float(ls) - lt.item()) / abs(lt.item())
        assert rel <= 1e-9, f"{name} step {step}: scratch {float(ls)!r} torch {lt.item()!r} (rel {rel:.3g})"
        losses.append(float(ls))
    assert np.mean(losses[-10:]) < np.mean(losses[:10]), "the toy set is learnable: the loss must go down"
    for key, value in t.state_dict().items():
        record = compare_arrays(key, s.state_dict()[key], value)
        assert record.scaled <= 1e-9, str(record)


def test_same_state_dict_keys_and_shapes():
    for name in ("SimpleConvNet", "DeepConvNet"):
        s, t = getattr(S, name)(), getattr(T, name)()
        assert [(k, v.shape) for k, v in s.state_dict().items()] == [
            (k, tuple(v.shape)) for k, v in t.state_dict().items()]
    s = S.SimpleConvNet()
    assert s.layers.Affine1.weight.shape == (100, 4320)  # 30 * 12 * 12
    d = S.DeepConvNet()
    assert d.layers.Affine1.weight.shape == (50, 64 * 4 * 4)
    assert [c.out_channels for c in d.convolutions()] == [16, 16, 32, 32, 64, 64]
    assert [c.padding for c in d.convolutions()] == [(1, 1)] * 3 + [(2, 2)] + [(1, 1)] * 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_and_gradients_match_in_eval_and_float32(dtype, one_thread):
    """One forward and backward of a whole network: every parameter gradient, to the layer tolerance."""
    tol = {np.float64: 1e-10, np.float32: 1e-5}[dtype]
    rng = np.random.default_rng(9)
    x, y = generated_images(rng, 3)
    x = x.astype(dtype)
    for name in ("SimpleConvNet", "DeepConvNet"):
        s, t = _twins(name, seed=3, dtype=dtype)
        s.eval(), t.eval()
        ls = s.loss(x, y)
        s.loss_backward()
        assert ls.dtype == dtype
        lt = t.loss(torch.tensor(x), torch.tensor(y))
        lt.backward()
        assert compare_arrays("loss", ls, lt).scaled <= tol
        grads = dict(t.named_parameters())
        for key, p in s.named_parameters():
            assert p.grad.dtype == dtype
            record = compare_arrays(key, p.grad, grads[key].grad)
            assert record.scaled <= tol * 10, str(record)  # a deep sum of layers: 10x the one-layer tolerance


def test_book_initialisation():
    s = S.SimpleConvNet(generator=np.random.default_rng(0), dtype=np.float64)
    assert abs(s.layers.Affine1.weight.data.std() - 0.01) < 0.0005
    assert all(not m.bias.data.any() for m in (s.layers.Conv1, s.layers.Affine1, s.layers.Affine2))
    d = S.DeepConvNet(generator=np.random.default_rng(0), dtype=np.float64)
    fan_ins = [1 * 9, 16 * 9, 16 * 9, 32 * 9, 32 * 9, 64 * 9, 64 * 4 * 4, 50]
    weights = [c.weight.data for c in d.convolutions()] + [d.layers.Affine1.weight.data, d.layers.Affine2.weight.data]
    for w, fan_in in zip(weights, fan_ins):
        assert abs(w.std() / math.sqrt(2 / fan_in) - 1) < 0.25  # the smallest has 144 values
    # The same generator gives the same network; the torch twin's own init has the same statistics.
    again = S.DeepConvNet(generator=np.random.default_rng(0), dtype=np.float64)
    np.testing.assert_array_equal(again.layers.Conv6.weight.data, d.layers.Conv6.weight.data)
    t = T.DeepConvNet(generator=torch.Generator().manual_seed(0))
    assert abs(t.layers.Conv6.weight.std().item() / math.sqrt(2 / (64 * 9)) - 1) < 0.05


def test_dropout_only_in_training_and_accuracy_in_eval():
    d = S.DeepConvNet(generator=np.random.default_rng(0), dropout_generator=np.random.default_rng(1))
    x = generated_images(np.random.default_rng(2), 4)[0].astype(np.float32)
    d.eval()
    np.testing.assert_array_equal(d(x), d(x))
    d.train()
    assert not np.array_equal(d(x), d(x))
    acc = d.accuracy(x, np.zeros(4, dtype=np.int64), batch_size=3)
    assert 0.0 <= acc <= 1.0 and d.training


@pytest.mark.parametrize("kwargs", [{}, dict(scale_each=False, nrow=5), dict(normalize=False, padding=1),
                                    dict(value_range=(-0.01, 0.01))])
def test_filter_grid_twins_agree(kwargs):
    s = S.SimpleConvNet(generator=np.random.default_rng(0))
    t = T.SimpleConvNet()
    t.load_state_dict(to_torch(s.state_dict()))
    g_s, g_t = S.filter_grid(s.layers.Conv1, **kwargs), T.filter_grid(t.layers.Conv1, **kwargs)
    assert g_s.shape == tuple(g_t.shape)
    assert compare_arrays("grid", g_s, g_t).max_abs <= 1e-6
    d = S.DeepConvNet(generator=np.random.default_rng(0))
    td = T.DeepConvNet()
    td.load_state_dict(to_torch(d.state_dict()))
    g_s, g_t = S.filter_grid(d.layers.Conv3.weight.data, **kwargs), T.filter_grid(td.layers.Conv3.weight, **kwargs)
    assert g_s.shape == tuple(g_t.shape) == (16,) + g_s.shape[1:]
    assert compare_arrays("grid", g_s, g_t).max_abs <= 1e-6


def test_accuracy_takes_labels_or_one_hot_rows_and_refuses_what_numpy_would_broadcast():
    from scratch.models.multilayer import MultiLayerNet
    from torch_ref.models.multilayer import MultiLayerNet as TorchMultiLayerNet

    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((6, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 6)
    twins = ((S.SimpleConvNet(generator=rng), x, np.asarray), (T.SimpleConvNet(), torch.tensor(x), torch.tensor),
             (MultiLayerNet(784, [20], 10, generator=rng), x.reshape(6, -1), np.asarray),
             (TorchMultiLayerNet(784, [20], 10), torch.tensor(x.reshape(6, -1)), torch.tensor))
    for net, xs, to in twins:
        assert net.accuracy(xs, to(t)) == net.accuracy(xs, to(np.eye(10, dtype=np.float32)[t]))
        for bad in (t[:1], t[:, None], t[:5]):  # (1,) and (N, 1) broadcast or argmax silently; (5,) fails late
            with pytest.raises(ValueError, match=r"accuracy: t must be 6 class labels, shape \(6,\), or one-hot"):
                net.accuracy(xs, to(bad))
