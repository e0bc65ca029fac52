"""Inputs, weights and upstream gradients: drawn from the checker's own stream, shaped per layer kind."""
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from experiments.check.adapters import RATE_ARGS, FunctionPair, LossFunction, ctor_args, rate_arg
from experiments.check.results import Refused
from torch_ref.nn import torch_dtype

# The checker's generator: numpy.random.default_rng((CHECK_STREAM, seed)); CHECK_STREAM is b"check" as an integer.
CHECK_STREAM = int.from_bytes(b"check", "big")


def checker_rng(seed: int = 0) -> np.random.Generator:
    """The checker's own stream: ``numpy.random.default_rng((CHECK_STREAM, seed))``."""
    return np.random.default_rng((CHECK_STREAM, seed))



def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def init_weights(module, rng):
    """Random weights and statistics for the torch module (copied into the layer by check_layer)."""
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                v = rng.standard_normal(tuple(t.shape))
                if name.endswith("running_var") or (isinstance(module, nn.modules.batchnorm._BatchNorm)
                                                    and name.endswith("weight")):
                    v = rng.uniform(0.5, 1.5, tuple(t.shape))
                t.copy_(torch.from_numpy(v))
    return module



# What learners' bugs hide behind: the first configurations of every layer are these, then random ones.
FLAVOURS = ("exact zeros and ties", "batch size 1")


def flavour(i: int) -> str:
    """The kind of input of configuration ``i``: exact zeros and ties, batch size 1, then random."""
    return FLAVOURS[i] if i < len(FLAVOURS) else "random"


def special(rng, x, kind):
    """``x`` with about a third of its elements exactly 0 and, with "exact zeros and ties", values on a 0.5 grid
    so that pooling windows hold tied maxima (a ReLU'd map: many windows all 0)."""
    if kind != FLAVOURS[0]:
        return x
    x = np.round(x * 2) / 2
    x[rng.random(x.shape) < 1 / 3] = 0
    return x.astype(x.dtype)


def batch(rng, kind, lo=2, hi=9):
    return 1 if kind == FLAVOURS[1] else int(rng.integers(lo, hi))


class FlattenLinear(nn.Linear):
    """torch.nn.Linear on ``x.flatten(1)``: the book's Affine takes (N, C, H, W) from a convolution."""

    label = "torch.nn.Linear"

    def forward(self, x):
        return super().forward(x.flatten(1) if x.dim() > 2 else x)


def book_affine(cls, rng, dtype, kind="random"):
    n, o = batch(rng, kind), int(rng.integers(1, 8))
    # a 4-D input as the book's CNNs feed it, every other configuration
    shape = (n, int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(2, 4))) if rng.random() < 0.5 \
        else (n, int(rng.integers(1, 8)))
    i = int(np.prod(shape[1:]))
    m = init_weights(FlattenLinear(i, o).to(torch_dtype(dtype)), rng)
    x = special(rng, randn(rng, shape, dtype), kind)
    return cls(np.zeros((i, o), dtype), np.zeros(o, dtype)), m, [x], {}


def book_elementwise(module):
    def build(cls, rng, dtype, kind="random"):
        shape = (batch(rng, kind, 1, 7),) + tuple(int(s) for s in rng.integers(1, 7, size=rng.integers(1, 3)))
        return cls(), module(), [special(rng, randn(rng, shape, dtype), kind)], {}
    return build


def book_binary(function):
    """Chapter 5's MulLayer / AddLayer: forward(x, y), backward(dout) -> (dx, dy)."""
    def build(cls, rng, dtype, kind="random"):
        shape = (batch(rng, kind, 1, 7), int(rng.integers(1, 7)))
        return cls(), function, [special(rng, randn(rng, shape, dtype), kind), randn(rng, shape, dtype)], {}
    return build


def book_softmax_loss(cls, rng, dtype, kind="random"):
    n, c = batch(rng, kind), int(rng.integers(2, 8))
    x = special(rng, randn(rng, (n, c), dtype), kind)
    labels = rng.integers(0, c, size=n)
    t = labels if rng.random() < 0.5 else np.eye(c, dtype=dtype)[labels]
    return cls(), nn.CrossEntropyLoss(), [x, t], {"nondiff": (1,)}


def book_dropout(cls, rng, dtype, kind="random"):
    p = float(rng.choice([0.2, 0.3, 0.5, 0.6]))
    shape = (batch(rng, kind, 3, 9), int(rng.integers(2, 9)))
    rate = rate_arg(cls)
    layer = cls(**{rate: p}) if rate else cls()
    if not rate:  # built with its default rate: read it back, or the mask could not be compared honestly
        got = [getattr(layer, a) for a in RATE_ARGS if isinstance(getattr(layer, a, None), float)]
        if not got:
            raise Refused(f"{cls.__name__}() takes no rate argument ({', '.join(RATE_ARGS)}) and keeps none")
        p = got[0]
    return layer, nn.Dropout(p), [special(rng, randn(rng, shape, dtype), kind)], {}


def book_batchnorm(cls, rng, dtype, kind="random"):
    n, d = max(batch(rng, kind, 3, 9), 2), int(rng.integers(1, 6))  # torch refuses one sample per channel
    m = init_weights(nn.BatchNorm1d(d, momentum=0.1).to(torch_dtype(dtype)), rng)
    layer = cls(np.ones(d, dtype), np.zeros(d, dtype), 0.9) if "momentum" in ctor_args(cls) else \
        cls(np.ones(d, dtype), np.zeros(d, dtype))
    x = randn(rng, (n, d), dtype) * rng.uniform(0.5, 2, d).astype(dtype)
    return layer, m, [x], {}


def book_conv(cls, rng, dtype, kind="random"):
    n, (c, fn) = batch(rng, kind, 1, 4), (int(v) for v in rng.integers(1, 4, size=2))
    fh, fw = (int(v) for v in rng.integers(1, 4, size=2))
    stride, pad = int(rng.integers(1, 3)), int(rng.integers(0, 2))
    h, w = fh + int(rng.integers(0, 5)), fw + int(rng.integers(0, 5))
    m = init_weights(nn.Conv2d(c, fn, (fh, fw), stride=stride, padding=pad).to(torch_dtype(dtype)), rng)
    layer = cls(np.zeros((fn, c, fh, fw), dtype), np.zeros(fn, dtype), stride, pad)
    return layer, m, [special(rng, randn(rng, (n, c, h, w), dtype), kind)], {}


def book_pool(cls, rng, dtype, kind="random"):
    ph, pw = (int(v) for v in rng.integers(2 if kind == FLAVOURS[0] else 1, 4, size=2))  # ties need 2 elements
    stride = int(rng.integers(1, 3))
    more = 2 if kind == FLAVOURS[0] else 0  # several windows where ties are wanted
    n, c = batch(rng, kind, 1 + more // 2, 4), int(rng.integers(1 + more // 2, 4))
    h, w = ph + int(rng.integers(more, 5)), pw + int(rng.integers(more, 5))
    x = special(rng, randn(rng, (n, c, h, w), dtype), kind)
    if kind == FLAVOURS[0]:
        x = np.maximum(x, 0)  # a ReLU'd map: windows of zeros tie
    return cls(ph, pw, stride, 0), nn.MaxPool2d((ph, pw), stride=stride), [x], {}


def torch_style(name):
    """scratch.nn-style modules: built with torch's constructor arguments, weights copied by state_dict."""
    def build(cls, rng, dtype, kind="random"):
        td = torch_dtype(dtype)
        if name == "Linear":
            i, o = (int(v) for v in rng.integers(1, 8, size=2))
            args, shape = (i, o), (batch(rng, kind), i)
        elif name in ("Conv2d",):
            c, o, k = (int(v) for v in rng.integers(1, 4, size=3))
            args, shape = (c, o, k), (batch(rng, kind, 1, 4), c, k + int(rng.integers(0, 4)), k + 2)
        elif name in ("MaxPool2d", "AvgPool2d"):
            k = int(rng.integers(2 if kind == FLAVOURS[0] else 1, 4))
            args, shape = (k,), (batch(rng, kind, 2, 3), int(rng.integers(1, 4)), k + int(rng.integers(0, 4)), k + 1)
        elif name in ("BatchNorm1d", "BatchNorm2d"):
            c = int(rng.integers(1, 5))
            args = (c,)
            shape = (int(rng.integers(3, 8)), c) + ((int(rng.integers(1, 4)), 3) if name.endswith("2d") else ())
        elif name == "Dropout":
            args, shape = (float(rng.choice([0.2, 0.5])),), (batch(rng, kind, 3, 8), 5)
        else:
            args, shape = (), (batch(rng, kind, 1, 7), int(rng.integers(1, 7)))
        m = init_weights(getattr(nn, name)(*args).to(td), rng)
        x = randn(rng, shape, dtype)
        if not name.startswith("BatchNorm"):
            x = special(rng, x, kind)
        if name == "MaxPool2d" and kind == FLAVOURS[0]:
            x = np.maximum(x, 0)  # windows of zeros tie
        return cls(*args), m, [x], {}
    return build


# -- CS231n-style function pairs: every array argument is an input, its gradient comes back from backward --------
def labelled(label, function):
    """A torch function with the name the report gives it (torchrun.torch_name reads ``label``)."""
    function.label = label
    return function


class FunctionalBatchNorm(nn.Module):
    """F.batch_norm with gamma and beta as inputs (batchnorm_forward(x, gamma, beta, bn_param)); at eval, the
    running statistics the function was given. No parameters: nothing is copied into the functions."""

    label = "torch.nn.functional.batch_norm"

    def __init__(self, eps, running_mean, running_var):
        super().__init__()
        self.eps, self.running_mean, self.running_var = eps, running_mean, running_var

    def forward(self, x, gamma, beta):
        if self.training:
            return F.batch_norm(x, None, None, gamma, beta, True, 0.0, self.eps)
        rm, rv = (torch.tensor(v, dtype=x.dtype) for v in (self.running_mean, self.running_var))
        return F.batch_norm(x, rm, rv, gamma, beta, False, 0.0, self.eps)


def _svm(x, y):
    margins = (x - x.gather(1, y[:, None]) + 1).clamp(min=0).scatter(1, y[:, None], 0.0)
    return margins.sum() / x.shape[0]


SVM = labelled("multi-class hinge loss (torch.nn.MultiMarginLoss x C)", _svm)
CS231N_EPS = 1e-5  # the eps the checker passes to CS231n's norms (their default), torch's too


def fn_affine(target, rng, dtype, kind="random"):
    n, m = batch(rng, kind), int(rng.integers(1, 7))
    shape = (n, int(rng.integers(1, 4)), int(rng.integers(2, 4))) if rng.random() < 0.5 else (n, int(rng.integers(1, 7)))
    d = int(np.prod(shape[1:]))
    x = special(rng, randn(rng, shape, dtype), kind)
    f = labelled("torch.nn.functional.linear(x.flatten(1), w.T, b)", lambda x, w, b: F.linear(x.flatten(1), w.T, b))
    return FunctionPair(*target), f, [x, randn(rng, (d, m), dtype), randn(rng, (m,), dtype)], {}


def fn_relu(target, rng, dtype, kind="random"):
    shape = (batch(rng, kind, 1, 7), int(rng.integers(1, 7)))
    return FunctionPair(*target), nn.ReLU(), [special(rng, randn(rng, shape, dtype), kind)], {}


def fn_conv(target, rng, dtype, kind="random"):
    n, c, f = batch(rng, kind, 1, 4), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    hh, ww = (int(v) for v in rng.integers(1, 4, size=2))
    stride, pad = int(rng.integers(1, 3)), int(rng.integers(0, 2))
    # sizes for which the output is whole: (H + 2 pad - HH) divisible by the stride, as CS231n asserts
    h = max(hh - 2 * pad + stride * int(rng.integers(1, 4)), 1)
    w = max(ww - 2 * pad + stride * int(rng.integers(1, 4)), 1)
    while (h + 2 * pad - hh) % stride or h + 2 * pad < hh:
        h += 1
    while (w + 2 * pad - ww) % stride or w + 2 * pad < ww:
        w += 1
    conv_param = {"stride": stride, "pad": pad}
    fn = labelled(f"torch.nn.functional.conv2d(stride={stride}, padding={pad})",
                  lambda x, w_, b: F.conv2d(x, w_, b, stride=stride, padding=pad))
    x = special(rng, randn(rng, (n, c, h, w), dtype), kind)
    return FunctionPair(*target, extra=(conv_param,)), fn, [x, randn(rng, (f, c, hh, ww), dtype),
                                                            randn(rng, (f,), dtype)], {}


def fn_max_pool(target, rng, dtype, kind="random"):
    lo = 2 if kind == FLAVOURS[0] else 1  # a window of one element has no tie
    ph, pw, stride = int(rng.integers(lo, 4)), int(rng.integers(lo, 4)), int(rng.integers(1, 3))
    n, c = batch(rng, kind, 1, 4), int(rng.integers(1, 4))
    h, w = ph + stride * int(rng.integers(lo - 1, 3)), pw + stride * int(rng.integers(lo - 1, 3))
    x = special(rng, randn(rng, (n, c, h, w), dtype), kind)
    if kind == FLAVOURS[0]:
        x = np.maximum(x, 0)  # windows of zeros tie
    pool_param = {"pool_height": ph, "pool_width": pw, "stride": stride}
    return FunctionPair(*target, extra=(pool_param,)), nn.MaxPool2d((ph, pw), stride=stride), [x], {}


def fn_batchnorm(spatial):
    def build(target, rng, dtype, kind="random"):
        n, c = max(batch(rng, kind, 3, 8), 2), int(rng.integers(1, 5))
        shape = (n, c, int(rng.integers(1, 4)), 3) if spatial else (n, c)
        x = randn(rng, shape, dtype) * rng.uniform(0.5, 2, (1, c) + (1,) * (len(shape) - 2)).astype(dtype)
        rm, rv = randn(rng, (c,), dtype), rng.uniform(0.5, 1.5, c).astype(dtype)
        bn_param = {"mode": "train", "eps": CS231N_EPS, "momentum": 0.9, "running_mean": rm.copy(),
                    "running_var": rv.copy()}
        gamma, beta = rng.uniform(0.5, 1.5, c).astype(dtype), randn(rng, (c,), dtype)
        return (FunctionPair(*target, extra=(bn_param,), param=bn_param), FunctionalBatchNorm(CS231N_EPS, rm, rv),
                [x, gamma, beta], {})
    return build


def fn_layernorm(target, rng, dtype, kind="random"):
    n, d = batch(rng, kind, 2, 7), int(rng.integers(2, 7))
    f = labelled("torch.nn.functional.layer_norm", lambda x, g, b: F.layer_norm(x, (x.shape[-1],), g, b, CS231N_EPS))
    return (FunctionPair(*target, extra=({"eps": CS231N_EPS},)), f,
            [randn(rng, (n, d), dtype), rng.uniform(0.5, 1.5, d).astype(dtype), randn(rng, (d,), dtype)], {})


def fn_groupnorm(target, rng, dtype, kind="random"):
    g, k = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    c = g * k
    n = batch(rng, kind, 2, 5)
    f = labelled(f"torch.nn.functional.group_norm(G={g})",
                 lambda x, ga, be: F.group_norm(x, g, ga.reshape(-1), be.reshape(-1), CS231N_EPS))
    x = randn(rng, (n, c, int(rng.integers(1, 4)), 3), dtype)
    gamma = rng.uniform(0.5, 1.5, (1, c, 1, 1)).astype(dtype)
    return (FunctionPair(*target, extra=(g, {"eps": CS231N_EPS})), f, [x, gamma, randn(rng, (1, c, 1, 1), dtype)],
            {})


def fn_dropout(target, rng, dtype, kind="random"):
    # p = 0.5: CS231n's p is the probability of keeping a unit since 2019, of dropping it before; at 0.5 both agree
    shape = (batch(rng, kind, 3, 9), int(rng.integers(2, 9)))
    param = {"p": 0.5, "mode": "train", "seed": int(rng.integers(2**31))}
    return (FunctionPair(*target, extra=(param,), param=param), nn.Dropout(0.5),
            [special(rng, randn(rng, shape, dtype), kind)], {})


def fn_loss(counterpart):
    def build(function, rng, dtype, kind="random"):
        n, c = batch(rng, kind), int(rng.integers(2, 7))
        x = special(rng, randn(rng, (n, c), dtype), kind) if counterpart is not SVM else randn(rng, (n, c), dtype)
        y = rng.integers(0, c, size=n)
        return LossFunction(function), counterpart, [x, y], {"nondiff": (1,), "grad_output": np.asarray(1.0, dtype)}
    return build
