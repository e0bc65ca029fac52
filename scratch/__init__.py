"""The NumPy twin: a small deep-learning framework with PyTorch's names.

``scratch`` imports NumPy and nothing else (the fast path's BLAS thread control
also uses threadpoolctl, when it first runs). Every layer shows its formula as
plain NumPy (the plain path); ``scratch.fast`` holds the engineering that makes
the same computation fast, and you can skip it. The reading order (the
README's learner map says the same):

1. ``scratch/nn/module.py``, ``parameter.py``: forward, backward, parameters.
2. ``scratch/nn/functional.py``, ``activation.py``, ``linear.py``, ``loss.py``, ``init.py``:
   a multilayer network (``scratch/models/`` builds the book's networks from them).
3. ``scratch/graph.py`` and ``scratch/numerical.py``: chapter 5's nodes, and the
   numerical gradients the backprop is checked against.
4. ``scratch/optim/optimizer.py``, ``sgd.py``, ``adam.py`` ... (``book.py``: the book's forms).
5. ``scratch/nn/im2col.py``, ``conv.py``, ``pooling.py``: convolutions.
6. ``scratch/nn/batchnorm.py``, ``dropout.py``, ``regularization.py``, ``residual.py``.
7. ``scratch/paths.py``: the switch between the plain and the fast path.

Not ``scratch/fast/``: it computes what the files above compute, faster.

``scratch.set_fast(False)``, ``with scratch.plain():`` or ``SCRATCH_PLAIN=1``
run everything on the plain path; ``set_num_threads`` sets the fast path's threads.
"""
from scratch import paths, random
from scratch.paths import is_fast, plain, set_fast
from scratch.random import manual_seed, default_generator

from scratch import graph, nn, numerical  # noqa: E402  (nn uses scratch.random)
from scratch import optim  # noqa: E402
from scratch import fast  # noqa: E402  (after nn: the fast path works on its modules)
from scratch.fast.parallel import get_num_threads, set_num_threads  # noqa: E402

__all__ = ["fast", "graph", "nn", "numerical", "optim", "paths", "random", "manual_seed", "default_generator",
           "get_num_threads", "set_num_threads", "is_fast", "plain", "set_fast"]
