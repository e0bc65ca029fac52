"""The book's ``load_mnist`` on the verified cache, and a seeded validation split.

``load_mnist(normalize=True, flatten=True, one_hot_label=False)`` returns what
the book's ``dataset.mnist.load_mnist`` returns, ``((x_train, t_train), (x_test,
t_test))``, with a few keyword extras: ``dtype``, ``validation`` (a held-out
part of the training set, drawn with ``seed``), ``root`` and ``idx_dir``.
Labels are int64 (what ``torch.nn.CrossEntropyLoss`` takes), or one-hot rows.
"""
import numpy as np

from experiments.data.idx import read_mnist_dir
from experiments.data.mnist import mnist_arrays

SPLITS = ("train", "validation", "test")


def train_validation_split(n: int, validation: int, seed: int):
    """Indices (train, validation) of a training set of n: ``validation`` of them drawn
    without replacement by ``default_rng(seed)``, each part in its original order."""
    if not 0 <= validation < n:
        raise ValueError(f"validation must be in [0, {n}), got {validation}")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[validation:]), np.sort(perm[:validation])


def _prepare(images: np.ndarray, labels: np.ndarray, normalize, flatten, one_hot_label, dtype):
    if dtype is None:
        dtype = np.float32 if normalize or one_hot_label else np.uint8
    dtype = np.dtype(dtype)
    if normalize and not np.issubdtype(dtype, np.floating):
        raise ValueError(f"load_mnist: normalize=True needs a float dtype, got {dtype}")
    x = images.astype(dtype)  # always a copy: the cached arrays stay untouched
    if normalize:
        x /= dtype.type(255)
    x = x.reshape(len(x), 784) if flatten else x.reshape(len(x), 1, 28, 28)
    if one_hot_label:
        t = np.zeros((len(labels), 10), dtype=dtype if np.issubdtype(dtype, np.floating) else np.float32)
        t[np.arange(len(labels)), labels] = 1
    else:
        t = labels.astype(np.int64)
    return x, t


def load_split(split: str = "train", *, normalize: bool = True, flatten: bool = True, one_hot_label: bool = False,
               dtype=None, validation: int = 0, seed: int = 0, root=None, idx_dir=None):
    """One part of MNIST as (x, t).

    Args:
        split: ``"train"``, ``"validation"`` or ``"test"``. With ``validation=k``,
            ``"train"`` is the 60,000 - k images left after drawing k for
            ``"validation"`` with ``seed``.
        normalize: pixels in [0, 1] instead of 0..255.
        flatten: x (N, 784) instead of (N, 1, 28, 28).
        one_hot_label: t (N, 10) one-hot instead of (N,) int64.
        dtype: of x (default float32; uint8 when neither normalized nor one-hot, as the book).
        root: the data folder of the cache (see ``experiments.data.mnist.data_root``).
        idx_dir: read IDX files from this folder (or its ``MNIST/raw/``) instead of the cache.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if split == "validation" and validation <= 0:
        raise ValueError("split='validation' needs validation > 0 (the number of training images to hold out)")
    arrays = read_mnist_dir(idx_dir) if idx_dir is not None else mnist_arrays(root)
    part = "test" if split == "test" else "train"
    images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
    if split != "test" and validation:
        train, val = train_validation_split(len(images), validation, seed)
        pick = val if split == "validation" else train
        images, labels = images[pick], labels[pick]
    return _prepare(images, labels, normalize, flatten, one_hot_label, dtype)


def load_mnist(normalize: bool = True, flatten: bool = True, one_hot_label: bool = False, *, dtype=None,
               validation: int = 0, seed: int = 0, root=None, idx_dir=None):
    """The book's ``load_mnist``: ``((x_train, t_train), (x_test, t_test))``.

    With ``validation=k > 0``: ``((x_train, t_train), (x_val, t_val), (x_test, t_test))``,
    the k validation images drawn from the training set with ``seed``.
    Shapes: x (N, 784), or (N, 1, 28, 28) with ``flatten=False``; t (N,) int64,
    or (N, 10) with ``one_hot_label=True``. See :func:`load_split` for the arguments.
    """
    kw = dict(normalize=normalize, flatten=flatten, one_hot_label=one_hot_label, dtype=dtype,
              validation=validation, seed=seed, root=root, idx_dir=idx_dir)
    splits = ("train", "validation", "test") if validation else ("train", "test")
    return tuple(load_split(s, **kw) for s in splits)
