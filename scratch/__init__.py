"""The NumPy twin: a small deep-learning framework with PyTorch's names.

``scratch`` imports NumPy and nothing else. Read it top to bottom:
``scratch.nn`` holds modules, losses, initialisation and functional forms,
``scratch.numerical`` the numerical gradients the backprop is checked against,
``scratch.parallel`` how a batch is split over cores (``set_num_threads``).
"""
from scratch import parallel, random
from scratch.parallel import get_num_threads, set_num_threads
from scratch.random import manual_seed, default_generator

from scratch import graph, nn, numerical  # noqa: E402  (nn uses scratch.random)
from scratch import optim  # noqa: E402

__all__ = ["graph", "nn", "numerical", "optim", "parallel", "random", "manual_seed", "default_generator",
           "get_num_threads", "set_num_threads"]
