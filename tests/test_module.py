"""Module, Parameter and Sequential behave like torch.nn's."""
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import scratch.nn as snn
from experiments.compare import to_numpy, to_torch


def mlp_pair(dtype=np.float64):
    s = snn.Sequential(snn.Linear(4, 5, dtype=dtype, generator=np.random.default_rng(0)), snn.ReLU(),
                       snn.Linear(5, 3, dtype=dtype, generator=np.random.default_rng(1)))
    t = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)).to(
        torch.float64 if dtype == np.float64 else torch.float32)
    return s, t


def test_state_dict_keys_and_order_match_torch():
    s, t = mlp_pair()
    assert list(s.state_dict()) == list(t.state_dict())
    assert [n for n, _ in s.named_parameters()] == [n for n, _ in t.named_parameters()]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_state_dict_round_trip_is_bit_exact(dtype):
    s, t = mlp_pair(dtype)
    t.load_state_dict(to_torch(s.state_dict()))
    back = to_numpy(t.state_dict())
    s2, _ = mlp_pair(dtype)
    s2.load_state_dict(back)
    for k, v in s.state_dict().items():
        assert s2.state_dict()[k].dtype == v.dtype
        assert np.array_equal(s2.state_dict()[k], v), k
    x = np.random.default_rng(3).standard_normal((2, 4)).astype(dtype)
    assert np.array_equal(s(x), s2(x))


def test_load_state_dict_errors_name_the_key():
    s, _ = mlp_pair()
    sd = dict(s.state_dict())
    missing = {k: v for k, v in sd.items() if k != "2.bias"}
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "2.bias"'):
        s.load_state_dict(missing)
    extra = dict(sd, **{"3.weight": np.zeros(1)})
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "3.weight"'):
        s.load_state_dict(extra)
    wrong = dict(sd, **{"0.weight": np.zeros((4, 5))})
    with pytest.raises(RuntimeError, match=r"size mismatch for 0.weight: copying a param with shape \(4, 5\) "
                                           r"from checkpoint, the shape in current model is \(5, 4\)"):
        s.load_state_dict(wrong)
    result = s.load_state_dict(missing, strict=False)
    assert result.missing_keys == ["2.bias"] and result.unexpected_keys == []


def test_repr_matches_torch():
    s, t = mlp_pair()
    assert repr(s) == repr(t)
    for sm, tm in [(snn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)), (snn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
                   (snn.Flatten(), torch.nn.Flatten()), (snn.Linear(3, 2, bias=False), torch.nn.Linear(3, 2, bias=False)),
                   (snn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()), (snn.MSELoss(), torch.nn.MSELoss())]:
        assert repr(sm) == repr(tm)


def test_sequential_container():
    s, _ = mlp_pair()
    assert len(s) == 3
    assert isinstance(s[1], snn.ReLU) and s[-1] is s[2]
    assert [type(m).__name__ for m in s] == ["Linear", "ReLU", "Linear"]
    head = s[:2]
    assert isinstance(head, snn.Sequential) and len(head) == 2 and head[0] is s[0]
    with pytest.raises(IndexError):
        s[3]
    assert [n for n, _ in s.named_children()] == ["0", "1", "2"]
    assert len(list(s.modules())) == 4


def test_backward_runs_the_chain_in_reverse_and_gradients_accumulate():
    s, t = mlp_pair()
    t.load_state_dict(to_torch(s.state_dict()))
    rng = np.random.default_rng(5)
    x1, x2 = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    g1, g2 = rng.standard_normal((3, 3)), rng.standard_normal((2, 3))
    for x, g in ((x1, g1), (x2, g2)):  # two backward passes, no zero_grad in between
        s(x)
        s.backward(g)
        t(torch.tensor(x)).backward(torch.tensor(g))
    for (name, p), (_, tp) in zip(s.named_parameters(), t.named_parameters()):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-12, atol=1e-14, err_msg=name)
    s.zero_grad()
    assert all(p.grad is None for p in s.parameters())


def test_train_eval_propagates():
    s, _ = mlp_pair()
    assert s.eval() is s
    assert not any(m.training for m in s.modules())
    s.train()
    assert all(m.training for m in s.modules())


def test_dtype_is_kept_and_mixing_is_refused():
    s, _ = mlp_pair(np.float32)
    x = np.ones((2, 4), np.float32)
    assert s(x).dtype == np.float32
    assert s.backward(np.ones((2, 3), np.float32)).dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in s.parameters())
    with pytest.raises(RuntimeError, match="input dtype float64 does not match parameter dtype float32"):
        s(np.ones((2, 4)))
    s.double()
    assert all(p.dtype == np.float64 for p in s.parameters())


def test_linear_wrong_feature_size_names_layer_and_shape():
    lin = snn.Linear(3, 2)
    with pytest.raises(RuntimeError, match=r"Linear\(in_features=3, out_features=2\): expected input of shape "
                                           r"\(\*, 3\), got \(4, 5\)"):
        lin(np.ones((4, 5), np.float32))


def test_linear_default_init_matches_torch_bounds():
    rng = np.random.default_rng(0)
    lin = snn.Linear(400, 300, generator=rng)
    bound = 1 / np.sqrt(400)
    assert np.abs(lin.weight.data).max() <= bound and np.abs(lin.bias.data).max() <= bound
    # U(-b, b) has std b/sqrt(3): 120,000 draws put the sample std within 1% of it.
    assert abs(lin.weight.data.std() / (bound / np.sqrt(3)) - 1) < 0.01
    same = snn.Linear(400, 300, generator=np.random.default_rng(0))
    assert np.array_equal(same.weight.data, lin.weight.data)


def test_parameter_and_buffer_registration():
    class Net(snn.Module):
        def __init__(self):
            super().__init__()
            self.fc = snn.Linear(2, 2)
            self.scale = snn.Parameter(np.ones(2))
            self.register_buffer("count", np.zeros((), np.int64))
            self.register_buffer("scratchpad", np.zeros(2), persistent=False)

    net = Net()
    assert list(net.state_dict()) == ["scale", "count", "fc.weight", "fc.bias"]
    assert [n for n, _ in net.named_buffers()] == ["count", "scratchpad"]
    with pytest.raises(TypeError, match="cannot assign 'int' as parameter 'scale'"):
        net.scale = 3
    with pytest.raises(AttributeError, match="'Net' object has no attribute 'nothing'"):
        net.nothing


def test_scratch_never_imports_torch():
    """Import every scratch module in a process where importing torch fails."""
    code = r"""
import builtins, importlib, pkgutil, sys
real_import = builtins.__import__
def guarded(name, *args, **kwargs):
    if name == "torch" or name.startswith("torch.") or name.startswith("torchvision"):
        raise ImportError("scratch must not import torch: " + name)
    return real_import(name, *args, **kwargs)
builtins.__import__ = guarded
import scratch
for info in pkgutil.walk_packages(scratch.__path__, "scratch."):
    importlib.import_module(info.name)
assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch was imported"
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_relu_backward_blocks_nan_where_the_input_was_negative_as_torch():
    x = np.array([-1.0, 0.0, 2.0, -3.0, np.nan, np.nan])
    g = np.array([np.nan, np.inf, 1.5, -np.inf, 2.0, np.nan])
    relu = snn.ReLU()
    xt = torch.tensor(x, requires_grad=True)
    y = torch.relu(xt)
    np.testing.assert_array_equal(relu(x), y.detach().numpy())
    y.backward(torch.tensor(g))
    np.testing.assert_array_equal(relu.backward(g), xt.grad.numpy())
    assert relu.backward(g.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("inplace", [False, True])
def test_relu_signed_zeros_infinities_and_subnormals_route_as_torch(dtype, inplace):
    # The mask is taken from y = max(x, 0) (y != 0): -0.0, -inf and a subnormal must come out as torch's.
    tiny = np.finfo(dtype).smallest_subnormal
    x = np.array([-np.inf, -1.0, -0.0, 0.0, -tiny, tiny, 1.0, np.inf, np.nan], dtype=dtype)
    g = np.arange(1, len(x) + 1, dtype=dtype)
    xt = torch.tensor(x, requires_grad=True)
    y = torch.relu(xt)
    y.backward(torch.tensor(g))
    relu = snn.ReLU(inplace=inplace)
    out = relu(x.copy())
    np.testing.assert_array_equal(out, y.detach().numpy())
    np.testing.assert_array_equal(relu.backward(g), xt.grad.numpy())


def test_linear_without_input_grad_still_fills_parameter_gradients():
    rng = np.random.default_rng(4)
    full = snn.Linear(5, 3, dtype=np.float64, generator=np.random.default_rng(0))
    first = snn.Linear(5, 3, dtype=np.float64, generator=np.random.default_rng(0))
    first.needs_input_grad = False
    x, g = rng.standard_normal((4, 5)), rng.standard_normal((4, 3))
    full(x), first(x)
    assert full.backward(g) is not None and first.backward(g) is None
    assert np.array_equal(full.weight.grad, first.weight.grad) and np.array_equal(full.bias.grad, first.bias.grad)


_SHAPE_CHECKED = {
    "Linear": (lambda: snn.Linear(6, 5), (4, 2, 6)), "ReLU": (lambda: snn.ReLU(), (4, 3, 8, 8)), "LeakyReLU": (lambda: snn.LeakyReLU(), (4, 6)),
    "Sigmoid": (lambda: snn.Sigmoid(), (4, 6)), "Tanh": (lambda: snn.Tanh(), (4, 6)),
    "Softmax": (lambda: snn.Softmax(dim=1), (4, 6)), "LogSoftmax": (lambda: snn.LogSoftmax(dim=1), (4, 6)),
    "Conv2d": (lambda: snn.Conv2d(3, 5, 3), (4, 3, 8, 8)), "Conv2d unbatched": (lambda: snn.Conv2d(3, 5, 3), (3, 8, 8)),
    "MaxPool2d": (lambda: snn.MaxPool2d(2), (4, 3, 8, 8)), "MaxPool2d unbatched": (lambda: snn.MaxPool2d(2), (3, 8, 8)),
    "AvgPool2d": (lambda: snn.AvgPool2d(2), (4, 3, 8, 8)),
    "AdaptiveAvgPool2d": (lambda: snn.AdaptiveAvgPool2d(3), (4, 3, 8, 8)),
    "BatchNorm2d": (lambda: snn.BatchNorm2d(3), (4, 3, 8, 8)), "BatchNorm1d": (lambda: snn.BatchNorm1d(6), (4, 6)),
    "BookBatchNorm": (lambda: snn.BookBatchNorm(6), (4, 6)), "Dropout": (lambda: snn.Dropout(0.5), (4, 6)),
    "Dropout eval": (lambda: snn.Dropout(0.5).eval(), (4, 6)), "BookDropout": (lambda: snn.BookDropout(), (4, 6)),
    "Flatten": (lambda: snn.Flatten(), (4, 3, 2, 2)), "Identity": (lambda: snn.Identity(), (4, 6)),
}


@pytest.mark.parametrize("name", list(_SHAPE_CHECKED))
def test_backward_refuses_a_gradient_numpy_would_broadcast(name):
    # (1, ...) and (..., 1) broadcast against a layer's cache: without the check they give a gradient of the
    # input's size made of the wrong numbers (torch's autograd refuses them too).
    make, shape = _SHAPE_CHECKED[name]
    layer = make()
    y = layer(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    assert layer.backward(np.ones(y.shape, np.float32)).shape == shape
    for bad in ((1,) + y.shape[1:], y.shape[:-1] + (1,)):
        message = f"{type(layer).__name__}.backward: grad_output must have the output's shape {y.shape}, got {bad}"
        with pytest.raises(ValueError, match=re.escape(message)):
            layer.backward(np.ones(bad, np.float32))


@pytest.mark.parametrize("make, x", [
    (lambda: snn.LeakyReLU(), np.array([-100, 2])),  # NumPy: a slope of 0.01 on an int gives 0
    (lambda: snn.Softmax(dim=0), np.array([1, 2])),
    (lambda: snn.LogSoftmax(dim=0), np.array([1, 2])),
    (lambda: snn.AvgPool2d(2), np.arange(16).reshape(1, 1, 4, 4)),  # NumPy: a failed cast
    (lambda: snn.AdaptiveAvgPool2d(2), np.arange(16).reshape(1, 1, 4, 4)),  # NumPy: averages of 0
    (lambda: snn.Dropout(), np.arange(4)),
])
def test_integer_inputs_are_refused_where_torch_has_no_integer_kernel(make, x):
    layer = make()
    with pytest.raises(TypeError, match=f"{type(layer).__name__}: input must be floating point, got dtype {x.dtype}"):
        layer(x)


@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.bool_])
@pytest.mark.parametrize("twins", [(snn.Sigmoid, torch.nn.Sigmoid), (snn.Tanh, torch.nn.Tanh)])
def test_sigmoid_and_tanh_make_integers_float32_as_torch(dtype, twins):
    x = np.array([-3, 0, 1, 2]).astype(dtype)
    y, yt = twins[0]()(x), twins[1]()(torch.tensor(x))
    assert y.dtype == np.float32 and yt.dtype == torch.float32
    np.testing.assert_allclose(y, yt.numpy(), rtol=1e-6)


def test_max_pool_pads_integers_with_their_lowest_value_as_torch():
    x = np.arange(64, dtype=np.int32).reshape(1, 1, 8, 8) - 30
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # -inf cast into an int array warned before
        y = snn.MaxPool2d(3, stride=2, padding=1)(x)
    yt = torch.nn.MaxPool2d(3, stride=2, padding=1)(torch.tensor(x))
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, yt.numpy())


def test_a_gradient_of_another_shape_or_dtype_is_refused_on_assignment_as_torch():
    # A (1, 4) gradient for a (3, 4) weight would be broadcast by SGD's and Adam's NumPy updates.
    p = snn.Parameter(np.zeros((3, 4), np.float32))
    pt = torch.nn.Parameter(torch.zeros(3, 4))
    size = r"attempting to assign a gradient of size '\[1, 4\]' to a tensor of size '\[3, 4\]'"
    for param, grad in ((p, np.ones((1, 4), np.float32)), (pt, torch.ones(1, 4))):
        with pytest.raises(RuntimeError, match=size):
            param.grad = grad
    with pytest.raises(RuntimeError, match="attempting to assign a gradient with dtype 'float64' to a tensor with "
                                           "dtype 'float32'"):
        p.grad = np.ones((3, 4))
    with pytest.raises(RuntimeError, match="attempting to assign a gradient with dtype"):
        pt.grad = torch.ones(3, 4, dtype=torch.float64)
    p.grad = np.ones((3, 4), np.float32)
    assert p.grad.shape == (3, 4)
    p.grad = None
    assert p.grad is None
