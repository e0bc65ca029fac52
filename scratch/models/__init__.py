"""The book's networks, built from scratch.nn. Each has a twin of the same name in torch_ref.models."""
import numpy as np


def share_correct(predicted: np.ndarray, t, classes: int) -> float:
    """Share of predicted class indices (N,) equal to t: labels (N,) or one-hot rows (N, classes).

    Anything else is refused: NumPy would compare (N,) with (1,) or argmax a
    (N, 1) column to zeros and return a share of the wrong thing.
    """
    t = np.asarray(t)
    if t.ndim == 2 and t.shape == (len(predicted), classes):
        t = np.argmax(t, axis=1)
    if t.shape != predicted.shape:
        raise ValueError(f"accuracy: t must be {len(predicted)} class labels, shape ({len(predicted)},), or one-hot "
                         f"rows, shape ({len(predicted)}, {classes}); got shape {t.shape}")
    return float(np.mean(predicted == t))
