"""CrossEntropyLoss's fast path: one-hot targets kept as class indices, the (N, C) target array never built."""
import numpy as np


def one_hot(m, target, shape) -> bool:
    """Whether q is one-hot: (N,) class indices, all in range, none ignored, no weights, no smoothing.

    This common case skips building the (N, C) array q: the loss picks
    -log p_t and the gradient subtracts 1 at t, the same bits as the
    general path (which cost a step of the MLP more than its softmax).
    Anything else, bad indices and the default ignore_index (-100)
    included, goes the general, checked way.
    """
    if m.weight is not None or m.label_smoothing > 0 or not np.issubdtype(target.dtype, np.integer):
        return False
    if len(shape) != 2 or target.shape != shape[:1] or target.min() < 0 or target.max() >= shape[1]:
        return False
    return not (0 <= m.ignore_index < shape[1] and (target == m.ignore_index).any())


def one_hot_loss(logp: np.ndarray, t: np.ndarray) -> np.ndarray:
    """-log p_t per sample: -(q * log p).sum(-1) for a one-hot q."""
    return -logp[np.arange(len(t)), t]


def one_hot_grad(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """p * sum(q) - q for a one-hot q: p with 1 taken off at t."""
    grad = p.copy()
    grad[np.arange(len(t)), t] -= 1
    return grad
