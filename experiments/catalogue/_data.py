"""MNIST for the catalogue's entries: real MNIST, or the generated MNIST-like set on the tiny profile.

Entries call ``mnist(ctx)`` with ``n_train`` / ``n_test`` in their profile
(``None``: the whole set) and ``synthetic: True`` on the tiny profile, so the test
suite never needs the real data. Images come as float64 (N, 784) in [0, 1]
(``flatten=False``: (N, 1, 28, 28)), labels as int64; the trainers cast the
images to the run's dtype.
"""
import numpy as np

from experiments.training import Data


def mnist(ctx, flatten: bool = True) -> Data:
    cfg = ctx.config
    n_train, n_test = cfg.get("n_train"), cfg.get("n_test")
    if cfg.get("synthetic"):
        from experiments.data import synthetic_mnist

        # The test images come from a stream of their own (seed + 1), not from the training images'.
        x_train, t_train = synthetic_mnist(n_train or 1000, seed=ctx.seed, flatten=flatten, dtype=np.float64)
        x_test, t_test = synthetic_mnist(n_test or 200, seed=ctx.seed + 1, flatten=flatten, dtype=np.float64)
    else:
        from experiments.data import load_mnist

        (x_train, t_train), (x_test, t_test) = load_mnist(flatten=flatten, dtype=np.float64)
        x_train, t_train = x_train[:n_train], t_train[:n_train]
        x_test, t_test = x_test[:n_test], t_test[:n_test]
    return Data(x_train, t_train, x_test, t_test)
