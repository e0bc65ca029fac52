"""PyTorch pieces the lockstep runs need that torch.nn does not have.

``NumpyDropout`` is ``torch.nn.Dropout`` with its mask taken from a NumPy stream,
drawn by the convention shared word for word with ``scratch.nn.Dropout``:

    keep = generator.random(x.shape) >= p

one float64 draw per element of x from the ``numpy.random.Generator`` given to
the layer, at every forward pass in training mode, whatever p is. Two twins whose
generators are seeded alike therefore drop exactly the same elements.
Independent runs use plain ``torch.nn.Dropout`` and torch's own generator.
"""
import numpy as np
import torch
from torch import nn

# The one map between the twins' dtypes (the harness, the trainers and the bench use it through torch_dtype).
TORCH_DTYPES = {np.dtype(np.float16): torch.float16, np.dtype(np.float32): torch.float32,
                np.dtype(np.float64): torch.float64}


def torch_dtype(dtype) -> torch.dtype:
    """A torch dtype from a torch dtype, a NumPy dtype (or type, or name) or None (torch's default dtype)."""
    if dtype is None:
        return torch.get_default_dtype()
    if isinstance(dtype, torch.dtype):
        return dtype
    return TORCH_DTYPES[np.dtype(dtype)]


class NumpyDropout(nn.Module):
    r"""Inverted dropout with a NumPy mask: y = x * keep / (1 - p) in training, y = x in eval.

    As ``torch.nn.Dropout(p)`` in every respect (p = 1 gives zeros, invalid p
    raises the same ValueError) except where the mask comes from: the module
    docstring's convention, drawn from ``generator`` (a ``numpy.random.Generator``,
    or a ``RandomState``, which the book's code draws from: ``RandomState.random``
    is the stream of ``np.random.rand``) and moved to the input's device and dtype. Autograd gives
    dL/dx = g * keep / (1 - p).

    Args:
        p: probability of an element being zeroed (default 0.5).
        generator: ``numpy.random.Generator`` (or ``RandomState``), seeded like the other twin's.
        inplace: multiply the input in place (default False).

    Shapes: any; output of the input's shape.
    """

    def __init__(self, p: float = 0.5, generator: np.random.Generator | np.random.RandomState | None = None,
                 inplace: bool = False):
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        if generator is not None and not isinstance(generator, (np.random.Generator, np.random.RandomState)):
            raise TypeError("generator must be a numpy.random.Generator or RandomState, "
                            f"got {type(generator).__name__}")
        self.p = p
        self.generator = np.random.default_rng() if generator is None else generator
        self.inplace = inplace

    def multiplier(self, x: torch.Tensor) -> torch.Tensor:
        """keep / (1 - p) for x's shape, in x's dtype and on x's device (zeros when p = 1)."""
        keep = self.generator.random(tuple(x.shape)) >= self.p
        dtype = np.dtype(str(x.dtype).removeprefix("torch."))
        if self.p == 1:
            mult = np.zeros(keep.shape, dtype=dtype)
        else:
            mult = keep * dtype.type(1 / (1 - self.p))
        return torch.from_numpy(mult).to(x.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        mult = self.multiplier(x)
        return x.mul_(mult) if self.inplace else x * mult

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
