"""MultiLayerNet and MultiLayerNetExtend: the scratch twin against the torch_ref twin.

Same state-dict keys both ways, the book's initialisation, forward and every
gradient equal to torch autograd's, backprop equal to central differences, and
the acceptance run of issue 6: batch norm, dropout and weight decay trained 300
steps in lockstep in float64 (scratch.optim against torch.optim, same initial
weights, batches and masks) with losses equal at every step to 1e-9 relative.
"""
import numpy as np
import pytest
import torch

import scratch.optim as soptim
from experiments.compare import compare_arrays, to_numpy, to_torch
from scratch.models.multilayer import MultiLayerNet, MultiLayerNetExtend
from scratch.nn import BatchNorm1d, BookBatchNorm, BookDropout, Dropout
from scratch.numerical import numerical_gradient
from torch_ref.models import multilayer as tm
from torch_ref.nn import torch_dtype

TOL = {np.float64: 1e-10, np.float32: 1e-5}


CONFIGS = [
    dict(),
    dict(activation="sigmoid", weight_init_std="xavier"),
    dict(activation="tanh", weight_init_std=0.1, weight_decay_lambda=0.05),
    dict(use_batchnorm=True),
    dict(use_dropout=True, dropout_ration=0.3),
    dict(use_batchnorm=True, use_dropout=True, dropout_ration=0.2, weight_decay_lambda=0.01),
    dict(activation="sigmoid", use_batchnorm=True, use_dropout=True, weight_init_std="sigmoid"),
]


def _twins(cfg, dtype=np.float64, seed=0, sizes=(6, [7, 5], 4)):
    """A scratch net and its torch twin with the scratch net's weights and alike-seeded mask streams."""
    s = MultiLayerNetExtend(*sizes, **cfg, dtype=dtype, generator=np.random.default_rng(seed),
                            dropout_generator=np.random.default_rng(seed + 1))
    t = tm.MultiLayerNetExtend(*sizes, **cfg, dtype=torch_dtype(dtype),
                               dropout_generator=np.random.default_rng(seed + 1))
    t.load_state_dict(to_torch(s.state_dict()))
    return s, t


def _data(rng, n, d, classes, dtype=np.float64):
    return rng.standard_normal((n, d)).astype(dtype), rng.integers(0, classes, n)


# -- structure ----------------------------------------------------------------------------
@pytest.mark.parametrize("cfg", CONFIGS)
def test_same_state_dict_keys_and_weights_cross_both_ways(cfg):
    s, t = _twins(cfg)
    assert list(s.state_dict()) == list(t.state_dict())
    assert [n for n, _ in s.named_parameters()] == [n for n, _ in t.named_parameters()]
    t2 = tm.MultiLayerNetExtend(6, [7, 5], 4, **cfg, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    s.load_state_dict(to_numpy(t2.state_dict()))
    for k, v in t2.state_dict().items():
        np.testing.assert_array_equal(s.state_dict()[k], v.numpy())


def test_layer_names_follow_the_book():
    s = MultiLayerNetExtend(4, [3, 3], 2, use_batchnorm=True, use_dropout=True)
    assert list(s.layers._modules) == ["Affine1", "BatchNorm1", "Activation_function1", "Dropout1",
                                       "Affine2", "BatchNorm2", "Activation_function2", "Dropout2", "Affine3"]
    assert isinstance(s.layers.BatchNorm1, BatchNorm1d) and isinstance(s.layers.Dropout2, Dropout)
    assert list(s.state_dict())[:6] == ["layers.Affine1.weight", "layers.Affine1.bias", "layers.BatchNorm1.weight",
                                        "layers.BatchNorm1.bias", "layers.BatchNorm1.running_mean",
                                        "layers.BatchNorm1.running_var"]
    plain = MultiLayerNet(4, [3, 3], 2, activation="sigmoid")
    assert list(plain.layers._modules) == ["Affine1", "Activation_function1", "Affine2", "Activation_function2",
                                           "Affine3"]
    assert list(plain.state_dict()) == list(tm.MultiLayerNet(4, [3, 3], 2).state_dict())
    book = MultiLayerNetExtend(4, [3], 2, use_batchnorm=True, use_dropout=True, book_layers=True)
    assert isinstance(book.layers.BatchNorm1, BookBatchNorm) and isinstance(book.layers.Dropout1, BookDropout)


@pytest.mark.parametrize("std,expected", [("relu", lambda n: np.sqrt(2 / n)), ("he", lambda n: np.sqrt(2 / n)),
                                          ("sigmoid", lambda n: np.sqrt(1 / n)), ("Xavier", lambda n: np.sqrt(1 / n)),
                                          (0.01, lambda n: 0.01)])
def test_weight_init_is_the_books(std, expected):
    fan_in, fan_out = 400, 300
    s = MultiLayerNet(fan_in, [fan_out], 10, weight_init_std=std, dtype=np.float64, generator=np.random.default_rng(0))
    W = s.layers.Affine1.weight.data
    assert W.shape == (fan_out, fan_in)  # Linear's (out, in): the book's W transposed
    # The book draws W (fan_in, fan_out) = std * randn in that order from the stream.
    np.testing.assert_array_equal(W.T, expected(fan_in) * np.random.default_rng(0).standard_normal((fan_in, fan_out)))
    assert abs(W.std() / expected(fan_in) - 1) < 0.01
    assert not s.layers.Affine1.bias.data.any()
    t = tm.MultiLayerNet(fan_in, [fan_out], 10, weight_init_std=std, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(0))
    assert abs(float(t.layers.Affine1.weight.detach().std()) / expected(fan_in) - 1) < 0.01
    assert not t.layers.Affine1.bias.any()


def test_bad_arguments():
    for make in (MultiLayerNetExtend, tm.MultiLayerNetExtend):
        with pytest.raises(ValueError, match="activation must be one of"):
            make(4, [3], 2, activation="softplus")
        with pytest.raises(ValueError, match="weight_init_std must be"):
            make(4, [3], 2, weight_init_std="lecun")
        with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
            make(4, [3], 2, use_dropout=True, dropout_ration=1.5)


# -- one step against autograd --------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("cfg", CONFIGS)
def test_loss_and_every_gradient_match_torch(cfg, training, dtype):
    rng = np.random.default_rng(1)
    s, t = _twins(cfg, dtype)
    s.train(training), t.train(training)
    x, labels = _data(rng, 9, 6, 4, dtype)
    loss = s.loss(x, labels)
    s.loss_backward()
    loss_t = t.loss(torch.tensor(x), torch.tensor(labels))
    loss_t.backward()
    assert loss.dtype == dtype
    records = [compare_arrays("loss", loss, loss_t)]
    torch_params = dict(t.named_parameters())
    scale = max(float(torch_params[k].grad.abs().max()) for k in torch_params)
    for k, p in s.named_parameters():
        ref = torch_params[k].grad
        if training and cfg.get("use_batchnorm") and k.endswith("bias") and k.replace(".bias", "") in (
                f"layers.Affine{i}" for i in range(1, 3)):
            # Batch norm subtracts the batch mean: the bias before it has gradient 0 exactly,
            # and both twins return round-off. Hold both to that, not to each other's noise.
            assert np.abs(p.grad).max() <= TOL[dtype] * scale, (k, p.grad)
            assert float(ref.abs().max()) <= TOL[dtype] * scale, (k, ref)
            continue
        records.append(compare_arrays(f"grad {k}", p.grad, ref))
    ref_buffers = dict(t.named_buffers())
    records += [compare_arrays(k, b, ref_buffers[k]) for k, b in s.named_buffers()]
    bad = [str(r) for r in records if not r.ok(TOL[dtype])]
    assert not bad, bad


def test_backprop_of_the_books_loss_matches_central_differences():
    """Batch norm in training mode, a fixed dropout mask, and the L2 term, in float64."""
    rng = np.random.default_rng(2)
    for book_layers in (False, True):
        s = MultiLayerNetExtend(5, [6, 4], 3, activation="tanh", use_batchnorm=True, use_dropout=True,
                                dropout_ration=0.3, weight_decay_lambda=0.1, book_layers=book_layers,
                                dtype=np.float64, generator=rng)
        x, labels = _data(rng, 7, 5, 3)
        dropouts = [m for name, m in s.layers.named_children() if name.startswith("Dropout")]

        def loss(_):
            for i, d in enumerate(dropouts):  # the same masks at every call
                d.generator = np.random.default_rng(100 + i)
            return float(s.loss(x, labels))

        loss(None)
        s.zero_grad()
        s.loss_backward()
        numeric = {name: numerical_gradient(loss, p.data, h=1e-6) for name, p in s.named_parameters()}
        scale = max(np.abs(n).max() for n in numeric.values())
        for name, p in s.named_parameters():
            if name in ("layers.Affine1.bias", "layers.Affine2.bias"):
                # Followed by batch norm: the gradient is 0 exactly; both must be round-off.
                assert max(np.abs(p.grad).max(), np.abs(numeric[name]).max()) <= 1e-7 * scale, name
                continue
            err = np.abs(p.grad - numeric[name]).max() / np.abs(numeric[name]).max()
            assert err <= 1e-7, (book_layers, name, err)


def test_accuracy_is_taken_in_eval_mode_and_changes_nothing():
    rng = np.random.default_rng(3)
    s, t = _twins(dict(use_batchnorm=True, use_dropout=True))
    x, labels = _data(rng, 20, 6, 4)
    s(x), t(torch.tensor(x))  # move the running statistics away from their initial values
    before = {k: v.copy() for k, v in s.state_dict().items()}
    acc = s.accuracy(x, labels)
    assert s.training
    for k, v in s.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    # Equal counts are machine-independent only when no sample's two best logits lie within round-off.
    s.eval()
    top2 = np.sort(s(x), axis=1)[:, -2:]
    s.train()
    assert np.all(top2[:, 1] - top2[:, 0] > 1e-9 * np.abs(top2).max())
    assert acc == t.accuracy(torch.tensor(x), torch.tensor(labels))
    assert t.training
    one_hot = np.eye(4)[labels]
    assert s.accuracy(x, one_hot) == acc
    s.eval()
    assert acc == float(np.mean(s(x).argmax(axis=1) == labels))


# -- the lockstep acceptance run ---------------------------------------------------------------
def _teacher_data(seed, n=512, d=20, classes=5):
    """Inputs and labels from a random teacher network: learnable, but not in one step."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    hidden = np.tanh(x @ rng.standard_normal((d, 16)))
    return x, np.argmax(hidden @ rng.standard_normal((16, classes)), axis=1)


@pytest.mark.parametrize("optimizer", ["Adam", pytest.param("SGD", marks=pytest.mark.slow)])
def test_lockstep_300_steps_float64_losses_equal_at_every_step(optimizer):
    seed = 2026
    init_ss, batch_ss, mask_ss = np.random.SeedSequence(seed).spawn(3)
    cfg = dict(activation="relu", weight_init_std="he", use_batchnorm=True, use_dropout=True,
               dropout_ration=0.2, weight_decay_lambda=1e-3)
    sizes = (20, [32, 32, 16], 5)
    s = MultiLayerNetExtend(*sizes, **cfg, dtype=np.float64, generator=np.random.default_rng(init_ss),
                            dropout_generator=np.random.default_rng(mask_ss))
    t = tm.MultiLayerNetExtend(*sizes, **cfg, dtype=torch.float64, dropout_generator=np.random.default_rng(mask_ss))
    t.load_state_dict(to_torch(s.state_dict()))
    kw = dict(lr=1e-2) if optimizer == "Adam" else dict(lr=0.1, momentum=0.9)
    opt_s = getattr(soptim, optimizer)(s.parameters(), **kw)
    opt_t = getattr(torch.optim, optimizer)(t.parameters(), **kw, foreach=False)

    x, labels = _teacher_data(seed)
    batches = np.random.default_rng(batch_ss)
    losses = []
    for step in range(300):
        idx = batches.choice(len(x), size=int(batches.choice([16, 32, 48])), replace=False)
        loss_s = s.loss(x[idx], labels[idx])
        s.loss_backward()
        opt_s.step()
        opt_s.zero_grad()
        opt_t.zero_grad()
        loss_t = t.loss(torch.tensor(x[idx]), torch.tensor(labels[idx]))
        loss_t.backward()
        opt_t.step()
        rel = abs(float(loss_s) - loss_t.item()) / abs(loss_t.item())
        assert rel <= 1e-9, f"step {step}: scratch {float(loss_s)!r} torch {loss_t.item()!r} (rel {rel:.3g})"
        losses.append(float(loss_s))
    assert np.mean(losses[-30:]) < 0.7 * np.mean(losses[:30])  # it did learn something
    ref = to_numpy(t.state_dict())
    before_bn = [f"layers.Affine{i}.bias" for i in (1, 2, 3)] + [f"layers.BatchNorm{i}.running_mean" for i in (1, 2, 3)]
    for k, v in s.state_dict().items():
        if k in before_bn:
            # The Affine biases feeding batch norm have gradient 0 exactly; what the twins compute
            # is round-off (~1e-17), which Adam's normalisation turns into tiny, different steps
            # (~1e-10 after 300), and the running means carry them. The loss never sees them, and
            # in eval mode bias - running_mean cancels: the eval outputs below are compared instead.
            assert np.abs(v - ref[k]).max() <= 1e-8 * max(np.abs(ref[k]).max(), 1.0), k
            continue
        record = compare_arrays(k, v, ref[k])
        assert record.ok(1e-9), str(record)
    s.eval(), t.eval()
    record = compare_arrays("eval scores", s(x), t(torch.tensor(x)))
    assert record.ok(1e-9), str(record)
    assert s.accuracy(x, labels) == t.accuracy(torch.tensor(x), torch.tensor(labels))
