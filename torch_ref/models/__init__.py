"""The book's networks built from torch.nn; each has a twin of the same name in scratch.models."""
import torch


def share_correct(predicted: torch.Tensor, t: torch.Tensor, classes: int) -> float:
    """Share of predicted class indices (N,) equal to t: labels (N,) or one-hot rows (N, classes)."""
    if t.ndim == 2 and tuple(t.shape) == (len(predicted), classes):
        t = t.argmax(dim=1)
    if t.shape != predicted.shape:
        raise ValueError(f"accuracy: t must be {len(predicted)} class labels, shape ({len(predicted)},), or one-hot "
                         f"rows, shape ({len(predicted)}, {classes}); got shape {tuple(t.shape)}")
    return float((predicted == t).double().mean())
