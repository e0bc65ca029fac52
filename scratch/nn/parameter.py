"""Parameter: an array the optimizer updates, with the gradient beside it."""
import numpy as np


class Parameter:
    """A trainable array.

    ``data`` is the value, an ``ndarray`` updated in place by optimizers.
    ``grad`` is ``None`` until a backward pass writes it; later backward passes
    add to it (as in PyTorch) until ``zero_grad()`` sets it back to ``None``.
    """

    __slots__ = ("data", "_grad", "requires_grad")

    def __init__(self, data, requires_grad: bool = True):
        data = np.asarray(data)
        if not np.issubdtype(data.dtype, np.floating):
            raise TypeError(f"Parameter data must be floating point, got dtype {data.dtype}")
        self.data = data
        self._grad = None
        self.requires_grad = requires_grad

    @property
    def grad(self):
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        # As torch's: a gradient of another shape would be broadcast by the optimizers' NumPy updates
        # (a (1, n) gradient for an (m, n) weight moved every row alike), one of another dtype mixed in.
        if value is not None:
            value = np.asarray(value)
            if value.shape != self.data.shape:
                raise RuntimeError(f"attempting to assign a gradient of size '{list(value.shape)}' to a tensor of "
                                   f"size '{list(self.data.shape)}'. Please ensure that the gradient and the tensor "
                                   "are the same size")
            if value.dtype != self.data.dtype:
                raise RuntimeError(f"attempting to assign a gradient with dtype '{value.dtype}' to a tensor with "
                                   f"dtype '{self.data.dtype}'. Please ensure that the gradient and the tensor "
                                   "have the same dtype")
        self._grad = value

    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)

    def numel(self) -> int:
        return self.data.size

    def accumulate_grad(self, grad: np.ndarray) -> None:
        """Add ``grad`` (a fresh array the caller will not touch again) to ``.grad``."""
        if not self.requires_grad:
            return
        if grad.shape != self.data.shape:
            raise RuntimeError(
                f"gradient of shape {grad.shape} does not match parameter of shape {self.data.shape}"
            )
        if self.grad is None:
            self.grad = grad if grad.dtype == self.data.dtype else grad.astype(self.data.dtype)
        else:
            self.grad += grad

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def __repr__(self) -> str:
        return f"Parameter containing:\n{self.data!r}"
