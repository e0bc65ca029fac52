"""MNIST for the catalogue's entries: real MNIST, or the generated MNIST-like set on the tiny profile.

Entries ask for ``mnist(ctx)`` with ``n_train`` / ``n_test`` in their profile
(``None``: the whole set) and ``synthetic: True`` on the tiny profile, so the test
suite never needs the real data. Images come as float (N, 784) in [0, 1]
(``flatten=False``: (N, 1, 28, 28)), labels as int64.
"""
import numpy as np

from experiments.training import Data


def mnist(ctx, flatten: bool = True) -> Data:
    cfg = ctx.config
    n_train, n_test = cfg.get("n_train"), cfg.get("n_test")
    if cfg.get("synthetic"):
        x_train, t_train, x_test, t_test = _synthetic(n_train or 1000, n_test or 200, ctx.seed)
    else:
        from experiments.data import load_mnist

        x_train, t_train, x_test, t_test = _unpack(load_mnist())
        x_train, t_train = x_train[:n_train], t_train[:n_train]
        x_test, t_test = x_test[:n_test], t_test[:n_test]
    shape = (-1, 784) if flatten else (-1, 1, 28, 28)
    return Data(_images(x_train).reshape(shape), t_train.astype(np.int64),
                _images(x_test).reshape(shape), t_test.astype(np.int64))


def _images(x):
    x = np.asarray(x)
    return x.astype(np.float64) / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)


def _unpack(d):
    if isinstance(d, dict):
        return d["x_train"], d["t_train"], d["x_test"], d["t_test"]
    if hasattr(d, "x_train"):
        return d.x_train, d.t_train, d.x_test, d.t_test
    (x_train, t_train), (x_test, t_test) = d
    return x_train, t_train, x_test, t_test


def _synthetic(n_train, n_test, seed):
    from experiments.data import synthetic_mnist

    x_train, t_train = _pair(synthetic_mnist(n_train, seed))
    x_test, t_test = _pair(synthetic_mnist(n_test, seed + 1_000_003))
    return x_train, t_train, x_test, t_test


def _pair(d):
    if isinstance(d, dict):
        return d["x"], d["t"]
    return d[0], d[1]
