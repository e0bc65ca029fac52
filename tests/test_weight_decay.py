"""Weight decay both ways: the book's L2 term in the loss, and the optimizer's ``weight_decay``.

- The term R = 0.5 * lambda * sum(W^2) and its gradient lambda * W equal torch
  autograd's and central differences.
- Plain SGD (with or without momentum): L2 in the loss and SGD(weight_decay) on
  the same weights give the same trajectory, in scratch and in torch.
- Adam: L2 in the loss is Adam(weight_decay) (the decay goes through the adaptive
  scaling); AdamW's decoupled decay is a different trajectory.
"""
import copy

import numpy as np
import pytest
import torch

import scratch.optim as soptim
from experiments.compare import compare_arrays, to_torch
from scratch.models.multilayer import MultiLayerNet
from scratch.nn import L2Penalty, Parameter, l2_penalty
from scratch.numerical import numerical_gradient
from torch_ref.models import multilayer as tm

LAMBDA = 0.05
STEPS = 50


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Small tensors: torch's thread pool only adds waiting on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- the term itself -------------------------------------------------------------------
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_l2_term_and_gradient_match_torch_autograd(dtype, tol):
    rng = np.random.default_rng(0)
    weights = [Parameter(rng.standard_normal(shape).astype(dtype)) for shape in [(4, 3), (5,), (2, 3, 2)]]
    penalty = L2Penalty(LAMBDA)
    value = penalty(weights)
    penalty.backward()
    tensors = [torch.tensor(w.data, requires_grad=True) for w in weights]
    ref = 0.5 * LAMBDA * sum((t * t).sum() for t in tensors)
    ref.backward()
    assert value.dtype == dtype and value.shape == ()
    records = [compare_arrays("R", value, ref)]
    records += [compare_arrays(f"grad{i}", w.grad, t.grad) for i, (w, t) in enumerate(zip(weights, tensors))]
    assert all(r.ok(tol) for r in records), [str(r) for r in records]
    # Upstream gradient and accumulation: a second backward with dL/dR = 3 adds 3 lambda W.
    penalty.backward(3.0)
    np.testing.assert_allclose(weights[0].grad, 4 * LAMBDA * weights[0].data, rtol=10 * tol)


def test_l2_gradient_matches_central_differences():
    rng = np.random.default_rng(1)
    weights = [rng.standard_normal((3, 4)), rng.standard_normal(6)]
    for w in weights:
        numeric = numerical_gradient(lambda _: float(l2_penalty(weights, LAMBDA)), w)
        np.testing.assert_allclose(numeric, LAMBDA * w, rtol=1e-7, atol=1e-12)


def test_bad_lambda_and_empty():
    with pytest.raises(ValueError, match="weight_decay_lambda"):
        L2Penalty(-0.1)
    assert float(l2_penalty([], LAMBDA)) == 0.0


# -- SGD: the two are the same ---------------------------------------------------------------
def _data(seed=0, n=64, d=8, classes=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, classes, n)


def _net(lam, seed=0):
    return MultiLayerNet(8, [10, 10], 3, activation="tanh", weight_decay_lambda=lam, dtype=np.float64,
                         generator=np.random.default_rng(seed))


def _groups(net, weight_decay):
    """Weights decayed, biases not: the L2 term of the book covers only the weights."""
    weights = {id(w) for w in net.weights()}
    return [{"params": list(net.weights()), "weight_decay": weight_decay},
            {"params": [p for p in net.parameters() if id(p) not in weights], "weight_decay": 0.0}]


def _train_scratch(net, opt, x, labels):
    losses = []
    for step in range(STEPS):
        idx = slice((step * 16) % len(x), (step * 16) % len(x) + 16)
        losses.append(float(net.loss(x[idx], labels[idx])))
        net.loss_backward()
        opt.step()
        opt.zero_grad()
    return losses


def _train_torch(net, opt, x, labels):
    x, labels = torch.tensor(x), torch.tensor(labels)
    for step in range(STEPS):
        idx = slice((step * 16) % len(x), (step * 16) % len(x) + 16)
        opt.zero_grad()
        net.loss(x[idx], labels[idx]).backward()
        opt.step()


def _params_close(a, b, tol):
    b = dict(b)
    records = [compare_arrays(k, v, b[k]) for k, v in a]
    bad = [str(r) for r in records if not r.ok(tol)]
    assert not bad, bad


def _max_param_difference(a, b) -> float:
    b = dict(b)
    return max(compare_arrays(k, v, b[k]).scaled for k, v in a)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_weight_decay_is_the_l2_term(momentum):
    x, labels = _data()
    in_loss, in_optim = _net(LAMBDA), _net(0.0)
    _train_scratch(in_loss, soptim.SGD(in_loss.parameters(), lr=0.1, momentum=momentum), x, labels)
    _train_scratch(in_optim, soptim.SGD(_groups(in_optim, LAMBDA), lr=0.1, momentum=momentum), x, labels)
    # g + lambda W either way: the same trajectory to round-off.
    _params_close(list(in_loss.state_dict().items()), in_optim.state_dict().items(), 1e-12)
    # And torch's two forms land there too.
    for lam, wd in ((LAMBDA, 0.0), (0.0, LAMBDA)):
        t = tm.MultiLayerNet(8, [10, 10], 3, activation="tanh", weight_decay_lambda=lam, dtype=torch.float64)
        t.load_state_dict(to_torch(_net(0.0).state_dict()))
        groups = [{"params": t.weights(), "weight_decay": wd},
                  {"params": [p for n, p in t.named_parameters() if n.endswith("bias")], "weight_decay": 0.0}]
        _train_torch(t, torch.optim.SGD(groups, lr=0.1, momentum=momentum, foreach=False), x, labels)
        ref = [(k, v.detach().numpy()) for k, v in t.state_dict().items()]
        _params_close(list(in_loss.state_dict().items()), ref, 1e-12)
    # The decay did something: without it the weights end elsewhere.
    plain = _net(0.0)
    _train_scratch(plain, soptim.SGD(plain.parameters(), lr=0.1, momentum=momentum), x, labels)
    assert _max_param_difference(list(plain.state_dict().items()), in_loss.state_dict().items()) > 1e-3


# -- Adam: L2 in the loss is Adam(weight_decay), and AdamW is something else --------------------------
def test_adam_weight_decay_is_the_l2_term_and_adamw_is_not():
    x, labels = _data(1)
    in_loss, adam_wd, adamw = _net(LAMBDA), _net(0.0), _net(0.0)
    _train_scratch(in_loss, soptim.Adam(in_loss.parameters(), lr=0.01), x, labels)
    _train_scratch(adam_wd, soptim.Adam(_groups(adam_wd, LAMBDA), lr=0.01), x, labels)
    _train_scratch(adamw, soptim.AdamW(_groups(adamw, LAMBDA), lr=0.01), x, labels)
    _params_close(list(in_loss.state_dict().items()), adam_wd.state_dict().items(), 1e-12)
    assert _max_param_difference(list(in_loss.state_dict().items()), adamw.state_dict().items()) > 1e-2
    # Each form is still torch's: AdamW against torch.optim.AdamW on the same groups.
    t = tm.MultiLayerNet(8, [10, 10], 3, activation="tanh", dtype=torch.float64)
    t.load_state_dict(to_torch(_net(0.0).state_dict()))
    groups = [{"params": t.weights(), "weight_decay": LAMBDA},
              {"params": [p for n, p in t.named_parameters() if n.endswith("bias")], "weight_decay": 0.0}]
    _train_torch(t, torch.optim.AdamW(groups, lr=0.01, foreach=False), x, labels)
    _params_close(list(adamw.state_dict().items()), [(k, v.numpy()) for k, v in t.state_dict().items()], 1e-12)


@pytest.mark.parametrize("lam", [1e-4, 1e-2, 1.0])
def test_why_adam_and_adamw_differ_on_a_weight_the_data_ignores(lam):
    """With no data gradient, Adam + L2 takes a first step of lr * g / (|g| + eps), g = lambda W:
    ~lr * sign(W) whatever lambda is, once |lambda W| >> eps (the adaptive scaling cancels lambda).
    AdamW shrinks W by the factor (1 - lr * lambda), as decay is meant to."""
    lr = 0.01
    w0 = np.array([2.0, -0.5, 1e-3])
    coupled, decoupled = Parameter(w0.copy()), Parameter(w0.copy())
    adam = soptim.Adam([coupled], lr=lr)
    penalty = L2Penalty(lam)
    penalty([coupled])
    penalty.backward()
    adam.step()
    adamw = soptim.AdamW([decoupled], lr=lr, weight_decay=lam)
    decoupled.grad = np.zeros(3)
    adamw.step()
    g = lam * w0
    np.testing.assert_allclose(w0 - coupled.data, lr * g / (np.abs(g) + 1e-8), rtol=1e-12)
    big = np.abs(g) > 1e-5
    np.testing.assert_allclose((w0 - coupled.data)[big], lr * np.sign(w0[big]), rtol=1e-3)
    np.testing.assert_allclose(decoupled.data, w0 * (1 - lr * lam), rtol=1e-14)
    # The same first steps in torch.
    tc, td = torch.tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    (0.5 * lam * (tc * tc).sum()).backward()
    torch.optim.Adam([tc], lr=lr, foreach=False).step()
    td.grad = torch.zeros(3, dtype=torch.float64)
    torch.optim.AdamW([td], lr=lr, weight_decay=lam, foreach=False).step()
    np.testing.assert_allclose(coupled.data, tc.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(decoupled.data, td.detach().numpy(), rtol=1e-14)


def test_models_decay_only_their_weights():
    """The book's term covers every Affine weight and nothing else, in both twins."""
    s = MultiLayerNet(4, [5, 6], 3, weight_decay_lambda=0.3, dtype=np.float64, generator=np.random.default_rng(2))
    t = tm.MultiLayerNet(4, [5, 6], 3, weight_decay_lambda=0.3, dtype=torch.float64)
    t.load_state_dict(to_torch(s.state_dict()))
    assert [id(w) for w in s.weights()] == [id(s.layers.Affine1.weight), id(s.layers.Affine2.weight),
                                            id(s.layers.Affine3.weight)]
    x, labels = _data(3, 10, 4, 3)
    data_only = copy.deepcopy(s)
    data_only.weight_decay.weight_decay_lambda = 0.0
    expected = float(data_only.loss(x, labels)) + 0.15 * sum(float((w.data ** 2).sum()) for w in s.weights())
    np.testing.assert_allclose(float(s.loss(x, labels)), expected, rtol=1e-13)
    np.testing.assert_allclose(t.loss(torch.tensor(x), torch.tensor(labels)).item(), expected, rtol=1e-13)
    s.loss_backward()
    data_only.loss(x, labels)
    data_only.loss_backward()
    for (name, p), (_, q) in zip(s.named_parameters(), data_only.named_parameters()):
        extra = 0.3 * p.data if name.endswith("weight") else 0.0
        np.testing.assert_allclose(p.grad, q.grad + extra, rtol=1e-12, atol=1e-15)
