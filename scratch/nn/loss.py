"""Losses: MSELoss and CrossEntropyLoss, with PyTorch's reductions and options.

A loss is a module whose ``forward(input, target)`` returns the loss (a 0-d
array for 'mean' and 'sum', per element for 'none') and whose ``backward(grad=1)``
returns dL/d(input).
"""
import warnings

import numpy as np

from scratch import fast, paths
from scratch.nn import functional as F
from scratch.nn.module import Module, check_floating

_REDUCTIONS = ("none", "mean", "sum")


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{reduction} is not a valid value for reduction")
        self.reduction = reduction

    def __call__(self, input, target):
        return self.forward(input, target)

    def _upstream(self, grad, loss_shape, dtype):
        """The incoming gradient, 1 by default, checked against the loss's shape."""
        if grad is None:
            if self.reduction == "none" and loss_shape != ():
                raise RuntimeError(
                    f"{self._get_name()}(reduction='none'): backward needs a gradient of shape {loss_shape}"
                )
            return dtype.type(1)
        grad = np.asarray(grad, dtype=dtype)
        if grad.shape != loss_shape and grad.size != 1:
            raise RuntimeError(
                f"{self._get_name()}: gradient of shape {grad.shape} does not match the loss of shape {loss_shape}"
            )
        return grad.reshape(loss_shape) if grad.size == 1 and loss_shape == () else grad

    def extra_repr(self):
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    r"""l_n = (x_n - y_n)^2, then mean (default), sum, or none over all elements.

    As in PyTorch, input and target of different shapes are broadcast with a
    warning (the chapter 3 example relies on it: a 2-column output against a
    1-column target). Backward: dL/dx = 2 (x - y) * g / M for 'mean' (M the
    number of broadcast elements), summed back over the broadcast dims of x.
    """

    def __init__(self, reduction: str = "mean"):
        super().__init__(reduction)
        self.diff = None  # cache: x - y, broadcast
        self.input_shape = None

    def forward(self, input, target):
        input = np.asarray(input)
        check_floating(self, input)
        target = np.asarray(target, dtype=input.dtype)
        if target.shape != input.shape:
            try:
                np.broadcast_shapes(input.shape, target.shape)
            except ValueError:
                raise ValueError(
                    f"MSELoss: input of shape {input.shape} and target of shape {target.shape} cannot be broadcast"
                ) from None
            warnings.warn(
                f"Using a target size ({target.shape}) that is different to the input size ({input.shape}). "
                "This will likely lead to incorrect results due to broadcasting. "
                "Please ensure they have the same size.",
                stacklevel=2,
            )
        self.input_shape = input.shape
        self.diff = input - target
        sq = self.diff * self.diff
        if self.reduction == "none":
            return sq
        total = sq.sum(dtype=input.dtype)
        return np.asarray(total / sq.size if self.reduction == "mean" else total, dtype=input.dtype)

    def backward(self, grad=None):
        diff = self.diff
        loss_shape = diff.shape if self.reduction == "none" else ()
        g = self._upstream(grad, loss_shape, diff.dtype)
        scale = 2 / diff.size if self.reduction == "mean" else 2
        grad_in = (diff * diff.dtype.type(scale)) * g
        return _sum_to_shape(grad_in, self.input_shape)


def _sum_to_shape(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Undo broadcasting: sum ``grad`` over the dims that broadcasting added or stretched."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


class CrossEntropyLoss(_Loss):
    r"""Softmax and negative log-likelihood in one, as ``torch.nn.CrossEntropyLoss``.

    Input: logits (C,), (N, C) or (N, C, d1, ...). Target: class indices of the
    input's shape without C (integers, ``ignore_index`` allowed), or class
    probabilities of the input's shape (floats).

    Both target kinds become one weighted target distribution q_n over classes:
        indices:       q_nc = (1 - eps) w_c [c = t_n] + eps / C * w_c   (0 where t_n = ignore_index)
        probabilities: q_nc = w_c ((1 - eps) t_nc + eps / C)
    with w = ``weight`` (ones when None) and eps = ``label_smoothing``. Then
        l_n = -sum_c q_nc log softmax(x_n)_c
    and 'mean' divides sum_n l_n by sum_n w_{t_n} over non-ignored n (indices) or
    by the number of samples N*d1*... (probabilities), as PyTorch does.

    Backward, fused through the softmax (p = softmax(x_n)):
        dl_n/dx_n = p * sum_c q_nc - q_n,
    which for one-hot q and no weights is the book's (y - t).
    """

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        if size_average is not None or reduce is not None:
            raise ValueError("CrossEntropyLoss: size_average and reduce are deprecated; use reduction=")
        super().__init__(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
        if weight is not None:
            weight = np.asarray(weight)
            weight = weight if np.issubdtype(weight.dtype, np.floating) else weight.astype(np.float32)
        self.register_buffer("weight", weight)  # a buffer, so state_dict keys match torch's
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.cache = None  # (p, q, t, denominator, loss_shape, unbatched); q or t is None

    def forward(self, input, target):
        input = np.asarray(input)
        target = np.asarray(target)
        check_floating(self, input)
        if input.ndim == 0:
            raise ValueError("CrossEntropyLoss: input must have at least 1 dimension (C,), got a scalar")
        unbatched = input.ndim == 1
        if unbatched:
            input, target = input[None], target[None]
        C = input.shape[1]
        # Classes last: (N, d1, ..., C); the common (N, C) case as it is.
        logits = input if input.ndim == 2 else np.moveaxis(input, 1, -1)
        t = None  # class indices, when q is one-hot and is not built
        if np.issubdtype(target.dtype, np.floating):
            q, denominator = self._probability_targets(input, target, C)
        elif paths.is_fast() and fast.loss.one_hot(self, target, logits.shape):  # q is not built: scratch/fast/loss.py
            q, t, denominator = None, target, input.dtype.type(target.size)
        else:
            q, denominator = self._index_targets(logits, target, self._class_weights(C, input.dtype), C)
        logp = F.log_softmax(logits, -1)
        loss = -(q * logp).sum(axis=-1) if q is not None else fast.loss.one_hot_loss(logp, t)
        p = np.exp(logp)
        loss_shape = loss.shape[1:] if unbatched else loss.shape
        self.cache = (p, q, t, denominator, loss_shape, unbatched)
        if self.reduction == "none":
            return loss.reshape(loss_shape)
        total = loss.sum(dtype=input.dtype)
        if self.reduction == "sum":
            return np.asarray(total, dtype=input.dtype)
        return np.asarray(total / denominator if denominator else np.nan, dtype=input.dtype)

    def _class_weights(self, C: int, dtype) -> np.ndarray:
        if self.weight is None:
            return np.ones(C, dtype=dtype)
        if self.weight.shape != (C,):
            raise ValueError(
                f"CrossEntropyLoss: weight tensor should be defined either for all {C} classes or no classes "
                f"but got weight tensor of shape: {list(self.weight.shape)}"
            )
        return self.weight.astype(dtype, copy=False)

    def _probability_targets(self, input, target, C):
        """q_nc = w_c ((1 - eps) t_nc + eps / C), classes last; 'mean' divides by the number of samples."""
        if target.shape != input.shape:
            raise ValueError(
                f"CrossEntropyLoss: probability targets must have the input's shape {input.shape}, "
                f"got {target.shape} (class-index targets must be integers)"
            )
        probs = np.moveaxis(target.astype(input.dtype, copy=False), 1, -1)
        if self.label_smoothing > 0:
            probs = probs * (1 - self.label_smoothing) + self.label_smoothing / C
        return probs * self._class_weights(C, input.dtype), input.size // C

    def _index_targets(self, logits, target, w, C):
        if not np.issubdtype(target.dtype, np.integer):
            raise TypeError(f"CrossEntropyLoss: class-index targets must be integers, got dtype {target.dtype}")
        if target.shape != logits.shape[:-1]:
            if target.ndim >= 1 and logits.ndim >= 2 and target.shape[0] != logits.shape[0]:
                raise ValueError(
                    f"Expected input batch_size ({logits.shape[0]}) to match target batch_size ({target.shape[0]})."
                )
            raise ValueError(
                f"CrossEntropyLoss: target of shape {target.shape} does not match input of shape "
                f"{np.moveaxis(logits, -1, 1).shape}; expected {logits.shape[:-1]} (the input's shape without C)"
            )
        ignored = target == self.ignore_index
        bad = ~ignored & ((target < 0) | (target >= C))
        if bad.any():
            raise IndexError(
                f"Target {target[bad].flat[0]} is out of bounds: CrossEntropyLoss expects class indices in "
                f"[0, {C - 1}] or ignore_index={self.ignore_index}"
            )
        t = np.where(ignored, 0, target)
        keep = (~ignored).astype(logits.dtype)
        wt = w[t] * keep  # w_{t_n}, 0 where ignored
        eps = self.label_smoothing
        q = np.zeros(logits.shape, dtype=logits.dtype)
        if eps > 0:
            q += (eps / C) * w * keep[..., None]
        np.put_along_axis(q, t[..., None], np.take_along_axis(q, t[..., None], -1) + ((1 - eps) * wt)[..., None], -1)
        return q, wt.sum(dtype=logits.dtype)

    def backward(self, grad=None):
        p, q, t, denominator, loss_shape, unbatched = self.cache
        g = self._upstream(grad, loss_shape, p.dtype)
        if q is not None:
            grad_in = p * q.sum(axis=-1, keepdims=True) - q
        else:  # the fast path's one-hot q, kept as the class indices t
            grad_in = fast.loss.one_hot_grad(p, t)
        if self.reduction == "none":
            g = np.asarray(g).reshape(p.shape[:-1])[..., None]
        elif self.reduction == "mean":
            # Every target ignored: the loss is nan (0/0) but the gradient is 0, as in torch.
            g = g / denominator if denominator else g * 0
        grad_in *= g
        grad_in = np.moveaxis(grad_in, -1, 1)
        return grad_in[0] if unbatched else grad_in

    def extra_repr(self):
        parts = [] if self.reduction == "mean" else [f"reduction={self.reduction!r}"]
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(parts)
