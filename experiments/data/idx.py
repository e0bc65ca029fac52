"""IDX files, MNIST's original format, and torchvision's ``MNIST/raw/`` layout.

An IDX file is a 4-byte magic number ``0x00 0x00 <type> <ndim>``, then ``ndim``
big-endian uint32 sizes, then the values, big-endian, C order. MNIST uses type
0x08 (unsigned byte): ``train-images-idx3-ubyte`` is (60000, 28, 28),
``train-labels-idx1-ubyte`` (60000,). Files may be gzip-compressed (``.gz``).

Anyone who already has MNIST (for example from ``torchvision.datasets.MNIST``,
in ``<root>/MNIST/raw/``) can point :func:`read_mnist_dir` at it; and
:func:`write_torchvision_layout` writes the cache in that layout, so that
``torchvision.datasets.MNIST(root, download=False)`` reads the very same arrays.
"""
import gzip
from pathlib import Path

import numpy as np

TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
CODES = {np.dtype(v).newbyteorder("="): k for k, v in TYPES.items()}
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` or not), in native byte order."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: cannot read: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in TYPES or raw[3] == 0:
        raise ValueError(
            f"{path}: not an IDX file: magic number {raw[:4].hex() or '(empty)'}, expected 0000 followed by a "
            f"type code ({', '.join(f'{k:02x}' for k in TYPES)}) and the number of dimensions"
        )
    dtype, ndim = np.dtype(TYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header: {ndim} dimensions need {header} bytes, the file has {len(raw)}")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: wrong length: the header says {shape} values of {dtype.name} ({expected} bytes of data), "
            f"the file has {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed if ``path`` ends in ``.gz``)."""
    path = Path(path)
    array = np.asarray(array)
    code = CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"{path}: IDX cannot store dtype {array.dtype}; use one of {list(TYPES.values())}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"{path}: IDX stores 1 to 255 dimensions, got {array.ndim}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = header + np.ascontiguousarray(array, dtype=np.dtype(TYPES[code])).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def find_file(directory, name: str) -> Path:
    """``name`` or ``name.gz`` in ``directory``, its ``MNIST/raw/`` or ``raw/`` subfolder."""
    directory = Path(directory)
    for folder in (directory, directory / "MNIST" / "raw", directory / "raw"):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(f"{directory}: no {name} (or {name}.gz) here, in MNIST/raw/ or in raw/")


def read_mnist_dir(directory) -> dict:
    """The four MNIST arrays (``train_images``, ``train_labels``, ``test_images``,
    ``test_labels``; uint8) from the IDX files in ``directory``."""
    arrays = {}
    for split, (images_name, labels_name) in FILES.items():
        images_path, labels_path = find_file(directory, images_name), find_file(directory, labels_name)
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise ValueError(f"{images_path}: expected uint8 images (N, 28, 28), got {images.shape} {images.dtype}")
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise ValueError(f"{labels_path}: expected uint8 labels (N,), got {labels.shape} {labels.dtype}")
        if len(images) != len(labels):
            raise ValueError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
        if labels.size and labels.max() > 9:
            raise ValueError(f"{labels_path}: labels must be 0..9, found {labels.max()}")
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    return arrays


def write_torchvision_layout(root, arrays: dict) -> Path:
    """Write ``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``; return the raw folder."""
    raw = Path(root) / "MNIST" / "raw"
    for split, (images_name, labels_name) in FILES.items():
        write_idx(raw / images_name, arrays[f"{split}_images"])
        write_idx(raw / labels_name, arrays[f"{split}_labels"])
    return raw
