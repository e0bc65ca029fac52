"""Inputs, weights and upstream gradients: drawn from the checker's own stream, shaped per layer kind."""
import numpy as np
import torch
from torch import nn

from experiments.check.adapters import ctor_args
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



def book_affine(cls, rng, dtype):
    n, i, o = rng.integers(2, 9), rng.integers(1, 8), rng.integers(1, 8)
    m = init_weights(nn.Linear(int(i), int(o)).to(torch_dtype(dtype)), rng)
    return cls(np.zeros((i, o), dtype), np.zeros(o, dtype)), m, [randn(rng, (n, i), dtype)], {}


def book_elementwise(module):
    def build(cls, rng, dtype):
        shape = tuple(int(s) for s in rng.integers(1, 7, size=rng.integers(2, 4)))
        return cls(), module(), [randn(rng, shape, dtype)], {}
    return build


def book_softmax_loss(cls, rng, dtype):
    n, c = int(rng.integers(2, 9)), int(rng.integers(2, 8))
    x = randn(rng, (n, c), dtype)
    labels = rng.integers(0, c, size=n)
    t = labels if rng.random() < 0.5 else np.eye(c, dtype=dtype)[labels]
    return cls(), nn.CrossEntropyLoss(), [x, t], {"nondiff": (1,)}


def book_dropout(cls, rng, dtype):
    p = float(rng.choice([0.2, 0.3, 0.5, 0.6]))
    shape = (int(rng.integers(3, 9)), int(rng.integers(2, 9)))
    layer = cls(p) if ctor_args(cls)[:1] in (["dropout_ratio"], ["p"]) else cls()
    return layer, nn.Dropout(p), [randn(rng, shape, dtype)], {}


def book_batchnorm(cls, rng, dtype):
    n, d = int(rng.integers(3, 9)), int(rng.integers(1, 6))
    m = init_weights(nn.BatchNorm1d(d, momentum=0.1).to(torch_dtype(dtype)), rng)
    layer = cls(np.ones(d, dtype), np.zeros(d, dtype), 0.9) if "momentum" in ctor_args(cls) else \
        cls(np.ones(d, dtype), np.zeros(d, dtype))
    x = randn(rng, (n, d), dtype) * rng.uniform(0.5, 2, d).astype(dtype)
    return layer, m, [x], {}


def book_conv(cls, rng, dtype):
    n, c, fn = (int(v) for v in rng.integers(1, 4, size=3))
    fh, fw = (int(v) for v in rng.integers(1, 4, size=2))
    stride, pad = int(rng.integers(1, 3)), int(rng.integers(0, 2))
    h, w = fh + int(rng.integers(0, 5)), fw + int(rng.integers(0, 5))
    m = init_weights(nn.Conv2d(c, fn, (fh, fw), stride=stride, padding=pad).to(torch_dtype(dtype)), rng)
    layer = cls(np.zeros((fn, c, fh, fw), dtype), np.zeros(fn, dtype), stride, pad)
    return layer, m, [randn(rng, (n, c, h, w), dtype)], {}


def book_pool(cls, rng, dtype):
    ph, pw = (int(v) for v in rng.integers(1, 4, size=2))
    stride = int(rng.integers(1, 3))
    n, c = (int(v) for v in rng.integers(1, 4, size=2))
    h, w = ph + int(rng.integers(0, 5)), pw + int(rng.integers(0, 5))
    return cls(ph, pw, stride, 0), nn.MaxPool2d((ph, pw), stride=stride), [randn(rng, (n, c, h, w), dtype)], {}



def torch_style(name):
    """scratch.nn-style modules: built with torch's constructor arguments, weights copied by state_dict."""
    def build(cls, rng, dtype):
        td = torch_dtype(dtype)
        if name == "Linear":
            i, o = (int(v) for v in rng.integers(1, 8, size=2))
            args, shape = (i, o), (int(rng.integers(2, 9)), i)
        elif name in ("Conv2d",):
            c, o, k = (int(v) for v in rng.integers(1, 4, size=3))
            args, shape = (c, o, k), (int(rng.integers(1, 4)), c, k + int(rng.integers(0, 4)), k + 2)
        elif name in ("MaxPool2d", "AvgPool2d"):
            k = int(rng.integers(1, 4))
            args, shape = (k,), (2, int(rng.integers(1, 4)), k + int(rng.integers(0, 4)), k + 1)
        elif name in ("BatchNorm1d", "BatchNorm2d"):
            c = int(rng.integers(1, 5))
            args = (c,)
            shape = (int(rng.integers(3, 8)), c) + ((int(rng.integers(1, 4)), 3) if name.endswith("2d") else ())
        elif name == "Dropout":
            args, shape = (float(rng.choice([0.2, 0.5])),), (int(rng.integers(3, 8)), 5)
        else:
            args, shape = (), tuple(int(s) for s in rng.integers(1, 7, size=2))
        m = init_weights(getattr(nn, name)(*args).to(td), rng)
        return cls(*args), m, [randn(rng, shape, dtype)], {}
    return build
