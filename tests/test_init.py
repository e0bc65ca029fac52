"""scratch.nn.init against torch.nn.init: fans, gains and bounds exactly; samples statistically;
generators reproducibly; and the book's schemes."""
import math

import numpy as np
import pytest
import torch

import scratch
from scratch import nn as snn
from scratch.nn import Parameter
from scratch.nn import init

# Linear (out, in); Conv1d (out, in, k); Conv2d (out, in/groups, kh, kw); Conv3d.
SHAPES = [(10, 7), (1, 300), (64, 32, 3), (16, 3, 5, 5), (8, 4, 1, 3), (6, 2, 3, 3, 3)]


@pytest.mark.parametrize("shape", SHAPES)
def test_fans_match_torch(shape):
    t = torch.empty(shape)
    assert init._calculate_fan_in_and_fan_out(np.empty(shape)) == torch.nn.init._calculate_fan_in_and_fan_out(t)
    for mode in ("fan_in", "fan_out", "FAN_OUT"):
        assert init._calculate_correct_fan(np.empty(shape), mode) == torch.nn.init._calculate_correct_fan(t, mode)


def _same_error(ours, theirs, exc=ValueError):
    with pytest.raises(exc) as a:
        ours()
    with pytest.raises(exc) as b:
        theirs()
    assert str(a.value) == str(b.value)


def test_fan_and_gain_errors_match_torch():
    _same_error(lambda: init._calculate_fan_in_and_fan_out(np.empty(5)),
                lambda: torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(5)))
    _same_error(lambda: init.kaiming_normal_(np.empty((3, 3)), mode="fan_avg"),
                lambda: torch.nn.init.kaiming_normal_(torch.empty(3, 3), mode="fan_avg"))
    _same_error(lambda: init.calculate_gain("swish"), lambda: torch.nn.init.calculate_gain("swish"))
    _same_error(lambda: init.calculate_gain("leaky_relu", "x"), lambda: torch.nn.init.calculate_gain("leaky_relu", "x"))


@pytest.mark.parametrize("nonlinearity,param", [
    ("linear", None), ("conv2d", None), ("conv_transpose3d", None), ("sigmoid", None), ("tanh", None),
    ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)), ("selu", None)])
def test_gain_matches_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == torch.nn.init.calculate_gain(nonlinearity, param)


# -- the bounds and stds each function draws with, against torch's own call ----------
def _torch_draw(monkeypatch, fn, shape, **kw):
    """The (distribution, arg1, arg2) torch's init function passes to Tensor.uniform_/normal_."""
    calls = []
    monkeypatch.setattr(torch.Tensor, "uniform_", lambda self, a, b, generator=None: calls.append(("U", a, b)))
    monkeypatch.setattr(torch.Tensor, "normal_", lambda self, m, s, generator=None: calls.append(("N", m, s)))
    fn(torch.empty(shape), **kw)
    monkeypatch.undo()
    return calls[0]


def _scratch_draw(monkeypatch, fn, shape, **kw):
    calls = []
    monkeypatch.setattr(init, "uniform_", lambda t, a, b, generator=None: calls.append(("U", a, b)))
    monkeypatch.setattr(init, "normal_", lambda t, m, s, generator=None: calls.append(("N", m, s)))
    fn(np.empty(shape), **kw)
    monkeypatch.undo()
    return calls[0]


INITS = [
    ("xavier_uniform_", {}), ("xavier_uniform_", dict(gain=5 / 3)),
    ("xavier_normal_", {}), ("xavier_normal_", dict(gain=math.sqrt(2))),
    ("kaiming_uniform_", {}), ("kaiming_uniform_", dict(a=math.sqrt(5))),
    ("kaiming_uniform_", dict(mode="fan_out", nonlinearity="relu")),
    ("kaiming_normal_", {}), ("kaiming_normal_", dict(a=0.1, mode="fan_out")),
    ("kaiming_normal_", dict(nonlinearity="tanh")), ("kaiming_normal_", dict(nonlinearity="selu")),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name,kw", INITS, ids=[f"{n}{kw}" for n, kw in INITS])
def test_bounds_and_std_equal_torch(monkeypatch, name, kw, shape):
    ours = _scratch_draw(monkeypatch, getattr(init, name), shape, **kw)
    theirs = _torch_draw(monkeypatch, getattr(torch.nn.init, name), shape, **kw)
    assert ours == theirs  # exactly: same formula, same order of operations


# -- the samples ------------------------------------------------------------------
def _expected_std(name, kw, shape):
    """The std each init should have, from the papers' formulas (written here, not taken from init)."""
    fan_in = shape[1] * math.prod(shape[2:])
    fan_out = shape[0] * math.prod(shape[2:])
    gain = kw.get("gain", 1.0)
    if name.startswith("xavier"):
        return gain * math.sqrt(2.0 / (fan_in + fan_out))
    nonlinearity = kw.get("nonlinearity", "leaky_relu")
    slope = kw.get("a", 0)
    gains = {"leaky_relu": math.sqrt(2 / (1 + slope**2)), "relu": math.sqrt(2), "tanh": 5 / 3, "selu": 0.75}
    fan = fan_out if kw.get("mode") == "fan_out" else fan_in
    return gains[nonlinearity] / math.sqrt(fan)


@pytest.mark.parametrize("shape", [(500, 400), (128, 64, 3, 3)])
@pytest.mark.parametrize("name,kw", INITS, ids=[f"{n}{kw}" for n, kw in INITS])
def test_sample_moments(name, kw, shape):
    """Mean 0 and the expected std to 5 standard errors (~1%): a wrong gain or fan would fail."""
    w = np.empty(shape)
    getattr(init, name)(w, **kw, generator=np.random.default_rng(0))
    std = _expected_std(name, kw, shape)
    n = w.size
    assert abs(w.mean()) < 5 * std / math.sqrt(n)
    # the std of a sample std is about std / sqrt(2n) (normal), std * sqrt(0.8 / (4n)) (uniform)
    assert abs(w.std() / std - 1) < 5 / math.sqrt(2 * n)
    if "uniform" in name:
        bound = math.sqrt(3) * std
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.999 * bound


def test_uniform_and_normal_fill():
    rng = np.random.default_rng(1)
    w = init.uniform_(np.empty(100_000), -2.0, 3.0, generator=rng)
    assert w.min() >= -2.0 and w.max() < 3.0
    assert abs(w.mean() - 0.5) < 5 * (5 / math.sqrt(12)) / math.sqrt(w.size)
    w = init.normal_(np.empty(100_000), 1.5, 0.2, generator=rng)
    assert abs(w.mean() - 1.5) < 5 * 0.2 / math.sqrt(w.size)
    assert abs(w.std() / 0.2 - 1) < 5 / math.sqrt(2 * w.size)
    assert np.all(init.constant_(np.empty((2, 3)), 0.25) == 0.25)
    assert np.all(init.ones_(np.empty(4)) == 1) and np.all(init.zeros_(np.full(4, 7.0)) == 0)


@pytest.mark.parametrize("name", ["uniform_", "normal_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
                                  "kaiming_normal_"])
def test_generator_reproducible_in_place_and_dtype_kept(name):
    fn = getattr(init, name)
    a = fn(np.empty((6, 5)), generator=np.random.default_rng(42))
    b = fn(np.empty((6, 5)), generator=np.random.default_rng(42))
    c = fn(np.empty((6, 5)), generator=np.random.default_rng(43))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # a Parameter is filled in place and returned; float32 stays float32 and holds the rounded float64 draws
    p = Parameter(np.empty((6, 5), dtype=np.float32))
    data = p.data
    assert fn(p, generator=np.random.default_rng(42)) is p
    assert p.data is data and p.data.dtype == np.float32
    np.testing.assert_array_equal(p.data, a.astype(np.float32))
    # no generator: the default stream of scratch.random, reseeded by manual_seed
    scratch.manual_seed(7)
    d = fn(np.empty((6, 5)))
    scratch.manual_seed(7)
    np.testing.assert_array_equal(d, fn(np.empty((6, 5))))


def test_zero_element_tensor_warns_like_torch():
    for fn in (init.kaiming_uniform_, init.kaiming_normal_):
        with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
            fn(np.empty((0, 3)))


def test_linear_default_init_bound():
    layer = snn.Linear(50, 20, dtype=np.float64, generator=np.random.default_rng(0))
    assert np.abs(layer.weight.data).max() <= 1 / math.sqrt(50)
    assert np.abs(layer.bias.data).max() <= 1 / math.sqrt(50)


# -- the book's schemes ---------------------------------------------------------------
def test_book_std():
    assert init.book_std("relu", 50) == init.book_std("He", 50) == math.sqrt(2 / 50)
    assert init.book_std("sigmoid", 50) == init.book_std("xavier", 50) == math.sqrt(1 / 50)
    assert init.book_std(0.01, 50) == 0.01 and init.book_std(1.0, 7) == 1.0
    with pytest.raises(ValueError, match="weight_init_std must be 'relu', 'he', 'sigmoid', 'xavier' or a number"):
        init.book_std("glorot", 10)
    with pytest.raises(ValueError, match="weight_init_std must be >= 0"):
        init.book_std(-0.1, 10)


def test_book_xavier_is_lecun_not_torch_xavier():
    """The book's 'xavier' has std sqrt(1/fan_in); torch's xavier_normal_ sqrt(2/(fan_in+fan_out))."""
    shape = (100, 400)  # Linear(400, 100): fan_in 400, fan_out 100
    book = init.book_std("xavier", 400)
    torch_std = math.sqrt(2 / (400 + 100))
    assert book == pytest.approx(0.05) and torch_std == pytest.approx(0.0632455532)
    w = init.book_init_(np.empty(shape), "xavier", generator=np.random.default_rng(0))
    assert abs(w.std() / book - 1) < 5 / math.sqrt(2 * w.size)
    assert abs(w.std() / torch_std - 1) > 0.1
    # on a square layer they coincide
    assert init.book_std("xavier", 300) == pytest.approx(math.sqrt(2 / (300 + 300)))


@pytest.mark.parametrize("scheme,shape,fan_in", [("he", (200, 300), 300), ("relu", (64, 16, 3, 3), 144),
                                                 ("sigmoid", (300, 200), 200), (0.01, (100, 50), 50)])
def test_book_init_moments(scheme, shape, fan_in):
    w = init.book_init_(np.empty(shape), scheme, generator=np.random.default_rng(3))
    std = {"he": math.sqrt(2 / fan_in), "relu": math.sqrt(2 / fan_in), "sigmoid": math.sqrt(1 / fan_in)}.get(
        scheme, scheme)
    assert abs(w.mean()) < 5 * std / math.sqrt(w.size)
    assert abs(w.std() / std - 1) < 5 / math.sqrt(2 * w.size)


def test_book_init_module():
    model = snn.Sequential(snn.Linear(100, 80, dtype=np.float32), snn.ReLU(), snn.Linear(80, 10, dtype=np.float32))
    init.book_init_module_(model, "he", generator=np.random.default_rng(0))
    for layer, fan_in in ((model[0], 100), (model[2], 80)):
        assert layer.weight.data.dtype == np.float32
        assert np.all(layer.bias.data == 0)
        assert abs(layer.weight.data.std() / math.sqrt(2 / fan_in) - 1) < 0.1
    again = snn.Sequential(snn.Linear(100, 80, dtype=np.float32), snn.ReLU(), snn.Linear(80, 10, dtype=np.float32))
    init.book_init_module_(again, "he", generator=np.random.default_rng(0))
    np.testing.assert_array_equal(model[2].weight.data, again[2].weight.data)
