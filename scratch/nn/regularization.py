"""Weight decay written into the loss (chapter 6.4), the book's way.

    R = 0.5 * lambda * sum_W sum(W * W),      dR/dW = lambda * W

summed over the weight matrices only (the book leaves biases and batch-norm
gamma/beta alone). With plain SGD this is exactly PyTorch's
``SGD(weight_decay=lambda)``: the step is lr * (grad + lambda * W) either way.
With Adam it is ``Adam(weight_decay=lambda)`` (the decay goes through the
adaptive scaling), which is *not* ``AdamW``'s decoupled decay
W <- W - lr * lambda * W; tests/test_weight_decay.py shows both facts.
"""
import numpy as np

from scratch.nn.parameter import Parameter


def l2_penalty(weights, weight_decay_lambda: float) -> np.ndarray:
    """R = 0.5 * lambda * sum over ``weights`` (Parameters or arrays) of sum(W^2), a 0-d array."""
    arrays = [w.data if isinstance(w, Parameter) else np.asarray(w) for w in weights]
    if not arrays:
        return np.asarray(0.0)
    dtype = arrays[0].dtype
    total = sum(np.sum(a * a) for a in arrays)
    return np.asarray(dtype.type(0.5 * weight_decay_lambda) * total, dtype=dtype)


class L2Penalty:
    r"""The book's L2 term as a tiny loss: call it for R, then ``backward()`` for the gradients.

        R = 0.5 * lambda * sum_W sum(W^2);   backward adds lambda * W into each W.grad

    Usage, beside the data loss:
        penalty = L2Penalty(weight_decay_lambda)
        loss = criterion(model(x), t) + penalty(weights)
        model.backward(criterion.backward()); penalty.backward()
    """

    def __init__(self, weight_decay_lambda: float):
        if weight_decay_lambda < 0:
            raise ValueError(f"Invalid weight_decay_lambda value: {weight_decay_lambda}")
        self.weight_decay_lambda = weight_decay_lambda
        self.weights = []  # cache: the Parameters of the last call

    def __call__(self, weights) -> np.ndarray:
        self.weights = list(weights)
        return l2_penalty(self.weights, self.weight_decay_lambda)

    def backward(self, grad=None) -> None:
        """Add lambda * W * grad (grad = dL/dR, 1 by default) into each W.grad."""
        for w in self.weights:
            scale = w.data.dtype.type(self.weight_decay_lambda * (1.0 if grad is None else float(grad)))
            w.accumulate_grad(scale * w.data)

    def __repr__(self) -> str:
        return f"L2Penalty(weight_decay_lambda={self.weight_decay_lambda})"
