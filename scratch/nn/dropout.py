"""Dropout (chapter 6.4): PyTorch's inverted dropout, and the book's form beside it.

The mask convention, shared word for word with ``torch_ref.nn.NumpyDropout`` so
that two twins whose generators are seeded alike drop the same elements:

    keep = generator.random(x.shape) >= p

one float64 draw per element of x, from the ``numpy.random.Generator`` given to
the layer (the default stream of ``scratch.random`` when None), at every forward
pass in training mode, whatever p is (so the stream advances the same way for
p = 0 and p = 1 too).
"""
import numpy as np

from scratch import random as _random
from scratch.nn.module import Module, check_floating, check_grad_output


def _check_p(p) -> float:
    if p < 0 or p > 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return p


def dropout_mask(shape, p: float, generator=None) -> np.ndarray:
    """The boolean keep mask: ``generator.random(shape) >= p`` (True = kept, probability 1 - p)."""
    return _random.resolve(generator).random(shape) >= p


class Dropout(Module):
    r"""Inverted dropout, as ``torch.nn.Dropout``: zero each element with probability p.

    Training:  y = x * keep / (1 - p)   (y = 0 everywhere when p = 1)
    Eval:      y = x
    Backward:  dL/dx = g * keep / (1 - p) in training, g in eval.

    The 1/(1-p) scaling in training keeps E[y] = x, so nothing changes at eval time.

    Args:
        p: probability of an element being zeroed (default 0.5), 0 <= p <= 1.
        inplace: write the result into the input array (default False).
        generator: ``numpy.random.Generator`` the masks are drawn from
            (mask convention in the module docstring).

    Shapes: any; the output has the input's shape and dtype.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, generator=None):
        super().__init__()
        self.p = _check_p(p)
        self.inplace = inplace
        self.generator = generator
        self.multiplier = None  # cache: keep / (1 - p) in x's dtype, None in eval
        self.shape = None  # cache: the output's shape

    def _multiplier(self, x: np.ndarray) -> np.ndarray:
        check_floating(self, x)
        keep = dropout_mask(x.shape, self.p, self.generator)
        if self.p == 1:
            return np.zeros(x.shape, dtype=x.dtype)
        return keep * x.dtype.type(1 / (1 - self.p))

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        self.shape = x.shape
        if not self.training:
            self.multiplier = None
            return x
        self.multiplier = self._multiplier(x)
        if self.inplace:
            np.multiply(x, self.multiplier, out=x)
            return x
        return x * self.multiplier

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        g = check_grad_output(self, grad_output, self.shape)
        return g if self.multiplier is None else g * self.multiplier

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class BookDropout(Dropout):
    r"""The book's dropout (chapter 6.4): no scaling in training, a (1 - p) factor at eval.

    Training:  y = x * keep          Eval:  y = x * (1 - p)
    Backward:  dL/dx = g * keep      Eval:  dL/dx = g * (1 - p)

    Same expected output as ``Dropout`` up to the constant 1 - p, but the
    correction sits at inference time. The book names p ``dropout_ratio`` and
    draws ``rand > ratio``; the mask here uses the convention of the module
    docstring (``>= p``, equal with probability 1), so both variants of the same
    seed drop the same elements.

    Args:
        p: probability of an element being zeroed (default 0.5), 0 <= p <= 1.
        generator: ``numpy.random.Generator`` the masks are drawn from.
    """

    def __init__(self, p: float = 0.5, generator=None):
        super().__init__(p, inplace=False, generator=generator)

    def _multiplier(self, x: np.ndarray) -> np.ndarray:
        check_floating(self, x)
        return dropout_mask(x.shape, self.p, self.generator).astype(x.dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        self.shape = x.shape
        self.multiplier = self._multiplier(x) if self.training else x.dtype.type(1 - self.p)
        return x * self.multiplier

    def extra_repr(self) -> str:
        return f"p={self.p}"
